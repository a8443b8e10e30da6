//! Binance's WebSocket market streams: kline events, raw and combined,
//! with SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY /
//! GET_PROPERTY, and Binance's limits (binance-api.md §4).
//!
//! Each market's stream host is replaced by a path prefix: `/spot`, `/um`,
//! `/cm` (USD-M also answers under `/um/market`, where its kline streams
//! live since 2026). Under it: `/ws/<stream>` (futures also
//! `/ws/<a>/<b>`) for raw payloads, `/stream?streams=<a>/<b>` for
//! `{"stream":..,"data":..}`, and bare `/ws` or `/stream` to SUBSCRIBE later.
//!
//! Updates of the kline in progress go out at Binance's cadence (spot 2 s,
//! 1 s for `1s`; futures 250 ms) in exchange time, on a fixed grid of
//! exchange time; under a fast `--time-scale` (a tick under 4 ms of real
//! time) they are thinned to a multiple of the cadence. A kline's final update (`"x":true`) is never thinned: every closed
//! kline is sent, equal to the REST kline.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use atm_types::{Interval, Market};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::candles::{next_open, open_of, Agg, Gen, Kline, DAY, SECOND};
use crate::exchange::Exchange;
use crate::faults::Kind;
use crate::format::{continuous_kline_event, json_str, kline_event, EventMeta};
use crate::server::Body;

/// Binance's per-market WebSocket limits.
#[derive(Clone, Copy, Debug)]
pub struct WsLimits {
    /// Streams one connection may hold.
    pub max_streams: usize,
    /// Incoming messages (text, ping, pong) per second.
    pub max_incoming_per_sec: u32,
    /// Server ping period, exchange ms.
    pub ping_every: i64,
    /// Time to answer a ping, exchange ms.
    pub pong_within: i64,
    /// Connection attempts per 5 minutes (spot only documents one).
    pub connects_per_5m: Option<u32>,
}

/// The limits of `market` (binance-api.md §4).
pub fn limits(market: Market) -> WsLimits {
    match market {
        Market::Spot => WsLimits {
            max_streams: 1024,
            max_incoming_per_sec: 5,
            ping_every: 20_000,
            pong_within: 60_000,
            connects_per_5m: Some(300),
        },
        Market::UsdM => WsLimits {
            max_streams: 1024,
            max_incoming_per_sec: 10,
            ping_every: 180_000,
            pong_within: 600_000,
            connects_per_5m: None,
        },
        Market::CoinM => WsLimits {
            max_streams: 200,
            max_incoming_per_sec: 10,
            ping_every: 180_000,
            pong_within: 600_000,
            connects_per_5m: None,
        },
    }
}

/// A connection's lifetime: Binance cuts every socket at 24 hours.
pub const LIFETIME_MS: i64 = DAY;
/// The least real time between two ticks of a connection. Binance's
/// cadence is kept exactly up to `--time-scale` 62.5 on futures (250 ms of
/// exchange time last 4 ms) and 250 on spot; on a faster clock the ticks
/// are the smallest multiple of the cadence that lasts this long.
const MIN_TICK: Duration = Duration::from_millis(4);

/// On a clock too fast for the cadence at [`MIN_TICK`] (the updates are
/// thinned anyway), ticks last at least this long: at `--time-scale 2400`,
/// 4 ms ticks sent five times the messages of 20 ms ones for no fidelity
/// gained, and starved the clients sharing two cores with the simulator.
const THINNED_MIN_TICK: Duration = Duration::from_millis(20);

/// A tick's events are sent in up to this many steps across the tick
/// (every ~8 ms at futures' 250 ms cadence): Binance's streams, each on
/// its own schedule, arrive spread out. Eight steps sent bursts of ~100
/// messages per connection, which a client took for its own latency.
const PACE_STEPS: u32 = 32;
/// Steps are at least this far apart: a fast clock's short ticks get fewer.
const PACE_STEP_MIN: Duration = Duration::from_millis(2);
/// The fewest steps of a tick.
const PACE_STEPS_MIN: u32 = 8;

