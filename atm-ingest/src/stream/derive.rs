//! `--derive`: longer intervals rolled up from the 1m stream instead of
//! streamed, and cross-checked against the exchange's own klines.
//!
//! - Live: the in-progress kline of a derived series is the aggregate of
//!   the closed minutes of its window seen so far plus the live minute.
//! - Closed: when the last minute of a window closes, the window is derived
//!   from the stored (committed) 1m klines once none of them is unknown
//!   (repairs fill lost minutes first). A window already present in the
//!   store (REST got there first) is left as it is.
//! - Checked: derived klines are fetched again from REST in batches, at most
//!   [`CHECK_AFTER`] (exchange time) after they were derived, and at stop.
//!   REST's klines are written over them, so the store always ends with the
//!   exchange's values; one that disagrees beyond the rounding of sums is
//!   counted in `derive_mismatches` and logged.

use std::collections::{BTreeSet, HashMap};

use atm_store::{Interval, Kline, SeriesKey};

use super::applier::Applier;
use crate::error::Result;
use crate::first_kline::{next_open, open_of};

/// Derived klines are compared with REST's within this much exchange time.
pub(crate) const CHECK_AFTER_MS: i64 = 3_600_000;

/// Whether `--derive` rolls `interval` up from 1m (1s is shorter, and 1m is the source).
pub(crate) fn is_derived(interval: Interval) -> bool {
    !matches!(interval, Interval::S1 | Interval::M1)
}

/// The roll-up state.
#[derive(Default)]
pub(crate) struct Deriver {
    /// 1m series → the series derived from it.
    targets: HashMap<usize, Vec<usize>>,
    /// Derived series → its 1m source.
    source: HashMap<usize, usize>,
    /// Derived series → (window open, aggregate of its closed minutes seen).
    running: HashMap<usize, (i64, Kline)>,
    /// Windows whose last minute closed: derived once their minutes are committed.
    ready: BTreeSet<(usize, i64)>,
    /// Derived series → open times derived and not yet compared with REST.
    unchecked: HashMap<usize, (i64, i64)>,
    /// The derived values awaiting that comparison.
    values: HashMap<(usize, i64), Kline>,
}

impl Applier<'_> {
    /// Derives each `(source 1m series, derived series)` pair.
    pub(crate) fn derive_from(&mut self, pairs: &[(usize, usize)]) {
        let d = self.derive.get_or_insert_with(Deriver::default);
        for &(src, dst) in pairs {
            d.targets.entry(src).or_default().push(dst);
            d.source.insert(dst, src);
        }
    }

    /// A live minute of series `id`: the live klines of what derives from it.
    pub(super) fn derive_live(&mut self, id: usize, minute: &Kline) {
        let Some(d) = &self.derive else { return };
        let Some(targets) = d.targets.get(&id) else { return };
        let mut out = Vec::with_capacity(targets.len());
        for &t in targets {
            let iv = self.series[t].key.interval;
            let w = open_of(iv, minute.open_time);
            let parts: &[Kline] = match d.running.get(&t) {
                Some((rw, acc)) if *rw == w => &[*acc, *minute],
                _ => std::slice::from_ref(minute),
            };
            if let Some(k) = Kline::aggregate(parts, w, next_open(iv, w) - 1, self.precision) {
                out.push((t, k));
            }
        }
        for (t, k) in out {
            self.publish_live(t, &k, None);
        }
    }

    /// A closed minute of series `id` was written.
    pub(super) fn derive_after_close(&mut self, id: usize, minute: &Kline) {
        let Some(d) = &mut self.derive else { return };
        let Some(targets) = d.targets.get(&id) else { return };
        for &t in targets {
            let iv = self.series[t].key.interval;
            let w = open_of(iv, minute.open_time);
            let acc = match d.running.get(&t) {
                Some((rw, acc)) if *rw == w => Kline::aggregate(&[*acc, *minute], w, next_open(iv, w) - 1, self.precision),
                _ => Some(*minute),
            };
            if let Some(acc) = acc {
                d.running.insert(t, (w, acc));
            }
            if next_open(Interval::M1, minute.open_time) == next_open(iv, w) {
                d.ready.insert((t, w));
            }
        }
    }

    /// REST klines of `key` are about to be written: windows they complete
    /// become ready, and derived klines they answer are compared.
    pub(super) fn derive_after_repair(&mut self, key: &SeriesKey, klines: &[Kline]) {
        let Some(id) = self.id(key) else { return };
        let Some(d) = &mut self.derive else { return };
        if let Some(targets) = d.targets.get(&id) {
            for k in klines {
                for &t in targets {
                    let iv = self.series[t].key.interval;
                    let w = open_of(iv, k.open_time);
                    if next_open(Interval::M1, k.open_time) == next_open(iv, w) {
                        d.ready.insert((t, w));
                    }
                }
            }
        }
        for k in klines {
            if let Some(v) = d.values.remove(&(id, k.open_time)) {
                if !v.agrees_with(k, self.precision) {
                    self.summary.derive_mismatches += 1;
                    log::warn!(
                        "{key}: the kline derived at {} differs from the exchange's ({v:?} vs {k:?}); the exchange's is kept",
                        k.open_time
                    );
                }
            }
        }
    }

    /// After a commit: derives the ready windows whose minutes are all known.
    pub(super) fn derive_committed(&mut self) -> Result<()> {
        let Some(d) = &self.derive else { return Ok(()) };
        if !self.repairs_open() {
            return Ok(()); // stopping: REST has been asked for every window due
        }
        let ready: Vec<(usize, i64)> = d.ready.iter().copied().collect();
        for (t, w) in ready {
            let Some(&src) = self.derive.as_ref().and_then(|d| d.source.get(&t)) else { continue };
            let (key, iv) = (self.series[t].key.clone(), self.series[t].key.interval);
            let last_minute = next_open(iv, w) - 60_000;
            let Some(minutes) = self.store.series(&self.series[src].key)? else { continue };
            let (_, _, unknown) = minutes.counts(w, last_minute)?;
            if unknown > 0 {
                continue; // repairs will fill them
            }
            if let Some(d) = &mut self.derive {
                d.ready.remove(&(t, w));
            }
            let parts = minutes.range(w, last_minute)?;
            let Some(k) = Kline::aggregate(&parts, w, next_open(iv, w) - 1, self.precision) else { continue };
            if self.store.series(&key)?.is_some_and(|s| s.at(w).ok().flatten().is_some()) {
                continue; // REST was first, and wins
            }
            self.on_close(t, k, None)?;
            self.summary.derived += 1;
            if let Some(d) = &mut self.derive {
                d.values.insert((t, w), k);
                let r = d.unchecked.entry(t).or_insert((w, w));
                r.0 = r.0.min(w);
                r.1 = r.1.max(w);
            }
        }
        Ok(())
    }

    /// Sends the derived klines due for comparison (all of them when `stopping`) to REST.
    pub(super) fn cross_check_due(&mut self, stopping: bool) {
        let now = self.clock.now();
        let Some(d) = &mut self.derive else { return };
        let due: Vec<(usize, (i64, i64))> =
            d.unchecked.iter().filter(|(_, (from, _))| stopping || now - from >= CHECK_AFTER_MS).map(|(&t, &r)| (t, r)).collect();
        for (t, (from, to)) in due {
            if let Some(d) = &mut self.derive {
                d.unchecked.remove(&t);
            }
            let key = self.series[t].key.clone();
            self.send_repair((key, from, to));
        }
    }
}
