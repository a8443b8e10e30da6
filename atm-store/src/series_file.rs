//! One series file: opening, verifying, seqlocked reads and the writer's apply.
//!
//! Readers never lock. Each block has a sequence number (a seqlock): the writer
//! makes it odd, changes the block's bytes and metadata, then makes it even
//! again. A reader notes the sequence numbers of the blocks it reads, reads,
//! and accepts the result only if none changed. Checksums are verified the
//! first time this process reads a block at a given sequence number.

use crate::checksum;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cold::{self, ColdFile};
use crate::error::{nix_io, Error, Result};
use crate::layout::{
    self, entry, live, Layout, StaticHeader, BLOCK_CRCS, BLOCK_SLOTS, COLUMNS, ENTRY_BYTES, EXC_BYTES, EXC_OFF, LIVE_COPY_LEN,
    LIVE_COPY_OFF, LIVE_LEN, LIVE_OFF, MAX_EXCEPTIONS, PAGE,
};
use crate::mmap::Map;
use crate::{Kline, FLOAT_COLUMNS};
use crate::{Precision, SeriesKey};

/// How long a reader waits for a block whose writer is mid-update before it
/// concludes the writer died there.
const STUCK_AFTER: Duration = Duration::from_secs(2);

/// A kline whose open or close time is not its slot's regular time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    /// The slot holding the kline.
    pub slot: u64,
    /// Its real open time.
    pub open_time: i64,
    /// Its real close time.
    pub close_time: i64,
}

/// A consistent snapshot of the live header.
#[derive(Clone, Debug, Default)]
pub(crate) struct Live {
    pub first_present: Option<u64>,
    pub last_present: Option<u64>,
    pub present_total: u64,
    pub missing_total: u64,
    pub commits: u64,
    pub exceptions: Vec<Exception>,
}

/// A consistent snapshot of one block-table entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    pub seq: u32,
    pub flags: u32,
    pub present: u32,
    pub missing: u32,
    pub crcs: [u32; BLOCK_CRCS],
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.flags == 0 && self.present == 0 && self.missing == 0
    }
}

/// What the writer applies to one series in one commit.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SeriesBatch {
    /// Klines by slot, sorted by slot, one per slot.
    pub puts: Vec<(u64, Kline)>,
    /// Inclusive slot ranges to mark known-missing where nothing is present.
    pub missing: Vec<(u64, u64)>,
    /// Inclusive slot ranges whose values were already written into the file
    /// and synced before the commit (the bulk path); applying only publishes them.
    pub direct: Vec<(u64, u64)>,
    /// Checksums of the columns of blocks the bulk path wrote whole, computed
    /// while writing them, so applying need not read them back. Not journaled:
    /// replay recomputes.
    pub known_crcs: HashMap<u64, [u32; COLUMNS]>,
}

/// An open series file.
pub(crate) struct SeriesFile {
    pub path: PathBuf,
    pub key: SeriesKey,
    pub precision: Precision,
    pub layout: Layout,
    file: File,
    map: Map,
    writable: bool,
    /// Blocks whose checksums this process verified, with the sequence number
    /// and the set of checksums (bit k = checksum k) verified at it.
    verified: Mutex<HashMap<u64, (u32, u16)>>,
    /// Blocks this writer has reserved disk space for.
    reserved: Mutex<HashSet<u64>>,
    /// Blocks never written whose columns this writer zeroed when it
    /// reserved them (`FALLOC_FL_ZERO_RANGE`): their checksums are known
    /// without reading them, so their first kline patches them.
    zeroed: Mutex<HashSet<u64>>,
    /// What this writer last stored in the dirty word (`u64::MAX`: nothing yet).
    dirty_set: AtomicU64,
    /// The cold file, opened on first need and reopened when it was replaced.
    cold: Mutex<Option<Arc<ColdFile>>>,
    /// Decompressed cold blocks by (block, sequence number), a few at a time.
    thawed: Mutex<ThawedCache>,
}

/// Raw column bytes of cold blocks, by (block, sequence number).
type ThawedCache = HashMap<(u64, u32), Arc<Vec<u8>>>;

/// Decompressed cold blocks a reader keeps (about 147 KiB each for f32).
const THAWED_CACHE: usize = 64;

/// Puts into one block up to which its checksums are patched rather than
/// recomputed (each put patches 11 checksums at ~50 ns; a recomputation
/// reads the whole block, 150-300 KiB).
const PATCH_PUTS: usize = 64;

/// Columns of a read window copied out of the map (some blocks are cold).
pub(crate) enum OwnedCol {
    F32(Vec<f32>),
    F64(Vec<f64>),
    U32(Vec<u32>),
    /// Not requested by the read.
    None,
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("sync directory", dir, e))
}

