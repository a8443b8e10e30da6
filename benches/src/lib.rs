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

/// The peers' kind of series: a random walk of the close on a 0.01 tick,
/// open = previous close, high/low around them, volumes on a 1e-5 lot.
pub fn peers_walk(n: usize) -> ([Vec<f32>; 8], Vec<u32>) {
    let mut state = 20_190_909u64;
    let mut next = || {
        // splitmix64, uniform in [0, 1)
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let tick = |p: f64| (p * 100.0).round() / 100.0;
    let lot = |v: f64| (v * 1e5).round() / 1e5;
    let mut cols: [Vec<f32>; 8] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut trades = Vec::with_capacity(n);
    let mut close = 10_000.0f64;
    for _ in 0..n {
        let open = close;
        close = tick((close * (1.0 + (next() - 0.5) * 0.002)).max(1.0));
        let high = tick(open.max(close) * (1.0 + next() * 0.001));
        let low = tick(open.min(close) * (1.0 - next() * 0.001));
        let volume = lot(next() * 50.0);
        let taker = lot(volume * next());
        for (c, v) in [
            open,
            high,
            low,
            close,
            volume,
            lot(volume * close),
            taker,
            lot(taker * close),
        ]
        .into_iter()
        .enumerate()
        {
            cols[c].push(v as f32);
        }
        trades.push((next() * 2000.0) as u32);
    }
    (cols, trades)
}

/// (CPU seconds used so far, peak resident MB) of this process, from /proc.
pub fn cpu_and_peak() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, peak / 1024.0)
}

/// This process's resident memory now (MB): `VmRSS` from /proc.
pub fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// This process's anonymous (heap) resident memory now, MB: the part of
/// its footprint that is not the store's mapped file pages.
pub fn anon_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_like_a_plain_loop() {
        // Exact in f32 (small halves), so every order of addition agrees.
        let xs: Vec<f32> = (0..3003).map(|i| (i % 97) as f32 * 0.5).collect();
        assert_eq!(super::sum(&xs), xs.iter().map(|&x| x as f64).sum::<f64>());
        // Inexact values: within 1e-6 of the f64 sum over 3.2M values.
        let ys: Vec<f32> = (0..3_200_000)
            .map(|i| 1.0 + (i % 1000) as f32 * 0.001_37)
            .collect();
        let want = ys.iter().map(|&x| x as f64).sum::<f64>();
        assert!((super::sum(&ys) - want).abs() / want < 1e-6);
    }
}
