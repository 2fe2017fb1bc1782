//! Quantile sketches with 1% relative error (DDSketch's logarithmic buckets): a value
//! lands in bucket `ceil(log_γ |x|)`, γ = 1.01/0.99, so any quantile comes back within
//! 1% of a true sample, whatever the distribution, and sketches merge by adding bucket
//! counts. Memory grows with the spread of the values (about 230 buckets per factor of
//! 10), never with how many there are.
//!
//! A window keeps the buckets of all its slices in one vector, 12 bytes a bucket
//! (bucket, weight, slice), sorted by slice and bucket: no map, no allocation per slice,
//! so 10,000 groups of a p99 rule over values that stay within a narrow range cost a
//! few hundred bytes each instead of a map per slice.

/// Relative accuracy.
const ALPHA: f64 = 0.01;

/// Values closer to 0 than this count as 0.
const MIN_MAGNITUDE: f64 = 1e-9;

/// Bucket keys of positive values start here (negative ones mirror it below 0; 0 is
/// zero), so keys sort in the order of the values they stand for.
const SIDE: i32 = 1 << 24;

fn gamma_ln() -> f64 {
    ((1.0 + ALPHA) / (1.0 - ALPHA)).ln()
}

fn index(magnitude: f64) -> i32 {
    (magnitude.ln() / gamma_ln()).ceil() as i32
}

fn value_of(index: i32) -> f64 {
    let g = gamma_ln().exp();
    2.0 * g.powi(index) / (g + 1.0)
}

/// The sortable key of `x`'s bucket.
fn key(x: f64) -> i32 {
    if x.abs() < MIN_MAGNITUDE {
        0
    } else if x > 0.0 {
        SIDE + index(x)
    } else {
        -(SIDE + index(-x))
    }
}

/// The value a bucket stands for.
fn value_of_key(k: i32) -> f64 {
    match k {
        0 => 0.0,
        k if k > 0 => value_of(k - SIDE),
        k => -value_of(-k - SIDE),
    }
}

#[derive(Clone, Copy, Debug)]
struct Bin {
    key: i32,
    weight: f32,
    slot: u8,
}

/// The buckets of every slice of one window. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Bins {
    bins: Vec<Bin>,
}

impl Bins {
    /// Adds `weight` occurrences of `x` to slice `slot` (NaN and weights ≤ 0 ignored).
    pub fn add(&mut self, slot: u8, x: f64, weight: f64) {
        if x.is_nan() || weight <= 0.0 {
            return;
        }
        let k = key(x);
        match self
            .bins
            .binary_search_by(|b| (b.slot, b.key).cmp(&(slot, k)))
        {
            Ok(i) => self.bins[i].weight += weight as f32,
            Err(i) => self.bins.insert(
                i,
                Bin {
                    key: k,
                    weight: weight as f32,
                    slot,
                },
            ),
        }
    }

    /// Empties slice `slot` (its time has come round again).
    pub fn clear_slot(&mut self, slot: u8) {
        self.bins.retain(|b| b.slot != slot);
        if self.bins.capacity() > 4 * self.bins.len().max(8) {
            self.bins.shrink_to_fit();
        }
    }

    /// The `q` quantile (0..=1) of the slices `live` accepts: the sample at rank
    /// `q × (n − 1)`. `None` when they hold nothing.
    pub fn quantile(&self, live: impl Fn(u8) -> bool, q: f64) -> Option<f64> {
        let mut merged: Vec<(i32, f64)> = self
            .bins
            .iter()
            .filter(|b| live(b.slot))
            .map(|b| (b.key, f64::from(b.weight)))
            .collect();
        merged.sort_unstable_by_key(|(k, _)| *k);
        let count: f64 = merged.iter().map(|(_, w)| w).sum();
        if count <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * (count - 1.0);
        let mut seen = 0.0;
        for (k, w) in &merged {
            seen += w;
            if seen > rank {
                return Some(value_of_key(*k));
            }
        }
        merged.last().map(|(k, _)| value_of_key(*k))
    }

    /// Buckets held, for tests of memory use.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.bins.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent_across_slices() {
        let mut b = Bins::default();
        for i in 1..=10_000 {
            let x = i as f64 * 0.37;
            b.add((i % 2) as u8, x, 1.0);
        }
        for (q, exact) in [(0.5, 1850.0), (0.9, 3330.0), (0.99, 3663.0)] {
            let got = b.quantile(|_| true, q).unwrap();
            assert!(
                (got - exact).abs() / exact < 0.011,
                "p{q}: {got} vs {exact}"
            );
        }
        // Only the odd values (slot 1): the median is near 1850 still; a cleared slot
        // counts for nothing.
        b.clear_slot(0);
        let odd = b.quantile(|s| s == 1, 0.5).unwrap();
        assert!((odd - 1850.0).abs() / 1850.0 < 0.011, "{odd}");
        let mut m = Bins::default();
        for x in [-5.0, 0.0, 2.0] {
            m.add(3, x, 1.0);
        }
        assert!((m.quantile(|_| true, 0.0).unwrap() + 5.0).abs() < 0.06);
        assert_eq!(m.quantile(|_| true, 0.5), Some(0.0));
        assert!((m.quantile(|_| true, 1.0).unwrap() - 2.0).abs() < 0.03);
        assert!(m.quantile(|s| s == 4, 0.5).is_none());
        assert!(Bins::default().quantile(|_| true, 0.5).is_none());
        assert_eq!(std::mem::size_of::<Bin>(), 12);
    }
}