/// Whether `req` asks for a WebSocket upgrade.
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    let has = |h: hyper::header::HeaderName, v: &str| {
        req.headers().get_all(h).iter().any(|x| {
            x.to_str()
                .is_ok_and(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(v)))
        })
    };
    has(CONNECTION, "upgrade") && has(UPGRADE, "websocket")
}

/// How a connection was opened.
struct Opening {
    market: Market,
    combined: bool,
    streams: Vec<String>,
}

/// Parses `/spot/ws/a`, `/um/market/stream?streams=a/b`, ….
fn parse_opening(path: &str, query: &str) -> Option<Opening> {
    let (market, rest) = if let Some(r) = path.strip_prefix("/spot") {
        (Market::Spot, r)
    } else if let Some(r) = path
        .strip_prefix("/um/market")
        .or_else(|| path.strip_prefix("/um"))
    {
        (Market::UsdM, r)
    } else {
        (Market::CoinM, path.strip_prefix("/cm")?)
    };
    if rest == "/ws" {
        return Some(Opening {
            market,
            combined: false,
            streams: vec![],
        });
    }
    if let Some(s) = rest.strip_prefix("/ws/") {
        let streams: Vec<String> = s.split('/').map(str::to_string).collect();
        if streams.iter().any(String::is_empty) || (market == Market::Spot && streams.len() > 1) {
            return None;
        }
        return Some(Opening {
            market,
            combined: false,
            streams,
        });
    }
    if rest == "/stream" {
        let streams = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "streams")
            .map(|(_, v)| v.into_owned());
        let streams = streams
            .map(|s| {
                s.split('/')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        return Some(Opening {
            market,
            combined: true,
            streams,
        });
    }
    None
}

/// What a stream carries.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StreamKind {
    /// `<symbol>@kline_<interval>`: `"e":"kline"` events.
    Kline,
    /// `<pair>_perpetual@continuousKline_<interval>` (futures): `"e":"continuous_kline"`
    /// events of the pair's perpetual, with `ps` and `ct`, and no `s` in `k`.
    Continuous {
        /// The pair, upper case.
        pair: String,
    },
}

