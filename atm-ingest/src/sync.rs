//! `atm sync`: plan what is missing, fetch it under the weight budget,
//! store it with group commits; resumable at any point.
//!
//! ```text
//!  planner ──pages──▶ fetchers (N threads) ──bodies──▶ parser ──klines──▶ writer
//!  (lazy, per series)   budget, retries                 (off the        (group commits,
//!                                                        network)        known-missing)
//! ```
//!
//! Stages are joined by bounded crossbeam channels, so memory stays bounded
//! whatever the size of the job: the planner holds each series' gaps, not
//! its pages, and merges the series so the newest pages of every series
//! come before the older pages of any (`--oldest-first` reverses it). A page is a range of open times `[from, to]` that one request
//! covers completely; every slot of it the exchange did not return is
//! recorded known-missing, so it is never asked for again. Killing the
//! process loses at most the pages not yet committed, and the next run's
//! plan (built from the store) fetches exactly those again.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use atm_store::{Interval, Market, SeriesKey, SlotState, Store, Symbol, Writer};

use crate::archive::Source;
use crate::client::{best_page, klines_weight, Client};
use crate::error::{Error, Result};
use crate::first_kline::{next_open, open_of};
use crate::markets::{self, is_trading};
use crate::pipeline::Shared;
use atm_status::Publisher;

/// Which symbols to sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SymbolFilter {
    /// Every symbol of the market.
    All,
    /// These symbols (an unknown one is an error).
    List(Vec<String>),
    /// Symbols matching a glob with `*` and `?` (e.g. `*USDT`).
    Glob(String),
}

impl std::str::FromStr for SymbolFilter {
    type Err = Error;

    fn from_str(s: &str) -> Result<SymbolFilter> {
        Ok(match s {
            "all" => SymbolFilter::All,
            g if g.contains(['*', '?']) => SymbolFilter::Glob(g.to_string()),
            l => SymbolFilter::List(
                l.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        })
    }
}

impl SymbolFilter {
    /// Whether `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            SymbolFilter::All => true,
            SymbolFilter::Glob(g) => glob(g.as_bytes(), name.as_bytes()),
            SymbolFilter::List(list) => list.iter().any(|s| s == name),
        }
    }
}

fn glob(pattern: &[u8], s: &[u8]) -> bool {
    match (pattern.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], s) || (!s.is_empty() && glob(pattern, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pattern[1..], &s[1..]),
        _ => false,
    }
}

/// Which series a job covers (`--markets`, `--symbols`, `--intervals`):
/// shared by [`SyncOptions`] and [`crate::stream::StreamOptions`].
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Markets.
    pub markets: Vec<Market>,
    /// Symbols (for a stream: the trading ones, and named ones even if not).
    pub symbols: SymbolFilter,
    /// Intervals.
    pub intervals: Vec<Interval>,
}

impl Default for Selection {
    /// Every market and symbol, at 1m.
    fn default() -> Selection {
        Selection {
            markets: Market::ALL.to_vec(),
            symbols: SymbolFilter::All,
            intervals: vec![Interval::M1],
        }
    }
}

/// What to sync.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Which series: markets, symbols and intervals.
    pub selection: Selection,
    /// First open time wanted (inclusive); default each symbol's first kline.
    pub since: Option<i64>,
    /// Last open time wanted (inclusive); default the last closed kline.
    pub until: Option<i64>,
    /// Also sync symbols that no longer trade.
    pub include_delisted: bool,
    /// Ask again for known-missing ranges.
    pub recheck_missing: bool,
    /// Plan only: import markets, identify first klines, fetch no klines.
    pub dry_run: bool,
    /// Newest pages first (the default) or oldest first.
    pub recent_first: bool,
    /// Requests in flight.
    pub workers: usize,
    /// Control requests for the running pipeline (see [`crate::pipeline::Control`]).
    pub control: Option<crate::pipeline::ControlRequests>,
    /// Publish the run's status to the store's `run/` segment, for `atm status`.
    pub publish_status: bool,
    /// Only fill what lies after each series' first stored kline: the gap
    /// after its newest one and holes in between (series with nothing stored
    /// are left alone). What `atm stream` closes on start.
    pub since_last_stored: bool,
    /// Where history comes from: archives first (`Auto`), archives only, or REST only.
    pub source: crate::archive::Source,
    /// Archive downloads in flight.
    pub archive_workers: usize,
    /// What to do with a series another process holds (see [`OnHeld`]).
    pub on_held: OnHeld,
}