impl SeriesFile {
    /// Creates the file for `key` at `path` unless it exists; then opens it.
    pub fn create_or_open(path: &Path, key: &SeriesKey, precision: Precision) -> Result<SeriesFile> {
        if !path.exists() {
            let dir = path.parent().ok_or_else(|| Error::InvalidInput(format!("bad series path {}", path.display())))?;
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
            let layout = Layout::new(key.interval, precision);
            let header = StaticHeader {
                market: key.market,
                interval: key.interval,
                precision,
                symbol: key.symbol.clone(),
                origin_ms: key.interval.origin_ms(),
                layout: layout.clone(),
            };
            let tmp = dir.join(format!(".{}.{}.tmp", key.symbol, std::process::id()));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| Error::io("create", &tmp, e))?;
            let io = |e| Error::io("initialise", &tmp, e);
            f.set_len(layout.file_len).map_err(io)?;
            f.write_all_at(&header.encode(), 0).map_err(io)?;
            f.write_all_at(&encode_live(&Live::default()), LIVE_COPY_OFF).map_err(io)?;
            f.sync_all().map_err(io)?;
            drop(f);
            // hard_link never replaces: if another process created the series
            // meanwhile, keep theirs.
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => sync_dir(dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create", path, e)),
            }
        }
        let s = SeriesFile::open(path, true)?;
        if s.key != *key || s.precision != precision {
            return Err(Error::corrupt(
                path,
                format!("file holds {} at {}, expected {key} at {}", s.key, s.precision.as_str(), precision.as_str()),
            ));
        }
        Ok(s)
    }

    /// Opens and verifies the headers of an existing series file.
    pub fn open(path: &Path, writable: bool) -> Result<SeriesFile> {
        let file = OpenOptions::new().read(true).write(writable).open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file.metadata().map_err(|e| Error::io("stat", path, e))?.len();
        let mut head = vec![0u8; PAGE as usize];
        if len < PAGE {
            return Err(Error::corrupt(path, format!("truncated: {len} bytes, shorter than its header")));
        }
        file.read_exact_at(&mut head, 0).map_err(|e| Error::io("read header", path, e))?;
        let h = StaticHeader::decode(&head, path)?;
        if len < h.layout.file_len {
            return Err(Error::corrupt(path, format!("truncated: {len} bytes, header says {}", h.layout.file_len)));
        }
        let map = Map::new(&file, h.layout.file_len, writable).map_err(|e| Error::io("map", path, e))?;
        let key = SeriesKey::new(h.market, h.symbol, h.interval).map_err(|e| Error::corrupt(path, e.to_string()))?;
        Ok(SeriesFile {
            path: path.to_path_buf(),
            key,
            precision: h.precision,
            layout: h.layout,
            file,
            map,
            writable,
            verified: Mutex::new(HashMap::new()),
            reserved: Mutex::new(HashSet::new()),
            zeroed: Mutex::new(HashSet::new()),
            dirty_set: AtomicU64::new(u64::MAX),
            cold: Mutex::new(None),
            thawed: Mutex::new(HashMap::new()),
        })
    }

    /// The open file (for locks and syncs).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Bytes of disk the file occupies.
    pub fn bytes_on_disk(&self) -> Result<u64> {
        let cold = std::fs::metadata(cold::cold_path(&self.path)).map(|m| m.blocks() * 512).unwrap_or(0);
        Ok(self.file.metadata().map_err(|e| Error::io("stat", &self.path, e))?.blocks() * 512 + cold)
    }

    // ----- seqlocks -------------------------------------------------------

    fn block_seq(&self, b: u64) -> &AtomicU32 {
        self.map.atomic_u32((self.layout.entry_off(b)) as usize + entry::SEQ)
    }

    fn live_version(&self) -> &AtomicU64 {
        self.map.atomic_u64(LIVE_OFF as usize + live::VERSION)
    }

    fn dirty_word(&self) -> &AtomicU64 {
        self.map.atomic_u64(LIVE_OFF as usize + live::DIRTY_JOURNAL)
    }

    /// The journal id with applied but unsynced changes in this file (0 = none).
    pub fn dirty(&self) -> u64 {
        self.dirty_word().load(Ordering::Acquire)
    }

    fn u32_at(&self, off: u64) -> u32 {
        self.map.atomic_u32(off as usize).load(Ordering::Relaxed)
    }

    fn u64_at(&self, off: u64) -> u64 {
        self.map.atomic_u64(off as usize).load(Ordering::Relaxed)
    }

    /// Waits until `seq` is even and returns it; errors if a dead writer left it odd.
    fn stable<T: Copy + Into<u64>>(&self, load: impl Fn() -> T) -> Result<T> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let s = load();
            if s.into() % 2 == 0 {
                return Ok(s);
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if start.elapsed() > STUCK_AFTER {
                return Err(Error::NeedsRecovery { path: self.path.clone() });
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// A consistent, checksum-verified snapshot of block `b`'s entry.
    pub fn entry(&self, b: u64) -> Result<Entry> {
        loop {
            let seq_a = self.block_seq(b);
            let seq = self.stable(|| seq_a.load(Ordering::Acquire))?;
            let e = self.entry_raw(b, seq);
            fence(Ordering::Acquire);
            if seq_a.load(Ordering::Relaxed) != seq {
                continue;
            }
            if !e.is_empty() && self.entry_crc(b) != self.u32_at(self.layout.entry_off(b) + entry::CRC as u64) {
                if seq_a.load(Ordering::Acquire) != seq {
                    continue;
                }
                return Err(Error::corrupt(&self.path, format!("series {}: block {b} table entry checksum mismatch", self.key)));
            }
            return Ok(e);
        }
    }

    fn entry_raw(&self, b: u64, seq: u32) -> Entry {
        let base = self.layout.entry_off(b);
        let mut crcs = [0u32; BLOCK_CRCS];
        for (k, c) in crcs.iter_mut().enumerate() {
            *c = self.u32_at(base + (entry::CRCS + 4 * k) as u64);
        }
        Entry {
            seq,
            flags: self.u32_at(base + entry::FLAGS as u64),
            present: self.u32_at(base + entry::PRESENT as u64),
            missing: self.u32_at(base + entry::MISSING as u64),
            crcs,
        }
    }

    fn entry_crc(&self, b: u64) -> u32 {
        let base = self.layout.entry_off(b) as usize;
        checksum::crc32c(self.map.bytes(base + entry::FLAGS, entry::CRC - entry::FLAGS))
    }

    /// A consistent, verified snapshot of the live header (the published copy).
    pub fn live(&self) -> Result<Live> {
        loop {
            let version = self.live_version().load(Ordering::Acquire);
            let off = LIVE_COPY_OFF + (version / 2 % 2) * LIVE_COPY_LEN;
            let bytes = self.map.bytes(off as usize, LIVE_COPY_LEN as usize);
            let l = decode_live(bytes).filter(|_| live_crc(bytes) == layout::get_u32(bytes, live::CRC));
            fence(Ordering::Acquire);
            if self.live_version().load(Ordering::Relaxed) != version {
                continue;
            }
            return l.ok_or_else(|| Error::corrupt(&self.path, format!("series {}: live header checksum mismatch", self.key)));
        }
    }

    // ----- cold blocks ----------------------------------------------------

    /// The raw column bytes of cold block `b` at sequence `seq`, from the
    /// cache or decompressed from the cold file (reopened if it was replaced).
    pub(crate) fn cold_block(&self, b: u64, seq: u32) -> Result<Arc<Vec<u8>>> {
        if let Some(raw) = self.thawed.lock().unwrap_or_else(|p| p.into_inner()).get(&(b, seq)) {
            return Ok(raw.clone());
        }
        let path = cold::cold_path(&self.path);
        let mut frame = None;
        for reopen in [false, true] {
            let mut slot = self.cold.lock().unwrap_or_else(|p| p.into_inner());
            if reopen || slot.is_none() {
                *slot = ColdFile::open(&path)?.map(Arc::new);
            }
            if let Some(cf) = slot.as_ref() {
                frame = cf.frame(b)?;
            }
            if frame.is_some() {
                break;
            }
        }
        let frame =
            frame.ok_or_else(|| Error::corrupt(&path, format!("series {}: cold block {b} is missing from the cold file", self.key)))?;
        let raw = Arc::new(cold::decompress(&self.layout, &frame, &path, b)?);
        let mut cache = self.thawed.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= THAWED_CACHE {
            cache.clear();
        }
        cache.insert((b, seq), raw.clone());
        Ok(raw)
    }

    /// Offset of column `c`'s bytes inside a raw cold block.
    fn raw_col_off(&self, c: usize) -> usize {
        (0..c).map(|k| (BLOCK_SLOTS * self.layout.col_width(k)) as usize).sum()
    }

    /// The bytes checksum `k` of block `b` covers, wherever they live.
    fn crc_bytes(&self, k: usize, b: u64, e: &Entry) -> Result<std::borrow::Cow<'_, [u8]>> {
        if k < COLUMNS && e.flags & entry::FLAG_COLD != 0 {
            let raw = self.cold_block(b, e.seq)?;
            let off = self.raw_col_off(k);
            let len = (BLOCK_SLOTS * self.layout.col_width(k)) as usize;
            return Ok(std::borrow::Cow::Owned(raw[off..off + len].to_vec()));
        }
        let (off, len) = self.layout.crc_range(k, b);
        Ok(std::borrow::Cow::Borrowed(self.map.bytes(off as usize, len as usize)))
    }

    // ----- reads ----------------------------------------------------------

    /// Says to the checksum module how many bytes verifying the columns of
    /// `mask` over slots `s0..=s1` may take (see [`checksum::expect`]).
    pub fn expect_verify(&self, s0: u64, s1: u64, mask: u16) {
        let width: u64 = (0..COLUMNS).filter(|c| mask & 1 << c != 0).map(|c| self.layout.col_width(c)).sum();
        checksum::expect((s1.saturating_sub(s0) + 1).saturating_mul(width));
    }

    /// Verifies checksums `mask` of block `b` at `entry.seq` unless this process already did.
    fn verify_block(&self, b: u64, e: &Entry, mask: u16) -> Result<bool> {
        if e.is_empty() {
            return Ok(true);
        }
        let done = {
            let v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            match v.get(&b) {
                Some(&(seq, m)) if seq == e.seq => m,
                _ => 0,
            }
        };
        let todo = mask & !done;
        if todo == 0 {
            return Ok(true);
        }
        for k in 0..BLOCK_CRCS {
            if todo & (1 << k) == 0 {
                continue;
            }
            let crc = checksum::crc32c(&self.crc_bytes(k, b, e)?);
            if crc != e.crcs[k] {
                if self.block_seq(b).load(Ordering::Acquire) != e.seq {
                    return Ok(false); // changed under us: retry
                }
                let what = match k {
                    k if k < COLUMNS => crate::Column::ALL[k].name(),
                    k if k == COLUMNS => "present bitmap",
                    _ => "missing bitmap",
                };
                return Err(Error::corrupt(
                    &self.path,
                    format!(
                        "series {}: block {b} ({} ..) {what} checksum mismatch",
                        self.key,
                        crate::format_ms(self.key.interval.open_time(b * BLOCK_SLOTS))
                    ),
                ));
            }
        }
        let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let ent = v.entry(b).or_insert((e.seq, 0));
        if ent.0 != e.seq {
            *ent = (e.seq, 0);
        }
        ent.1 |= todo;
        Ok(true)
    }

    /// Runs `f` over slots `s0..=s1` inside a seqlock read section, after
    /// verifying the checksums in `mask` of every block touched; retries if a
    /// writer changed any of those blocks meanwhile.
    pub fn read_section<R>(&self, s0: u64, s1: u64, mask: u16, mut f: impl FnMut(&Slots<'_>) -> R) -> Result<R> {
        let (b0, b1) = (s0 / BLOCK_SLOTS, s1 / BLOCK_SLOTS);
        'retry: loop {
            let mut entries = Vec::with_capacity((b1 - b0 + 1) as usize);
            for b in b0..=b1 {
                let e = self.entry(b)?;
                if !self.verify_block(b, &e, mask)? {
                    continue 'retry;
                }
                entries.push(e);
            }
            let owned = if entries.iter().any(|e| e.flags & entry::FLAG_COLD != 0) {
                Some(self.copy_columns(s0, s1, b0, &entries, mask)?)
            } else {
                None
            };
            let view = Slots { file: self, first: s0, last: s1, b0, entries: &entries, owned: owned.as_deref() };
            let r = f(&view);
            fence(Ordering::Acquire);
            for (i, b) in (b0..=b1).enumerate() {
                if self.block_seq(b).load(Ordering::Relaxed) != entries[i].seq {
                    continue 'retry;
                }
            }
            return Ok(r);
        }
    }

    /// Passes to `out` the raw little-endian bytes of column `c` for the
    /// present slots among `s0..=s1`, reading with `pread` instead of the map.
    /// For copying reads in short-lived processes this is cheaper than
    /// faulting the pages in one by one. Checksums are verified on the bytes
    /// read; a block that changes meanwhile is read again.
    pub fn copy_present(&self, c: usize, s0: u64, s1: u64, out: &mut dyn FnMut(&[u8])) -> Result<()> {
        let w = self.layout.col_width(c) as usize;
        let mut col = vec![0u8; BLOCK_SLOTS as usize * w];
        let mut bits = vec![0u8; crate::layout::BITMAP_BLOCK_BYTES as usize];
        for b in s0 / BLOCK_SLOTS..=s1 / BLOCK_SLOTS {
            loop {
                let e = self.entry(b)?;
                if e.present == 0 {
                    break;
                }
                let (coff, _) = self.layout.col_block(c, b);
                let (boff, _) = self.layout.bitmap_block(false, b);
                let io = |e| Error::io("read", &self.path, e);
                if e.flags & entry::FLAG_COLD != 0 {
                    let raw = self.cold_block(b, e.seq)?;
                    let off = self.raw_col_off(c);
                    let n = col.len();
                    col.copy_from_slice(&raw[off..off + n]);
                } else {
                    self.file.read_exact_at(&mut col, coff).map_err(io)?;
                }
                self.file.read_exact_at(&mut bits, boff).map_err(io)?;
                fence(Ordering::Acquire);
                if self.block_seq(b).load(Ordering::Relaxed) != e.seq {
                    continue;
                }
                if checksum::crc32c(&col) != e.crcs[c] || checksum::crc32c(&bits) != e.crcs[COLUMNS] {
                    return Err(Error::corrupt(
                        &self.path,
                        format!("series {}: block {b} {} checksum mismatch", self.key, crate::Column::ALL[c].name()),
                    ));
                }
                let lo = s0.max(b * BLOCK_SLOTS) - b * BLOCK_SLOTS;
                let hi = s1.min((b + 1) * BLOCK_SLOTS - 1) - b * BLOCK_SLOTS;
                let bit = |i: u64| bits[(i / 8) as usize] & (1 << (i % 8)) != 0;
                if e.present as u64 == BLOCK_SLOTS {
                    out(&col[lo as usize * w..(hi as usize + 1) * w]);
                } else {
                    for i in (lo..=hi).filter(|&i| bit(i)) {
                        out(&col[i as usize * w..(i as usize + 1) * w]);
                    }
                }
                break;
            }
        }
        Ok(())
    }

    /// Copies the requested columns of slots `s0..=s1` out of the map and
    /// the cold blocks, for a read window that touches cold blocks.
    fn copy_columns(&self, s0: u64, s1: u64, b0: u64, entries: &[Entry], mask: u16) -> Result<Vec<OwnedCol>> {
        let n = (s1 - s0 + 1) as usize;
        let mut out = Vec::with_capacity(COLUMNS);
        for c in 0..COLUMNS {
            if mask & (1 << c) == 0 {
                out.push(OwnedCol::None);
                continue;
            }
            let w = self.layout.col_width(c) as usize;
            let mut bytes: Vec<u8> = Vec::with_capacity(n * w);
            let mut s = s0;
            while s <= s1 {
                let b = s / BLOCK_SLOTS;
                let end = s1.min((b + 1) * BLOCK_SLOTS - 1);
                let e = &entries[(b - b0) as usize];
                let (i, j) = (((s - b * BLOCK_SLOTS) as usize) * w, ((end - b * BLOCK_SLOTS + 1) as usize) * w);
                if e.flags & entry::FLAG_COLD != 0 {
                    let raw = self.cold_block(b, e.seq)?;
                    let off = self.raw_col_off(c);
                    bytes.extend_from_slice(&raw[off + i..off + j]);
                } else {
                    let (off, _) = self.layout.col_block(c, b);
                    bytes.extend_from_slice(self.map.bytes(off as usize + i, j - i));
                }
                s = end + 1;
            }
            out.push(match (c == FLOAT_COLUMNS, w) {
                (true, _) => OwnedCol::U32(bytes.chunks_exact(4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect()),
                (false, 4) => OwnedCol::F32(bytes.chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect()),
                _ => OwnedCol::F64(
                    bytes.chunks_exact(8).map(|x| f64::from_le_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]])).collect(),
                ),
            });
        }
        Ok(out)
    }

    /// Moves sealed blocks' columns into the cold file (zstd) and frees their
    /// space in the series file. `blocks` must be sealed (before the last
    /// present block) and not cold; the caller holds the write lock and has
    /// checkpointed. Crash-safe: the new cold file is durable before any
    /// block is flagged cold, and holes are punched only after the flags are.
    pub fn freeze(&self, blocks: &[u64]) -> Result<u64> {
        assert!(self.writable, "freeze on a read-only series");
        let path = cold::cold_path(&self.path);
        let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
        if let Some(old) = ColdFile::open(&path)? {
            for b in old.blocks().collect::<Vec<_>>() {
                if self.entry(b)?.flags & entry::FLAG_COLD != 0 {
                    if let Some(f) = old.frame(b)? {
                        frames.push((b, f));
                    }
                }
            }
        }
        let mut todo = Vec::new();
        for &b in blocks {
            let e = self.entry(b)?;
            if e.is_empty() || e.flags & entry::FLAG_COLD != 0 {
                continue;
            }
            let mut raw = Vec::with_capacity(cold::raw_block_len(&self.layout));
            for c in 0..COLUMNS {
                let (off, len) = self.layout.col_block(c, b);
                let bytes = self.map.bytes(off as usize, len as usize);
                if checksum::crc32c(bytes) != e.crcs[c] {
                    return Err(Error::corrupt(
                        &self.path,
                        format!("series {}: block {b} fails its checksum; not compacting it", self.key),
                    ));
                }
                raw.extend_from_slice(bytes);
            }
            frames.push((b, cold::compress(&self.layout, &raw)?));
            todo.push(b);
        }
        if todo.is_empty() {
            return Ok(0);
        }
        ColdFile::write(&path, frames)?;
        *self.cold.lock().unwrap_or_else(|p| p.into_inner()) = None;
        // Forgotten as reserved before they are flagged cold, so a later
        // write thaws them first even if punching their holes fails below.
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        for &b in &todo {
            reserved.remove(&b);
            self.set_flags(b, |f| f | entry::FLAG_COLD);
        }
        drop(reserved);
        self.sync()?;
        for &b in &todo {
            for c in 0..COLUMNS {
                let (off, len) = self.layout.col_block(c, b);
                let mode = nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
                nix::fcntl::fallocate(&self.file, mode, off as i64, len as i64).map_err(|e| nix_io("free space in", &self.path, e))?;
            }
        }
        Ok(todo.len() as u64)
    }

    /// Brings cold block `b` back into the series file before a write to it.
    fn thaw(&self, b: u64) -> Result<()> {
        // The flag word alone first: a hot block may be mid-apply in recovery.
        if self.u32_at(self.layout.entry_off(b) + entry::FLAGS as u64) & entry::FLAG_COLD == 0 {
            return Ok(());
        }
        let e = self.entry(b)?;
        if e.flags & entry::FLAG_COLD == 0 {
            return Ok(());
        }
        let raw = self.cold_block(b, e.seq)?;
        let mut at = 0;
        for c in 0..COLUMNS {
            let (off, len) = self.layout.col_block(c, b);
            nix::fcntl::fallocate(&self.file, nix::fcntl::FallocateFlags::empty(), off as i64, len as i64)
                .map_err(|e| nix_io("reserve space in", &self.path, e))?;
            if checksum::crc32c(&raw[at..at + len as usize]) != e.crcs[c] {
                return Err(Error::corrupt(&self.path, format!("series {}: cold block {b} fails its checksum", self.key)));
            }
            self.file.write_all_at(&raw[at..at + len as usize], off).map_err(|e| Error::io("write", &self.path, e))?;
            at += len as usize;
        }
        self.sync()?;
        self.set_flags(b, |f| f & !entry::FLAG_COLD);
        Ok(())
    }

    /// Crash recovery: closes the seqlocks a killed writer left open on the
    /// blocks `batch` touches and reseals their entry CRCs, so the replay
    /// (which recomputes everything else) can read them.
    pub fn reopen_seqlocks(&self, batch: &SeriesBatch) {
        let mut blocks: Vec<u64> = batch.puts.iter().map(|(s, _)| s / BLOCK_SLOTS).collect();
        for &(a, z) in batch.missing.iter().chain(&batch.direct) {
            blocks.extend(a / BLOCK_SLOTS..=z / BLOCK_SLOTS);
        }
        blocks.sort_unstable();
        blocks.dedup();
        for b in blocks {
            let seq = self.block_seq(b);
            let s = seq.load(Ordering::Relaxed);
            if s % 2 == 1 {
                self.write_u32(self.layout.entry_off(b) + entry::CRC as u64, self.entry_crc(b));
                seq.store(s + 1, Ordering::Release);
            }
        }
    }

    /// Changes block `b`'s flags under its seqlock (and its entry CRC).
    fn set_flags(&self, b: u64, f: impl Fn(u32) -> u32) {
        let base = self.layout.entry_off(b);
        let seq = self.block_seq(b);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let flags = self.u32_at(base + entry::FLAGS as u64);
        self.write_u32(base + entry::FLAGS as u64, f(flags));
        self.write_u32(base + entry::CRC as u64, self.entry_crc(b));
        seq.store((s | 1) + 1, Ordering::Release);
    }

    // ----- writes ---------------------------------------------------------

    fn write_u32(&self, off: u64, v: u32) {
        self.map.atomic_u32(off as usize).store(v, Ordering::Relaxed);
    }

    /// Reserves disk space for the blocks a batch touches, so writing through
    /// the map can never fault on a full disk.
    ///
    /// With `zero`, the blocks only `puts` touch that were never written
    /// are zeroed as they are reserved (see [`SeriesFile::reserve_blocks`]).
    /// Crash recovery passes `false`: a block whose entry is still empty
    /// may hold the bulk rows of the very commit it replays.
    pub fn reserve(&self, batch: &SeriesBatch, zero: bool) -> Result<()> {
        let mut others: Vec<u64> = Vec::new();
        for &(a, b) in batch.missing.iter().chain(&batch.direct) {
            others.extend(a / BLOCK_SLOTS..=b / BLOCK_SLOTS);
        }
        others.sort_unstable();
        others.dedup();
        let mut puts: Vec<u64> = batch.puts.iter().map(|(s, _)| s / BLOCK_SLOTS).collect();
        puts.sort_unstable();
        puts.dedup();
        puts.retain(|b| others.binary_search(b).is_err());
        self.reserve_blocks(puts, zero)?;
        self.reserve_blocks(others, false)
    }

    /// Reserves disk space for `blocks` (thawing cold ones first).
    ///
    /// With `zero`, blocks never written (an empty table entry) get their
    /// columns zeroed (`FALLOC_FL_ZERO_RANGE`), so their checksums are
    /// known without reading them and the first kline written into one
    /// patches them. Only a writer holding the series may ask it, and only
    /// for blocks it has not written itself since (their bytes are its own).
    pub fn reserve_blocks(&self, mut blocks: Vec<u64>, zero: bool) -> Result<()> {
        blocks.sort_unstable();
        blocks.dedup();
        // Blocks this writer reserved are hot (freezing one forgets it).
        blocks.retain(|b| !self.reserved.lock().unwrap_or_else(|p| p.into_inner()).contains(b));
        if blocks.is_empty() {
            return Ok(());
        }
        for &b in &blocks {
            self.thaw(b)?;
        }
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        // A block whose entry says "reserved" was reserved by an earlier
        // process: that flag is written only after the commit's journal
        // fsync, which made the file system commit the allocation too (one
        // file system journal for all files), so its space is there.
        for b in &blocks {
            if self.entry(*b).is_ok_and(|e| e.flags & entry::FLAG_RESERVED != 0) {
                reserved.insert(*b);
            }
        }
        blocks.retain(|b| !reserved.contains(b));
        // Blocks never written get their columns zeroed as they are
        // reserved (allocated as unwritten extents, which read as zeros),
        // so their checksums are known without reading them. Nothing was
        // ever committed there; bytes a failed bulk write left are dropped.
        let empty: Vec<bool> = blocks.iter().map(|&b| zero && self.entry(b).is_ok_and(|e| e.is_empty())).collect();
        // One fallocate per region for each run of consecutive blocks
        // (as empty or not as each other).
        let mut i = 0;
        while i < blocks.len() {
            let mut j = i + 1;
            while j < blocks.len() && blocks[j] == blocks[j - 1] + 1 && empty[j] == empty[i] {
                j += 1;
            }
            let (b0, b1) = (blocks[i], blocks[j - 1]);
            let table = self.layout.entry_off(b0) / PAGE * PAGE;
            let mut ranges = vec![(table, (self.layout.entry_off(b1) + ENTRY_BYTES).div_ceil(PAGE) * PAGE - table, false)];
            for k in 0..BLOCK_CRCS {
                let (a, _) = self.layout.crc_range(k, b0);
                let (z, len) = self.layout.crc_range(k, b1);
                // A block's column is whole pages: zeroing it touches no other block.
                let zero = empty[i] && k < COLUMNS && a % PAGE == 0 && (z + len) % PAGE == 0;
                let start = a / PAGE * PAGE;
                ranges.push((start, (z + len).div_ceil(PAGE) * PAGE - start, zero));
            }
            let mut zeroed = true;
            for (off, len, zero) in ranges {
                let allocate = |flags| nix::fcntl::fallocate(&self.file, flags, off as i64, len as i64);
                let done = zero && allocate(nix::fcntl::FallocateFlags::FALLOC_FL_ZERO_RANGE).is_ok();
                if !done {
                    allocate(nix::fcntl::FallocateFlags::empty()).map_err(|e| nix_io("reserve space in", &self.path, e))?;
                }
                zeroed &= done || !zero;
            }
            if empty[i] && zeroed {
                self.zeroed.lock().unwrap_or_else(|p| p.into_inner()).extend(b0..=b1);
            }
            reserved.extend(b0..=b1);
            i = j;
        }
        Ok(())
    }

    /// Forgets that block `b`'s columns are zeros (they are being written).
    fn unzero(&self, b: u64) -> bool {
        self.zeroed.lock().unwrap_or_else(|p| p.into_inner()).remove(&b)
    }

    /// Prefaults the pages a write at `slot` touches (its block's table
    /// entry, the slot's page of each column and bitmap, the live header),
    /// when its block is reserved on disk: a writer about to write one kline
    /// into thousands of series does it beforehand rather than in the middle
    /// of a commit. Best effort.
    pub fn prefault(&self, slot: u64) -> Result<()> {
        let b = slot / BLOCK_SLOTS;
        let reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner()).contains(&b);
        if slot >= self.key.interval.capacity() || !(reserved || self.entry(b)?.flags & entry::FLAG_RESERVED != 0) {
            return Ok(());
        }
        let page = |off: u64| (off / PAGE * PAGE, PAGE);
        let mut ranges = vec![page(self.layout.entry_off(b)), (LIVE_OFF, LIVE_LEN)];
        for c in 0..COLUMNS {
            ranges.push(page(self.layout.col_off[c] + slot * self.layout.col_width(c)));
        }
        ranges.push(page(self.layout.present_off + slot / 8));
        ranges.push(page(self.layout.missing_off + slot / 8));
        for (off, len) in ranges {
            self.map.prefault_write(off as usize, len as usize);
        }
        Ok(())
    }

    /// Marks the series as having applied-but-unsynced changes from `journal`
    /// (0 = clean). Set before a commit is journaled, cleared at checkpoint;
    /// a single atomic word, so it is never torn.
    pub fn set_dirty(&self, journal: u64) {
        assert!(self.writable, "set_dirty on a read-only series");
        // The one writer knows what it last stored: a commit after the
        // first since a checkpoint leaves the header page untouched.
        if self.dirty_set.swap(journal, Ordering::Relaxed) != journal {
            self.dirty_word().store(journal, Ordering::Release);
        }
    }

    /// Publishes a new live header: writes the unpublished copy, then bumps
    /// the version that selects it. A crash mid-write leaves the old copy
    /// published and intact.
    fn write_live(&self, l: &Live) {
        let next = self.live_version().load(Ordering::Relaxed) + 2;
        let off = LIVE_COPY_OFF + (next / 2 % 2) * LIVE_COPY_LEN;
        self.map.write(off as usize, &encode_live(l));
        self.live_version().store(next, Ordering::Release);
    }

    /// Applies a committed batch: writes values and states block by block
    /// under each block's seqlock, then publishes the live header. Replaying
    /// the same batch again leaves the same bytes (journal replay relies on it).
    ///
    /// With `replay` (crash recovery), block metadata that a killed writer may
    /// have left half-written is not trusted: sequence numbers are made even,
    /// counts and checksums are recomputed from the bytes, and the live totals
    /// are recounted from the whole block table.
    pub fn apply(&self, batch: &SeriesBatch, replay: bool) -> Result<()> {
        assert!(self.writable, "apply on a read-only series");
        let mut live = self.live()?;
        let mut blocks: Vec<u64> = batch.puts.iter().map(|(s, _)| s / BLOCK_SLOTS).collect();
        for &(a, b) in batch.missing.iter().chain(&batch.direct) {
            blocks.extend(a / BLOCK_SLOTS..=b / BLOCK_SLOTS);
        }
        blocks.sort_unstable();
        blocks.dedup();
        let mut exc: HashMap<u64, Exception> = live.exceptions.iter().map(|e| (e.slot, *e)).collect();
        let mut put_i = 0;
        for b in blocks {
            let (lo, hi) = (b * BLOCK_SLOTS, (b + 1) * BLOCK_SLOTS - 1);
            let start = put_i;
            while put_i < batch.puts.len() && batch.puts[put_i].0 <= hi {
                put_i += 1;
            }
            let puts = &batch.puts[start..put_i];
            let seq = self.block_seq(b);
            let before = if replay {
                let s = seq.load(Ordering::Relaxed);
                seq.store(s + s % 2, Ordering::Relaxed);
                let mut e = self.entry_raw(b, s + s % 2);
                (e.present, e.missing) = self.count_block(b);
                e.flags |= u32::from(e.present + e.missing > 0);
                e
            } else {
                self.entry(b)?
            };
            // A few klines put into a block that already has its checksums
            // (no run or missing range touching it): the checksums are
            // patched with the changed bytes instead of recomputed over the
            // whole block (see `SeriesFile::patch_crcs`).
            let touched = |r: &[(u64, u64)]| r.iter().any(|&(a, z)| a <= hi && z >= lo);
            // A block never written has known checksums if this writer
            // zeroed its columns (see `reserve_blocks`).
            let zeroed = self.unzero(b) && before.is_empty();
            let patch = (!replay && (zeroed || !before.is_empty()) && !puts.is_empty() && puts.len() <= PATCH_PUTS)
                && before.flags & entry::FLAG_COLD == 0
                && !touched(&batch.direct)
                && !touched(&batch.missing);
            let mut base_crcs = before.crcs;
            if patch && zeroed {
                for (k, c) in base_crcs.iter_mut().enumerate() {
                    let (off, len) = self.layout.crc_range(k, b);
                    *c = match k < COLUMNS {
                        true => checksum::crc32c_zeros(len as usize),
                        // The bitmaps' 512 bytes are read: no zeroing covered them.
                        false => checksum::crc32c(self.map.bytes(off as usize, len as usize)),
                    };
                }
            }
            let old = patch.then(|| self.put_bytes(b, puts));
            let s = seq.load(Ordering::Relaxed);
            seq.store(s | 1, Ordering::Relaxed);
            fence(Ordering::Release);
            if !puts.is_empty() {
                self.write_puts(puts);
                for (slot, k) in puts {
                    let regular = (self.key.interval.open_time(*slot), self.key.interval.close_time(*slot));
                    if (k.open_time, k.close_time) == regular {
                        exc.remove(slot);
                    } else {
                        exc.insert(*slot, Exception { slot: *slot, open_time: k.open_time, close_time: k.close_time });
                    }
                }
            }
            let mut direct = false;
            for &(a, z) in &batch.direct {
                let (a, z) = (a.max(lo), z.min(hi));
                if a <= z {
                    self.set_present(a, z);
                    if !exc.is_empty() {
                        exc.retain(|s, _| !(a..=z).contains(s));
                    }
                    direct = true;
                }
            }
            for &(a, z) in &batch.missing {
                let (a, z) = (a.max(lo), z.min(hi));
                if a <= z {
                    self.mark_missing_words(a, z);
                }
            }
            crate::fault::block_written();
            // Patched: the counts move by the bits the puts changed in the
            // bitmap words they touched; otherwise the block is counted.
            let new_bytes = old.as_ref().map(|_| self.put_bytes(b, puts));
            let (present, missing) = match (&old, &new_bytes) {
                (Some(old), Some(new)) => {
                    let ones = |v: &[(usize, usize, [u8; 8])], k: usize| -> i64 {
                        v.iter().filter(|e| e.0 == k).map(|e| u64::from_le_bytes(e.2).count_ones() as i64).sum()
                    };
                    let moved = |count: u32, k: usize| (count as i64 + ones(new, k) - ones(old, k)) as u32;
                    (moved(before.present, COLUMNS), moved(before.missing, COLUMNS + 1))
                }
                _ => self.count_block(b),
            };
            let mut crcs = base_crcs;
            let known = if puts.is_empty() && !replay { batch.known_crcs.get(&b) } else { None };
            if let (Some(old), Some(new)) = (&old, &new_bytes) {
                self.patch_crcs(b, old, new, &mut crcs);
            }
            for (k, c) in crcs.iter_mut().enumerate().filter(|_| old.is_none()) {
                if let (Some(known), true) = (known, k < COLUMNS) {
                    *c = known[k];
                } else if k >= COLUMNS || !puts.is_empty() || direct || before.is_empty() || replay {
                    let (off, len) = self.layout.crc_range(k, b);
                    *c = checksum::crc32c(self.map.bytes(off as usize, len as usize));
                }
            }
            let base = self.layout.entry_off(b);
            self.write_u32(base + entry::FLAGS as u64, before.flags | entry::FLAG_RESERVED);
            self.write_u32(base + entry::PRESENT as u64, present);
            self.write_u32(base + entry::MISSING as u64, missing);
            for (k, c) in crcs.iter().enumerate() {
                self.write_u32(base + (entry::CRCS + 4 * k) as u64, *c);
            }
            self.write_u32(base + entry::CRC as u64, self.entry_crc(b));
            seq.store((s | 1) + 1, Ordering::Release);
            live.present_total = live.present_total + present as u64 - before.present as u64;
            live.missing_total = live.missing_total + missing as u64 - before.missing as u64;
            if let (true, Some(first), Some(last)) = (patch, puts.first(), puts.last()) {
                // Puts only add present slots.
                live.first_present = Some(live.first_present.map_or(first.0, |f| f.min(first.0)));
                live.last_present = Some(live.last_present.map_or(last.0, |l| l.max(last.0)));
            } else if present > 0 {
                if live.first_present.is_none_or(|f| f >= lo) {
                    live.first_present = self.first_present_in(b);
                }
                if live.last_present.is_none_or(|l| l <= hi) {
                    live.last_present = self.last_present_in(b);
                }
            }
        }
        if exc.len() > MAX_EXCEPTIONS {
            // Checked by the writer before the commit; replay of a valid journal cannot get here.
            return Err(Error::InvalidInput(format!("series {} would hold more than {MAX_EXCEPTIONS} irregular klines", self.key)));
        }
        live.exceptions = exc.into_values().collect();
        live.exceptions.sort_by_key(|e| e.slot);
        live.commits += 1;
        if replay {
            self.recount(&mut live);
        }
        self.write_live(&live);
        Ok(())
    }

    /// Recomputes the live totals and first/last present slot from the block table.
    fn recount(&self, live: &mut Live) {
        let (mut p, mut m, mut first, mut last) = (0u64, 0u64, None, None);
        for b in 0..self.layout.blocks {
            let base = self.layout.entry_off(b);
            let (bp, bm) = (self.u32_at(base + entry::PRESENT as u64), self.u32_at(base + entry::MISSING as u64));
            p += bp as u64;
            m += bm as u64;
            if bp > 0 {
                first = first.or_else(|| self.first_present_in(b));
                last = self.last_present_in(b);
            }
        }
        (live.present_total, live.missing_total, live.first_present, live.last_present) = (p, m, first, last);
    }

    /// Writes the values of `puts` (all in one block) column by column, one
    /// contiguous run at a time, and sets their present bits.
    /// The bytes that checksums of block `b` cover at the slots of `puts`:
    /// each column's value, then the bitmap words holding the slots
    /// (present, then missing), with their offsets in the checksummed ranges.
    fn put_bytes(&self, b: u64, puts: &[(u64, Kline)]) -> Vec<(usize, usize, [u8; 8])> {
        let lo = b * BLOCK_SLOTS;
        let mut out = Vec::with_capacity(puts.len() * (COLUMNS + 2));
        for (slot, _) in puts {
            for c in 0..COLUMNS {
                let w = self.layout.col_width(c) as usize;
                let at = (slot - lo) as usize * w;
                let off = self.layout.col_off[c] + slot * w as u64;
                let v = match w {
                    4 => (self.u32_at(off) as u64).to_le_bytes(),
                    _ => self.u64_at(off).to_le_bytes(),
                };
                out.push((c, at, v));
            }
            for (k, base) in [(COLUMNS, self.layout.present_off), (COLUMNS + 1, self.layout.missing_off)] {
                let word = slot / 64;
                let at = (word * 8 - lo / 8) as usize;
                if !out.iter().any(|&(kk, a, _)| kk == k && a == at) {
                    out.push((k, at, self.u64_at(base + word * 8).to_le_bytes()));
                }
            }
        }
        out
    }

    /// Patches block `b`'s checksums with the bytes that changed from `old`
    /// to `new` (both from [`SeriesFile::put_bytes`] of the same puts).
    fn patch_crcs(&self, b: u64, old: &[(usize, usize, [u8; 8])], new: &[(usize, usize, [u8; 8])], crcs: &mut [u32; BLOCK_CRCS]) {
        for (&(k, at, o), &(_, _, n)) in old.iter().zip(new) {
            let (_, len) = self.layout.crc_range(k, b);
            let w = if k < COLUMNS { self.layout.col_width(k) as usize } else { 8 };
            crcs[k] = checksum::crc32c_patch(crcs[k], len as usize, at, &o[..w], &n[..w]);
        }
    }

    fn write_puts(&self, puts: &[(u64, Kline)]) {
        self.write_values(puts);
        for (slot, _) in puts {
            self.set_present(*slot, *slot);
        }
    }

    /// Writes column slices for consecutive slots from `first` with `pwrite`
    /// (through the page cache, without faulting the map), converting to the
    /// store's precision in chunks. Publishes nothing.
    /// Returns the column checksums of the blocks the run covers whole.
    pub fn write_column_slices(&self, first: u64, cols: &crate::writer::Columns<'_>) -> Result<HashMap<u64, [u32; COLUMNS]>> {
        use crate::writer::FloatColumn;
        // 128 blocks: 2 MiB of each f32 column per `pwrite`, which the kernel
        // keeps in large folios (see `write_values_pwrite`), from a buffer
        // that still fits in a core's L2 cache (larger ones made W1 slower).
        const CHUNK: usize = 128 * BLOCK_SLOTS as usize;
        let mut crcs: HashMap<u64, [u32; COLUMNS]> = HashMap::new();
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 8);
        let n = cols.trades.len();
        if n > 0 {
            for b in first / BLOCK_SLOTS..=(first + n as u64 - 1) / BLOCK_SLOTS {
                self.unzero(b);
            }
        }
        for c in 0..COLUMNS {
            let mut i = 0;
            while i < n {
                let j = (i + CHUNK).min(n);
                buf.clear();
                if c == FLOAT_COLUMNS {
                    cols.trades[i..j].iter().for_each(|t| buf.extend_from_slice(&t.to_le_bytes()));
                } else {
                    match (cols.values[c], self.precision) {
                        (FloatColumn::F32(v), Precision::F32) => v[i..j].iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes())),
                        (FloatColumn::F32(v), Precision::F64) => {
                            v[i..j].iter().for_each(|x| buf.extend_from_slice(&(*x as f64).to_le_bytes()))
                        }
                        (FloatColumn::F64(v), Precision::F32) => {
                            v[i..j].iter().for_each(|x| buf.extend_from_slice(&(*x as f32).to_le_bytes()))
                        }
                        (FloatColumn::F64(v), Precision::F64) => v[i..j].iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes())),
                    }
                }
                let w = self.layout.col_width(c) as usize;
                let (s_lo, s_hi) = (first + i as u64, first + j as u64); // slots [s_lo, s_hi)
                let mut b = s_lo.div_ceil(BLOCK_SLOTS);
                while (b + 1) * BLOCK_SLOTS <= s_hi {
                    let at = ((b * BLOCK_SLOTS - s_lo) as usize) * w;
                    crcs.entry(b).or_insert([0; COLUMNS])[c] = checksum::crc32c(&buf[at..at + BLOCK_SLOTS as usize * w]);
                    b += 1;
                }
                let off = self.layout.col_off[c] + s_lo * self.layout.col_width(c);
                self.file.write_all_at(&buf, off).map_err(|e| Error::io("write", &self.path, e))?;
                i = j;
            }
        }
        Ok(crcs)
    }

    /// Sets the present bits (and clears the missing bits) of slots `a..=z`.
    fn set_present(&self, a: u64, z: u64) {
        for (w, mask) in word_masks(a, z) {
            self.map.atomic_u64((self.layout.present_off + w * 8) as usize).fetch_or(mask, Ordering::Relaxed);
            self.map.atomic_u64((self.layout.missing_off + w * 8) as usize).fetch_and(!mask, Ordering::Relaxed);
        }
    }

    /// Writes the values of `puts` (sorted by slot) through the map, column
    /// by column, one contiguous run at a time, without publishing them:
    /// for the few klines of a commit's apply.
    pub fn write_values(&self, puts: &[(u64, Kline)]) {
        self.encode_runs(puts, |off, bytes| {
            self.map.write(off as usize, bytes);
            Ok(())
        })
        .unwrap_or_default(); // the sink never fails
    }

    /// Like [`SeriesFile::write_values`], but with `pwrite`: the bulk path's
    /// fresh blocks. A long run goes to the page cache in one large write,
    /// which the kernel keeps in large folios (up to 2 MiB); a process that
    /// later maps them takes a fraction of the page faults it takes over
    /// pages written 4 KiB at a time through the map (a full scan of a
    /// 3.2M-row column: ~40 µs of faults instead of ~400 µs).
    pub fn write_values_pwrite(&self, puts: &[(u64, Kline)]) -> Result<()> {
        // The blocks' columns are no longer zeros, whether the commit goes
        // through or not: no later kline may patch their checksums from the
        // CRC of zeros.
        let mut blocks: Vec<u64> = puts.iter().map(|(s, _)| s / BLOCK_SLOTS).collect();
        blocks.dedup(); // sorted by slot: one lock per block, not per kline
        for b in blocks {
            self.unzero(b);
        }
        self.encode_runs(puts, |off, bytes| self.file.write_all_at(bytes, off).map_err(|e| Error::io("write", &self.path, e)))
    }

    /// Encodes the values of `puts` (sorted by slot) column by column, one
    /// contiguous run at a time, handing each run's bytes and file offset to
    /// `sink`.
    fn encode_runs(&self, puts: &[(u64, Kline)], mut sink: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let mut i = 0;
        let mut buf = Vec::new();
        while i < puts.len() {
            let mut j = i + 1;
            while j < puts.len() && puts[j].0 == puts[j - 1].0 + 1 {
                j += 1;
            }
            let run = &puts[i..j];
            let first = run[0].0;
            for c in 0..COLUMNS {
                buf.clear();
                for (_, k) in run {
                    if c == FLOAT_COLUMNS {
                        buf.extend_from_slice(&k.trades.to_le_bytes());
                    } else if self.precision == Precision::F32 {
                        buf.extend_from_slice(&(k.values[c] as f32).to_le_bytes());
                    } else {
                        buf.extend_from_slice(&k.values[c].to_le_bytes());
                    }
                }
                sink(self.layout.col_off[c] + first * self.layout.col_width(c), &buf)?;
            }
            i = j;
        }
        Ok(())
    }

    fn mark_missing_words(&self, a: u64, z: u64) {
        for (w, mask) in word_masks(a, z) {
            let present = self.u64_at(self.layout.present_off + w * 8);
            self.map.atomic_u64((self.layout.missing_off + w * 8) as usize).fetch_or(mask & !present, Ordering::Relaxed);
        }
    }

    fn count_block(&self, b: u64) -> (u32, u32) {
        let words = BLOCK_SLOTS / 64;
        let (mut p, mut m) = (0, 0);
        for w in b * words..(b + 1) * words {
            p += self.u64_at(self.layout.present_off + w * 8).count_ones();
            m += self.u64_at(self.layout.missing_off + w * 8).count_ones();
        }
        (p, m)
    }

    fn first_present_in(&self, b: u64) -> Option<u64> {
        let words = BLOCK_SLOTS / 64;
        (b * words..(b + 1) * words).find_map(|w| {
            let v = self.u64_at(self.layout.present_off + w * 8);
            (v != 0).then(|| w * 64 + v.trailing_zeros() as u64)
        })
    }

    fn last_present_in(&self, b: u64) -> Option<u64> {
        let words = BLOCK_SLOTS / 64;
        (b * words..(b + 1) * words).rev().find_map(|w| {
            let v = self.u64_at(self.layout.present_off + w * 8);
            (v != 0).then(|| w * 64 + 63 - v.leading_zeros() as u64)
        })
    }

    /// Flushes everything written through the map to disk.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("sync", &self.path, e))
    }

    /// Recomputes every checksum and count of the file and returns one line per
    /// problem found (empty when healthy).
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let live = match self.live() {
            Ok(l) => l,
            Err(e) => return vec![e.to_string()],
        };
        let (mut present, mut missing, mut first, mut last) = (0u64, 0u64, None, None);
        for b in 0..self.layout.blocks {
            let e = match self.entry(b) {
                Ok(e) => e,
                Err(err) => {
                    problems.push(err.to_string());
                    continue;
                }
            };
            if e.is_empty() {
                continue;
            }
            {
                let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                v.remove(&b);
            }
            if let Err(err) = self.verify_block(b, &e, (1 << BLOCK_CRCS) - 1) {
                problems.push(err.to_string());
                continue;
            }
            let (p, m) = self.count_block(b);
            if (p, m) != (e.present, e.missing) {
                problems.push(format!("corrupt {}: series {}: block {b} counts disagree with its bitmaps", self.path.display(), self.key));
            }
            let words = BLOCK_SLOTS / 64;
            if (b * words..(b + 1) * words)
                .any(|w| self.u64_at(self.layout.present_off + w * 8) & self.u64_at(self.layout.missing_off + w * 8) != 0)
            {
                problems.push(format!(
                    "corrupt {}: series {}: block {b} has slots both present and missing",
                    self.path.display(),
                    self.key
                ));
            }
            present += p as u64;
            missing += m as u64;
            if p > 0 {
                first = first.or(self.first_present_in(b));
                last = self.last_present_in(b);
            }
        }
        if (present, missing, first, last) != (live.present_total, live.missing_total, live.first_present, live.last_present) {
            problems.push(format!("corrupt {}: series {}: live header totals disagree with the blocks", self.path.display(), self.key));
        }
        problems
    }

    /// The blocks whose entry or checksums fail, by number.
    pub fn damaged_blocks(&self) -> Vec<u64> {
        (0..self.layout.blocks)
            .filter(|&b| match self.entry(b) {
                Err(_) => true,
                Ok(e) if e.is_empty() => false,
                Ok(e) => {
                    self.verified.lock().unwrap_or_else(|p| p.into_inner()).remove(&b);
                    self.verify_block(b, &e, (1 << BLOCK_CRCS) - 1).is_err()
                }
            })
            .collect()
    }

    /// Slots of the series that are present, by scanning the bitmap from
    /// `from` downwards, up to `n` of them (newest first).
    pub fn present_slots_back(&self, from: u64, n: usize) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(n.min(1 << 20));
        let mut b = from / BLOCK_SLOTS;
        loop {
            let e = self.entry(b)?;
            if e.present > 0 {
                self.read_section(b * BLOCK_SLOTS, b * BLOCK_SLOTS + BLOCK_SLOTS - 1, 1 << COLUMNS, |v| {
                    let hi = (from.min(v.last) - v.first) as usize;
                    for i in (0..=hi).rev() {
                        if out.len() >= n {
                            break;
                        }
                        if v.state(i) == SlotState::Present {
                            out.push(v.first + i as u64);
                        }
                    }
                })?;
            }
            if out.len() >= n || b == 0 {
                break;
            }
            b -= 1;
            if e.present == 0 && self.live()?.first_present.is_none_or(|f| f > b * BLOCK_SLOTS + BLOCK_SLOTS - 1) {
                break;
            }
        }
        Ok(out)
    }
}

