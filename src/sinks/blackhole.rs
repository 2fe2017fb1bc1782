//! `blackhole` sink: counts events and discards them, for benchmarks and for trying a
//! pipeline without a destination.

use crate::event::EventFinalizers;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// `[sinks.ID] type = "blackhole"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeConfig {
    /// Log the running totals this often; 0 turns the report off. Default 1, as in Vector.
    #[serde(default = "default_print_interval")]
    pub print_interval_secs: u64,
    /// Take at most this many events per second (pushing back on the sources, as a
    /// slow destination would); unlimited when absent. Vector's option, for testing
    /// backpressure.
    pub rate: Option<u64>,
}

fn default_print_interval() -> u64 {
    1
}

impl SinkConfig for BlackholeConfig {
    fn build(&self, mut cx: SinkContext) -> Result<Task, BuildError> {
        let interval = Duration::from_secs(self.print_interval_secs);
        let rate = self.rate.filter(|r| *r > 0);
        Ok(Box::pin(async move {
            let (mut events, mut last) = (0u64, Instant::now());
            // When the next batch may be taken: each batch moves it on by its share of a
            // second at `rate`; idle time builds up no credit.
            let mut next = Instant::now();
            while let Some(mut batch) = cx.input.recv().await {
                let n = batch.len() as u64;
                if let Some(rate) = rate {
                    tokio::time::sleep_until(next.into()).await;
                    next =
                        next.max(Instant::now()) + Duration::from_secs_f64(n as f64 / rate as f64);
                }
                for e in batch.iter_mut() {
                    let f: EventFinalizers = e.take_finalizers();
                    if !f.is_empty() {
                        f.update_status(crate::event::BatchStatus::Delivered);
                    }
                }
                drop(batch);
                cx.metrics.sent_events.increment(n);
                events += n;
                if !interval.is_zero() && last.elapsed() >= interval {
                    tracing::info!(component_id = %cx.id, events, "Blackhole totals.");
                    last = Instant::now();
                }
            }
        }))
    }
}