/// What a sync does with a series whose write lock another process holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnHeld {
    /// Skip it with a warning, count it ([`Summary::held_series`]) and do
    /// the rest: `atm sync` (which then exits 3).
    #[default]
    Skip,
    /// Fail before writing anything, naming every held series: `atm
    /// stream`'s start-up backfill.
    Fail,
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions {
            selection: Selection::default(),
            since: None,
            until: None,
            include_delisted: false,
            recheck_missing: false,
            dry_run: false,
            recent_first: true,
            source: crate::archive::Source::Auto,
            archive_workers: 4,
            on_held: OnHeld::Skip,
            workers: 8,
            control: None,
            publish_status: true,
            since_last_stored: false,
        }
    }
}

/// The end-of-run summary (`--format json` prints it as one object).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Series in the selection.
    pub series: u64,
    /// Pages (requests) planned.
    pub pages: u64,
    /// Pages done (written).
    pub pages_done: u64,
    /// Slots to fetch in the plan.
    pub planned_klines: u64,
    /// Weight the plan costs.
    pub planned_weight: u64,
    /// Minutes the plan takes at the rate limits (exchange time).
    pub planned_minutes: f64,
    /// Bytes the plan adds on disk, about.
    pub planned_bytes: u64,
    /// Klines written.
    pub klines_written: u64,
    /// HTTP requests sent (all attempts, market import and first klines included).
    pub requests: u64,
    /// Weight used.
    pub weight: u64,
    /// Retried attempts.
    pub retries: u64,
    /// 429s received.
    pub http429: u64,
    /// Slots recorded known-missing.
    pub known_missing_slots: u64,
    /// First klines identified in this run.
    pub first_klines_found: u64,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Markets stopped by a fatal error, with the error.
    pub failed_markets: Vec<String>,
    /// The run was stopped by request before the plan was done.
    pub stopped: bool,
    /// Series skipped because another process holds their write lock.
    pub held_series: u64,
    /// What came from the archives (`--source auto|archive`).
    pub archive: crate::archive::ArchiveSummary,
    /// With `--dry-run`: klines the archives may cover (the rest is REST's:
    /// `planned_klines`), per market.
    pub planned_from_archives: Vec<SourcePlan>,
}

/// `--dry-run`'s split of one market's missing klines between the sources.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourcePlan {
    /// The market (`spot`, `um`, `cm`).
    pub market: String,
    /// Archive files that may exist for them.
    pub archive_files: u64,
    /// Klines those files would cover.
    pub archive_klines: u64,
    /// Klines left to REST.
    pub rest_klines: u64,
}

/// Progress, reported by the writer a few times a second.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Pages done, of `pages_total`.
    pub pages_done: u64,
    /// Pages planned.
    pub pages_total: u64,
    /// Klines written so far.
    pub klines: u64,
    /// Weight used so far.
    pub weight: u64,
    /// The same, per market in the selection.
    pub markets: Vec<MarketProgress>,
}

/// One market's share of [`Progress`].
#[derive(Clone, Debug)]
pub struct MarketProgress {
    /// The market.
    pub market: Market,
    /// Pages done, of `pages_total`.
    pub pages_done: u64,
    /// Pages planned.
    pub pages_total: u64,
    /// Klines written so far.
    pub klines: u64,
    /// Why the market stopped, if it did.
    pub failed: Option<String>,
}

