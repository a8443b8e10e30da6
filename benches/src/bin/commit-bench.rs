//! One group commit that adds a single kline to each of thousands of
//! series, as `atm stream` does at every minute boundary (issue #8's
//! commit-lag target: p99 < 20 ms).
//!
//! `cargo run --release -p atm-benches --bin commit-bench [-- SERIES [MINUTES]]`

#![forbid(unsafe_code)]

use std::time::Instant;

use atm_store::{Interval, Kline, Market, SeriesKey, Store, StoreOptions};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let minutes: i64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    // `synced`: the series files are synced between minutes, as the
    // kernel's writeback and `atm stream`'s checkpoints do: their pages
    // are clean again, and the next write to each one faults.
    let synced = std::env::args().nth(3).as_deref() == Some("synced");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let keys: Vec<SeriesKey> = (0..n)
        .map(|i| SeriesKey::parse(Market::UsdM, &format!("S{i}USDT"), Interval::M1).unwrap())
        .collect();
    let t0: i64 = 1_764_000_000_000; // a minute boundary
    let k = |t: i64| Kline {
        open_time: t,
        close_time: t + 59_999,
        values: [1.0; 8],
        trades: 1,
    };
    // A day of history in each series.
    let mut w = store.writer().unwrap();
    w.set_open_files(2 * n + 64);
    for key in &keys {
        let day: Vec<Kline> = (0..1440).map(|m| k(t0 - (1440 - m) * 60_000)).collect();
        w.put_many(key, &day).unwrap();
    }
    let t = Instant::now();
    w.commit().unwrap();
    println!(
        "{n} series, a day of 1m each: first commit {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    // Then minute after minute: one kline per series, one commit.
    let mut times = Vec::new();
    for minute in 0..minutes {
        if synced {
            w.checkpoint().unwrap();
        }
        for key in &keys {
            w.put(key, &k(t0 + minute * 60_000)).unwrap();
        }
        let t = Instant::now();
        w.commit().unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "one kline in each of {n} series, one commit: median {:.1} ms, max {:.1} ms ({minutes} minutes{})",
        times[times.len() / 2],
        times[times.len() - 1],
        if synced { ", files synced before each" } else { "" }
    );
    // New series (a fresh store under `atm stream`, or every series
    // crossing into a new block): prepared, then their first kline each.
    let fresh: Vec<SeriesKey> = (0..n)
        .map(|i| SeriesKey::parse(Market::UsdM, &format!("N{i}USDT"), Interval::M1).unwrap())
        .collect();
    let t = Instant::now();
    for key in &fresh {
        w.prepare(key, t0).unwrap();
    }
    if synced {
        // Written back before their first close, then armed again.
        w.checkpoint().unwrap();
        for key in &fresh {
            w.prepare(key, t0).unwrap();
        }
    }
    let prepared = t.elapsed().as_secs_f64() * 1e3;
    for key in &fresh {
        w.put(key, &k(t0)).unwrap();
    }
    let t = Instant::now();
    w.commit().unwrap();
    println!(
        "{n} new series: preparing them {prepared:.1} ms, then the commit of their first kline {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    // A new writer (a restarted `atm stream`) opens every series first,
    // then commits the next minute.
    w.close().unwrap();
    let mut w = store.writer().unwrap();
    w.set_open_files(2 * n + 64);
    let t = Instant::now();
    for key in &keys {
        w.prepare(key, t0 + 60 * 60_000).unwrap();
    }
    let opened = t.elapsed().as_secs_f64() * 1e3;
    for key in &keys {
        w.put(key, &k(t0 + minutes * 60_000)).unwrap();
    }
    let t = Instant::now();
    w.commit().unwrap();
    println!(
        "a new writer: opening the {n} series {opened:.1} ms, then its first commit {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
