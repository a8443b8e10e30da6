//! The committer: the one thread that writes the store during `atm stream`.
//!
//! The applier hands it closed klines and REST repairs; it stages them and
//! commits as soon as nothing else is queued (adaptive group commit: a
//! burst of closes at a minute boundary queues up behind one commit and
//! goes into the next), at most [`GROUP_COMMIT`] after the first change.
//! Commits never hold up the applier, so live values are published while
//! a large commit is under way. With `--derive`, the windows whose minutes
//! are all committed are rolled up here (reading the store) and sent back
//! to the applier, which decides what to do with them like with any close.
//!
//! Between bursts it arms the series about to close (see [`Arming`]): the
//! kernel's writeback and the committer's own checkpoints leave the pages
//! of the series files clean, and the first write to a clean mapped page
//! faults (~3 µs each, 14 pages per series). Faulting them in shortly
//! before a boundary takes that out of the commit of the burst: a commit of
//! one kline into each of 4,000 series takes ~25 ms with its pages armed
//! and ~160 ms without (`commit-bench`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atm_store::{Interval, Kline, SeriesKey, Store, Writer};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::latency::Latency;
use crate::budget::ExchangeClock;
use crate::error::Result;
use crate::first_kline::{next_open, open_of};
use crate::sync::Page;

/// Changes are committed at most this long after the first of them.
pub(crate) const GROUP_COMMIT: Duration = Duration::from_millis(10);

/// No write for this long is a quiet moment.
const QUIET: Duration = Duration::from_secs(1);
/// Journal bytes past which a quiet moment is used to checkpoint (a commit
/// would do it at 64 MiB, in the middle of a burst).
const QUIET_CHECKPOINT_BYTES: u64 = 8 << 20;

/// Series are armed this long (real time) before their close is due, or a
/// quarter of their interval when that is shorter.
const ARM_LEAD: Duration = Duration::from_secs(3);
/// How often the committer looks for series to arm when idle.
const ARM_EVERY: Duration = Duration::from_millis(100);
/// Series armed in one step; queued writes are served between steps.
const ARM_STEP: usize = 256;

/// Which series to arm before their next close, and for which close each
/// was armed last.
pub(crate) struct Arming {
    clock: ExchangeClock,
    /// Every series the committer writes, and the close (exchange ms) it
    /// was last armed for.
    series: Vec<(SeriesKey, i64)>,
    known: HashSet<SeriesKey>,
    /// Where the current pass through `series` is.
    cursor: usize,
    /// When the next pass starts.
    next_pass: Instant,
}

impl Arming {
    /// Arms `series` (and every series written later) on `clock`.
    pub fn new(clock: ExchangeClock, series: &[SeriesKey]) -> Arming {
        let mut a = Arming {
            clock,
            series: Vec::new(),
            known: HashSet::new(),
            cursor: 0,
            next_pass: Instant::now(),
        };
        for key in series {
            a.add(key);
        }
        a
    }

    fn add(&mut self, key: &SeriesKey) {
        if !self.known.contains(key) {
            self.known.insert(key.clone());
            self.series.push((key.clone(), i64::MIN));
        }
    }

    /// Time until the next pass is due.
    fn wait(&self) -> Duration {
        self.next_pass.saturating_duration_since(Instant::now())
    }

    /// Pages were cleaned (a checkpoint synced them): arm everything again.
    fn forget(&mut self) {
        self.series.iter_mut().for_each(|s| s.1 = i64::MIN);
        self.next_pass = Instant::now();
    }

    /// One step of a pass: arms up to [`ARM_STEP`] series whose close is
    /// due within the lead. Best effort: a failure is logged, not fatal
    /// (the commit reports real problems).
    fn step(&mut self, writer: &mut Writer) -> usize {
        let now = self.clock.now();
        let lead = (ARM_LEAD.as_secs_f64() * 1000.0 * self.clock.scale()) as i64;
        let mut armed = 0;
        while self.cursor < self.series.len() && armed < ARM_STEP {
            let (key, last) = &mut self.series[self.cursor];
            self.cursor += 1;
            let (open, close) = (open_of(key.interval, now), next_open(key.interval, now));
            if *last == close || close - now > lead.min((close - open) / 4) {
                continue;
            }
            *last = close;
            armed += 1;
            if let Err(e) = writer.prepare(key, open) {
                log::debug!("arming {key} before its close: {e}");
            }
        }
        if armed > 0 {
            log::debug!("armed {armed} series for their closes");
        }
        if self.cursor >= self.series.len() {
            self.cursor = 0;
            self.next_pass = Instant::now() + ARM_EVERY;
        }
        armed
    }
}