/// One request's worth of a series: open times `[from, to]`, at most `limit` klines.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub key: SeriesKey,
    pub from: i64,
    pub to: i64,
    pub limit: u32,
}

impl Page {
    /// Fetches the page from REST and parses it at `precision`, retrying
    /// failures and broken bodies.
    pub(crate) fn fetch(
        &self,
        client: &Client,
        precision: atm_store::Precision,
    ) -> Result<Vec<atm_store::Kline>> {
        let m = self.key.market;
        client.get_parsed(
            m,
            "klines",
            &self.query(),
            klines_weight(m, self.limit),
            |b| crate::parse::klines(b, precision),
        )
    }

    /// The klines query that covers the page exactly.
    pub(crate) fn query(&self) -> String {
        format!(
            "symbol={}&interval={}&startTime={}&endTime={}&limit={}",
            crate::client::encode(self.key.symbol.as_str()),
            self.key.interval.as_str(),
            self.from,
            next_open(self.key.interval, self.to) - 1,
            self.limit
        )
    }
}

/// A selected series and the ranges it lacks.
pub(crate) struct SeriesPlan {
    pub key: SeriesKey,
    pub gaps: Vec<(i64, i64)>,
}

/// How many pages [`pages_of`] makes of `p`.
pub(crate) fn page_count(p: &SeriesPlan) -> u64 {
    let limit = page_limit(p.key.market, p.key.interval) as u64;
    p.gaps
        .iter()
        .map(|&(a, b)| slots_between(p.key.interval, a, b).div_ceil(limit))
        .sum()
}

/// Klines of a page: `n` slots in `[from, to]` of `interval`.
pub(crate) fn slots_between(interval: Interval, from: i64, to: i64) -> u64 {
    match (interval.slot_of(from), interval.slot_of(to)) {
        (Ok(a), Ok(b)) if b >= a => b - a + 1,
        _ => 0,
    }
}

/// Runs a sync: imports the markets, identifies first klines, plans, and
/// (unless `dry_run`) fetches and stores everything missing.
///
/// Unless `opts.publish_status` is off, the run's status is published for
/// `atm status` from start to end; a run that fails ends `finished` too,
/// its phase `failed: <error>`.
pub fn sync(
    client: &mut Client,
    store: &Store,
    opts: &SyncOptions,
    progress: impl FnMut(&Progress),
) -> Result<Summary> {
    sync_with(client, store, opts, None, progress)
}

/// [`sync`] writing through `writer`, which keeps the locks the run takes
/// (`atm stream` holds its series from its start-up backfill on). Without
/// one, the run opens its own writer and closes it at the end.
pub(crate) fn sync_with(
    client: &mut Client,
    store: &Store,
    opts: &SyncOptions,
    writer: Option<&mut Writer>,
    progress: impl FnMut(&Progress),
) -> Result<Summary> {
    let shared = Arc::new(Shared::new(client.stats.clone()));
    let publisher = if opts.publish_status && !opts.dry_run {
        Some(Publisher::start(
            store.dir(),
            "sync",
            crate::pipeline::sampler(shared.clone()),
        )?)
    } else {
        None
    };
    let result = match (writer, opts.dry_run) {
        (_, true) => run_sync(client, store, opts, None, progress, &shared),
        (Some(w), false) => run_sync(client, store, opts, Some(w), progress, &shared),
        (None, false) => store.writer().map_err(Error::from).and_then(|mut w| {
            let r = run_sync(client, store, opts, Some(&mut w), progress, &shared);
            w.close()?;
            r
        }),
    };
    if let Err(e) = &result {
        shared.set_phase(&format!("failed: {e}"));
    }
    if let Some(p) = publisher {
        p.finish();
    }
    result
}

