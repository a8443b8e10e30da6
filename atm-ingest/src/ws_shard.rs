//! Planning `atm stream`'s WebSocket connections: which streams go on which
//! connection, the `SUBSCRIBE` messages that open them within the
//! incoming-message rate, and the URLs (binance-api.md §4).
//!
//! ```
//! use atm_ingest::ws_shard::{limits, shard, stream_name};
//! use atm_store::{Interval, Market};
//! let streams: Vec<String> = (0..2500).map(|i| stream_name(&format!("S{i}USDT"), Interval::M1)).collect();
//! let conns = shard(streams, limits(Market::Spot).streams_per_connection);
//! assert_eq!(conns.len(), 3); // 1024 per connection at most, spread evenly
//! assert!(conns.iter().all(|c| c.len() <= 1024 && c.len() >= 833));
//! ```

use atm_store::{Interval, Market};

use crate::endpoint::Endpoints;

/// A market's WebSocket limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsLimits {
    /// Streams one connection may carry.
    pub streams_per_connection: usize,
    /// Messages a client may send per second on one connection (pings,
    /// pongs and JSON requests all count).
    pub messages_per_second: u32,
    /// Connection attempts per IP per 5 minutes.
    pub connects_per_5min: u32,
    /// A connection's lifetime before the server cuts it, ms.
    pub lifetime_ms: i64,
}

/// Binance's limits for `market` (binance-api.md §4; where the docs
/// disagree, the stricter figure).
pub fn limits(market: Market) -> WsLimits {
    match market {
        Market::Spot => WsLimits {
            streams_per_connection: 1024,
            messages_per_second: 5,
            connects_per_5min: 300,
            lifetime_ms: 86_400_000,
        },
        Market::UsdM => WsLimits {
            streams_per_connection: 1024,
            messages_per_second: 10,
            connects_per_5min: 300,
            lifetime_ms: 86_400_000,
        },
        Market::CoinM => WsLimits {
            streams_per_connection: 200,
            messages_per_second: 10,
            connects_per_5min: 300,
            lifetime_ms: 86_400_000,
        },
    }
}

/// The kline stream of `symbol` at `interval`: `btcusdt@kline_1m` (names
/// are lower-case on Binance).
pub fn stream_name(symbol: &str, interval: Interval) -> String {
    format!("{}@kline_{}", symbol.to_lowercase(), interval.as_str())
}

/// Spreads `streams` over as few connections as `per_connection` allows,
/// evenly (so each has room for new listings), in order.
pub fn shard<T>(streams: Vec<T>, per_connection: usize) -> Vec<Vec<T>> {
    if streams.is_empty() {
        return Vec::new();
    }
    let per = per_connection.max(1);
    let n = streams.len().div_ceil(per);
    let (q, r) = (streams.len() / n, streams.len() % n);
    let mut it = streams.into_iter();
    // The first `r` connections carry one stream more than the others.
    (0..n)
        .map(|i| it.by_ref().take(q + usize::from(i < r)).collect())
        .collect()
}

/// `SUBSCRIBE` requests for `streams`, at most `per_message` streams each,
/// with ids from `first_id`. Sent one per `1 / messages_per_second` at most.
pub fn subscribe_messages(streams: &[String], per_message: usize, first_id: u64) -> Vec<String> {
    stream_requests("SUBSCRIBE", streams, per_message, first_id)
}

/// `method` (`SUBSCRIBE` or `UNSUBSCRIBE`) requests for `streams`, at most
/// `per_message` streams each, with ids from `first_id`.
pub fn stream_requests(
    method: &str,
    streams: &[String],
    per_message: usize,
    first_id: u64,
) -> Vec<String> {
    streams
        .chunks(per_message.max(1))
        .enumerate()
        .map(|(i, chunk)| {
            serde_json::json!({"method": method, "params": chunk, "id": first_id + i as u64})
                .to_string()
        })
        .collect()
}

/// The combined-stream URL of `market` (subscriptions follow by message):
/// Binance's hosts (USD-M klines are on the `/market` route since 2026), or
/// a simulator's `ws://HOST:PORT/<market>/stream`.
pub fn stream_url(endpoints: &Endpoints, market: Market) -> String {
    match &endpoints.sim_base {
        Some(base) => {
            let ws = base
                .replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1);
            format!("{ws}/{}/stream", market.as_str())
        }
        None => match market {
            Market::Spot => "wss://stream.binance.com:9443/stream".into(),
            Market::UsdM => "wss://fstream.binance.com/market/stream".into(),
            Market::CoinM => "wss://dstream.binance.com/stream".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_respect_the_limits_and_stay_even() {
        for (n, per) in [
            (1usize, 200usize),
            (200, 200),
            (201, 200),
            (3000, 1024),
            (5000, 200),
        ] {
            let streams: Vec<String> = (0..n).map(|i| format!("s{i}@kline_1m")).collect();
            let conns = shard(streams.clone(), per);
            assert_eq!(conns.len(), n.div_ceil(per), "{n}/{per}");
            assert!(conns.iter().all(|c| c.len() <= per && !c.is_empty()));
            let (min, max) = (
                conns.iter().map(Vec::len).min().unwrap(),
                conns.iter().map(Vec::len).max().unwrap(),
            );
            assert!(max - min <= 1, "{n}/{per}: {min}..{max}");
            assert_eq!(conns.concat(), streams, "every stream once, in order");
        }
        assert!(shard(Vec::<String>::new(), 10).is_empty());
    }

    #[test]
    fn names_messages_and_urls() {
        assert_eq!(stream_name("BTCUSDT", Interval::M1), "btcusdt@kline_1m");
        assert_eq!(stream_name("ETHUSDT", Interval::Mo1), "ethusdt@kline_1M");
        let m = subscribe_messages(&["a".into(), "b".into(), "c".into()], 2, 7);
        assert_eq!(
            m,
            vec![
                r#"{"method":"SUBSCRIBE","params":["a","b"],"id":7}"#,
                r#"{"method":"SUBSCRIBE","params":["c"],"id":8}"#
            ]
        );
        let sim = Endpoints::new(&"http://127.0.0.1:9".parse().unwrap());
        assert_eq!(stream_url(&sim, Market::UsdM), "ws://127.0.0.1:9/um/stream");
        let real = Endpoints::new(&crate::ExchangeSpec::Binance);
        assert_eq!(
            stream_url(&real, Market::UsdM),
            "wss://fstream.binance.com/market/stream"
        );
        assert_eq!(limits(Market::CoinM).streams_per_connection, 200);
    }
}
