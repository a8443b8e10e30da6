//! Numbers and klines as Binance prints them, byte for byte.
//!
//! REST rows are `[openTime,"open","high","low","close","volume",closeTime,
//! "quoteVolume",trades,"takerBuyBase","takerBuyQuote","0"]`; WebSocket
//! kline events carry the same values under one-letter keys. Decimals are
//! fixed per market and symbol ([`Units`]): spot prints 8 everywhere, USD-M
//! the symbol's price and quantity precisions, COIN-M whole contracts.

use std::io::Write;

use atm_types::Interval;

use crate::candles::{Kline, Units};

/// Appends `v / 10^decimals` in plain decimal notation with exactly
/// `decimals` digits after the point (`"0.00100000"`, `"3917"`).
pub fn decimal(out: &mut Vec<u8>, v: u128, decimals: u32) {
    let mut buf = [0u8; 48];
    let mut i = buf.len();
    let mut v = v;
    let mut digits = 0;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        digits += 1;
        if digits == decimals {
            i -= 1;
            buf[i] = b'.';
        }
        if v == 0 && digits > decimals {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a price (never negative in the simulator).
pub fn price(out: &mut Vec<u8>, v: i64, decimals: u32) {
    decimal(out, v.max(0) as u128, decimals)
}

fn quoted(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    out.push(b'"');
    f(out);
    out.push(b'"');
}

/// Appends one REST kline row.
pub fn rest_row(out: &mut Vec<u8>, k: &Kline, u: &Units) {
    let a = &k.agg;
    let _ = write!(out, "[{},", k.open_time);
    for p in [a.open, a.high, a.low, a.close] {
        quoted(out, |o| price(o, p, u.price_decimals));
        out.push(b',');
    }
    quoted(out, |o| decimal(o, a.volume, u.qty_decimals));
    let _ = write!(out, ",{},", k.close_time);
    quoted(out, |o| decimal(o, a.quote, u.quote_decimals));
    let _ = write!(out, ",{},", a.trades);
    quoted(out, |o| decimal(o, a.taker_base, u.qty_decimals));
    out.push(b',');
    quoted(out, |o| decimal(o, a.taker_quote, u.quote_decimals));
    out.extend_from_slice(b",\"0\"]");
}

/// Appends a JSON array of REST kline rows.
pub fn rest_rows<'a>(out: &mut Vec<u8>, klines: impl IntoIterator<Item = &'a Kline>, u: &Units) {
    out.push(b'[');
    for (i, k) in klines.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        rest_row(out, k, u);
    }
    out.push(b']');
}

/// What a kline event needs besides the kline.
pub struct EventMeta<'a> {
    /// The symbol, upper case as the exchange spells it.
    pub symbol: &'a str,
    /// The interval.
    pub interval: Interval,
    /// Event time, ms.
    pub event_time: i64,
    /// First trade id of the kline (`-1` without trades).
    pub first_trade: i64,
    /// Last trade id (`-1` without trades).
    pub last_trade: i64,
    /// Whether this is the kline's final update.
    pub closed: bool,
}

