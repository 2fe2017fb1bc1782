//! The life of a running pipeline, from the config to exit: the metrics recorder and
//! the API, the topology started, the wait for a signal (or for every source to
//! finish), and the drain within `shutdown_timeout_secs`. The command line only maps the
//! outcome to an exit status.

use super::{RunningTopology, Stopped};
use crate::config::Config;
use std::sync::Arc;
use std::time::Duration;

/// Runs the pipeline of `config` until SIGTERM or SIGINT, or until every source has
/// finished, then drains it within `shutdown_timeout_secs`: what `sluice run` does.
pub async fn run(config: Config) -> Stopped {
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
    let mut topology = match RunningTopology::start(&config, health).await {
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
        assert_eq!(run(config).await, Stopped::Drained);
        let lines = std::fs::read_to_string(&out).unwrap().lines().count();
        assert_eq!(
            lines, 2500,
            "everything sent was written before run returned"
        );
    }
}
