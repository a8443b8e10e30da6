//! The fetch → parse → write pipeline behind `atm sync`, its control
//! requests (FAR) and its status (DAR).
//!
//! ```text
//!  planner ──pages──▶ fetchers (N threads) ──bodies──▶ parser ──klines──▶ writer
//!                      budget, retries                 (off the        (group commits,
//!                                                       network)        known-missing)
//! ```
//!
//! Every stage thread counts its own work in a [`StageStats`] and copies it
//! out when the status publisher asks (a DAR on a channel of its own, polled
//! in the same `select!` as its work). The writer thread owns the pipeline:
//! it carries out [`Control`] requests (flush now, pause or resume a
//! market, stop).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atm_store::{Kline, Market, Store};
use crossbeam_channel::{bounded, never, select, Receiver};

use crate::client::{klines_weight, Client, ClientStats};
use crate::error::{Error, Result};
use crate::ipc::{self, Gather, Request};
use crate::sync::{
    merged_pages, page_count, MarketProgress, Page, Progress, SeriesPlan, Summary, SyncOptions,
};
use atm_status::{MarketStatus, Metric, ProcessInfo, StageStats, SyncTotals, GATHER_TIMEOUT};

/// What the pipeline's owner can be asked to do (a FAR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Commit what was written so far, now.
    Flush,
    /// Send no more requests for this market until resumed.
    Pause(Market),
    /// Undo a pause.
    Resume(Market),
    /// Fetch nothing more; commit what arrived; end the run.
    Stop,
}

/// The answer to a [`Control`] request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlReply {
    /// Committed; `pages` written so far.
    Flushed {
        /// Pages written since the run began.
        pages: u64,
    },
    /// Done (the pause, resume or stop is in effect).
    Done,
}

/// The receiving end of a sync's control channel (see [`crate::ipc::channel`]).
pub type ControlRequests = Receiver<Request<Control, ControlReply>>;

/// What the writer reports when asked.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriterSnapshot {
    pub stage: StageStats,
    pub progress: Progress,
    pub known_missing: u64,
    pub queue: usize,
}

/// The DAR callers of a running pipeline's stages.
pub(crate) struct Probes {
    fetch: Gather<(StageStats, usize)>,
    parse: Gather<(StageStats, usize)>,
    write: Gather<WriterSnapshot>,
}

/// What sync and its status publisher share.
pub(crate) struct Shared {
    pub phase: Mutex<String>,
    /// Series skipped because another process holds their write lock,
    /// and their holders' pids.
    pub held: Mutex<std::collections::BTreeMap<atm_store::SeriesKey, i32>>,
    probes: Mutex<Option<Probes>>,
    /// The stages' final counts, once the pipeline has ended.
    finals: Mutex<Option<([StageStats; 2], WriterSnapshot)>>,
    pub stats: Arc<ClientStats>,
}

impl Shared {
    pub fn new(stats: Arc<ClientStats>) -> Shared {
        Shared {
            phase: Mutex::new("starting".into()),
            held: Default::default(),
            probes: Mutex::new(None),
            finals: Mutex::new(None),
            stats,
        }
    }

    pub fn set_phase(&self, phase: &str) {
        *atm_types::sync::lock(&self.phase) = phase.to_string();
    }
}

