//! Builds the running graph from a validated config and runs it: one task per component,
//! bounded event-counted buffers on every edge, and a shutdown that stops the sources
//! and lets everything already inside drain through to the sinks.

pub mod buffer;
pub mod component;
pub mod fanout;
pub mod lifecycle;
pub mod reload;
pub mod transform;

use crate::api::Health;
use crate::config::Config;
use crate::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
use buffer::{BufferConfig, BufferReceiver, BufferSender};
use component::{Healthchecks, SinkContext, SourceContext, Task, TransformContext};
use fanout::{Edges, Fanout};
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

/// Which component: its kind and ID.
pub type ComponentKey = (ComponentKind, String);

/// One running instance of a component.
struct Instance {
    kind: ComponentKind,
    id: Arc<str>,
    /// A source's shutdown, or a transform's or sink's input stop.
    token: CancellationToken,
    /// Cancelled when the task has ended, however it ended.
    finished: CancellationToken,
    abort: tokio::task::AbortHandle,
    /// A sink's buffer, for the report of what a timed-out shutdown left behind.
    probe: Option<buffer::BufferProbe>,
}

/// A component built (its sockets bound, its files open) but not started yet.
pub(crate) struct Built {
    kind: ComponentKind,
    id: Arc<str>,
    task: Task,
    token: CancellationToken,
    probe: Option<buffer::BufferProbe>,
}

/// A graph whose tasks are running, with what a reload needs to change it in place: the
/// sender into every consumer's buffer, and the swappable [`Edges`] of every output.
pub struct RunningTopology {
    shutdown: CancellationToken,
    health: Arc<Health>,
    /// The current instance of each component.
    running: BTreeMap<ComponentKey, Instance>,
    /// Instances a reload replaced or removed, still draining.
    retiring: Vec<Instance>,
    /// Each transform's and sink's input, by ID.
    inputs: BTreeMap<String, BufferSender>,
    /// Each output (`ID` or `ID.name`) and the buffers it feeds.
    edges: BTreeMap<String, Arc<Edges>>,
    /// Numbers the instances, so the end of a replaced one never marks its successor
    /// stopped in `/health`.
    generation: u64,
}

fn component_metrics(kind: ComponentKind, id: &str, type_name: &'static str) -> ComponentMetrics {
    ComponentMetrics::new(ComponentLabels {
        id: Arc::from(id),
        kind,
        type_name,
    })
}

/// Which consumers read each output of `config`: output name → consumer IDs.
fn wiring(config: &Config) -> BTreeMap<String, Vec<String>> {
    let mut w: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in config.sources.keys() {
        w.entry(id.clone()).or_default();
    }
    for (id, t) in &config.transforms {
        w.entry(id.clone()).or_default();
        for name in t.inner.outputs() {
            w.entry(format!("{id}.{name}")).or_default();
        }
    }
    let consumers = config
        .transforms
        .iter()
        .map(|(id, t)| (id, &t.resolved_inputs))
        .chain(config.sinks.iter().map(|(id, s)| (id, &s.resolved_inputs)));
    for (id, inputs) in consumers {
        for input in inputs {
            w.entry(input.clone()).or_default().push(id.clone());
        }
    }
    w
}

