//! Reading one series: ranges, tails, the latest kline, coverage, zero-copy views.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::layout::{BLOCK_CRCS, BLOCK_SLOTS, COLUMNS};
use crate::series_file::{Exception, SeriesFile, SlotState, Slots};
use crate::STORE_HORIZON_MS;
use crate::{Column, Precision, SeriesKey};
use crate::{Kline, FLOAT_COLUMNS};

/// Checksums covering every column and both bitmaps.
const ALL: u16 = (1 << BLOCK_CRCS) - 1;
/// Checksums covering the two bitmaps (slot states).
pub(crate) const STATES: u16 = (1 << COLUMNS) | (1 << (COLUMNS + 1));
/// Every column and the slot states: what a whole-kline read verifies.
#[cfg(feature = "arrow")]
pub(crate) const ALL_COLUMNS: u16 = STATES | ((1 << COLUMNS) - 1);
/// Blocks read per seqlock section by the chunked readers.
const CHUNK_BLOCKS: u64 = 16;

/// Slots per chunk of [`Series::view_chunks`]: 8 blocks, 128 KiB of each
/// `f32` column, small enough to stay in a core's L2 cache between the
/// checksum pass and the caller's.
pub const SCAN_CHUNK_SLOTS: u64 = 8 * BLOCK_SLOTS;

/// A read handle on one series. Cheap to clone; valid while the store changes.
#[derive(Clone)]
pub struct Series {
    file: Arc<SeriesFile>,
}

/// Summary of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesStats {
    /// Open time of the first present kline.
    pub first_open_time: Option<i64>,
    /// Open time of the last present kline.
    pub last_open_time: Option<i64>,
    /// Present klines.
    pub present: u64,
    /// Known-missing slots (anywhere in the grid).
    pub missing: u64,
    /// Commits applied to the series.
    pub commits: u64,
}

/// A run of consecutive slots in one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// State of every slot of the run.
    pub state: SlotState,
    /// Regular open time of the first slot.
    pub from: i64,
    /// Regular open time of the last slot.
    pub to: i64,
    /// Number of slots.
    pub slots: u64,
}

impl Series {
    pub(crate) fn new(file: Arc<SeriesFile>) -> Series {
        Series { file }
    }

    /// The file under this handle (for readers in this crate that build on
    /// its mapped columns).
    #[cfg(feature = "arrow")]
    pub(crate) fn file(&self) -> &Arc<SeriesFile> {
        &self.file
    }

    /// The series' key.
    pub fn key(&self) -> &SeriesKey {
        &self.file.key
    }

    /// The precision of its float columns.
    pub fn precision(&self) -> Precision {
        self.file.precision
    }

    /// Path of the series file.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Bytes the series file occupies on disk.
    pub fn bytes_on_disk(&self) -> Result<u64> {
        self.file.bytes_on_disk()
    }

    /// First/last present open time and counts, in O(1).
    pub fn stats(&self) -> Result<SeriesStats> {
        let l = self.file.live()?;
        let iv = self.file.key.interval;
        let t = |s: Option<u64>| s.map(|s| iv.open_time(s));
        let exc = |s: Option<u64>| {
            s.and_then(|s| {
                l.exceptions
                    .iter()
                    .find(|e| e.slot == s)
                    .map(|e| e.open_time)
            })
        };
        Ok(SeriesStats {
            first_open_time: exc(l.first_present).or(t(l.first_present)),
            last_open_time: exc(l.last_present).or(t(l.last_present)),
            present: l.present_total,
            missing: l.missing_total,
            commits: l.commits,
        })
    }

    /// Klines whose open or close time is not their slot's regular time.
    pub fn exceptions(&self) -> Result<Vec<Exception>> {
        Ok(self.file.live()?.exceptions)
    }

    /// The newest present kline, in O(1).
    pub fn latest(&self) -> Result<Option<Kline>> {
        match self.file.live()?.last_present {
            Some(s) => self.at_slot(s),
            None => Ok(None),
        }
    }

    /// The kline whose slot contains `t`, if present.
    pub fn at(&self, t: i64) -> Result<Option<Kline>> {
        self.at_slot(self.file.key.interval.slot_of(t)?)
    }

    pub(crate) fn at_slot(&self, slot: u64) -> Result<Option<Kline>> {
        let exc = self.exception_map()?;
        self.file.read_section(slot, slot, ALL, |v| {
            (v.state(0) == SlotState::Present).then(|| self.kline(v, 0, &exc))
        })
    }

