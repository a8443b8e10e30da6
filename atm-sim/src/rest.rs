//! Binance's REST market-data endpoints, as pure request-to-reply logic
//! (the HTTP server in `server.rs` only moves bytes).
//!
//! Paths: spot `/api/v3/…`, USD-M `/fapi/v1/…`, COIN-M `/dapi/v1/…`;
//! endpoints `ping`, `time`, `exchangeInfo`, `klines` (spot also `uiKlines`,
//! futures also `continuousKlines`). Parameters, weights, errors and kline
//! selection follow binance-api.md §1–3.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use atm_types::{Interval, Market};
use serde_json::{json, Value};

use crate::candles::{next_open, open_of, Gen, Kline, DAY, MINUTE};
use crate::exchange::Exchange;
use crate::faults::Kind;
use crate::format::{error_body, rest_rows};
use crate::limits::{futures_klines_weight, Verdict};

/// What the transport does with a reply besides sending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Send it.
    Normal,
    /// Send the headers and part of the body, then cut the connection.
    Reset,
    /// Wait this long, then send it.
    Slow(Duration),
}

/// An HTTP reply.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers besides `Content-Type` and `Content-Length`.
    pub headers: Vec<(&'static str, String)>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: bytes::Bytes,
    /// Injected transport faults.
    pub transport: Transport,
}

/// Binance's JSON content type.
pub const JSON: &str = "application/json;charset=UTF-8";

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: impl Into<bytes::Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![],
            content_type: JSON,
            body: body.into(),
            transport: Transport::Normal,
        }
    }

    /// A Binance error reply `{"code":..,"msg":..}`.
    pub fn error(status: u16, code: i32, msg: &str) -> Reply {
        Reply::json(status, error_body(code, msg))
    }
}

/// An API error: HTTP status, Binance code, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError(pub u16, pub i32, pub String);

impl ApiError {
    fn bad(code: i32, msg: impl Into<String>) -> ApiError {
        ApiError(400, code, msg.into())
    }
}

/// The endpoints served per market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Ping,
    Time,
    ExchangeInfo,
    Klines,
    ContinuousKlines,
    /// `markPriceKlines` (by symbol) and `indexPriceKlines` (by pair): the
    /// simulator's mark and index prices are its last prices.
    PriceKlines {
        by_pair: bool,
    },
}

/// Splits a REST path into market and endpoint.
fn route(path: &str) -> Option<(Market, Endpoint)> {
    let (market, rest) = if let Some(r) = path.strip_prefix("/api/v3/") {
        (Market::Spot, r)
    } else if let Some(r) = path.strip_prefix("/fapi/v1/") {
        (Market::UsdM, r)
    } else if let Some(r) = path.strip_prefix("/dapi/v1/") {
        (Market::CoinM, r)
    } else {
        return None;
    };
    let endpoint = match (market, rest) {
        (_, "ping") => Endpoint::Ping,
        (_, "time") => Endpoint::Time,
        (_, "exchangeInfo") => Endpoint::ExchangeInfo,
        (_, "klines") => Endpoint::Klines,
        (Market::Spot, "uiKlines") => Endpoint::Klines,
        (Market::UsdM | Market::CoinM, "continuousKlines") => Endpoint::ContinuousKlines,
        (Market::UsdM | Market::CoinM, "markPriceKlines") => {
            Endpoint::PriceKlines { by_pair: false }
        }
        (Market::UsdM | Market::CoinM, "indexPriceKlines") => {
            Endpoint::PriceKlines { by_pair: true }
        }
        _ => return None,
    };
    Some((market, endpoint))
}

/// Query parameters, checked as Binance checks them.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str, allowed: &[&str]) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(ApiError::bad(
                    -1101,
                    format!("Duplicate values for parameter '{k}'."),
                ));
            }
            if v.is_empty() {
                return Err(ApiError::bad(-1105, format!("Parameter '{k}' was empty.")));
            }
        }
        let read = pairs
            .iter()
            .filter(|(k, _)| allowed.contains(&k.as_str()))
            .count();
        if read < pairs.len() {
            return Err(ApiError::bad(
                -1104,
                format!("Not all sent parameters were read; read '{read}' parameter(s) but was sent '{}'.", pairs.len()),
            ));
        }
        Ok(Params(pairs))
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, k: &str) -> Result<&str, ApiError> {
        self.get(k).ok_or_else(|| {
            ApiError::bad(
                -1102,
                format!("Mandatory parameter '{k}' was not sent, was empty/null, or malformed."),
            )
        })
    }

    fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad(-1100, format!("Illegal characters found in parameter '{k}'; legal range is '^-?[0-9]{{1,20}}$'."))
            }),
        }
    }
}