/// A stream name's symbol, interval and kind, if it names a listed symbol's
/// kline stream.
fn parse_stream(
    ex: &Exchange,
    market: Market,
    name: &str,
) -> Option<(String, Interval, StreamKind)> {
    // Symbols and pairs are lower case in stream names (intervals keep `1M`).
    let lower = |s: &str| s == s.to_lowercase();
    if let Some((pair_contract, iv)) = name.split_once("@continuousKline_") {
        let pair = pair_contract
            .strip_suffix("_perpetual")
            .filter(|p| lower(p))?;
        let interval: Interval = iv.parse().ok().filter(|i: &Interval| {
            i.valid_for(market) && i.as_str() == iv && market != Market::Spot
        })?;
        let listing = ex.universe.market(market).listings.iter().find(|l| {
            l.info["contractType"] == "PERPETUAL"
                && l.info["pair"]
                    .as_str()
                    .is_some_and(|p| p.to_lowercase() == pair)
        })?;
        let pair = listing.info["pair"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        return Some((
            listing.model.symbol.clone(),
            interval,
            StreamKind::Continuous { pair },
        ));
    }
    let (sym, iv) = name.split_once("@kline_").filter(|(sym, _)| lower(sym))?;
    let interval: Interval = iv
        .parse()
        .ok()
        .filter(|i: &Interval| i.valid_for(market) && i.as_str() == iv)?;
    let listing = ex
        .universe
        .market(market)
        .listings
        .iter()
        .find(|l| l.model.symbol.to_lowercase() == sym)?;
    Some((listing.model.symbol.clone(), interval, StreamKind::Kline))
}

fn plain(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(bytes::Bytes::from(msg.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

/// Answers an upgrade request: 101 and a connection task, or an HTTP error.
pub fn upgrade(ex: Arc<Exchange>, mut req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let Some(opening) = parse_opening(&path, &query) else {
        return plain(StatusCode::NOT_FOUND, "unknown stream path");
    };
    // Names in the URL that are no stream are accepted and carry nothing, as
    // on Binance (ccxt.pro opens `/ws/0` and SUBSCRIBEs afterwards).
    let lim = limits(opening.market);
    if opening.streams.len() > lim.max_streams {
        ex.stats.ws_limit_violations.fetch_add(1, Relaxed);
        return plain(
            StatusCode::BAD_REQUEST,
            &format!("Invalid request: more than {} streams", lim.max_streams),
        );
    }
    if let Some(cap) = lim.connects_per_5m {
        if !ex.ws_connect_allowed(opening.market, cap) {
            ex.stats.ws_limit_violations.fetch_add(1, Relaxed);
            return plain(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many connection attempts",
            );
        }
    }
    let Some(key) = req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                ex.stats.ws_connections.fetch_add(1, Relaxed);
                Connection::new(ex, opening).run(ws).await;
            }
            Err(e) => log::debug!("websocket upgrade failed: {e}"),
        }
    });
    let mut r = plain(StatusCode::SWITCHING_PROTOCOLS, "");
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

impl Exchange {
    /// Counts a connection attempt on `market`; false when over `cap` per 5 exchange minutes.
    fn ws_connect_allowed(&self, market: Market, cap: u32) -> bool {
        let window = self.clock.now().div_euclid(5 * 60_000);
        let mut w = atm_types::sync::lock(&self.ws_connects);
        let e = w.entry(market as u8).or_insert((window, 0));
        if e.0 != window {
            *e = (window, 0);
        }
        e.1 += 1;
        e.1 <= cap
    }

    /// Trades of `listing` before `t` (for kline events' trade ids), with
    /// the count before each day cached.
    fn trades_before(&self, market: Market, symbol: &str, g: &Gen<'_>, t: i64) -> u64 {
        let day = t - t.rem_euclid(DAY);
        let key = (market as u8, symbol.to_string(), day);
        let base = atm_types::sync::lock(&self.trade_base).get(&key).copied();
        let base = base.unwrap_or_else(|| {
            let listed = g.life().listed.unwrap_or(day);
            let mut d = listed - listed.rem_euclid(DAY);
            let mut n = 0;
            while d < day {
                n += g.range(d, d + DAY).map_or(0, |a| a.trades);
                d += DAY;
            }
            let mut cache = atm_types::sync::lock(&self.trade_base);
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(key, n);
            n
        });
        base + if t > day {
            g.range(day, t).map_or(0, |a| a.trades)
        } else {
            0
        }
    }
}

/// One subscribed stream's progress.
struct Sub {
    name: String,
    symbol: String,
    interval: Interval,
    kind: StreamKind,
    /// Open time of the kline being built.
    open: i64,
    /// Its base klines aggregated over `[open, upto)`, whole seconds.
    acc: Option<Agg>,
    upto: i64,
    /// The tick (its scheduled exchange time) from which the next
    /// in-progress update is due: the last update's tick plus the cadence.
    next_due: i64,
    /// Id of the first trade of the kline being built, once known.
    first_trade: Option<i64>,
}

struct Connection {
    ex: Arc<Exchange>,
    market: Market,
    combined: bool,
    subs: Vec<Sub>,
    opened: i64,
    last_ping: i64,
    ping_payload: Option<(Vec<u8>, i64)>,
    incoming: (i64, u32),
}

enum Flow {
    Continue,
    Close,
}

impl Connection {
    fn new(ex: Arc<Exchange>, opening: Opening) -> Connection {
        let now = ex.clock.now();
        let mut c = Connection {
            ex,
            market: opening.market,
            combined: opening.combined,
            subs: vec![],
            opened: now,
            last_ping: now,
            ping_payload: None,
            incoming: (0, 0),
        };
        for s in &opening.streams {
            c.subscribe(s, now);
        }
        c
    }

    fn subscribe(&mut self, name: &str, now: i64) -> bool {
        if self.subs.iter().any(|s| s.name == name) {
            return true;
        }
        let Some((symbol, interval, kind)) = parse_stream(&self.ex, self.market, name) else {
            return false;
        };
        let open = open_of(interval, now);
        self.subs.push(Sub {
            name: name.to_string(),
            symbol,
            interval,
            kind,
            open,
            acc: None,
            upto: open,
            next_due: i64::MIN,
            first_trade: None,
        });
        self.ex.stats.ws_subscriptions.fetch_add(1, Relaxed);
        self.ex.stats.saw_streams(self.subs.len());
        true
    }

    /// Sends up to `n` of the `pending` events; false when the connection is gone.
    async fn send_some<T>(
        &self,
        tx: &mut T,
        pending: &mut std::collections::VecDeque<String>,
        n: usize,
    ) -> bool
    where
        T: futures_util::Sink<Message> + Unpin,
    {
        for _ in 0..n {
            let Some(e) = pending.pop_front() else { break };
            if tx.feed(Message::text(e)).await.is_err() {
                return false;
            }
            self.ex.stats.ws_messages.fetch_add(1, Relaxed);
        }
        tx.flush().await.is_ok()
    }

    async fn run<S>(mut self, ws: WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut tx, mut rx) = ws.split();
        let clock = self.ex.clock.clone();
        let cadence = |iv: Interval, m: Market| match (m, iv) {
            (Market::Spot, Interval::S1) => 1000,
            (Market::Spot, _) => 2000,
            _ => 250,
        };
        // Ticks at the market's fastest cadence (spot `1s`: 1 s; futures 250 ms),
        // or the smallest multiple of it that lasts MIN_TICK of real time,
        // on a fixed grid of exchange time (multiples of the period, so a
        // kline's close falls on a tick). A late tick does not push the
        // later ones back (`Skip`: the next one is the next grid point):
        // `Delay` made every tick's lateness add up, and the 20 ms floor
        // of real time made 1.2 s of exchange time at `--time-scale 60`.
        let fastest = cadence(Interval::S1, self.market);
        let mut floor = MIN_TICK.as_secs_f64() * 1000.0 * clock.scale();
        if floor > fastest as f64 {
            floor = THINNED_MIN_TICK.as_secs_f64() * 1000.0 * clock.scale();
        }
        let period = fastest * ((floor / fastest as f64).ceil() as i64).max(1);
        let tick = clock.real(period);
        let now = clock.now();
        let first = now - now.rem_euclid(period) + period;
        let mut timer = tokio::time::interval_at(clock.instant_of(first).into(), tick);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // A tick's events go out spread over the tick, closes first, as
        // Binance pushes each stream on its own schedule (not all at once).
        let steps = ((tick.as_micros() / PACE_STEP_MIN.as_micros()) as u32)
            .clamp(PACE_STEPS_MIN, PACE_STEPS);
        let mut pace = tokio::time::interval(tick / steps);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut per_step = 1;
        let lim = limits(self.market);
        loop {
            tokio::select! {
                msg = rx.next() => {
                    let Some(Ok(msg)) = msg else { break };
                    let now = clock.now();
                    let second = now.div_euclid(SECOND);
                    if self.incoming.0 != second {
                        self.incoming = (second, 0);
                    }
                    self.incoming.1 += 1;
                    if self.incoming.1 > lim.max_incoming_per_sec {
                        self.ex.stats.ws_limit_violations.fetch_add(1, Relaxed);
                        let _ = tx.send(Message::Close(None)).await;
                        break;
                    }
                    let replies = match msg {
                        Message::Text(t) => match self.control(t.as_str(), now) {
                            (replies, Flow::Continue) => replies,
                            (replies, Flow::Close) => {
                                for r in replies {
                                    let _ = tx.send(Message::text(r)).await;
                                }
                                let _ = tx.send(Message::Close(None)).await;
                                break;
                            }
                        },
                        Message::Pong(p) => {
                            if self.ping_payload.as_ref().is_some_and(|(want, _)| *want == p.as_ref()) {
                                self.ping_payload = None;
                            }
                            vec![]
                        }
                        Message::Close(_) => {
                            // Send the close reply tungstenite queued (RFC 6455 §5.5.1).
                            let _ = tx.flush().await;
                            break;
                        }
                        _ => vec![],
                    };
                    for r in replies {
                        if tx.send(Message::text(r)).await.is_err() {
                            return;
                        }
                    }
                }
                scheduled = timer.tick() => {
                    let now = clock.now();
                    // The grid point this tick stands for, whatever its lateness.
                    let at = clock.at(scheduled.into_std());
                    let slot = ((at + period / 2).div_euclid(period) * period).max(now - now.rem_euclid(period));
                    // Faults may change while the connection lives (`POST /sim/v1/faults`).
                    let disconnect_after = self.ex.faults().ws_disconnect;
                    if now - self.opened >= LIFETIME_MS || disconnect_after.is_some_and(|d| now - self.opened >= d) {
                        if now - self.opened < LIFETIME_MS {
                            self.ex.stats.faults.ws_disconnect.fetch_add(1, Relaxed);
                        }
                        let _ = tx.send(Message::Close(None)).await;
                        break;
                    }
                    if let Some((_, sent)) = &self.ping_payload {
                        if now - sent > lim.pong_within {
                            let _ = tx.send(Message::Close(None)).await;
                            break;
                        }
                    }
                    if now - self.last_ping >= lim.ping_every {
                        self.last_ping = now;
                        let payload = now.to_string().into_bytes();
                        if self.ping_payload.is_none() {
                            self.ping_payload = Some((payload.clone(), now));
                        }
                        if tx.send(Message::Ping(payload.into())).await.is_err() {
                            break;
                        }
                    }
                    let market = self.market;
                    let events = self.events(now, slot, |iv| cadence(iv, market));
                    // What the last tick left goes out now, then this tick's first step.
                    let left = pending.len();
                    pending.extend(events);
                    per_step = (pending.len() - left).div_ceil(steps as usize).max(1);
                    if !self.send_some(&mut tx, &mut pending, left + per_step).await {
                        break;
                    }
                }
                _ = pace.tick(), if !pending.is_empty() => {
                    if !self.send_some(&mut tx, &mut pending, per_step).await {
                        break;
                    }
                }
            }
        }
    }

    /// The kline events due at `now`, a tick scheduled at `slot` (exchange
    /// time on the tick grid): every kline closed since the last tick, then
    /// one update of each kline in progress whose cadence is due.
    fn events(&mut self, now: i64, slot: i64, cadence: impl Fn(Interval) -> i64) -> Vec<String> {
        let ex = self.ex.clone();
        // Closes first, then the updates of klines in progress.
        let mut closes = Vec::new();
        let mut out = Vec::new();
        let combined = self.combined;
        let faults = ex.faults();
        // Consecutive streams of one symbol share a generator and its cached splits.
        let mut gen: Option<Gen<'_>> = None;
        for sub in &mut self.subs {
            let Some(listing) = ex.universe.get(self.market, &sub.symbol) else {
                continue;
            };
            if gen.as_ref().is_none_or(|g| g.symbol() != sub.symbol) {
                gen = Some(Gen::new(&listing.model, now));
            }
            let Some(g) = gen.as_ref() else { continue };
            let units = &listing.model.units;
            let emit =
                |out: &mut Vec<String>, k: &Kline, closed: bool, first_trade: &mut Option<i64>| {
                    let drop = if closed {
                        ex.dice.roll(Kind::WsCloseDrop, faults.ws_close_drop)
                    } else {
                        None
                    }
                    .or_else(|| ex.dice.roll(Kind::WsDrop, faults.ws_drop));
                    if drop.is_some() {
                        let c = if closed && faults.ws_close_drop > 0.0 {
                            &ex.stats.faults.ws_close_drop
                        } else {
                            &ex.stats.faults.ws_drop
                        };
                        c.fetch_add(1, Relaxed);
                        return;
                    }
                    if let Some(h) = ex.dice.roll(Kind::WsGarbage, faults.ws_garbage) {
                        ex.stats.faults.ws_garbage.fetch_add(1, Relaxed);
                        out.push(garbage(h, &sub.symbol, &sub.name, combined));
                    }
                    // The first trade id is fixed once the kline has begun.
                    let first = *first_trade.get_or_insert_with(|| {
                        ex.trades_before(self.market, &sub.symbol, g, k.open_time) as i64
                    });
                    let (f, l) = if k.agg.trades == 0 {
                        (-1, -1)
                    } else {
                        (first, first + k.agg.trades as i64 - 1)
                    };
                    let meta = EventMeta {
                        symbol: &sub.symbol,
                        interval: sub.interval,
                        event_time: now,
                        first_trade: f,
                        last_trade: l,
                        closed,
                    };
                    let mut payload = Vec::with_capacity(400);
                    match &sub.kind {
                        StreamKind::Kline => kline_event(&mut payload, k, units, &meta),
                        StreamKind::Continuous { pair } => {
                            continuous_kline_event(&mut payload, k, units, &meta, pair, "PERPETUAL")
                        }
                    }
                    let payload = String::from_utf8(payload).unwrap_or_default();
                    out.push(if combined {
                        format!(r#"{{"stream":{},"data":{payload}}}"#, json_str(&sub.name))
                    } else {
                        payload
                    });
                };
            // Klines that closed since the last tick: whole, as REST has them.
            while next_open(sub.interval, sub.open) <= now {
                let close = next_open(sub.interval, sub.open);
                let done = g.range(sub.open, close);
                if let Some(agg) = done {
                    emit(
                        &mut closes,
                        &Kline {
                            open_time: sub.open,
                            close_time: close - 1,
                            agg,
                        },
                        true,
                        &mut sub.first_trade,
                    );
                }
                // The next kline's trades follow this one's.
                let next_first = sub
                    .first_trade
                    .map(|f| f + done.map_or(0, |a| a.trades as i64));
                sub.open = close;
                sub.acc = None;
                sub.upto = close;
                sub.next_due = i64::MIN;
                sub.first_trade = next_first;
            }
            // Due at the cadence, counted in scheduled ticks (not in their
            // jittery real times): spot's 2 s streams every other 1 s tick.
            let every = cadence(sub.interval);
            if slot < sub.next_due {
                continue;
            }
            // The kline in progress: whole seconds so far (kept), plus the current second.
            let second = now - now.rem_euclid(SECOND);
            if sub.upto < second {
                if let Some(a) = g.range(sub.upto, second) {
                    match &mut sub.acc {
                        Some(acc) => acc.merge(&a),
                        None => sub.acc = Some(a),
                    }
                }
                sub.upto = second;
            }
            let current = g.range(second, second + SECOND);
            let agg = match (sub.acc, current) {
                (Some(mut a), Some(c)) => {
                    a.merge(&c);
                    Some(a)
                }
                (a, c) => a.or(c),
            };
            if let Some(agg) = agg {
                sub.next_due = slot.saturating_add(every);
                emit(
                    &mut out,
                    &Kline {
                        open_time: sub.open,
                        close_time: next_open(sub.interval, sub.open) - 1,
                        agg,
                    },
                    false,
                    &mut sub.first_trade,
                );
            }
        }
        closes.extend(out);
        closes
    }

    /// Handles a control message; returns the replies and whether to close.
    fn control(&mut self, text: &str, now: i64) -> (Vec<String>, Flow) {
        let futures = self.market != Market::Spot;
        let error = |code: i32, msg: &str, id: &Value| {
            if futures {
                json!({"error": {"code": code, "msg": msg}, "id": id}).to_string()
            } else {
                json!({"code": code, "msg": msg, "id": id}).to_string()
            }
        };
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            let reply = error(
                3,
                &format!(
                    "Invalid JSON: expected a JSON object, got {:?}",
                    text.chars().take(40).collect::<String>()
                ),
                &Value::Null,
            );
            return (
                vec![reply],
                if futures { Flow::Close } else { Flow::Continue },
            );
        };
        let id = v.get("id").cloned().unwrap_or(Value::Null);
        let id_ok = match &id {
            Value::Null => !futures,
            Value::Number(n) => n.as_u64().is_some() || (!futures && n.as_i64().is_some()),
            Value::String(s) => {
                !futures && s.len() <= 36 && s.chars().all(|c| c.is_ascii_alphanumeric())
            }
            _ => false,
        };
        if !id_ok {
            return (
                vec![error(
                    2,
                    "Invalid request: request ID must be an unsigned integer",
                    &Value::Null,
                )],
                Flow::Continue,
            );
        }
        let params: Vec<Value> = v
            .get("params")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let reply = match v.get("method").and_then(Value::as_str) {
            Some("SUBSCRIBE") => {
                let names: Option<Vec<&str>> = params.iter().map(Value::as_str).collect();
                let Some(names) = names.filter(|n| !n.is_empty()) else {
                    return (
                        vec![error(
                            2,
                            "Invalid request: params must be a non-empty array of stream names",
                            &id,
                        )],
                        Flow::Continue,
                    );
                };
                if let Some(bad) = names
                    .iter()
                    .find(|n| parse_stream(&self.ex, self.market, n).is_none())
                {
                    return (
                        vec![error(
                            2,
                            &format!("Invalid request: unknown stream {bad}"),
                            &id,
                        )],
                        Flow::Continue,
                    );
                }
                let fresh = names
                    .iter()
                    .filter(|n| !self.subs.iter().any(|s| s.name == **n))
                    .count();
                if self.subs.len() + fresh > limits(self.market).max_streams {
                    self.ex.stats.ws_limit_violations.fetch_add(1, Relaxed);
                    return (
                        vec![error(
                            2,
                            &format!(
                                "Invalid request: a connection holds at most {} streams",
                                limits(self.market).max_streams
                            ),
                            &id,
                        )],
                        Flow::Continue,
                    );
                }
                for n in names {
                    self.subscribe(n, now);
                }
                json!({"result": null, "id": id})
            }
            Some("UNSUBSCRIBE") => {
                let names: Vec<&str> = params.iter().filter_map(Value::as_str).collect();
                self.subs.retain(|s| !names.contains(&s.name.as_str()));
                json!({"result": null, "id": id})
            }
            Some("LIST_SUBSCRIPTIONS") => {
                json!({"result": self.subs.iter().map(|s| s.name.clone()).collect::<Vec<_>>(), "id": id})
            }
            Some("SET_PROPERTY") => match (
                params.first().and_then(Value::as_str),
                params.get(1).and_then(Value::as_bool),
            ) {
                (Some("combined"), Some(b)) => {
                    self.combined = b;
                    json!({"result": null, "id": id})
                }
                _ => return (vec![error(0, "Unknown property", &id)], Flow::Continue),
            },
            Some("GET_PROPERTY") => match params.first().and_then(Value::as_str) {
                Some("combined") => json!({"result": self.combined, "id": id}),
                _ => return (vec![error(0, "Unknown property", &id)], Flow::Continue),
            },
            _ => {
                return (
                    vec![error(2, "Invalid request: unknown method", &id)],
                    Flow::Continue,
                )
            }
        };
        (vec![reply.to_string()], Flow::Continue)
    }
}

