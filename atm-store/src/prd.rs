//! PRD, pre-registered data: a shared-memory segment of named, typed slots
//! that one process writes and any number of others read, without locks.
//!
//! Each running atm process that publishes status owns one segment file,
//! `<store>/run/<pid>-<started ms>.prd`. The file describes itself: a header
//! (magic, version, owner, heartbeat, checksums), a table naming every slot
//! (name, kind, unit, offset), then the slots. Each slot is a sequence word
//! and a few payload words, published as a seqlock: the writer makes the
//! sequence odd, stores the payload, makes it even; a reader retries until
//! it reads the same even sequence before and after the payload. A reader
//! never blocks the writer and never returns a torn value.
//!
//! Slots are added by a new *generation*: the writer builds a larger file
//! beside the old one, renames it over the old name, and marks the old
//! mapping retired; readers that see the mark open the path again. A file is
//! never truncated while mapped.
//!
//! A process that dies leaves its segment behind: [`SegmentInfo::state`]
//! tells it from a running one (the owner's pid and start time in `/proc`),
//! and [`cleanup`] removes segments of ended processes after an hour.
//!
//! ```
//! use atm_store::prd::{PrdReader, PrdWriter, SlotKind, SlotSpec, SlotValue};
//! let dir = tempfile::tempdir().unwrap();
//! let mut w = PrdWriter::create(dir.path(), "sync", &[SlotSpec::new("fetch.items_in", SlotKind::Counter, "pages")]).unwrap();
//! let id = w.slot("fetch.items_in").unwrap();
//! w.set_u64(id, 42);
//! let mut r = PrdReader::open(w.path()).unwrap();
//! assert_eq!(r.snapshot().unwrap()[0].value, SlotValue::Counter(42));
//! ```
//!
//! The bytes are documented in `docs/format.md`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};

use crate::checksum::crc32c;
use crate::error::{Error, Result};
use crate::mmap::Map;

/// The magic bytes of a segment file.
pub const PRD_MAGIC: [u8; 8] = *b"ATM-PRD\0";
/// The segment format version this build writes and reads.
pub const PRD_VERSION: u32 = 1;
/// The directory of the store holding segments.
pub const RUN_DIR: &str = "run";

const HEADER_LEN: usize = 128;
const ENTRY_LEN: usize = 64;
const NAME_LEN: usize = 40;
const UNIT_LEN: usize = 12;
const COMMAND_LEN: usize = 16;
// Header fields.
const H_VERSION: usize = 8;
const H_HEADER_LEN: usize = 12;
const H_GENERATION: usize = 16;
const H_SLOTS: usize = 20;
const H_PID: usize = 24;
const H_STARTED: usize = 32;
const H_PROC_START: usize = 40;
const H_TABLE_OFF: usize = 48;
const H_VALUES_OFF: usize = 56;
const H_FILE_LEN: usize = 64;
const H_COMMAND: usize = 72;
const H_TABLE_CRC: usize = 88;
const H_HEADER_CRC: usize = 92;
const H_FLAGS: usize = 96;
const H_HEARTBEAT: usize = 104;

/// Flag: a newer generation replaced this file; open the path again.
const FLAG_RETIRED: u64 = 1;
/// Flag: the owner finished normally.
const FLAG_FINISHED: u64 = 2;

/// Buckets of a [`Histogram`].
pub const HISTOGRAM_BUCKETS: usize = 32;
/// Bytes of text a [`SlotKind::Text`] slot holds.
pub const TEXT_BYTES: usize = 120;

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SlotKind {
    /// A `u64` that only grows (items, bytes, errors).
    Counter = 1,
    /// An `i64` that goes up and down (queue depth, connections).
    Gauge = 2,
    /// An `f64` (a rate, a ratio, seconds).
    Float = 3,
    /// A latency [`Histogram`].
    Histogram = 4,
    /// A kline (the live candle of a series).
    Kline = 5,
    /// Up to [`TEXT_BYTES`] of UTF-8 (a phase, the last error).
    Text = 6,
}

