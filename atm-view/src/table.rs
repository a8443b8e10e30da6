//! The table's rows: one row per present kline, one row per run of
//! known-missing or unknown slots however long, and the in-progress kline
//! of a running stream as the last row.
//!
//! Rows are found from slot arithmetic and the series' coverage, scanning
//! forward or backward from the top row only as far as the screen needs;
//! only the visible klines are read. A position is the slot of the top
//! row's first slot, so scrolling, paging and jumping to a date never
//! depend on the length of the series.

use atm_store::{Interval, Kline, Series, SlotState};

use crate::Result;

/// What one row shows.
#[derive(Clone, Debug, PartialEq)]
pub enum RowKind {
    /// A present kline.
    Kline(Kline),
    /// A run of known-missing slots (the exchange has nothing there).
    Missing,
    /// A run of slots never fetched.
    Unknown,
    /// The in-progress kline a running `atm stream` publishes.
    Live(Kline),
}

/// One table row: slots `from..=to` of the series.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// First slot.
    pub from: u64,
    /// Last slot.
    pub to: u64,
    /// What the row shows.
    pub kind: RowKind,
}

impl Row {
    /// Number of slots the row stands for.
    pub fn slots(&self) -> u64 {
        self.to - self.from + 1
    }
}

/// A series as the table sees it: its stored span and its live kline.
#[derive(Clone)]
pub struct SeriesView {
    /// The series.
    pub series: Series,
    /// Its interval.
    pub interval: Interval,
    /// Slot of the first present kline (of the live one when none is stored).
    pub first: u64,
    /// Slot of the last present kline (of the live one when none is stored).
    pub last: u64,
    /// Whether any kline is stored.
    stored: bool,
    /// The in-progress kline, when newer than anything stored.
    pub live: Option<Kline>,
}

impl SeriesView {
    /// The view of `series`, or `None` when it holds no kline and no live one.
    pub fn new(series: Series, live: Option<Kline>) -> Result<Option<SeriesView>> {
        let interval = series.key().interval;
        let st = series.stats()?;
        let live = live.filter(|k| st.last_open_time.is_none_or(|l| k.open_time > l));
        let (first, last, stored) = match (st.first_open_time, st.last_open_time, &live) {
            (Some(f), Some(l), _) => (interval.slot_of(f)?, interval.slot_of(l)?, true),
            // Only a live kline: no stored row, the live row alone.
            (_, _, Some(k)) => {
                let s = interval.slot_of(k.open_time)?;
                (s, s, false)
            }
            _ => return Ok(None),
        };
        Ok(Some(SeriesView {
            series,
            interval,
            first,
            last,
            stored,
            live,
        }))
    }

    /// Whether any kline is stored.
    pub fn has_stored(&self) -> bool {
        self.stored
    }

    /// Slot of the live row, if there is one.
    fn live_slot(&self) -> Option<u64> {
        self.live
            .as_ref()
            .and_then(|k| self.interval.slot_of(k.open_time).ok())
    }

    /// The rows after the stored ones: the slots not fetched between the
    /// last stored kline and the live one, then the live kline.
    fn tail(&self) -> Vec<Row> {
        let (Some(k), Some(s)) = (self.live, self.live_slot()) else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        if self.stored && s > self.last + 1 {
            rows.push(Row {
                from: self.last + 1,
                to: s - 1,
                kind: RowKind::Unknown,
            });
        }
        rows.push(Row {
            from: s,
            to: s,
            kind: RowKind::Live(k),
        });
        rows
    }

    /// The slot just past the last row (live row included).
    pub fn end(&self) -> u64 {
        self.live_slot()
            .map_or(self.last + 1, |s| s.max(self.last) + 1)
    }

    /// Up to `n` rows starting at `from` (a row start), in order, klines read.
    pub fn rows_from(&self, from: u64, n: usize) -> Result<Vec<Row>> {
        let mut rows = if self.stored && from <= self.last {
            scan_forward(self, from, n)?
        } else {
            Vec::new()
        };
        for mut r in self.tail() {
            if rows.len() < n && r.to >= from {
                r.from = r.from.max(from);
                rows.push(r);
            }
        }
        self.read_klines(&mut rows)?;
        Ok(rows)
    }

