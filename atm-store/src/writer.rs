//! The writer: stage klines, commit them durably with one journal sync.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::layout::{BLOCK_SLOTS, MAX_EXCEPTIONS};
use crate::lock::{lock_table, LockTable};
use crate::series_file::{SeriesBatch, SeriesFile};
use crate::store::StoreInner;
use crate::{Kline, SeriesKey};

/// Journal bytes after which a commit also checkpoints (syncs the series
/// files and starts a new journal generation).
const CHECKPOINT_BYTES: u64 = 64 << 20;
/// Klines in one commit from which fresh blocks take the bulk path.
const DIRECT_MIN_KLINES: usize = 16_384;

/// Series in a commit from which they are published on all cores (a
/// burst of closes at an interval boundary: one kline into each of
/// thousands of series, each a few µs of cache and TLB misses).
const PARALLEL_APPLY: usize = 64;

/// One float column of [`Columns`], in either precision.
#[derive(Clone, Copy, Debug)]
pub enum FloatColumn<'a> {
    /// `f32` values.
    F32(&'a [f32]),
    /// `f64` values (rounded once to `f32` in an `f32` store).
    F64(&'a [f64]),
}

impl<'a> FloatColumn<'a> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            FloatColumn::F32(v) => v.len(),
            FloatColumn::F64(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, i: usize) -> f64 {
        match self {
            FloatColumn::F32(v) => v[i] as f64,
            FloatColumn::F64(v) => v[i],
        }
    }

    fn first_non_finite(&self) -> Option<usize> {
        match self {
            FloatColumn::F32(v) => v.iter().position(|x| !x.is_finite()),
            FloatColumn::F64(v) => v.iter().position(|x| !x.is_finite()),
        }
    }

    pub(crate) fn slice(&self, i: usize, j: usize) -> FloatColumn<'a> {
        match self {
            FloatColumn::F32(v) => FloatColumn::F32(&v[i..j]),
            FloatColumn::F64(v) => FloatColumn::F64(&v[i..j]),
        }
    }
}

/// Consecutive regular klines as columns, for [`Writer::commit_columns`]:
/// the 8 float columns in storage order (open, high, low, close, volume,
/// quote_volume, taker_buy_base, taker_buy_quote) and the trade counts.
#[derive(Clone, Copy, Debug)]
pub struct Columns<'a> {
    /// The float columns, all of the same length as `trades`.
    pub values: [FloatColumn<'a>; crate::FLOAT_COLUMNS],
    /// Trade counts.
    pub trades: &'a [u32],
}

impl<'a> Columns<'a> {
    pub(crate) fn slice(&self, i: usize, j: usize) -> Columns<'a> {
        Columns {
            values: self.values.map(|c| c.slice(i, j)),
            trades: &self.trades[i..j],
        }
    }
}

/// What one [`Writer::commit`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Series touched.
    pub series: usize,
    /// Klines written (including identical rewrites).
    pub klines: usize,
    /// Slot ranges marked known-missing.
    pub missing_ranges: usize,
}

/// A series this writer holds locked. Its file may be closed (the lock
/// lives on the store's `locks` file, not on the series file), so a writer
/// can hold any number of series with a bounded number of open files.
struct Held {
    file: Option<Arc<SeriesFile>>,
    inode: u64,
    staged: SeriesBatch,
    /// Applied since the last checkpoint (the file must be synced).
    dirty: bool,
    /// Rows of the commit in progress that took the bulk path.
    direct_rows: Vec<(u64, Kline)>,
    /// Bulk data written by `commit_columns`, to sync before the journal.
    unsynced_direct: bool,
    last_used: u64,
    /// This writer created the series file when it took the lock.
    created: bool,
    /// This writer staged or reserved something in the series (its file
    /// is not to be removed as unused).
    written: bool,
}

/// Series files a writer keeps open at most (beyond this, files of series
/// with nothing staged are closed, after a checkpoint if they are dirty).
pub const WRITER_OPEN_FILES: usize = 128;

/// Stages writes to any number of series and commits them together.
///
/// A series is locked (against other processes and other writers) when the
/// writer first touches it, and stays locked until the writer is dropped.
/// Nothing staged is visible or durable before [`commit`](Writer::commit);
/// after it returns, everything staged survives `kill -9` and power loss.
pub struct Writer {
    store: Arc<StoreInner>,
    journal: Journal,
    series: HashMap<SeriesKey, Held>,
    commits: u64,
    tick: u64,
    direct_min: usize,
    /// Series files kept open at most (see [`Writer::set_open_files`]).
    open_files: usize,
    /// The store's lock table (opened by the first writer of the process).
    locks: Arc<LockTable>,
}

