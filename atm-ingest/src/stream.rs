//! `atm stream`: keeps the store live from Binance's kline streams.
//!
//! ```text
//!  connections (a thread each) ──text──▶ applier (this thread) ──▶ writer commits every 10 ms
//!   SUBSCRIBE, pings, watchdog,          parse, dedup, gaps ──▶ repairs ──▶ repair thread (REST,
//!   reconnect with backoff                live klines ──▶ PRD slots          shared budget) ──┘
//! ```
//!
//! On start, what is missing after each series' first stored kline (the gap
//! since its newest one, holes a crash left) is filled by [`crate::sync`]. A kline is committed when its closing event (`x: true`)
//! arrives, or, when that never comes, by the REST repair: after a
//! disconnect, a jump in a series' closes, a close that is late, or at
//! stop. A closing event identical to what is stored changes nothing; one
//! that differs is logged and fetched again from REST, which wins.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atm_store::prd::Histogram;
use atm_store::{Interval, Kline, Market, SeriesKey, Store, Symbol};
use crossbeam_channel::{bounded, never, select, tick, unbounded, Sender};

use crate::client::Client;
use crate::error::Result;
use crate::pipeline::{Control, ControlReply, ControlRequests};
use crate::status::{Metric, Publisher, StageStats};
use crate::sync::{Page, Pages, SeriesPlan, SymbolFilter, SyncOptions};
use crate::ws_event::{self, WsMessage};
use crate::ws_shard::{limits, shard, stream_name, stream_url, subscribe_messages};

/// What to stream.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Markets.
    pub markets: Vec<Market>,
    /// Symbols (trading ones; named ones even if not).
    pub symbols: SymbolFilter,
    /// Intervals.
    pub intervals: Vec<Interval>,
    /// Stop after this long (real time); run until stopped when `None`.
    pub duration: Option<Duration>,
    /// REST requests in flight for the start-up backfill.
    pub workers: usize,
    /// Stop requests ([`Control::Stop`]; the CLI sends one on SIGINT/SIGTERM).
    pub control: Option<ControlRequests>,
    /// Publish status and live klines to the store's `run/` segment.
    pub publish_status: bool,
    /// Replace each connection after this long (real time); default: 10
    /// minutes (exchange time) before the exchange's 24-hour cut.
    pub rotate_after: Option<Duration>,
}

impl Default for StreamOptions {
    fn default() -> StreamOptions {
        StreamOptions {
            markets: Market::ALL.to_vec(),
            symbols: SymbolFilter::All,
            intervals: vec![Interval::M1],
            duration: None,
            workers: 8,
            control: None,
            publish_status: true,
            rotate_after: None,
        }
    }
}

/// What a stream run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StreamSummary {
    /// Klines the start-up backfill wrote.
    pub backfilled: u64,
    /// Series streamed.
    pub streams: u64,
    /// WebSocket connections opened (reconnects included).
    pub connections: u64,
    /// Reconnects after a drop or a watchdog timeout.
    pub reconnects: u64,
    /// Connections replaced make-before-break before the exchange's lifetime cut.
    pub rotations: u64,
    /// Messages received.
    pub events: u64,
    /// Closed klines committed from events.
    pub closes: u64,
    /// Live (in-progress) kline updates published.
    pub live_updates: u64,
    /// Ranges repaired through REST.
    pub repairs: u64,
    /// Klines written by repairs.
    pub repaired_klines: u64,
    /// Closing events that differed from the stored kline (REST refetched).
    pub corrections: u64,
    /// Messages that could not be used (logged with their payload).
    pub bad_messages: u64,
    /// Klines written in all (closes and repairs).
    pub klines_written: u64,
    /// Median time from a closing event's receipt to its commit, µs.
    pub commit_lag_p50_us: u64,
    /// 99th percentile of the same, µs.
    pub commit_lag_p99_us: u64,
    /// Median time from an update's receipt to its live value published in
    /// the shared segment (where other processes read it), µs (bucket bound).
    pub live_lag_p50_us: u64,
    /// 99th percentile of the same, µs.
    pub live_lag_p99_us: u64,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
}

