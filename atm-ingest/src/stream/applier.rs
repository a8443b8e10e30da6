//! The applier: turns what the connections, the repair thread and the
//! market refresh send into store writes, live values and repair requests.
//!
//! It keeps, per followed series, the newest closed kline stored; a closing
//! event either continues the series (written), repeats the stored kline (a
//! no-op), differs from it (REST is asked, and wins), or jumps ahead (the
//! closes in between were lost: REST is asked for them).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::latency::Latency;
use crate::budget::ExchangeClock as Clock;
use atm_store::{Interval, Kline, Market, Precision, SeriesKey, Store};
use crossbeam_channel::Sender;

use super::committer::Write;
use super::derive::Deriver;
use super::StreamSummary;
use crate::error::{Error, Result};
use crate::first_kline::{next_open, open_of};
use crate::ws_event::{self, WsMessage};
use atm_status::{LiveSlots, StageStats};
/// A close is late (and repaired) once its kline ended this long ago, real time.
const LATE_CLOSE: Duration = Duration::from_secs(3);

/// How far this clock may run ahead of the exchange's, real time: a slot
/// that closed less than this long ago, with no kline after it in a REST
/// answer, may simply not have opened yet on the exchange, so it is not
/// marked known-missing but asked again once this much time has passed.
const CLOCK_DOUBT: Duration = Duration::from_secs(1);

/// A repair request: REST klines of `key` with open times in `[from, to]`.
pub(crate) type RepairRequest = (SeriesKey, i64, i64);

/// A series as the applier follows it.
pub(super) struct Followed {
    pub key: SeriesKey,
    /// Open time of the newest closed kline stored.
    pub last_closed: Option<i64>,
    /// That kline.
    pub last: Option<Kline>,
    /// Closes up to this open time have been asked of the repair thread.
    pub repair_asked: i64,
    /// The live slot's name.
    pub live: String,
    /// Streamed (or derived) now; false once its symbol stopped trading.
    pub active: bool,
}

/// The applier's state; see the module documentation.
pub(crate) struct Applier<'a> {
    pub(super) store: &'a Store,
    pub(super) precision: Precision,
    pub(super) clock: Clock,
    /// To the committer.
    writes: Sender<Write>,
    pub(super) series: Vec<Followed>,
    index: HashMap<SeriesKey, usize>,
    /// Events name their symbol as listed: (market, interval) → symbol → series.
    by_symbol: HashMap<(Market, Interval), HashMap<String, usize>>,
    live: Option<LiveSlots>,
    repair_tx: Option<Sender<RepairRequest>>,
    /// Ranges a REST answer left in doubt (see [`CLOCK_DOUBT`]): series,
    /// first and last open time, and the exchange time to ask them again.
    recheck: Vec<(usize, i64, i64, i64)>,
    pub(super) derive: Option<Deriver>,
    pub summary: StreamSummary,
    pub stage: StageStats,
    /// Receipt of an update → its live value published, µs.
    pub live_lag: Latency,
}