    fn exception_map(&self) -> Result<HashMap<u64, Exception>> {
        Ok(self
            .file
            .live()?
            .exceptions
            .into_iter()
            .map(|e| (e.slot, e))
            .collect())
    }

    fn kline(&self, v: &Slots<'_>, i: usize, exc: &HashMap<u64, Exception>) -> Kline {
        let slot = v.first + i as u64;
        let iv = self.file.key.interval;
        let (open_time, close_time) = match exc.get(&slot) {
            Some(e) => (e.open_time, e.close_time),
            None => (iv.open_time(slot), iv.close_time(slot)),
        };
        let mut values = [0.0; FLOAT_COLUMNS];
        for (c, val) in values.iter_mut().enumerate() {
            *val = v.value(c, i);
        }
        Kline {
            open_time,
            close_time,
            values,
            trades: v.trades()[i],
        }
    }

    /// Slot range for open times `from..=to`, clipped to the present span.
    pub(crate) fn slot_span(&self, from: i64, to: i64) -> Result<Option<(u64, u64)>> {
        let l = self.file.live()?;
        let (Some(first), Some(last)) = (l.first_present, l.last_present) else {
            return Ok(None);
        };
        Ok(self
            .grid_span(from, to)
            .map(|(a, z)| (a.max(first), z.min(last)))
            .filter(|(a, z)| a <= z))
    }

    /// Slots whose regular open time can fall in `from..=to` (unclipped).
    fn grid_span(&self, from: i64, to: i64) -> Option<(u64, u64)> {
        let iv = self.file.key.interval;
        if to < from || to < iv.origin_ms() || from >= STORE_HORIZON_MS {
            return None;
        }
        let a = iv.slot_of(from.max(iv.origin_ms())).ok()?;
        let z = iv.slot_of(to.min(STORE_HORIZON_MS - 1)).ok()?;
        Some((a, z))
    }

    /// Calls `emit` with the present klines with open time in `from..=to`
    /// (inclusive, epoch ms), oldest first, a chunk of blocks at a time, so
    /// memory stays bounded whatever the range. Each chunk is one consistent
    /// snapshot, copied out of a validated read section: `emit` runs exactly
    /// once per chunk (a chunk a writer changed during the read is read
    /// again before `emit` sees it), so it may accumulate. An error from
    /// `emit` stops the walk and is returned; a checksum failure anywhere in
    /// the range is an error.
    pub fn for_each_chunk(
        &self,
        from: i64,
        to: i64,
        mut emit: impl FnMut(&[Kline]) -> Result<()>,
    ) -> Result<()> {
        let Some((a, z)) = self.slot_span(from, to)? else {
            return Ok(());
        };
        let exc = self.exception_map()?;
        let mut s = a;
        while s <= z {
            let end = z.min((s / BLOCK_SLOTS + CHUNK_BLOCKS) * BLOCK_SLOTS - 1);
            let chunk = self.file.read_section(s, end, ALL, |v| {
                (0..v.len())
                    .filter(|&i| v.state(i) == SlotState::Present)
                    .map(|i| self.kline(v, i, &exc))
                    .filter(|k| (from..=to).contains(&k.open_time))
                    .collect::<Vec<_>>()
            })?;
            if !chunk.is_empty() {
                emit(&chunk)?;
            }
            s = end + 1;
        }
        Ok(())
    }