/// Counters the connection threads share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    connections: AtomicU64,
    reconnects: AtomicU64,
    rotations: AtomicU64,
    events: AtomicU64,
    bytes: AtomicU64,
}

/// What reaches the applier.
enum Item {
    /// A text message of `market`, received at the instant.
    Text(Market, String, Instant),
    /// A connection carrying these series dropped (or rotated): their
    /// closes since the last committed one may be lost.
    Dropped(Vec<SeriesKey>),
    /// Klines of `[from, to]` fetched by REST.
    Repaired(SeriesKey, i64, i64, Vec<Kline>),
    /// A repair of `[from, to]` ran out of retries: it is asked again.
    RepairFailed(SeriesKey, i64, i64),
}

/// A series as the applier follows it.
struct Followed {
    /// Open time of the newest closed kline stored.
    last_closed: Option<i64>,
    /// That kline.
    last: Option<Kline>,
    /// Closes up to this open time have been asked of the repair thread.
    repair_asked: i64,
    /// The live slot's name.
    live: String,
}

/// Streams until `opts.duration` passes or a stop is requested.
pub fn stream(client: &mut Client, store: &Store, opts: &StreamOptions) -> Result<StreamSummary> {
    let started = Instant::now();
    let mut summary = StreamSummary::default();
    // 1. Close the gap since each series' newest stored kline.
    let backfill = SyncOptions {
        markets: opts.markets.clone(),
        symbols: opts.symbols.clone(),
        intervals: opts.intervals.clone(),
        workers: opts.workers,
        publish_status: false,
        since_last_stored: true,
        ..SyncOptions::default()
    };
    summary.backfilled = crate::sync::sync(client, store, &backfill, |_| {})?.klines_written;
    // 2. The series to stream.
    let mut keys = Vec::new();
    for (m, s) in crate::sync::select(store, &backfill)? {
        for &iv in &opts.intervals {
            if iv.valid_for(m) {
                keys.push(SeriesKey::new(m, Symbol::new(&s)?, iv)?);
            }
        }
    }
    summary.streams = keys.len() as u64;
    log::info!("streaming {} series ({} backfilled klines)", keys.len(), summary.backfilled);
    let client: &Client = client;
    let precision = store.precision();
    let clock = client.clock().clone();
    let mut followed: HashMap<SeriesKey, Followed> = HashMap::new();
    for k in &keys {
        let last = store.series(k)?.and_then(|s| s.latest().ok().flatten());
        let last_closed = last.map(|l| l.open_time);
        followed.insert(
            k.clone(),
            Followed {
                last_closed,
                last,
                repair_asked: last_closed.unwrap_or(i64::MIN),
                live: format!("live.{}.{}.{}", k.market, k.symbol, k.interval),
            },
        );
    }
    // Streams are named in lower case; events carry the symbol as listed.
    let by_name: HashMap<(Market, String, Interval), SeriesKey> =
        keys.iter().map(|k| ((k.market, k.symbol.as_str().to_string(), k.interval), k.clone())).collect();

    let shared = Arc::new(Shared::default());
    let publisher = if opts.publish_status {
        let sh = shared.clone();
        let summary_view = Arc::new(std::sync::Mutex::new((StageStats::default(), StreamSummary::default())));
        Some((Publisher::start(store.dir(), "stream", sampler(sh, client.stats.clone(), summary_view.clone()))?, summary_view))
    } else {
        None
    };
    let mut live = publisher.as_ref().map(|(p, _)| p.live_slots());
    if let Some(l) = live.as_mut() {
        l.register(&followed.values().map(|f| f.live.clone()).collect::<Vec<_>>());
    }

    let (item_tx, item_rx) = bounded::<Item>(65_536);
    let (repair_tx, repair_rx) = unbounded::<(SeriesKey, i64, i64)>();
    let mut writer = store.writer()?;
    // Every series gets a close each interval: keep all their files open
    // (within half the process's file limit).
    writer.set_open_files((keys.len() + 64).min(open_file_limit() / 2));
    let mut apply = StageStats::default();
    let mut lag = Histogram::default();
    let mut live_lag = Histogram::default();
    let endpoints_urls: Vec<(Market, String)> = opts.markets.iter().map(|&m| (m, stream_url(client.endpoints(), m))).collect();
    let result = std::thread::scope(|scope| -> Result<()> {
        // 3. Connections, a thread each.
        let mut conns = Vec::new();
        for (market, url) in &endpoints_urls {
            let mine: Vec<SeriesKey> = keys.iter().filter(|k| k.market == *market).cloned().collect();
            let names: Vec<String> = mine.iter().map(|k| stream_name(k.symbol.as_str(), k.interval)).collect();
            let lim = limits(*market);
            let lifetime = opts.rotate_after.unwrap_or_else(|| clock.real(lim.lifetime_ms - 600_000));
            for streams in shard(names, lim.streams_per_connection) {
                let series: Vec<SeriesKey> =
                    mine.iter().filter(|k| streams.contains(&stream_name(k.symbol.as_str(), k.interval))).cloned().collect();
                let (tx, sh, url, m) = (item_tx.clone(), shared.clone(), url.clone(), *market);
                conns.push(scope.spawn(move || connection(m, &url, &streams, &series, lifetime, lim.messages_per_second, &sh, &tx)));
            }
        }
        // 4. The repair thread: REST through the shared budget.
        let repairer = {
            let tx = item_tx.clone();
            scope.spawn(move || {
                for (key, from, to) in repair_rx {
                    let plan = SeriesPlan { key: key.clone(), gaps: vec![(from, to)] };
                    for page in Pages::new(&plan, false) {
                        match page.fetch(client, precision) {
                            Ok(k) => {
                                if tx.send(Item::Repaired(key.clone(), page.from, page.to, k)).is_err() {
                                    return;
                                }
                            }
                            Err(e @ crate::error::Error::RetriesExhausted { .. }) => {
                                log::warn!("{key}: repair of {}..{} failed: {e}; asking again", page.from, page.to);
                                if tx.send(Item::RepairFailed(key.clone(), page.from, to)).is_err() {
                                    return;
                                }
                                break;
                            }
                            Err(e) => {
                                log::error!("{key}: repair of {}..{} failed for good: {e}", page.from, page.to);
                                break;
                            }
                        }
                    }
                }
            })
        };
        drop(item_tx);
        // 5. The applier: this thread.
        let deadline = opts.duration.map(|d| Instant::now() + d);
        let mut control = opts.control.clone().unwrap_or_else(never);
        let ticker = tick(Duration::from_millis(10));
        let mut pending: Option<Instant> = None; // first uncommitted change
        let mut oldest_receipt: Vec<Instant> = Vec::new();
        let mut last_due_check = Instant::now();
        let mut repair_tx = Some(repair_tx);
        let mut stopping = false;
        let ask = |f: &mut Followed,
                   key: &SeriesKey,
                   from: i64,
                   to: i64,
                   summary: &mut StreamSummary,
                   tx: &Option<Sender<(SeriesKey, i64, i64)>>| {
            if to < from || to <= f.repair_asked {
                return;
            }
            let from = from.max(f.repair_asked.saturating_add(1));
            if let Some(tx) = tx {
                if tx.send((key.clone(), from, to)).is_ok() {
                    f.repair_asked = to;
                    summary.repairs += 1;
                }
            }
        };
        loop {
            select! {
                recv(item_rx) -> item => {
                    let Ok(item) = item else { break };
                    match item {
                        Item::Text(market, text, received) => {
                            apply.items_in += 1;
                            summary.events += 1;
                            match ws_event::parse(&text, precision) {
                                Ok(WsMessage::Kline(e)) => {
                                    let Some(key) = by_name.get(&(market, e.symbol.clone(), e.interval)) else {
                                        summary.bad_messages += 1;
                                        log::warn!("{market}: event of a stream not asked for: {text}");
                                        continue;
                                    };
                                    let Some(f) = followed.get_mut(key) else { continue };
                                    if !e.closed {
                                        if let Some(l) = live.as_mut() {
                                            l.set(&f.live, &e.kline);
                                            // Published: other processes read it from here on.
                                            live_lag.record(received.elapsed().as_micros() as u64);
                                        }
                                        summary.live_updates += 1;
                                        continue;
                                    }
                                    let iv = key.interval;
                                    let open = e.kline.open_time;
                                    if f.last_closed == Some(open) {
                                        if f.last.as_ref() != Some(&e.kline) {
                                            summary.corrections += 1;
                                            log::warn!("{key}: closing event at {open} differs from the stored kline; REST decides");
                                            f.repair_asked = f.repair_asked.min(open - 1);
                                            ask(f, key, open, open, &mut summary, &repair_tx);
                                        }
                                        continue;
                                    }
                                    if f.last_closed.is_some_and(|l| open < l) {
                                        continue; // late and older: a repair or an earlier event has it
                                    }
                                    // A jump: the closes in between were lost.
                                    if let Some(l) = f.last_closed {
                                        let next = crate::first_kline::next_open(iv, l);
                                        if next < open {
                                            ask(f, key, next, crate::first_kline::open_of(iv, open - 1), &mut summary, &repair_tx);
                                        }
                                    }
                                    writer.put(key, &e.kline)?;
                                    f.last_closed = Some(open);
                                    f.last = Some(e.kline);
                                    summary.closes += 1;
                                    summary.klines_written += 1;
                                    apply.items_out += 1;
                                    pending.get_or_insert_with(Instant::now);
                                    oldest_receipt.push(received);
                                }
                                Ok(WsMessage::Reply { .. } | WsMessage::Other { .. }) => {}
                                Ok(WsMessage::Error { code, msg, .. }) => {
                                    summary.bad_messages += 1;
                                    apply.errors += 1;
                                    apply.last_error = format!("{market}: error {code}: {msg}");
                                    log::warn!("{market}: the server answered an error {code}: {msg}");
                                }
                                Err(why) => {
                                    summary.bad_messages += 1;
                                    apply.errors += 1;
                                    apply.last_error = why.clone();
                                    log::warn!("{market}: {why}; payload: {}", text.chars().take(300).collect::<String>());
                                }
                            }
                        }
                        Item::Dropped(series) => {
                            let now = clock.now();
                            for key in series {
                                if let Some(f) = followed.get_mut(&key) {
                                    let due = last_closed_open(key.interval, now);
                                    if let Some(l) = f.last_closed {
                                        ask(f, &key, crate::first_kline::next_open(key.interval, l), due, &mut summary, &repair_tx);
                                    }
                                }
                            }
                        }
                        Item::RepairFailed(key, from, to) => {
                            if let Some(tx) = &repair_tx {
                                let _ = tx.send((key, from, to));
                            }
                        }
                        Item::Repaired(key, from, to, klines) => {
                            let now = clock.now();
                            let closed: Vec<Kline> = klines.into_iter().filter(|k| k.open_time >= from && k.open_time <= to && k.close_time < now).collect();
                            writer.put_many(&key, &closed)?;
                            crate::pipeline::mark_absent(&mut writer, &Page { key: key.clone(), from, to, limit: 0 }, &closed)?;
                            summary.repaired_klines += closed.len() as u64;
                            summary.klines_written += closed.len() as u64;
                            if let (Some(f), Some(k)) = (followed.get_mut(&key), closed.last()) {
                                if f.last_closed.is_none_or(|l| k.open_time >= l) {
                                    f.last_closed = Some(k.open_time);
                                    f.last = Some(*k);
                                }
                            }
                            pending.get_or_insert_with(Instant::now);
                        }
                    }
                }
                recv(control) -> r => match r {
                    Ok(req) => {
                        let reply = match *req.body() {
                            Control::Flush => {
                                writer.commit()?;
                                pending = None;
                                ControlReply::Flushed { pages: summary.klines_written }
                            }
                            Control::Stop => {
                                shared.stop.store(true, Relaxed);
                                ControlReply::Done
                            }
                            _ => ControlReply::Done,
                        };
                        req.reply(reply);
                    }
                    Err(_) => control = never(),
                },
                recv(ticker) -> _ => {}
            }
            // Group commit: at most 10 ms after the first change.
            if pending.is_some_and(|p| p.elapsed() >= Duration::from_millis(10)) {
                writer.commit()?;
                pending = None;
                for r in oldest_receipt.drain(..) {
                    lag.record(r.elapsed().as_micros() as u64);
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                shared.stop.store(true, Relaxed);
            }
            // Closes that are due but have not come: repair them.
            let stop_now = shared.stop.load(Relaxed) && !stopping;
            if stop_now || last_due_check.elapsed() >= Duration::from_secs(1) {
                last_due_check = Instant::now();
                let now = clock.now();
                // A close is late once its kline ended more than 3 s (real) ago.
                let grace = (3_000.0 * clock.scale()) as i64;
                for (key, f) in followed.iter_mut() {
                    let due = last_closed_open(key.interval, now - if stop_now { 0 } else { grace });
                    let Some(l) = f.last_closed else { continue };
                    if l < due {
                        ask(f, key, crate::first_kline::next_open(key.interval, l), due, &mut summary, &repair_tx);
                    }
                }
                if let Some(p) = &publisher {
                    if let Ok(mut v) = p.1.lock() {
                        let mut stage = apply.clone();
                        stage.latency_us = lag.clone();
                        *v = (stage, summary.clone());
                    }
                }
            }
            if stop_now {
                // Every close due is asked for; no more repair requests: the
                // repair thread ends when done, the connections at the stop flag.
                stopping = true;
                repair_tx = None;
                log::info!("stopping: closing connections, repairing missed closes");
            }
        }
        writer.commit()?;
        for c in conns {
            let _ = c.join();
        }
        let _ = repairer.join();
        Ok(())
    });
    writer.close()?;
    result?;
    summary.connections = shared.connections.load(Relaxed);
    summary.reconnects = shared.reconnects.load(Relaxed);
    summary.rotations = shared.rotations.load(Relaxed);
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.commit_lag_p50_us = lag.quantile(0.5);
    summary.commit_lag_p99_us = lag.quantile(0.99);
    summary.live_lag_p50_us = live_lag.quantile(0.5);
    summary.live_lag_p99_us = live_lag.quantile(0.99);
    if let Some((p, v)) = publisher {
        if let Ok(mut v) = v.lock() {
            let mut stage = apply;
            stage.latency_us = lag;
            *v = (stage, summary.clone());
        }
        p.finish();
    }
    Ok(summary)
}

/// The open time of the newest kline of `iv` closed at exchange time `now`.
fn last_closed_open(iv: Interval, now: i64) -> i64 {
    crate::first_kline::open_of(iv, crate::first_kline::open_of(iv, now) - 1)
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// Connects and subscribes to `streams`, pacing the SUBSCRIBE messages under
/// the market's incoming-message limit.
fn open(url: &str, streams: &[String], messages_per_second: u32) -> std::result::Result<Ws, String> {
    let (mut ws, _) = tungstenite::connect(url).map_err(|e| format!("connecting to {url}: {e}"))?;
    set_read_timeout(&mut ws, Duration::from_millis(200));
    let pace = Duration::from_secs_f64(1.0 / f64::from(messages_per_second.saturating_sub(1).max(1)));
    for (i, m) in subscribe_messages(streams, 200, 1).into_iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pace);
        }
        ws.send(tungstenite::Message::text(m)).map_err(|e| format!("subscribing: {e}"))?;
    }
    Ok(ws)
}

