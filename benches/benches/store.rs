//! In-process benchmarks of atm-store's hot paths on a BTCUSDT-1m-sized
//! series (3.2M rows): range read, tail, scan, appends with durable commits,
//! and opening a cold series. `cargo bench -p atm-benches`.

use std::hint::black_box;
use std::time::Duration;

use atm_benches::sum;
use atm_store::{Column, Interval, Kline, Market, SeriesKey, Store, StoreOptions};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const ROWS: u64 = 3_200_000;
const ORIGIN: i64 = 1_567_997_820_000; // 2019-09-09 02:57 UTC, as in shared/peers

fn key(sym: &str) -> SeriesKey {
    SeriesKey::parse(Market::Spot, sym, Interval::M1).expect("valid key")
}

fn kline(i: u64) -> Kline {
    let t = ORIGIN + i as i64 * 60_000;
    let p = 10_000.0 + ((i * 7919) % 1000) as f64 * 0.01;
    Kline {
        open_time: t,
        close_time: t + 59_999,
        values: [p, p + 1.0, p - 1.0, p + 0.5, 12.5, p * 12.5, 6.0, p * 6.0],
        trades: (i % 500) as u32,
    }
}

fn filled_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .expect("store");
    let mut w = store.writer().expect("writer");
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(400_000) {
        let ks: Vec<Kline> = chunk.iter().map(|&i| kline(i)).collect();
        w.put_many(&key("BTCUSDT"), &ks).expect("put");
        w.commit().expect("commit");
    }
    w.close().expect("close");
    (dir, store)
}

fn reads(c: &mut Criterion) {
    let (_dir, store) = filled_store();
    let s = store
        .series(&key("BTCUSDT"))
        .expect("open")
        .expect("exists");
    let mid = ORIGIN + (ROWS as i64 / 2) * 60_000;
    let mut g = c.benchmark_group("read");
    g.bench_function("range_30d_close_zero_copy_sum", |b| {
        b.iter(|| {
            s.view(mid, mid + 30 * 86_400_000 - 1, &[Column::Close], |v| {
                v.f32s(3).map(sum)
            })
            .expect("view")
        })
    });
    g.bench_function("range_30d_close_copy", |b| {
        b.iter(|| {
            s.view(mid, mid + 30 * 86_400_000 - 1, &[Column::Close], |v| {
                v.f32s(3).map(|x| x.to_vec())
            })
            .expect("view")
        })
    });
    g.bench_function("range_30d_klines", |b| {
        b.iter(|| {
            s.range(mid, mid + 30 * 86_400_000 - 1)
                .expect("range")
                .len()
        })
    });
    g.bench_function("tail_1000", |b| {
        b.iter(|| s.tail(1000).expect("tail").len())
    });
    g.bench_function("latest", |b| b.iter(|| s.latest().expect("latest")));
    g.bench_function("scan_sum_volume", |b| {
        b.iter(|| {
            s.view(i64::MIN, i64::MAX, &[Column::Volume], |v| {
                v.f32s(4).map(sum)
            })
            .expect("scan")
        })
    });
    g.bench_function("open_cold_series_and_latest", |b| {
        b.iter(|| {
            let fresh = Store::open(store.dir(), StoreOptions::default()).expect("open");
            black_box(
                fresh
                    .series(&key("BTCUSDT"))
                    .expect("series")
                    .expect("exists")
                    .latest()
                    .expect("latest"),
            )
        })
    });
    g.finish();
}

fn appends(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .expect("store");
    let mut w = store.writer().expect("writer");
    let mut next = 0u64;
    let mut g = c.benchmark_group("append");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("one_row_durable_commit", |b| {
        b.iter(|| {
            w.put(&key("ETHUSDT"), &kline(next)).expect("put");
            next += 1;
            w.commit().expect("commit")
        })
    });
    g.bench_function("1000_rows_durable_commit", |b| {
        b.iter_batched(
            || {
                let ks: Vec<Kline> = (next..next + 1000).map(kline).collect();
                next += 1000;
                ks
            },
            |ks| {
                w.put_many(&key("ETHUSDT"), &ks).expect("put");
                w.commit().expect("commit")
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("group_commit_100_series_1_row", |b| {
        b.iter(|| {
            for s in 0..100 {
                w.put(&key(&format!("S{s}USDT")), &kline(next))
                    .expect("put");
            }
            next += 1;
            w.commit().expect("commit")
        })
    });
    g.finish();
}

criterion_group!(benches, reads, appends);
criterion_main!(benches);