/// Locks the series of `plans` in `writer`, as the run plans work for them.
/// A series another process holds is dropped from the plan (one warning
/// naming it and the holder's pid, counted in the status and the summary),
/// or, with [`OnHeld::Fail`], fails the run before anything is written.
fn lock_plans(
    writer: &mut Writer,
    plans: &mut Vec<SeriesPlan>,
    on_held: OnHeld,
    shared: &Shared,
) -> Result<()> {
    if on_held == OnHeld::Fail {
        return Ok(writer.lock_all(&plans.iter().map(|p| p.key.clone()).collect::<Vec<_>>())?);
    }
    let mut held = atm_types::sync::lock(&shared.held);
    let mut failure = None;
    plans.retain(|p| {
        if held.contains_key(&p.key) || failure.is_some() {
            return false;
        }
        match writer.try_lock(&p.key) {
            Ok(None) => true,
            Ok(Some(pid)) => {
                log::warn!("{}: another writer holds it (pid {pid}); skipped, sync it again once that one is done", p.key);
                held.insert(p.key.clone(), pid);
                false
            }
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    });
    failure.map_or(Ok(()), |e| Err(e.into()))
}

fn run_sync(
    client: &mut Client,
    store: &Store,
    opts: &SyncOptions,
    mut writer: Option<&mut Writer>,
    mut progress: impl FnMut(&Progress),
    shared: &Shared,
) -> Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary::default();
    shared.set_phase("importing markets");
    for &m in &opts.selection.markets {
        let r = markets::import(client, store, m)?;
        log::info!(
            "{m}: {} symbols ({} new, {} changed, {} gone)",
            r.symbols,
            r.added,
            r.changed,
            r.gone
        );
    }
    let selected = select(store, opts)?;
    shared.set_phase("finding first klines");
    summary.first_klines_found = identify_first_klines(client, store, &selected, opts.workers)?;
    shared.set_phase("planning");
    let now = client.clock().now();
    let mut plans = plan(store, &selected, opts, now)?;
    if let Some(w) = writer.as_deref_mut() {
        lock_plans(w, &mut plans, opts.on_held, shared)?;
    }
    // Series with something missing (before the archives filled part of it).
    let series = plans.len() as u64;
    if opts.source != Source::Rest && opts.dry_run {
        summary.planned_from_archives = split_by_source(&plans, now, opts.source);
    } else if let (Some(w), true) = (writer.as_deref_mut(), opts.source != Source::Rest) {
        // History from the archives first; what they did not cover (the
        // newest hours, missing or failed files) is planned again for REST.
        shared.set_phase("archives");
        let (archived, stopped) = crate::archive::import(
            client,
            store,
            w,
            &plans,
            now,
            opts.archive_workers,
            opts.control.as_ref(),
        )?;
        log::info!(
            "archives: {} of {} files ({} klines, {} bytes); {} missing, {} checksum mismatches, {} failed",
            archived.files,
            archived.planned,
            archived.klines,
            archived.bytes,
            archived.missing,
            archived.mismatches.len(),
            archived.failed.len()
        );
        summary.klines_written += archived.klines;
        summary.archive = archived;
        summary.stopped = stopped;
        plans = if opts.source == Source::Archive || stopped {
            Vec::new()
        } else {
            plan(store, &selected, opts, now)?
        };
        lock_plans(w, &mut plans, opts.on_held, shared)?;
    }
    summary.series = series;
    for p in &plans {
        let pages = page_count(p);
        summary.pages += pages;
        summary.planned_klines += p
            .gaps
            .iter()
            .map(|&(a, b)| slots_between(p.key.interval, a, b))
            .sum::<u64>();
        summary.planned_weight +=
            pages * klines_weight(p.key.market, page_limit(p.key.market, p.key.interval));
    }
    let per_minute = opts
        .selection
        .markets
        .iter()
        .map(|&m| client.budget(m).limit())
        .min()
        .unwrap_or(1)
        .max(1);
    summary.planned_minutes = summary.planned_weight as f64 / per_minute as f64;
    summary.planned_bytes = summary.planned_klines * 37;
    if let Some(w) = writer {
        shared.set_phase("fetching");
        crate::pipeline::run(
            client,
            store,
            w,
            plans,
            opts,
            now,
            &mut summary,
            &mut progress,
            shared,
        )?;
    }
    summary.held_series = atm_types::sync::lock(&shared.held).len() as u64;
    let s = &client.stats;
    summary.requests = s.requests.load(Relaxed);
    summary.weight = s.weight.load(Relaxed);
    summary.retries = s.retries.load(Relaxed);
    summary.http429 = s.http429.load(Relaxed);
    summary.elapsed_s = started.elapsed().as_secs_f64();
    shared.set_phase(if summary.stopped {
        "stopped"
    } else if summary.failed_markets.is_empty() {
        "done"
    } else {
        "done with failed markets"
    });
    Ok(summary)
}