impl<'a> Applier<'a> {
    /// An applier writing through the committer's `writes`, asking repairs on `repair_tx`.
    pub fn new(
        store: &'a Store,
        clock: Clock,
        writes: Sender<Write>,
        live: Option<LiveSlots>,
        repair_tx: Sender<RepairRequest>,
    ) -> Applier<'a> {
        Applier {
            store,
            precision: store.precision(),
            clock,
            writes,
            series: Vec::new(),
            index: HashMap::new(),
            by_symbol: HashMap::new(),
            live,
            repair_tx: Some(repair_tx),
            recheck: Vec::new(),
            derive: None,
            summary: StreamSummary::default(),
            stage: StageStats::default(),
            live_lag: Latency::default(),
        }
    }

    /// Starts following `keys` from what the store holds. A series with
    /// nothing stored whose first kline is known (a new listing) has its
    /// history asked of the repair thread.
    pub fn follow(&mut self, keys: &[(SeriesKey, Option<i64>)]) -> Result<()> {
        let mut names = Vec::new();
        let due_now = self.clock.now();
        for (key, first_kline) in keys {
            let last = self
                .store
                .series(key)?
                .and_then(|s| s.latest().ok().flatten());
            let last_closed = last.map(|l| l.open_time);
            let id = match self.index.get(key) {
                Some(&id) => id,
                None => {
                    let id = self.series.len();
                    let live = atm_status::live_slot_name(key);
                    names.push(live.clone());
                    self.series.push(Followed {
                        key: key.clone(),
                        last_closed,
                        last,
                        repair_asked: i64::MIN,
                        live,
                        active: true,
                    });
                    self.index.insert(key.clone(), id);
                    self.by_symbol
                        .entry((key.market, key.interval))
                        .or_default()
                        .insert(key.symbol.as_str().to_string(), id);
                    id
                }
            };
            let f = &mut self.series[id];
            f.active = true;
            f.last_closed = last_closed;
            f.last = last;
            f.repair_asked = last_closed.unwrap_or(i64::MIN);
            if let (None, Some(first)) = (last_closed, first_kline) {
                let due = last_closed_open(key.interval, due_now);
                self.ask(id, open_of(key.interval, *first), due);
            }
        }
        if let Some(l) = self.live.as_mut() {
            l.register(&names);
        }
        Ok(())
    }

    /// Stops following `key`: what closed up to now is asked of REST, then
    /// events of the series are ignored.
    pub fn unfollow(&mut self, key: &SeriesKey) {
        let Some(&id) = self.index.get(key) else {
            return;
        };
        if let Some(l) = self.series[id].last_closed {
            let due = last_closed_open(key.interval, self.clock.now());
            self.ask(id, next_open(key.interval, l), due);
        }
        self.series[id].active = false;
    }

    /// The id of a followed series.
    pub fn id(&self, key: &SeriesKey) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// Asks REST for the closes of series `id` in `[from, to]` not asked yet.
    pub(super) fn ask(&mut self, id: usize, from: i64, to: i64) {
        let f = &mut self.series[id];
        if to < from || to <= f.repair_asked {
            return;
        }
        let from = from.max(f.repair_asked.saturating_add(1));
        if let Some(tx) = &self.repair_tx {
            if tx.send((f.key.clone(), from, to)).is_ok() {
                f.repair_asked = to;
                self.summary.repairs += 1;
            }
        }
    }

    /// Asks REST for `[from, to]` of series `id` even if asked before (a
    /// correction or a cross-check).
    pub(super) fn ask_again(&mut self, id: usize, from: i64, to: i64) {
        let f = &mut self.series[id];
        f.repair_asked = f.repair_asked.min(from - 1);
        self.ask(id, from, to);
    }

    /// Sends a repair request as it is (a retry or a cross-check).
    pub fn send_repair(&mut self, request: RepairRequest) {
        if let Some(tx) = &self.repair_tx {
            if tx.send(request).is_ok() {
                self.summary.repairs += 1;
            }
        }
    }

    /// Whether repairs can still be asked.
    pub(super) fn repairs_open(&self) -> bool {
        self.repair_tx.is_some()
    }

    /// No more repair requests (the repair thread ends when it has done those asked).
    pub fn close_repairs(&mut self) {
        self.repair_tx = None;
    }

    /// Handles one text message of `market` received at `received`.
    pub fn on_text(&mut self, market: Market, text: &str, received: Instant) -> Result<()> {
        self.stage.items_in += 1;
        self.summary.events += 1;
        let e = match ws_event::parse(text, self.precision) {
            Ok(WsMessage::Kline(e)) => e,
            Ok(WsMessage::Reply { .. } | WsMessage::Other { .. }) => return Ok(()),
            Ok(WsMessage::Error { code, msg, .. }) => {
                self.bad(format!(
                    "{market}: the server answered an error {code}: {msg}"
                ));
                return Ok(());
            }
            Err(why) => {
                self.bad(format!(
                    "{market}: {why}; payload: {}",
                    text.chars().take(300).collect::<String>()
                ));
                return Ok(());
            }
        };
        let Some(&id) = self
            .by_symbol
            .get(&(market, e.interval))
            .and_then(|m| m.get(e.symbol.as_str()))
        else {
            self.bad(format!(
                "{market}: event of a stream not asked for: {}",
                text.chars().take(300).collect::<String>()
            ));
            return Ok(());
        };
        if !self.series[id].active {
            return Ok(());
        }
        if !e.closed {
            self.publish_live(id, &e.kline, Some(received));
            self.summary.live_updates += 1;
            if self.derive.is_some() {
                self.derive_live(id, &e.kline);
            }
            return Ok(());
        }
        self.summary.closes += 1;
        self.on_close(id, e.kline, Some(received))
    }

    /// A closed kline of series `id` (from an event received at `received`,
    /// or derived).
    pub(super) fn on_close(
        &mut self,
        id: usize,
        k: Kline,
        received: Option<Instant>,
    ) -> Result<()> {
        let f = &self.series[id];
        let (iv, open) = (f.key.interval, k.open_time);
        match f.last_closed {
            Some(l) if l == open => {
                if f.last.as_ref() != Some(&k) {
                    self.summary.corrections += 1;
                    log::warn!(
                        "{}: closing event at {open} differs from the stored kline; REST decides",
                        f.key
                    );
                    self.ask_again(id, open, open);
                }
                return Ok(());
            }
            // Late and older: a repair or an earlier event has it.
            Some(l) if open < l => return Ok(()),
            // A jump after the last repairs were asked (stopping): the
            // closes in between can no longer be fetched, and writing this
            // one would leave a hole before it. The next start's backfill
            // takes both from REST.
            Some(l) if next_open(iv, l) < open && !self.repairs_open() => {
                log::debug!(
                    "{}: close at {open} after a lost one while stopping: left to the next start",
                    f.key
                );
                return Ok(());
            }
            // A jump: the closes in between were lost.
            Some(l) if next_open(iv, l) < open => {
                self.ask(id, next_open(iv, l), open_of(iv, open - 1))
            }
            _ => {}
        }
        self.write(Write::Put(self.series[id].key.clone(), k, received))?;
        let f = &mut self.series[id];
        f.last_closed = Some(open);
        f.last = Some(k);
        self.summary.klines_written += 1;
        self.stage.items_out += 1;
        if self.derive.is_some() {
            self.derive_after_close(id, &k);
        }
        Ok(())
    }

    /// Hands `w` to the committer.
    pub(super) fn write(&self, w: Write) -> Result<()> {
        self.writes
            .send(w)
            .map_err(|_| Error::Stopped("the committer stopped (see the error it logged)".into()))
    }

    /// Commits what is staged, and waits for it.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.write(Write::Flush(tx))?;
        rx.recv()
            .map_err(|_| Error::Stopped("the committer stopped (see the error it logged)".into()))
    }

    fn bad(&mut self, why: String) {
        self.summary.bad_messages += 1;
        self.stage.errors += 1;
        log::warn!("{why}");
        self.stage.last_error = why;
    }

    /// Publishes the live kline of series `id`.
    pub(super) fn publish_live(&mut self, id: usize, k: &Kline, received: Option<Instant>) {
        if let Some(l) = self.live.as_mut() {
            l.set(&self.series[id].live, k);
            // Published: other processes read it from here on.
            if let Some(r) = received {
                self.live_lag.record(r.elapsed().as_micros() as u64);
            }
        }
    }

    /// A connection carrying `keys` dropped: their closes since the last
    /// stored one may be lost.
    pub fn on_dropped(&mut self, keys: &[SeriesKey]) {
        let now = self.clock.now();
        for key in keys {
            if let Some(id) = self.id(key) {
                if let Some(l) = self.series[id].last_closed {
                    self.ask(
                        id,
                        next_open(key.interval, l),
                        last_closed_open(key.interval, now),
                    );
                }
            }
        }
    }

    /// REST klines of `[from, to]`: the closed ones are written (REST wins),
    /// the slots without one are known-missing.
    pub fn on_repaired(
        &mut self,
        key: SeriesKey,
        from: i64,
        to: i64,
        klines: Vec<Kline>,
    ) -> Result<()> {
        // A kline not closed yet on this clock (the exchange's open candle,
        // or one this clock sees closing a moment later than the exchange's
        // does): from it on nothing is known yet: not written, not marked
        // missing, and asked again.
        let now = self.clock.now();
        let in_range: Vec<Kline> = klines
            .into_iter()
            .filter(|k| k.open_time >= from && k.open_time <= to)
            .collect();
        let fresh = in_range
            .iter()
            .filter(|k| k.close_time >= now)
            .map(|k| k.open_time)
            .min();
        let closed: Vec<Kline> = in_range
            .iter()
            .filter(|k| fresh.is_none_or(|f| k.open_time < f))
            .copied()
            .collect();
        let mut known_to = fresh.map_or(to, |f| f - 1);
        // Slots after the newest kline of the answer are known missing only
        // once the exchange has surely passed them: this clock may run ahead.
        let doubt = (CLOCK_DOUBT.as_millis() as f64 * self.clock.scale()) as i64;
        let newest = in_range
            .iter()
            .map(|k| k.open_time)
            .max()
            .unwrap_or(i64::MIN);
        let sure = newest.max(last_closed_open(key.interval, now - doubt));
        if sure < known_to {
            if let Some(id) = self.id(&key) {
                self.recheck
                    .push((id, next_open(key.interval, sure), known_to, now + doubt));
            }
            known_to = sure;
        }
        if let (true, Some(id)) = (known_to < to, self.id(&key)) {
            let asked = &mut self.series[id].repair_asked;
            *asked = (*asked).min(known_to);
        }
        // Klines that closed less than CLOCK_DOUBT ago on this clock may be
        // the exchange's open candle if this clock runs ahead: they are
        // written, and asked again once the doubt is over (REST wins).
        let recent: Vec<i64> = closed
            .iter()
            .filter(|k| k.close_time >= now - doubt)
            .map(|k| k.open_time)
            .collect();
        if let (Some(&a), Some(&z), Some(id)) = (recent.first(), recent.last(), self.id(&key)) {
            self.recheck.push((id, a, z, now + doubt));
        }
        if self.derive.is_some() {
            self.derive_after_repair(&key, &closed);
        }
        self.summary.repaired_klines += closed.len() as u64;
        self.summary.klines_written += closed.len() as u64;
        if let (Some(id), Some(k)) = (self.id(&key), closed.last()) {
            let f = &mut self.series[id];
            if f.last_closed.is_none_or(|l| k.open_time >= l) {
                f.last_closed = Some(k.open_time);
                f.last = Some(*k);
            }
        }
        self.write(Write::Repaired(key, from, known_to, closed))
    }

    /// Asks REST for every close that is due but has not come: late by
    /// [`LATE_CLOSE`], or all of them when `stopping`.
    pub fn repair_due(&mut self, stopping: bool) {
        let now = self.clock.now();
        // Ranges left in doubt by an earlier answer, once the doubt is over.
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.recheck)
            .into_iter()
            .partition(|r| stopping || r.3 <= now);
        self.recheck = later;
        // Sent as they are: later asks may have moved `repair_asked` past them.
        for (id, from, to, _) in due {
            let key = self.series[id].key.clone();
            self.summary.repairs += 1;
            self.send_repair((key, from, to));
        }
        let grace = if stopping {
            0
        } else {
            (LATE_CLOSE.as_millis() as f64 * self.clock.scale()) as i64
        };
        for id in 0..self.series.len() {
            let f = &self.series[id];
            let Some(l) = f.last_closed.filter(|_| f.active) else {
                continue;
            };
            let due = last_closed_open(f.key.interval, now - grace);
            if l < due {
                self.ask(id, next_open(f.key.interval, l), due);
            }
        }
        if self.derive.is_some() {
            self.cross_check_due(stopping);
        }
    }

    /// What the applier counted (the committer ends when it is dropped).
    pub fn finish(self) -> (StreamSummary, StageStats, Latency) {
        (self.summary, self.stage, self.live_lag)
    }
}