impl Writer {
    pub(crate) fn new(store: Arc<StoreInner>) -> Result<Writer> {
        let dir = store.journal_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let id = journal_id();
        let path = dir.join(format!("{id:016x}.wal"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        file.try_lock()
            .map_err(|e| Error::io("lock", &path, std::io::Error::other(e.to_string())))?;
        let journal = Journal::create(&path, file, id)?;
        let locks = lock_table(&store.dir)?;
        Ok(Writer {
            store,
            journal,
            series: HashMap::new(),
            commits: 0,
            tick: 0,
            direct_min: DIRECT_MIN_KLINES,
            open_files: WRITER_OPEN_FILES,
            locks,
        })
    }

    /// Locks and opens (creating if needed) the series `key` for writing.
    fn hold(&mut self, key: &SeriesKey) -> Result<&mut Held> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(h) = self.series.get_mut(key) {
            h.last_used = tick;
            if h.file.is_none() {
                let path = self.store.series_path(key);
                h.file = Some(Arc::new(SeriesFile::create_or_open(
                    &path,
                    key,
                    self.store.precision,
                )?));
            }
        } else {
            let path = self.store.series_path(key);
            let created = !path.exists();
            let file = SeriesFile::create_or_open(&path, key, self.store.precision)?;
            let inode = file
                .file()
                .metadata()
                .map_err(|e| Error::io("stat", &path, e))?
                .ino();
            self.locks.try_lock(inode, &format!("series {key}"))?;
            // The file locked must still be the series' file: a writer that
            // created it and gave it back unused removes it (see
            // `forget_unused`), and a lock on a removed file guards nothing.
            if std::fs::metadata(&path).map(|m| m.ino()).ok() != Some(inode) {
                self.locks.unlock(inode);
                return Err(Error::Locked {
                    what: format!(
                        "series {key} (its file was replaced while it was locked; try again)"
                    ),
                    pid: 0,
                });
            }
            let dirty = file.dirty();
            if dirty != 0 && dirty != self.journal.id {
                // A writer died with unsynced changes to this series: replay its
                // journal before writing anything over them.
                if let Err(e) = crate::recovery::recover_journal_id(&self.store, dirty) {
                    self.locks.unlock(inode);
                    return Err(e);
                }
            }
            let held = Held {
                file: Some(Arc::new(file)),
                inode,
                staged: SeriesBatch::default(),
                dirty: false,
                direct_rows: Vec::new(),
                unsynced_direct: false,
                last_used: tick,
                created,
                written: false,
            };
            self.series.insert(key.clone(), held);
        }
        self.series
            .get_mut(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))
    }

    /// [`Writer::hold`] for a write: the series' file is in use from now
    /// on, even if this writer created it and the write is rolled back.
    fn hold_to_write(&mut self, key: &SeriesKey) -> Result<&mut Held> {
        let h = self.hold(key)?;
        h.written = true;
        Ok(h)
    }

    /// The open file of a held series.
    fn file(&self, key: &SeriesKey) -> Result<Arc<SeriesFile>> {
        self.series
            .get(key)
            .and_then(|h| h.file.clone())
            .ok_or_else(|| Error::NotFound(format!("open file of {key}")))
    }

    /// Closes the least recently used files beyond the open-file limit.
    fn trim_open_files(&mut self) -> Result<()> {
        let open = self.series.values().filter(|h| h.file.is_some()).count();
        if open <= self.open_files {
            return Ok(());
        }
        let mut idle: Vec<(u64, SeriesKey)> = self
            .series
            .iter()
            .filter(|(_, h)| {
                h.file.is_some() && h.staged.puts.is_empty() && h.staged.missing.is_empty()
            })
            .map(|(k, h)| (h.last_used, k.clone()))
            .collect();
        idle.sort();
        let close: Vec<SeriesKey> = idle
            .into_iter()
            .take(open - self.open_files / 2)
            .map(|(_, k)| k)
            .collect();
        if close.iter().any(|k| self.series[k].dirty) {
            self.checkpoint()?;
        }
        for k in close {
            if let Some(h) = self.series.get_mut(&k) {
                h.file = None;
            }
        }
        Ok(())
    }

