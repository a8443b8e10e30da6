//! The data of the format fixtures (shared by the generator and the test).
#![allow(dead_code)]

use atm_store::{Interval, Kline, Market, SeriesKey, Store};

/// (series, its klines, a known-missing open-time range).
pub type FixtureSeries = (SeriesKey, Vec<Kline>, Option<(i64, i64)>);

pub fn series() -> Vec<FixtureSeries> {
    let mo = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::Mo1).unwrap();
    let d1 = SeriesKey::parse(Market::CoinM, "BTCUSD_PERP", Interval::D1).unwrap();
    let mk = |iv: Interval, slot: u64, i: u32| Kline {
        open_time: iv.open_time(slot),
        close_time: iv.close_time(slot),
        values: [
            100.25 + i as f64,
            101.5,
            99.75,
            100.5 + i as f64,
            12.5,
            1250.0,
            6.25,
            625.0,
        ],
        trades: 1000 + i,
    };
    let mut monthly: Vec<Kline> = (6..30).map(|s| mk(Interval::Mo1, s, s as u32)).collect();
    // One irregular kline (a truncated close), as Binance has a few.
    monthly[3].close_time -= 86_400_000;
    let daily: Vec<Kline> = (1300..1400)
        .map(|s| mk(Interval::D1, s, s as u32))
        .collect();
    let gap = Some((Interval::D1.open_time(1400), Interval::D1.open_time(1409)));
    vec![(mo, monthly, None), (d1, daily, gap)]
}

pub fn write(store: &Store) -> atm_store::Result<()> {
    let mut w = store.writer()?;
    for (key, klines, missing) in series() {
        w.put_many(&key, &klines)?;
        if let Some((a, z)) = missing {
            w.mark_missing(&key, a, z)?;
        }
        w.commit()?;
    }
    w.close()?;
    store.update_registry(Market::CoinM, |r| {
        r.observe("BTCUSD_PERP", "TRADING", 1_600_000_000_000)?;
        Ok(())
    })
}