/// The status sampler of a sync: asks the stages (DAR) and reads the
/// client's counters; called by the publisher thread.
pub(crate) fn sampler(
    shared: Arc<Shared>,
) -> impl FnMut() -> Vec<(String, Metric)> + Send + 'static {
    let mut fetch: Vec<(StageStats, usize)> = Vec::new();
    let mut parse = (StageStats::default(), 0);
    let mut write = WriterSnapshot::default();
    let started = Instant::now();
    let mut first_progress: Option<(Instant, u64)> = None;
    move || {
        if let Some(p) = atm_types::sync::lock(&shared.probes).as_mut() {
            // Ask all three stages, then wait for the answers together.
            fetch = p.fetch.poll(GATHER_TIMEOUT).to_vec();
            parse = p
                .parse
                .poll(GATHER_TIMEOUT)
                .first()
                .cloned()
                .unwrap_or_default();
            write = p
                .write
                .poll(GATHER_TIMEOUT)
                .first()
                .cloned()
                .unwrap_or_default();
        } else if let Some((stages, w)) = atm_types::sync::lock(&shared.finals).as_ref() {
            fetch = vec![(stages[0].clone(), 0)];
            parse = (stages[1].clone(), 0);
            write = w.clone();
        }
        let s = &shared.stats;
        let mut fetch_all = StageStats::default();
        let mut fetch_queue = 0;
        for (f, q) in &fetch {
            fetch_all.merge(f);
            fetch_queue = fetch_queue.max(*q);
        }
        fetch_all.retries = s.retries.load(Relaxed);
        let mut out = Vec::with_capacity(64);
        fetch_all.metrics("fetch", fetch_queue, &mut out);
        parse.0.metrics("parse", parse.1, &mut out);
        write.stage.metrics("write", write.queue, &mut out);
        let p = &write.progress;
        SyncTotals {
            klines_written: p.klines,
            requests: s.requests.load(Relaxed),
            weight: s.weight.load(Relaxed),
            errors: fetch_all.errors + parse.0.errors + write.stage.errors,
            retries: s.retries.load(Relaxed),
            http429: s.http429.load(Relaxed),
            pages_done: p.pages_done,
            pages_total: p.pages_total,
            known_missing_slots: write.known_missing,
            held_series: atm_types::sync::lock(&shared.held).len() as u64,
            archive_files_planned: s.archive_files_planned.load(Relaxed),
            archive_files_done: s.archive_files_done.load(Relaxed),
            archive_files_missing: s.archive_files_missing.load(Relaxed),
            archive_files_failed: s.archive_files_failed.load(Relaxed),
            archive_klines: s.archive_klines.load(Relaxed),
            archive_bytes: s.archive_bytes.load(Relaxed),
            archive_requests: s.archive_requests.load(Relaxed),
        }
        .metrics("totals", &mut out);
        // Rate and ETA from the pages done since the first sample that saw any.
        let now = Instant::now();
        let first = *first_progress.get_or_insert((now, p.pages_done));
        let secs = now.duration_since(first.0).as_secs_f64();
        let pages_per_s = if secs > 0.5 {
            (p.pages_done - first.1) as f64 / secs
        } else {
            0.0
        };
        let eta = if pages_per_s > 0.0 {
            (p.pages_total.saturating_sub(p.pages_done)) as f64 / pages_per_s
        } else {
            -1.0
        };
        ProcessInfo {
            phase: atm_types::sync::lock(&shared.phase).clone(),
            eta_s: Some(eta),
            elapsed_s: Some(started.elapsed().as_secs_f64()),
            klines_per_s: Some(p.klines as f64 / started.elapsed().as_secs_f64().max(1e-3)),
        }
        .metrics("process", &mut out);
        for m in Market::ALL {
            let i = m as usize;
            let mut market = MarketStatus {
                weight: s.weight_by_market[i].load(Relaxed),
                weight_limit: s.limit_by_market[i].load(Relaxed) as i64,
                weight_minute: s.minute_used[i].load(Relaxed) as i64,
                ..MarketStatus::default()
            };
            if let Some(mp) = p.markets.iter().find(|mp| mp.market == m) {
                market.pages_done = Some(mp.pages_done);
                market.pages_total = Some(mp.pages_total);
                market.klines = Some(mp.klines);
                market.state = Some(match &mp.failed {
                    Some(why) => format!("stopped: {why}"),
                    None if mp.pages_done == mp.pages_total => "done".to_string(),
                    None => "running".to_string(),
                });
            }
            market.metrics(&format!("market.{}", m.as_str()), &mut out);
        }
        out
    }
}

pub(crate) enum Fetched {
    Body(Page, Vec<u8>),
    Failed(Market, Error),
}