    /// The present klines with open time in `from..=to` (inclusive, epoch ms).
    ///
    /// ```
    /// # use atm_store::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
    /// let key = SeriesKey::parse(Market::Spot, "ETHUSDT", Interval::H1).unwrap();
    /// let mut w = store.writer().unwrap();
    /// let t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000;
    /// for h in 0..5 {
    ///     let t = t0 + h * 3_600_000;
    ///     w.put(&key, &Kline { open_time: t, close_time: t + 3_599_999, values: [h as f64; 8], trades: 1 }).unwrap();
    /// }
    /// w.commit().unwrap();
    /// let s = store.series(&key).unwrap().unwrap();
    /// let ks = s.range(t0 + 3_600_000, t0 + 3 * 3_600_000).unwrap();
    /// assert_eq!(ks.iter().map(|k| k.open()).collect::<Vec<_>>(), vec![1.0, 2.0, 3.0]);
    /// ```
    pub fn range(&self, from: i64, to: i64) -> Result<Vec<Kline>> {
        let mut out = Vec::new();
        self.for_each_chunk(from, to, |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        Ok(out)
    }

    /// The last `n` present klines, oldest first.
    pub fn tail(&self, n: usize) -> Result<Vec<Kline>> {
        let Some(last) = self.file.live()?.last_present else {
            return Ok(Vec::new());
        };
        let slots = self.file.present_slots_back(last, n)?;
        let (Some(&lo), Some(&hi)) = (slots.last(), slots.first()) else {
            return Ok(Vec::new());
        };
        let exc = self.exception_map()?;
        let mut out = Vec::with_capacity(slots.len());
        let mut s = lo;
        while s <= hi {
            let end = hi.min((s / BLOCK_SLOTS + CHUNK_BLOCKS) * BLOCK_SLOTS - 1);
            let chunk = self.file.read_section(s, end, ALL, |v| {
                (0..v.len())
                    .filter(|&i| v.state(i) == SlotState::Present)
                    .map(|i| self.kline(v, i, &exc))
                    .collect::<Vec<_>>()
            })?;
            out.extend(chunk);
            s = end + 1;
        }
        // A correction between the two passes cannot add slots (slots never
        // become un-present), so keep exactly the newest n.
        let skip = out.len().saturating_sub(n);
        Ok(out.split_off(skip))
    }

    /// A fingerprint of what the series holds for open times `from..=to`,
    /// from the block table (checksums and counts of the blocks the range
    /// touches) and the irregular klines, without reading any data: it
    /// changes whenever a kline in the range does (and may change when one
    /// outside it in the same blocks does). `atm export` compares it with
    /// the last export's to skip unchanged partitions.
    pub fn fingerprint(&self, from: i64, to: i64) -> Result<u64> {
        // FNV-1a, 64-bit: stable across builds, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |v: u64| {
            for b in v.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        feed(from as u64);
        feed(to as u64);
        if let Some((a, z)) = self.grid_span(from, to) {
            for b in a / BLOCK_SLOTS..=z / BLOCK_SLOTS {
                let e = self.file.entry(b)?;
                if e.present == 0 && e.missing == 0 {
                    continue;
                }
                feed(b);
                feed(u64::from(e.present) << 32 | u64::from(e.missing));
                e.crcs.iter().for_each(|&c| feed(u64::from(c)));
            }
            for e in self
                .file
                .live()?
                .exceptions
                .iter()
                .filter(|e| (a..=z).contains(&e.slot))
            {
                feed(e.slot);
                feed(e.open_time as u64);
                feed(e.close_time as u64);
            }
        }
        Ok(h)
    }

    /// Runs of present, known-missing and unknown slots for open times `from..=to`.
    pub fn coverage(&self, from: i64, to: i64) -> Result<Vec<Run>> {
        let iv = self.file.key.interval;
        let Some((a, z)) = self.grid_span(from, to) else {
            return Ok(Vec::new());
        };
        let mut runs: Vec<Run> = Vec::new();
        let mut push = |state: SlotState, s0: u64, n: u64| match runs.last_mut() {
            Some(r) if r.state == state => {
                r.slots += n;
                r.to = iv.open_time(s0 + n - 1);
            }
            _ => runs.push(Run {
                state,
                from: iv.open_time(s0),
                to: iv.open_time(s0 + n - 1),
                slots: n,
            }),
        };
        let mut s = a;
        while s <= z {
            let b = s / BLOCK_SLOTS;
            let end = z.min(b * BLOCK_SLOTS + BLOCK_SLOTS - 1);
            let e = self.file.entry(b)?;
            // Whole blocks in one state are answered by the block table.
            if e.present == 0 && e.missing == 0 {
                push(SlotState::Unknown, s, end - s + 1);
            } else if u64::from(e.present) == BLOCK_SLOTS {
                push(SlotState::Present, s, end - s + 1);
            } else if u64::from(e.missing) == BLOCK_SLOTS {
                push(SlotState::Missing, s, end - s + 1);
            } else {
                let states = self.file.read_section(s, end, STATES, |v| {
                    (0..v.len()).map(|i| v.state(i)).collect::<Vec<_>>()
                })?;
                for (i, st) in states.into_iter().enumerate() {
                    push(st, s + i as u64, 1);
                }
            }
            s = end + 1;
        }
        Ok(runs)
    }

    /// Counts of (present, known-missing, unknown) slots for open times
    /// `from..=to`. Whole blocks are counted from the block table; only the
    /// partial blocks at the ends read bitmaps.
    pub fn counts(&self, from: i64, to: i64) -> Result<(u64, u64, u64)> {
        let Some((a, z)) = self.grid_span(from, to) else {
            return Ok((0, 0, 0));
        };
        let (mut p, mut m) = (0u64, 0u64);
        let mut s = a;
        while s <= z {
            let b = s / BLOCK_SLOTS;
            let end = z.min(b * BLOCK_SLOTS + BLOCK_SLOTS - 1);
            let e = self.file.entry(b)?;
            if s == b * BLOCK_SLOTS && end == s + BLOCK_SLOTS - 1 {
                p += e.present as u64;
                m += e.missing as u64;
            } else if e.present > 0 || e.missing > 0 {
                let (bp, bm) = self.file.read_section(s, end, STATES, |v| {
                    (0..v.len()).fold((0u64, 0u64), |(p, m), i| match v.state(i) {
                        SlotState::Present => (p + 1, m),
                        SlotState::Missing => (p, m + 1),
                        SlotState::Unknown => (p, m),
                    })
                })?;
                p += bp;
                m += bm;
            }
            s = end + 1;
        }
        Ok((p, m, (z - a + 1) - p - m))
    }

    /// Runs `compute` over a zero-copy view of the slots with open times in
    /// `from..=to`, clipped to the series' present span (first to last
    /// present kline; `None` when they do not overlap), after verifying the
    /// checksums of `columns` and the slot states, and returns what it
    /// computed.
    ///
    /// # The contract of `compute`
    ///
    /// The view is a seqlock read section: if a writer changes any of its
    /// blocks while `compute` runs, what `compute` saw may be torn, so its
    /// result is discarded and it **runs again** on the new bytes, as many
    /// times as it takes. Only the result of the run that validated is
    /// returned, so it was computed from one consistent snapshot (holding
    /// each commit whole or not at all). `compute` must therefore not
    /// accumulate into state outside itself: return what it computes
    /// (side effects it repeats harmlessly, such as clearing and refilling
    /// a buffer it owns, are fine).
    ///
    /// ```
    /// # use atm_store::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
    /// # let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
    /// # let mut w = store.writer().unwrap();
    /// # let t0 = 1_700_000_040_000;
    /// # for m in 0..10 { let t = t0 + m * 60_000; w.put(&key, &Kline { open_time: t, close_time: t + 59_999, values: [2.0; 8], trades: 1 }).unwrap(); }
    /// # w.commit().unwrap();
    /// let s = store.series(&key).unwrap().unwrap();
    /// let total: Option<f32> = s.view(t0, t0 + 9 * 60_000, &[Column::Volume], |v| v.f32s(Column::Volume.index()).unwrap().iter().sum()).unwrap();
    /// assert_eq!(total, Some(20.0));
    /// ```
    pub fn view<R>(
        &self,
        from: i64,
        to: i64,
        columns: &[Column],
        compute: impl FnMut(&Slots<'_>) -> R,
    ) -> Result<Option<R>> {
        let Some((a, z)) = self.slot_span(from, to)? else {
            return Ok(None);
        };
        let mask = columns.iter().fold(STATES, |m, c| m | 1 << c.index());
        self.file.expect_verify(a, z, mask);
        self.file.read_section(a, z, mask, compute).map(Some)
    }

    /// Like [`Series::view`], but a chunk of blocks (at most
    /// [`SCAN_CHUNK_SLOTS`] slots) at a time, oldest first: the streaming
    /// scan. Each chunk is verified right before `compute` reads it, so the
    /// checksum pass leaves it in the CPU's cache and a full scan reads every
    /// byte from memory once; with [`Series::view`] the whole range is
    /// verified before `compute` starts. A checksum failure anywhere stops
    /// the scan with an error.
    ///
    /// # The contract of `compute` and `sink`
    ///
    /// `compute` runs over one chunk inside a seqlock read section and
    /// returns a result; if a writer changed the chunk meanwhile, the result
    /// is discarded and `compute` **runs again** (so it must not accumulate
    /// anything itself, as for [`Series::view`]). Once a chunk's result
    /// validated, `sink` receives it: **exactly once per chunk**, in order,
    /// each from one consistent snapshot of its chunk (holding each commit
    /// whole or not at all). Accumulate in `sink`.
    ///
    /// ```
    /// # use atm_store::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
    /// let key = SeriesKey::parse(Market::Spot, "ETHUSDT", Interval::M1).unwrap();
    /// let mut w = store.writer().unwrap();
    /// let t = 1_704_067_200_000;
    /// for i in 0..100_000 {
    ///     w.put(&key, &Kline { open_time: t + i * 60_000, close_time: t + i * 60_000 + 59_999, values: [1.5; 8], trades: 1 }).unwrap();
    /// }
    /// w.commit().unwrap();
    /// let s = store.series(&key).unwrap().unwrap();
    /// let mut volume = 0.0;
    /// s.view_chunks(
    ///     i64::MIN,
    ///     i64::MAX,
    ///     &[Column::Volume],
    ///     // May run more than once per chunk: computes, accumulates nothing.
    ///     |v| {
    ///         let xs = v.f32s(Column::Volume.index()).unwrap();
    ///         (0..v.len()).filter(|&i| v.state(i) == SlotState::Present).map(|i| xs[i] as f64).sum::<f64>()
    ///     },
    ///     // Runs once per chunk, with a validated result.
    ///     |chunk_volume| volume += chunk_volume,
    /// )
    /// .unwrap();
    /// assert_eq!(volume, 150_000.0);
    /// ```
    pub fn view_chunks<R>(
        &self,
        from: i64,
        to: i64,
        columns: &[Column],
        mut compute: impl FnMut(&Slots<'_>) -> R,
        mut sink: impl FnMut(R),
    ) -> Result<()> {
        let Some((a, z)) = self.slot_span(from, to)? else {
            return Ok(());
        };
        let mask = columns.iter().fold(STATES, |m, c| m | 1 << c.index());
        self.file.expect_verify(a, z, mask);
        let mut s = a;
        while s <= z {
            let end = z.min(s - s % SCAN_CHUNK_SLOTS + SCAN_CHUNK_SLOTS - 1);
            sink(self.file.read_section(s, end, mask, &mut compute)?);
            s = end + 1;
        }
        Ok(())
    }

    /// Copies one column for open times `from..=to`, present slots only, as
    /// `f64` (trades included). Reads with `pread`, verifying checksums.
    pub fn column(&self, column: Column, from: i64, to: i64) -> Result<Vec<f64>> {
        let c = column.index();
        let mut out = Vec::new();
        let kind = (c == FLOAT_COLUMNS, self.precision());
        if let Some((a, z)) = self.slot_span(from, to)? {
            self.file.copy_present(c, a, z, &mut |raw| match kind {
                (true, _) => out.extend(
                    raw.chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
                ),
                (false, Precision::F32) => out.extend(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
                ),
                (false, Precision::F64) => {
                    out.extend(raw.chunks_exact(8).map(|b| {
                        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                    }))
                }
            })?;
        }
        Ok(out)
    }

    /// Appends one float column of an `f32` store for open times `from..=to`
    /// (present slots only) to `out`: the fastest copying read, for callers
    /// that want owned `f32`s. Errors on an `f64` store.
    pub fn column_f32_into(
        &self,
        column: Column,
        from: i64,
        to: i64,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        if self.precision() != Precision::F32 || column == Column::Trades {
            return Err(crate::Error::Precision(format!(
                "{} of {} is not an f32 column",
                column.name(),
                self.key()
            )));
        }
        if let Some((a, z)) = self.slot_span(from, to)? {
            self.file.copy_present(column.index(), a, z, &mut |raw| {
                out.extend(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                )
            })?;
        }
        Ok(())
    }

    /// The open-time ranges `[from, to]` of the blocks whose checksums fail:
    /// what `atm verify --repair` fetches again.
    pub fn damaged_ranges(&self) -> Vec<(i64, i64)> {
        let iv = self.key().interval;
        let slots = crate::layout::BLOCK_SLOTS;
        self.file
            .damaged_blocks()
            .into_iter()
            .map(|b| (iv.open_time(b * slots), iv.open_time((b + 1) * slots - 1)))
            .collect()
    }

    /// Verifies every checksum and invariant of the file; one line per problem.
    pub fn verify(&self) -> Vec<String> {
        self.file.check()
    }
}