impl SlotKind {
    fn from_u8(b: u8) -> Option<SlotKind> {
        Some(match b {
            1 => SlotKind::Counter,
            2 => SlotKind::Gauge,
            3 => SlotKind::Float,
            4 => SlotKind::Histogram,
            5 => SlotKind::Kline,
            6 => SlotKind::Text,
            _ => return None,
        })
    }

    /// Payload words (8 bytes each) after the sequence word.
    fn words(self) -> usize {
        match self {
            SlotKind::Counter | SlotKind::Gauge | SlotKind::Float => 1,
            SlotKind::Histogram => HISTOGRAM_BUCKETS + 2,
            SlotKind::Kline => 11,
            SlotKind::Text => 1 + TEXT_BYTES / 8,
        }
    }

    /// Lower-case name (`counter`, `gauge`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Counter => "counter",
            SlotKind::Gauge => "gauge",
            SlotKind::Float => "float",
            SlotKind::Histogram => "histogram",
            SlotKind::Kline => "kline",
            SlotKind::Text => "text",
        }
    }
}

/// A slot to register: name (at most 40 bytes, e.g. `fetch.latency_us`),
/// kind, unit (at most 12 bytes, e.g. `pages`, `us`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSpec {
    /// Dotted name.
    pub name: String,
    /// What it holds.
    pub kind: SlotKind,
    /// Unit, for people.
    pub unit: String,
}

impl SlotSpec {
    /// A slot spec.
    pub fn new(name: &str, kind: SlotKind, unit: &str) -> SlotSpec {
        SlotSpec {
            name: name.to_string(),
            kind,
            unit: unit.to_string(),
        }
    }
}

/// A log2 histogram of non-negative values (latencies in µs): bucket `i`
/// counts values whose bit length is `i` (0, 1, 2-3, 4-7, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Counts per bucket.
    pub buckets: [u64; HISTOGRAM_BUCKETS],
    /// Values recorded.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, v: u64) {
        let b = (64 - v.leading_zeros() as usize).min(HISTOGRAM_BUCKETS - 1);
        self.buckets[b] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// The `q` quantile (0..=1), as the upper bound of its bucket; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let want = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return if i == 0 { 0 } else { (1u64 << i) - 1 };
            }
        }
        u64::MAX
    }
}

/// A slot's value.
#[derive(Clone, Debug, PartialEq)]
pub enum SlotValue {
    /// See [`SlotKind::Counter`].
    Counter(u64),
    /// See [`SlotKind::Gauge`].
    Gauge(i64),
    /// See [`SlotKind::Float`].
    Float(f64),
    /// See [`SlotKind::Histogram`].
    Histogram(Box<Histogram>),
    /// See [`SlotKind::Kline`].
    Kline(crate::Kline),
    /// See [`SlotKind::Text`].
    Text(String),
}

/// One slot as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// Dotted name.
    pub name: String,
    /// Its kind.
    pub kind: SlotKind,
    /// Its unit.
    pub unit: String,
    /// Its value.
    pub value: SlotValue,
}

/// Index of a slot in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotId(usize);

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    kind: SlotKind,
    unit: String,
    off: usize,
}

/// The owner's facts, from a segment's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment file.
    pub path: PathBuf,
    /// The owner's process id.
    pub pid: u32,
    /// Its start time in `/proc` (clock ticks since boot), to tell a reused pid.
    pub proc_start: u64,
    /// The subcommand it runs (`sync`, `stream`).
    pub command: String,
    /// When it started, epoch ms.
    pub started_ms: i64,
    /// Its last heartbeat, epoch ms.
    pub heartbeat_ms: i64,
    /// Generation of the file.
    pub generation: u32,
    /// Whether the owner finished normally.
    pub finished: bool,
}

/// Whether a segment's owner runs, finished, or died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessState {
    /// The owner is alive.
    Running,
    /// The owner finished normally.
    Finished,
    /// The owner is gone without finishing (killed, crashed).
    Dead,
}

impl ProcessState {
    /// `running`, `finished` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Running => "running",
            ProcessState::Finished => "finished",
            ProcessState::Dead => "dead",
        }
    }
}

impl SegmentInfo {
    /// The owner's state now.
    pub fn state(&self) -> ProcessState {
        if self.finished {
            ProcessState::Finished
        } else if process_alive(self.pid, self.proc_start) {
            ProcessState::Running
        } else {
            ProcessState::Dead
        }
    }
}

