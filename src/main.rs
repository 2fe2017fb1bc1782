//! The `sluice` command: `run`, `validate` and `graph`.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand, ValueEnum};
use sluice::config::{to_dot, Config, ConfigErrors};
use sluice::topology::Stopped;
use std::path::PathBuf;
use std::process::ExitCode;

/// Events are built on one worker and freed on another; mimalloc handles that
/// cross-thread pattern far better than glibc's malloc (measured in the closing note).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for an invalid config (sysexits' EX_CONFIG, as Vector uses).
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A tiny, fast observability pipeline agent."
)]
struct Cli {
    /// Format of sluice's own log on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter in env-filter syntax, e.g. `info` or `sluice=debug`.
    #[arg(long, global = true, env = "SLUICE_LOG", default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Check every sink's destination before starting and exit if one fails (Vector's
    /// flag; the config's `healthchecks.require_healthy` does the same).
    #[arg(long, env = "SLUICE_REQUIRE_HEALTHY")]
    require_healthy: bool,
    /// Apply config file changes as they are saved (the default; SIGHUP and
    /// `POST /-/reload` work either way).
    #[arg(short = 'w', long, overrides_with = "no_watch_config")]
    watch_config: bool,
    /// Do not watch the config files; reload on SIGHUP or `POST /-/reload` only.
    #[arg(long, env = "SLUICE_NO_WATCH_CONFIG")]
    no_watch_config: bool,
}

#[derive(clap::Args, Clone)]
struct ConfigArgs {
    /// Config file or directory of *.toml files; repeat to combine. Without it the
    /// embedded default config is used.
    #[arg(short, long = "config", value_name = "PATH")]
    config: Vec<PathBuf>,
    /// A config file read as TOML whatever its extension (as in Vector).
    #[arg(long = "config-toml", value_name = "PATH")]
    config_toml: Vec<PathBuf>,
    /// A config file read as YAML whatever its extension.
    #[arg(long = "config-yaml", value_name = "PATH")]
    config_yaml: Vec<PathBuf>,
    /// A config file read as JSON whatever its extension.
    #[arg(long = "config-json", value_name = "PATH")]
    config_json: Vec<PathBuf>,
    /// A directory in Vector's layout: whole configs directly inside, one component
    /// per file under `sources/`, `transforms/`, `sinks/` (named by the file's stem).
    #[arg(short = 'C', long = "config-dir", value_name = "DIR")]
    config_dir: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline until SIGTERM or SIGINT (or until every source has finished).
    Run(RunArgs),
    /// Check a config without starting anything; lists every problem found.
    Validate(ConfigArgs),
    /// Print the pipeline as a Graphviz DOT graph.
    Graph(ConfigArgs),
}

impl ConfigArgs {
    /// Every file and directory the config was read from (none for the embedded one).
    fn watched(&self) -> Vec<PathBuf> {
        self.config
            .iter()
            .chain(&self.config_toml)
            .chain(&self.config_yaml)
            .chain(&self.config_json)
            .chain(&self.config_dir)
            .cloned()
            .collect()
    }
}

fn load(args: &ConfigArgs) -> Result<Config, ConfigErrors> {
    use sluice::config::format::Format;
    let paths: Vec<(PathBuf, Option<Format>)> = args
        .config
        .iter()
        .map(|p| (p.clone(), None))
        .chain(
            args.config_toml
                .iter()
                .map(|p| (p.clone(), Some(Format::Toml))),
        )
        .chain(
            args.config_yaml
                .iter()
                .map(|p| (p.clone(), Some(Format::Yaml))),
        )
        .chain(
            args.config_json
                .iter()
                .map(|p| (p.clone(), Some(Format::Json))),
        )
        .collect();
    if !args.config_dir.is_empty() {
        Config::load_dirs(&args.config_dir, &paths)
    } else if paths.is_empty() {
        Config::embedded()
    } else {
        Config::load_as(&paths)
    }
}

fn report_invalid(errors: &ConfigErrors) -> ExitCode {
    eprintln!("{}", errors.report());
    ExitCode::from(EXIT_CONFIG)
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("Invalid --log-level/SLUICE_LOG `{filter}` ({e}); using `info`.");
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colours only on a terminal: journald and log files get plain `key=value` text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => match load(&args) {
            Ok(c) => {
                println!(
                    "Config OK: {} source{}, {} transform{}, {} sink{}.",
                    c.sources.len(),
                    plural(c.sources.len()),
                    c.transforms.len(),
                    plural(c.transforms.len()),
                    c.sinks.len(),
                    plural(c.sinks.len())
                );
                for w in &c.warnings {
                    eprintln!("  warning: {w}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => report_invalid(&e),
        },
        Command::Graph(args) => match load(&args) {
            Ok(c) => {
                use std::io::Write;
                // A reader that went away (`| dot` with no dot, `| head`) is not an error.
                match std::io::stdout().lock().write_all(to_dot(&c).as_bytes()) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        eprintln!("Cannot write the graph: {e}");
                        ExitCode::FAILURE
                    }
                    _ => ExitCode::SUCCESS,
                }
            }
            Err(e) => report_invalid(&e),
        },
        Command::Run(args) => {
            init_logging(cli.log_format, &cli.log_level);
            let require_healthy = args.require_healthy;
            let sources = args.config.clone();
            let read = move || {
                load(&sources).map(|mut c| {
                    c.require_healthy |= require_healthy;
                    c
                })
            };
            let config = match read() {
                Ok(c) => c,
                Err(e) => return report_invalid(&e),
            };
            let watch = if args.no_watch_config {
                Vec::new()
            } else {
                args.config.watched()
            };
            let reloader = sluice::topology::lifecycle::Reloader {
                load: std::sync::Arc::new(read),
                watch,
            };
            for w in &config.warnings {
                tracing::warn!("{w}");
            }
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("sluice-worker")
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("Cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(sluice::topology::lifecycle::run(config, Some(reloader))) {
                Stopped::Drained => ExitCode::SUCCESS,
                Stopped::TimedOut { .. } | Stopped::NotStarted => ExitCode::FAILURE,
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