impl RunningTopology {
    /// Builds every component and starts them.
    /// With `require_healthy`, every sink's healthcheck must pass first.
    pub async fn start(config: &Config, health: Arc<Health>) -> Result<Self, StartError> {
        let mut topology = Self {
            shutdown: CancellationToken::new(),
            health,
            running: BTreeMap::new(),
            retiring: Vec::new(),
            inputs: BTreeMap::new(),
            edges: BTreeMap::new(),
            generation: 0,
        };
        let healthchecks = Healthchecks::default();
        let mut errors = Vec::new();
        let mut built = Vec::new();
        let mut inputs = BTreeMap::new();
        for id in config.sinks.keys().chain(config.transforms.keys()) {
            let kind = if config.sinks.contains_key(id) {
                ComponentKind::Sink
            } else {
                ComponentKind::Transform
            };
            match topology.new_input(config, kind, id) {
                Ok((tx, rx)) => {
                    inputs.insert(id.clone(), (tx, rx));
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(StartError(errors));
        }
        topology.inputs = inputs
            .iter()
            .map(|(id, (tx, _))| (id.clone(), tx.clone()))
            .collect();
        topology.rewire(config);
        for (id, (_, rx)) in inputs {
            let r = if config.sinks.contains_key(&id) {
                topology.build_sink(config, &id, rx, &healthchecks)
            } else {
                topology.build_transform(config, &id, rx)
            };
            match r {
                Ok(b) => built.push(b),
                Err(e) => errors.push(e),
            }
        }
        for id in config.sources.keys() {
            match topology.build_source(config, id) {
                Ok(b) => built.push(b),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(StartError(errors));
        }
        run_healthchecks(healthchecks.take(), config.require_healthy).await?;
        // Consumers first, so nothing a source sends waits on a task not yet spawned.
        built.sort_by_key(|b| b.kind == ComponentKind::Source);
        for b in built {
            topology.spawn(b);
        }
        topology.health.set_running(true);
        Ok(topology)
    }

    /// A fresh input buffer for the consumer `id`: a sink's as its `buffer` says (a disk
    /// buffer already open is joined), a transform's the default.
    fn new_input(
        &self,
        config: &Config,
        kind: ComponentKind,
        id: &str,
    ) -> Result<(BufferSender, BufferReceiver), String> {
        let (buffer_config, type_name, table) = match kind {
            ComponentKind::Sink => {
                let s = &config.sinks[id];
                (s.buffer.clone(), s.type_name, "sinks")
            }
            _ => (
                BufferConfig::default(),
                config.transforms[id].type_name,
                "transforms",
            ),
        };
        buffer::buffer(
            &buffer_config,
            component_metrics(kind, id, type_name),
            &config.data_dir,
        )
        .map_err(|e| format!("[{table}.{id}] failed to start: buffer: {e}"))
    }

    /// The edges of output `name`, made empty if new.
    fn edge(&mut self, name: &str) -> Arc<Edges> {
        self.edges
            .entry(name.to_string())
            .or_insert_with(|| Edges::new(Vec::new()))
            .clone()
    }

    /// Points every output of `config` at the buffers of the consumers that list it.
    /// Outputs of components no longer in `config` are left as they are, so what those
    /// components drain still reaches their old consumers; the topology lets go of them.
    fn rewire(&mut self, config: &Config) {
        let w = wiring(config);
        for (output, consumers) in &w {
            let senders: Vec<BufferSender> = consumers
                .iter()
                .filter_map(|c| self.inputs.get(c).cloned())
                .collect();
            if senders.is_empty() && !output.contains('.') && config.sources.contains_key(output) {
                tracing::warn!(component_id = %output, "Source feeds no transform or sink; its events go nowhere.");
            }
            self.edge(output).replace(senders);
        }
        self.edges.retain(|name, _| w.contains_key(name));
    }

    fn build_source(&mut self, config: &Config, id: &str) -> Result<Built, String> {
        let s = &config.sources[id];
        let m = component_metrics(ComponentKind::Source, id, s.type_name);
        let token = self.shutdown.child_token();
        let cx = SourceContext {
            id: Arc::from(id),
            out: Fanout::on(self.edge(id), &m),
            shutdown: token.clone(),
            metrics: m,
            data_dir: config.data_dir.clone(),
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout_secs),
            acknowledgements: config.source_acknowledges(id),
        };
        let task = s
            .inner
            .build(cx)
            .map_err(|e| format!("[sources.{id}] failed to start: {e}"))?;
        Ok(Built {
            kind: ComponentKind::Source,
            id: Arc::from(id),
            task,
            token,
            probe: None,
        })
    }

    fn build_transform(
        &mut self,
        config: &Config,
        id: &str,
        rx: BufferReceiver,
    ) -> Result<Built, String> {
        let t = &config.transforms[id];
        let m = component_metrics(ComponentKind::Transform, id, t.type_name);
        let outputs = transform::TransformOutputs {
            default: Fanout::on(self.edge(id), &m),
            named: t
                .inner
                .outputs()
                .iter()
                .map(|name| Fanout::on(self.edge(&format!("{id}.{name}")), &m))
                .collect(),
        };
        let copies = if t.inner.concurrent() {
            transform_workers()
        } else {
            1
        };
        let mut tfs = (0..copies)
            .map(|_| {
                t.inner.build(TransformContext {
                    id: Arc::from(id),
                    metrics: m.clone(),
                    timezone: config.timezone,
                    data_dir: config.data_dir.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("[transforms.{id}] failed to start: {e}"))?;
        let token = rx.stop_token();
        let task = match tfs.pop() {
            Some(tf) if tfs.is_empty() => transform::run(tf, rx, outputs),
            Some(tf) => {
                tfs.push(tf);
                transform::run_concurrent(tfs, rx, outputs)
            }
            None => return Err(format!("[transforms.{id}] failed to start: no copy built")),
        };
        Ok(Built {
            kind: ComponentKind::Transform,
            id: Arc::from(id),
            task,
            token,
            probe: None,
        })
    }

    fn build_sink(
        &mut self,
        config: &Config,
        id: &str,
        rx: BufferReceiver,
        healthchecks: &Healthchecks,
    ) -> Result<Built, String> {
        let s = &config.sinks[id];
        let m = component_metrics(ComponentKind::Sink, id, s.type_name);
        let token = rx.stop_token();
        let probe = rx.probe();
        let dead_letter = match &s.dead_letter {
            Some(d) => Some(
                crate::sinks::util::dead_letter::DeadLetters::start(d, &m)
                    .map_err(|e| format!("[sinks.{id}] failed to start: {e}"))?,
            ),
            None => None,
        };
        let cx = SinkContext {
            id: Arc::from(id),
            input: rx,
            metrics: m,
            data_dir: config.data_dir.clone(),
            healthcheck: s.healthcheck.clone(),
            proxy: s.proxy.clone(),
            timezone: config.timezone,
            healthchecks: healthchecks.clone(),
            dead_letter,
        };
        let task = s
            .inner
            .build(cx)
            .map_err(|e| format!("[sinks.{id}] failed to start: {e}"))?;
        Ok(Built {
            kind: ComponentKind::Sink,
            id: Arc::from(id),
            task,
            token,
            probe: Some(probe),
        })
    }

    /// Starts a built component as the current instance of its ID; a previous instance
    /// moves to the retiring ones.
    fn spawn(&mut self, b: Built) {
        self.generation += 1;
        let generation = self.generation;
        let finished = CancellationToken::new();
        let done = finished.clone();
        let health = self.health.clone();
        let (kind, id) = (b.kind, b.id.clone());
        health.set(&id, kind, generation, true);
        let task = b.task;
        let handle = tokio::spawn(async move {
            // Cancelled even if the task is aborted or panics.
            let _done = done.drop_guard();
            task.await;
            health.set(&id, kind, generation, false);
        });
        let instance = Instance {
            kind: b.kind,
            id: b.id.clone(),
            token: b.token,
            finished,
            abort: handle.abort_handle(),
            probe: b.probe,
        };
        if let Some(old) = self.running.insert((b.kind, b.id.to_string()), instance) {
            self.retiring.push(old);
        }
    }

    /// Stops one component alone: a source stops accepting and drains; a transform or
    /// sink takes what its buffer holds, passes it on or delivers it, and ends. Its
    /// upstream then sees it gone. `false` when there is no such component.
    pub fn stop_component(&self, kind: ComponentKind, id: &str) -> bool {
        match self.running.get(&(kind, id.to_string())) {
            Some(i) => {
                i.token.cancel();
                true
            }
            None => false,
        }
    }

    /// Waits until every source has finished on its own (stdin closed, demo count reached).
    pub async fn sources_finished(&self) {
        for i in self.running.values() {
            if i.kind == ComponentKind::Source {
                i.finished.cancelled().await;
            }
        }
    }

    /// Stops the sources and waits, up to `timeout`, for everything in flight to drain.
    pub async fn stop(mut self, timeout: Duration) -> Stopped {
        self.health.set_running(false);
        self.shutdown.cancel();
        // Each buffer closes once the last output feeding it has finished.
        self.inputs.clear();
        self.edges.clear();
        let instances: Vec<Instance> = std::mem::take(&mut self.running)
            .into_values()
            .chain(std::mem::take(&mut self.retiring))
            .collect();
        for i in &instances {
            if i.kind == ComponentKind::Source {
                // Sources of a reload's old instances were stopped already; the rest now.
                i.token.cancel();
            }
        }
        let drain = async {
            for i in &instances {
                i.finished.cancelled().await;
            }
        };
        let stopped = match tokio::time::timeout(timeout, drain).await {
            Ok(()) => Stopped::Drained,
            Err(_) => {
                let mut undelivered = 0;
                for i in &instances {
                    let Some(probe) = &i.probe else { continue };
                    let lost = probe.in_memory();
                    if probe.durable() {
                        let kept = probe.queued();
                        if kept > 0 {
                            tracing::warn!(component_id = %i.id, waiting = kept, "Sink did not drain before shutdown_timeout_secs; its disk buffer keeps these events and delivers them after the next start.");
                        }
                        if lost > 0 {
                            undelivered += lost;
                            tracing::error!(component_id = %i.id, undelivered = lost, "Sink did not drain before shutdown_timeout_secs and its disk buffer is full; these events, queued in memory in front of it, are lost.");
                        }
                    } else if lost > 0 {
                        undelivered += lost;
                        tracing::error!(component_id = %i.id, undelivered = lost, "Sink did not drain before shutdown_timeout_secs; these events are lost.");
                    }
                }
                // What the aborted tasks drop was not delivered: its sources must not
                // checkpoint or commit past it.
                crate::event::finalizer_abandon_unanswered();
                for i in &instances {
                    i.abort.abort();
                }
                Stopped::TimedOut { undelivered }
            }
        };
        buffer::settle_disk_buffers().await;
        crate::sinks::file::settle_syncs(Duration::from_secs(30)).await;
        stopped
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