    /// Start slots of up to `n` rows that start before `before`, oldest
    /// first (klines not read).
    pub fn starts_before(&self, before: u64, n: usize) -> Result<Vec<u64>> {
        let tail: Vec<u64> = self
            .tail()
            .iter()
            .map(|r| r.from)
            .filter(|&s| s < before)
            .collect();
        let tail = &tail[tail.len().saturating_sub(n)..];
        let need = n - tail.len();
        let mut starts = Vec::new();
        let end = before.min(self.last + 1);
        if need > 0 && self.stored && end > self.first {
            starts = scan_backward(self, end - 1, need)?
                .iter()
                .map(|r| r.from)
                .collect();
        }
        starts.extend_from_slice(tail);
        Ok(starts)
    }

    /// The start of the row holding `slot` (a missing or unknown run starts
    /// where the run does).
    pub fn row_start(&self, slot: u64) -> Result<u64> {
        if !self.stored || slot > self.last {
            return Ok(self
                .tail()
                .iter()
                .find(|r| r.to >= slot)
                .map_or(slot, |r| r.from));
        }
        let slot = slot.max(self.first);
        Ok(scan_backward(self, slot, 1)?
            .first()
            .map_or(slot, |r| r.from))
    }

    /// Replaces the placeholder kinds of present rows with their klines,
    /// reading each run of consecutive present rows at once.
    fn read_klines(&self, rows: &mut [Row]) -> Result<()> {
        let iv = self.interval;
        let mut i = 0;
        while i < rows.len() {
            if !is_pending(&rows[i]) {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < rows.len()
                && is_pending(&rows[j + 1])
                && rows[j + 1].from == rows[j].to + 1
            {
                j += 1;
            }
            // Up to the last slot's close: an irregular kline (Binance's
            // 2018 outage) opens after its slot's regular open time.
            let klines = self
                .series
                .range(iv.open_time(rows[i].from), iv.close_time(rows[j].to))?;
            let slot = |k: &Kline| iv.slot_of(k.open_time).unwrap_or(u64::MAX);
            let mut ks = klines.iter().peekable();
            for r in &mut rows[i..=j] {
                while ks.peek().is_some_and(|k| slot(k) < r.from) {
                    ks.next();
                }
                // A kline gone between the scan and the read (never expected:
                // present klines are only replaced) shows as unknown.
                r.kind = match ks.peek() {
                    Some(k) if slot(k) == r.from => RowKind::Kline(**k),
                    _ => RowKind::Unknown,
                };
            }
            i = j + 1;
        }
        Ok(())
    }
}

/// Slots per coverage read when scanning; doubled while a long run continues.
const FIRST_WINDOW: u64 = 1024;
const MAX_WINDOW: u64 = 1 << 22;

fn collapsed(state: SlotState) -> Option<RowKind> {
    match state {
        SlotState::Missing => Some(RowKind::Missing),
        SlotState::Unknown => Some(RowKind::Unknown),
        _ => None,
    }
}

/// The kline of a present row not read yet.
const PENDING: Kline = Kline {
    open_time: i64::MIN,
    close_time: i64::MIN,
    values: [0.0; atm_store::FLOAT_COLUMNS],
    trades: 0,
};

/// A present row whose kline is not read yet.
fn present(slot: u64) -> Row {
    Row {
        from: slot,
        to: slot,
        kind: RowKind::Kline(PENDING),
    }
}

fn is_pending(r: &Row) -> bool {
    matches!(r.kind, RowKind::Kline(k) if k.open_time == i64::MIN)
}

/// Up to `n` row spans from `start` to the last stored slot. A collapsed run
/// that reaches past the window is followed to its end.
fn scan_forward(v: &SeriesView, start: u64, n: usize) -> Result<Vec<Row>> {
    let iv = v.interval;
    let mut out: Vec<Row> = Vec::with_capacity(n);
    let mut s = start;
    let mut win = FIRST_WINDOW.max(4 * n as u64);
    while s <= v.last {
        let end = v.last.min(s.saturating_add(win - 1));
        for run in v.series.coverage(iv.open_time(s), iv.open_time(end))? {
            let rs = iv.slot_of(run.from)?;
            match collapsed(run.state) {
                None => {
                    for k in 0..run.slots {
                        if out.len() >= n {
                            return Ok(out);
                        }
                        out.push(present(rs + k));
                    }
                }
                Some(kind) => {
                    let full = out.len() >= n;
                    match out.last_mut() {
                        Some(r) if r.kind == kind && r.to + 1 == rs => r.to = rs + run.slots - 1,
                        _ if full => return Ok(out),
                        _ => out.push(Row {
                            from: rs,
                            to: rs + run.slots - 1,
                            kind,
                        }),
                    }
                }
            }
        }
        let open_run = out
            .last()
            .is_some_and(|r| collapsed_kind(&r.kind) && r.to == end);
        if out.len() >= n && !open_run {
            break;
        }
        s = end + 1;
        win = (win * 2).min(MAX_WINDOW);
    }
    Ok(out)
}

fn collapsed_kind(k: &RowKind) -> bool {
    matches!(k, RowKind::Missing | RowKind::Unknown)
}

/// Up to `n` row spans ending at `end` (inclusive) or before, oldest first,
/// going back no further than the first stored slot.
fn scan_backward(v: &SeriesView, end: u64, n: usize) -> Result<Vec<Row>> {
    let iv = v.interval;
    let mut rev: Vec<Row> = Vec::with_capacity(n);
    let mut e = end.min(v.last);
    let mut win = FIRST_WINDOW.max(4 * n as u64);
    'scan: while e >= v.first {
        let a = v.first.max(e.saturating_sub(win - 1));
        for run in v
            .series
            .coverage(iv.open_time(a), iv.open_time(e))?
            .into_iter()
            .rev()
        {
            let rs = iv.slot_of(run.from)?;
            match collapsed(run.state) {
                None => {
                    for k in (0..run.slots).rev() {
                        if rev.len() >= n {
                            break 'scan;
                        }
                        rev.push(present(rs + k));
                    }
                }
                Some(kind) => {
                    let full = rev.len() >= n;
                    match rev.last_mut() {
                        Some(r) if r.kind == kind && r.from == rs + run.slots => r.from = rs,
                        _ if full => break 'scan,
                        _ => rev.push(Row {
                            from: rs,
                            to: rs + run.slots - 1,
                            kind,
                        }),
                    }
                }
            }
        }
        let open_run = rev
            .last()
            .is_some_and(|r| collapsed_kind(&r.kind) && r.from == a);
        if (rev.len() >= n && !open_run) || a == v.first {
            break;
        }
        e = a - 1;
        win = (win * 2).min(MAX_WINDOW);
    }
    rev.reverse();
    Ok(rev)
}