const KLINE_PARAMS_SPOT: &[&str] = &[
    "symbol",
    "interval",
    "startTime",
    "endTime",
    "limit",
    "timeZone",
];
const KLINE_PARAMS_FUTURES: &[&str] = &["symbol", "interval", "startTime", "endTime", "limit"];
const CONTINUOUS_PARAMS: &[&str] = &[
    "pair",
    "contractType",
    "interval",
    "startTime",
    "endTime",
    "limit",
];
const INDEX_PARAMS: &[&str] = &["pair", "interval", "startTime", "endTime", "limit"];
const EXCHANGE_INFO_SPOT: &[&str] = &[
    "symbol",
    "symbols",
    "permissions",
    "showPermissionSets",
    "symbolStatus",
];
/// Binance's answer to a restricted location (HTTP 451).
const REGION_BLOCKED: &str = "Service unavailable from a restricted location according to 'b. Eligibility' in https://www.binance.com/en/terms. Please contact customer service if you believe you received this message in error.";

/// What a CDN in front of the API sends when the origin fails.
const BAD_GATEWAY_HTML: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\" \"http://www.w3.org/TR/html4/loose.dtd\">\n<HTML><HEAD><META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=iso-8859-1\">\n<TITLE>ERROR: The request could not be satisfied</TITLE>\n</HEAD><BODY>\n<H1>502 ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n<HR noshade size=\"1px\">\nCloudFront wasn't able to connect to the origin.\n</BODY></HTML>\n";

/// A 200 reply with its body broken in one of the ways proxies and
/// half-failed backends break them, chosen by the draw `h`; the
/// `Content-Length` stays consistent, so only the body betrays it.
fn malformed(mut reply: Reply, h: u64) -> Reply {
    let body = &reply.body;
    reply.body = match h % 3 {
        0 => body.slice(..body.len() / 2),
        1 => bytes::Bytes::from_static(b"<html><head><title>Maintenance</title></head><body>Binance is under maintenance.</body></html>"),
        _ => bytes::Bytes::from_static(b"{\"code\":0,\"msg\":\"\",\"data\":null}"),
    };
    reply
}

/// COIN-M's window between startTime and endTime.
const CM_WINDOW_MS: i64 = 200 * DAY;

