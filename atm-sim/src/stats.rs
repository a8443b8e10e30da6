//! Counters behind `GET /sim/v1/stats`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use atm_types::Market;
use serde_json::{json, Value};

/// Per-market REST counters.
#[derive(Debug, Default)]
pub struct RestCounters {
    /// Requests answered (any status), `/sim/v1` and archives excluded.
    pub requests: AtomicU64,
    /// Weight charged.
    pub weight: AtomicU64,
    /// 429s the rate limiter issued.
    pub http429: AtomicU64,
    /// 418s the rate limiter issued (bans started and requests refused during one).
    pub http418: AtomicU64,
}

/// Every counter the simulator keeps.
#[derive(Debug, Default)]
pub struct Stats {
    /// REST, per market.
    pub rest: [RestCounters; 3],
    /// WebSocket connections accepted.
    pub ws_connections: AtomicU64,
    /// Subscriptions made (URL streams and SUBSCRIBE).
    pub ws_subscriptions: AtomicU64,
    /// Messages sent to clients.
    pub ws_messages: AtomicU64,
    /// The most streams one connection held.
    pub ws_max_streams: AtomicU64,
    /// Streams over the cap, messages over the rate, connections over their limit.
    pub ws_limit_violations: AtomicU64,
    /// Injected faults, by name.
    pub faults: FaultCounters,
    /// Archive zips served.
    pub archive_zips: AtomicU64,
    /// Archive `.CHECKSUM`s served.
    pub archive_checksums: AtomicU64,
    /// Archive listings served.
    pub archive_listings: AtomicU64,
    /// Archive bytes served.
    pub archive_bytes: AtomicU64,
}

/// Injected faults, by name.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct FaultCounters {
    pub http5xx: AtomicU64,
    pub http429: AtomicU64,
    pub reset: AtomicU64,
    pub slow: AtomicU64,
    pub ws_drop: AtomicU64,
    pub ws_close_drop: AtomicU64,
    pub ws_garbage: AtomicU64,
    pub ws_disconnect: AtomicU64,
    pub archive_corrupt: AtomicU64,
    pub html: AtomicU64,
    pub malformed: AtomicU64,
    pub http418: AtomicU64,
    pub http451: AtomicU64,
}

impl Stats {
    /// The REST counters of `market`.
    pub fn rest(&self, market: Market) -> &RestCounters {
        &self.rest[market as usize]
    }

    /// Raises the most-streams-per-connection mark to `n`.
    pub fn saw_streams(&self, n: usize) {
        self.ws_max_streams.fetch_max(n as u64, Relaxed);
    }

    /// The `/sim/v1/stats` document.
    pub fn to_json(&self) -> Value {
        let rest = |m: Market| {
            let r = self.rest(m);
            json!({"requests": r.requests.load(Relaxed), "weight": r.weight.load(Relaxed), "http429": r.http429.load(Relaxed), "http418": r.http418.load(Relaxed)})
        };
        let f = &self.faults;
        json!({
            "rest": {"spot": rest(Market::Spot), "um": rest(Market::UsdM), "cm": rest(Market::CoinM)},
            "ws": {
                "connections": self.ws_connections.load(Relaxed),
                "subscriptions": self.ws_subscriptions.load(Relaxed),
                "messages": self.ws_messages.load(Relaxed),
                "max_streams_per_connection": self.ws_max_streams.load(Relaxed),
                "limit_violations": self.ws_limit_violations.load(Relaxed),
            },
            "faults": {
                "http5xx": f.http5xx.load(Relaxed),
                "http429": f.http429.load(Relaxed),
                "reset": f.reset.load(Relaxed),
                "slow": f.slow.load(Relaxed),
                "ws_drop": f.ws_drop.load(Relaxed),
                "ws_close_drop": f.ws_close_drop.load(Relaxed),
                "ws_garbage": f.ws_garbage.load(Relaxed),
                "ws_disconnect": f.ws_disconnect.load(Relaxed),
                "archive_corrupt": f.archive_corrupt.load(Relaxed),
                "html": f.html.load(Relaxed),
                "malformed": f.malformed.load(Relaxed),
                "http418": f.http418.load(Relaxed),
                "http451": f.http451.load(Relaxed),
            },
            "archive": {
                "zips": self.archive_zips.load(Relaxed),
                "checksums": self.archive_checksums.load(Relaxed),
                "listings": self.archive_listings.load(Relaxed),
                "bytes": self.archive_bytes.load(Relaxed),
            },
        })
    }
}