    /// Keeps up to `n` series files open (default [`WRITER_OPEN_FILES`]). A
    /// writer that touches many series in every commit (`atm stream`: one
    /// close per series each minute) sets it above their number, or each
    /// commit would close files (checkpointing them) and open them again.
    pub fn set_open_files(&mut self, n: usize) {
        self.open_files = n.max(2);
    }

    /// Takes `key`'s series lock and opens (creating if needed) its file
    /// now, so that its first write does not pay for it: a writer about to
    /// write to thousands of series at once (`atm stream` at a minute
    /// boundary) opens them beforehand.
    pub fn open(&mut self, key: &SeriesKey) -> Result<()> {
        self.hold(key).map(|_| ())
    }

    /// Takes the write lock of `key` now if no other writer holds it:
    /// `Ok(None)` when this writer holds it (now or already), `Ok(Some(pid))`
    /// naming the holder when another process (or another writer of this
    /// process: its own pid) has it. Never waits.
    pub fn try_lock(&mut self, key: &SeriesKey) -> Result<Option<i32>> {
        match self.hold(key) {
            Ok(_) => Ok(None),
            Err(Error::Locked { pid, .. }) => Ok(Some(pid)),
            Err(e) => Err(e),
        }
    }

    /// Takes the write locks of every series of `keys` before anything is
    /// written, or none: when other writers hold some, it fails at once
    /// (no waiting) with [`Error::Held`] listing each held series and its
    /// holder's pid, and gives back the locks this call took. What `atm
    /// import`, `atm compact` and `atm verify --repair` do with their plan.
    pub fn lock_all(&mut self, keys: &[SeriesKey]) -> Result<()> {
        let mut taken = Vec::new();
        let mut held = Vec::new();
        for key in keys {
            let had = self.series.contains_key(key);
            match self.try_lock(key) {
                Ok(None) if !had => taken.push(key.clone()),
                Ok(None) => {}
                Ok(Some(pid)) => held.push((key.to_string(), pid)),
                Err(e) => {
                    self.give_back(&taken);
                    return Err(e);
                }
            }
            self.trim_open_files()?;
        }
        if held.is_empty() {
            return Ok(());
        }
        self.give_back(&taken);
        held.sort();
        held.dedup();
        Err(Error::Held { series: held })
    }

    /// Releases series this writer locked but never staged anything for.
    fn give_back(&mut self, keys: &[SeriesKey]) {
        for key in keys {
            if let Some(h) = self.series.remove(key) {
                self.forget_unused(key, &h);
                self.locks.unlock(h.inode);
            }
        }
    }

    /// Removes the file of a series this writer created and never wrote to
    /// (a command refused or failed before its first commit leaves no empty
    /// series behind). Called with the lock still held; `hold` re-checks
    /// the path after locking, so no other writer can be left holding the
    /// removed file.
    fn forget_unused(&self, key: &SeriesKey, h: &Held) {
        if !h.created || h.written {
            return;
        }
        let path = self.store.series_path(key);
        if std::fs::metadata(&path).map(|m| m.ino()).ok() == Some(h.inode) {
            if let Err(e) = std::fs::remove_file(&path) {
                log::debug!("removing the unused {}: {e}", path.display());
            }
            self.store.forget(key);
        }
    }

    /// Like [`Writer::open`], and also reserves the disk space of the block
    /// holding open time `t` and maps now the pages a write there touches,
    /// so that its first commit is as fast as the ones after it (`atm
    /// stream` prepares every series at start, and the next block of each
    /// before its current one is full).
    pub fn prepare(&mut self, key: &SeriesKey, t: i64) -> Result<()> {
        self.hold_to_write(key)?;
        let slot = key.interval.slot_of(t)?;
        let file = self.file(key)?;
        file.reserve_blocks(vec![slot / crate::layout::BLOCK_SLOTS], true)?;
        file.prefault(slot)
    }

    /// Whether the kline of `key` opening at `t` fills the last slot of its
    /// block, so that the next kline opens a new block: the moment to
    /// [`Writer::prepare`] that block ahead of its first write.
    pub fn ends_block(key: &SeriesKey, t: i64) -> bool {
        key.interval
            .slot_of(t)
            .is_ok_and(|slot| (slot + 1) % crate::layout::BLOCK_SLOTS == 0)
    }