/// What the applier asks of the committer.
pub(crate) enum Write {
    /// A closed kline, from an event received at the instant (or derived).
    Put(SeriesKey, Kline, Option<Instant>),
    /// REST's closed klines of `[from, to]`; the slots without one are known-missing.
    Repaired(SeriesKey, i64, i64, Vec<Kline>),
    /// Commit now, then answer.
    Flush(Sender<()>),
    /// Roll these series up from these 1m series from now on (`--derive`).
    Derive(Vec<(SeriesKey, SeriesKey)>),
}

/// The committer's state.
pub(crate) struct Committer<'a> {
    store: &'a Store,
    writer: Writer,
    /// Receipt of a closing event → its commit, µs, and the time each
    /// commit took, µs; shared with the status sampler.
    lag: Arc<Mutex<(Latency, Latency)>>,
    /// The oldest uncommitted change, and the receipts of the closes in it.
    pending: Option<Instant>,
    receipts: Vec<Instant>,
    /// `--derive`: 1m series → the series rolled up from it.
    targets: HashMap<SeriesKey, Vec<SeriesKey>>,
    /// Windows (derived series, open time) whose last minute is written.
    ready: BTreeSet<(SeriesKey, i64)>,
    /// Series that wrote the last slot of a block, with the next open time.
    block_ends: Vec<(SeriesKey, i64)>,
    /// The series to arm before their closes (none when replaying).
    arming: Option<Arming>,
    /// The last write received.
    last_write: Instant,
}