/// Whether process `pid`, started at `proc_start` ticks after boot, still
/// runs (a zombie counts as gone).
pub fn process_alive(pid: u32, proc_start: u64) -> bool {
    match proc_stat(pid) {
        Some((state, start)) => {
            state != 'Z' && state != 'X' && (proc_start == 0 || start == proc_start)
        }
        None => false,
    }
}

/// State letter and start time of `pid`, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name's closing parenthesis: state is the 1st, starttime the 20th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.first()?.chars().next()?, f.get(19)?.parse().ok()?))
}

fn put_str(buf: &mut [u8], s: &str) {
    let n = s.len().min(buf.len());
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
}

fn get_str(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

/// Lays out a segment for `entries` (offsets filled in) and returns its bytes
/// with every slot zero.
fn build(
    command: &str,
    pid: u32,
    proc_start: u64,
    started_ms: i64,
    generation: u32,
    entries: &mut [Entry],
) -> Vec<u8> {
    let table_off = HEADER_LEN;
    let values_off = table_off + entries.len() * ENTRY_LEN;
    let mut off = values_off;
    for e in entries.iter_mut() {
        e.off = off;
        off += 8 * (1 + e.kind.words());
    }
    let mut b = vec![0u8; off];
    b[..8].copy_from_slice(&PRD_MAGIC);
    b[H_VERSION..H_VERSION + 4].copy_from_slice(&PRD_VERSION.to_le_bytes());
    b[H_HEADER_LEN..H_HEADER_LEN + 4].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    b[H_GENERATION..H_GENERATION + 4].copy_from_slice(&generation.to_le_bytes());
    b[H_SLOTS..H_SLOTS + 4].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    b[H_PID..H_PID + 4].copy_from_slice(&pid.to_le_bytes());
    b[H_STARTED..H_STARTED + 8].copy_from_slice(&started_ms.to_le_bytes());
    b[H_PROC_START..H_PROC_START + 8].copy_from_slice(&proc_start.to_le_bytes());
    b[H_TABLE_OFF..H_TABLE_OFF + 8].copy_from_slice(&(table_off as u64).to_le_bytes());
    b[H_VALUES_OFF..H_VALUES_OFF + 8].copy_from_slice(&(values_off as u64).to_le_bytes());
    b[H_FILE_LEN..H_FILE_LEN + 8].copy_from_slice(&(off as u64).to_le_bytes());
    put_str(&mut b[H_COMMAND..H_COMMAND + COMMAND_LEN], command);
    for (i, e) in entries.iter().enumerate() {
        let t = table_off + i * ENTRY_LEN;
        put_str(&mut b[t..t + NAME_LEN], &e.name);
        put_str(&mut b[t + NAME_LEN..t + NAME_LEN + UNIT_LEN], &e.unit);
        b[t + 52] = e.kind as u8;
        b[t + 54..t + 56].copy_from_slice(&(e.kind.words() as u16).to_le_bytes());
        b[t + 56..t + 60].copy_from_slice(&(e.off as u32).to_le_bytes());
    }
    let table_crc = crc32c(&b[table_off..values_off]);
    b[H_TABLE_CRC..H_TABLE_CRC + 4].copy_from_slice(&table_crc.to_le_bytes());
    let header_crc = crc32c(&b[..H_HEADER_CRC]);
    b[H_HEADER_CRC..H_HEADER_CRC + 4].copy_from_slice(&header_crc.to_le_bytes());
    b
}

/// The writing side of a PRD (pre-registered data) segment, a
/// shared-memory segment of named slots: owned by one thread of one process.
pub struct PrdWriter {
    path: PathBuf,
    map: Map,
    _file: File,
    entries: Vec<Entry>,
    by_name: HashMap<String, SlotId>,
    command: String,
    pid: u32,
    proc_start: u64,
    started_ms: i64,
    generation: u32,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl PrdWriter {
    /// Creates this process's segment in `<store_dir>/run/` with `slots`.
    pub fn create(store_dir: &Path, command: &str, slots: &[SlotSpec]) -> Result<PrdWriter> {
        let dir = store_dir.join(RUN_DIR);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let pid = std::process::id();
        let started_ms = now_ms();
        let path = dir.join(format!("{pid}-{started_ms}.prd"));
        let proc_start = proc_stat(pid).map(|s| s.1).unwrap_or(0);
        let mut w = PrdWriter::write_generation(
            &path,
            command,
            pid,
            proc_start,
            started_ms,
            1,
            Vec::new(),
            slots,
        )?;
        w.heartbeat();
        Ok(w)
    }

    /// Writes generation `generation` at `path` (through a temporary file
    /// and a rename), holding `old` entries (values copied by the caller) and
    /// new `slots`.
    #[allow(clippy::too_many_arguments)]
    fn write_generation(
        path: &Path,
        command: &str,
        pid: u32,
        proc_start: u64,
        started_ms: i64,
        generation: u32,
        old: Vec<Entry>,
        slots: &[SlotSpec],
    ) -> Result<PrdWriter> {
        let mut entries = old;
        for s in slots {
            if s.name.len() > NAME_LEN || s.unit.len() > UNIT_LEN || s.name.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "PRD slot {:?} ({:?}): names are 1-{NAME_LEN} bytes, units at most {UNIT_LEN}",
                    s.name, s.unit
                )));
            }
            if entries.iter().any(|e| e.name == s.name) {
                continue;
            }
            entries.push(Entry {
                name: s.name.clone(),
                kind: s.kind,
                unit: s.unit.clone(),
                off: 0,
            });
        }
        let bytes = build(
            command,
            pid,
            proc_start,
            started_ms,
            generation,
            &mut entries,
        );
        let tmp = path.with_extension("prd.new");
        {
            let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
            f.write_all(&bytes).map_err(io("write", &tmp))?;
        }
        std::fs::rename(&tmp, path).map_err(io("rename", path))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io("open", path))?;
        let map = Map::new(&file, bytes.len() as u64, true).map_err(io("map", path))?;
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), SlotId(i)))
            .collect();
        Ok(PrdWriter {
            path: path.to_path_buf(),
            map,
            _file: file,
            entries,
            by_name,
            command: command.to_string(),
            pid,
            proc_start,
            started_ms,
            generation,
        })
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of slot `name`.
    pub fn slot(&self, name: &str) -> Option<SlotId> {
        self.by_name.get(name).copied()
    }

    /// The id of slot `name`, registering it (with a new generation) if new.
    pub fn slot_or_add(&mut self, spec: &SlotSpec) -> Result<SlotId> {
        if let Some(id) = self.slot(&spec.name) {
            return Ok(id);
        }
        self.add_slots(std::slice::from_ref(spec))?;
        self.slot(&spec.name)
            .ok_or_else(|| Error::InvalidInput(format!("PRD slot {} not added", spec.name)))
    }

    /// Registers more slots: writes the next generation of the file with
    /// every current value copied, then retires the old mapping. Existing
    /// [`SlotId`]s stay valid.
    pub fn add_slots(&mut self, slots: &[SlotSpec]) -> Result<()> {
        if slots.iter().all(|s| self.by_name.contains_key(&s.name)) {
            return Ok(());
        }
        let values: Vec<Vec<u64>> = self.entries.iter().map(|e| self.read_words(e)).collect();
        let flags = self.map.atomic_u64(H_FLAGS).load(Ordering::Relaxed) & FLAG_FINISHED;
        let next = PrdWriter::write_generation(
            &self.path,
            &self.command,
            self.pid,
            self.proc_start,
            self.started_ms,
            self.generation + 1,
            self.entries.clone(),
            slots,
        )?;
        for (i, words) in values.iter().enumerate() {
            next.store_words(SlotId(i), words);
        }
        next.map.atomic_u64(H_FLAGS).store(flags, Ordering::Relaxed);
        next.map
            .atomic_u64(H_HEARTBEAT)
            .store(now_ms() as u64, Ordering::Release);
        let old = std::mem::replace(self, next);
        old.map
            .atomic_u64(H_FLAGS)
            .fetch_or(FLAG_RETIRED, Ordering::Release);
        Ok(())
    }

    fn read_words(&self, e: &Entry) -> Vec<u64> {
        (0..e.kind.words())
            .map(|w| {
                self.map
                    .atomic_u64(e.off + 8 + 8 * w)
                    .load(Ordering::Relaxed)
            })
            .collect()
    }

    /// Publishes `words` as slot `id`'s payload under its seqlock.
    fn store_words(&self, id: SlotId, words: &[u64]) {
        let Some(e) = self.entries.get(id.0) else {
            return;
        };
        let seq = self.map.atomic_u64(e.off);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s.wrapping_add(1) | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (w, &v) in words.iter().take(e.kind.words()).enumerate() {
            self.map
                .atomic_u64(e.off + 8 + 8 * w)
                .store(v, Ordering::Relaxed);
        }
        seq.store((s.wrapping_add(1) | 1).wrapping_add(1), Ordering::Release);
    }

    /// Sets a counter.
    pub fn set_u64(&self, id: SlotId, v: u64) {
        self.store_words(id, &[v]);
    }

    /// Sets a gauge.
    pub fn set_i64(&self, id: SlotId, v: i64) {
        self.store_words(id, &[v as u64]);
    }

    /// Sets a float.
    pub fn set_f64(&self, id: SlotId, v: f64) {
        self.store_words(id, &[v.to_bits()]);
    }

    /// Sets a histogram.
    pub fn set_histogram(&self, id: SlotId, h: &Histogram) {
        let mut w = [0u64; HISTOGRAM_BUCKETS + 2];
        w[..HISTOGRAM_BUCKETS].copy_from_slice(&h.buckets);
        w[HISTOGRAM_BUCKETS] = h.count;
        w[HISTOGRAM_BUCKETS + 1] = h.sum;
        self.store_words(id, &w);
    }

    /// Sets a kline.
    pub fn set_kline(&self, id: SlotId, k: &crate::Kline) {
        let mut w = [0u64; 11];
        w[0] = k.open_time as u64;
        w[1] = k.close_time as u64;
        for (i, v) in k.values.iter().enumerate() {
            w[2 + i] = v.to_bits();
        }
        w[10] = k.trades as u64;
        self.store_words(id, &w);
    }

    /// Sets a text (cut to [`TEXT_BYTES`] at a character boundary).
    pub fn set_text(&self, id: SlotId, s: &str) {
        let mut n = s.len().min(TEXT_BYTES);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let mut bytes = [0u8; TEXT_BYTES];
        bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        let mut w = [0u64; 1 + TEXT_BYTES / 8];
        w[0] = n as u64;
        for (i, c) in bytes.chunks_exact(8).enumerate() {
            w[1 + i] = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        }
        self.store_words(id, &w);
    }

    /// Stamps the heartbeat with the time now.
    pub fn heartbeat(&mut self) {
        self.map
            .atomic_u64(H_HEARTBEAT)
            .store(now_ms() as u64, Ordering::Release);
    }

    /// Marks the owner finished (it stays listed, `finished`, until cleaned up).
    pub fn finish(&mut self) {
        self.heartbeat();
        self.map
            .atomic_u64(H_FLAGS)
            .fetch_or(FLAG_FINISHED, Ordering::Release);
    }
}