    /// Stages one kline. Its slot is the one containing its open time; a kline
    /// whose open or close time is off the grid is kept with its exact times.
    pub fn put(&mut self, key: &SeriesKey, k: &Kline) -> Result<()> {
        self.put_many(key, std::slice::from_ref(k))
    }

    /// Stages many klines of one series (any order; the last one per slot wins).
    pub fn put_many(&mut self, key: &SeriesKey, klines: &[Kline]) -> Result<()> {
        let precision = self.store.precision;
        let interval = key.interval;
        let mut rows = Vec::with_capacity(klines.len());
        for k in klines {
            let slot = interval.slot_of(k.open_time)?;
            if k.close_time < k.open_time {
                return Err(Error::InvalidInput(format!(
                    "{key}: close_time {} is before open_time {}",
                    k.close_time, k.open_time
                )));
            }
            if let Some(v) = k.values.iter().find(|v| !v.is_finite()) {
                return Err(Error::InvalidInput(format!(
                    "{key}: kline at {} has a non-finite value {v}",
                    k.open_time
                )));
            }
            let mut k = *k;
            for v in &mut k.values {
                *v = precision.round(*v);
            }
            rows.push((slot, k));
        }
        let held = self.hold_to_write(key)?;
        held.staged.puts.extend(rows);
        Ok(())
    }

    /// Stages "the exchange has no kline here" for every slot whose open time
    /// lies in `from..=to` (epoch ms) and that holds no kline.
    pub fn mark_missing(&mut self, key: &SeriesKey, from: i64, to: i64) -> Result<()> {
        let interval = key.interval;
        let origin = interval.origin_ms();
        let from = from.max(origin);
        let mut a = interval.slot_of(from)?;
        if interval.open_time(a) < from {
            a += 1;
        }
        let z = interval.slot_of(to.min(crate::STORE_HORIZON_MS - 1))?;
        if a > z || to < from {
            return Ok(());
        }
        self.hold_to_write(key)?.staged.missing.push((a, z));
        Ok(())
    }

    /// Discards everything staged since the last commit.
    pub fn rollback(&mut self) {
        for h in self.series.values_mut() {
            h.staged = SeriesBatch::default();
        }
    }

