//! `atm stream`: keeps the store live from Binance's kline streams.
//!
//! ```text
//!  connections (a thread each) ──text──▶ applier (this thread) ──▶ writer commits every 10 ms
//!   SUBSCRIBE, pings, watchdog,          parse, dedup, gaps ──▶ repairs ──▶ repair thread (REST,
//!   reconnect, rotation ◀── (un)subscribe  live klines ──▶ PRD slots          shared budget) ──┘
//!  market refresh ──new listings, delistings──▶ applier
//! ```
//!
//! On start, what is missing after each series' first stored kline (the gap
//! since its newest one, holes a crash left) is filled by [`crate::sync`].
//! A kline is committed when its closing event (`x: true`) arrives, or, when
//! that never comes, by the REST repair: after a disconnect, a jump in a
//! series' closes, a close that is late, or at stop. A closing event
//! identical to what is stored changes nothing; one that differs is logged
//! and fetched again from REST, which wins. The parts:
//!
//! - [`connection`]: one WebSocket's life;
//! - [`applier`]: events, repairs and commits;
//! - [`derive`]: `--derive`, longer intervals rolled up from 1m;
//! - [`refresh`]: new listings and delistings while running.

mod applier;
mod committer;
mod connection;
mod derive;
mod latency;
mod refresh;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atm_store::{Interval, Kline, Market, SeriesKey, Store, Symbol};
use crossbeam_channel::{bounded, never, select, tick, unbounded, Sender};

use self::applier::{Applier, RepairRequest};
use self::committer::{Arming, Committer, Write};
use self::connection::Command;
use self::derive::is_derived;
use self::latency::Latency;
use self::refresh::Refresh;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pipeline::{Control, ControlReply, ControlRequests};
use crate::sync::{Pages, Selection, SeriesPlan, SyncOptions};
use crate::ws_shard::{limits, shard, stream_name, stream_url};
use atm_status::{Metric, ProcessInfo, Publisher, StageStats, StreamTotals};

/// What to stream.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Which series: markets, symbols (trading ones; named ones even if
    /// not) and intervals.
    pub selection: Selection,
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
    /// Roll the intervals longer than 1m up from the 1m stream instead of
    /// subscribing to them, cross-checked against REST.
    pub derive: bool,
    /// Re-read the markets (new listings, delistings) this often (real
    /// time); default: every 5 minutes of exchange time, at least 2 s.
    pub refresh_every: Option<Duration>,
}

