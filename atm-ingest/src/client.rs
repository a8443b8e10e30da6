//! The REST client: Binance's market-data endpoints over reqwest, every
//! request charged to its rate-limit pool at its real weight, retried with
//! backoff and jitter when the failure is retryable.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atm_store::{Interval, Kline, Market, Precision};
use serde_json::Value;

use crate::budget::{Budget, ExchangeClock};
use crate::endpoint::Endpoints;
use crate::error::{Error, Result};

/// Attempts per request before giving up on retryable failures.
pub const MAX_ATTEMPTS: u32 = 8;

/// Counters of what the client did.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Requests sent (every attempt).
    pub requests: AtomicU64,
    /// Weight charged.
    pub weight: AtomicU64,
    /// Attempts repeated after a retryable failure.
    pub retries: AtomicU64,
    /// 429s received.
    pub http429: AtomicU64,
    /// Weight charged, per market (spot, USD-M, COIN-M).
    pub weight_by_market: [AtomicU64; 3],
    /// Each market's pool limit, weight per minute.
    pub limit_by_market: [AtomicU64; 3],
    /// Weight used in the pool's latest exchange minute with a request, per market.
    pub minute_used: [AtomicU64; 3],
    /// Archive requests sent (checksums and zips, every attempt).
    pub archive_requests: AtomicU64,
    /// Archive bytes received.
    pub archive_bytes: AtomicU64,
    /// Archive files planned by the sync under way (zips that may exist).
    pub archive_files_planned: AtomicU64,
    /// Archive files verified and committed.
    pub archive_files_done: AtomicU64,
    /// Archive files that do not exist (404: left to REST).
    pub archive_files_missing: AtomicU64,
    /// Archive files whose SHA-256 did not match twice, or that could not be
    /// fetched (left to REST).
    pub archive_files_failed: AtomicU64,
    /// Klines written from archives.
    pub archive_klines: AtomicU64,
}

/// The REST client of one exchange.
pub struct Client {
    http: reqwest::blocking::Client,
    endpoints: Endpoints,
    clock: ExchangeClock,
    spot: Arc<Budget>,
    futures: Arc<Budget>,
    /// What it did so far (shared with status publishers).
    pub stats: Arc<ClientStats>,
}

/// The weight of a klines request on `market` with `limit` rows (binance-api.md §2).
pub fn klines_weight(market: Market, limit: u32) -> u64 {
    match (market, limit) {
        (Market::Spot, _) => 2,
        (_, 0..=99) => 1,
        (_, 100..=499) => 2,
        (_, 500..=1000) => 5,
        _ => 10,
    }
}

/// The page size that gives the most klines per unit of weight on `market`
/// (spot: 1000 at weight 2; futures: 499 at weight 2, ahead of 1000 at 5).
pub fn best_page(market: Market) -> u32 {
    let max = if market == Market::Spot { 1000 } else { 1500 };
    let candidates = [99, 499, 1000, 1500].into_iter().filter(|&l| l <= max);
    candidates
        .max_by(|&a, &b| {
            (a as f64 / klines_weight(market, a) as f64)
                .total_cmp(&(b as f64 / klines_weight(market, b) as f64))
        })
        .unwrap_or(500)
}

impl Client {
    /// A client of `endpoints`, its clock set from the exchange (a
    /// simulator's `/sim/v1/clock` when there is one, else `time`).
    pub fn connect(endpoints: Endpoints) -> Result<Client> {
        Client::connect_for(endpoints, &Market::ALL)
    }

