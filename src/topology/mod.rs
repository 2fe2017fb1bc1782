//! Builds the running graph from a validated config and runs it: one task per component,
//! bounded event-counted buffers on every edge, and a shutdown that stops the sources
//! and lets everything already inside drain through to the sinks.

pub mod buffer;
pub mod component;
pub mod fanout;
pub mod lifecycle;
pub mod transform;

use crate::api::Health;
use crate::config::Config;
use crate::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
use buffer::{BufferConfig, BufferReceiver, BufferSender};
use component::{Healthchecks, SinkContext, SourceContext, Task, TransformContext};
use fanout::Fanout;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use component::BuildError;
use std::future::Future;

/// Runs a component whose I/O blocks (file sources and sinks, stdout) on a thread of its
/// own with a single-threaded runtime, so blocking I/O never stalls the async workers
/// while the component still awaits its channels and timers as usual.
pub fn on_own_thread<F>(name: &str, fut: F) -> Result<Task, BuildError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|source| BuildError::Io {
            what: format!("starting the runtime of {name}"),
            source,
        })?;
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            rt.block_on(fut);
            let _ = tx.send(());
        })
        .map_err(|source| BuildError::Io {
            what: format!("starting the thread of {name}"),
            source,
        })?;
    Ok(Box::pin(async move {
        let _ = rx.await;
    }))
}

/// Sleeps until `deadline`, or forever without one: the disabled arm of a `select!` in
/// the loops of components that may or may not have something due.
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Why the pipeline could not start: one line per component that failed to build.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct StartError(pub Vec<String>);

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Everything drained in time.
    Drained,
    /// The deadline passed with this many events still buffered.
    TimedOut {
        /// Events left in sink buffers.
        undelivered: u64,
    },
    /// The pipeline never ran: the API or a component could not start (logged).
    NotStarted,
}

/// A graph whose tasks are running.
pub struct RunningTopology {
    sources: JoinSet<()>,
    others: JoinSet<(ComponentKind, Arc<str>)>,
    shutdown: CancellationToken,
    buffers: Vec<(Arc<str>, buffer::BufferProbe)>,
    health: Arc<Health>,
    /// One shutdown token per component: a source's stops it accepting, a transform's
    /// or sink's ends its input once what is queued is taken. What a reload uses to stop
    /// the components it removes or rebuilds without touching the others.
    tokens: BTreeMap<(ComponentKind, String), CancellationToken>,
}

fn component_metrics(kind: ComponentKind, id: &str, type_name: &'static str) -> ComponentMetrics {
    ComponentMetrics::new(ComponentLabels {
        id: Arc::from(id),
        kind,
        type_name,
    })
}

