//! A sliding window per alert group: a ring of sub-buckets, each the summary (count,
//! sum, min, max, and for quantile rules a sketch) of one slice of ingest time. Adding a
//! value touches one bucket (O(1)); the window's value is the merge of the buckets still
//! inside it; memory is fixed by the number of buckets, however many events arrive.

use super::sketch::Sketch;

/// How many slices a window is cut into: the window slides in steps of
/// `window / SLICES`, so a value leaves it at most that late.
pub const SLICES: usize = 30;

/// What a rule computes over its window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Agg {
    /// Events (or counter increases) in the window.
    Count,
    /// `Count` per second of window.
    Rate,
    /// Sum of the values.
    Sum,
    /// Mean of the values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// A quantile (0..1) of the values, from a sketch.
    Quantile(f64),
    /// Events in the window, for a rule that fires on silence.
    Absent,
}

impl Agg {
    /// Whether the rule needs a value per event (not only that it happened).
    pub fn needs_value(self) -> bool {
        !matches!(self, Agg::Count | Agg::Rate | Agg::Absent)
    }
}

#[derive(Clone, Debug, Default)]
struct Slice {
    /// Which slice of time (ingest time / slice width) this bucket holds; a bucket whose
    /// epoch is not current is stale and counts for nothing.
    epoch: u64,
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
    sketch: Option<Sketch>,
}

/// See the module documentation. Times are milliseconds of ingest time.
#[derive(Clone, Debug)]
pub struct Window {
    slice_ms: u64,
    slices: Vec<Slice>,
    quantiles: bool,
}

impl Window {
    /// An empty window of `window_ms`, with sketches when `agg` is a quantile.
    pub fn new(window_ms: u64, agg: Agg) -> Self {
        Self {
            slice_ms: (window_ms / SLICES as u64).max(1),
            slices: vec![Slice::default(); SLICES],
            quantiles: matches!(agg, Agg::Quantile(_)),
        }
    }

    fn slice(&mut self, now_ms: u64) -> &mut Slice {
        let epoch = now_ms / self.slice_ms + 1;
        let quantiles = self.quantiles;
        let s = &mut self.slices[(epoch % SLICES as u64) as usize];
        if s.epoch != epoch {
            *s = Slice {
                epoch,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                sketch: if quantiles {
                    Some(s.sketch.take().map_or_else(Sketch::default, |mut k| {
                        k.clear();
                        k
                    }))
                } else {
                    None
                },
                ..Slice::default()
            };
        }
        s
    }

    /// Counts `weight` occurrences of `value` at `now_ms`.
    pub fn add(&mut self, now_ms: u64, value: f64, weight: f64) {
        let s = self.slice(now_ms);
        s.count += weight;
        s.sum += value * weight;
        s.min = s.min.min(value);
        s.max = s.max.max(value);
        if let Some(k) = &mut s.sketch {
            k.add(value, weight);
        }
    }

    /// The slices inside the window that ends at `now_ms`.
    fn live(&self, now_ms: u64) -> impl Iterator<Item = &Slice> {
        let current = now_ms / self.slice_ms + 1;
        let oldest = current.saturating_sub(SLICES as u64 - 1);
        self.slices
            .iter()
            .filter(move |s| s.epoch >= oldest && s.epoch <= current && s.epoch > 0)
    }

    /// Whether anything was added inside the window.
    pub fn is_empty(&self, now_ms: u64) -> bool {
        self.live(now_ms).all(|s| s.count == 0.0)
    }

    /// The window's value at `now_ms`; `None` when it holds no value to aggregate (min,
    /// max, avg, quantile of nothing).
    pub fn value(&self, agg: Agg, now_ms: u64) -> Option<f64> {
        let live = || self.live(now_ms);
        // `+ 0.0`: an empty f64 sum is -0.0, which would print as "-0".
        let count: f64 = live().map(|s| s.count).sum::<f64>() + 0.0;
        match agg {
            Agg::Count | Agg::Absent => Some(count),
            Agg::Rate => Some(count / (self.slice_ms * SLICES as u64) as f64 * 1000.0),
            Agg::Sum => Some(live().map(|s| s.sum).sum::<f64>() + 0.0),
            _ if count == 0.0 => None,
            Agg::Avg => Some(live().map(|s| s.sum).sum::<f64>() / count),
            Agg::Min => live().map(|s| s.min).reduce(f64::min),
            Agg::Max => live().map(|s| s.max).reduce(f64::max),
            Agg::Quantile(q) => {
                let mut merged = Sketch::default();
                for s in live() {
                    if let Some(k) = &s.sketch {
                        merged.merge(k);
                    }
                }
                merged.quantile(q)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_leave_the_window_slice_by_slice() {
        // 30 s window of 1 s slices.
        let mut w = Window::new(30_000, Agg::Count);
        for t in 0..10 {
            w.add(t * 1000, 1.0, 1.0);
        }
        assert_eq!(w.value(Agg::Count, 9_999), Some(10.0));
        assert_eq!(w.value(Agg::Rate, 9_999), Some(10.0 / 30.0));
        // At 35 s the slices of 0..5 s have left.
        assert_eq!(w.value(Agg::Count, 35_000), Some(4.0));
        assert!(!w.is_empty(38_000));
        assert!(w.is_empty(40_000));
        assert_eq!(w.value(Agg::Count, 100_000), Some(0.0));
        // A slot reused after a full turn starts empty.
        w.add(100_000, 1.0, 1.0);
        assert_eq!(w.value(Agg::Count, 100_000), Some(1.0));
    }

    #[test]
    fn sum_avg_min_max_and_quantiles_over_the_live_slices() {
        let mut w = Window::new(10_000, Agg::Quantile(0.9));
        for (i, v) in [5.0, 1.0, 9.0, 3.0].iter().enumerate() {
            w.add(i as u64 * 1000, *v, 1.0);
        }
        assert_eq!(w.value(Agg::Sum, 3_000), Some(18.0));
        assert_eq!(w.value(Agg::Avg, 3_000), Some(4.5));
        assert_eq!(w.value(Agg::Min, 3_000), Some(1.0));
        assert_eq!(w.value(Agg::Max, 3_000), Some(9.0));
        // Rank q × (n − 1), the sample at or above it: of 1, 3, 5, 9 the p90 is 5
        // (within the sketch's 1%), the p100 9.
        let p90 = w.value(Agg::Quantile(0.9), 3_000).unwrap();
        assert!((p90 - 5.0).abs() < 0.06, "{p90}");
        let p100 = w.value(Agg::Quantile(1.0), 3_000).unwrap();
        assert!((p100 - 9.0).abs() < 0.1, "{p100}");
        // The 5 and the 1 have left at 11.5 s.
        assert_eq!(w.value(Agg::Min, 11_500), Some(3.0));
        let empty = Window::new(10_000, Agg::Max);
        assert_eq!(empty.value(Agg::Max, 0), None);
        assert_eq!(empty.value(Agg::Sum, 0), Some(0.0));
    }
}