/// For `--dry-run`: each market's missing klines split between the archives
/// (what their files may cover) and REST.
fn split_by_source(plans: &[SeriesPlan], now: i64, source: Source) -> Vec<SourcePlan> {
    let mut out: Vec<SourcePlan> = Vec::new();
    for p in plans {
        let total: u64 = p
            .gaps
            .iter()
            .map(|&(a, b)| slots_between(p.key.interval, a, b))
            .sum();
        let (files, klines) = crate::archive::estimate(&p.key, &p.gaps, now);
        let i = match out.iter().position(|s| s.market == p.key.market.as_str()) {
            Some(i) => i,
            None => {
                out.push(SourcePlan {
                    market: p.key.market.as_str().to_string(),
                    ..SourcePlan::default()
                });
                out.len() - 1
            }
        };
        out[i].archive_files += files;
        out[i].archive_klines += klines;
        if source == Source::Auto {
            out[i].rest_klines += total.saturating_sub(klines);
        }
    }
    out
}

/// The page size of `interval` on `market`: the most klines per weight;
/// COIN-M pages also fit its 200-day window.
fn page_limit(market: Market, interval: Interval) -> u32 {
    let best = best_page(market);
    if market != Market::CoinM {
        return best;
    }
    let step = interval.step_ms().unwrap_or(31 * 86_400_000);
    best.min(((200 * 86_400_000) / step) as u32).max(1)
}

/// The selected (market, symbol) pairs, from the registry. A listed symbol
/// must exist on at least one of the markets.
pub(crate) fn select(store: &Store, opts: &SyncOptions) -> Result<Vec<(Market, String)>> {
    let mut out = Vec::new();
    let mut known = std::collections::HashSet::new();
    // Symbols with a selected series in the store already: followed to their end.
    let tracked: std::collections::HashSet<(Market, String)> = store
        .list_series()?
        .into_iter()
        .filter(|k| opts.selection.intervals.contains(&k.interval))
        .map(|k| (k.market, k.symbol.as_str().to_string()))
        .collect();
    for &m in &opts.selection.markets {
        let reg = store.registry(m)?;
        for (name, info) in &reg.symbols {
            if !opts.selection.symbols.matches(name) {
                continue;
            }
            known.insert(name.clone());
            // A symbol that stopped trading is still synced when named or
            // already in the store: its last klines up to the delisting are
            // completed (the plan stops where the delisting was seen).
            let named = matches!(opts.selection.symbols, SymbolFilter::List(_))
                && info.first_kline.is_some();
            let followed = tracked.contains(&(m, name.clone()));
            if opts.include_delisted || is_trading(&info.status) || named || followed {
                out.push((m, name.clone()));
            }
        }
    }
    if let SymbolFilter::List(list) = &opts.selection.symbols {
        if let Some(s) = list.iter().find(|s| !known.contains(*s)) {
            let markets: Vec<&str> = opts.selection.markets.iter().map(|m| m.as_str()).collect();
            return Err(Error::Config(format!(
                "unknown symbol {s}: not listed on {}",
                markets.join(", ")
            )));
        }
    }
    Ok(out)
}