impl RunningTopology {
    /// Builds every component and starts them.
    /// With `require_healthy`, every sink's healthcheck must pass first.
    pub async fn start(config: &Config, health: Arc<Health>) -> Result<Self, StartError> {
        let shutdown = CancellationToken::new();
        let healthchecks = Healthchecks::default();
        let mut errors = Vec::new();
        // Inputs of every consumer, with the sender feeding its buffer.
        let mut senders: BTreeMap<String, Vec<BufferSender>> = BTreeMap::new();
        let mut sink_inputs: BTreeMap<String, (BufferReceiver, ComponentMetrics)> = BTreeMap::new();
        let mut transform_inputs: BTreeMap<String, (BufferReceiver, ComponentMetrics)> =
            BTreeMap::new();
        let mut buffers = Vec::new();
        let mut tokens = BTreeMap::new();

        for (id, sink) in &config.sinks {
            let m = component_metrics(ComponentKind::Sink, id, sink.type_name);
            let (tx, rx) = buffer::buffer(&sink.buffer, m.clone());
            for input in &sink.resolved_inputs {
                senders.entry(input.clone()).or_default().push(tx.clone());
            }
            buffers.push((Arc::from(id.as_str()), rx.probe()));
            tokens.insert((ComponentKind::Sink, id.clone()), rx.stop_token());
            sink_inputs.insert(id.clone(), (rx, m));
        }
        for (id, t) in &config.transforms {
            let m = component_metrics(ComponentKind::Transform, id, t.type_name);
            let (tx, rx) = buffer::buffer(&BufferConfig::default(), m.clone());
            for input in &t.resolved_inputs {
                senders.entry(input.clone()).or_default().push(tx.clone());
            }
            tokens.insert((ComponentKind::Transform, id.clone()), rx.stop_token());
            transform_inputs.insert(id.clone(), (rx, m));
        }

        let mut others = JoinSet::new();
        let mut sources = JoinSet::new();
        let mut pending_tasks: Vec<(ComponentKind, Arc<str>, Task)> = Vec::new();

        for (id, t) in &config.transforms {
            let Some((rx, m)) = transform_inputs.remove(id) else {
                continue;
            };
            let outputs = transform::TransformOutputs {
                default: Fanout::new(senders.remove(id).unwrap_or_default(), &m),
                named: t
                    .inner
                    .outputs()
                    .iter()
                    .map(|name| {
                        Fanout::new(
                            senders.remove(&format!("{id}.{name}")).unwrap_or_default(),
                            &m,
                        )
                    })
                    .collect(),
            };
            let copies = if t.inner.concurrent() {
                transform_workers()
            } else {
                1
            };
            let built: Result<Vec<_>, _> = (0..copies)
                .map(|_| {
                    t.inner.build(TransformContext {
                        id: Arc::from(id.as_str()),
                        metrics: m.clone(),
                        timezone: config.timezone,
                        data_dir: config.data_dir.clone(),
                    })
                })
                .collect();
            match built {
                Ok(mut tfs) => {
                    let task = match tfs.pop() {
                        Some(tf) if tfs.is_empty() => transform::run(tf, rx, outputs),
                        Some(tf) => {
                            tfs.push(tf);
                            transform::run_concurrent(tfs, rx, outputs)
                        }
                        None => continue,
                    };
                    pending_tasks.push((ComponentKind::Transform, Arc::from(id.as_str()), task));
                }
                Err(e) => errors.push(format!("[transforms.{id}] failed to start: {e}")),
            }
        }
        for (id, s) in &config.sinks {
            let Some((rx, m)) = sink_inputs.remove(id) else {
                continue;
            };
            let cx = SinkContext {
                id: Arc::from(id.as_str()),
                input: rx,
                metrics: m,
                data_dir: config.data_dir.clone(),
                healthcheck: s.healthcheck.clone(),
                proxy: s.proxy.clone(),
                timezone: config.timezone,
                healthchecks: healthchecks.clone(),
            };
            match s.inner.build(cx) {
                Ok(task) => pending_tasks.push((ComponentKind::Sink, Arc::from(id.as_str()), task)),
                Err(e) => errors.push(format!("[sinks.{id}] failed to start: {e}")),
            }
        }
        let mut source_tasks = Vec::new();
        for (id, s) in &config.sources {
            let m = component_metrics(ComponentKind::Source, id, s.type_name);
            let outputs = senders.remove(id).unwrap_or_default();
            if outputs.is_empty() {
                tracing::warn!(component_id = %id, "Source feeds no transform or sink; its events go nowhere.");
            }
            let token = shutdown.child_token();
            tokens.insert((ComponentKind::Source, id.clone()), token.clone());
            let cx = SourceContext {
                id: Arc::from(id.as_str()),
                out: Fanout::new(outputs, &m),
                shutdown: token,
                metrics: m,
                data_dir: config.data_dir.clone(),
                shutdown_timeout: Duration::from_secs(config.shutdown_timeout_secs),
                acknowledgements: config.source_acknowledges(id),
            };
            match s.inner.build(cx) {
                Ok(task) => source_tasks.push((Arc::<str>::from(id.as_str()), task)),
                Err(e) => errors.push(format!("[sources.{id}] failed to start: {e}")),
            }
        }
        drop(senders);
        if !errors.is_empty() {
            return Err(StartError(errors));
        }
        run_healthchecks(healthchecks.take(), config.require_healthy).await?;
        for (kind, id, task) in pending_tasks {
            health.set(&id, kind, true);
            others.spawn(async move {
                task.await;
                (kind, id)
            });
        }
        for (id, task) in source_tasks {
            health.set(&id, ComponentKind::Source, true);
            let h = health.clone();
            sources.spawn(async move {
                task.await;
                h.set(&id, ComponentKind::Source, false);
            });
        }
        health.set_running(true);
        Ok(Self {
            sources,
            others,
            shutdown,
            buffers,
            health,
            tokens,
        })
    }

