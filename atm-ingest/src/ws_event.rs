//! Binance WebSocket messages, as `atm stream` receives them: kline and
//! continuous-kline events in raw (`/ws/...`) or combined
//! (`/stream?streams=...`, `{"stream":..,"data":..}`) form, replies to
//! `SUBSCRIBE` and friends, and errors. One pass over the text, strings
//! borrowed from it; decimals rounded once, straight to the store's
//! precision.
//!
//! ```
//! use atm_ingest::ws_event::{parse, WsMessage};
//! use atm_store::Precision;
//! let text = r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1628952396573,"s":"BTCUSDT","k":{"t":1628952360000,"T":1628952419999,"s":"BTCUSDT","i":"1m","f":1,"L":2,"o":"1.5","c":"1.6","h":"1.7","l":"1.4","v":"10","n":2,"x":true,"q":"16","V":"5","Q":"8","B":"0"}}}"#;
//! match parse(text, Precision::F64).unwrap() {
//!     WsMessage::Kline(e) => {
//!         assert_eq!((e.symbol.as_str(), e.interval.as_str(), e.closed), ("BTCUSDT", "1m", true));
//!         assert_eq!(e.kline.close(), 1.6);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::borrow::Cow;

use atm_store::{Interval, Kline, Precision};
use serde::Deserialize;

/// One message from a market-data WebSocket.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum WsMessage {
    /// A kline update (`"x": true` when it closes the kline).
    Kline(KlineEvent),
    /// The answer to a control request (`{"result":..,"id":..}`).
    Reply {
        /// The request's id.
        id: serde_json::Value,
        /// Its result (`null` for SUBSCRIBE).
        result: serde_json::Value,
    },
    /// An error from the server (`{"error":{"code","msg"},"id"}` or `{"code","msg"}`).
    Error {
        /// Binance's code.
        code: i64,
        /// Binance's message.
        msg: String,
        /// The request's id, when it answers one.
        id: Option<serde_json::Value>,
    },
    /// An event of another type (`e`), e.g. a stream this client did not ask for.
    Other {
        /// The event type, or `""`.
        event: String,
    },
}

/// A kline event.
#[derive(Clone, Debug, PartialEq)]
pub struct KlineEvent {
    /// The combined stream's name, when the message had one.
    pub stream: Option<String>,
    /// The symbol (for a continuous kline, the pair).
    pub symbol: String,
    /// The interval.
    pub interval: Interval,
    /// Event time, epoch ms.
    pub event_time: i64,
    /// The kline so far (or final, when `closed`).
    pub kline: Kline,
    /// `x`: this event closes the kline.
    pub closed: bool,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Event<'a>>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(borrow, default)]
    e: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: i64,
    msg: String,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default)]
    e: Option<Cow<'a, str>>,
    #[serde(rename = "E", default)]
    event_time: i64,
    #[serde(borrow, default)]
    s: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ps: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    k: Option<K<'a>>,
}

#[derive(Deserialize)]
struct K<'a> {
    t: i64,
    #[serde(rename = "T")]
    close_time: i64,
    #[serde(borrow)]
    i: Cow<'a, str>,
    #[serde(borrow)]
    o: Cow<'a, str>,
    #[serde(borrow)]
    c: Cow<'a, str>,
    #[serde(borrow)]
    h: Cow<'a, str>,
    #[serde(borrow)]
    l: Cow<'a, str>,
    #[serde(borrow)]
    v: Cow<'a, str>,
    n: i64,
    x: bool,
    #[serde(borrow)]
    q: Cow<'a, str>,
    #[serde(rename = "V", borrow)]
    taker_base: Cow<'a, str>,
    #[serde(rename = "Q", borrow)]
    taker_quote: Cow<'a, str>,
}