impl Default for StreamOptions {
    fn default() -> StreamOptions {
        StreamOptions {
            selection: Selection::default(),
            duration: None,
            workers: 8,
            control: None,
            publish_status: true,
            rotate_after: None,
            derive: false,
            refresh_every: None,
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
    /// Klines derived from 1m (`--derive`).
    pub derived: u64,
    /// Derived klines that differed from the exchange's beyond the rounding of sums.
    pub derive_mismatches: u64,
    /// Klines written in all (closes and repairs).
    pub klines_written: u64,
    /// Median time from a closing event's receipt to its commit, µs.
    pub commit_lag_p50_us: u64,
    /// 99th percentile of the same, µs.
    pub commit_lag_p99_us: u64,
    /// Commits made.
    pub commits: u64,
    /// Median time a commit took, µs.
    pub commit_time_p50_us: u64,
    /// 99th percentile of the same, µs.
    pub commit_time_p99_us: u64,
    /// Median time from an update's receipt to its live value published in
    /// the shared segment (where other processes read it), µs.
    pub live_lag_p50_us: u64,
    /// 99th percentile of the same, µs.
    pub live_lag_p99_us: u64,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
}

impl StreamSummary {
    /// The commit count and the latency quantiles, from the committer's and
    /// the applier's histograms.
    fn set_latencies(&mut self, commit_lag: &Latency, commit_time: &Latency, live_lag: &Latency) {
        self.commits = commit_time.histogram.count;
        self.commit_time_p50_us = commit_time.quantile(0.5);
        self.commit_time_p99_us = commit_time.quantile(0.99);
        self.commit_lag_p50_us = commit_lag.quantile(0.5);
        self.commit_lag_p99_us = commit_lag.quantile(0.99);
        self.live_lag_p50_us = live_lag.quantile(0.5);
        self.live_lag_p99_us = live_lag.quantile(0.99);
    }
}

/// Counters the connection threads share.
#[derive(Default)]
pub(crate) struct Shared {
    /// What `atm status` shows as the phase (see `atm_status::STREAM_PHASES`).
    pub phase: std::sync::Mutex<&'static str>,
    pub stop: AtomicBool,
    pub connections: AtomicU64,
    pub reconnects: AtomicU64,
    pub rotations: AtomicU64,
    pub events: AtomicU64,
    pub bytes: AtomicU64,
}

/// What reaches the applier.
pub(crate) enum Item {
    /// A text message of `market`, received at the instant.
    Text(Market, tungstenite::Utf8Bytes, Instant),
    /// A connection carrying these series dropped (or rotated): their
    /// closes since the last committed one may be lost.
    Dropped(Vec<SeriesKey>),
    /// Klines of `[from, to]` fetched by REST.
    Repaired(SeriesKey, i64, i64, Vec<Kline>),
    /// A repair of `[from, to]` ran out of retries: it is asked again.
    RepairFailed(SeriesKey, i64, i64),
    /// The market refresh found new listings or delistings.
    Refreshed(Refresh),
}

/// Streams until `opts.duration` passes or a stop is requested.
pub fn stream(client: &mut Client, store: &Store, opts: &StreamOptions) -> Result<StreamSummary> {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        phase: std::sync::Mutex::new("starting"),
        ..Shared::default()
    });
    let view = Arc::new(std::sync::Mutex::new((
        StageStats::default(),
        StreamSummary::default(),
    )));
    let publisher = match opts.publish_status {
        true => Some(Publisher::start(
            store.dir(),
            "stream",
            sampler(shared.clone(), client.stats.clone(), view.clone()),
        )?),
        false => None,
    };
    // 1. Close the gap since each series' newest stored kline.
    *atm_types::sync::lock(&shared.phase) = "backfilling";
    let selection = SyncOptions {
        selection: opts.selection.clone(),
        workers: opts.workers,
        publish_status: false,
        since_last_stored: true,
        on_held: crate::sync::OnHeld::Fail,
        ..SyncOptions::default()
    };
    // One writer from the backfill on: the stream holds its series while it
    // runs, and a series another process holds stops it before it writes.
    let mut writer = store.writer()?;
    let backfilled = crate::sync::sync_with(client, store, &selection, Some(&mut writer), |_| {})?
        .klines_written;
    // 2. The series to follow: the selection's trading symbols.
    let symbols = refresh::streamable(store, &selection)?;
    let keys = series_of(
        symbols.iter().map(|(m, s)| (*m, s.as_str())),
        &opts.selection.intervals,
        opts.derive,
    )?;
    log::info!(
        "streaming {} series ({backfilled} backfilled klines)",
        keys.len()
    );
    let client: &Client = client;
    let (item_tx, item_rx) = bounded::<Item>(65_536);
    let (repair_tx, repair_rx) = unbounded::<RepairRequest>();
    let (write_tx, write_rx) = unbounded::<Write>();
    let (derived_tx, derived_rx) = unbounded::<(SeriesKey, Kline)>();
    writer.lock_all(&keys)?;
    // Every series gets a close each interval: keep all their files open
    // (within half the process's file limit).
    let open_files = (keys.len() + 64).min(open_file_limit() / 2);
    writer.set_open_files(open_files);
    // Opened (and their next kline's pages mapped) now, not at the first close.
    let now = client.clock().now();
    for k in keys.iter().take(open_files) {
        writer.prepare(k, crate::first_kline::open_of(k.interval, now))?;
    }
    let commit_lag = Arc::new(std::sync::Mutex::new((
        Latency::default(),
        Latency::default(),
    )));
    let committer = Committer::new(store, writer, commit_lag.clone())
        .arming(Arming::new(client.clock().clone(), &keys));
    let mut applier = Applier::new(
        store,
        client.clock().clone(),
        write_tx,
        publisher.as_ref().map(Publisher::live_slots),
        repair_tx,
    );
    applier.summary.backfilled = backfilled;
    applier.summary.streams = keys.len() as u64;
    follow(
        &mut applier,
        &keys.iter().map(|k| (k.clone(), None)).collect::<Vec<_>>(),
        opts.derive,
    )?;

