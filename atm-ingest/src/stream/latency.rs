//! Latencies as `atm stream` records them: the log2 histogram that status
//! pages publish, and a uniform sample of the values for exact quantiles
//! (a log2 bucket cannot tell 17 ms from 31 ms).

use atm_store::prd::Histogram;

/// Values kept for quantiles: all of them up to this many, then a uniform
/// sample of this size (reservoir sampling), 256 KiB.
const SAMPLES: usize = 65_536;

/// One latency's record, µs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Latency {
    /// Every value, in log2 buckets.
    pub histogram: Histogram,
    samples: Vec<u32>,
    /// A xorshift state for the reservoir's choices (deterministic).
    rng: u64,
}

impl Latency {
    /// Records one value, µs.
    pub fn record(&mut self, us: u64) {
        self.histogram.record(us);
        let v = us.min(u32::MAX as u64) as u32;
        if self.samples.len() < SAMPLES {
            self.samples.push(v);
            return;
        }
        // Algorithm R: the n-th value replaces a kept one with probability SAMPLES/n.
        self.rng = if self.rng == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            self.rng
        };
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let i = self.rng % self.histogram.count;
        if let Some(slot) = self.samples.get_mut(i as usize) {
            *slot = v;
        }
    }

    /// The `q` quantile (0..=1) of the values, µs; 0 when there are none.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.samples.is_empty() {
            return 0;
        }
        let mut v = self.samples.clone();
        let rank = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len());
        let (_, x, _) = v.select_nth_unstable(rank - 1);
        *x as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_below_the_sample_size_and_close_above() {
        let mut l = Latency::default();
        assert_eq!(l.quantile(0.99), 0);
        for v in 1..=1000 {
            l.record(v);
        }
        assert_eq!(
            (l.quantile(0.5), l.quantile(0.99), l.quantile(1.0)),
            (500, 990, 1000)
        );
        assert_eq!(l.histogram.count, 1000);
        // Ten times the sample size, uniform: the sample's p99 stays close.
        let mut l = Latency::default();
        for i in 0..10 * SAMPLES as u64 {
            l.record(i % 10_000);
        }
        let p99 = l.quantile(0.99) as i64;
        assert!((p99 - 9_900).abs() < 100, "p99 {p99}");
    }
}