/// Where the table is: the top row, and whether it follows the end as new
/// klines arrive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Start slot of the top row; `None` until a series is shown.
    pub top: Option<u64>,
    /// Keep the last row at the bottom as the series grows.
    pub follow: bool,
}

impl Position {
    /// The top row of the last page: the last `height` rows end at the bottom.
    pub fn max_top(v: &SeriesView, height: usize) -> Result<u64> {
        Ok(v.starts_before(v.end(), height.max(1))?
            .first()
            .copied()
            .unwrap_or(v.first))
    }

    /// The top row to draw with `height` rows, clamped to the series.
    pub fn resolve(&mut self, v: &SeriesView, height: usize) -> Result<u64> {
        let max = Position::max_top(v, height)?;
        let top = match self.top {
            Some(t) if !self.follow => t.clamp(v.first.min(max), max),
            _ => max,
        };
        self.top = Some(top);
        Ok(top)
    }

    /// Scrolls down `k` rows (stopping at the last page).
    pub fn down(&mut self, v: &SeriesView, k: usize, height: usize) -> Result<()> {
        let top = self.resolve(v, height)?;
        let max = Position::max_top(v, height)?;
        let rows = v.rows_from(top, k + 1)?;
        let next = rows.get(k).map_or(max, |r| r.from).min(max);
        self.top = Some(next);
        self.follow = next >= max;
        Ok(())
    }

