//! Helpers shared by atm's benchmarks and the `atm-peer` adapter.

#![forbid(unsafe_code)]

/// Sums `f32`s in `f64` with 8 independent accumulators, so the loop
/// vectorises instead of waiting on the latency of each addition.
pub fn sum(xs: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = xs.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&x| x as f64).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x as f64;
        }
    }
    acc.iter().sum::<f64>() + rest
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_like_a_plain_loop() {
        let xs: Vec<f32> = (0..1003).map(|i| i as f32 * 0.5).collect();
        assert_eq!(super::sum(&xs), xs.iter().map(|&x| x as f64).sum::<f64>());
    }
}
