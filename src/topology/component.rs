//! What every component type provides, and the registry that maps a config `type` to the
//! code for it. Adding a component is one module plus one `register::<Config>("name")`
//! line in its kind's `mod.rs`.

use super::buffer::BufferReceiver;
use super::fanout::Fanout;
use crate::config::field::{from_toml_checked, FieldIssue};
use crate::event::{Batch, Event};
use crate::internal_events::ComponentMetrics;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A running component: a future that ends when the component is done.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Why a component could not start (address in use, unwritable directory, ...).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An I/O step failed; `what` says which.
    #[error("{what}: {source}")]
    Io {
        /// The step, e.g. "binding 127.0.0.1:514/tcp".
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Any other reason.
    #[error("{0}")]
    Other(String),
}

impl From<FieldIssue> for BuildError {
    /// An option that `validate` would have reported, met again while building: named
    /// by its key, as `validate` names it.
    fn from(e: FieldIssue) -> Self {
        match e.key {
            Some(k) => BuildError::Other(format!("{k}: {}", e.message)),
            None => BuildError::Other(e.message),
        }
    }
}

/// Something only one component may hold, used to refuse two listeners on one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A TCP listening address.
    Tcp(SocketAddr),
    /// A UDP listening address.
    Udp(SocketAddr),
    /// A unix socket's path (`/dev/log`).
    Unix(std::path::PathBuf),
}

impl Resource {
    /// The config key that names it, for errors.
    pub fn key(&self) -> &'static str {
        match self {
            Resource::Unix(_) => "path",
            _ => "address",
        }
    }

    /// Whether two listeners would fight over the same port.
    pub fn conflicts_with(&self, other: &Resource) -> bool {
        let same = |a: &SocketAddr, b: &SocketAddr| {
            a.port() == b.port()
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        };
        match (self, other) {
            (Resource::Tcp(a), Resource::Tcp(b)) | (Resource::Udp(a), Resource::Udp(b)) => {
                same(a, b)
            }
            (Resource::Unix(a), Resource::Unix(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Tcp(a) => write!(f, "{a}/tcp"),
            Resource::Udp(a) => write!(f, "{a}/udp"),
            Resource::Unix(p) => write!(f, "{} (unix socket)", p.display()),
        }
    }
}

/// What a source gets to run with.
pub struct SourceContext {
    /// The source's ID.
    pub id: Arc<str>,
    /// Where its batches go.
    pub out: Fanout,
    /// Cancelled on SIGTERM: stop accepting, drain what was already sent, return.
    pub shutdown: CancellationToken,
    /// Its contract metrics.
    pub metrics: ComponentMetrics,
    /// The global `data_dir`, for state such as checkpoints.
    pub data_dir: PathBuf,
    /// `shutdown_timeout_secs`: how long the whole drain may take after `shutdown`, so a
    /// source that waits for acknowledgements before its final checkpoint stops waiting
    /// in time to write it.
    pub shutdown_timeout: std::time::Duration,
    /// Whether a sink this source feeds has `acknowledgements.enabled` (itself or through
    /// the global setting): a source that can answer its client after delivery (HTTP)
    /// then does, as in Vector.
    pub acknowledgements: bool,
}

/// A `[sources.ID]` config.
pub trait SourceConfig: Debug + Send + Sync {
    /// Binds sockets and opens what it needs, so start-up fails before anything runs.
    fn build(&self, cx: SourceContext) -> Result<Task, BuildError>;
    /// Addresses it will listen on.
    fn resources(&self) -> Vec<Resource> {
        Vec::new()
    }
    /// Checks that go beyond the types (ranges, combinations).
    fn validate(&self) -> Vec<FieldIssue> {
        Vec::new()
    }
    /// Options that still work but should change (Vector's deprecated spellings):
    /// printed by `validate` and logged at start, never fatal.
    fn warnings(&self) -> Vec<FieldIssue> {
        Vec::new()
    }
}

/// What a sink gets to run with.
pub struct SinkContext {
    /// The sink's ID.
    pub id: Arc<str>,
    /// Its input buffer; the sink ends when this closes and is drained.
    pub input: BufferReceiver,
    /// Its contract metrics.
    pub metrics: ComponentMetrics,
    /// The global `data_dir`.
    pub data_dir: PathBuf,
    /// `healthcheck` (with the global `healthchecks.enabled` applied).
    pub healthcheck: HealthcheckOptions,
    /// `proxy`, merged over the top-level one: what HTTP sinks connect through.
    pub proxy: crate::sinks::util::proxy::ProxyConfig,
    /// The top-level `timezone`, for sinks whose own `timezone` is unset.
    pub timezone: Option<crate::config::timezone::TimeZone>,
    /// Where the sink's healthcheck goes: see [`SinkContext::spawn_healthcheck`].
    pub healthchecks: Healthchecks,
    /// `dead_letter`, started: where events the destination refused for good go.
    pub dead_letter: Option<crate::sinks::util::dead_letter::DeadLetters>,
}

/// A sink's healthcheck: `Err` says what the destination answered instead.
pub type Healthcheck = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// The healthchecks the sinks of one start registered. The topology runs them beside
/// the pipeline and logs the result (failing never stops a sink, which sends and retries
/// anyway), or, with `require_healthy`, waits for them before anything starts and does
/// not start if one fails.
#[derive(Clone, Default)]
pub struct Healthchecks(Arc<std::sync::Mutex<Vec<NamedHealthcheck>>>);

/// A healthcheck with the ID of its sink.
pub type NamedHealthcheck = (Arc<str>, Healthcheck);

impl Healthchecks {
    /// Takes every check registered so far.
    pub fn take(&self) -> Vec<NamedHealthcheck> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl SinkContext {
    /// Registers the sink's healthcheck (only when `healthcheck.enabled`; the caller
    /// checks).
    pub fn spawn_healthcheck<F>(&self, check: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.healthchecks
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.id.clone(), Box::pin(check)));
    }
}

