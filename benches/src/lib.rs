//! Helpers shared by atm's benchmarks and the `atm-peer` adapter.

#![forbid(unsafe_code)]

/// Sums `f32`s as numpy does, but more precisely: runs of 1024 values are
/// summed in `f32` by 16 independent accumulators (so the loop vectorises
/// and keeps a core's adders busy), and the runs' sums are added in `f64`.
/// Each `f32` accumulator adds at most 64 values, so the error stays near
/// 64 ulp of a run's sum whatever the length.
pub fn sum(xs: &[f32]) -> f64 {
    const RUN: usize = 1024;
    let mut total = 0f64;
    for run in xs.chunks(RUN) {
        let mut acc = [0f32; 16];
        let lanes = run.chunks_exact(16);
        let rest: f32 = lanes.remainder().iter().sum();
        for c in lanes {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a += x;
            }
        }
        total += acc.iter().map(|&a| a as f64).sum::<f64>() + rest as f64;
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_like_a_plain_loop() {
        // Exact in f32 (small halves), so every order of addition agrees.
        let xs: Vec<f32> = (0..3003).map(|i| (i % 97) as f32 * 0.5).collect();
        assert_eq!(super::sum(&xs), xs.iter().map(|&x| x as f64).sum::<f64>());
        // Inexact values: within 1e-6 of the f64 sum over 3.2M values.
        let ys: Vec<f32> = (0..3_200_000).map(|i| 1.0 + (i % 1000) as f32 * 0.001_37).collect();
        let want = ys.iter().map(|&x| x as f64).sum::<f64>();
        assert!((super::sum(&ys) - want).abs() / want < 1e-6);
    }
}
