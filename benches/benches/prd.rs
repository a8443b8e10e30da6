//! Criterion benches of the PRD status segment (issue #7's targets): one
//! seqlocked slot update (< 50 ns) and a reader's snapshot of 10,000 slots
//! (< 1 ms).

use atm_store::prd::{Histogram, PrdReader, PrdWriter, SlotKind, SlotSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn prd(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut specs: Vec<SlotSpec> = (0..9_000)
        .map(|i| SlotSpec::new(&format!("c.{i}"), SlotKind::Counter, ""))
        .collect();
    specs.extend((0..900).map(|i| SlotSpec::new(&format!("k.{i}"), SlotKind::Kline, "")));
    specs.extend((0..100).map(|i| SlotSpec::new(&format!("h.{i}"), SlotKind::Histogram, "us")));
    let w = PrdWriter::create(dir.path(), "bench", &specs).unwrap();
    let counter = w.slot("c.17").unwrap();
    let kline = w.slot("k.17").unwrap();
    let hist = w.slot("h.17").unwrap();
    let k = atm_store::Kline {
        open_time: 60_000,
        close_time: 119_999,
        values: [1.0; 8],
        trades: 3,
    };
    let mut h = Histogram::default();
    (0..1000).for_each(|v| h.record(v * 37));
    let mut g = c.benchmark_group("prd");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    g.bench_function("update_counter", |b| {
        b.iter(|| {
            n += 1;
            w.set_u64(counter, n)
        })
    });
    g.bench_function("update_kline", |b| b.iter(|| w.set_kline(kline, &k)));
    g.bench_function("update_histogram", |b| b.iter(|| w.set_histogram(hist, &h)));
    let mut r = PrdReader::open(w.path()).unwrap();
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("snapshot_10000_slots", |b| {
        b.iter(|| r.snapshot().unwrap().len())
    });
    g.finish();
}

criterion_group!(benches, prd);
criterion_main!(benches);