/// What one read from a connection gave.
enum Read {
    Text(String),
    Nothing,
    Closed(String),
}

fn read_one(ws: &mut Ws) -> Read {
    match ws.read() {
        Ok(tungstenite::Message::Text(t)) => Read::Text(t.to_string()),
        Ok(tungstenite::Message::Close(_)) => Read::Closed("the server closed the connection".into()),
        Ok(_) => Read::Nothing,
        Err(tungstenite::Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            Read::Nothing
        }
        Err(e) => Read::Closed(format!("connection lost: {e}")),
    }
}

/// One connection's life: connect and subscribe, read until the stop flag,
/// a drop or silence (the watchdog), and again, with backoff and jitter after
/// failures; every drop is reported so the applier repairs what it may have
/// lost. Before the exchange's lifetime cut the connection is replaced
/// make-before-break: the new one is subscribed and has answered while the
/// old one is still read, so nothing is missed and nothing needs repair.
#[allow(clippy::too_many_arguments)]
fn connection(
    market: Market,
    url: &str,
    streams: &[String],
    series: &[SeriesKey],
    lifetime: Duration,
    messages_per_second: u32,
    shared: &Shared,
    tx: &Sender<Item>,
) {
    let watchdog = Duration::from_secs(30);
    let mut failures = 0u32;
    let mut first = true;
    let forward = |t: String| {
        shared.events.fetch_add(1, Relaxed);
        shared.bytes.fetch_add(t.len() as u64, Relaxed);
        tx.send(Item::Text(market, t, Instant::now())).is_ok()
    };
    while !shared.stop.load(Relaxed) {
        if !first {
            shared.reconnects.fetch_add(1, Relaxed);
            let _ = tx.send(Item::Dropped(series.to_vec()));
        }
        first = false;
        let mut ws = match open(url, streams, messages_per_second) {
            Ok(ws) => ws,
            Err(e) => {
                failures += 1;
                let wait = crate::client::backoff(failures);
                log::warn!("{market}: {e}; again in {wait:?}");
                std::thread::sleep(wait);
                continue;
            }
        };
        shared.connections.fetch_add(1, Relaxed);
        let mut opened = Instant::now();
        let mut last_message = Instant::now();
        while !shared.stop.load(Relaxed) {
            if opened.elapsed() >= lifetime {
                match rotate(&mut ws, url, streams, messages_per_second, &forward) {
                    Ok(()) => {
                        shared.connections.fetch_add(1, Relaxed);
                        shared.rotations.fetch_add(1, Relaxed);
                        log::info!("{market}: connection rotated before the exchange's lifetime cut");
                        opened = Instant::now();
                        last_message = Instant::now();
                    }
                    Err(e) => {
                        log::warn!("{market}: rotating a connection: {e}; reconnecting");
                        break;
                    }
                }
            }
            match read_one(&mut ws) {
                Read::Text(t) => {
                    failures = 0;
                    last_message = Instant::now();
                    if !forward(t) {
                        return;
                    }
                }
                Read::Nothing => {
                    if last_message.elapsed() > watchdog {
                        log::warn!("{market}: no message for {watchdog:?}: reconnecting");
                        break;
                    }
                }
                Read::Closed(why) => {
                    log::info!("{market}: {why}");
                    failures += 1;
                    break;
                }
            }
        }
        let _ = ws.close(None);
        let _ = ws.flush();
        if failures > 1 {
            std::thread::sleep(crate::client::backoff(failures - 1));
        }
    }
}