/// The open time of the newest kline of `iv` closed at exchange time `now`.
pub(super) fn last_closed_open(iv: Interval, now: i64) -> i64 {
    open_of(iv, open_of(iv, now) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use atm_store::StoreOptions;

    const T0: i64 = 1_795_570_080_000; // a minute boundary

    fn kline(t: i64, close: f64) -> Kline {
        Kline {
            open_time: t,
            close_time: t + 59_999,
            values: [close; 8],
            trades: 1,
        }
    }

    /// An applier whose clock reads `now` (real-time rate), following one 1m series.
    fn applier(
        store: &Store,
        now: i64,
    ) -> (
        Applier<'_>,
        crossbeam_channel::Receiver<Write>,
        crossbeam_channel::Receiver<RepairRequest>,
        SeriesKey,
    ) {
        let (wtx, wrx) = crossbeam_channel::unbounded();
        let (rtx, rrx) = crossbeam_channel::unbounded();
        let mut a = Applier::new(store, Clock::new(Instant::now(), now, 1.0), wtx, None, rtx);
        let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
        a.follow(&[(key.clone(), None)]).unwrap();
        (a, wrx, rrx, key)
    }

    #[test]
    fn a_kline_that_closed_a_moment_ago_is_written_and_asked_again_after_the_doubt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        // 300 ms after T0's close on this clock: if it runs ahead, REST's T0 may be the open candle.
        let (mut a, wrx, rrx, key) = applier(&store, T0 + 60_300);
        a.on_repaired(key.clone(), T0, T0, vec![kline(T0, 1.0)])
            .unwrap();
        assert!(
            matches!(wrx.try_recv(), Ok(Write::Repaired(_, _, _, ks)) if ks == [kline(T0, 1.0)])
        );
        a.repair_due(false);
        assert!(
            rrx.try_iter().all(|(_, from, _)| from != T0),
            "not before the doubt is over"
        );
        a.repair_due(true);
        assert!(
            rrx.try_iter().any(|r| r == (key.clone(), T0, T0)),
            "asked again (REST wins then)"
        );
    }

    #[test]
    fn once_repairs_are_closed_a_close_after_a_lost_one_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        for stopping in [false, true] {
            let (mut a, wrx, rrx, key) = applier(&store, T0 + 10 * 60_000);
            let id = a.id(&key).unwrap();
            a.on_close(id, kline(T0, 1.0), None).unwrap();
            assert!(matches!(wrx.try_recv(), Ok(Write::Put(_, k, _)) if k == kline(T0, 1.0)));
            if stopping {
                a.close_repairs();
            }
            // T0 + 1 minute's close was lost.
            a.on_close(id, kline(T0 + 120_000, 2.0), None).unwrap();
            let written: Vec<Write> = wrx.try_iter().collect();
            let asked: Vec<RepairRequest> = rrx.try_iter().collect();
            if stopping {
                assert!(
                    written.is_empty() && asked.is_empty(),
                    "nothing that would leave a hole"
                );
            } else {
                assert_eq!(
                    asked,
                    [(key.clone(), T0 + 60_000, T0 + 60_000)],
                    "the lost close is repaired"
                );
                assert!(
                    matches!(written.as_slice(), [Write::Put(_, k, _)] if *k == kline(T0 + 120_000, 2.0))
                );
            }
        }
    }

    #[test]
    fn an_empty_answer_for_a_slot_just_closed_marks_nothing_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        let (mut a, wrx, rrx, key) = applier(&store, T0 + 60_300);
        // The exchange (behind this clock) has not opened T0 yet: no row.
        a.on_repaired(key.clone(), T0 - 60_000, T0, vec![kline(T0 - 60_000, 1.0)])
            .unwrap();
        match wrx.try_recv() {
            Ok(Write::Repaired(_, from, to, ks)) => {
                assert_eq!((from, ks.len()), (T0 - 60_000, 1));
                assert!(to < T0, "T0 is not in the range marked missing ({to})");
            }
            _ => panic!("no repaired write"),
        }
        a.repair_due(true);
        assert!(
            rrx.try_iter()
                .any(|(k, from, to)| k == key && from == T0 && to == T0),
            "T0 asked again"
        );
        // An old slot with no row is known-missing at once.
        let (mut a, wrx, _rrx, key) = applier(&store, T0 + 3_600_000);
        a.on_repaired(key, T0, T0 + 60_000, vec![kline(T0 + 60_000, 1.0)])
            .unwrap();
        assert!(
            matches!(wrx.try_recv(), Ok(Write::Repaired(_, from, to, _)) if from == T0 && to == T0 + 60_000)
        );
    }
}