    /// Makes everything staged durable (one journal sync for all series),
    /// then publishes it to readers.
    pub fn commit(&mut self) -> Result<CommitStats> {
        let mut stats = CommitStats::default();
        let mut keys = Vec::new();
        for (key, h) in self.series.iter_mut() {
            let b = &mut h.staged;
            if b.puts.is_empty() && b.missing.is_empty() && b.direct.is_empty() {
                continue;
            }
            // Stable sort keeps insertion order among equal slots; keep the last.
            b.puts.sort_by_key(|(s, _)| *s);
            let mut out: Vec<(u64, Kline)> = Vec::with_capacity(b.puts.len());
            for row in b.puts.drain(..) {
                match out.last_mut() {
                    Some(last) if last.0 == row.0 => *last = row,
                    _ => out.push(row),
                }
            }
            b.puts = out;
            b.missing.sort_unstable();
            stats.series += 1;
            stats.klines += b.puts.len()
                + b.direct
                    .iter()
                    .map(|(a, z)| (z - a + 1) as usize)
                    .sum::<usize>();
            stats.missing_ranges += b.missing.len();
            keys.push(key.clone());
        }
        if keys.is_empty() {
            return Ok(stats);
        }
        keys.sort();
        // Reserve disk space and check limits before anything becomes durable.
        for key in &keys {
            let file = self.file(key)?;
            let h = &self.series[key];
            file.reserve(&h.staged, true)?;
            let interval = key.interval;
            let irregular = |&(slot, k): &(u64, Kline)| {
                (k.open_time, k.close_time) != (interval.open_time(slot), interval.close_time(slot))
            };
            // Only irregular klines add exceptions: with none, the table can only shrink.
            if h.staged.puts.iter().any(irregular) {
                let mut exc: std::collections::HashSet<u64> =
                    file.live()?.exceptions.iter().map(|e| e.slot).collect();
                for row in &h.staged.puts {
                    match irregular(row) {
                        true => exc.insert(row.0),
                        false => exc.remove(&row.0),
                    };
                }
                if exc.len() > MAX_EXCEPTIONS {
                    return Err(Error::InvalidInput(format!(
                        "series {key} would hold {} irregular klines, more than the {MAX_EXCEPTIONS} a series can keep",
                        exc.len()
                    )));
                }
            }
            file.set_dirty(self.journal.id);
        }
        let moved = self.write_direct(&keys);
        let journaled = moved.and_then(|moved| {
            let batches: Vec<_> = keys
                .iter()
                .map(|k| (k, self.store.precision, &self.series[k].staged))
                .collect();
            self.journal
                .append_commit(&batches, self.commits + 1)
                .map(|_| moved)
        });
        match journaled {
            Ok(_) => self.commits += 1,
            Err(e) => {
                // Nothing is published: put the bulk rows back so a retry can commit them.
                self.restore_direct(&keys);
                return Err(e);
            }
        }
        // Publish: each series' file is its own, so many are applied in
        // parallel. A failure leaves its batch staged (the journal has it).
        let applied: Vec<Result<()>> = {
            let work = keys
                .iter()
                .map(|k| Ok((self.file(k)?, &self.series[k].staged)))
                .collect::<Result<Vec<_>>>()?;
            match work.len() >= PARALLEL_APPLY {
                true => work
                    .par_iter()
                    .map(|(file, batch)| file.apply(batch, false))
                    .collect(),
                false => work
                    .iter()
                    .map(|(file, batch)| file.apply(batch, false))
                    .collect(),
            }
        };
        // Every series applied is published (readers may see it), so it is
        // marked dirty even when another one failed: the checkpoint must
        // sync it before the journal that holds it is dropped.
        let mut failed = None;
        for (key, r) in keys.iter().zip(applied) {
            if let Err(e) = r {
                failed.get_or_insert(e);
                continue;
            }
            let h = self
                .series
                .get_mut(key)
                .ok_or_else(|| Error::NotFound(key.to_string()))?;
            h.staged = SeriesBatch::default();
            h.direct_rows = Vec::new();
            h.dirty = true;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if self.journal.used() > CHECKPOINT_BYTES {
            self.checkpoint()?;
        }
        self.trim_open_files()?;
        Ok(stats)
    }

    /// The bulk path: runs of regular klines that land in blocks nobody has
    /// written yet go straight into the series files, which are synced before
    /// the journal records only their slot ranges. Such blocks are invisible
    /// to readers until the commit publishes them, so a crash before the
    /// journal sync leaves nothing visible. Used for large commits only: it
    /// costs one extra sync, but saves writing the values twice.
    fn write_direct(&mut self, keys: &[SeriesKey]) -> Result<()> {
        let total: usize = keys.iter().map(|k| self.series[k].staged.puts.len()).sum();
        let mut written = Vec::new();
        for key in keys.iter().filter(|_| total >= self.direct_min) {
            let file = self.file(key)?;
            let h = self
                .series
                .get_mut(key)
                .ok_or_else(|| Error::NotFound(key.to_string()))?;
            let iv = key.interval;
            let puts = std::mem::take(&mut h.staged.puts);
            let (mut direct, mut rest) = (Vec::new(), Vec::new());
            let mut i = 0;
            while i < puts.len() {
                let b = puts[i].0 / BLOCK_SLOTS;
                let mut j = i;
                while j < puts.len() && puts[j].0 / BLOCK_SLOTS == b {
                    j += 1;
                }
                let regular = puts[i..j].iter().all(|(s, k)| {
                    (k.open_time, k.close_time) == (iv.open_time(*s), iv.close_time(*s))
                });
                let fresh = match file.entry(b) {
                    Ok(e) => e.present == 0 && e.missing == 0,
                    Err(e) => {
                        h.staged.puts = puts;
                        return Err(e);
                    }
                };
                if regular && fresh {
                    direct.extend_from_slice(&puts[i..j]);
                } else {
                    rest.extend_from_slice(&puts[i..j]);
                }
                i = j;
            }
            if !direct.is_empty() {
                if let Err(e) = file.write_values_pwrite(&direct) {
                    h.staged.puts = puts;
                    return Err(e);
                }
                let mut ranges: Vec<(u64, u64)> = Vec::new();
                for (s, _) in &direct {
                    match ranges.last_mut() {
                        Some(r) if r.1 + 1 == *s => r.1 = *s,
                        _ => ranges.push((*s, *s)),
                    }
                }
                h.staged.direct.extend(ranges);
                h.staged.direct.sort_unstable();
                h.direct_rows = direct;
                written.push(file);
            }
            h.staged.puts = rest;
        }
        for h in self.series.values_mut().filter(|h| h.unsynced_direct) {
            if let Some(f) = &h.file {
                written.push(f.clone());
            }
            h.unsynced_direct = false;
        }
        for f in written {
            f.sync()?;
        }
        Ok(())
    }

    /// Writes `n` regular klines starting at `first_open_time`, given as
    /// columns, and commits them together with everything staged: the bulk
    /// path for big imports and benchmarks. Blocks nobody has written yet
    /// are written straight from the slices (no per-kline copies); the rest
    /// goes through the journal like [`put_many`](Self::put_many). The run
    /// wins over anything staged for the same slots.
    ///
    /// ```
    /// # use atm_store::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
    /// let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
    /// let close = vec![42_000.5f32; 1000];
    /// let trades = vec![7u32; 1000];
    /// let cols = Columns { values: [FloatColumn::F32(&close); 8], trades: &trades };
    /// let mut w = store.writer().unwrap();
    /// w.commit_columns(&key, 1_704_067_200_000, &cols).unwrap();
    /// assert_eq!(store.series(&key).unwrap().unwrap().stats().unwrap().present, 1000);
    /// ```
    pub fn commit_columns(
        &mut self,
        key: &SeriesKey,
        first_open_time: i64,
        cols: &Columns<'_>,
    ) -> Result<CommitStats> {
        let n = cols.trades.len();
        if cols.values.iter().any(|c| c.len() != n) {
            return Err(Error::InvalidInput(format!(
                "{key}: columns of different lengths"
            )));
        }
        if n == 0 {
            return self.commit();
        }
        let iv = key.interval;
        if !iv.is_aligned(first_open_time) {
            return Err(Error::InvalidInput(format!(
                "{key}: first open time {first_open_time} is not on the {iv} grid"
            )));
        }
        let s0 = iv.slot_of(first_open_time)?;
        let s1 = s0 + n as u64 - 1;
        if s1 >= iv.capacity() {
            return Err(Error::InvalidInput(format!(
                "{key}: {n} klines from {first_open_time} run past the store's horizon"
            )));
        }
        if let Some((c, i)) = cols
            .values
            .iter()
            .enumerate()
            .find_map(|(c, col)| col.first_non_finite().map(|i| (c, i)))
        {
            return Err(Error::InvalidInput(format!(
                "{key}: kline {i} has a non-finite {}",
                crate::Column::ALL[c].name()
            )));
        }
        self.hold_to_write(key)?;
        let file = self.file(key)?;
        let precision = self.store.precision;
        let mut direct: Vec<(u64, u64)> = Vec::new();
        let mut rows: Vec<(u64, Kline)> = Vec::new();
        let mut b = s0 / BLOCK_SLOTS;
        while b * BLOCK_SLOTS <= s1 {
            let (a, z) = (
                (b * BLOCK_SLOTS).max(s0),
                ((b + 1) * BLOCK_SLOTS - 1).min(s1),
            );
            let e = file.entry(b)?;
            if e.present == 0 && e.missing == 0 {
                match direct.last_mut() {
                    Some(r) if r.1 + 1 == a => r.1 = z,
                    _ => direct.push((a, z)),
                }
            } else {
                for s in a..=z {
                    let i = (s - s0) as usize;
                    let mut values = [0.0; crate::FLOAT_COLUMNS];
                    for (c, v) in values.iter_mut().enumerate() {
                        *v = precision.round(cols.values[c].get(i));
                    }
                    rows.push((
                        s,
                        Kline {
                            open_time: iv.open_time(s),
                            close_time: iv.close_time(s),
                            values,
                            trades: cols.trades[i],
                        },
                    ));
                }
            }
            b += 1;
        }
        let staged = SeriesBatch {
            direct: direct.clone(),
            ..Default::default()
        };
        file.reserve(&staged, true)?;
        let mut known = std::collections::HashMap::new();
        for &(a, z) in &direct {
            let (i, j) = ((a - s0) as usize, (z - s0 + 1) as usize);
            known.extend(file.write_column_slices(a, &cols.slice(i, j))?);
        }
        let h = self
            .series
            .get_mut(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        // The run is the newest write: it replaces staged klines of its slots.
        h.staged.puts.retain(|(s, _)| !(s0..=s1).contains(s));
        h.staged.puts.extend(rows);
        h.staged.direct.extend(direct);
        h.staged.known_crcs.extend(known);
        h.unsynced_direct = true;
        let r = self.commit();
        if r.is_err() {
            if let Some(h) = self.series.get_mut(key) {
                h.staged.direct.clear();
                h.staged.known_crcs.clear();
                h.unsynced_direct = false;
            }
        }
        r
    }

    /// Undoes [`write_direct`](Self::write_direct)'s move of rows after a failed commit.
    fn restore_direct(&mut self, keys: &[SeriesKey]) {
        for key in keys {
            if let Some(h) = self.series.get_mut(key) {
                if !h.direct_rows.is_empty() {
                    let mut all = std::mem::take(&mut h.direct_rows);
                    all.append(&mut h.staged.puts);
                    all.sort_by_key(|(s, _)| *s);
                    h.staged.puts = all;
                }
                h.staged.direct.clear();
                h.staged.known_crcs.clear();
            }
        }
    }

    /// Bytes in the journal since the last checkpoint (a commit checkpoints
    /// by itself past 64 MiB; a writer with quiet moments may do it then).
    pub fn journal_bytes(&self) -> u64 {
        self.journal.used()
    }

    /// Syncs every series file changed since the last checkpoint and starts a
    /// new journal generation. Commits are durable without it; it bounds the
    /// journal and the work of crash recovery.
    pub fn checkpoint(&mut self) -> Result<()> {
        let mut synced = Vec::new();
        for h in self.series.values_mut().filter(|h| h.dirty) {
            if let Some(f) = &h.file {
                f.sync()?;
                synced.push(f.clone());
            }
            h.dirty = false;
        }
        if self.journal.used() > 0 {
            self.journal.reset()?;
        }
        for f in synced {
            f.set_dirty(0);
        }
        Ok(())
    }

    /// Compresses the sealed blocks of `key` (zstd, into `<SYMBOL>.klz`) and
    /// frees their space in the series file: every block of 4096 slots that
    /// ends before the block of the newest kline and, with `before`, before
    /// that open time. Reads stay transparent; a later write to a cold block
    /// brings it back first. Returns the number of blocks compressed.
    pub fn compact(&mut self, key: &SeriesKey, before: Option<i64>) -> Result<u64> {
        self.hold(key)?;
        self.checkpoint()?;
        let file = self.file(key)?;
        let live = file.live()?;
        let (Some(first), Some(last)) = (live.first_present, live.last_present) else {
            return Ok(0);
        };
        let mut end = last / BLOCK_SLOTS; // exclusive: the newest block stays hot
        if let Some(t) = before {
            let iv = key.interval;
            let limit = if t <= iv.origin_ms() {
                0
            } else {
                iv.slot_of(t.min(crate::STORE_HORIZON_MS - 1))?
            };
            end = end.min(limit / BLOCK_SLOTS);
        }
        let blocks: Vec<u64> = (first / BLOCK_SLOTS..end).collect();
        file.freeze(&blocks)
    }

    /// Sets the commit size (in klines) from which fresh blocks take the bulk
    /// path. For tests that want to exercise both paths with small data.
    #[doc(hidden)]
    pub fn set_bulk_threshold(&mut self, klines: usize) {
        self.direct_min = klines;
    }

    /// The series this writer holds locked.
    pub fn held_series(&self) -> impl Iterator<Item = &SeriesKey> {
        self.series.keys()
    }

    /// Checkpoints and releases the lock of one series (staged data of it is discarded).
    pub fn release(&mut self, key: &SeriesKey) -> Result<()> {
        if self.series.get(key).is_some_and(|h| h.dirty) {
            self.checkpoint()?;
        }
        if let Some(h) = self.series.remove(key) {
            self.forget_unused(key, &h);
            self.locks.unlock(h.inode);
        }
        Ok(())
    }

    /// Checkpoints, removes the journal and releases every lock.
    pub fn close(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        self.checkpoint()?;
        let path = self.journal.path.clone();
        std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        for (key, h) in std::mem::take(&mut self.series) {
            self.forget_unused(&key, &h);
            self.locks.unlock(h.inode);
            self.store.forget(&key);
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.journal.path.exists() {
            if let Err(e) = self.finish() {
                log::error!("closing writer: {e} (the journal stays and is replayed on next open)");
            }
        }
    }
}

/// A journal id unique across processes and time.
fn journal_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let id = t
        ^ ((std::process::id() as u64) << 40)
        ^ N.fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    id.max(1)
}
