//! Criterion benches of the simulator's kline model: any kline at any time,
//! no history generated before it.

use atm_sim::candles::{Gen, MINUTE};
use atm_sim::universe::{Universe, UniverseSpec};
use atm_store::{Interval, Market};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const NOW: i64 = 1_764_000_000_000;

fn klines(c: &mut Criterion) {
    let u = Universe::build(&UniverseSpec::Generated(100), 1, NOW).unwrap();
    let um = &u.market(Market::UsdM).listings;
    let spot = &u.market(Market::Spot).listings;
    let mut g = c.benchmark_group("sim_kline");
    // Random access: a new symbol and a random minute each time.
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("1m_random_symbol_and_time", |b| {
        b.iter(|| {
            i = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let l = &um[(i % um.len() as u64) as usize];
            let t = NOW - 1_000 * 86_400_000 + ((i >> 20) % (1_000 * 1440)) as i64 * MINUTE;
            Gen::new(&l.model, NOW).kline(Interval::M1, t)
        })
    });
    // Sequential: a day of 1m klines (what a limit-1000 page asks for).
    g.throughput(Throughput::Elements(1440));
    g.bench_function("1m_sequential_day", |b| {
        let gen = Gen::new(&um[0].model, NOW);
        let day = NOW - NOW % 86_400_000 - 30 * 86_400_000;
        b.iter(|| {
            (0..1440)
                .filter_map(|m| gen.kline(Interval::M1, day + m * MINUTE))
                .count()
        })
    });
    g.throughput(Throughput::Elements(3600));
    g.bench_function("1s_sequential_hour_spot", |b| {
        let gen = Gen::new(&spot[0].model, NOW);
        let hour = NOW - NOW % 3_600_000 - 48 * 3_600_000;
        b.iter(|| {
            (0..3600)
                .filter_map(|s| gen.kline(Interval::S1, hour + s * 1000))
                .count()
        })
    });
    // Higher intervals come from day and hour summaries, not from their minutes.
    g.throughput(Throughput::Elements(1));
    g.bench_function("1M_kline", |b| {
        let gen = Gen::new(&um[1].model, NOW);
        b.iter(|| gen.kline(Interval::Mo1, 1_706_745_600_000))
    });
    g.bench_function("1d_kline", |b| {
        let gen = Gen::new(&um[2].model, NOW);
        b.iter(|| gen.kline(Interval::D1, 1_706_745_600_000))
    });
    g.finish();
}

criterion_group!(benches, klines);
criterion_main!(benches);