/// The state of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlotState {
    /// Not fetched yet.
    Unknown,
    /// The exchange has no kline there.
    Missing,
    /// A kline is stored.
    Present,
}

/// A validated window of slots `first..=last`, valid inside a read section.
pub struct Slots<'a> {
    file: &'a SeriesFile,
    /// First slot of the window.
    pub first: u64,
    /// Last slot of the window (inclusive).
    pub last: u64,
    b0: u64,
    entries: &'a [Entry],
    /// Columns copied out when the window touches cold blocks.
    owned: Option<&'a [OwnedCol]>,
}

impl Slots<'_> {
    /// Number of slots.
    pub fn len(&self) -> usize {
        (self.last - self.first + 1) as usize
    }

    /// Always false: a window holds at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The state of the `i`-th slot of the window.
    pub fn state(&self, i: usize) -> SlotState {
        let slot = self.first + i as u64;
        let e = &self.entries[(slot / BLOCK_SLOTS - self.b0) as usize];
        if e.present == 0 && e.missing == 0 {
            return SlotState::Unknown;
        }
        let (w, bit) = (slot / 64, 1u64 << (slot % 64));
        let l = &self.file.layout;
        if e.present > 0 && self.file.u64_at(l.present_off + w * 8) & bit != 0 {
            SlotState::Present
        } else if e.missing > 0 && self.file.u64_at(l.missing_off + w * 8) & bit != 0 {
            SlotState::Missing
        } else {
            SlotState::Unknown
        }
    }

    /// True when every slot of the window is present (checked a block or a
    /// bitmap word at a time), so the column slices hold only klines.
    pub fn all_present(&self) -> bool {
        let l = &self.file.layout;
        (self.b0..=self.last / BLOCK_SLOTS).all(|b| {
            let e = &self.entries[(b - self.b0) as usize];
            e.present as u64 == BLOCK_SLOTS || {
                let (a, z) = (self.first.max(b * BLOCK_SLOTS), self.last.min((b + 1) * BLOCK_SLOTS - 1));
                word_masks(a, z).all(|(w, m)| self.file.u64_at(l.present_off + w * 8) & m == m)
            }
        })
    }

    /// Column `c` (0..8) of an `f32` store, zero-copy.
    pub fn f32s(&self, c: usize) -> Option<&[f32]> {
        if let Some(o) = self.owned {
            return match o.get(c) {
                Some(OwnedCol::F32(v)) => Some(v),
                _ => None,
            };
        }
        let l = &self.file.layout;
        (self.file.precision == Precision::F32 && c < FLOAT_COLUMNS)
            .then(|| self.file.map.f32s((l.col_off[c] + self.first * 4) as usize, self.len()))
    }

    #[cfg(feature = "arrow")]
    /// Column `c` (0..8 the floats, 8 the trades) of the window as an Arrow
    /// buffer over the mapped bytes, without a copy; `None` when the window
    /// touches cold (compressed) blocks. `owner` must hold this series file.
    pub(crate) fn arrow_buffer(&self, c: usize, owner: Arc<dyn arrow_buffer::alloc::Allocation>) -> Option<arrow_buffer::Buffer> {
        if self.owned.is_some() || c > FLOAT_COLUMNS {
            return None;
        }
        let width = if c == FLOAT_COLUMNS { 4 } else { self.file.precision.width() as u64 };
        let l = &self.file.layout;
        let off = l.col_off[c] + self.first * width;
        Some(self.file.map.arrow_buffer(off as usize, self.len() * width as usize, width as usize, owner))
    }

    /// Column `c` (0..8) of an `f64` store, zero-copy.
    pub fn f64s(&self, c: usize) -> Option<&[f64]> {
        if let Some(o) = self.owned {
            return match o.get(c) {
                Some(OwnedCol::F64(v)) => Some(v),
                _ => None,
            };
        }
        let l = &self.file.layout;
        (self.file.precision == Precision::F64 && c < FLOAT_COLUMNS)
            .then(|| self.file.map.f64s((l.col_off[c] + self.first * 8) as usize, self.len()))
    }

    /// The trades column, zero-copy.
    pub fn trades(&self) -> &[u32] {
        if let Some(o) = self.owned {
            return match o.get(FLOAT_COLUMNS) {
                Some(OwnedCol::U32(v)) => v,
                _ => &[],
            };
        }
        let l = &self.file.layout;
        self.file.map.u32s((l.col_off[FLOAT_COLUMNS] + self.first * 4) as usize, self.len())
    }

    /// Float column `c` of slot `i` as `f64`, whatever the precision.
    pub fn value(&self, c: usize, i: usize) -> f64 {
        if let Some(o) = self.owned {
            return match o.get(c) {
                Some(OwnedCol::F32(v)) => v[i] as f64,
                Some(OwnedCol::F64(v)) => v[i],
                _ => 0.0,
            };
        }
        let l = &self.file.layout;
        let slot = self.first + i as u64;
        match self.file.precision {
            Precision::F32 => self.file.map.f32s((l.col_off[c] + slot * 4) as usize, 1)[0] as f64,
            Precision::F64 => self.file.map.f64s((l.col_off[c] + slot * 8) as usize, 1)[0],
        }
    }
}