impl Exchange {
    /// Answers a REST request for `path?query`, or `None` when the path is
    /// not one of Binance's market-data endpoints.
    pub fn rest(&self, path: &str, query: &str) -> Option<Reply> {
        let (market, endpoint) = route(path)?;
        let counters = self.stats.rest(market);
        counters.requests.fetch_add(1, Relaxed);
        let faults = self.faults();
        if self.dice.roll(Kind::Http451, faults.http451).is_some() {
            self.stats.faults.http451.fetch_add(1, Relaxed);
            return Some(Reply::error(451, 0, REGION_BLOCKED));
        }
        if let Some(h) = self.dice.roll(Kind::Http418, faults.http418) {
            self.stats.faults.http418.fetch_add(1, Relaxed);
            let mut r = Reply::error(
                418,
                -1003,
                &format!(
                    "Way too much request weight used; IP banned until {}. Please use WebSocket Streams for live updates to avoid bans.",
                    self.clock.now() + 120_000 + (h % 60_000) as i64
                ),
            );
            r.headers.push((
                "Retry-After",
                self.clock.retry_after_secs(120_000).to_string(),
            ));
            return Some(r);
        }
        if self.dice.roll(Kind::Html, faults.html).is_some() {
            self.stats.faults.html.fetch_add(1, Relaxed);
            return Some(Reply {
                status: 502,
                headers: vec![],
                content_type: "text/html",
                body: BAD_GATEWAY_HTML.into(),
                transport: Transport::Normal,
            });
        }
        if let Some(h) = self.dice.roll(Kind::Http5xx, faults.http5xx) {
            self.stats.faults.http5xx.fetch_add(1, Relaxed);
            let (status, code, msg) = [
                (500, -1001, "Internal error; unable to process your request. Please try again."),
                (502, -1001, "Internal error; unable to process your request. Please try again."),
                (503, -1008, "Service Unavailable."),
                (504, -1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."),
            ][(h % 4) as usize];
            return Some(Reply::error(status, code, msg));
        }
        let now = self.clock.now();
        if self.dice.roll(Kind::Http429, faults.http429).is_some() {
            self.stats.faults.http429.fetch_add(1, Relaxed);
            let mut r = Reply::error(429, -1003, "Too many requests; current limit of IP is exceeded. Please use WebSocket Streams for live updates to avoid polling the API.");
            r.headers.push((
                "Retry-After",
                self.clock
                    .retry_after_secs(MINUTE - now.rem_euclid(MINUTE))
                    .to_string(),
            ));
            return Some(r);
        }
        let weight = self.weight(market, endpoint, query);
        let pool = self.pool(market);
        let verdict = if self.config.rate_limits {
            pool.charge(now, weight)
        } else {
            Verdict::Allowed {
                used: pool.used(now),
            }
        };
        let mut reply = match verdict {
            Verdict::Allowed { .. } => {
                counters.weight.fetch_add(weight, Relaxed);
                match self.endpoint(market, endpoint, query, now) {
                    Ok(body) => Reply::json(200, body),
                    Err(ApiError(status, code, msg)) => Reply::error(status, code, &msg),
                }
            }
            Verdict::Limited { retry_in, .. } => {
                counters.http429.fetch_add(1, Relaxed);
                let mut r = Reply::error(429, -1003, &format!("Too much request weight used; current limit is {} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.", pool.limit()));
                r.headers.push((
                    "Retry-After",
                    self.clock.retry_after_secs(retry_in).to_string(),
                ));
                r
            }
            Verdict::Banned { until, .. } => {
                counters.http418.fetch_add(1, Relaxed);
                let mut r = Reply::error(418, -1003, &format!("Way too much request weight used; IP banned until {until}. Please use WebSocket Streams for live updates to avoid bans."));
                r.headers.push((
                    "Retry-After",
                    self.clock.retry_after_secs(until - now).to_string(),
                ));
                r
            }
        };
        let used = match verdict {
            Verdict::Allowed { used }
            | Verdict::Limited { used, .. }
            | Verdict::Banned { used, .. } => used,
        };
        reply
            .headers
            .push(("X-MBX-USED-WEIGHT-1M", used.to_string()));
        if market == Market::Spot {
            reply.headers.push(("X-MBX-USED-WEIGHT", used.to_string()));
        }
        if reply.status == 200 {
            if let Some(h) = self.dice.roll(Kind::Malformed, faults.malformed) {
                self.stats.faults.malformed.fetch_add(1, Relaxed);
                reply = malformed(reply, h);
            } else if self.dice.roll(Kind::Reset, faults.reset).is_some() {
                self.stats.faults.reset.fetch_add(1, Relaxed);
                reply.transport = Transport::Reset;
            } else if self.dice.roll(Kind::Slow, faults.slow.0).is_some() {
                self.stats.faults.slow.fetch_add(1, Relaxed);
                reply.transport = Transport::Slow(self.clock.real(faults.slow.1));
            }
        }
        Some(reply)
    }

    /// The request weight of an endpoint call (binance-api.md §1-2).
    fn weight(&self, market: Market, endpoint: Endpoint, query: &str) -> u64 {
        match (market, endpoint) {
            (_, Endpoint::Ping | Endpoint::Time) => 1,
            (Market::Spot, Endpoint::ExchangeInfo) => 20,
            (_, Endpoint::ExchangeInfo) => 1,
            (Market::Spot, _) => 2,
            (_, Endpoint::Klines | Endpoint::ContinuousKlines | Endpoint::PriceKlines { .. }) => {
                let limit = form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "limit")
                    .and_then(|(_, v)| v.parse::<u64>().ok());
                futures_klines_weight(limit.unwrap_or(500))
            }
        }
    }