    /// Scrolls up `k` rows (stopping at the first row).
    pub fn up(&mut self, v: &SeriesView, k: usize, height: usize) -> Result<()> {
        let top = self.resolve(v, height)?;
        let starts = v.starts_before(top, k)?;
        self.top = Some(starts.first().copied().unwrap_or(top));
        self.follow = false;
        Ok(())
    }

    /// The first kline at the top.
    pub fn home(&mut self, v: &SeriesView) {
        self.top = Some(v.first);
        self.follow = false;
    }

    /// The last kline at the bottom, following new ones.
    pub fn end(&mut self) {
        self.follow = true;
    }

    /// The row holding time `t` at the top (or the last page, near the end).
    pub fn jump(&mut self, v: &SeriesView, t: i64, height: usize) -> Result<()> {
        // Dates outside the store's range go to the first or last kline.
        let t = t.clamp(v.interval.origin_ms(), atm_store::STORE_HORIZON_MS - 1);
        let slot = v.interval.slot_of(t)?.clamp(v.first, v.end() - 1);
        let start = v.row_start(slot)?;
        let max = Position::max_top(v, height)?;
        self.top = Some(start.min(max));
        self.follow = start >= max;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atm_store::{Market, SeriesKey, Store, StoreOptions};

    const T0: i64 = 1_700_000_040_000; // a minute boundary

    fn k(t: i64) -> Kline {
        Kline {
            open_time: t,
            close_time: t + 59_999,
            values: [(t / 60_000 % 1000) as f64; 8],
            trades: 1,
        }
    }

    /// A 1m series: present `0..100`, missing `100..5100`, unknown
    /// `5100..5200`, present `5200..5210` (slots relative to T0).
    fn store() -> (tempfile::TempDir, Series) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
        let mut w = store.writer().unwrap();
        for i in (0..100).chain(5200..5210) {
            w.put(&key, &k(T0 + i * 60_000)).unwrap();
        }
        w.mark_missing(&key, T0 + 100 * 60_000, T0 + 5099 * 60_000)
            .unwrap();
        w.commit().unwrap();
        let s = store.series(&key).unwrap().unwrap();
        (dir, s)
    }

    fn slot(i: i64) -> u64 {
        Interval::M1.slot_of(T0 + i * 60_000).unwrap()
    }

