//! Loading a config: files and directories in Vector's shape, `${VAR}` interpolation,
//! typed component tables from the registries, and validation that reports every problem
//! at once with file, component and key.

pub mod diff;
pub mod error;
pub mod field;
pub mod format;
mod graph;
mod interpolate;
pub mod secret;
pub mod timezone;
mod vector_compat;
pub mod watcher;

pub use error::{ConfigError, ConfigErrors};
pub use graph::to_dot;

use crate::event::schema::LogSchema;
use crate::internal_events::ComponentKind;
use crate::sinks::util::proxy::ProxyConfig;
use crate::topology::buffer::BufferConfig;
use crate::topology::component::{
    HealthcheckOptions, Registration, Registry, Resource, SinkConfig, SourceConfig, TransformConfig,
};
use error::did_you_mean;
use field::{from_toml, FieldIssue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config compiled into the binary: what `sluice run` uses without `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/sluice.toml");

/// How the embedded default is named in messages.
pub const EMBEDDED_NAME: &str = "<embedded default config>";

/// `[api]`: where `/metrics` and `/health` are served.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Serve the API at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Listening address; loopback by default so metrics are not exposed by accident.
    #[serde(default = "default_api_address")]
    pub address: SocketAddr,
}

fn default_true() -> bool {
    true
}

fn default_api_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9598))
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            address: default_api_address(),
        }
    }
}

/// Top-level options beside the component tables.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalOptions {
    data_dir: Option<PathBuf>,
    api: Option<ApiConfig>,
    shutdown_timeout_secs: Option<u64>,
    acknowledgements: Option<Acknowledgements>,
    healthchecks: Option<HealthchecksConfig>,
    schema: Option<SchemaOptions>,
    proxy: Option<ProxyConfig>,
    log_schema: Option<LogSchema>,
    timezone: Option<timezone::TimeZone>,
}

/// Vector's top-level `schema` table: accepted where it describes what sluice does.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct SchemaOptions {
    /// `false` (Vector's default, sluice's layout); `true` is refused.
    #[serde(default)]
    log_namespace: bool,
    /// Vector's schema checks between components: sluice has none to turn on.
    #[serde(default)]
    enabled: bool,
    /// As `enabled`.
    #[serde(default)]
    validation: bool,
}

/// `acknowledgements = true` or Vector's `acknowledgements.enabled = true` (on a sink,
/// at the top level, or, deprecated, on a source).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Acknowledgements {
    /// `acknowledgements = true`.
    Flag(bool),
    /// `acknowledgements.enabled = true`.
    Table {
        /// Whether sources wait for delivery.
        #[serde(default)]
        enabled: bool,
    },
}

impl Acknowledgements {
    /// Whether sources wait for delivery.
    pub fn enabled(self) -> bool {
        match self {
            Self::Flag(b) | Self::Table { enabled: b } => b,
        }
    }
}

/// The top-level `healthchecks` table of Vector.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct HealthchecksConfig {
    /// `false` turns off every sink's healthcheck.
    #[serde(default = "default_true")]
    enabled: bool,
    /// Vector's "do not start when a healthcheck fails" (also `run --require-healthy`).
    #[serde(default)]
    require_healthy: bool,
}

/// A sink's `healthcheck`: `false`, or the table.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum HealthcheckValue {
    Flag(bool),
    Table(HealthcheckOptions),
}

/// Where sluice keeps state (checkpoints, disk buffers) unless `data_dir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/sluice";

/// How long SIGTERM may take to drain before sluice gives up and reports what is left.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// A source with where it was declared.
#[derive(Debug)]
pub struct SourceOuter {
    /// Its `type`.
    pub type_name: &'static str,
    /// The file that declares it.
    pub file: PathBuf,
    /// Its table as written (after `${VAR}` interpolation), so two configs can be
    /// compared component by component on reload.
    pub raw: toml::Value,
    /// Its typed options.
    pub inner: Box<dyn SourceConfig>,
}

/// A transform with its inputs.
#[derive(Debug)]
pub struct TransformOuter {
    /// Its `type`.
    pub type_name: &'static str,
    /// The file that declares it.
    pub file: PathBuf,
    /// `inputs` as written.
    pub inputs: Vec<String>,
    /// `inputs` with globs expanded.
    pub resolved_inputs: Vec<String>,
    /// Its table as written (after `${VAR}` interpolation), so two configs can be
    /// compared component by component on reload.
    pub raw: toml::Value,
    /// Its typed options.
    pub inner: Box<dyn TransformConfig>,
}

/// A sink with its inputs and buffer.
#[derive(Debug)]
pub struct SinkOuter {
    /// Its `type`.
    pub type_name: &'static str,
    /// The file that declares it.
    pub file: PathBuf,
    /// `inputs` as written.
    pub inputs: Vec<String>,
    /// `inputs` with globs expanded.
    pub resolved_inputs: Vec<String>,
    /// Its input buffer.
    pub buffer: BufferConfig,
    /// `acknowledgements` as the sink sets it (the global setting applies when unset).
    pub acknowledgements: Option<bool>,
    /// `healthcheck`, with the global `healthchecks.enabled` applied.
    pub healthcheck: HealthcheckOptions,
    /// `proxy`, merged over the top-level `proxy`.
    pub proxy: ProxyConfig,
    /// `dead_letter`: where events the destination refused for good are written.
    pub dead_letter: Option<crate::sinks::util::dead_letter::DeadLetterConfig>,
    /// Its table as written (after `${VAR}` interpolation), so two configs can be
    /// compared component by component on reload.
    pub raw: toml::Value,
    /// Its typed options.
    pub inner: Box<dyn SinkConfig>,
}

/// A whole, validated pipeline.
#[derive(Debug)]
pub struct Config {
    /// State directory.
    pub data_dir: PathBuf,
    /// `/metrics` and `/health`.
    pub api: ApiConfig,
    /// The drain deadline on SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// `healthchecks.require_healthy` (or `run --require-healthy`): wait for every
    /// sink's healthcheck before starting, and do not start if one fails.
    pub require_healthy: bool,
    /// The top-level `acknowledgements.enabled`: every sink acknowledges unless it says
    /// otherwise.
    pub acknowledgements: bool,
    /// Vector's `log_schema`: the names of the standard fields.
    pub log_schema: LogSchema,
    /// Vector's `timezone`: what file names' strftime specifiers render in (UTC when
    /// unset, as in Vector).
    pub timezone: Option<timezone::TimeZone>,
    /// Deprecated or questionable options that still work, each with file, component
    /// and key: printed by `validate`, logged by `run`.
    pub warnings: Vec<ConfigError>,
    /// `[sources.ID]`
    pub sources: BTreeMap<String, SourceOuter>,
    /// `[transforms.ID]`
    pub transforms: BTreeMap<String, TransformOuter>,
    /// `[sinks.ID]`
    pub sinks: BTreeMap<String, SinkOuter>,
    /// IDs declared but not loadable: already reported, so inputs naming them are not.
    broken: std::collections::BTreeSet<String>,
    /// Inputs of transforms and sinks that did not load, still checked against the
    /// graph so one config run reports a misspelt key and a dangling input together.
    unloaded_inputs: Vec<UnloadedInputs>,
}

/// The `inputs` of a consumer whose own options failed to load.
#[derive(Debug)]
struct UnloadedInputs {
    file: PathBuf,
    /// `sinks.ID` or `transforms.ID`.
    name: String,
    id: String,
    inputs: Vec<String>,
}

impl Config {
    /// Loads the embedded default.
    pub fn embedded() -> Result<Config, ConfigErrors> {
        Self::from_texts(vec![(
            PathBuf::from(EMBEDDED_NAME),
            EMBEDDED_DEFAULT.to_string(),
        )])
    }

    /// Loads files and directories (every `*.toml`, `*.yaml`, `*.yml` and `*.json`
    /// inside, in name order) as one config, each file in the format of its extension.
    pub fn load(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
        let paths: Vec<(PathBuf, Option<format::Format>)> =
            paths.iter().map(|p| (p.clone(), None)).collect();
        Self::load_as(&paths)
    }

    /// Loads `--config-dir` directories as Vector lays them out: files directly inside
    /// are whole configs; each file under `sources/`, `transforms/` and `sinks/` holds
    /// one component, named by the file's stem (`sinks/archive.toml` is
    /// `[sinks.archive]`). `extra` are further files and directories, as for `--config`.
    pub fn load_dirs(
        dirs: &[PathBuf],
        extra: &[(PathBuf, Option<format::Format>)],
    ) -> Result<Config, ConfigErrors> {
        let mut paths: Vec<(PathBuf, Option<format::Format>)> = extra.to_vec();
        let mut namespaced = BTreeMap::new();
        let mut errors = Vec::new();
        for dir in dirs {
            let listing = |d: &Path| -> Vec<PathBuf> {
                let mut files: Vec<PathBuf> = std::fs::read_dir(d)
                    .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                files.retain(|f| f.is_file() && format::Format::from_path(f).is_some());
                files.sort();
                files
            };
            if !dir.is_dir() {
                errors.push(ConfigError::file(dir, "is not a directory (--config-dir)"));
                continue;
            }
            paths.extend(listing(dir).into_iter().map(|f| (f, None)));
            for kind in ["sources", "transforms", "sinks"] {
                for f in listing(&dir.join(kind)) {
                    let id = f
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    namespaced.insert(f.clone(), (kind, id));
                    paths.push((f, None));
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Self::load_inner(&paths, namespaced)
    }

    /// Like [`Config::load`], with a file's format forced where given (whatever its
    /// extension): `--config-toml`, `--config-yaml`, `--config-json`.
    pub fn load_as(paths: &[(PathBuf, Option<format::Format>)]) -> Result<Config, ConfigErrors> {
        Self::load_inner(paths, BTreeMap::new())
    }

    fn load_inner(
        paths: &[(PathBuf, Option<format::Format>)],
        namespaced: BTreeMap<PathBuf, (&'static str, String)>,
    ) -> Result<Config, ConfigErrors> {
        let mut texts = Vec::new();
        let mut errors = Vec::new();
        let mut formats = BTreeMap::new();
        for (p, forced) in paths {
            if let Some(f) = forced {
                formats.insert(p.clone(), *f);
            }
            if p.is_dir() {
                match std::fs::read_dir(p) {
                    Ok(rd) => {
                        let mut files: Vec<PathBuf> = rd
                            .filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|f| format::Format::from_path(f).is_some() && f.is_file())
                            .collect();
                        files.sort();
                        if files.is_empty() {
                            errors.push(ConfigError::file(
                                p,
                                "directory holds no *.toml, *.yaml, *.yml or *.json file",
                            ));
                        }
                        for f in files {
                            read_into(&f, &mut texts, &mut errors);
                        }
                    }
                    Err(e) => errors.push(ConfigError::file(p, format!("cannot list: {e}"))),
                }
            } else {
                read_into(p, &mut texts, &mut errors);
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Self::from_texts_in(texts, Registry::builtin(), formats, namespaced)
    }

    /// Parses and validates config texts, each with the path it came from.
    pub fn from_texts(texts: Vec<(PathBuf, String)>) -> Result<Config, ConfigErrors> {
        Self::from_texts_with(texts, Registry::builtin())
    }

    /// Like [`Config::from_texts`] with the component types of `registry`: how tests
    /// add components of their own.
    pub fn from_texts_with(
        texts: Vec<(PathBuf, String)>,
        registry: Registry,
    ) -> Result<Config, ConfigErrors> {
        Self::from_texts_in(texts, registry, BTreeMap::new(), BTreeMap::new())
    }

    fn from_texts_in(
        texts: Vec<(PathBuf, String)>,
        registry: Registry,
        formats: BTreeMap<PathBuf, format::Format>,
        namespaced: BTreeMap<PathBuf, (&'static str, String)>,
    ) -> Result<Config, ConfigErrors> {
        Loader {
            registry,
            formats,
            namespaced,
            errors: Vec::new(),
            warnings: Vec::new(),
            globals: GlobalOptions::default(),
            global_files: BTreeMap::new(),
            sources: BTreeMap::new(),
            transforms: BTreeMap::new(),
            sinks: BTreeMap::new(),
            broken: Default::default(),
            unloaded_inputs: Vec::new(),
        }
        .run(texts)
    }

    /// Whether source `id` feeds (directly or through transforms) a sink with
    /// acknowledgements enabled, so it should wait for delivery before answering.
    pub fn source_acknowledges(&self, id: &str) -> bool {
        let mut reached = std::collections::BTreeSet::from([id.to_string()]);
        // Transforms may be declared in any order: repeat until nothing new is reached.
        loop {
            let before = reached.len();
            for (tid, t) in &self.transforms {
                if t.resolved_inputs
                    .iter()
                    .any(|i| reached.contains(graph::component_of(i)))
                {
                    reached.insert(tid.clone());
                }
            }
            if reached.len() == before {
                break;
            }
        }
        self.sinks.values().any(|s| {
            s.acknowledgements.unwrap_or(self.acknowledgements)
                && s.resolved_inputs
                    .iter()
                    .any(|i| reached.contains(graph::component_of(i)))
        })
    }

    /// IDs of sources and transforms: the things that can be inputs.
    fn producers(&self) -> impl Iterator<Item = &str> {
        self.sources
            .keys()
            .chain(self.transforms.keys())
            .map(String::as_str)
    }
}

fn read_into(path: &Path, texts: &mut Vec<(PathBuf, String)>, errors: &mut Vec<ConfigError>) {
    match std::fs::read_to_string(path) {
        Ok(t) => texts.push((path.to_path_buf(), t)),
        Err(e) => errors.push(ConfigError::file(path, format!("cannot read: {e}"))),
    }
}

struct Loader {
    registry: Registry,
    /// Files whose format was forced (`--config-yaml` and the like).
    formats: BTreeMap<PathBuf, format::Format>,
    /// Files of a `--config-dir` that hold one component each: its table, named by the
    /// file's stem, under `sources/`, `transforms/` or `sinks/`.
    namespaced: BTreeMap<PathBuf, (&'static str, String)>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    globals: GlobalOptions,
    global_files: BTreeMap<&'static str, PathBuf>,
    sources: BTreeMap<String, SourceOuter>,
    transforms: BTreeMap<String, TransformOuter>,
    sinks: BTreeMap<String, SinkOuter>,
    broken: std::collections::BTreeSet<String>,
    unloaded_inputs: Vec<UnloadedInputs>,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "data_dir",
    "api",
    "shutdown_timeout_secs",
    "acknowledgements",
    "healthchecks",
    "schema",
    "proxy",
    "log_schema",
    "timezone",
    "sources",
    "transforms",
    "sinks",
];

impl Loader {
    fn run(mut self, texts: Vec<(PathBuf, String)>) -> Result<Config, ConfigErrors> {
        for (file, text) in texts {
            self.load_text(&file, &text);
        }
        let GlobalOptions {
            data_dir,
            api,
            shutdown_timeout_secs,
            acknowledgements,
            healthchecks,
            schema,
            proxy,
            log_schema,
            timezone,
        } = std::mem::take(&mut self.globals);
        if let Some(ls) = &log_schema {
            let file = self
                .global_files
                .get("log_schema")
                .cloned()
                .unwrap_or_default();
            for (k, problem) in ls.problems() {
                self.errors.push(ConfigError::at(
                    file.clone(),
                    None,
                    Some(format!("log_schema.{k}")),
                    problem,
                ));
            }
        }
        if let Some(global) = &proxy {
            let file = self.global_files.get("proxy").cloned().unwrap_or_default();
            for (k, problem) in global.problems() {
                self.errors.push(ConfigError::at(
                    file.clone(),
                    None,
                    Some(format!("proxy.{k}")),
                    problem,
                ));
            }
            for s in self.sinks.values_mut() {
                s.proxy = s.proxy.over(global);
            }
        }
        if let Some(schema) = schema {
            let file = self.global_files.get("schema").cloned().unwrap_or_default();
            for (on, key, why) in [
                (schema.log_namespace, "schema.log_namespace", "sluice keeps Vector's legacy layout (fields such as `host` and `timestamp` in the event itself); Vector's log namespacing is not built"),
                (schema.enabled, "schema.enabled", "sluice has no schema checks between components; `validate` checks types and the graph"),
                (schema.validation, "schema.validation", "sluice has no schema checks between components; `validate` checks types and the graph"),
            ] {
                if on {
                    self.errors.push(ConfigError::at(
                        file.clone(),
                        None,
                        Some(key.into()),
                        format!("Vector's `{key} = true` is not supported by sluice: {why}"),
                    ));
                }
            }
        }
        if let Some(h) = healthchecks {
            if !h.enabled {
                for s in self.sinks.values_mut() {
                    s.healthcheck.enabled = false;
                }
            }
        }
        let mut config = Config {
            data_dir: data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            api: api.unwrap_or_default(),
            shutdown_timeout_secs: shutdown_timeout_secs.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            require_healthy: healthchecks.is_some_and(|h| h.require_healthy),
            acknowledgements: acknowledgements.is_some_and(|a| a.enabled()),
            log_schema: log_schema.unwrap_or_default(),
            timezone,
            warnings: std::mem::take(&mut self.warnings),
            sources: std::mem::take(&mut self.sources),
            transforms: std::mem::take(&mut self.transforms),
            sinks: std::mem::take(&mut self.sinks),
            broken: std::mem::take(&mut self.broken),
            unloaded_inputs: std::mem::take(&mut self.unloaded_inputs),
        };
        self.errors.extend(graph::validate(&mut config));
        if self.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }

    fn load_text(&mut self, file: &Path, text: &str) {
        let text = match interpolate::interpolate(text, |n| std::env::var(n).ok()) {
            Ok(t) => t,
            Err(missing) => {
                for m in missing {
                    let (line, name) = (m.line, m.name);
                    self.errors.push(ConfigError::file(
                        file,
                        match m.message {
                            Some(msg) => format!("line {line}: environment variable `{name}` is not set: {msg}"),
                            None => format!(
                                "line {line}: environment variable `{name}` is not set and has no default (write ${{{name}:-default}} to give one)"
                            ),
                        },
                    ));
                }
                return;
            }
        };
        let format = self
            .formats
            .get(file)
            .copied()
            .or_else(|| format::Format::from_path(file))
            .unwrap_or(format::Format::Toml);
        let mut table: toml::Table = match format.parse(&text) {
            Ok(t) => t,
            Err(msg) => {
                self.errors.push(ConfigError::file(file, msg));
                return;
            }
        };
        if let Some((kind, id)) = self.namespaced.get(file).cloned() {
            // `sinks/out.yaml` holds the table of `[sinks.out]`.
            let mut one = toml::Table::new();
            one.insert(id, toml::Value::Table(std::mem::take(&mut table)));
            table.insert(kind.to_string(), toml::Value::Table(one));
        }
        let components = [
            (ComponentKind::Source, table.remove("sources")),
            (ComponentKind::Transform, table.remove("transforms")),
            (ComponentKind::Sink, table.remove("sinks")),
        ];
        for key in table.keys() {
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
                self.errors.push(ConfigError::at(
                    file,
                    None,
                    Some(key.clone()),
                    format!(
                        "unknown top-level key{}",
                        did_you_mean(key, TOP_LEVEL_KEYS.iter().copied())
                    ),
                ));
            }
        }
        table.retain(|k, _| TOP_LEVEL_KEYS.contains(&k));
        match from_toml::<GlobalOptions>(toml::Value::Table(table)) {
            Ok(g) => self.merge_globals(file, g),
            Err(issue) => self
                .errors
                .push(ConfigError::at(file, None, issue.key, issue.message)),
        }
        for (kind, value) in components {
            let Some(value) = value else { continue };
            let toml::Value::Table(items) = value else {
                self.errors.push(ConfigError::at(
                    file,
                    None,
                    Some(format!("{}s", kind.as_str())),
                    "must be a table of components ([sources.ID] sections)",
                ));
                continue;
            };
            for (id, body) in items {
                self.load_component(file, kind, id, body);
            }
        }
    }

    fn merge_globals(&mut self, file: &Path, g: GlobalOptions) {
        macro_rules! merge {
            ($field:ident) => {
                if let Some(v) = g.$field {
                    let key = stringify!($field);
                    match &self.globals.$field {
                        Some(old) if *old != v => {
                            let first = self.global_files.get(key).cloned().unwrap_or_default();
                            self.errors.push(ConfigError::at(
                                file,
                                None,
                                Some(key.to_string()),
                                format!("conflicts with the value set in {}", first.display()),
                            ));
                        }
                        _ => {
                            self.globals.$field = Some(v);
                            self.global_files.insert(key, file.to_path_buf());
                        }
                    }
                }
            };
        }
        merge!(data_dir);
        merge!(api);
        merge!(shutdown_timeout_secs);
        merge!(acknowledgements);
        merge!(healthchecks);
        merge!(schema);
        merge!(proxy);
        merge!(log_schema);
        merge!(timezone);
    }

    fn is_duplicate(&self, id: &str) -> Option<&Path> {
        if let Some(s) = self.sources.get(id) {
            return Some(&s.file);
        }
        if let Some(t) = self.transforms.get(id) {
            return Some(&t.file);
        }
        self.sinks.get(id).map(|s| s.file.as_path())
    }

    fn load_component(&mut self, file: &Path, kind: ComponentKind, id: String, body: toml::Value) {
        let errors_before = self.errors.len();
        self.load_component_inner(file, kind, &id, body);
        let loaded = self.sources.contains_key(&id)
            || self.transforms.contains_key(&id)
            || self.sinks.contains_key(&id);
        if !loaded && self.errors.len() > errors_before {
            self.broken.insert(id);
        }
    }

    fn load_component_inner(
        &mut self,
        file: &Path,
        kind: ComponentKind,
        id: &str,
        body: toml::Value,
    ) {
        let id = id.to_string();
        let name = format!("{}s.{}", kind.as_str(), id);
        let err = |key: Option<&str>, msg: String| {
            ConfigError::at(file, Some(name.clone()), key.map(str::to_string), msg)
        };
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.errors.push(err(
                None,
                "component IDs may only hold letters, digits, `_` and `-`".into(),
            ));
            return;
        }
        if let Some(first) = self.is_duplicate(&id) {
            let first = first.display().to_string();
            self.errors.push(err(
                None,
                format!("duplicate component ID `{id}` (already declared in {first})"),
            ));
            return;
        }
        let toml::Value::Table(mut table) = body else {
            self.errors.push(err(None, "must be a table".into()));
            return;
        };
        let raw = toml::Value::Table(table.clone());
        let type_name = match table.remove("type") {
            Some(toml::Value::String(t)) => t,
            Some(other) => {
                self.errors.push(err(
                    Some("type"),
                    format!("wrong type: found {}, expected a string", other.type_str()),
                ));
                return;
            }
            None => {
                self.errors
                    .push(err(Some("type"), "missing required key".into()));
                return;
            }
        };
        let mut inputs = Vec::new();
        if kind != ComponentKind::Source {
            match table.remove("inputs") {
                Some(toml::Value::Array(a)) => {
                    for v in a {
                        match v {
                            toml::Value::String(s) => inputs.push(s),
                            other => self.errors.push(err(
                                Some("inputs"),
                                format!(
                                    "wrong type: found {} in the list, expected component IDs as strings",
                                    other.type_str()
                                ),
                            )),
                        }
                    }
                }
                Some(other) => self.errors.push(err(
                    Some("inputs"),
                    format!(
                        "wrong type: found {}, expected a list of component IDs",
                        other.type_str()
                    ),
                )),
                None => {}
            }
        }
        let mut buffer = BufferConfig::default();
        let mut acknowledgements = None;
        let mut healthcheck = HealthcheckOptions::default();
        let mut proxy = ProxyConfig::default();
        let mut dead_letter = None;
        if kind == ComponentKind::Sink {
            if let Some(d) = table.remove("dead_letter") {
                match field::from_toml_all::<crate::sinks::util::dead_letter::DeadLetterConfig>(d) {
                    Ok(d) => {
                        for (key, message) in d.issues() {
                            self.errors.push(err(Some(key), message));
                        }
                        dead_letter = Some(d);
                    }
                    Err(issues) => {
                        for issue in issues {
                            let key = format!("dead_letter.{}", issue.key.unwrap_or_default());
                            self.errors
                                .push(err(Some(key.trim_end_matches('.')), issue.message));
                        }
                    }
                }
            }
            if let Some(p) = table.remove("proxy") {
                match field::from_toml_all::<ProxyConfig>(p) {
                    Ok(p) => {
                        for (k, problem) in p.problems() {
                            self.errors.push(err(Some(&format!("proxy.{k}")), problem));
                        }
                        proxy = p;
                    }
                    Err(issues) => {
                        for issue in issues {
                            let key = format!("proxy.{}", issue.key.unwrap_or_default());
                            self.errors
                                .push(err(Some(key.trim_end_matches('.')), issue.message));
                        }
                    }
                }
            }
            if let Some(a) = table.remove("acknowledgements") {
                match from_toml::<Acknowledgements>(a) {
                    Ok(a) => acknowledgements = Some(a.enabled()),
                    Err(_) => self.errors.push(err(
                        Some("acknowledgements"),
                        "expected true, false or a table with `enabled`".into(),
                    )),
                }
            }
            if let Some(h) = table.remove("healthcheck") {
                match from_toml::<HealthcheckValue>(h) {
                    Ok(HealthcheckValue::Flag(enabled)) => healthcheck.enabled = enabled,
                    Ok(HealthcheckValue::Table(h)) => {
                        if let Some(u) = &h.uri {
                            if let Err(e) = crate::sinks::util::http_client::parse_uri(u) {
                                self.errors.push(err(Some("healthcheck.uri"), e));
                            }
                        }
                        healthcheck = h;
                    }
                    Err(_) => self.errors.push(err(
                        Some("healthcheck"),
                        "expected true, false or a table with `enabled` and `uri`".into(),
                    )),
                }
            }
            if let Some(b) = table.remove("buffer") {
                match field::from_toml_all::<BufferConfig>(b) {
                    Ok(b) => {
                        for (key, message) in b.issues() {
                            self.errors.push(err(Some(key), message));
                        }
                        buffer = b;
                    }
                    Err(issues) => {
                        for issue in issues {
                            self.errors.push(err(
                                Some(
                                    format!("buffer.{}", issue.key.unwrap_or_default())
                                        .trim_end_matches('.'),
                                ),
                                issue.message,
                            ))
                        }
                    }
                }
            }
        }
        for (key, message) in vector_compat::refuse(kind, &type_name, &mut table) {
            self.errors.push(err(Some(&key), message));
        }
        let rest = toml::Value::Table(table);
        let unloaded = UnloadedInputs {
            file: file.to_path_buf(),
            name: name.clone(),
            id: id.clone(),
            inputs: inputs.clone(),
        };
        match kind {
            ComponentKind::Source => {
                let registry = self.registry.sources.clone();
                let parsed = self.parse_with(file, &name, &type_name, rest, &registry, |c| {
                    (c.validate(), c.warnings())
                });
                if let Some((t, inner)) = parsed {
                    self.sources.insert(
                        id,
                        SourceOuter {
                            type_name: t,
                            file: file.to_path_buf(),
                            raw,
                            inner,
                        },
                    );
                }
            }
            ComponentKind::Transform => {
                let registry = self.registry.transforms.clone();
                let parsed = self.parse_with(file, &name, &type_name, rest, &registry, |c| {
                    (c.validate(), c.warnings())
                });
                let Some((t, inner)) = parsed else {
                    self.unloaded_inputs.push(unloaded);
                    return;
                };
                self.transforms.insert(
                    id,
                    TransformOuter {
                        type_name: t,
                        file: file.to_path_buf(),
                        inputs,
                        resolved_inputs: Vec::new(),
                        raw,
                        inner,
                    },
                );
            }
            ComponentKind::Sink => {
                let registry = self.registry.sinks.clone();
                let parsed = self.parse_with(file, &name, &type_name, rest, &registry, |c| {
                    (c.validate(), c.warnings())
                });
                let Some((t, inner)) = parsed else {
                    self.unloaded_inputs.push(unloaded);
                    return;
                };
                self.sinks.insert(
                    id,
                    SinkOuter {
                        type_name: t,
                        file: file.to_path_buf(),
                        inputs,
                        resolved_inputs: Vec::new(),
                        buffer,
                        acknowledgements,
                        healthcheck,
                        proxy,
                        dead_letter,
                        raw,
                        inner,
                    },
                );
            }
        }
    }

    fn parse_with<T: ?Sized>(
        &mut self,
        file: &Path,
        name: &str,
        type_name: &str,
        rest: toml::Value,
        registry: &[Registration<T>],
        validate: impl Fn(&T) -> (Vec<FieldIssue>, Vec<FieldIssue>),
    ) -> Option<(&'static str, Box<T>)> {
        let Some(reg) = registry.iter().find(|r| r.name == type_name) else {
            let kind = name
                .split('.')
                .next()
                .unwrap_or_default()
                .trim_end_matches('s');
            self.errors.push(ConfigError::at(
                file,
                Some(name.to_string()),
                Some("type".into()),
                format!(
                    "unknown {kind} type `{type_name}`{} (known: {})",
                    did_you_mean(type_name, registry.iter().map(|r| r.name)),
                    registry
                        .iter()
                        .map(|r| r.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            return None;
        };
        // Parse errors and semantic checks are reported the same way.
        let (inner, issues) = match (reg.parse)(rest) {
            Ok(inner) => {
                let (issues, warnings) = validate(&inner);
                for w in warnings {
                    self.warnings.push(ConfigError::at(
                        file,
                        Some(name.to_string()),
                        w.key,
                        w.message,
                    ));
                }
                (Some(inner), issues)
            }
            Err(issues) => (None, issues),
        };
        let ok = issues.is_empty();
        for issue in issues {
            self.errors.push(ConfigError::at(
                file,
                Some(name.to_string()),
                issue.key,
                issue.message,
            ));
        }
        inner.filter(|_| ok).map(|inner| (reg.name, inner))
    }
}

/// Every listening address in the config with its owner, for conflict checks.
fn resources(config: &Config) -> Vec<(String, &Path, Resource)> {
    let mut out = Vec::new();
    for (id, s) in &config.sources {
        for r in s.inner.resources() {
            out.push((format!("sources.{id}"), s.file.as_path(), r));
        }
    }
    for (id, s) in &config.sinks {
        for r in s.inner.resources() {
            out.push((format!("sinks.{id}"), s.file.as_path(), r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_texts(vec![(PathBuf::from("t.toml"), text.to_string())])
    }

    const GRAPH: &str = r#"
[sources.a]
type = "stdin"
[sources.b]
type = "stdin"
[transforms.t]
type = "sample"
inputs = ["a"]
rate = 1
[sinks.via_t]
type = "blackhole"
inputs = ["t"]
[sinks.direct_b]
type = "blackhole"
inputs = ["b"]
"#;

    #[test]
    fn acknowledgements_reach_the_sources_that_feed_an_acknowledging_sink() {
        let c = load(GRAPH).unwrap();
        assert!(!c.source_acknowledges("a") && !c.source_acknowledges("b"));
        let c = load(&format!("acknowledgements.enabled = true\n{GRAPH}")).unwrap();
        assert!(c.source_acknowledges("a") && c.source_acknowledges("b"));
        // A sink's own setting wins over the global one, through transforms too.
        let c = load(&format!(
            "acknowledgements = true\n{}",
            GRAPH.replace(
                "inputs = [\"t\"]",
                "inputs = [\"t\"]\nacknowledgements.enabled = false"
            )
        ))
        .unwrap();
        assert!(!c.source_acknowledges("a") && c.source_acknowledges("b"));
    }

    #[test]
    fn healthcheck_is_every_sinks_option_and_the_global_switch_wins() {
        let c = load(&GRAPH.replace("inputs = [\"b\"]", "inputs = [\"b\"]\nhealthcheck = false"))
            .unwrap();
        assert!(!c.sinks["direct_b"].healthcheck.enabled);
        assert!(c.sinks["via_t"].healthcheck.enabled);
        let c = load(&format!("healthchecks.enabled = false\n{GRAPH}")).unwrap();
        assert!(c.sinks.values().all(|s| !s.healthcheck.enabled));
        assert!(!c.require_healthy);
        let c = load(&format!("healthchecks.require_healthy = true\n{GRAPH}")).unwrap();
        assert!(c.require_healthy);
        let e = load(&format!("schema.log_namespace = true\n{GRAPH}")).unwrap_err();
        assert_eq!(e.0[0].key.as_deref(), Some("schema.log_namespace"));
        assert!(load(&format!("schema.log_namespace = false\n{GRAPH}")).is_ok());
        let e = load(&GRAPH.replace(
            "inputs = [\"b\"]",
            "inputs = [\"b\"]\nhealthcheck.uri = \"not a uri\"",
        ))
        .unwrap_err();
        assert_eq!(e.0[0].key.as_deref(), Some("healthcheck.uri"));
    }
}