/// A sink's `healthcheck`, Vector's shape: `healthcheck = false` or
/// `healthcheck.enabled` / `healthcheck.uri`. Handled for every sink alike; a sink with
/// nothing to probe (file, console) accepts it and does nothing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckOptions {
    /// Run the check at start. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// What the `http` sink probes; without it there is no check (a webhook has no
    /// harmless request).
    pub uri: Option<String>,
}

fn default_true() -> bool {
    true
}

impl Default for HealthcheckOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            uri: None,
        }
    }
}

/// A `[sinks.ID]` config.
pub trait SinkConfig: Debug + Send + Sync {
    /// Prepares the sink; the task delivers until the input closes, then flushes.
    fn build(&self, cx: SinkContext) -> Result<Task, BuildError>;
    /// Addresses it will listen on.
    fn resources(&self) -> Vec<Resource> {
        Vec::new()
    }
    /// Checks that go beyond the types.
    fn validate(&self) -> Vec<FieldIssue> {
        Vec::new()
    }
    /// Options that still work but should change (Vector's deprecated spellings):
    /// printed by `validate` and logged at start, never fatal.
    fn warnings(&self) -> Vec<FieldIssue> {
        Vec::new()
    }
}

/// What a transform gets to build with.
pub struct TransformContext {
    /// The transform's ID.
    pub id: Arc<str>,
    /// Its contract metrics.
    pub metrics: ComponentMetrics,
    /// The top-level `timezone`, for transforms whose own `timezone` is unset.
    pub timezone: Option<crate::config::timezone::TimeZone>,
    /// The global `data_dir`, for transforms that keep state across restarts (`alert`).
    pub data_dir: PathBuf,
}

/// Where a transform puts what it passes on: its default output, and one batch per
/// named output in the order [`TransformConfig::outputs`] declared them. The topology
/// sends and empties them after each call.
#[derive(Debug, Default)]
pub struct TransformOutput {
    /// The default output (consumers write the transform's plain ID in `inputs`).
    pub default: Batch,
    /// The named outputs (`ID.name`), indexed as declared.
    pub named: Vec<Batch>,
}

impl TransformOutput {
    /// An output with `named` named outputs.
    pub fn new(named: usize) -> Self {
        Self {
            default: Vec::new(),
            named: (0..named).map(|_| Vec::new()).collect(),
        }
    }

    /// Passes `event` on to the default output.
    pub fn push(&mut self, event: Event) {
        self.default.push(event);
    }