/// Caches kept by the WebSocket side of an [`Exchange`].
pub(crate) type TradeBase = std::sync::Mutex<HashMap<(u8, String, i64), u64>>;

/// Runs one control message through a fresh connection of each market (fuzzing).
#[cfg(feature = "test-hooks")]
pub(crate) fn fuzz_control(ex: Arc<Exchange>, text: &str) {
    for market in Market::ALL {
        let mut c = Connection::new(
            ex.clone(),
            Opening {
                market,
                combined: false,
                streams: vec![],
            },
        );
        let now = ex.clock.now();
        let _ = c.control(text, now);
        let _ = c.events(now, now, |_| 0);
    }
}

/// A bad message (the `ws_garbage` fault), chosen by `h`: not JSON, a kline
/// event with a broken price, a kline event of a symbol nobody subscribed
/// to, or an error reply.
fn garbage(h: u64, symbol: &str, stream: &str, combined: bool) -> String {
    let kline = |symbol: &str, open: &str| {
        format!(
            r#"{{"e":"kline","E":1,"s":"{symbol}","k":{{"t":0,"T":59999,"s":"{symbol}","i":"1m","f":-1,"L":-1,"o":"{open}","c":"1","h":"1","l":"1","v":"0","n":0,"x":true,"q":"0","V":"0","Q":"0","B":"0"}}}}"#
        )
    };
    let payload = match h % 4 {
        0 => return r#"{"e":"kline","E":17"#.to_string(),
        1 => kline(symbol, "not-a-number"),
        2 => kline("NOSUCHSYMBOL", "1"),
        _ => return r#"{"error":{"code":2,"msg":"Invalid request: unknown variant `SUBSCRIBED`"},"id":null}"#.to_string(),
    };
    if combined {
        format!(r#"{{"stream":{},"data":{payload}}}"#, json_str(stream))
    } else {
        payload
    }
}