/// Appends a kline event payload `{"e":"kline","E":..,"s":..,"k":{..}}`,
/// keys in Binance's order.
pub fn kline_event(out: &mut Vec<u8>, k: &Kline, u: &Units, m: &EventMeta<'_>) {
    let s = json_str(m.symbol);
    let _ = write!(out, r#"{{"e":"kline","E":{},"s":{s},"k":"#, m.event_time);
    kline_body(out, k, u, m, Some(&s));
    out.push(b'}');
}

/// Appends a continuous-kline event payload (futures):
/// `{"e":"continuous_kline","E":..,"ps":"BTCUSDT","ct":"PERPETUAL","k":{..}}`,
/// whose `k` has no symbol.
pub fn continuous_kline_event(
    out: &mut Vec<u8>,
    k: &Kline,
    u: &Units,
    m: &EventMeta<'_>,
    pair: &str,
    contract: &str,
) {
    let _ = write!(
        out,
        r#"{{"e":"continuous_kline","E":{},"ps":{},"ct":{},"k":"#,
        m.event_time,
        json_str(pair),
        json_str(contract)
    );
    kline_body(out, k, u, m, None);
    out.push(b'}');
}

/// The `k` object of kline events.
fn kline_body(out: &mut Vec<u8>, k: &Kline, u: &Units, m: &EventMeta<'_>, symbol: Option<&str>) {
    let a = &k.agg;
    let _ = write!(out, r#"{{"t":{},"T":{},"#, k.open_time, k.close_time);
    if let Some(s) = symbol {
        let _ = write!(out, r#""s":{s},"#);
    }
    let _ = write!(
        out,
        r#""i":"{}","f":{},"L":{},"o":""#,
        m.interval.as_str(),
        m.first_trade,
        m.last_trade
    );
    price(out, a.open, u.price_decimals);
    out.extend_from_slice(br#"","c":""#);
    price(out, a.close, u.price_decimals);
    out.extend_from_slice(br#"","h":""#);
    price(out, a.high, u.price_decimals);
    out.extend_from_slice(br#"","l":""#);
    price(out, a.low, u.price_decimals);
    out.extend_from_slice(br#"","v":""#);
    decimal(out, a.volume, u.qty_decimals);
    let _ = write!(out, r#"","n":{},"x":{},"q":""#, a.trades, m.closed);
    decimal(out, a.quote, u.quote_decimals);
    out.extend_from_slice(br#"","V":""#);
    decimal(out, a.taker_base, u.qty_decimals);
    out.extend_from_slice(br#"","Q":""#);
    decimal(out, a.taker_quote, u.quote_decimals);
    out.extend_from_slice(br#"","B":"0"}"#);
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Binance's error body `{"code":-1121,"msg":"Invalid symbol."}`.
pub fn error_body(code: i32, msg: &str) -> Vec<u8> {
    format!(r#"{{"code":{code},"msg":{}}}"#, json_str(msg)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candles::Agg;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn decimals_are_fixed_and_plain() {
        assert_eq!(s(|o| decimal(o, 72_270_000, 8)), "0.72270000");
        assert_eq!(s(|o| decimal(o, 0, 8)), "0.00000000");
        assert_eq!(s(|o| decimal(o, 3917, 0)), "3917");
        assert_eq!(s(|o| decimal(o, 0, 0)), "0");
        assert_eq!(s(|o| decimal(o, 395_789_900, 5)), "3957.89900");
        assert_eq!(s(|o| decimal(o, 57_476_150_000_000, 8)), "574761.50000000");
        assert_eq!(
            s(|o| decimal(o, u128::MAX, 8)),
            "3402823669209384634633746074317.68211455"
        );
    }

    #[test]
    fn a_row_matches_the_real_sample() {
        // The first row of shared/data/binance/klines_rest/spot_UNKNOWNUSDT_1m_2024-11-16_api_v3.json.
        let want = r#"[1731748020000,"0.72270000","0.72560000","0.72270000","0.72440000","574761.50000000",1731748079999,"416461.99940000",1760,"343792.90000000","249110.96803000","0"]"#;
        let u = Units {
            price_decimals: 8,
            tick: 10_000,
            qty_decimals: 8,
            step: 10_000_000,
            quote_decimals: 8,
            contract_size: None,
        };
        let agg = Agg {
            open: 72_270_000,
            high: 72_560_000,
            low: 72_270_000,
            close: 72_440_000,
            volume: 57_476_150_000_000,
            quote: 41_646_199_940_000,
            trades: 1760,
            taker_base: 34_379_290_000_000,
            taker_quote: 24_911_096_803_000,
        };
        let k = Kline {
            open_time: 1_731_748_020_000,
            close_time: 1_731_748_079_999,
            agg,
        };
        assert_eq!(s(|o| rest_row(o, &k, &u)), want);
    }

    #[test]
    fn an_event_matches_the_real_sample() {
        // A USD-M event of shared/data/binance/ws/um_kline_events_2021-07-22.extracted.jsonl.
        let want = r#"{"e":"kline","E":1626992741424,"s":"CTKUSDT","k":{"t":1626992700000,"T":1626992759999,"s":"CTKUSDT","i":"1m","f":23961275,"L":23961322,"o":"1.01000","c":"1.01100","h":"1.01100","l":"1.01000","v":"3917","n":48,"x":false,"q":"3957.89900","V":"1729","Q":"1748.01900","B":"0"}}"#;
        let u = Units {
            price_decimals: 5,
            tick: 100,
            qty_decimals: 0,
            step: 1,
            quote_decimals: 5,
            contract_size: None,
        };
        let agg = Agg {
            open: 101_000,
            high: 101_100,
            low: 101_000,
            close: 101_100,
            volume: 3917,
            quote: 395_789_900,
            trades: 48,
            taker_base: 1729,
            taker_quote: 174_801_900,
        };
        let k = Kline {
            open_time: 1_626_992_700_000,
            close_time: 1_626_992_759_999,
            agg,
        };
        let meta = EventMeta {
            symbol: "CTKUSDT",
            interval: Interval::M1,
            event_time: 1_626_992_741_424,
            first_trade: 23_961_275,
            last_trade: 23_961_322,
            closed: false,
        };
        assert_eq!(s(|o| kline_event(o, &k, &u, &meta)), want);
    }
}