    /// Passes `event` on to the named output declared at `index`. An index the transform
    /// never declared is a bug in it; the event goes to the default output instead of
    /// being lost.
    pub fn push_named(&mut self, index: usize, event: Event) {
        match self.named.get_mut(index) {
            Some(b) => b.push(event),
            None => self.default.push(event),
        }
    }
}

/// A function from one batch to the events it passes on; the topology runs the loop.
///
/// Most transforms implement only [`Transform::transform`]. One that must act without
/// input (windows, throttles, alert evaluation) names its next deadline and is woken
/// there; one that holds events is flushed when its input closes. Neither costs the
/// others anything per event: the topology asks for the deadline once per batch.
pub trait Transform: Send {
    /// Moves the events to pass on from `input` into `output`.
    fn transform(&mut self, input: Batch, output: &mut TransformOutput);

    /// When the transform next wants [`Transform::on_deadline`], if ever.
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        None
    }

    /// Called once the deadline named by [`Transform::next_deadline`] has passed.
    fn on_deadline(&mut self, _output: &mut TransformOutput) {}

    /// Called once when the input has closed (shutdown, or every upstream finished),
    /// before the outputs close: pass on whatever is held.
    fn flush(&mut self, _output: &mut TransformOutput) {}
}

/// A `[transforms.ID]` config.
pub trait TransformConfig: Debug + Send + Sync {
    /// Builds the transform.
    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError>;
    /// Checks that go beyond the types.
    fn validate(&self) -> Vec<FieldIssue> {
        Vec::new()
    }
    /// Options that still work but should change (Vector's deprecated spellings):
    /// printed by `validate` and logged at start, never fatal.
    fn warnings(&self) -> Vec<FieldIssue> {
        Vec::new()
    }
    /// Whether it keeps no state from one batch to the next, so that several copies may
    /// work on batches at once (Vector's function transforms: `remap`, `filter`,
    /// `route`, …). The topology then runs one copy per core and keeps the input order.
    fn concurrent(&self) -> bool {
        false
    }
    /// Its named outputs besides the default one, which consumers reach as `ID.name`
    /// (route has one per route and `_unmatched`). The order is the index of
    /// [`TransformOutput::push_named`].
    fn outputs(&self) -> Vec<String> {
        Vec::new()
    }
}

/// One entry of a registry: a `type` name and how to parse its table.
pub struct Registration<T: ?Sized + 'static> {
    /// The `type` value.
    pub name: &'static str,
    /// Parses the component's table (without `type`, `inputs`, `buffer`).
    pub parse: fn(toml::Value) -> Result<Box<T>, Vec<FieldIssue>>,
}

macro_rules! registration_fn {
    ($fn_name:ident, $trait:ident) => {
        /// Registers a config type under its `type` name.
        pub const fn $fn_name<C: $trait + DeserializeOwned + 'static>(
            name: &'static str,
        ) -> Registration<dyn $trait> {
            fn parse<C: $trait + DeserializeOwned + 'static>(
                v: toml::Value,
            ) -> Result<Box<dyn $trait>, Vec<FieldIssue>> {
                Ok(Box::new(from_toml_checked::<C>(v, |c| c.validate())?))
            }
            Registration {
                name,
                parse: parse::<C>,
            }
        }
    };
}

impl<T: ?Sized> Clone for Registration<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Registration<T> {}

/// Every component type sluice knows, by kind: what a config's `type` can name. Tests
/// extend it with components of their own (a transform with named outputs or a timer).
#[derive(Clone)]
pub struct Registry {
    /// Source types.
    pub sources: Vec<Registration<dyn SourceConfig>>,
    /// Transform types.
    pub transforms: Vec<Registration<dyn TransformConfig>>,
    /// Sink types.
    pub sinks: Vec<Registration<dyn SinkConfig>>,
}

impl Registry {
    /// The components built into sluice.
    pub fn builtin() -> Self {
        Self {
            sources: crate::sources::REGISTRY.to_vec(),
            transforms: crate::transforms::REGISTRY.to_vec(),
            sinks: crate::sinks::REGISTRY.to_vec(),
        }
    }
}

registration_fn!(source, SourceConfig);
registration_fn!(sink, SinkConfig);
registration_fn!(transform, TransformConfig);
