//! The life of a running pipeline, from the config to exit: the metrics recorder and
//! the API, the topology started, the wait for a signal (or for every source to
//! finish), and the drain within `shutdown_timeout_secs`. The command line only maps the
//! outcome to an exit status.

use super::{RunningTopology, Stopped};
use crate::config::{Config, ConfigErrors};
use crate::internal_events::names;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the config watcher waits after a change for the writes to settle before it
/// reads the config again (Vector's `CONFIG_WATCH_DELAY`).
const WATCH_DEBOUNCE: Duration = Duration::from_secs(1);

/// How a running pipeline reads its config again: on SIGHUP, `POST /-/reload`, and, when
/// `watch` is set, whenever its files change.
pub struct Reloader {
    /// Reads and validates the config files as at start.
    pub load: Arc<dyn Fn() -> Result<Config, ConfigErrors> + Send + Sync>,
    /// The files and directories to watch; empty: no watching (`--no-watch-config`, or
    /// the embedded config).
    pub watch: Vec<PathBuf>,
}

/// What woke the reload loop.
enum Trigger {
    Signal,
    Watch,
    Api(crate::api::ReloadRequest),
}

/// Runs the pipeline of `config` until SIGTERM or SIGINT, or until every source has
/// finished, then drains it within `shutdown_timeout_secs`: what `sluice run` does.
/// With a `reloader`, SIGHUP, `POST /-/reload` and changes to the watched files apply
/// the config again without stopping (see `topology::reload`).
pub async fn run(config: Config, reloader: Option<Reloader>) -> Stopped {
    let handle = match crate::api::install_recorder() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return Stopped::NotStarted;
        }
    };
    if let Err(e) = crate::event::schema::set_log_schema(config.log_schema.clone()) {
        tracing::error!("{e}");
        return Stopped::NotStarted;
    }
    let health = Arc::new(crate::api::Health::default());
    if config.api.enabled {
        match crate::api::bind(config.api.address).await {
            Ok(listener) => {
                tracing::info!(address = %config.api.address, "API serving /metrics and /health.");
                tokio::spawn(crate::api::serve(listener, handle, health.clone()));
            }
            Err(e) => {
                tracing::error!("{e}");
                return Stopped::NotStarted;
            }
        }
    }
    let mut topology = match RunningTopology::start(&config, health.clone()).await {
        Ok(t) => t,
        Err(e) => {
            for line in &e.0 {
                tracing::error!("{line}");
            }
            return Stopped::NotStarted;
        }
    };
    tracing::info!(
        sources = config.sources.len(),
        transforms = config.transforms.len(),
        sinks = config.sinks.len(),
        "sluice started."
    );
    let mut config = config;
    let (triggers, mut triggered) = mpsc::channel::<Trigger>(8);
    let mut _watcher = None;
    if let Some(r) = &reloader {
        spawn_sighup(triggers.clone());
        let (api_tx, mut api_rx) = mpsc::channel(4);
        health.accept_reloads(api_tx);
        let t = triggers.clone();
        tokio::spawn(async move {
            while let Some(answer) = api_rx.recv().await {
                if t.send(Trigger::Api(answer)).await.is_err() {
                    break;
                }
            }
        });
        if !r.watch.is_empty() {
            let (changed_tx, mut changed) = mpsc::channel(1);
            match crate::config::watcher::watch(&r.watch, changed_tx) {
                Ok(w) => {
                    tracing::info!(paths = ?r.watch, "Watching the config for changes.");
                    _watcher = Some(w);
                    let t = triggers.clone();
                    tokio::spawn(async move {
                        while changed.recv().await.is_some() {
                            // Let an editor or ConfigMap finish writing.
                            tokio::time::sleep(WATCH_DEBOUNCE).await;
                            while changed.try_recv().is_ok() {}
                            if t.send(Trigger::Watch).await.is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(e) => tracing::warn!(
                    "{e}; the config is read again on SIGHUP or POST /-/reload only."
                ),
            }
        }
    }
    drop(triggers);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let reason = loop {
        tokio::select! {
            s = &mut stop => break s,
            _ = topology.sources_finished() => break "all sources finished",
            Some(t) = triggered.recv() => {
                let Some(r) = &reloader else { continue };
                let (why, answer) = match t {
                    Trigger::Signal => ("SIGHUP", None),
                    Trigger::Watch => ("config file changed", None),
                    Trigger::Api(a) => ("POST /-/reload", Some(a)),
                };
                let outcome = reload(&mut config, &mut topology, r, why).await;
                health.record_reload(outcome.result);
                if let Some(a) = answer {
                    let _ = a.send((outcome.status, outcome.body.to_string()));
                }
            }
        }
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
            Stopped::Drained
        }
        Stopped::TimedOut { undelivered } => {
            tracing::error!(
                undelivered,
                "Shutdown timed out; events still buffered were not delivered."
            );
            Stopped::TimedOut { undelivered }
        }
        Stopped::NotStarted => Stopped::NotStarted,
    }
}

/// The outcome of one reload, as logged, counted and answered.
struct Outcome {
    /// `applied`, `unchanged`, `rejected`, `failed`.
    result: &'static str,
    status: u16,
    body: serde_json::Value,
}

/// Settings of the process itself, which a reload cannot change: `None` if `new` keeps
/// them, else which ones differ.
fn restart_only(old: &Config, new: &Config) -> Option<String> {
    let mut differ = Vec::new();
    if old.data_dir != new.data_dir {
        differ.push("data_dir");
    }
    if old.api != new.api {
        differ.push("api");
    }
    if old.log_schema != new.log_schema {
        differ.push("log_schema");
    }
    if old.timezone != new.timezone {
        differ.push("timezone");
    }
    (!differ.is_empty()).then(|| {
        format!(
            "{} changed: these take effect only when sluice restarts; the config was not applied (restore them to reload the rest)",
            differ.join(", ")
        )
    })
}

/// Reads the config again and applies it. An invalid config is rejected and logged
/// exactly as `sluice validate` prints it; the running pipeline is untouched.
async fn reload(
    config: &mut Config,
    topology: &mut RunningTopology,
    reloader: &Reloader,
    why: &'static str,
) -> Outcome {
    let load = reloader.load.clone();
    let loaded = match tokio::task::spawn_blocking(move || load()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(trigger = why, "Reading the config failed: {e}");
            return counted(
                "failed",
                500,
                serde_json::json!({"result": "failed", "errors": [e.to_string()]}),
            );
        }
    };
    let new = match loaded {
        Ok(c) => c,
        Err(errors) => {
            tracing::error!(
                trigger = why,
                "Reload rejected; the running pipeline is unchanged.\n{}",
                errors.report()
            );
            let list: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
            return counted(
                "rejected",
                400,
                serde_json::json!({"result": "rejected", "errors": list}),
            );
        }
    };
    if let Some(why_not) = restart_only(config, &new) {
        tracing::error!(trigger = why, "Reload rejected: {why_not}.");
        return counted(
            "rejected",
            400,
            serde_json::json!({"result": "rejected", "errors": [why_not]}),
        );
    }
    for w in &new.warnings {
        tracing::warn!("{w}");
    }
    match topology.reload(config, &new).await {
        Ok(changes) if changes.is_empty() => {
            tracing::info!(trigger = why, "Config read again; nothing changed.");
            // Process-wide settings such as shutdown_timeout_secs may still differ.
            *config = new;
            Outcome {
                result: "unchanged",
                status: 200,
                body: serde_json::json!({"result": "unchanged"}),
            }
        }
        Ok(changes) => {
            tracing::info!(
                trigger = why,
                added = ?changes.added,
                changed = ?changes.changed,
                removed = ?changes.removed,
                rewired = ?changes.rewired,
                "Config reloaded."
            );
            *config = new;
            counted(
                "applied",
                200,
                serde_json::json!({"result": "applied", "changes": changes}),
            )
        }
        Err(e) => {
            if e.applied {
                tracing::error!(trigger = why, errors = ?e.reasons, "Config reloaded, but these components kept their previous options.");
                *config = new;
            } else {
                tracing::error!(trigger = why, errors = ?e.reasons, "Reload failed; the previous pipeline runs on unchanged.");
            }
            counted(
                "failed",
                500,
                serde_json::json!({"result": "failed", "applied": e.applied, "errors": e.reasons}),
            )
        }
    }
}

fn counted(result: &'static str, status: u16, body: serde_json::Value) -> Outcome {
    metrics::counter!(names::CONFIG_RELOADS, "result" => result).increment(1);
    Outcome {
        result,
        status,
        body,
    }
}

/// Sends a reload trigger on every SIGHUP.
fn spawn_sighup(triggers: mpsc::Sender<Trigger>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        if triggers.send(Trigger::Signal).await.is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(
                "Cannot listen for SIGHUP ({e}); reload through the API or the config watcher."
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pipeline_whose_sources_finish_runs_drains_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let text = format!(
            "data_dir = \"{}\"\n[api]\nenabled = false\n[sources.gen]\ntype = \"demo\"\ninterval = 0\ncount = 2500\n[sinks.out]\ntype = \"file\"\ninputs = [\"gen\"]\npath = \"{}\"\n",
            dir.path().display(),
            out.display()
        );
        let config = Config::from_texts(vec![("t.toml".into(), text)]).unwrap();
        assert_eq!(run(config, None).await, Stopped::Drained);
        let lines = std::fs::read_to_string(&out).unwrap().lines().count();
        assert_eq!(
            lines, 2500,
            "everything sent was written before run returned"
        );
    }
}