/// The reading side of a PRD (pre-registered data) segment, a
/// shared-memory segment of named slots: any process, any number of them.
pub struct PrdReader {
    path: PathBuf,
    map: Map,
    _file: File,
    info: SegmentInfo,
    entries: Vec<Entry>,
}

impl PrdReader {
    /// Opens and checks a segment file.
    pub fn open(path: &Path) -> Result<PrdReader> {
        let file = File::open(path).map_err(io("open", path))?;
        let len = file.metadata().map_err(io("stat", path))?.len();
        let corrupt = |detail: String| Error::Corrupt {
            path: path.to_path_buf(),
            detail,
        };
        if len < HEADER_LEN as u64 {
            return Err(corrupt(format!(
                "segment is {len} bytes, shorter than its {HEADER_LEN}-byte header"
            )));
        }
        let head_map = Map::new(&file, HEADER_LEN as u64, false).map_err(io("map", path))?;
        let head = head_map.bytes(0, HEADER_LEN).to_vec();
        if head[..8] != PRD_MAGIC {
            return Err(Error::BadMagic {
                path: path.to_path_buf(),
                kind: "PRD segment",
            });
        }
        let version = u32_at(&head, H_VERSION);
        if version != PRD_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: PRD_VERSION,
            });
        }
        if crc32c(&head[..H_HEADER_CRC]) != u32_at(&head, H_HEADER_CRC) {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let file_len = u64_at(&head, H_FILE_LEN);
        let (table_off, values_off) = (
            u64_at(&head, H_TABLE_OFF) as usize,
            u64_at(&head, H_VALUES_OFF) as usize,
        );
        let slots = u32_at(&head, H_SLOTS) as usize;
        if file_len > len
            || table_off != HEADER_LEN
            || values_off != table_off + slots * ENTRY_LEN
            || values_off as u64 > file_len
        {
            return Err(corrupt(format!(
                "layout does not fit the file ({len} bytes)"
            )));
        }
        let map = Map::new(&file, file_len, false).map_err(io("map", path))?;
        let table = map.bytes(table_off, values_off - table_off);
        if crc32c(table) != u32_at(&head, H_TABLE_CRC) {
            return Err(corrupt("slot table checksum mismatch".into()));
        }
        let mut entries = Vec::with_capacity(slots);
        for i in 0..slots {
            let t = &table[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
            let kind = SlotKind::from_u8(t[52])
                .ok_or_else(|| corrupt(format!("slot {i} has unknown kind {}", t[52])))?;
            let off = u32_at(t, 56) as usize;
            if off < values_off
                || !off.is_multiple_of(8)
                || (off + 8 * (1 + kind.words())) as u64 > file_len
            {
                return Err(corrupt(format!("slot {i} lies outside the values")));
            }
            entries.push(Entry {
                name: get_str(&t[..NAME_LEN]),
                unit: get_str(&t[NAME_LEN..NAME_LEN + UNIT_LEN]),
                kind,
                off,
            });
        }
        let info = SegmentInfo {
            path: path.to_path_buf(),
            pid: u32_at(&head, H_PID),
            proc_start: u64_at(&head, H_PROC_START),
            command: get_str(&head[H_COMMAND..H_COMMAND + COMMAND_LEN]),
            started_ms: u64_at(&head, H_STARTED) as i64,
            heartbeat_ms: 0,
            generation: u32_at(&head, H_GENERATION),
            finished: false,
        };
        let mut r = PrdReader {
            path: path.to_path_buf(),
            map,
            _file: file,
            info,
            entries,
        };
        r.refresh_info();
        Ok(r)
    }

    fn refresh_info(&mut self) -> u64 {
        let flags = self.map.atomic_u64(H_FLAGS).load(Ordering::Acquire);
        self.info.heartbeat_ms = self.map.atomic_u64(H_HEARTBEAT).load(Ordering::Acquire) as i64;
        self.info.finished = flags & FLAG_FINISHED != 0;
        flags
    }

    /// The owner's facts as of now (heartbeat and finished flag re-read).
    pub fn info(&mut self) -> &SegmentInfo {
        self.refresh_info();
        &self.info
    }

    /// Every slot's name, kind, unit and current value. Follows the owner to
    /// a newer generation when the slots grew.
    pub fn snapshot(&mut self) -> Result<Vec<Slot>> {
        if self.refresh_info() & FLAG_RETIRED != 0 {
            *self = PrdReader::open(&self.path)?;
        }
        Ok(self
            .entries
            .iter()
            .map(|e| Slot {
                name: e.name.clone(),
                kind: e.kind,
                unit: e.unit.clone(),
                value: self.read_entry(e),
            })
            .collect())
    }

    /// The slots' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// Reads one slot by index (see [`PrdReader::names`]).
    pub fn read(&self, index: usize) -> Option<SlotValue> {
        self.entries.get(index).map(|e| self.read_entry(e))
    }

    fn read_entry(&self, e: &Entry) -> SlotValue {
        let n = e.kind.words();
        let mut w = [0u64; HISTOGRAM_BUCKETS + 2];
        let seq = self.map.atomic_u64(e.off);
        let mut spins = 0u32;
        loop {
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                for (i, slot) in w.iter_mut().enumerate().take(n) {
                    *slot = self
                        .map
                        .atomic_u64(e.off + 8 + 8 * i)
                        .load(Ordering::Relaxed);
                }
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == s1 {
                    break;
                }
            }
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            }
        }
        decode(e.kind, &w[..n])
    }
}