/// Identifies the first kline of every selected symbol that has none in
/// the registry yet (direct query on spot and USD-M, bisection on COIN-M),
/// several at a time, and stores them.
pub(crate) fn identify_first_klines(
    client: &Client,
    store: &Store,
    selected: &[(Market, String)],
    workers: usize,
) -> Result<u64> {
    let mut todo = Vec::new();
    for &m in Market::ALL.iter() {
        let reg = store.registry(m)?;
        todo.extend(
            selected
                .iter()
                .filter(|(mm, s)| {
                    *mm == m && reg.symbols.get(s).is_some_and(|i| i.first_kline.is_none())
                })
                .cloned(),
        );
    }
    if todo.is_empty() {
        return Ok(0);
    }
    let next = AtomicU64::new(0);
    let found: std::sync::Mutex<Vec<(Market, String, i64)>> = std::sync::Mutex::new(Vec::new());
    let failure: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, 32).min(todo.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Relaxed) as usize;
                let Some((m, s)) = todo.get(i) else { break };
                let r = match m {
                    Market::CoinM => crate::first_kline::bisect(client, *m, s),
                    _ => crate::first_kline::direct(client, *m, s),
                };
                match r {
                    Ok(Some(t)) => atm_types::sync::lock(&found).push((*m, s.clone(), t)),
                    Ok(None) => log::info!("{m} {s}: no kline yet"),
                    Err(e) => {
                        atm_types::sync::lock(&failure).get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    let found = atm_types::sync::unpoison(found.into_inner());
    for &m in Market::ALL.iter() {
        let mine: Vec<_> = found.iter().filter(|(mm, _, _)| *mm == m).collect();
        if !mine.is_empty() {
            store.update_registry(m, |reg| {
                for (_, s, t) in &mine {
                    if let Some(e) = reg.symbols.get_mut(s) {
                        e.first_kline = Some(*t);
                    }
                }
                Ok(())
            })?;
        }
    }
    if let Some(e) = atm_types::sync::unpoison(failure.into_inner()) {
        return Err(e);
    }
    Ok(found.len() as u64)
}

/// Every selected series and its missing ranges.
fn plan(
    store: &Store,
    selected: &[(Market, String)],
    opts: &SyncOptions,
    now: i64,
) -> Result<Vec<SeriesPlan>> {
    let mut out = Vec::new();
    let registries: Vec<_> = Market::ALL
        .iter()
        .map(|&m| store.registry(m))
        .collect::<std::result::Result<_, _>>()?;
    for (m, s) in selected {
        let Some(info) = registries[*m as usize].symbols.get(s) else {
            continue;
        };
        let Some(first) = info.first_kline else {
            continue;
        };
        // No kline opens after a delisting was seen: the plan stops there, so
        // a delisted symbol costs no request once its tail is complete.
        let seen_stopped = if is_trading(&info.status) {
            None
        } else {
            info.history.last().map(|h| h.seen).or(info.delisted)
        };
        for &iv in &opts.selection.intervals {
            if !iv.valid_for(*m) {
                continue;
            }
            let key = SeriesKey::new(*m, Symbol::new(s)?, iv)?;
            // The open candle is not stored: the last wanted kline is the last closed one.
            let last_closed = open_of(iv, open_of(iv, now) - 1);
            let mut from =
                open_of(iv, first).max(opts.since.map(|t| open_of(iv, t)).unwrap_or(i64::MIN));
            if opts.since_last_stored {
                // Only what is stored has to be kept whole (what `atm stream`
                // closes on start): the gap after the newest stored kline and
                // any hole left inside (a close lost just before a crash).
                let first_stored = match store.series(&key)? {
                    Some(series) => series.stats()?.first_open_time,
                    None => None,
                };
                match first_stored {
                    Some(first_stored) => from = from.max(open_of(iv, first_stored)),
                    None => continue,
                }
            }
            let to = last_closed
                .min(opts.until.map(|t| open_of(iv, t)).unwrap_or(i64::MAX))
                .min(seen_stopped.map(|t| open_of(iv, t)).unwrap_or(i64::MAX));
            if from > to {
                continue;
            }
            let gaps = match store.series(&key)? {
                None => vec![(from, to)],
                Some(series) => series
                    .coverage(from, to)?
                    .into_iter()
                    .filter(|r| {
                        r.state == SlotState::Unknown
                            || (opts.recheck_missing && r.state == SlotState::Missing)
                    })
                    .map(|r| (r.from, r.to))
                    .collect(),
            };
            if !gaps.is_empty() {
                out.push(SeriesPlan { key, gaps });
            }
        }
    }
    Ok(out)
}

/// The pages of one series, produced lazily: newest first when
/// `recent_first` (each page full from its newest slot back), else oldest
/// first. Only the series' gaps are held, never its pages.
pub(crate) struct Pages {
    key: SeriesKey,
    limit: u32,
    /// Slot ranges still to page through; the next page comes from the last.
    gaps: Vec<(u64, u64)>,
    recent_first: bool,
}

impl Pages {
    pub(crate) fn new(p: &SeriesPlan, recent_first: bool) -> Pages {
        let iv = p.key.interval;
        let mut gaps: Vec<(u64, u64)> = p
            .gaps
            .iter()
            .filter_map(|&(a, b)| match (iv.slot_of(a), iv.slot_of(b)) {
                (Ok(a), Ok(b)) if a <= b => Some((a, b)),
                _ => None,
            })
            .collect();
        gaps.sort_unstable();
        if !recent_first {
            gaps.reverse();
        }
        Pages {
            key: p.key.clone(),
            limit: page_limit(p.key.market, iv),
            gaps,
            recent_first,
        }
    }

    /// The open time that orders this series' next page among all series':
    /// its newest slot when newest first, else its oldest.
    fn next_time(&self) -> Option<i64> {
        let &(a, z) = self.gaps.last()?;
        Some(
            self.key
                .interval
                .open_time(if self.recent_first { z } else { a }),
        )
    }
}

impl Iterator for Pages {
    type Item = Page;

    fn next(&mut self) -> Option<Page> {
        let n = self.limit as u64;
        let last = self.gaps.last_mut()?;
        let (a, z) = *last;
        let (from, to) = if self.recent_first {
            (z.saturating_sub(n - 1).max(a), z)
        } else {
            (a, a.saturating_add(n - 1).min(z))
        };
        if (from, to) == (a, z) {
            self.gaps.pop();
        } else if self.recent_first {
            last.1 = from - 1;
        } else {
            last.0 = to + 1;
        }
        let iv = self.key.interval;
        Some(Page {
            key: self.key.clone(),
            from: iv.open_time(from),
            to: iv.open_time(to),
            limit: self.limit,
        })
    }
}

/// The pages of one series, newest first when `recent_first`.
pub(crate) fn pages_of(p: &SeriesPlan, recent_first: bool) -> Pages {
    Pages::new(p, recent_first)
}

/// Slots of one series the planner sends before turning to the next.
const TURN_SLOTS: u64 = 32_768;

/// Every series' pages merged in one order: the newest pages of all series
/// before any older one (or the oldest first), so a long job brings every
/// symbol's recent history in before the deep past of any.
pub(crate) fn merged_pages(
    plans: &[SeriesPlan],
    recent_first: bool,
    mut send: impl FnMut(Page) -> bool,
) {
    use std::cmp::Reverse;
    let mut cursors: Vec<Pages> = plans.iter().map(|p| Pages::new(p, recent_first)).collect();
    // Keyed by the next page's time (negated for oldest first), then series index.
    let mut heap: std::collections::BinaryHeap<(i64, Reverse<usize>)> = cursors
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            c.next_time()
                .map(|t| (if recent_first { t } else { -t }, Reverse(i)))
        })
        .collect();
    while let Some((_, Reverse(i))) = heap.pop() {
        // A turn of eight store blocks (32,768 slots, 23 days of 1m) of one
        // series: group commits then touch one or two series each (a turn of
        // one page cost 12 % of the throughput), while every series still
        // advances in step.
        let mut slots = 0;
        while slots < TURN_SLOTS {
            let Some(page) = cursors[i].next() else { break };
            slots += slots_between(page.key.interval, page.from, page.to);
            if !send(page) {
                return;
            }
        }
        if let Some(t) = cursors[i].next_time() {
            heap.push((if recent_first { t } else { -t }, Reverse(i)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_filters() {
        assert!(glob(b"*USDT", b"BTCUSDT"));
        assert!(glob(b"B?C*", b"BTCUSDT"));
        assert!(!glob(b"*USDT", b"BTCBUSD"));
        assert_eq!("all".parse::<SymbolFilter>().unwrap(), SymbolFilter::All);
        assert_eq!(
            "BTCUSDT, ETHUSDT".parse::<SymbolFilter>().unwrap(),
            SymbolFilter::List(vec!["BTCUSDT".into(), "ETHUSDT".into()])
        );
        assert_eq!(
            "*BTC".parse::<SymbolFilter>().unwrap(),
            SymbolFilter::Glob("*BTC".into())
        );
    }

    #[test]
    fn pages_cover_the_gaps_exactly_in_merged_time_order() {
        let h = 3_600_000;
        let t0 = 1_600_000_000_000 - 1_600_000_000_000 % h;
        let key = |s: &str| SeriesKey::parse(Market::Spot, s, Interval::H1).unwrap();
        let plans = vec![
            SeriesPlan {
                key: key("AAAUSDT"),
                gaps: vec![(t0, t0 + 99_999 * h), (t0 + 130_000 * h, t0 + 130_000 * h)],
            },
            SeriesPlan {
                key: key("BBBUSDT"),
                gaps: vec![(t0 + 20_000 * h, t0 + 79_999 * h)],
            },
        ];
        for recent_first in [true, false] {
            let mut pages = Vec::new();
            merged_pages(&plans, recent_first, |p| {
                pages.push(p);
                true
            });
            // Turns of at most TURN_SLOTS per series, taken in merged time order.
            let turns: Vec<&[Page]> = pages.chunk_by(|a, b| a.key == b.key).collect();
            let times: Vec<i64> = turns
                .iter()
                .map(|t| if recent_first { t[0].to } else { t[0].from })
                .collect();
            let mut sorted = times.clone();
            sorted.sort_unstable();
            if recent_first {
                sorted.reverse();
            }
            assert_eq!(times, sorted);
            assert!(turns.len() >= 4, "the series take turns");
            // Each series' slots exactly once, pages no longer than the limit.
            for plan in &plans {
                let mut slots: Vec<i64> = Vec::new();
                for p in pages.iter().filter(|p| p.key == plan.key) {
                    assert!(p.from <= p.to && (p.to - p.from) / h < 1000);
                    slots.extend((p.from..=p.to).step_by(h as usize));
                }
                slots.sort_unstable();
                let want: Vec<i64> = plan
                    .gaps
                    .iter()
                    .flat_map(|&(a, b)| (a..=b).step_by(h as usize))
                    .collect();
                assert_eq!(slots, want, "{}", plan.key);
            }
            assert_eq!(
                pages.len() as u64,
                plans.iter().map(page_count).sum::<u64>()
            );
        }
    }

    #[test]
    fn coin_m_pages_fit_the_window() {
        assert_eq!(page_limit(Market::Spot, Interval::M1), 1000);
        assert_eq!(page_limit(Market::UsdM, Interval::M1), 499);
        assert_eq!(page_limit(Market::CoinM, Interval::D1), 200);
        assert_eq!(page_limit(Market::CoinM, Interval::Mo1), 6);
    }
}
