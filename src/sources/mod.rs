//! Sources: where events enter the graph. Register a new one with one line below.

pub mod demo;
pub mod file;
pub mod http_server;
pub mod internal_metrics;
pub mod kafka;
pub mod stdin;
pub mod syslog;
pub mod util;

use crate::topology::component::{source, Registration, SourceConfig};

/// Every source type by its `type` name.
pub static REGISTRY: &[Registration<dyn SourceConfig>] = &[
    source::<syslog::SyslogConfig>("syslog"),
    source::<stdin::StdinConfig>("stdin"),
    source::<demo::DemoConfig>("demo_logs"),
    source::<demo::DemoConfig>("demo"),
    source::<file::FileConfig>("file"),
    source::<http_server::HttpServerConfig>("http_server"),
    source::<http_server::HttpServerConfig>("http"),
    source::<internal_metrics::InternalMetricsConfig>("internal_metrics"),
    source::<kafka::KafkaSourceConfig>("kafka"),
];

use crate::event::Batch;
use crate::internal_events::ComponentMetrics;
use crate::topology::fanout::Fanout;

/// Counts a batch as received and passes it on, leaving `batch` empty for reuse.
/// Returns `false` once nothing downstream listens any more, so the source can stop.
pub(crate) async fn send_batch(
    batch: &mut Batch,
    metrics: &ComponentMetrics,
    out: &Fanout,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    metrics.received_events.increment(batch.len() as u64);
    let full = std::mem::replace(batch, Vec::with_capacity(64));
    out.send(full).await.is_ok()
}
