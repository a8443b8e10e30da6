//! Model-based tests: random sequences of writes, commits, rollbacks and
//! reopens against an in-memory model (a BTreeMap per series).

use std::collections::{BTreeMap, BTreeSet};

use atm_store::{Interval, Kline, Market, SeriesKey, SlotState, Store, StoreOptions};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Put {
        series: usize,
        slot: u64,
        seed: u32,
    },
    PutRun {
        series: usize,
        slot: u64,
        len: u64,
        seed: u32,
    },
    PutIrregular {
        series: usize,
        slot: u64,
        seed: u32,
    },
    Missing {
        series: usize,
        slot: u64,
        len: u64,
    },
    Columns {
        series: usize,
        slot: u64,
        len: u64,
        seed: u32,
    },
    Commit,
    Rollback,
    Reopen,
}

fn keys() -> Vec<SeriesKey> {
    vec![
        SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap(),
        SeriesKey::parse(Market::UsdM, "币安人生USDT", Interval::M1).unwrap(),
        SeriesKey::parse(Market::CoinM, "BTCUSD_PERP", Interval::Mo1).unwrap(),
    ]
}

/// Slots span a few blocks, crossing block boundaries (4096 slots each).
const BASE: u64 = 3_000_000;
const SPAN: u64 = 10_000;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..SPAN, any::<u32>()).prop_map(|(series, slot, seed)| Op::Put { series, slot, seed }),
        2 => (0..3usize, 0..SPAN, 1..300u64, any::<u32>()).prop_map(|(series, slot, len, seed)| Op::PutRun { series, slot, len, seed }),
        1 => (0..3usize, 0..SPAN, any::<u32>()).prop_map(|(series, slot, seed)| Op::PutIrregular { series, slot, seed }),
        2 => (0..3usize, 0..SPAN, 1..500u64).prop_map(|(series, slot, len)| Op::Missing { series, slot, len }),
        1 => (0..3usize, 0..SPAN, 1..6000u64, any::<u32>()).prop_map(|(series, slot, len, seed)| Op::Columns { series, slot, len, seed }),
        3 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Reopen),
    ]
}

fn slot_of(key: &SeriesKey, s: u64) -> u64 {
    // Months have only ~1000 slots in the grid.
    if key.interval == Interval::Mo1 {
        s % 900
    } else {
        BASE + s
    }
}

fn kline(key: &SeriesKey, slot: u64, seed: u32, irregular: bool) -> Kline {
    let iv = key.interval;
    let v = |i: u32| {
        ((seed.wrapping_mul(2654435761).wrapping_add(i * 7919)) % 1_000_000) as f64 / 100.0
    };
    let (mut o, mut c) = (iv.open_time(slot), iv.close_time(slot));
    if irregular {
        o += 1234;
        c -= 777;
    }
    Kline {
        open_time: o,
        close_time: c,
        values: [v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7)],
        trades: seed,
    }
}

#[derive(Default, Clone)]
struct Model {
    present: BTreeMap<u64, Kline>,
    missing: BTreeSet<u64>,
}