/// Flags the stages read.
#[derive(Default)]
struct Flags {
    /// A market stopped by a fatal error.
    stopped: [AtomicBool; 3],
    /// A market paused by request.
    paused: [AtomicBool; 3],
    /// Stop requested.
    stop_all: AtomicBool,
}

impl Flags {
    fn skip(&self, m: Market) -> bool {
        self.stop_all.load(Relaxed) || self.stopped[m as usize].load(Relaxed)
    }
}

/// Answers a DAR with `snapshot()`; a closed DAR channel is replaced by one
/// that never fires, so a `select!` does not spin on it.
fn answer<T>(
    r: std::result::Result<Request<(), T>, crossbeam_channel::RecvError>,
    rx: &mut Receiver<Request<(), T>>,
    snapshot: impl FnOnce() -> T,
) {
    match r {
        Ok(req) => {
            req.reply(snapshot());
        }
        Err(_) => *rx = never(),
    }
}

/// One fetcher thread: takes pages, sends their bodies on; pages of a paused
/// market are parked (so other markets go on) and taken up again on resume.
/// Returns its counts when the planner is done and nothing fetchable is left.
fn fetcher(
    client: &Client,
    flags: &Flags,
    parked: &Mutex<Vec<Page>>,
    page_rx: Receiver<Page>,
    body_tx: crossbeam_channel::Sender<Fetched>,
    mut dar_rx: Receiver<Request<(), (StageStats, usize)>>,
) -> StageStats {
    let mut local = StageStats::default();
    let mut planner_done = false;
    loop {
        let unparked = {
            let mut p = atm_types::sync::lock(parked);
            if flags.stop_all.load(Relaxed) {
                p.clear();
            }
            p.iter()
                .position(|pg| !flags.paused[pg.key.market as usize].load(Relaxed))
                .map(|i| p.swap_remove(i))
        };
        let page = match unparked {
            Some(page) => page,
            None if planner_done => {
                if atm_types::sync::lock(parked).is_empty() {
                    break;
                }
                // Only paused pages are left: wait for a resume (or a stop).
                select! {
                    recv(dar_rx) -> r => answer(r, &mut dar_rx, || (local.clone(), 0)),
                    default(Duration::from_millis(50)) => {}
                }
                continue;
            }
            None => select! {
                recv(page_rx) -> msg => match msg {
                    Ok(page) => page,
                    Err(_) => {
                        planner_done = true;
                        continue;
                    }
                },
                recv(dar_rx) -> r => {
                    answer(r, &mut dar_rx, || (local.clone(), page_rx.len()));
                    continue;
                }
                // Wake now and then to take up resumed pages.
                default(Duration::from_millis(100)) => continue,
            },
        };
        let m = page.key.market;
        if flags.skip(m) {
            continue;
        }
        if flags.paused[m as usize].load(Relaxed) {
            atm_types::sync::lock(parked).push(page);
            continue;
        }
        local.items_in += 1;
        let t = Instant::now();
        let msg = match client.get(m, "klines", &page.query(), klines_weight(m, page.limit)) {
            Ok(body) => {
                local.items_out += 1;
                local.bytes_out += body.len() as u64;
                local.time(t);
                Fetched::Body(page, body)
            }
            Err(e)
                if matches!(
                    e,
                    Error::Api {
                        code: Some(-1121),
                        ..
                    }
                ) =>
            {
                // A symbol removed from the exchange mid-sync: its pages
                // cannot be answered; the rest goes on.
                log::warn!("{}: {e}; skipping its pages", page.key);
                local.errors += 1;
                local.last_error = format!("{}: {e}", page.key);
                continue;
            }
            Err(e) => {
                local.errors += 1;
                local.last_error = e.to_string();
                flags.stopped[m as usize].store(true, Relaxed);
                Fetched::Failed(m, e)
            }
        };
        if body_tx.send(msg).is_err() {
            break;
        }
    }
    local
}