    /// [`Client::connect`] for a job on `markets` only: the clock is read
    /// from the first of them that answers, so a spot-only run never asks a
    /// futures host, and an error names the market the user asked for.
    pub fn connect_for(endpoints: Endpoints, markets: &[Market]) -> Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .user_agent(concat!("atm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let placeholder = ExchangeClock::new(Instant::now(), 0, 1.0);
        let mut c = Client {
            http,
            endpoints,
            clock: placeholder,
            spot: Arc::new(Budget::new(6000)),
            futures: Arc::new(Budget::new(2400)),
            stats: Arc::new(ClientStats::default()),
        };
        for m in Market::ALL {
            c.stats.limit_by_market[m as usize].store(c.budget(m).limit(), Relaxed);
        }
        c.clock = c.sync_clock(markets)?;
        Ok(c)
    }

    /// Where the exchange is.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The exchange's clock.
    pub fn clock(&self) -> &ExchangeClock {
        &self.clock
    }

    fn sync_clock(&self, markets: &[Market]) -> Result<ExchangeClock> {
        if let Some(base) = &self.endpoints.sim_base {
            let t = Instant::now();
            if let Ok(r) = self.http.get(format!("{base}/sim/v1/clock")).send() {
                if r.status().is_success() {
                    if let Ok(v) = r.json::<Value>() {
                        if let (Some(now), Some(scale)) =
                            (v["now"].as_i64(), v["time_scale"].as_f64())
                        {
                            let half_trip = t.elapsed() / 2;
                            return Ok(ExchangeClock::new(t + half_trip, now, scale));
                        }
                    }
                }
            }
        }
        let mut first_error = None;
        let markets = if markets.is_empty() {
            &Market::ALL[..]
        } else {
            markets
        };
        for (i, &market) in markets.iter().enumerate() {
            let t = Instant::now();
            match self.get_json(market, "time", "", 1) {
                Ok(v) => {
                    let now = v["serverTime"].as_i64().ok_or_else(|| Error::Malformed {
                        market,
                        path: "time".into(),
                        msg: "no serverTime".into(),
                    })?;
                    return Ok(ExchangeClock::new(t + t.elapsed() / 2, now, 1.0));
                }
                Err(e) => {
                    if let Some(next) = markets.get(i + 1) {
                        log::warn!("reading the exchange's clock: {e}; asking {next} instead");
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error
            .unwrap_or_else(|| Error::Config("no market to read the exchange's clock from".into())))
    }

    /// The weight pool of `market` (COIN-M shares USD-M's).
    pub fn budget(&self, market: Market) -> &Arc<Budget> {
        match market {
            Market::Spot => &self.spot,
            _ => &self.futures,
        }
    }

    /// Sets the pools' limits from exchangeInfo documents' `rateLimits`.
    pub fn set_limits(&mut self, market: Market, info: &Value) {
        let limit = info["rateLimits"].as_array().and_then(|a| {
            a.iter().find(|l| {
                l["rateLimitType"] == "REQUEST_WEIGHT"
                    && l["interval"] == "MINUTE"
                    && l["intervalNum"].as_u64().unwrap_or(1) == 1
            })
        });
        if let Some(limit) = limit.and_then(|l| l["limit"].as_u64()) {
            let b = Arc::new(Budget::new(limit));
            match market {
                Market::Spot => self.spot = b,
                // COIN-M shares USD-M's pool; the smaller limit binds.
                _ if limit < self.futures.limit() || market == Market::UsdM => self.futures = b,
                _ => {}
            }
        }
        for m in Market::ALL {
            self.stats.limit_by_market[m as usize].store(self.budget(m).limit(), Relaxed);
        }
    }

    /// GETs `<prefix>/<endpoint>?<query>` of `market` as JSON, charging
    /// `weight`, with retries.
    pub fn get_json(
        &self,
        market: Market,
        endpoint: &str,
        query: &str,
        weight: u64,
    ) -> Result<Value> {
        self.get_parsed(market, endpoint, query, weight, |body| {
            serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))
        })
    }

    /// GETs a body and parses it with `parse`, retrying retryable failures
    /// with backoff; a body `parse` rejects (truncated, an HTML page, the
    /// wrong shape) counts as a retryable failure, as a proxy or a
    /// half-failed backend produces them.
    pub fn get_parsed<T>(
        &self,
        market: Market,
        endpoint: &str,
        query: &str,
        weight: u64,
        parse: impl Fn(&[u8]) -> std::result::Result<T, String>,
    ) -> Result<T> {
        self.retrying(|| {
            let body = self.attempt(market, endpoint, query, weight)?;
            parse(&body).map_err(|msg| Error::Malformed {
                market,
                path: endpoint.into(),
                msg,
            })
        })
    }

    /// GETs raw bytes, charging `weight`, with retries on retryable failures.
    pub fn get(&self, market: Market, endpoint: &str, query: &str, weight: u64) -> Result<Vec<u8>> {
        self.retrying(|| self.attempt(market, endpoint, query, weight))
    }

    /// Runs `attempt` until it succeeds, fails fatally, or [`MAX_ATTEMPTS`]
    /// retryable failures have passed, with backoff and jitter between.
    pub fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut n = 0;
        loop {
            n += 1;
            match attempt() {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && n < MAX_ATTEMPTS => {
                    self.stats.retries.fetch_add(1, Relaxed);
                    let backoff = backoff(n);
                    // A connection that keeps failing shows from its second
                    // retry on; one-off hiccups stay at debug level.
                    if n >= 2 && matches!(e, Error::Network { .. }) {
                        log::warn!("{e}; retry {n} of {} in {backoff:?}", MAX_ATTEMPTS - 1);
                    } else {
                        log::debug!("{e}; retry {n} in {backoff:?}");
                    }
                    std::thread::sleep(backoff);
                }
                Err(e) if e.is_retryable() => {
                    return Err(Error::RetriesExhausted {
                        attempts: n,
                        last: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn attempt(&self, market: Market, endpoint: &str, query: &str, weight: u64) -> Result<Vec<u8>> {
        let budget = self.budget(market);
        let (window, used) = budget.acquire(&self.clock, weight);
        self.stats.minute_used[market as usize].store(used, Relaxed);
        self.stats.weight_by_market[market as usize].fetch_add(weight, Relaxed);
        let url = format!(
            "{}{}/{endpoint}{}{query}",
            self.endpoints.base(market),
            Endpoints::prefix(market),
            if query.is_empty() { "" } else { "?" }
        );
        let path = endpoint.to_string();
        let net = |e: reqwest::Error| Error::Network {
            market,
            path: path.clone(),
            msg: network_cause(&e),
        };
        self.stats.requests.fetch_add(1, Relaxed);
        self.stats.weight.fetch_add(weight, Relaxed);
        let resp = self.http.get(&url).send().map_err(net)?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(used) = header("x-mbx-used-weight-1m") {
            budget.observe(window, used);
        }
        let retry_after = header("retry-after");
        let body = resp.bytes().map_err(net)?.to_vec();
        if status == 200 {
            return Ok(body);
        }
        let (code, msg) = match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v["code"].is_i64() => (
                v["code"].as_i64(),
                v["msg"].as_str().unwrap_or_default().to_string(),
            ),
            _ => (None, summarize(&body)),
        };
        match status {
            418 => Err(Error::Banned {
                market,
                retry_after_s: retry_after.unwrap_or(0),
                msg,
            }),
            451 => Err(Error::RegionBlocked { market }),
            429 => {
                self.stats.http429.fetch_add(1, Relaxed);
                // The whole pool pauses, not just this request: every
                // request sent before Retry-After passes counts toward a ban.
                let wait = Duration::from_secs(retry_after.unwrap_or(1).max(1));
                budget.exhaust(window);
                budget.pause(wait);
                log::warn!("{market} {endpoint}: HTTP 429 (code {code:?}), pausing the pool {wait:?} as Retry-After says");
                Err(Error::Api {
                    market,
                    path,
                    status,
                    code,
                    msg,
                })
            }
            _ => Err(Error::Api {
                market,
                path,
                status,
                code,
                msg,
            }),
        }
    }

    /// GETs an archive file (data.binance.vision; no weight), with retries:
    /// `None` when it does not exist (404).
    pub fn archive_get(&self, market: Market, url: &str) -> Result<Option<Vec<u8>>> {
        self.retrying(|| {
            let Some(resp) = self.archive_stream(market, url)? else {
                return Ok(None);
            };
            let bytes = resp.bytes().map_err(|e| archive_net(market, url, &e))?;
            self.stats
                .archive_bytes
                .fetch_add(bytes.len() as u64, Relaxed);
            Ok(Some(bytes.to_vec()))
        })
    }

    /// Starts one GET of an archive file, to read its body as it arrives:
    /// `None` on a 404; an error (retryable for 5xx) on another status.
    pub fn archive_stream(
        &self,
        market: Market,
        url: &str,
    ) -> Result<Option<reqwest::blocking::Response>> {
        self.stats.archive_requests.fetch_add(1, Relaxed);
        // A monthly zip may take a while on a slow link.
        let resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(600))
            .send()
            .map_err(|e| archive_net(market, url, &e))?;
        match resp.status().as_u16() {
            200 => Ok(Some(resp)),
            404 => Ok(None),
            status => {
                let body = resp.bytes().map(|b| summarize(&b)).unwrap_or_default();
                Err(Error::Api {
                    market,
                    path: url.to_string(),
                    status,
                    code: None,
                    msg: body,
                })
            }
        }
    }

    /// Klines of `symbol`: `[start, end]` on open time (both optional), at most `limit`.
    #[allow(clippy::too_many_arguments)]
    pub fn klines(
        &self,
        market: Market,
        symbol: &str,
        interval: Interval,
        start: Option<i64>,
        end: Option<i64>,
        limit: u32,
        precision: Precision,
    ) -> Result<Vec<Kline>> {
        let mut q = format!(
            "symbol={}&interval={}&limit={limit}",
            encode(symbol),
            interval.as_str()
        );
        if let Some(s) = start {
            q.push_str(&format!("&startTime={s}"));
        }
        if let Some(e) = end {
            q.push_str(&format!("&endTime={e}"));
        }
        self.get_parsed(market, "klines", &q, klines_weight(market, limit), |body| {
            crate::parse::klines(body, precision)
        })
    }
}

/// A network failure of an archive download (retryable).
fn archive_net(market: Market, url: &str, e: &reqwest::Error) -> Error {
    Error::Network {
        market,
        path: url.to_string(),
        msg: network_cause(e),
    }
}

/// What went wrong with a request, for people: the kind of failure first
/// (name resolution, refused connection, TLS, timeout), then every cause in
/// the error's chain once (reqwest's own message alone says only "error
/// sending request for url").
pub(crate) fn network_cause(e: &reqwest::Error) -> String {
    let mut causes: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        let m = c.to_string();
        if !m.is_empty() && !causes.iter().any(|seen| seen.contains(&m)) {
            causes.push(m);
        }
        cur = c.source();
    }
    let all = causes.join(": ").to_lowercase();
    let kind = if e.is_timeout() {
        "timed out"
    } else if all.contains("dns")
        || all.contains("lookup address")
        || all.contains("name or service not known")
    {
        "cannot resolve the host (DNS)"
    } else if all.contains("connection refused") {
        "connection refused"
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        "TLS failed"
    } else if all.contains("connection reset")
        || all.contains("broken pipe")
        || all.contains("connection closed")
    {
        "connection cut"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // The URL is said once, by the first cause; the rest explains it.
    format!("{kind}: {}", causes.join(": "))
}

/// Exponential backoff with jitter: 200 ms doubling per attempt, at most 5 s,
/// then a random 50-100 % of it.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = (200u64 << attempt.min(5)).min(5_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    let jitter = 0.5 + (nanos % 1000) as f64 / 2000.0;
    Duration::from_millis((base as f64 * jitter) as u64)
}

/// A short, one-line description of a non-JSON body (an HTML error page, say).
fn summarize(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let kind = if flat.to_ascii_lowercase().contains("<html") {
        "an HTML page"
    } else {
        "a non-JSON body"
    };
    format!("{kind}: {:?}", flat.chars().take(120).collect::<String>())
}

/// Percent-encodes a symbol for a query string (USD-M lists non-ASCII symbols).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn network_errors_say_their_cause() {
        let http = reqwest::blocking::Client::new();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = http
            .get(format!("http://127.0.0.1:{port}/api/v3/time"))
            .send()
            .unwrap_err();
        let msg = network_cause(&refused);
        assert!(
            msg.starts_with("connection refused: error sending request for url (http://127.0.0.1:"),
            "{msg}"
        );
        assert!(
            msg.to_lowercase().matches("connection refused").count() >= 2,
            "the chain's own words follow: {msg}"
        );
        let unresolvable = http
            .get("http://atm-test.invalid/api/v3/time")
            .send()
            .unwrap_err();
        let msg = network_cause(&unresolvable);
        assert!(msg.starts_with("cannot resolve the host (DNS): "), "{msg}");
    }

    use super::*;

    #[test]
    fn page_sizes_maximise_klines_per_weight() {
        assert_eq!(best_page(Market::Spot), 1000);
        assert_eq!(best_page(Market::UsdM), 499);
        assert_eq!(best_page(Market::CoinM), 499);
        assert_eq!(klines_weight(Market::UsdM, 500), 5);
    }

    #[test]
    fn encodes_unicode_symbols() {
        assert_eq!(
            encode("币安人生USDT"),
            "%E5%B8%81%E5%AE%89%E4%BA%BA%E7%94%9FUSDT"
        );
        assert_eq!(encode("BTCUSD_PERP"), "BTCUSD_PERP");
        assert!(summarize(b"<html><body>502 Bad Gateway</body></html>").starts_with("an HTML page"));
    }
}
