//! A mergeable quantile sketch with 1% relative error (DDSketch's logarithmic buckets):
//! a value lands in bucket `ceil(log_γ |x|)`, γ = 1.01/0.99, so any quantile comes back
//! within 1% of a true sample, whatever the distribution, and two sketches merge by
//! adding bucket counts. Memory grows with the spread of the values (about 230 buckets
//! per factor of 10), never with how many there are.

use std::collections::BTreeMap;

/// Relative accuracy.
const ALPHA: f64 = 0.01;

/// See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Sketch {
    positive: BTreeMap<i32, f64>,
    negative: BTreeMap<i32, f64>,
    zero: f64,
    count: f64,
}

fn gamma_ln() -> f64 {
    ((1.0 + ALPHA) / (1.0 - ALPHA)).ln()
}

/// Values closer to 0 than this count as 0.
const MIN_MAGNITUDE: f64 = 1e-9;

fn index(magnitude: f64) -> i32 {
    (magnitude.ln() / gamma_ln()).ceil() as i32
}

fn value_of(index: i32) -> f64 {
    let g = gamma_ln().exp();
    2.0 * g.powi(index) / (g + 1.0)
}

impl Sketch {
    /// Adds `weight` occurrences of `x` (NaN is ignored).
    pub fn add(&mut self, x: f64, weight: f64) {
        if x.is_nan() || weight <= 0.0 {
            return;
        }
        self.count += weight;
        if x.abs() < MIN_MAGNITUDE {
            self.zero += weight;
        } else if x > 0.0 {
            *self.positive.entry(index(x)).or_default() += weight;
        } else {
            *self.negative.entry(index(-x)).or_default() += weight;
        }
    }

    /// Adds another sketch's counts.
    pub fn merge(&mut self, other: &Sketch) {
        for (k, v) in &other.positive {
            *self.positive.entry(*k).or_default() += v;
        }
        for (k, v) in &other.negative {
            *self.negative.entry(*k).or_default() += v;
        }
        self.zero += other.zero;
        self.count += other.count;
    }

    /// Empties it, keeping nothing.
    pub fn clear(&mut self) {
        self.positive.clear();
        self.negative.clear();
        self.zero = 0.0;
        self.count = 0.0;
    }

    /// The `q` quantile (0..=1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * (self.count - 1.0);
        let mut seen = 0.0;
        for (k, v) in self.negative.iter().rev() {
            seen += v;
            if seen > rank {
                return Some(-value_of(*k));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (k, v) in &self.positive {
            seen += v;
            if seen > rank {
                return Some(value_of(*k));
            }
        }
        self.positive.keys().next_back().map(|k| value_of(*k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent_and_sketches_merge() {
        let mut a = Sketch::default();
        let mut b = Sketch::default();
        for i in 1..=10_000 {
            let x = i as f64 * 0.37;
            if i % 2 == 0 { &mut a } else { &mut b }.add(x, 1.0);
        }
        a.merge(&b);
        for (q, exact) in [(0.5, 1850.0), (0.9, 3330.0), (0.99, 3663.0)] {
            let got = a.quantile(q).unwrap();
            assert!(
                (got - exact).abs() / exact < 0.011,
                "p{q}: {got} vs {exact}"
            );
        }
        let mut m = Sketch::default();
        for x in [-5.0, 0.0, 2.0] {
            m.add(x, 1.0);
        }
        assert!((m.quantile(0.0).unwrap() + 5.0).abs() < 0.06);
        assert_eq!(m.quantile(0.5), Some(0.0));
        assert!(Sketch::default().quantile(0.5).is_none());
    }
}