    *atm_types::sync::lock(&shared.phase) = "streaming";
    let (counted, result) = std::thread::scope(|scope| {
        // 3. The committer: the one thread writing the store.
        let committer = scope.spawn(move || committer.run(&write_rx, &derived_tx));
        // 4. Connections, a thread each (the pool holds the applier's channel
        // until the stop; the repair thread and the refresh hold clones).
        let mut pool = Pool::new(
            scope,
            client,
            opts.rotate_after,
            shared.clone(),
            item_tx.clone(),
        );
        let streamed: Vec<SeriesKey> = keys
            .iter()
            .filter(|k| !(opts.derive && is_derived(k.interval)))
            .cloned()
            .collect();
        for &market in &opts.selection.markets {
            let mine: Vec<(String, SeriesKey)> = streamed
                .iter()
                .filter(|k| k.market == market)
                .map(|k| (stream_name(k.symbol.as_str(), k.interval), k.clone()))
                .collect();
            for streams in shard(mine, limits(market).streams_per_connection) {
                pool.spawn(market, streams);
            }
        }
        // 5. The repair thread: REST through the shared budget.
        let repairer = {
            let tx = item_tx.clone();
            scope.spawn(move || repair(client, store.precision(), repair_rx, &tx))
        };
        // 6. The market refresh.
        let refresher = {
            let (tx, sh, selection) = (item_tx, shared.clone(), &selection);
            let every = opts
                .refresh_every
                .unwrap_or_else(|| client.clock().real(300_000).max(Duration::from_secs(2)));
            scope.spawn(move || refresh::run(client, store, selection, symbols, every, &sh, &tx))
        };
        // 7. The applier: this thread, until everything feeding it is done.
        let applied = ApplyLoop {
            applier: &mut applier,
            pool: &mut pool,
            opts,
            shared: &shared,
            view: &view,
            commit_lag: &commit_lag,
        }
        .run(&item_rx, &derived_rx);
        // On an error, everything stops: the stop flag, and no one left to
        // receive (a connection blocked on a full queue gets an error).
        shared.stop.store(true, Relaxed);
        drop(item_rx);
        let counted = applier.finish(); // hangs up on the committer
        let committed = committer
            .join()
            .unwrap_or_else(|_| Err(Error::Stopped("the committer panicked".into())));
        pool.join();
        let _ = repairer.join();
        let _ = refresher.join();
        // The committer's own error says more than the applier's "it stopped".
        (counted, committed.and(applied))
    });
    let (mut summary, mut stage, live_lag) = counted;
    result?;
    let (commit_lag, commit_time) = commit_lag.lock().map(|h| h.clone()).unwrap_or_default();
    summary.set_latencies(&commit_lag, &commit_time, &live_lag);
    summary.connections = shared.connections.load(Relaxed);
    summary.reconnects = shared.reconnects.load(Relaxed);
    summary.rotations = shared.rotations.load(Relaxed);
    summary.elapsed_s = started.elapsed().as_secs_f64();
    if let Some(p) = publisher {
        if let Ok(mut v) = view.lock() {
            stage.latency_us = commit_lag.histogram;
            *v = (stage, summary.clone());
        }
        p.finish();
    }
    Ok(summary)
}