/// Executes the plan through the pipeline.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    client: &Client,
    store: &Store,
    writer: &mut atm_store::Writer,
    plans: Vec<SeriesPlan>,
    opts: &SyncOptions,
    now: i64,
    summary: &mut Summary,
    progress: &mut dyn FnMut(&Progress),
    shared: &Shared,
) -> Result<()> {
    let report = Progress {
        pages_total: summary.pages,
        markets: opts
            .selection
            .markets
            .iter()
            .map(|&market| MarketProgress {
                market,
                pages_done: 0,
                pages_total: plans
                    .iter()
                    .filter(|p| p.key.market == market)
                    .map(page_count)
                    .sum(),
                klines: 0,
                failed: None,
            })
            .collect(),
        ..Progress::default()
    };
    let flags = Flags::default();
    let parked: Mutex<Vec<Page>> = Mutex::new(Vec::new());
    let workers = opts.workers.max(1);
    let (page_tx, page_rx) = bounded::<Page>(workers * 4);
    let (body_tx, body_rx) = bounded::<Fetched>(workers * 2);
    let (kl_tx, kl_rx) = bounded::<Parsed>(workers * 2);
    // One DAR channel per stage thread.
    let fetch_dars: Vec<_> = (0..workers)
        .map(|_| ipc::channel::<(), (StageStats, usize)>(1))
        .collect();
    let (parse_dar, parse_dar_rx) = ipc::channel::<(), (StageStats, usize)>(1);
    let (write_dar, write_dar_rx) = ipc::channel::<(), WriterSnapshot>(1);
    *atm_types::sync::lock(&shared.probes) = Some(Probes {
        fetch: Gather::new(fetch_dars.iter().map(|(c, _)| c.clone()).collect()),
        parse: Gather::new(vec![parse_dar]),
        write: Gather::new(vec![write_dar]),
    });
    let control = opts.control.clone().unwrap_or_else(never);
    let precision = store.precision();
    let mut stage = WriteStage {
        client,
        writer,
        now,
        report,
        stats: StageStats::default(),
        known_missing: 0,
    };
    let result = std::thread::scope(|scope| -> Result<[StageStats; 2]> {
        // Owned here, so an early return drops them and unblocks every stage.
        let (page_rx, kl_rx) = (page_rx, kl_rx);
        // Planner: every series' pages, merged newest first (or oldest).
        let flags = &flags;
        let plans = &plans;
        scope.spawn(move || {
            merged_pages(plans, opts.recent_first, |page| {
                if flags.stop_all.load(Relaxed) {
                    return false;
                }
                // A stopped market's pages are dropped here.
                flags.stopped[page.key.market as usize].load(Relaxed) || page_tx.send(page).is_ok()
            })
        });
        let mut fetchers = Vec::new();
        let parked = &parked;
        for (_, dar_rx) in fetch_dars {
            let (page_rx, body_tx) = (page_rx.clone(), body_tx.clone());
            fetchers.push(
                scope.spawn(move || fetcher(client, flags, parked, page_rx, body_tx, dar_rx)),
            );
        }
        drop(body_tx);
        drop(page_rx);
        // Parser: off the network threads.
        let parser = scope.spawn(move || parser(client, precision, body_rx, kl_tx, parse_dar_rx));
        // Writer: this thread, the pipeline's owner.
        stage.run(&kl_rx, write_dar_rx, control, flags, summary, progress)?;
        let mut fetch_all = StageStats::default();
        for f in fetchers {
            if let Ok(s) = f.join() {
                fetch_all.merge(&s);
            }
        }
        let parse_stats = parser.join().unwrap_or_default();
        Ok([fetch_all, parse_stats])
    });
    if result.is_err() {
        stage.writer.rollback();
    }
    let WriteStage {
        report,
        stats: write_stats,
        known_missing,
        ..
    } = stage;
    summary.klines_written += report.klines;
    summary.pages_done = report.pages_done;
    summary.known_missing_slots = known_missing;
    *atm_types::sync::lock(&shared.probes) = None;
    let stages = result?;
    *atm_types::sync::lock(&shared.finals) = Some((
        stages,
        WriterSnapshot {
            stage: write_stats,
            progress: report,
            known_missing,
            queue: 0,
        },
    ));
    Ok(())
}