/// The bitmap words covering slots `a..=z`, each with the mask of its slots.
fn word_masks(a: u64, z: u64) -> impl Iterator<Item = (u64, u64)> {
    (a / 64..=z / 64).map(move |w| {
        let (lo, hi) = (a.max(w * 64) % 64, z.min(w * 64 + 63) % 64);
        let width = hi - lo + 1;
        (w, if width == 64 { u64::MAX } else { ((1u64 << width) - 1) << lo })
    })
}

// ----- live header encoding ------------------------------------------------

/// The bytes of a live copy up to its last used exception (what follows
/// is not read: the count says where the table ends).
fn encode_live(l: &Live) -> Vec<u8> {
    let mut b = vec![0u8; (EXC_OFF + l.exceptions.len().min(MAX_EXCEPTIONS) as u64 * EXC_BYTES) as usize];
    let put = |b: &mut Vec<u8>, off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut b, live::FIRST_PRESENT, l.first_present.unwrap_or(u64::MAX));
    put(&mut b, live::LAST_PRESENT, l.last_present.unwrap_or(u64::MAX));
    put(&mut b, live::PRESENT_TOTAL, l.present_total);
    put(&mut b, live::MISSING_TOTAL, l.missing_total);
    put(&mut b, live::COMMITS, l.commits);
    b[live::EXC_COUNT..live::EXC_COUNT + 4].copy_from_slice(&(l.exceptions.len() as u32).to_le_bytes());
    for (i, e) in l.exceptions.iter().take(MAX_EXCEPTIONS).enumerate() {
        let off = EXC_OFF as usize + i * EXC_BYTES as usize;
        put(&mut b, off, e.slot);
        put(&mut b, off + 8, e.open_time as u64);
        put(&mut b, off + 16, e.close_time as u64);
    }
    let crc = live_crc(&b);
    b[live::CRC..live::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    b
}