/// Parses one text message. An error names what was wrong; the caller logs
/// it with the payload and goes on.
pub fn parse(text: &str, precision: Precision) -> Result<WsMessage, String> {
    let env: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| format!("not a Binance stream message: {e}"))?;
    if let Some(err) = env.error {
        return Ok(WsMessage::Error {
            code: err.code,
            msg: err.msg,
            id: env.id,
        });
    }
    if let (Some(code), Some(msg)) = (env.code, env.msg) {
        return Ok(WsMessage::Error {
            code,
            msg,
            id: env.id,
        });
    }
    if env.data.is_none() && env.e.is_none() {
        if let Some(id) = env.id {
            return Ok(WsMessage::Reply {
                id,
                result: env.result.unwrap_or(serde_json::Value::Null),
            });
        }
    }
    let stream = env.stream.map(Cow::into_owned);
    let event = match env.data {
        Some(d) => d,
        // The raw form: the event is the whole message.
        None => serde_json::from_str::<Event<'_>>(text)
            .map_err(|e| format!("not a Binance event: {e}"))?,
    };
    let kind = event.e.as_deref().unwrap_or("");
    if kind != "kline" && kind != "continuous_kline" {
        return Ok(WsMessage::Other {
            event: kind.to_string(),
        });
    }
    let k = event
        .k
        .ok_or_else(|| format!("{kind} event without its \"k\" object"))?;
    let symbol = event
        .s
        .or(event.ps)
        .ok_or_else(|| format!("{kind} event without a symbol"))?
        .into_owned();
    let interval: Interval =
        k.i.parse()
            .map_err(|_| format!("{kind} event of {symbol}: unknown interval {:?}", k.i))?;
    if k.t < 0 || k.close_time < k.t {
        return Err(format!(
            "{kind} event of {symbol}: times {}..{} are not a kline",
            k.t, k.close_time
        ));
    }
    let trades = u32::try_from(k.n)
        .map_err(|_| format!("{kind} event of {symbol}: trades {} is not a count", k.n))?;
    let mut values = [0.0; atm_store::FLOAT_COLUMNS];
    for (slot, (name, s)) in values.iter_mut().zip([
        ("open", &k.o),
        ("high", &k.h),
        ("low", &k.l),
        ("close", &k.c),
        ("volume", &k.v),
        ("quote_volume", &k.q),
        ("taker_buy_base", &k.taker_base),
        ("taker_buy_quote", &k.taker_quote),
    ]) {
        *slot = precision.parse_decimal(s).ok_or_else(|| {
            format!("{kind} event of {symbol}: {name} {s:?} is not a decimal number")
        })?;
    }
    Ok(WsMessage::Kline(KlineEvent {
        stream,
        symbol,
        interval,
        event_time: event.event_time,
        kline: Kline {
            open_time: k.t,
            close_time: k.close_time,
            values,
            trades,
        },
        closed: k.x,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(name: &str) -> Vec<String> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/binance/ws")
            .join(name);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_real_event_parses_and_matches_its_fields() {
        for file in [
            "spot_kline_events_2021-08-14.extracted.jsonl",
            "um_kline_events_2021-07-22.extracted.jsonl",
        ] {
            let lines = samples(file);
            assert!(!lines.is_empty());
            for line in &lines {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let WsMessage::Kline(e) = parse(line, Precision::F64).unwrap() else {
                    panic!("{line}")
                };
                let k = &v["data"]["k"];
                assert_eq!(e.stream.as_deref(), v["stream"].as_str());
                assert_eq!(e.symbol, v["data"]["s"].as_str().unwrap());
                assert_eq!(e.interval.as_str(), k["i"].as_str().unwrap());
                assert_eq!(e.event_time, v["data"]["E"].as_i64().unwrap());
                assert_eq!(
                    (e.kline.open_time, e.kline.close_time),
                    (k["t"].as_i64().unwrap(), k["T"].as_i64().unwrap())
                );
                assert_eq!(
                    e.kline.close(),
                    k["c"].as_str().unwrap().parse::<f64>().unwrap()
                );
                assert_eq!(e.kline.trades as i64, k["n"].as_i64().unwrap());
                assert_eq!(e.closed, k["x"].as_bool().unwrap());
                // The raw form (`/ws/<stream>`) carries the same event.
                let raw = v["data"].to_string();
                let WsMessage::Kline(r) = parse(&raw, Precision::F64).unwrap() else {
                    panic!("{raw}")
                };
                assert_eq!((r.kline, r.stream), (e.kline, None));
            }
        }
    }

    #[test]
    fn replies_errors_other_events_and_bad_messages() {
        assert_eq!(
            parse(r#"{"result":null,"id":7}"#, Precision::F32).unwrap(),
            WsMessage::Reply {
                id: serde_json::json!(7),
                result: serde_json::Value::Null
            }
        );
        assert_eq!(
            parse(
                r#"{"error":{"code":2,"msg":"Invalid request: unknown variant"},"id":3}"#,
                Precision::F32
            )
            .unwrap(),
            WsMessage::Error {
                code: 2,
                msg: "Invalid request: unknown variant".into(),
                id: Some(serde_json::json!(3))
            }
        );
        assert!(matches!(
            parse(r#"{"code":-1121,"msg":"Invalid symbol."}"#, Precision::F32).unwrap(),
            WsMessage::Error { code: -1121, .. }
        ));
        assert_eq!(
            parse(
                r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1}}"#,
                Precision::F32
            )
            .unwrap(),
            WsMessage::Other {
                event: "bookTicker".into()
            }
        );
        // A continuous kline names its pair.
        let ck = r#"{"e":"continuous_kline","E":2,"ps":"BTCUSDT","ct":"PERPETUAL","k":{"t":60000,"T":119999,"i":"1m","f":1,"L":2,"o":"1","c":"1","h":"1","l":"1","v":"1","n":1,"x":false,"q":"1","V":"1","Q":"1","B":"0"}}"#;
        assert!(
            matches!(parse(ck, Precision::F32).unwrap(), WsMessage::Kline(KlineEvent { ref symbol, .. }) if symbol == "BTCUSDT")
        );
        for (bad, want) in [
            ("not json", "not a Binance stream message"),
            (r#"{"e":"kline","E":1,"s":"X"}"#, "without its \"k\""),
            (
                &ck.replace("\"i\":\"1m\"", "\"i\":\"7m\""),
                "unknown interval",
            ),
            (&ck.replace("\"c\":\"1\"", "\"c\":\"abc\""), "close \"abc\""),
            (&ck.replace("\"T\":119999", "\"T\":5"), "not a kline"),
            (&ck.replace("\"n\":1", "\"n\":-4"), "trades -4"),
            (&ck.replace("\"t\":60000", "\"t\":\"x\""), "not a Binance"),
        ] {
            let e = parse(bad, Precision::F32).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