/// The parse stage: klines bodies to klines, off the network threads. A
/// broken body (truncated, HTML, wrong shape) is fetched again here,
/// parsing each answer, as the client retries anything retryable.
fn parser(
    client: &Client,
    precision: atm_store::Precision,
    body_rx: Receiver<Fetched>,
    kl_tx: crossbeam_channel::Sender<Parsed>,
    mut dar_rx: Receiver<Request<(), (StageStats, usize)>>,
) -> StageStats {
    let mut local = StageStats::default();
    loop {
        select! {
            recv(body_rx) -> f => {
                let Ok(f) = f else { break };
                let t = Instant::now();
                let msg = match f {
                    Fetched::Body(page, body) => parse_page(client, precision, page, &body, &mut local),
                    Fetched::Failed(m, e) => Err((m, e)),
                };
                if let Ok((_, k)) = &msg {
                    local.items_out += 1;
                    local.bytes_out += (k.len() * std::mem::size_of::<Kline>()) as u64;
                    local.time(t);
                }
                if kl_tx.send(msg).is_err() {
                    break;
                }
            }
            recv(dar_rx) -> r => answer(r, &mut dar_rx, || (local.clone(), body_rx.len())),
        }
    }
    local
}

/// One page's body parsed (or fetched again once if it is broken).
fn parse_page(
    client: &Client,
    precision: atm_store::Precision,
    page: Page,
    body: &[u8],
    local: &mut StageStats,
) -> Parsed {
    local.items_in += 1;
    local.bytes_in += body.len() as u64;
    match crate::parse::klines(body, precision) {
        Ok(k) => Ok((page, k)),
        Err(msg) => {
            let m = page.key.market;
            log::debug!(
                "{}: malformed klines body ({msg}), fetching again",
                page.key
            );
            local.retries += 1;
            client.stats.retries.fetch_add(1, Relaxed);
            match page.fetch(client, precision) {
                Ok(k) => Ok((page, k)),
                Err(e) => {
                    local.errors += 1;
                    local.last_error = e.to_string();
                    Err((m, e))
                }
            }
        }
    }
}

/// What the parser hands the writer: a page's klines, or why its market stops.
type Parsed = std::result::Result<(Page, Vec<Kline>), (Market, Error)>;

/// The write stage, run by the pipeline's owner thread: klines into the
/// store in group commits, known-missing pages, progress, the markets that
/// stopped, and the control requests (flush, pause, resume, stop).
struct WriteStage<'a> {
    client: &'a Client,
    writer: &'a mut atm_store::Writer,
    /// The exchange time the plan was made at: only klines closed before it are written.
    now: i64,
    report: Progress,
    stats: StageStats,
    known_missing: u64,
}

