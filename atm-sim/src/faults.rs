//! Fault injection, deterministic under the seed.
//!
//! `--faults` takes a comma-separated list of `name=P` or `name=P:DURATION`
//! (durations `500ms`, `2s`, `20m`, `1h`, in exchange time):
//!
//! | fault | effect |
//! |---|---|
//! | `http5xx=P` | a REST request answers 500/502/503/504 with a Binance error body |
//! | `http429=P` | a REST request answers 429 `-1003` with `Retry-After` (never counts toward a ban) |
//! | `reset=P` | the connection is cut in the middle of the response body |
//! | `slow=P:D` | the response is delayed by `D` |
//! | `html=P` | a REST request answers 502 with an HTML page, as a CDN or proxy in front of the API does |
//! | `malformed=P` | a 200 response carries a broken body with a consistent `Content-Length`: truncated JSON, an HTML page, or JSON of the wrong shape |
//! | `http418=P` | a REST request answers 418 `-1003` (IP banned) with `Retry-After` |
//! | `http451=P` | a REST request answers 451, Binance's refusal of a restricted location |
//! | `ws_drop=P` | a WebSocket kline event is not sent |
//! | `ws_close_drop=P` | a closing (`"x":true`) kline event is not sent |
//! | `ws_garbage=P` | a bad message comes before a kline event: not JSON, a kline with a broken field, a kline of a symbol not subscribed, or an error reply |
//! | `ws_disconnect=D` | the server closes every WebSocket connection `D` after it opened |
//! | `archive_corrupt=P` | a zip download has one kline value changed; its `.CHECKSUM` stays true |
//!
//! A running simulator's faults can be replaced with `POST
//! /sim/v1/faults?spec=...` (see [`crate::control`]).
//!
//! Each draw hashes the seed, the fault's name and a per-fault counter, so
//! the same sequence of requests meets the same faults.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::rng::{hash, hash_str, unit};

/// A parsed `--faults` spec.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultSpec {
    /// Probability of a 5xx per REST request.
    pub http5xx: f64,
    /// Probability of an injected 429 per REST request.
    pub http429: f64,
    /// Probability of a reset per REST response.
    pub reset: f64,
    /// Probability and length (exchange ms) of a slow response.
    pub slow: (f64, i64),
    /// Probability of dropping a WebSocket kline event.
    pub ws_drop: f64,
    /// Probability of dropping a closing kline event.
    pub ws_close_drop: f64,
    /// Probability of a bad WebSocket message before a kline event.
    pub ws_garbage: f64,
    /// Exchange ms after which every WebSocket connection is closed.
    pub ws_disconnect: Option<i64>,
    /// Probability of serving a corrupted archive zip.
    pub archive_corrupt: f64,
    /// Probability of a 502 HTML page per REST request.
    pub html: f64,
    /// Probability of a broken 200 body per REST request.
    pub malformed: f64,
    /// Probability of a 418 ban answer per REST request.
    pub http418: f64,
    /// Probability of a 451 region-block answer per REST request.
    pub http451: f64,
}

/// Parses a duration like `500ms`, `2s`, `20m`, `1h` to ms.
pub fn parse_duration(s: &str) -> Result<i64> {
    let bad = || {
        Error::Config(format!(
            "bad duration {s:?}: write e.g. 500ms, 2s, 20m or 1h"
        ))
    };
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(bad()),
    };
    Ok((n * ms).round() as i64)
}

impl std::str::FromStr for FaultSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<FaultSpec> {
        let mut f = FaultSpec::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item.split_once('=').ok_or_else(|| {
                Error::Config(format!(
                    "fault {item:?}: expected name=P or name=P:DURATION"
                ))
            })?;
            let prob = |v: &str| -> Result<f64> {
                match v.parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                    _ => Err(Error::Config(format!(
                        "fault {name}: probability {v:?} is not a number in 0..1"
                    ))),
                }
            };
            match name {
                "http5xx" => f.http5xx = prob(value)?,
                "http429" => f.http429 = prob(value)?,
                "reset" => f.reset = prob(value)?,
                "ws_drop" => f.ws_drop = prob(value)?,
                "ws_close_drop" => f.ws_close_drop = prob(value)?,
                "ws_garbage" => f.ws_garbage = prob(value)?,
                "archive_corrupt" => f.archive_corrupt = prob(value)?,
                "html" => f.html = prob(value)?,
                "malformed" => f.malformed = prob(value)?,
                "http418" => f.http418 = prob(value)?,
                "http451" => f.http451 = prob(value)?,
                "slow" => {
                    let (p, d) = value.split_once(':').ok_or_else(|| Error::Config("fault slow: expected slow=P:DURATION, e.g. slow=0.02:2s".into()))?;
                    f.slow = (prob(p)?, parse_duration(d)?);
                }
                "ws_disconnect" => f.ws_disconnect = Some(parse_duration(value)?),
                _ => {
                    return Err(Error::Config(format!(
                        "unknown fault {name:?}: known are http5xx, http429, html, malformed, http418, http451, reset, slow, ws_drop, ws_close_drop, ws_garbage, ws_disconnect, archive_corrupt"
                    )))
                }
            }
        }
        Ok(f)
    }
}