fn decode(kind: SlotKind, w: &[u64]) -> SlotValue {
    match kind {
        SlotKind::Counter => SlotValue::Counter(w[0]),
        SlotKind::Gauge => SlotValue::Gauge(w[0] as i64),
        SlotKind::Float => SlotValue::Float(f64::from_bits(w[0])),
        SlotKind::Histogram => {
            let mut h = Histogram::default();
            h.buckets.copy_from_slice(&w[..HISTOGRAM_BUCKETS]);
            h.count = w[HISTOGRAM_BUCKETS];
            h.sum = w[HISTOGRAM_BUCKETS + 1];
            SlotValue::Histogram(Box::new(h))
        }
        SlotKind::Kline => {
            let mut values = [0.0; crate::FLOAT_COLUMNS];
            for (i, v) in values.iter_mut().enumerate() {
                *v = f64::from_bits(w[2 + i]);
            }
            SlotValue::Kline(crate::Kline {
                open_time: w[0] as i64,
                close_time: w[1] as i64,
                values,
                trades: w[10] as u32,
            })
        }
        SlotKind::Text => {
            let n = (w[0] as usize).min(TEXT_BYTES);
            let bytes: Vec<u8> = w[1..]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .take(n)
                .collect();
            SlotValue::Text(String::from_utf8_lossy(&bytes).into_owned())
        }
    }
}

