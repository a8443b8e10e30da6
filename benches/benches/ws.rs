//! Criterion bench of `atm stream`'s message parser: kline events of the
//! real capture, combined form (target: 200,000 events/s parsed and applied).

use atm_ingest::ws_event::parse;
use atm_store::Precision;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn ws(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/binance/ws/um_kline_events_2021-07-22.extracted.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut g = c.benchmark_group("ws_event");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_kline_events", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| parse(l, Precision::F32).is_ok())
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, ws);
criterion_main!(benches);