    #[test]
    fn runs_collapse_into_one_row_each() {
        let (_d, s) = store();
        let v = SeriesView::new(s, None).unwrap().unwrap();
        let rows = v.rows_from(slot(98), 6).unwrap();
        let kinds: Vec<_> = rows
            .iter()
            .map(|r| (r.from, r.to, std::mem::discriminant(&r.kind)))
            .collect();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0].kind, RowKind::Kline(k(T0 + 98 * 60_000)));
        assert_eq!(
            (rows[2].from, rows[2].to, &rows[2].kind),
            (slot(100), slot(5099), &RowKind::Missing),
            "{kinds:?}"
        );
        assert_eq!(
            (rows[3].from, rows[3].to, &rows[3].kind),
            (slot(5100), slot(5199), &RowKind::Unknown)
        );
        assert_eq!(rows[4].kind, RowKind::Kline(k(T0 + 5200 * 60_000)));
        // Backward from the end finds the same rows.
        let starts = v.starts_before(slot(5202), 5).unwrap();
        assert_eq!(
            starts,
            [slot(99), slot(100), slot(5100), slot(5200), slot(5201)]
        );
        assert_eq!(v.row_start(slot(3000)).unwrap(), slot(100));
    }

    #[test]
    fn paging_walks_every_row_once_both_ways() {
        let (_d, s) = store();
        let v = SeriesView::new(s, Some(k(T0 + 5300 * 60_000)))
            .unwrap()
            .unwrap();
        let all = v.rows_from(v.first, 10_000).unwrap();
        assert_eq!(all.len(), 100 + 1 + 1 + 10 + 1 + 1);
        assert!(matches!(all.last().unwrap().kind, RowKind::Live(_)));
        let gap = &all[all.len() - 2];
        assert_eq!(
            (gap.from, gap.to, &gap.kind),
            (slot(5210), slot(5299), &RowKind::Unknown),
            "not fetched before the live kline"
        );
        let mut p = Position::default();
        p.home(&v);
        let mut seen = Vec::new();
        loop {
            let top = p.resolve(&v, 7).unwrap();
            seen.push(top);
            if p.follow {
                break;
            }
            p.down(&v, 7, 7).unwrap();
        }
        // Pages start every 7 rows, the last page ends at the live row.
        let starts: Vec<u64> = all.iter().map(|r| r.from).collect();
        assert_eq!(*seen.last().unwrap(), starts[starts.len() - 7]);
        for w in seen.windows(2).take(seen.len() - 2) {
            let (a, b) = (
                starts.iter().position(|&s| s == w[0]).unwrap(),
                starts.iter().position(|&s| s == w[1]).unwrap(),
            );
            assert_eq!(b - a, 7);
        }
        // Up from the end, one row at a time, back to the first kline.
        let mut n = 0;
        while p.top != Some(v.first) {
            p.up(&v, 1, 7).unwrap();
            n += 1;
            assert!(n <= all.len());
        }
        assert_eq!(n, all.len() - 7);
    }

    #[test]
    fn irregular_klines_and_live_only_series() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
        let mut w = store.writer().unwrap();
        w.put(&key, &k(T0)).unwrap();
        // Opened 25 s late, as Binance's klines around the 2018-02-08 outage did.
        w.put(
            &key,
            &Kline {
                open_time: T0 + 60_000 + 25_000,
                close_time: T0 + 119_999,
                values: [7.0; 8],
                trades: 2,
            },
        )
        .unwrap();
        w.commit().unwrap();
        let s = store.series(&key).unwrap().unwrap();
        let v = SeriesView::new(s.clone(), None).unwrap().unwrap();
        let rows = v.rows_from(v.first, 5).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(
            matches!(rows[1].kind, RowKind::Kline(k) if k.open_time == T0 + 85_000),
            "{rows:?}"
        );
        // A series with nothing stored but a live kline: the live row alone.
        let key2 = SeriesKey::parse(Market::Spot, "ETHUSDT", Interval::M1).unwrap();
        let mut w = store.writer().unwrap();
        w.mark_missing(&key2, T0, T0).unwrap();
        w.commit().unwrap();
        let s2 = store.series(&key2).unwrap().unwrap();
        let v = SeriesView::new(s2, Some(k(T0 + 600_000))).unwrap().unwrap();
        assert!(!v.has_stored());
        let rows = v.rows_from(v.first, 5).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(v.starts_before(v.end(), 5).unwrap(), [v.first]);
    }

    #[test]
    fn jump_lands_on_the_row_holding_the_date() {
        let (_d, s) = store();
        let v = SeriesView::new(s, None).unwrap().unwrap();
        let mut p = Position::default();
        p.jump(&v, T0 + 50 * 60_000 + 5, 5).unwrap();
        assert_eq!(p.top, Some(slot(50)));
        p.jump(&v, T0 + 2000 * 60_000, 5).unwrap();
        assert_eq!(
            p.top,
            Some(slot(100)),
            "inside the missing run: its first row"
        );
        p.jump(&v, T0 + 5209 * 60_000, 5).unwrap();
        assert!(p.follow, "near the end: the last page");
        p.jump(&v, 0, 5).unwrap();
        assert_eq!(
            p.top,
            Some(slot(0)),
            "a date before the store's range: the first kline"
        );
    }
}