/// Applies recorded messages of `market` to `store` as `atm stream` does
/// (parsed, routed to `series`, live klines published in the store's
/// `run/` segment, closes committed by the committer thread), without a
/// network: for benchmarks and for replaying captures. Gaps are not
/// repaired (there is no exchange); everything is committed on return.
///
/// ```no_run
/// # use atm_store::{Interval, Market, SeriesKey, Store, StoreOptions};
/// let store = Store::open("store", StoreOptions { create: true, ..StoreOptions::default() })?;
/// let key = SeriesKey::parse(Market::UsdM, "BTCUSDT", Interval::M1)?;
/// let capture = std::fs::read_to_string("um_kline_events.jsonl")?;
/// let s = atm_ingest::stream::replay(&store, Market::UsdM, &[key], capture.lines().map(str::to_string))?;
/// println!("{} events, {} closes", s.events, s.closes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn replay(
    store: &Store,
    market: Market,
    series: &[SeriesKey],
    messages: impl IntoIterator<Item = String>,
) -> Result<StreamSummary> {
    let started = Instant::now();
    let publisher = Publisher::start(store.dir(), "replay", Vec::new)?;
    let (repair_tx, _no_exchange) = unbounded::<RepairRequest>();
    let (write_tx, write_rx) = unbounded::<Write>();
    let (derived_tx, _derived_rx) = unbounded::<(SeriesKey, Kline)>();
    let mut writer = store.writer()?;
    writer.set_open_files(series.len() + 64);
    let lag = Arc::new(std::sync::Mutex::new((
        Latency::default(),
        Latency::default(),
    )));
    let committer = Committer::new(store, writer, lag.clone());
    let clock = crate::budget::ExchangeClock::new(Instant::now(), 0, 1.0);
    let mut applier = Applier::new(
        store,
        clock,
        write_tx,
        Some(publisher.live_slots()),
        repair_tx,
    );
    applier.follow(&series.iter().map(|k| (k.clone(), None)).collect::<Vec<_>>())?;
    let (counted, result) = std::thread::scope(|scope| {
        let committer = scope.spawn(move || committer.run(&write_rx, &derived_tx));
        let applied = messages
            .into_iter()
            .try_for_each(|m| applier.on_text(market, &m, Instant::now()));
        let counted = applier.finish();
        let committed = committer
            .join()
            .unwrap_or_else(|_| Err(Error::Stopped("the committer panicked".into())));
        (counted, committed.and(applied))
    });
    publisher.finish();
    result?;
    let (mut summary, _, live_lag) = counted;
    let (commit_lag, commit_time) = lag.lock().map(|h| h.clone()).unwrap_or_default();
    summary.streams = series.len() as u64;
    summary.set_latencies(&commit_lag, &commit_time, &live_lag);
    summary.elapsed_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The series of `symbols` at `intervals` (with `derive`, 1m is always
/// among them: it is what the others are rolled up from).
fn series_of<'s>(
    symbols: impl Iterator<Item = (Market, &'s str)>,
    intervals: &[Interval],
    derive: bool,
) -> Result<Vec<SeriesKey>> {
    let mut ivs = intervals.to_vec();
    if derive && ivs.iter().any(|&iv| is_derived(iv)) && !ivs.contains(&Interval::M1) {
        ivs.push(Interval::M1);
    }
    let mut keys = Vec::new();
    for (m, s) in symbols {
        for &iv in &ivs {
            if iv.valid_for(m) {
                keys.push(SeriesKey::new(m, Symbol::new(s)?, iv)?);
            }
        }
    }
    Ok(keys)
}

/// Follows `keys` (with their first kline when known), deriving the longer
/// intervals from 1m with `derive`.
fn follow(
    applier: &mut Applier<'_>,
    keys: &[(SeriesKey, Option<i64>)],
    derive: bool,
) -> Result<()> {
    applier.follow(keys)?;
    if derive {
        let mut pairs = Vec::new();
        for (k, _) in keys.iter().filter(|(k, _)| is_derived(k.interval)) {
            let minute = SeriesKey {
                interval: Interval::M1,
                ..k.clone()
            };
            if let (Some(src), Some(dst)) = (applier.id(&minute), applier.id(k)) {
                pairs.push((src, dst));
            }
        }
        applier.derive_from(&pairs)?;
    }
    Ok(())
}

/// The applier's thread: the applier and everything its loop drives (the
/// connection pool, new listings, control requests, the status view).
struct ApplyLoop<'a, 'p, 'scope, 'env> {
    applier: &'a mut Applier<'p>,
    pool: &'a mut Pool<'scope, 'env>,
    opts: &'a StreamOptions,
    shared: &'a Shared,
    view: &'a std::sync::Mutex<(StageStats, StreamSummary)>,
    commit_lag: &'a std::sync::Mutex<(Latency, Latency)>,
}

impl ApplyLoop<'_, '_, '_, '_> {
    /// Applies what arrives (messages, repairs, new listings, derived
    /// klines) and answers control requests, until everything feeding it is
    /// done (after a stop: the deadline, a [`Control::Stop`], or an error).
    fn run(
        &mut self,
        items: &crossbeam_channel::Receiver<Item>,
        derived: &crossbeam_channel::Receiver<(SeriesKey, Kline)>,
    ) -> Result<()> {
        let deadline = self.opts.duration.map(|d| Instant::now() + d);
        let mut control = self.opts.control.clone().unwrap_or_else(never);
        let ticker = tick(Duration::from_millis(100));
        let mut last_due_check = Instant::now();
        loop {
            select! {
                recv(items) -> item => {
                    let Ok(item) = item else { break };
                    self.on_item(item)?;
                }
                recv(derived) -> d => {
                    if let Ok((key, k)) = d {
                        self.applier.on_derived(&key, k)?;
                    }
                }
                recv(control) -> r => match r {
                    Ok(req) => {
                        let reply = self.on_control(req.body())?;
                        req.reply(reply);
                    }
                    Err(_) => control = never(),
                },
                recv(ticker) -> _ => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.shared.stop.store(true, Relaxed);
            }
            let stop_now = self.shared.stop.load(Relaxed) && self.pool.taking();
            if stop_now || last_due_check.elapsed() >= Duration::from_secs(1) {
                last_due_check = Instant::now();
                self.applier.repair_due(stop_now);
                self.publish_view();
            }
            if stop_now {
                // Every close due is asked for; no more repair requests: the
                // repair thread ends when done, the connections and the
                // refresh at the stop flag, and then this loop.
                self.applier.close_repairs();
                self.pool.stop_taking();
                log::info!("stopping: closing connections, repairing missed closes");
            }
        }
        Ok(())
    }

    fn on_item(&mut self, item: Item) -> Result<()> {
        match item {
            Item::Text(market, text, received) => self.applier.on_text(market, &text, received)?,
            Item::Dropped(keys) => self.applier.on_dropped(&keys),
            Item::RepairFailed(key, from, to) => self.applier.send_repair((key, from, to)),
            Item::Repaired(key, from, to, klines) => {
                self.applier.on_repaired(key, from, to, klines)?
            }
            Item::Refreshed(r) => {
                if self.pool.taking() {
                    self.on_refresh(r)?;
                }
            }
        }
        Ok(())
    }

    fn on_control(&mut self, c: &Control) -> Result<ControlReply> {
        Ok(match *c {
            Control::Flush => {
                self.applier.flush()?;
                ControlReply::Flushed {
                    pages: self.applier.summary.klines_written,
                }
            }
            Control::Stop => {
                self.shared.stop.store(true, Relaxed);
                ControlReply::Done
            }
            _ => ControlReply::Done,
        })
    }

    /// Copies the applier's counts out for the status publisher.
    fn publish_view(&self) {
        if let Ok(mut v) = self.view.lock() {
            let mut stage = self.applier.stage.clone();
            stage.latency_us = self
                .commit_lag
                .lock()
                .map(|h| h.0.histogram.clone())
                .unwrap_or_default();
            *v = (stage, self.applier.summary.clone());
        }
    }

    /// Follows new listings (their history is asked of REST, their streams
    /// added to connections with room, or to new ones) and drops delisted ones.
    fn on_refresh(&mut self, r: Refresh) -> Result<()> {
        let opts = self.opts;
        let mut gone = Vec::new();
        for (m, s) in &r.removed {
            for k in series_of(
                std::iter::once((*m, s.as_str())),
                &opts.selection.intervals,
                opts.derive,
            )? {
                self.applier.unfollow(&k);
                gone.push(stream_name(k.symbol.as_str(), k.interval));
            }
        }
        self.pool.unsubscribe(&gone);
        let mut added = Vec::new();
        for (m, s, first) in &r.added {
            for k in series_of(
                std::iter::once((*m, s.as_str())),
                &opts.selection.intervals,
                opts.derive,
            )? {
                added.push((k, *first));
            }
        }
        follow(self.applier, &added, opts.derive)?;
        self.applier.summary.streams += added.len() as u64;
        for &market in &opts.selection.markets {
            let new: Vec<(String, SeriesKey)> = added
                .iter()
                .filter(|(k, _)| k.market == market && !(opts.derive && is_derived(k.interval)))
                .map(|(k, _)| (stream_name(k.symbol.as_str(), k.interval), k.clone()))
                .collect();
            let left = self.pool.subscribe(market, new);
            for streams in shard(left, limits(market).streams_per_connection) {
                self.pool.spawn(market, streams);
            }
        }
        Ok(())
    }
}

/// The connection threads, per market with the streams each carries, and
/// what a new one needs: the thread scope, the client, the shared counters
/// and the channel to the applier (given up at the stop, so that the
/// applier's channel closes once every connection has ended).
struct Pool<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    client: &'env Client,
    rotate_after: Option<Duration>,
    shared: Arc<Shared>,
    tx: Option<Sender<Item>>,
    by_market: HashMap<Market, Vec<(Sender<Command>, usize)>>,
    /// Which connection (market, index) carries a stream.
    carrier: HashMap<String, (Market, usize)>,
    handles: Vec<std::thread::ScopedJoinHandle<'scope, ()>>,
}

impl<'scope, 'env> Pool<'scope, 'env> {
    fn new(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        client: &'env Client,
        rotate_after: Option<Duration>,
        shared: Arc<Shared>,
        tx: Sender<Item>,
    ) -> Self {
        Pool {
            scope,
            client,
            rotate_after,
            shared,
            tx: Some(tx),
            by_market: HashMap::new(),
            carrier: HashMap::new(),
            handles: Vec::new(),
        }
    }

    /// Opens a connection of `market` carrying `streams` (nothing once the
    /// pool stopped taking new connections).
    fn spawn(&mut self, market: Market, streams: Vec<(String, SeriesKey)>) {
        let Some(tx) = self.tx.clone() else { return };
        let lim = limits(market);
        let cfg = connection::Config {
            market,
            url: stream_url(self.client.endpoints(), market),
            lifetime: self
                .rotate_after
                .unwrap_or_else(|| self.client.clock().real(lim.lifetime_ms - 600_000)),
            messages_per_second: lim.messages_per_second,
        };
        let conns = self.by_market.entry(market).or_default();
        for (name, _) in &streams {
            self.carrier.insert(name.clone(), (market, conns.len()));
        }
        let (cmd_tx, cmd_rx) = unbounded();
        conns.push((cmd_tx, streams.len()));
        let sh = self.shared.clone();
        self.handles.push(
            self.scope
                .spawn(move || connection::run(&cfg, streams, &cmd_rx, &sh, &tx)),
        );
    }

    /// Opens no more connections and gives up the pool's end of the
    /// applier's channel.
    fn stop_taking(&mut self) {
        self.tx = None;
    }

    /// Whether new connections may still be opened.
    fn taking(&self) -> bool {
        self.tx.is_some()
    }

    /// Waits for every connection thread.
    fn join(self) {
        for c in self.handles {
            let _ = c.join();
        }
    }

    /// Adds `streams` to connections of `market` with room, returning those
    /// that fit nowhere.
    fn subscribe(
        &mut self,
        market: Market,
        mut streams: Vec<(String, SeriesKey)>,
    ) -> Vec<(String, SeriesKey)> {
        let per = limits(market).streams_per_connection;
        for (i, (cmd, n)) in self
            .by_market
            .entry(market)
            .or_default()
            .iter_mut()
            .enumerate()
        {
            let take = per.saturating_sub(*n).min(streams.len());
            if take == 0 {
                continue;
            }
            let batch: Vec<(String, SeriesKey)> = streams.drain(..take).collect();
            for (name, _) in &batch {
                self.carrier.insert(name.clone(), (market, i));
            }
            *n += batch.len();
            let _ = cmd.send(Command::Subscribe(batch));
        }
        streams
    }

    /// Removes `names` from the connections carrying them.
    fn unsubscribe(&mut self, names: &[String]) {
        let mut by_conn: HashMap<(Market, usize), Vec<String>> = HashMap::new();
        for n in names {
            if let Some(c) = self.carrier.remove(n) {
                by_conn.entry(c).or_default().push(n.clone());
            }
        }
        for ((m, i), names) in by_conn {
            if let Some((cmd, n)) = self.by_market.get_mut(&m).and_then(|c| c.get_mut(i)) {
                *n = n.saturating_sub(names.len());
                let _ = cmd.send(Command::Unsubscribe(names));
            }
        }
    }
}

/// The repair thread: fetches each asked range page by page through the
/// shared budget and hands the klines to the applier.
fn repair(
    client: &Client,
    precision: atm_store::Precision,
    requests: crossbeam_channel::Receiver<RepairRequest>,
    tx: &Sender<Item>,
) {
    for (key, from, to) in requests {
        let plan = SeriesPlan {
            key: key.clone(),
            gaps: vec![(from, to)],
        };
        for page in Pages::new(&plan, false) {
            match page.fetch(client, precision) {
                Ok(k) => {
                    if tx
                        .send(Item::Repaired(key.clone(), page.from, page.to, k))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e @ crate::error::Error::RetriesExhausted { .. }) => {
                    log::warn!(
                        "{key}: repair of {}..{} failed: {e}; asking again",
                        page.from,
                        page.to
                    );
                    if tx
                        .send(Item::RepairFailed(key.clone(), page.from, to))
                        .is_err()
                    {
                        return;
                    }
                    break;
                }
                Err(e) => {
                    log::error!(
                        "{key}: repair of {}..{} failed for good: {e}",
                        page.from,
                        page.to
                    );
                    break;
                }
            }
        }
    }
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
        let mut ws = StageStats {
            items_in: shared.events.load(Relaxed),
            bytes_in: shared.bytes.load(Relaxed),
            ..StageStats::default()
        };
        ws.items_out = ws.items_in;
        ws.metrics("ws", 0, &mut out);
        apply.metrics("apply", 0, &mut out);
        StreamTotals {
            klines_written: s.klines_written,
            events: shared.events.load(Relaxed),
            closes: s.closes,
            live_updates: s.live_updates,
            repairs: s.repairs,
            repaired_klines: s.repaired_klines,
            corrections: s.corrections,
            errors: s.bad_messages,
            reconnects: shared.reconnects.load(Relaxed),
            rotations: shared.rotations.load(Relaxed),
            connections: shared.connections.load(Relaxed),
            streams: s.streams,
            requests: stats.requests.load(Relaxed),
            weight: stats.weight.load(Relaxed),
        }
        .metrics("totals", &mut out);
        let phase = if shared.stop.load(Relaxed) {
            "stopping"
        } else {
            *atm_types::sync::lock(&shared.phase)
        };
        ProcessInfo {
            phase: phase.to_string(),
            ..ProcessInfo::default()
        }
        .metrics("process", &mut out);
        out
    }
}

/// The process's soft limit of open files (`/proc/self/limits`), 1024 if unknown.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}