/// Make-before-break: opens the next connection, reads both (forwarding
/// every event; the applier drops duplicates) until the new one has
/// answered its SUBSCRIBEs and sent an event, then closes the old one.
fn rotate(
    ws: &mut Ws,
    url: &str,
    streams: &[String],
    messages_per_second: u32,
    forward: &dyn Fn(String) -> bool,
) -> std::result::Result<(), String> {
    let mut next = open(url, streams, messages_per_second)?;
    let subscribes = subscribe_messages(streams, 200, 1).len();
    let (mut replies, mut events) = (0, 0);
    let t = Instant::now();
    while replies < subscribes || events == 0 {
        if t.elapsed() > Duration::from_secs(30) {
            return Err("the new connection did not start streaming within 30 s".into());
        }
        match read_one(&mut next) {
            Read::Text(m) => {
                if m.starts_with("{\"result\"") {
                    replies += 1;
                } else {
                    events += 1;
                }
                if !forward(m) {
                    return Ok(());
                }
            }
            Read::Nothing => {}
            Read::Closed(why) => return Err(why),
        }
        // The old connection is still read meanwhile.
        if let Read::Text(m) = read_one(ws) {
            if !forward(m) {
                return Ok(());
            }
        }
    }
    // What the old connection still holds (closes from before the new one
    // subscribed) is read before it is closed.
    while let Read::Text(m) = read_one(ws) {
        if !forward(m) {
            return Ok(());
        }
    }
    let mut old = std::mem::replace(ws, next);
    let _ = old.close(None);
    let _ = old.flush();
    Ok(())
}