/// The segment files in `<store_dir>/run/`, oldest first.
pub fn list_segments(store_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = store_dir.join(RUN_DIR);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list", &dir)(e)),
    };
    let mut out: Vec<(i64, PathBuf)> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "prd"))
        .map(|p| {
            let started = p
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.split_once('-'))
                .and_then(|(_, t)| t.parse().ok());
            (started.unwrap_or(0), p)
        })
        .collect();
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

/// Removes the segments of ended processes (finished or dead) whose last
/// heartbeat is older than `max_age_ms`, and unreadable ones as old; returns
/// how many. Run by each new publishing process.
pub fn cleanup(store_dir: &Path, max_age_ms: i64) -> Result<usize> {
    let now = now_ms();
    let mut removed = 0;
    for path in list_segments(store_dir)? {
        let old = match PrdReader::open(&path) {
            Ok(mut r) => {
                let info = r.info().clone();
                info.state() != ProcessState::Running && now - info.heartbeat_ms > max_age_ms
            }
            Err(_) => std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_millis() as i64 > max_age_ms),
        };
        if old && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<SlotSpec> {
        vec![
            SlotSpec::new("fetch.items_in", SlotKind::Counter, "pages"),
            SlotSpec::new("queue", SlotKind::Gauge, "items"),
            SlotSpec::new("rate", SlotKind::Float, "1/s"),
            SlotSpec::new("latency", SlotKind::Histogram, "us"),
            SlotSpec::new("live", SlotKind::Kline, ""),
            SlotSpec::new("phase", SlotKind::Text, ""),
        ]
    }

    #[test]
    fn every_kind_round_trips_and_generations_keep_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PrdWriter::create(dir.path(), "sync", &specs()).unwrap();
        let id = |w: &PrdWriter, n: &str| w.slot(n).unwrap();
        w.set_u64(id(&w, "fetch.items_in"), 7);
        w.set_i64(id(&w, "queue"), -3);
        w.set_f64(id(&w, "rate"), 1.5);
        let mut h = Histogram::default();
        for v in [0, 1, 3, 900, 1000, 70_000] {
            h.record(v);
        }
        w.set_histogram(id(&w, "latency"), &h);
        let k = crate::Kline {
            open_time: 60_000,
            close_time: 119_999,
            values: [1.0, 2.0, 0.5, 1.5, 10.0, 15.0, 4.0, 6.0],
            trades: 9,
        };
        w.set_kline(id(&w, "live"), &k);
        w.set_text(
            id(&w, "phase"),
            "fetching — ünïcode and a long tail that will be cut at one hundred and twenty bytes, exactly on a character boundary ……",
        );
        let mut r = PrdReader::open(w.path()).unwrap();
        let snap = r.snapshot().unwrap();
        assert_eq!(snap[0].value, SlotValue::Counter(7));
        assert_eq!(snap[1].value, SlotValue::Gauge(-3));
        assert_eq!(snap[2].value, SlotValue::Float(1.5));
        assert_eq!(snap[3].value, SlotValue::Histogram(Box::new(h.clone())));
        assert_eq!(snap[4].value, SlotValue::Kline(k));
        match &snap[5].value {
            SlotValue::Text(t) => assert!(
                t.starts_with("fetching — ünïcode") && t.len() <= TEXT_BYTES,
                "{t}"
            ),
            v => panic!("{v:?}"),
        }
        assert_eq!(
            (snap[0].unit.as_str(), snap[0].kind),
            ("pages", SlotKind::Counter)
        );
        assert_eq!(r.info().command, "sync");
        assert_eq!(r.info().state(), ProcessState::Running);
        // A new generation: old ids and values stay, the reader follows.
        let old = id(&w, "fetch.items_in");
        let added = w
            .slot_or_add(&SlotSpec::new("symbols.XRPUSDT", SlotKind::Kline, ""))
            .unwrap();
        w.set_u64(old, 8);
        w.set_kline(added, &k);
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.len(), 7);
        assert_eq!(snap[0].value, SlotValue::Counter(8));
        assert_eq!(snap[1].value, SlotValue::Gauge(-3));
        assert_eq!(snap[6].value, SlotValue::Kline(k));
        assert_eq!(r.info().generation, 2);
        w.finish();
        assert_eq!(r.info().state(), ProcessState::Finished);
        assert_eq!(
            list_segments(dir.path()).unwrap(),
            vec![w.path().to_path_buf()]
        );
        assert_eq!(
            cleanup(dir.path(), 3_600_000).unwrap(),
            0,
            "a fresh finished segment stays listed"
        );
        assert_eq!(cleanup(dir.path(), -1).unwrap(), 1);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=100 {
            h.record(v * 10);
        }
        assert_eq!(h.count, 100);
        let p50 = h.quantile(0.5);
        assert!((500..=1023).contains(&p50), "{p50}");
        assert!(h.quantile(0.99) >= 990 && h.quantile(0.99) <= 1023);
        let mut g = Histogram::default();
        g.merge(&h);
        assert_eq!(g, h);
    }

    #[test]
    fn damaged_segments_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let w = PrdWriter::create(dir.path(), "sync", &specs()).unwrap();
        let good = std::fs::read(w.path()).unwrap();
        let p = dir.path().join("x.prd");
        for (what, mutate) in [
            (
                "bad magic",
                Box::new(|b: &mut Vec<u8>| b[0] = b'X') as Box<dyn Fn(&mut Vec<u8>)>,
            ),
            ("version 9", Box::new(|b: &mut Vec<u8>| b[H_VERSION] = 9)),
            ("header checksum", Box::new(|b: &mut Vec<u8>| b[H_PID] ^= 1)),
            (
                "slot table checksum",
                Box::new(|b: &mut Vec<u8>| b[HEADER_LEN + 3] ^= 1),
            ),
            ("shorter than", Box::new(|b: &mut Vec<u8>| b.truncate(20))),
        ] {
            let mut b = good.clone();
            mutate(&mut b);
            std::fs::write(&p, &b).unwrap();
            let e = PrdReader::open(&p)
                .err()
                .unwrap_or_else(|| panic!("{what} accepted"))
                .to_string();
            assert!(e.contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn a_dead_owner_is_told_from_a_live_one() {
        assert!(process_alive(
            std::process::id(),
            proc_stat(std::process::id()).unwrap().1
        ));
        assert!(
            !process_alive(std::process::id(), 1),
            "same pid, other start time: a reused pid"
        );
        assert!(!process_alive(u32::MAX - 1, 0));
    }
}