fn check(store: &Store, key: &SeriesKey, m: &Model) {
    let Some(s) = store.series(key).unwrap() else {
        assert!(
            m.present.is_empty() && m.missing.is_empty(),
            "{key}: no file but model has data"
        );
        return;
    };
    let iv = key.interval;
    let got = s.range(i64::MIN / 2, i64::MAX / 2).unwrap();
    let want: Vec<Kline> = m
        .present
        .values()
        .map(|k| Kline {
            values: k.values.map(|v| v as f32 as f64),
            ..*k
        })
        .collect();
    assert_eq!(got, want, "{key}: range");
    let st = s.stats().unwrap();
    assert_eq!(st.present, m.present.len() as u64);
    assert_eq!(st.missing, m.missing.len() as u64);
    assert_eq!(st.first_open_time, want.first().map(|k| k.open_time));
    assert_eq!(st.last_open_time, want.last().map(|k| k.open_time));
    assert_eq!(s.latest().unwrap(), want.last().copied());
    let closes: Vec<f64> = want.iter().map(|k| k.values[3]).collect();
    assert_eq!(
        s.column(atm_store::Column::Close, i64::MIN / 2, i64::MAX / 2)
            .unwrap(),
        closes,
        "{key}: column"
    );
    // The streaming scan sees the same closes, chunk by chunk.
    if let (Some(first), Some(last)) = (want.first(), want.last()) {
        let mut chunked = Vec::new();
        s.view_chunks(
            first.open_time,
            last.open_time,
            &[atm_store::Column::Close],
            |v| {
                let xs = v
                    .f32s(atm_store::Column::Close.index())
                    .expect("an f32 store");
                (0..v.len())
                    .filter(|&i| v.state(i) == SlotState::Present)
                    .map(|i| xs[i] as f64)
                    .collect::<Vec<_>>()
            },
            |closes| chunked.extend(closes),
        )
        .unwrap();
        assert_eq!(chunked, closes, "{key}: view_chunks");
    }
    let trades: Vec<f64> = want.iter().map(|k| k.trades as f64).collect();
    assert_eq!(
        s.column(atm_store::Column::Trades, i64::MIN / 2, i64::MAX / 2)
            .unwrap(),
        trades,
        "{key}: trades column"
    );
    let tail = s.tail(7).unwrap();
    assert_eq!(
        tail,
        want[want.len().saturating_sub(7)..].to_vec(),
        "{key}: tail"
    );
    // Coverage over the model's span agrees slot by slot.
    let (lo, hi) = (slot_of(key, 0), slot_of(key, SPAN - 1).max(slot_of(key, 0)));
    let hi = if iv == Interval::Mo1 { 899 } else { hi };
    let runs = s.coverage(iv.open_time(lo), iv.open_time(hi)).unwrap();
    let mut slot = lo;
    for r in &runs {
        for _ in 0..r.slots {
            let want = if m.present.contains_key(&slot) {
                SlotState::Present
            } else if m.missing.contains(&slot) {
                SlotState::Missing
            } else {
                SlotState::Unknown
            };
            assert_eq!(r.state, want, "{key}: slot {slot}");
            slot += 1;
        }
    }
    assert_eq!(slot, hi + 1);
    assert!(s.verify().is_empty(), "{key}: {:?}", s.verify());
}

fn run(ops: Vec<Op>) {
    run_with(ops, usize::MAX)
}