impl WriteStage<'_> {
    /// Commits every 64 pages or 250 ms until the parser hangs up, then
    /// commits the rest.
    fn run(
        &mut self,
        kl_rx: &Receiver<Parsed>,
        mut dar_rx: Receiver<Request<(), WriterSnapshot>>,
        mut control: ControlRequests,
        flags: &Flags,
        summary: &mut Summary,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<()> {
        let mut since_commit = 0;
        let mut last_commit = Instant::now();
        let mut last_report = Instant::now();
        loop {
            select! {
                recv(kl_rx) -> msg => {
                    let Ok(msg) = msg else { break };
                    match msg {
                        Ok((page, klines)) => {
                            self.write_page(&page, klines)?;
                            since_commit += 1;
                        }
                        Err((m, e)) => self.market_failed(m, e, summary),
                    }
                }
                recv(dar_rx) -> r => answer(r, &mut dar_rx, || WriterSnapshot {
                    stage: self.stats.clone(),
                    progress: self.report.clone(),
                    known_missing: self.known_missing,
                    queue: kl_rx.len(),
                }),
                recv(control) -> r => match r {
                    Ok(req) => {
                        let reply = self.on_control(req.body(), flags, summary)?;
                        if matches!(reply, ControlReply::Flushed { .. }) {
                            since_commit = 0;
                        }
                        req.reply(reply);
                    }
                    Err(_) => control = never(),
                },
            }
            if since_commit >= 64
                || (since_commit > 0 && last_commit.elapsed() > Duration::from_millis(250))
            {
                self.writer.commit()?;
                since_commit = 0;
                last_commit = Instant::now();
            }
            if last_report.elapsed() > Duration::from_millis(200) {
                self.report.weight = self.client.stats.weight.load(Relaxed);
                progress(&self.report);
                last_report = Instant::now();
            }
        }
        self.writer.commit()?;
        self.report.weight = self.client.stats.weight.load(Relaxed);
        progress(&self.report);
        Ok(())
    }

    /// Stages a page's closed klines and marks the rest of it known-missing.
    fn write_page(&mut self, page: &Page, klines: Vec<Kline>) -> Result<()> {
        let t = Instant::now();
        self.stats.items_in += 1;
        let closed: Vec<Kline> = klines
            .into_iter()
            .filter(|k| {
                k.open_time >= page.from && k.open_time <= page.to && k.close_time < self.now
            })
            .collect();
        self.writer.put_many(&page.key, &closed)?;
        self.known_missing += mark_absent(self.writer, page, &closed)?;
        self.report.pages_done += 1;
        self.report.klines += closed.len() as u64;
        if let Some(mp) = self
            .report
            .markets
            .iter_mut()
            .find(|mp| mp.market == page.key.market)
        {
            mp.pages_done += 1;
            mp.klines += closed.len() as u64;
        }
        self.stats.items_out += closed.len() as u64;
        self.stats.bytes_out += closed.len() as u64 * 37;
        self.stats.time(t);
        Ok(())
    }

    /// The first fatal error of a market is its reason to stop.
    fn market_failed(&mut self, m: Market, e: Error, summary: &mut Summary) {
        self.stats.errors += 1;
        self.stats.last_error = format!("{m}: {e}");
        if let Some(mp) = self
            .report
            .markets
            .iter_mut()
            .find(|mp| mp.market == m && mp.failed.is_none())
        {
            let line = format!("{m}: {e}");
            log::error!("{line}");
            mp.failed = Some(e.to_string());
            summary.failed_markets.push(line);
        }
    }

    fn on_control(
        &mut self,
        c: &Control,
        flags: &Flags,
        summary: &mut Summary,
    ) -> Result<ControlReply> {
        Ok(match *c {
            Control::Flush => {
                self.writer.commit()?;
                ControlReply::Flushed {
                    pages: self.report.pages_done,
                }
            }
            Control::Pause(m) => {
                flags.paused[m as usize].store(true, Relaxed);
                ControlReply::Done
            }
            Control::Resume(m) => {
                flags.paused[m as usize].store(false, Relaxed);
                ControlReply::Done
            }
            Control::Stop => {
                log::warn!("stop requested: committing what arrived, fetching nothing more");
                flags.stop_all.store(true, Relaxed);
                summary.stopped = true;
                ControlReply::Done
            }
        })
    }
}

/// Records every slot of `page` absent from `closed` (sorted, inside the
/// page) as known-missing; returns how many slots that was.
pub(crate) fn mark_absent(
    writer: &mut atm_store::Writer,
    page: &Page,
    closed: &[Kline],
) -> Result<u64> {
    let iv = page.key.interval;
    let (Ok(first), Ok(last)) = (iv.slot_of(page.from), iv.slot_of(page.to)) else {
        return Ok(0);
    };
    let mut marked = 0;
    let mut expect = first; // the next slot not yet accounted for
    let mut mark = |writer: &mut atm_store::Writer, a: u64, b: u64| -> Result<()> {
        writer.mark_missing(&page.key, iv.open_time(a), iv.open_time(b))?;
        marked += b - a + 1;
        Ok(())
    };
    for k in closed {
        let Ok(slot) = iv.slot_of(k.open_time) else {
            continue;
        };
        if slot > expect {
            mark(writer, expect, slot - 1)?;
        }
        expect = expect.max(slot + 1);
    }
    if expect <= last {
        mark(writer, expect, last)?;
    }
    Ok(marked)
}
