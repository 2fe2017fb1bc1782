//! The `sluice` command: `run`, `validate` and `graph`.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand, ValueEnum};
use sluice::config::{to_dot, Config, ConfigErrors};
use sluice::topology::{RunningTopology, Stopped};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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
struct ConfigArgs {
    /// Config file or directory of *.toml files; repeat to combine. Without it the
    /// embedded default config is used.
    #[arg(short, long = "config", value_name = "PATH")]
    config: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline until SIGTERM or SIGINT (or until every source has finished).
    Run(ConfigArgs),
    /// Check a config without starting anything; lists every problem found.
    Validate(ConfigArgs),
    /// Print the pipeline as a Graphviz DOT graph.
    Graph(ConfigArgs),
}

fn load(args: &ConfigArgs) -> Result<Config, ConfigErrors> {
    if args.config.is_empty() {
        Config::embedded()
    } else {
        Config::load(&args.config)
    }
}

fn report_invalid(errors: &ConfigErrors) -> ExitCode {
    let n = errors.0.len();
    eprintln!(
        "Config invalid: {n} problem{}:",
        if n == 1 { "" } else { "s" }
    );
    for e in &errors.0 {
        eprintln!("  - {e}");
    }
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
            let config = match load(&args) {
                Ok(c) => c,
                Err(e) => return report_invalid(&e),
            };
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
            rt.block_on(run(config))
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

async fn run(config: Config) -> ExitCode {
    let handle = match sluice::api::install_recorder() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let health = Arc::new(sluice::api::Health::default());
    if config.api.enabled {
        match sluice::api::bind(config.api.address).await {
            Ok(listener) => {
                tracing::info!(address = %config.api.address, "API serving /metrics and /health.");
                tokio::spawn(sluice::api::serve(listener, handle, health.clone()));
            }
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut topology = match RunningTopology::start(&config, health) {
        Ok(t) => t,
        Err(e) => {
            for line in &e.0 {
                tracing::error!("{line}");
            }
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        sources = config.sources.len(),
        transforms = config.transforms.len(),
        sinks = config.sinks.len(),
        "sluice started."
    );
    let reason = tokio::select! {
        s = shutdown_signal() => s,
        _ = topology.sources_finished() => "all sources finished",
    };
    tracing::info!(
        reason,
        timeout_secs = config.shutdown_timeout_secs,
        "Shutting down: draining events in flight."
    );
    match topology
        .stop(Duration::from_secs(config.shutdown_timeout_secs))
        .await
    {
        Stopped::Drained => {
            // Drained means every component finished its input; whatever a sink could
            // not deliver on the way was counted and logged by that sink.
            tracing::info!("Shutdown complete; every component drained its input.");
            ExitCode::SUCCESS
        }
        Stopped::TimedOut { undelivered } => {
            tracing::error!(
                undelivered,
                "Shutdown timed out; events still buffered were not delivered."
            );
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