/// CRC of a live copy: its fields before the CRC, then its used exceptions.
fn live_crc(b: &[u8]) -> u32 {
    let n = (layout::get_u32(b, live::EXC_COUNT) as usize).min(MAX_EXCEPTIONS);
    let c = checksum::crc32c(&b[..live::CRC]);
    checksum::crc32c_append(c, &b[EXC_OFF as usize..EXC_OFF as usize + n * EXC_BYTES as usize])
}

fn decode_live(b: &[u8]) -> Option<Live> {
    let opt = |v: u64| (v != u64::MAX).then_some(v);
    let n = layout::get_u32(b, live::EXC_COUNT) as usize;
    if n > MAX_EXCEPTIONS {
        return None;
    }
    let exceptions = (0..n)
        .map(|i| {
            let off = EXC_OFF as usize + i * EXC_BYTES as usize;
            Exception {
                slot: layout::get_u64(b, off),
                open_time: layout::get_u64(b, off + 8) as i64,
                close_time: layout::get_u64(b, off + 16) as i64,
            }
        })
        .collect();
    Some(Live {
        first_present: opt(layout::get_u64(b, live::FIRST_PRESENT)),
        last_present: opt(layout::get_u64(b, live::LAST_PRESENT)),
        present_total: layout::get_u64(b, live::PRESENT_TOTAL),
        missing_total: layout::get_u64(b, live::MISSING_TOTAL),
        commits: layout::get_u64(b, live::COMMITS),
        exceptions,
    })
}

const _: () = assert!(ENTRY_BYTES as usize == entry::CRC + 4);
