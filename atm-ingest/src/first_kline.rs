//! Finding a symbol's first kline with as few weighted requests as the API
//! allows.
//!
//! * **Direct** (spot, USD-M): `startTime=0&limit=1` returns the first kline,
//!   one request of the lowest weight.
//! * **Bisection** (any market; the only way on COIN-M, whose 200-day window
//!   makes `startTime=0` return nothing): "is there a kline at or before T"
//!   is monotone in T, and `endTime=T&limit=1` answers it. Coarse to fine:
//!   first the month (1M klines), then the day within it (1d), the hour
//!   (1h), the minute (1m) — about 23 requests of weight 1 for nine years.

use atm_store::{Interval, Market, Precision};

use crate::client::Client;
use crate::error::Result;

/// Binance's first trading day (2017-07-14): no kline is older.
pub const EXCHANGE_START_MS: i64 = 1_499_990_400_000;

/// How far back COIN-M's `endTime`-only query looks (200 days), less a day of slack.
const WINDOW_MS: i64 = 199 * 86_400_000;

/// The regular open time of the kline of `interval` containing `t`.
pub fn open_of(interval: Interval, t: i64) -> i64 {
    interval
        .slot_of(t)
        .map(|s| interval.open_time(s))
        .unwrap_or(t)
}

/// The open time of the kline after the one containing `t`.
pub fn next_open(interval: Interval, t: i64) -> i64 {
    interval
        .slot_of(t)
        .map(|s| interval.open_time(s + 1))
        .unwrap_or_else(|_| t + interval.step_ms().unwrap_or(86_400_000))
}

/// The first kline's open time by the direct query, or `None` if the
/// symbol has no kline.
pub fn direct(client: &Client, market: Market, symbol: &str) -> Result<Option<i64>> {
    let k = client.klines(
        market,
        symbol,
        Interval::M1,
        Some(0),
        None,
        1,
        Precision::F64,
    )?;
    Ok(k.first().map(|k| k.open_time))
}

/// The first kline's open time by coarse-to-fine bisection over
/// `[EXCHANGE_START_MS, now]`, or `None` if the symbol has no kline.
pub fn bisect(client: &Client, market: Market, symbol: &str) -> Result<Option<i64>> {
    let now = client.clock().now();
    // The newest kline of `interval` opening at or before `t`.
    let newest_at = |interval: Interval, t: i64| -> Result<Option<i64>> {
        let k = client.klines(market, symbol, interval, None, Some(t), 1, Precision::F64)?;
        Ok(k.first().map(|k| k.open_time).filter(|&o| o <= t))
    };
    // Some kline to start from. Spot and USD-M answer `endTime` alone with the
    // newest kline before it; COIN-M only looks 200 days back, so walk back
    // window by window until one holds a kline.
    let mut hi = now;
    loop {
        if let Some(t) = newest_at(Interval::Mo1, hi)? {
            hi = next_open(Interval::Mo1, t) - 1;
            break;
        }
        if market != Market::CoinM || hi - WINDOW_MS < EXCHANGE_START_MS {
            return Ok(None);
        }
        hi -= WINDOW_MS;
    }
    let mut lo = EXCHANGE_START_MS; // no kline opens before lo
    for interval in [Interval::Mo1, Interval::D1, Interval::H1, Interval::M1] {
        // Bisect over the open times of `interval` in [lo, hi].
        let mut a = open_of(interval, lo);
        let mut b = open_of(interval, hi);
        // Invariant: some kline opens at or before the end of bucket b; none before bucket a.
        while a < b {
            let mid = mid_bucket(interval, a, b);
            let end = next_open(interval, mid) - 1;
            if newest_at(interval, end)?.is_some() {
                b = mid;
            } else {
                a = next_open(interval, mid);
            }
        }
        lo = a;
        hi = next_open(interval, a) - 1;
    }
    Ok(Some(lo))
}

/// A bucket open time between `a` and `b` (both bucket opens), `a ≤ mid < b`.
fn mid_bucket(interval: Interval, a: i64, b: i64) -> i64 {
    let m = a + (b - a) / 2;
    let mid = open_of(interval, m);
    if mid >= b {
        a
    } else {
        mid.max(a)
    }
}