impl std::fmt::Display for FaultSpec {
    /// The spec in `--faults` syntax, faults that are off left out
    /// (durations in ms).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let probs = [
            ("http5xx", self.http5xx),
            ("http429", self.http429),
            ("html", self.html),
            ("malformed", self.malformed),
            ("http418", self.http418),
            ("http451", self.http451),
            ("reset", self.reset),
            ("ws_drop", self.ws_drop),
            ("ws_close_drop", self.ws_close_drop),
            ("ws_garbage", self.ws_garbage),
            ("archive_corrupt", self.archive_corrupt),
        ];
        let mut items: Vec<String> = probs
            .iter()
            .filter(|(_, p)| *p > 0.0)
            .map(|(n, p)| format!("{n}={p}"))
            .collect();
        if self.slow.0 > 0.0 {
            items.push(format!("slow={}:{}ms", self.slow.0, self.slow.1));
        }
        if let Some(d) = self.ws_disconnect {
            items.push(format!("ws_disconnect={d}ms"));
        }
        f.write_str(&items.join(","))
    }
}

/// Draws faults: one counter per fault kind, hashed with the seed.
#[derive(Debug)]
pub struct Dice {
    seed: u64,
    counters: [AtomicU64; 16],
}

/// The kinds of draw, indexing [`Dice`]'s counters.
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub enum Kind {
    Http5xx,
    Http429,
    Reset,
    Slow,
    WsDrop,
    WsCloseDrop,
    WsGarbage,
    ArchiveCorrupt,
    Html,
    Malformed,
    Http418,
    Http451,
}

impl Dice {
    /// Dice for `seed`.
    pub fn new(seed: u64) -> Dice {
        Dice {
            seed,
            counters: Default::default(),
        }
    }

    /// Whether the next draw of `kind` hits, with probability `p`; also
    /// returns a hash of the draw for choosing details deterministically.
    pub fn roll(&self, kind: Kind, p: f64) -> Option<u64> {
        if p <= 0.0 {
            return None;
        }
        let n = self.counters[kind as usize].fetch_add(1, Ordering::Relaxed);
        let h = hash(&[self.seed, hash_str("fault"), kind as u64, n]);
        (unit(h) < p).then_some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_spec() {
        let f: FaultSpec = "http5xx=0.02,http429=0.01,reset=0.01,slow=0.02:2s,ws_disconnect=20m,html=0.1,malformed=0.2,http418=1,http451=0"
            .parse()
            .unwrap();
        assert_eq!(
            (f.html, f.malformed, f.http418, f.http451),
            (0.1, 0.2, 1.0, 0.0)
        );
        assert_eq!(
            f.to_string().parse::<FaultSpec>().unwrap(),
            f,
            "Display round-trips"
        );
        assert_eq!(f.http5xx, 0.02);
        assert_eq!(f.slow, (0.02, 2000));
        assert_eq!(f.ws_disconnect, Some(1_200_000));
        assert_eq!(parse_duration("500ms").unwrap(), 500);
        assert_eq!(parse_duration("1h").unwrap(), 3_600_000);
        for bad in [
            "http5xx=2",
            "nope=0.1",
            "slow=0.1",
            "http5xx",
            "ws_disconnect=5 minutes",
            "reset=x",
        ] {
            let e = bad.parse::<FaultSpec>().unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad}");
        }
        assert_eq!("".parse::<FaultSpec>().unwrap(), FaultSpec::default());
    }

    #[test]
    fn draws_are_deterministic_and_near_p() {
        let (a, b) = (Dice::new(5), Dice::new(5));
        let xs: Vec<bool> = (0..10_000)
            .map(|_| a.roll(Kind::Reset, 0.1).is_some())
            .collect();
        let ys: Vec<bool> = (0..10_000)
            .map(|_| b.roll(Kind::Reset, 0.1).is_some())
            .collect();
        assert_eq!(xs, ys);
        let hits = xs.iter().filter(|&&x| x).count();
        assert!((850..1150).contains(&hits), "{hits}");
        assert!(a.roll(Kind::Http5xx, 0.0).is_none());
    }
}
