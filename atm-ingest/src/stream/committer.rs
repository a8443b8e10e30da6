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

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atm_store::layout::BLOCK_SLOTS;
use atm_store::prd::Histogram;
use atm_store::{Interval, Kline, SeriesKey, Store, Writer};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

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
    lag: Arc<Mutex<(Histogram, Histogram)>>,
    /// The oldest uncommitted change, and the receipts of the closes in it.
    pending: Option<Instant>,
    receipts: Vec<Instant>,
    /// `--derive`: 1m series → the series rolled up from it.
    targets: HashMap<SeriesKey, Vec<SeriesKey>>,
    /// Windows (derived series, open time) whose last minute is written.
    ready: BTreeSet<(SeriesKey, i64)>,
    /// Series that wrote the last slot of a block, with the next open time.
    block_ends: Vec<(SeriesKey, i64)>,
}

impl<'a> Committer<'a> {
    /// A committer writing through `writer`.
    pub fn new(store: &'a Store, writer: Writer, lag: Arc<Mutex<(Histogram, Histogram)>>) -> Committer<'a> {
        Committer {
            store,
            writer,
            lag,
            pending: None,
            receipts: Vec::new(),
            targets: HashMap::new(),
            ready: BTreeSet::new(),
            block_ends: Vec::new(),
        }
    }

    /// Runs until the applier hangs up, then commits what is left and
    /// closes the writer. Derived klines go to `derived`.
    pub fn run(mut self, ops: &Receiver<Write>, derived: &Sender<(SeriesKey, Kline)>) -> Result<()> {
        loop {
            let op = match self.pending {
                None => ops.recv_timeout(QUIET),
                Some(p) => ops.recv_timeout(GROUP_COMMIT.saturating_sub(p.elapsed())),
            };
            match op {
                Ok(Write::Put(key, k, received)) => {
                    self.writer.put(&key, &k)?;
                    if let Ok(slot) = key.interval.slot_of(k.open_time) {
                        if (slot + 1) % BLOCK_SLOTS == 0 {
                            self.block_ends.push((key.clone(), next_open(key.interval, k.open_time)));
                        }
                    }
                    self.mark_ready(&key, std::slice::from_ref(&k));
                    self.changed(received);
                }
                Ok(Write::Repaired(key, from, to, closed)) => {
                    self.writer.put_many(&key, &closed)?;
                    crate::pipeline::mark_absent(&mut self.writer, &Page { key: key.clone(), from, to, limit: 0 }, &closed)?;
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
                Err(RecvTimeoutError::Timeout) if self.pending.is_none() && self.writer.journal_bytes() > QUIET_CHECKPOINT_BYTES => {
                    // A quiet moment (closes come in bursts at interval
                    // boundaries): sync the series files and empty the
                    // journal now rather than inside a burst's commit.
                    let t = Instant::now();
                    self.writer.checkpoint()?;
                    log::debug!("checkpoint in a quiet moment: {:?}", t.elapsed());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.pending.is_some_and(|p| ops.is_empty() || p.elapsed() >= GROUP_COMMIT) {
                self.commit(derived)?;
            }
        }
        self.commit(derived)?;
        Ok(self.writer.close()?)
    }

    fn changed(&mut self, received: Option<Instant>) {
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
        log::debug!("committed {} klines of {} series in {:?}", stats.klines, stats.series, t.elapsed());
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
        let Some(targets) = self.targets.get(key) else { return };
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
            let minute_key = SeriesKey { interval: Interval::M1, ..key.clone() };
            let last_minute = next_open(key.interval, w) - 60_000;
            let Some(minutes) = self.store.series(&minute_key)? else { continue };
            if minutes.counts(w, last_minute)?.2 > 0 {
                continue;
            }
            self.ready.remove(&(key.clone(), w));
            let Some(k) = Kline::aggregate(&minutes.range(w, last_minute)?, w, next_open(key.interval, w) - 1, precision) else { continue };
            if self.store.series(&key)?.is_some_and(|s| s.at(w).ok().flatten().is_some()) {
                continue; // REST was first, and wins
            }
            if derived.send((key, k)).is_err() {
                break;
            }
        }
        Ok(())
    }
}