fn run_with(ops: Vec<Op>, bulk_threshold: usize) {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let keys = keys();
    let mut store = open();
    let writer = |s: &Store| {
        let mut w = s.writer().unwrap();
        w.set_bulk_threshold(bulk_threshold);
        w
    };
    let mut w = Some(writer(&store));
    let mut committed = vec![Model::default(); 3];
    let mut staged = committed.clone();
    for op in ops {
        let wr = w.as_mut().unwrap();
        match op {
            Op::Put { series, slot, seed } | Op::PutIrregular { series, slot, seed } => {
                let key = &keys[series];
                let s = slot_of(key, slot);
                let k = kline(key, s, seed, matches!(op, Op::PutIrregular { .. }));
                wr.put(key, &k).unwrap();
                staged[series].present.insert(s, k);
                staged[series].missing.remove(&s);
            }
            Op::PutRun {
                series,
                slot,
                len,
                seed,
            } => {
                let key = &keys[series];
                let ks: Vec<Kline> = (0..len)
                    .map(|i| {
                        kline(
                            key,
                            slot_of(key, slot + i),
                            seed.wrapping_add(i as u32),
                            false,
                        )
                    })
                    .collect();
                wr.put_many(key, &ks).unwrap();
                for k in ks {
                    let s = key.interval.slot_of(k.open_time).unwrap();
                    staged[series].present.insert(s, k);
                    staged[series].missing.remove(&s);
                }
            }
            Op::Missing { series, slot, len } => {
                let key = &keys[series];
                let (a, z) = (slot_of(key, slot), slot_of(key, slot + len - 1));
                let (a, z) = (a.min(z), a.max(z));
                wr.mark_missing(key, key.interval.open_time(a), key.interval.open_time(z))
                    .unwrap();
                // Puts staged in the same commit win over missing marks regardless of order.
                let pending = staged[series].clone();
                for s in a..=z {
                    if !pending.present.contains_key(&s) {
                        staged[series].missing.insert(s);
                    }
                }
            }
            Op::Columns {
                series,
                slot,
                len,
                seed,
            } => {
                let key = &keys[series];
                let s0 = slot_of(key, slot);
                let len = if key.interval == Interval::Mo1 {
                    len.min(900 - s0)
                } else {
                    len
                };
                let ks: Vec<Kline> = (0..len)
                    .map(|i| kline(key, s0 + i, seed.wrapping_add(i as u32), false))
                    .collect();
                let col = |c: usize| ks.iter().map(|k| k.values[c] as f32).collect::<Vec<f32>>();
                let cols: Vec<Vec<f32>> = (0..8).map(col).collect();
                let trades: Vec<u32> = ks.iter().map(|k| k.trades).collect();
                let columns = atm_store::Columns {
                    values: std::array::from_fn(|c| atm_store::FloatColumn::F32(&cols[c])),
                    trades: &trades,
                };
                wr.commit_columns(key, ks[0].open_time, &columns).unwrap();
                for k in ks {
                    let s = key.interval.slot_of(k.open_time).unwrap();
                    staged[series].present.insert(s, k);
                    staged[series].missing.remove(&s);
                }
                committed = staged.clone();
            }
            Op::Commit => {
                wr.commit().unwrap();
                committed = staged.clone();
            }
            Op::Rollback => {
                wr.rollback();
                staged = committed.clone();
            }
            Op::Reopen => {
                drop(w.take());
                drop(store);
                store = open();
                w = Some(writer(&store));
                staged = committed.clone();
            }
        }
        if matches!(
            op,
            Op::Commit | Op::Reopen | Op::Rollback | Op::Columns { .. }
        ) {
            for (i, key) in keys.iter().enumerate() {
                check(&store, key, &committed[i]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }

    #[test]
    fn store_matches_model_with_bulk_commits(ops in proptest::collection::vec(op(), 1..40)) {
        run_with(ops, 1);
    }
}

#[test]
fn regression_missing_then_put_in_one_commit() {
    run(vec![
        Op::Missing {
            series: 0,
            slot: 10,
            len: 5,
        },
        Op::Put {
            series: 0,
            slot: 12,
            seed: 1,
        },
        Op::Commit,
        Op::Reopen,
    ]);
}

#[test]
fn regression_staged_put_and_column_run_share_a_fresh_block() {
    run_with(
        vec![
            Op::PutRun {
                series: 1,
                slot: 0,
                len: 1,
                seed: 0,
            },
            Op::Columns {
                series: 1,
                slot: 1,
                len: 1,
                seed: 0,
            },
        ],
        1,
    );
}

/// Compaction in the middle of any history: reads stay exact, later writes
/// into cold blocks bring them back, and verify stays clean.
#[test]
fn compacted_blocks_read_back_and_take_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .unwrap();
    let key = &keys()[0];
    let mut model = Model::default();
    let mut w = store.writer().unwrap();
    let ks: Vec<Kline> = (0..20_000)
        .map(|i| kline(key, BASE + i, i as u32, false))
        .collect();
    w.put_many(key, &ks).unwrap();
    w.mark_missing(
        key,
        key.interval.open_time(BASE + 20_000),
        key.interval.open_time(BASE + 20_100),
    )
    .unwrap();
    w.commit().unwrap();
    for k in ks {
        model
            .present
            .insert(key.interval.slot_of(k.open_time).unwrap(), k);
    }
    model.missing.extend(BASE + 20_000..=BASE + 20_100);
    let before = std::fs::metadata(dir.path().join("spot/1m/BTCUSDT.kl"))
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m))
        .unwrap();
    let n = w.compact(key, None).unwrap();
    assert!(n >= 3, "sealed blocks compressed: {n}");
    let after = std::fs::metadata(dir.path().join("spot/1m/BTCUSDT.kl"))
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m))
        .unwrap();
    assert!(after < before, "space freed: {before} -> {after}");
    assert!(dir.path().join("spot/1m/BTCUSDT.klz").exists());
    check(&store, key, &model);
    // A correction inside a cold block, and a fresh kline in another one.
    let fix = kline(key, BASE + 5, 999, false);
    w.put(key, &fix).unwrap();
    w.commit().unwrap();
    model.present.insert(BASE + 5, fix);
    check(&store, key, &model);
    // Compacting again keeps the other cold blocks' frames.
    w.compact(key, None).unwrap();
    drop(w);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    check(&store, key, &model);
    assert!(store.verify().unwrap().is_empty());
}
