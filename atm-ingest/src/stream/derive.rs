//! `--derive`: longer intervals rolled up from the 1m stream instead of
//! streamed, and cross-checked against the exchange's own klines.
//!
//! - Live: the in-progress kline of a derived series is the aggregate of
//!   the closed minutes of its window seen so far plus the live minute.
//! - Closed: when the last minute of a window is committed and none of its
//!   minutes is unknown (repairs fill lost ones first), the committer rolls
//!   the window up from the store and hands it to the applier, which
//!   treats it like a closing event. A window already stored (REST got
//!   there first) is left as it is.
//! - Checked: derived klines are fetched again from REST in batches, at most
//!   [`CHECK_AFTER_MS`] (exchange time) after they were derived, and at
//!   stop. REST's klines are written over them, so the store always ends
//!   with the exchange's values; one that disagrees beyond the rounding of
//!   sums is counted in `derive_mismatches` and logged.

use std::collections::HashMap;

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

/// The applier's side of the roll-up.
#[derive(Default)]
pub(crate) struct Deriver {
    /// 1m series → the series derived from it.
    targets: HashMap<usize, Vec<usize>>,
    /// Derived series → (window open, aggregate of its closed minutes seen).
    running: HashMap<usize, (i64, Kline)>,
    /// Derived series → open times derived and not yet compared with REST.
    unchecked: HashMap<usize, (i64, i64)>,
    /// The derived values awaiting that comparison.
    values: HashMap<(usize, i64), Kline>,
}

impl Applier<'_> {
    /// Derives each `(source 1m series, derived series)` pair.
    pub(crate) fn derive_from(&mut self, pairs: &[(usize, usize)]) -> Result<()> {
        let d = self.derive.get_or_insert_with(Deriver::default);
        for &(src, dst) in pairs {
            d.targets.entry(src).or_default().push(dst);
        }
        let keys = pairs
            .iter()
            .map(|&(src, dst)| (self.series[src].key.clone(), self.series[dst].key.clone()))
            .collect();
        self.write(super::committer::Write::Derive(keys))
    }

    /// A live minute of series `id`: the live klines of what derives from it.
    pub(super) fn derive_live(&mut self, id: usize, minute: &Kline) {
        let Some(d) = &self.derive else { return };
        let Some(targets) = d.targets.get(&id) else {
            return;
        };
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

    /// A closed minute of series `id` was written: the running aggregates
    /// of the windows it falls in.
    pub(super) fn derive_after_close(&mut self, id: usize, minute: &Kline) {
        let Some(d) = &mut self.derive else { return };
        let Some(targets) = d.targets.get(&id) else {
            return;
        };
        for &t in targets {
            let iv = self.series[t].key.interval;
            let w = open_of(iv, minute.open_time);
            let acc = match d.running.get(&t) {
                Some((rw, acc)) if *rw == w => {
                    Kline::aggregate(&[*acc, *minute], w, next_open(iv, w) - 1, self.precision)
                }
                _ => Some(*minute),
            };
            if let Some(acc) = acc {
                d.running.insert(t, (w, acc));
            }
        }
    }

    /// REST klines of `key` are about to be written: derived klines they
    /// answer are compared with them.
    pub(super) fn derive_after_repair(&mut self, key: &SeriesKey, klines: &[Kline]) {
        let Some(id) = self.id(key) else { return };
        let Some(d) = &mut self.derive else { return };
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

    /// A window the committer rolled up: written like a close, and
    /// remembered for the cross-check. Ignored once stopping (REST has been
    /// asked for every window due).
    pub fn on_derived(&mut self, key: &SeriesKey, k: Kline) -> Result<()> {
        let Some(id) = self.id(key) else {
            return Ok(());
        };
        if !self.repairs_open()
            || !self.series[id].active
            || self.series[id]
                .last_closed
                .is_some_and(|l| l >= k.open_time)
        {
            return Ok(());
        }
        self.on_close(id, k, None)?;
        self.summary.derived += 1;
        if let Some(d) = &mut self.derive {
            d.values.insert((id, k.open_time), k);
            let r = d.unchecked.entry(id).or_insert((k.open_time, k.open_time));
            r.0 = r.0.min(k.open_time);
            r.1 = r.1.max(k.open_time);
        }
        Ok(())
    }

    /// Sends the derived klines due for comparison (all of them when `stopping`) to REST.
    pub(super) fn cross_check_due(&mut self, stopping: bool) {
        let now = self.clock.now();
        let Some(d) = &mut self.derive else { return };
        let due: Vec<(usize, (i64, i64))> = d
            .unchecked
            .iter()
            .filter(|(_, (from, _))| stopping || now - from >= CHECK_AFTER_MS)
            .map(|(&t, &r)| (t, r))
            .collect();
        for (t, (from, to)) in due {
            if let Some(d) = &mut self.derive {
                d.unchecked.remove(&t);
            }
            let key = self.series[t].key.clone();
            self.send_repair((key, from, to));
        }
    }
}
