//! A sliding window per alert group: a ring of sub-buckets, each the summary (count,
//! sum, min, max, and for quantile rules a sketch) of one slice of ingest time. Adding a
//! value touches one bucket (O(1)); the window's value is the merge of the buckets still
//! inside it; memory is fixed by the number of buckets, however many events arrive.

use super::sketch::Bins;

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

/// Summary of one slice for sum, avg, min and max rules.
#[derive(Clone, Copy, Debug)]
struct Stat {
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
}

const EMPTY_STAT: Stat = Stat {
    count: 0.0,
    sum: 0.0,
    min: f64::INFINITY,
    max: f64::NEG_INFINITY,
};

/// What each slice keeps: no more than the rule's aggregate needs (a count rule's
/// window is 30 numbers).
#[derive(Clone, Debug)]
enum Data {
    /// count, rate, absent: how many per slice.
    Counts(Box<[f64; SLICES]>),
    /// sum, avg, min, max.
    Stats(Box<[Stat; SLICES]>),
    /// Quantiles: how many per slice, and every slice's sketch buckets in one vector.
    Quantiles(Box<[f64; SLICES]>, Bins),
}

/// See the module documentation. Times are milliseconds of ingest time.
#[derive(Clone, Debug)]
pub struct Window {
    slice_ms: u64,
    /// The newest slice written (ingest time / slice width, + 1); 0 before any. A slot
    /// holds the slice whose number is congruent to it and at most `head`; the ones
    /// `head` passed over are emptied as it moves, so no slice carries its number.
    head: u64,
    data: Data,
}

impl Window {
    /// An empty window of `window_ms`, keeping what `agg` needs.
    pub fn new(window_ms: u64, agg: Agg) -> Self {
        let data = match agg {
            Agg::Count | Agg::Rate | Agg::Absent => Data::Counts(Box::new([0.0; SLICES])),
            Agg::Sum | Agg::Avg | Agg::Min | Agg::Max => {
                Data::Stats(Box::new([EMPTY_STAT; SLICES]))
            }
            Agg::Quantile(_) => Data::Quantiles(Box::new([0.0; SLICES]), Bins::default()),
        };
        Self {
            slice_ms: (window_ms / SLICES as u64).max(1),
            head: 0,
            data,
        }
    }

    fn epoch(&self, now_ms: u64) -> u64 {
        now_ms / self.slice_ms + 1
    }

    /// Moves `head` to `epoch`, emptying the slots of the slices passed over.
    fn advance(&mut self, epoch: u64) {
        if epoch <= self.head {
            return;
        }
        let from = self.head.max(epoch.saturating_sub(SLICES as u64)) + 1;
        for e in from..=epoch {
            let slot = (e % SLICES as u64) as usize;
            match &mut self.data {
                Data::Counts(c) => c[slot] = 0.0,
                Data::Stats(s) => s[slot] = EMPTY_STAT,
                Data::Quantiles(c, bins) => {
                    if c[slot] != 0.0 {
                        bins.clear_slot(slot as u8);
                    }
                    c[slot] = 0.0;
                }
            }
        }
        self.head = epoch;
    }

    /// Counts `weight` occurrences of `value` at `now_ms`.
    pub fn add(&mut self, now_ms: u64, value: f64, weight: f64) {
        let epoch = self.epoch(now_ms).max(self.head);
        self.advance(epoch);
        let slot = (epoch % SLICES as u64) as usize;
        match &mut self.data {
            Data::Counts(c) => c[slot] += weight,
            Data::Stats(s) => {
                let s = &mut s[slot];
                s.count += weight;
                s.sum += value * weight;
                s.min = s.min.min(value);
                s.max = s.max.max(value);
            }
            Data::Quantiles(c, bins) => {
                c[slot] += weight;
                bins.add(slot as u8, value, weight);
            }
        }
    }

    /// Whether slot `slot` holds a slice inside the window that ends at `now_ms`.
    fn live_slots(&self, now_ms: u64) -> [bool; SLICES] {
        let current = self.epoch(now_ms);
        let oldest = current.saturating_sub(SLICES as u64 - 1).max(1);
        let mut live = [false; SLICES];
        if self.head == 0 {
            return live;
        }
        // The slices held are head − 29 ..= head.
        let held_from = self.head.saturating_sub(SLICES as u64 - 1).max(1);
        for e in held_from.max(oldest)..=self.head.min(current) {
            live[(e % SLICES as u64) as usize] = true;
        }
        live
    }

    /// Whether anything was added inside the window.
    pub fn is_empty(&self, now_ms: u64) -> bool {
        self.value(Agg::Count, now_ms).is_none_or(|c| c == 0.0)
    }