    /// Stops one component alone: a source stops accepting and drains; a transform or
    /// sink takes what its buffer holds, passes it on or delivers it, and ends. Its
    /// upstream then sees it gone. `false` when there is no such component.
    pub fn stop_component(&self, kind: ComponentKind, id: &str) -> bool {
        match self.tokens.get(&(kind, id.to_string())) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    /// Waits until every source has finished on its own (stdin closed, demo count reached).
    pub async fn sources_finished(&mut self) {
        while self.sources.join_next().await.is_some() {}
    }

    /// Stops the sources and waits, up to `timeout`, for everything in flight to drain.
    pub async fn stop(mut self, timeout: Duration) -> Stopped {
        self.health.set_running(false);
        self.shutdown.cancel();
        let health = self.health.clone();
        let drain = async {
            while self.sources.join_next().await.is_some() {}
            while let Some(r) = self.others.join_next().await {
                if let Ok((kind, id)) = r {
                    health.set(&id, kind, false);
                }
            }
        };
        match tokio::time::timeout(timeout, drain).await {
            Ok(()) => Stopped::Drained,
            Err(_) => {
                let mut undelivered = 0;
                for (id, probe) in &self.buffers {
                    let queued = probe.queued();
                    undelivered += queued;
                    if queued > 0 {
                        tracing::error!(component_id = %id, undelivered = queued, "Sink did not drain before shutdown_timeout_secs; these events are lost.");
                    }
                }
                // What the aborted tasks drop was not delivered: its sources must not
                // checkpoint or commit past it.
                crate::event::finalizer_abandon_unanswered();
                self.sources.abort_all();
                self.others.abort_all();
                Stopped::TimedOut { undelivered }
            }
        }
    }
}

/// How long `require_healthy` waits for one healthcheck (Vector's figure).
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the sinks' healthchecks: beside the pipeline, logging each result, or, when
/// `required`, to the end (each within [`HEALTHCHECK_TIMEOUT`]) before anything starts,
/// failing the start with every check that did not pass.
async fn run_healthchecks(
    checks: Vec<component::NamedHealthcheck>,
    required: bool,
) -> Result<(), StartError> {
    if !required {
        for (id, check) in checks {
            tokio::spawn(async move {
                match check.await {
                    Ok(()) => tracing::info!(component_id = %id, "Healthcheck passed."),
                    Err(e) => {
                        tracing::warn!(component_id = %id, error = %e, "Healthcheck failed; events will be sent and retried anyway.")
                    }
                }
            });
        }
        return Ok(());
    }
    let mut set = JoinSet::new();
    for (id, check) in checks {
        set.spawn(async move {
            let r = match tokio::time::timeout(HEALTHCHECK_TIMEOUT, check).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "no answer within {} s",
                    HEALTHCHECK_TIMEOUT.as_secs()
                )),
            };
            (id, r)
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok((id, Ok(()))) => tracing::info!(component_id = %id, "Healthcheck passed."),
            Ok((id, Err(e))) => failed.push(format!(
                "[sinks.{id}] healthcheck failed, and require_healthy is set: {e}"
            )),
            Err(e) => failed.push(format!("a healthcheck task failed: {e}")),
        }
    }
    failed.sort();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StartError(failed))
    }
}

#[cfg(test)]
mod tests;

/// Copies of each concurrent transform: one per core (tokio runs a worker thread per
/// core), or `SLUICE_TRANSFORM_WORKERS` (1 runs every transform as a single task, to
/// measure what the copies bring).
fn transform_workers() -> usize {
    std::env::var("SLUICE_TRANSFORM_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