impl<'a> Committer<'a> {
    /// A committer writing through `writer`.
    pub fn new(
        store: &'a Store,
        writer: Writer,
        lag: Arc<Mutex<(Latency, Latency)>>,
    ) -> Committer<'a> {
        Committer {
            store,
            writer,
            lag,
            pending: None,
            receipts: Vec::new(),
            targets: HashMap::new(),
            ready: BTreeSet::new(),
            block_ends: Vec::new(),
            arming: None,
            last_write: Instant::now(),
        }
    }

    /// Arms series before their closes (see [`Arming`]).
    pub fn arming(mut self, arming: Arming) -> Committer<'a> {
        self.arming = Some(arming);
        self
    }

    /// Runs until the applier hangs up, then commits what is left and
    /// closes the writer. Derived klines go to `derived`.
    pub fn run(
        mut self,
        ops: &Receiver<Write>,
        derived: &Sender<(SeriesKey, Kline)>,
    ) -> Result<()> {
        loop {
            let op = match self.pending {
                None => {
                    ops.recv_timeout(self.arming.as_ref().map_or(QUIET, |a| a.wait().min(QUIET)))
                }
                Some(p) => ops.recv_timeout(GROUP_COMMIT.saturating_sub(p.elapsed())),
            };
            match op {
                Ok(Write::Put(key, k, received)) => {
                    self.writer.put(&key, &k)?;
                    if atm_store::Writer::ends_block(&key, k.open_time) {
                        self.block_ends
                            .push((key.clone(), next_open(key.interval, k.open_time)));
                    }
                    if let Some(a) = &mut self.arming {
                        a.add(&key);
                    }
                    self.mark_ready(&key, std::slice::from_ref(&k));
                    self.changed(received);
                }
                Ok(Write::Repaired(key, from, to, closed)) => {
                    self.writer.put_many(&key, &closed)?;
                    crate::pipeline::mark_absent(
                        &mut self.writer,
                        &Page {
                            key: key.clone(),
                            from,
                            to,
                            limit: 0,
                        },
                        &closed,
                    )?;
                    self.mark_ready(&key, &closed);
                    self.changed(None);
                }
                Ok(Write::Derive(pairs)) => {
                    for (minute, derived) in pairs {
                        self.targets.entry(minute).or_default().push(derived);
                    }
                }
                Ok(Write::Flush(reply)) => {
                    self.commit(derived)?;
                    let _ = reply.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self
                .pending
                .is_some_and(|p| ops.is_empty() || p.elapsed() >= GROUP_COMMIT)
            {
                self.commit(derived)?;
            }
            if self.pending.is_some() || !ops.is_empty() {
                continue;
            }
            if self.last_write.elapsed() >= QUIET
                && self.writer.journal_bytes() > QUIET_CHECKPOINT_BYTES
            {
                // A quiet moment (closes come in bursts at interval
                // boundaries): sync the series files and empty the
                // journal now rather than inside a burst's commit.
                let t = Instant::now();
                self.writer.checkpoint()?;
                log::debug!("checkpoint in a quiet moment: {:?}", t.elapsed());
                if let Some(a) = &mut self.arming {
                    a.forget(); // the sync left every page clean
                }
            }
            if let Some(a) = self.arming.as_mut().filter(|a| a.wait().is_zero()) {
                a.step(&mut self.writer);
            }
        }
        self.commit(derived)?;
        Ok(self.writer.close()?)
    }

    fn changed(&mut self, received: Option<Instant>) {
        self.last_write = Instant::now();
        self.pending.get_or_insert_with(Instant::now);
        if let Some(r) = received {
            self.receipts.push(r);
        }
    }

    fn commit(&mut self, derived: &Sender<(SeriesKey, Kline)>) -> Result<()> {
        if self.pending.take().is_none() {
            return Ok(());
        }
        let t = Instant::now();
        let stats = self.writer.commit()?;
        log::debug!(
            "committed {} klines of {} series in {:?}",
            stats.klines,
            stats.series,
            t.elapsed()
        );
        if let Ok(mut lag) = self.lag.lock() {
            lag.1.record(t.elapsed().as_micros() as u64);
            for r in self.receipts.drain(..) {
                lag.0.record(r.elapsed().as_micros() as u64);
            }
        }
        self.receipts.clear();
        // Series whose block just filled up: the next one is made ready
        // now, not in the middle of the next commit.
        for (key, t) in std::mem::take(&mut self.block_ends) {
            self.writer.prepare(&key, t)?;
        }
        self.derive(derived)
    }

    /// Minutes of `key` were written: the windows they end become ready.
    fn mark_ready(&mut self, key: &SeriesKey, minutes: &[Kline]) {
        let Some(targets) = self.targets.get(key) else {
            return;
        };
        for k in minutes {
            for t in targets {
                let w = open_of(t.interval, k.open_time);
                if next_open(Interval::M1, k.open_time) == next_open(t.interval, w) {
                    self.ready.insert((t.clone(), w));
                }
            }
        }
    }

    /// Rolls up the ready windows whose minutes are all committed (none
    /// unknown: repairs fill lost ones first) and are not stored yet.
    fn derive(&mut self, derived: &Sender<(SeriesKey, Kline)>) -> Result<()> {
        let ready: Vec<(SeriesKey, i64)> = self.ready.iter().cloned().collect();
        let precision = self.store.precision();
        for (key, w) in ready {
            let minute_key = SeriesKey {
                interval: Interval::M1,
                ..key.clone()
            };
            let last_minute = next_open(key.interval, w) - 60_000;
            let Some(minutes) = self.store.series(&minute_key)? else {
                continue;
            };
            if minutes.counts(w, last_minute)?.2 > 0 {
                continue;
            }
            self.ready.remove(&(key.clone(), w));
            let Some(k) = Kline::aggregate(
                &minutes.range(w, last_minute)?,
                w,
                next_open(key.interval, w) - 1,
                precision,
            ) else {
                continue;
            };
            if self
                .store
                .series(&key)?
                .is_some_and(|s| s.at(w).ok().flatten().is_some())
            {
                continue; // REST was first, and wins
            }
            if derived.send((key, k)).is_err() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atm_store::{Market, StoreOptions};

    #[test]
    fn series_are_armed_once_for_each_close_and_only_when_it_is_near() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let mut writer = store.writer().unwrap();
        let key = |iv| SeriesKey::parse(Market::Spot, "BTCUSDT", iv).unwrap();
        let file = |iv: Interval| {
            dir.path()
                .join("spot")
                .join(iv.file_name())
                .join(format!("BTCUSDT.{}", atm_store::SERIES_EXT))
        };
        // One exchange second before a minute boundary (not an hour's).
        let boundary = 1_764_000_060_000;
        let clock = ExchangeClock::new(Instant::now(), boundary - 1_000, 1.0);
        let mut arming = Arming::new(
            clock,
            &[key(Interval::M1), key(Interval::H1), key(Interval::S1)],
        );
        // The minute closes within the lead; the hour does not, nor the
        // second (closer than its interval's quarter only at its end).
        assert_eq!(arming.step(&mut writer), 1);
        assert_eq!(arming.series.iter().filter(|s| s.1 == boundary).count(), 1);
        assert!(
            file(Interval::M1).exists(),
            "arming opened (prepared) the series"
        );
        assert!(!file(Interval::H1).exists());
        // Armed once per close.
        arming.next_pass = Instant::now();
        assert_eq!(arming.step(&mut writer), 0);
        // A checkpoint cleaned the pages: armed again.
        arming.forget();
        assert_eq!(arming.step(&mut writer), 1);
    }
}