    fn endpoint(
        &self,
        market: Market,
        endpoint: Endpoint,
        query: &str,
        now: i64,
    ) -> Result<Vec<u8>, ApiError> {
        match endpoint {
            Endpoint::Ping => {
                Params::parse(query, &[])?;
                Ok(b"{}".to_vec())
            }
            Endpoint::Time => {
                Params::parse(query, &[])?;
                Ok(format!(r#"{{"serverTime":{now}}}"#).into_bytes())
            }
            Endpoint::ExchangeInfo => self.exchange_info(market, query, now),
            Endpoint::Klines => {
                let p = Params::parse(
                    query,
                    if market == Market::Spot {
                        KLINE_PARAMS_SPOT
                    } else {
                        KLINE_PARAMS_FUTURES
                    },
                )?;
                let symbol = p.required("symbol")?;
                self.klines(market, symbol, &p, now, false)
            }
            Endpoint::PriceKlines { by_pair } => {
                let p = Params::parse(
                    query,
                    if by_pair {
                        INDEX_PARAMS
                    } else {
                        KLINE_PARAMS_FUTURES
                    },
                )?;
                let symbol = if by_pair {
                    let pair = p.required("pair")?;
                    self.perpetual_of(market, pair)?
                } else {
                    p.required("symbol")?.to_string()
                };
                self.klines(market, &symbol, &p, now, true)
            }
            Endpoint::ContinuousKlines => {
                let p = Params::parse(query, CONTINUOUS_PARAMS)?;
                let pair = p.required("pair")?;
                let contract = p.required("contractType")?;
                // The perpetual of the pair carries the continuous series.
                if contract != "PERPETUAL" {
                    return Err(ApiError::bad(-1121, "Invalid symbol."));
                }
                let symbol = self.perpetual_of(market, pair)?;
                self.klines(market, &symbol, &p, now, false)
            }
        }
    }

    /// The perpetual contract of `pair`.
    fn perpetual_of(&self, market: Market, pair: &str) -> Result<String, ApiError> {
        let l = self
            .universe
            .market(market)
            .listings
            .iter()
            .find(|l| l.info["pair"] == pair && l.info["contractType"] == "PERPETUAL");
        l.map(|l| l.model.symbol.clone())
            .ok_or_else(|| ApiError::bad(-1121, "Invalid pair."))
    }

    /// `GET …/exchangeInfo`.
    fn exchange_info(&self, market: Market, query: &str, now: i64) -> Result<Vec<u8>, ApiError> {
        let p = Params::parse(
            query,
            if market == Market::Spot {
                EXCHANGE_INFO_SPOT
            } else {
                &[]
            },
        )?;
        let m = self.universe.market(market);
        let mut skeleton = m.skeleton.clone();
        skeleton["serverTime"] = json!(now);
        skeleton["rateLimits"] = self.rate_limits_json(market);
        let status_key = if market == Market::CoinM {
            "contractStatus"
        } else {
            "status"
        };
        // A subset (spot's symbol, symbols, symbolStatus) is rendered on the
        // fly; the whole list is cached until a status changes.
        let wanted: Option<Vec<&str>> = match (p.get("symbol"), p.get("symbols")) {
            (Some(_), Some(_)) => return Err(ApiError::bad(-1128, "Combination of optional parameters invalid.")),
            (Some(s), None) => Some(vec![s]),
            (None, Some(list)) => Some(
                serde_json::from_str::<Vec<&str>>(list)
                    .map_err(|_| ApiError::bad(-1100, "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'."))?,
            ),
            (None, None) => None,
        };
        let status_filter = match p.get("symbolStatus") {
            None => None,
            Some(s @ ("TRADING" | "HALT" | "BREAK")) => Some(s),
            Some(_) => return Err(ApiError::bad(-1122, "Invalid symbol status.")),
        };
        let mut head =
            serde_json::to_vec(&skeleton).map_err(|e| ApiError(500, -1000, e.to_string()))?;
        head.pop(); // the closing brace
        head.extend_from_slice(br#","symbols":"#);
        if wanted.is_none() && status_filter.is_none() {
            head.extend_from_slice(&self.all_symbols_json(market, now));
        } else {
            let mut out = Vec::new();
            if let Some(w) = &wanted {
                if w.iter().any(|s| !m.by_name.contains_key(*s)) {
                    return Err(ApiError::bad(-1121, "Invalid symbol."));
                }
            }
            for l in &m.listings {
                let status = l.status(now);
                if wanted
                    .as_ref()
                    .is_some_and(|w| !w.contains(&l.model.symbol.as_str()))
                    || status_filter.is_some_and(|s| s != status)
                {
                    continue;
                }
                let mut info = l.info.clone();
                info[status_key] = json!(status);
                out.push(info);
            }
            head.extend_from_slice(
                &serde_json::to_vec(&out).map_err(|e| ApiError(500, -1000, e.to_string()))?,
            );
        }
        head.push(b'}');
        Ok(head)
    }

    /// The full `symbols` array of `market` at `now`, re-rendered only when
    /// some symbol's status changed.
    fn all_symbols_json(&self, market: Market, now: i64) -> Arc<Vec<u8>> {
        let m = self.universe.market(market);
        let statuses: Vec<String> = m
            .listings
            .iter()
            .map(|l| l.status(now).to_string())
            .collect();
        let mut cache = atm_types::sync::lock(&self.symbols_json[market as usize]);
        if let Some((s, json)) = cache.as_ref() {
            if *s == statuses {
                return json.clone();
            }
        }
        let status_key = if market == Market::CoinM {
            "contractStatus"
        } else {
            "status"
        };
        let list: Vec<Value> = m
            .listings
            .iter()
            .zip(&statuses)
            .map(|(l, s)| {
                let mut info = l.info.clone();
                info[status_key] = json!(s);
                info
            })
            .collect();
        let json = Arc::new(serde_json::to_vec(&list).unwrap_or_default());
        *cache = Some((statuses, json.clone()));
        json
    }

    /// `GET …/klines`.
    /// `prices_only`: mark/index price klines, whose volume columns are filler.
    fn klines(
        &self,
        market: Market,
        symbol: &str,
        p: &Params,
        now: i64,
        prices_only: bool,
    ) -> Result<Vec<u8>, ApiError> {
        if market == Market::Spot
            && !symbol
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        {
            return Err(ApiError::bad(-1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."));
        }
        let interval_str = p.required("interval")?;
        let interval = interval_str
            .parse::<Interval>()
            .ok()
            .filter(|i| i.valid_for(market) && i.as_str() == interval_str);
        let listing = self.universe.get(market, symbol);
        let interval = interval.ok_or_else(|| ApiError::bad(-1120, "Invalid interval."))?;
        let listing = listing.ok_or_else(|| ApiError::bad(-1121, "Invalid symbol."))?;
        let max = if market == Market::Spot { 1000 } else { 1500 };
        let limit = match p.int("limit")? {
            None => 500,
            Some(l) if (1..=max).contains(&l) => l as usize,
            Some(_) => return Err(ApiError::bad(-1130, "Invalid data sent for a parameter.")),
        };
        // Spot accepts microseconds for startTime/endTime since 2024-12.
        let time = |k: &str| -> Result<Option<i64>, ApiError> {
            Ok(p.int(k)?.map(|t| {
                if market == Market::Spot && t >= 100_000_000_000_000 {
                    t / 1000
                } else {
                    t
                }
            }))
        };
        let (start, end) = (time("startTime")?, time("endTime")?);
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err(ApiError::bad(-1023, "Start time is greater than end time."));
            }
        }
        let offset = match p.get("timeZone") {
            None => 0,
            Some(tz) => parse_time_zone(tz).ok_or_else(|| {
                ApiError::bad(-1100, "Illegal characters found in parameter 'timeZone'; legal range is '^[+-]?\\d{1,2}(:\\d{2})?$'.")
            })?,
        };
        let select = if market == Market::CoinM {
            let (s, e) = match (start, end) {
                (Some(s), Some(e)) if e - s > CM_WINDOW_MS => {
                    return Err(ApiError::bad(
                        -1127,
                        "More than 4800 hours between startTime and endTime.",
                    ))
                }
                (Some(s), Some(e)) => (s, e),
                (Some(s), None) => (s, (s + CM_WINDOW_MS).min(now)),
                (None, Some(e)) => (e - CM_WINDOW_MS, e),
                (None, None) => (i64::MIN / 4, now),
            };
            Select::Newest { from: s, to: e }
        } else {
            match (start, end) {
                (Some(s), e) => Select::Oldest {
                    from: s,
                    to: e.unwrap_or(i64::MAX / 4),
                },
                (None, e) => Select::Newest {
                    from: i64::MIN / 4,
                    to: e.unwrap_or(i64::MAX / 4),
                },
            }
        };
        let g = Gen::new(&listing.model, now);
        let mut rows = select_klines(&g, interval, offset, select, limit);
        if prices_only {
            for k in &mut rows {
                let a = &mut k.agg;
                // Binance fills the count with the number of price samples (one a second).
                (a.volume, a.quote, a.taker_base, a.taker_quote) = (0, 0, 0, 0);
                a.trades = ((k.close_time + 1 - k.open_time) / 1000) as u64;
            }
        }
        let mut units = listing.model.units;
        if prices_only {
            // Filler columns print as Binance's docs show them: "0".
            (units.qty_decimals, units.quote_decimals) = (0, 0);
        }
        let mut out = Vec::with_capacity(rows.len() * 160 + 2);
        rest_rows(&mut out, &rows, &units);
        Ok(out)
    }
}

/// Parses spot's `timeZone` (`0`, `8`, `-12:00`, `+05:45`) to an offset in ms.
fn parse_time_zone(tz: &str) -> Option<i64> {
    let (sign, rest) = match tz.as_bytes().first()? {
        b'-' => (-1, &tz[1..]),
        b'+' => (1, &tz[1..]),
        _ => (1, tz),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    let off = sign * (h * 60 + m) * MINUTE;
    ((-12 * 60 * MINUTE..=14 * 60 * MINUTE).contains(&off)
        && (0..60).contains(&m)
        && h.to_string().len() <= 2)
        .then_some(off)
}

/// Which rows a klines request selects (both bounds inclusive, on open time).
#[derive(Clone, Copy, Debug)]
pub enum Select {
    /// The oldest `limit` rows from `from`, stopping at `to`.
    Oldest {
        /// Lower bound.
        from: i64,
        /// Upper bound.
        to: i64,
    },
    /// The newest `limit` rows up to `to`, stopping at `from`.
    Newest {
        /// Lower bound.
        from: i64,
        /// Upper bound.
        to: i64,
    },
}

/// The klines a request selects, oldest first. `offset` shifts the
/// interval's buckets (spot's `timeZone`); bounds stay UTC.
pub fn select_klines(
    g: &Gen<'_>,
    interval: Interval,
    offset: i64,
    select: Select,
    limit: usize,
) -> Vec<Kline> {
    let open = |t: i64| open_of(interval, t + offset) - offset;
    let next = |t: i64| next_open(interval, t + offset) - offset;
    let kline = |t: i64| {
        g.range(t, next(t)).map(|agg| Kline {
            open_time: t,
            close_time: next(t) - 1,
            agg,
        })
    };
    let life = g.life();
    let Some(listed) = life.listed else {
        return vec![];
    };
    // Open times of klines that can exist lie in [first, last].
    let first = open(listed);
    let last = open(g.now().min(life.delisted.map_or(i64::MAX, |d| d - 1)));
    let skip_gap = |t: i64, forward: bool| match life.gap {
        // A whole kline inside the relisting gap has nothing: jump over it.
        Some((a, b)) if t >= a && next(t) <= b => {
            if forward {
                open(b)
            } else {
                open(a - 1)
            }
        }
        _ => t,
    };
    let mut rows = Vec::with_capacity(limit.min(1500));
    match select {
        Select::Oldest { from, to } => {
            let mut t = open(from.max(first));
            if t < from {
                t = next(t);
            }
            let to = to.min(last);
            while t <= to && rows.len() < limit {
                let s = skip_gap(t, true);
                if s != t {
                    t = s;
                    continue;
                }
                rows.extend(kline(t));
                t = next(t);
            }
        }
        Select::Newest { from, to } => {
            let mut t = open(to.min(last));
            let from = from.max(first);
            while t >= from && rows.len() < limit {
                let s = skip_gap(t, false);
                if s != t {
                    t = s;
                    continue;
                }
                rows.extend(kline(t));
                t = open(t - 1);
            }
            rows.reverse();
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::SimConfig;
    use crate::universe::UniverseSpec;

    const NOW: i64 = 1_764_000_000_000;

    fn exchange(universe: UniverseSpec) -> Exchange {
        Exchange::new(SimConfig {
            universe,
            now: Some(NOW),
            time_scale: 1e-9,
            ..SimConfig::default()
        })
        .unwrap()
    }

    fn get(x: &Exchange, path: &str, query: &str) -> (u16, Value) {
        let r = x.rest(path, query).unwrap();
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    #[test]
    fn errors_carry_binance_codes() {
        let x = exchange(UniverseSpec::Generated(5));
        let cases = [
            ("/api/v3/klines", "interval=1m", 400, -1102),
            ("/api/v3/klines", "symbol=BTCUSDT", 400, -1102),
            ("/api/v3/klines", "symbol=BTCUSDT&interval=2m", 400, -1120),
            ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1s", 400, -1120),
            ("/api/v3/klines", "symbol=NOPEUSDT&interval=1m", 400, -1121),
            ("/api/v3/klines", "symbol=btcusdt&interval=1m", 400, -1100),
            (
                "/api/v3/klines",
                "symbol=BTCUSDT&interval=1m&limit=1001",
                400,
                -1130,
            ),
            (
                "/fapi/v1/klines",
                "symbol=BTCUSDT&interval=1m&limit=0",
                400,
                -1130,
            ),
            (
                "/api/v3/klines",
                "symbol=BTCUSDT&interval=1m&startTime=",
                400,
                -1105,
            ),
            (
                "/api/v3/klines",
                "symbol=BTCUSDT&interval=1m&startTime=x",
                400,
                -1100,
            ),
            (
                "/api/v3/klines",
                "symbol=BTCUSDT&interval=1m&star_time=1",
                400,
                -1104,
            ),
            (
                "/api/v3/klines",
                "symbol=BTCUSDT&symbol=BTCUSDT&interval=1m",
                400,
                -1101,
            ),
            (
                "/fapi/v1/klines",
                "symbol=BTCUSDT&interval=1m&startTime=2&endTime=1",
                400,
                -1023,
            ),
            (
                "/dapi/v1/klines",
                "symbol=BTCUSD_PERP&interval=1m&startTime=0&endTime=17280000001",
                400,
                -1127,
            ),
            ("/api/v3/exchangeInfo", "symbol=NOPE", 400, -1121),
            ("/api/v3/exchangeInfo", "symbolStatus=NOPE", 400, -1122),
        ];
        for (path, q, status, code) in cases {
            let (s, v) = get(&x, path, q);
            assert_eq!(
                (s, v["code"].as_i64()),
                (status, Some(code as i64)),
                "{path}?{q}: {v}"
            );
            assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()));
        }
        assert!(x.rest("/api/v3/nope", "").is_none());
    }

    #[test]
    fn selection_semantics() {
        let x = exchange(UniverseSpec::Generated(5));
        let rows =
            |path: &str, q: &str| -> Vec<Value> { get(&x, path, q).1.as_array().unwrap().clone() };
        let first = x
            .universe
            .get(Market::Spot, "BTCUSDT")
            .unwrap()
            .first_kline(NOW)
            .unwrap();
        // startTime=0&limit=1 gives the first kline.
        let r = rows(
            "/api/v3/klines",
            "symbol=BTCUSDT&interval=1m&startTime=0&limit=1",
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0][0].as_i64(), Some(first));
        // No bounds: the newest rows, the open candle last.
        let r = rows("/api/v3/klines", "symbol=BTCUSDT&interval=1m");
        assert_eq!(r.len(), 500);
        assert_eq!(r[499][0].as_i64(), Some(NOW - NOW % MINUTE));
        assert!(r[499][6].as_i64().unwrap() > NOW);
        // endTime only: the newest up to it; both: from start, stopping at end.
        let end = NOW - 10 * DAY;
        let r = rows(
            "/fapi/v1/klines",
            &format!("symbol=BTCUSDT&interval=1h&endTime={end}&limit=5"),
        );
        assert_eq!(r.len(), 5);
        assert_eq!(r[4][0].as_i64(), Some(end - end % 3_600_000));
        let r = rows(
            "/fapi/v1/klines",
            &format!(
                "symbol=BTCUSDT&interval=1h&startTime={}&endTime={}",
                end + 1,
                end + 5 * 3_600_000
            ),
        );
        assert_eq!(r.len(), 5, "unaligned start rounds up, end is inclusive");
        // COIN-M: the newest rows of the window ending at endTime.
        let r = rows(
            "/dapi/v1/klines",
            &format!(
                "symbol=BTCUSD_PERP&interval=1d&startTime={}&endTime={}&limit=3",
                end - 100 * DAY,
                end
            ),
        );
        assert_eq!(r.len(), 3);
        assert_eq!(r[2][0].as_i64(), Some(end - end % DAY));
        // ... and startTime=0 finds nothing there (ccxt #2740).
        assert!(rows(
            "/dapi/v1/klines",
            "symbol=BTCUSD_PERP&interval=1d&startTime=0&limit=1"
        )
        .is_empty());
        // Rows have 12 items with Binance's types.
        for k in &r {
            let a = k.as_array().unwrap();
            assert_eq!(a.len(), 12);
            assert!(a[0].is_i64() && a[6].is_i64() && a[8].is_u64());
            assert!([1, 2, 3, 4, 5, 7, 9, 10, 11]
                .iter()
                .all(|&i| a[i].is_string()));
        }
    }

    #[test]
    fn mark_and_index_price_klines() {
        let x = exchange(UniverseSpec::Generated(3));
        let (s, mark) = get(
            &x,
            "/fapi/v1/markPriceKlines",
            "symbol=BTCUSDT&interval=1m&limit=3",
        );
        assert_eq!(s, 200);
        let (_, index) = get(
            &x,
            "/fapi/v1/indexPriceKlines",
            "pair=BTCUSDT&interval=1m&limit=3",
        );
        let (_, trades) = get(&x, "/fapi/v1/klines", "symbol=BTCUSDT&interval=1m&limit=3");
        assert_eq!(mark, index);
        assert_eq!(mark[0][1], trades[0][1]);
        assert_eq!(
            (mark[0][5].as_str(), mark[0][8].as_i64()),
            (Some("0"), Some(60))
        );
        assert_eq!(
            get(&x, "/dapi/v1/indexPriceKlines", "pair=NOPE&interval=1m").1["code"],
            -1121
        );
    }

    #[test]
    fn time_zone_shifts_buckets() {
        let x = exchange(UniverseSpec::Generated(3));
        let (_, v) = get(
            &x,
            "/api/v3/klines",
            "symbol=BTCUSDT&interval=1d&limit=2&timeZone=8",
        );
        let t = v[0][0].as_i64().unwrap();
        assert_eq!((t + 8 * 3_600_000) % DAY, 0);
        assert_eq!(parse_time_zone("-12:00"), Some(-12 * 3_600_000));
        assert_eq!(parse_time_zone("05:45"), Some(345 * MINUTE));
        assert_eq!(parse_time_zone("15"), None);
    }

    #[test]
    fn exchange_info_keeps_binance_shape() {
        let x = exchange(UniverseSpec::Real);
        let r = x.rest("/api/v3/exchangeInfo", "").unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "timezone",
                "serverTime",
                "rateLimits",
                "exchangeFilters",
                "symbols"
            ]
        );
        assert_eq!(v["serverTime"].as_i64().map(|t| t / 1000), Some(NOW / 1000));
        assert_eq!(v["symbols"].as_array().unwrap().len(), 2292);
        let (_, one) = get(&x, "/api/v3/exchangeInfo", "symbol=ETHBTC");
        assert_eq!(one["symbols"].as_array().unwrap().len(), 1);
        let (_, two) = get(
            &x,
            "/api/v3/exchangeInfo",
            "symbols=%5B%22ETHBTC%22,%22BNBBTC%22%5D",
        );
        assert_eq!(two["symbols"].as_array().unwrap().len(), 2);
        let (_, cm) = get(&x, "/dapi/v1/exchangeInfo", "");
        assert!(
            cm["symbols"][0]["contractStatus"].is_string()
                && cm["symbols"][0].get("status").is_none()
        );
        assert_eq!(
            r.headers
                .iter()
                .find(|h| h.0 == "X-MBX-USED-WEIGHT-1M")
                .map(|h| h.1.as_str()),
            Some("20")
        );
    }
}