    /// The window's value at `now_ms`; `None` when it holds no value to aggregate (min,
    /// max, avg, quantile of nothing), or this window does not keep what `agg` needs.
    pub fn value(&self, agg: Agg, now_ms: u64) -> Option<f64> {
        let live = self.live_slots(now_ms);
        let counts = |c: &[f64; SLICES]| -> f64 {
            // `+ 0.0`: an empty f64 sum is -0.0, which would print as "-0".
            c.iter()
                .zip(live)
                .filter(|(_, l)| *l)
                .map(|(v, _)| v)
                .sum::<f64>()
                + 0.0
        };
        let count = match &self.data {
            Data::Counts(c) | Data::Quantiles(c, _) => counts(c),
            Data::Stats(s) => {
                s.iter()
                    .zip(live)
                    .filter(|(_, l)| *l)
                    .map(|(s, _)| s.count)
                    .sum::<f64>()
                    + 0.0
            }
        };
        let stats = || match &self.data {
            Data::Stats(s) => Some(s.iter().zip(live).filter(|(_, l)| *l).map(|(s, _)| *s)),
            _ => None,
        };
        match agg {
            Agg::Count | Agg::Absent => Some(count),
            Agg::Rate => Some(count / (self.slice_ms * SLICES as u64) as f64 * 1000.0),
            Agg::Sum => stats().map(|s| s.map(|s| s.sum).sum::<f64>() + 0.0),
            _ if count == 0.0 => None,
            Agg::Avg => stats().map(|s| s.map(|s| s.sum).sum::<f64>() / count),
            Agg::Min => stats().and_then(|s| s.map(|s| s.min).reduce(f64::min)),
            Agg::Max => stats().and_then(|s| s.map(|s| s.max).reduce(f64::max)),
            Agg::Quantile(q) => match &self.data {
                Data::Quantiles(_, bins) => bins.quantile(|slot| live[slot as usize], q),
                _ => None,
            },
        }
    }

    /// Heap bytes this window holds besides itself, for tests of memory use.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        match &self.data {
            Data::Counts(_) => std::mem::size_of::<[f64; SLICES]>(),
            Data::Stats(_) => std::mem::size_of::<[Stat; SLICES]>(),
            Data::Quantiles(_, b) => std::mem::size_of::<[f64; SLICES]>() + b.len() * 12,
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
        let mut w = Window::new(10_000, Agg::Max);
        let mut p = Window::new(10_000, Agg::Quantile(0.9));
        for (i, v) in [5.0, 1.0, 9.0, 3.0].iter().enumerate() {
            w.add(i as u64 * 1000, *v, 1.0);
            p.add(i as u64 * 1000, *v, 1.0);
        }
        assert_eq!(w.value(Agg::Sum, 3_000), Some(18.0));
        assert_eq!(w.value(Agg::Avg, 3_000), Some(4.5));
        assert_eq!(w.value(Agg::Min, 3_000), Some(1.0));
        assert_eq!(w.value(Agg::Max, 3_000), Some(9.0));
        assert_eq!(p.value(Agg::Count, 3_000), Some(4.0));
        // Rank q × (n − 1), the sample at or above it: of 1, 3, 5, 9 the p90 is 5
        // (within the sketch's 1%), the p100 9.
        let p90 = p.value(Agg::Quantile(0.9), 3_000).unwrap();
        assert!((p90 - 5.0).abs() < 0.06, "{p90}");
        let p100 = p.value(Agg::Quantile(1.0), 3_000).unwrap();
        assert!((p100 - 9.0).abs() < 0.1, "{p100}");
        // The 5 and the 1 have left at 11.5 s.
        assert_eq!(w.value(Agg::Min, 11_500), Some(3.0));
        let p0 = p.value(Agg::Quantile(0.0), 11_500).unwrap();
        assert!((p0 - 3.0).abs() < 0.04, "{p0}");
        let empty = Window::new(10_000, Agg::Max);
        assert_eq!(empty.value(Agg::Max, 0), None);
        assert_eq!(empty.value(Agg::Sum, 0), Some(0.0));
    }

    #[test]
    fn a_window_keeps_only_what_its_aggregate_needs() {
        let mut c = Window::new(300_000, Agg::Count);
        let mut q = Window::new(300_000, Agg::Quantile(0.99));
        // Ten minutes of one event a second with a value from a narrow range.
        for t in 0..600u64 {
            c.add(t * 1000, 1.0, 1.0);
            q.add(t * 1000, 100.0 + (t % 3) as f64, 1.0);
        }
        assert_eq!(c.heap_bytes(), 240);
        // 30 slices × 3 buckets, after slices were reused twice over.
        assert!(q.heap_bytes() <= 240 + 30 * 3 * 12, "{}", q.heap_bytes());
        assert!(
            std::mem::size_of::<Window>() <= 48,
            "{}",
            std::mem::size_of::<Window>()
        );
        assert_eq!(c.value(Agg::Count, 599_999), Some(300.0));
    }
}