fn set_read_timeout(ws: &mut Ws, t: Duration) {
    use tungstenite::stream::MaybeTlsStream;
    let _ = match ws.get_mut() {
        MaybeTlsStream::Plain(s) => s.set_read_timeout(Some(t)),
        MaybeTlsStream::Rustls(s) => s.get_mut().set_read_timeout(Some(t)),
        _ => Ok(()),
    };
}

/// The status sampler of a stream run.
fn sampler(
    shared: Arc<Shared>,
    stats: Arc<crate::client::ClientStats>,
    view: Arc<std::sync::Mutex<(StageStats, StreamSummary)>>,
) -> impl FnMut() -> Vec<(String, Metric)> + Send + 'static {
    move || {
        let (apply, s) = view.lock().map(|v| v.clone()).unwrap_or_default();
        let mut out = Vec::new();
        let mut ws = StageStats { items_in: shared.events.load(Relaxed), bytes_in: shared.bytes.load(Relaxed), ..StageStats::default() };
        ws.items_out = ws.items_in;
        ws.metrics("ws", 0, &mut out);
        apply.metrics("apply", 0, &mut out);
        for (name, v) in [
            ("klines_written", s.klines_written),
            ("events", shared.events.load(Relaxed)),
            ("closes", s.closes),
            ("live_updates", s.live_updates),
            ("repairs", s.repairs),
            ("repaired_klines", s.repaired_klines),
            ("corrections", s.corrections),
            ("errors", s.bad_messages),
            ("reconnects", shared.reconnects.load(Relaxed)),
            ("rotations", shared.rotations.load(Relaxed)),
            ("connections", shared.connections.load(Relaxed)),
            ("streams", s.streams),
            ("requests", stats.requests.load(Relaxed)),
            ("weight", stats.weight.load(Relaxed)),
        ] {
            out.push((format!("totals.{name}"), Metric::Counter(v)));
        }
        out.push(("process.phase".into(), Metric::Text(if shared.stop.load(Relaxed) { "stopping" } else { "streaming" }.into())));
        out
    }
}

/// The process's soft limit of open files (`/proc/self/limits`), 1024 if unknown.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| l.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)?.parse().ok()))
        .unwrap_or(1024)
}
