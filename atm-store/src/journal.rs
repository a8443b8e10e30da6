//! The redo journal: how a commit becomes durable with one `fdatasync`.
//!
//! Each writer owns one journal file under `journal/`, locked (`flock`) for
//! the writer's life. A commit appends one record per touched series and a
//! commit record, all in one `pwrite`, then syncs the journal once: that is
//! the durability point, shared by every series in the commit (group commit).
//! Only then are the series files changed, in the page cache, where readers in
//! other processes see them at once. A checkpoint later syncs those series
//! files and starts a new journal generation. After a crash, replaying the
//! committed records of the current generation restores every series file to
//! its last committed state; records after the last commit record are an
//! uncommitted tail and are dropped.
//!
//! ```text
//! header (4 KiB): magic "ATMJRNL\0", version u32, _ u32, id u64, generation u64,
//!                 pid u32, ... crc32c u32 at 4092
//! record:         len u32, kind u8, _ [3], generation u64, crc32c u32, _ u32,
//!                 payload (len bytes), zero padding to 8 bytes
//! ```

use crate::checksum;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{nix_io, Error, Result};
use crate::layout::{get_u32, get_u64, PAGE};
use crate::series_file::SeriesBatch;
use crate::{Interval, Market, Precision, SeriesKey, Symbol};
use crate::{Kline, FLOAT_COLUMNS};

/// Magic bytes of a journal file.
pub const JOURNAL_MAGIC: [u8; 8] = *b"ATMJRNL\0";
/// Journal format version.
pub const JOURNAL_VERSION: u32 = 1;
const REC_HEADER: usize = 24;
const KIND_SERIES: u8 = 1;
const KIND_COMMIT: u8 = 2;
/// Space reserved ahead of the write position, so appends rarely grow the file.
const GROW_STEP: u64 = 16 << 20;

/// One committed group of series batches, as read back by replay.
pub(crate) type Commit = Vec<(SeriesKey, Precision, SeriesBatch)>;

/// A writer's open journal.
pub(crate) struct Journal {
    pub path: PathBuf,
    pub id: u64,
    file: File,
    generation: u64,
    write_off: u64,
    allocated: u64,
}

fn encode_header(id: u64, generation: u64) -> Vec<u8> {
    let mut b = vec![0u8; PAGE as usize];
    b[..8].copy_from_slice(&JOURNAL_MAGIC);
    b[8..12].copy_from_slice(&JOURNAL_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&id.to_le_bytes());
    b[24..32].copy_from_slice(&generation.to_le_bytes());
    b[32..36].copy_from_slice(&std::process::id().to_le_bytes());
    let crc = checksum::crc32c(&b[..4092]);
    b[4092..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Parses a journal header: (id, generation).
pub(crate) fn decode_header(b: &[u8], path: &Path) -> Result<(u64, u64)> {
    if b.len() < PAGE as usize || b[..8] != JOURNAL_MAGIC {
        return Err(Error::BadMagic {
            path: path.into(),
            kind: "journal",
        });
    }
    let v = get_u32(b, 8);
    if v != JOURNAL_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.into(),
            found: v,
            supported: JOURNAL_VERSION,
        });
    }
    if checksum::crc32c(&b[..4092]) != get_u32(b, 4092) {
        return Err(Error::corrupt(path, "journal header checksum mismatch"));
    }
    Ok((get_u64(b, 16), get_u64(b, 24)))
}

impl Journal {
    /// Creates a fresh journal at `path` (already locked by the caller's handle `file`).
    pub fn create(path: &Path, file: File, id: u64) -> Result<Journal> {
        let mut j = Journal {
            path: path.to_path_buf(),
            id,
            file,
            generation: 1,
            write_off: PAGE,
            allocated: 0,
        };
        j.reserve(GROW_STEP)?;
        j.file
            .write_all_at(&encode_header(id, 1), 0)
            .map_err(|e| Error::io("write journal header", path, e))?;
        j.file
            .sync_all()
            .map_err(|e| Error::io("sync journal", path, e))?;
        Ok(j)
    }

    fn reserve(&mut self, upto: u64) -> Result<()> {
        if upto <= self.allocated {
            return Ok(());
        }
        let want = upto.div_ceil(GROW_STEP) * GROW_STEP;
        nix::fcntl::fallocate(
            &self.file,
            nix::fcntl::FallocateFlags::empty(),
            0,
            want as i64,
        )
        .map_err(|e| nix_io("reserve journal space in", &self.path, e))?;
        self.allocated = want;
        Ok(())
    }

    /// Bytes of records written in the current generation.
    pub fn used(&self) -> u64 {
        self.write_off - PAGE
    }

    /// Appends the commit's records and syncs: after this returns, the commit
    /// survives a crash. Fails (changing nothing durable) on a full disk.
    pub fn append_commit(
        &mut self,
        batches: &[(&SeriesKey, Precision, &SeriesBatch)],
        commit_seq: u64,
    ) -> Result<()> {
        let mut buf = Vec::new();
        for (key, precision, batch) in batches {
            let payload = encode_batch(key, *precision, batch);
            push_record(&mut buf, KIND_SERIES, self.generation, &payload);
        }
        let mut c = commit_seq.to_le_bytes().to_vec();
        c.extend_from_slice(&(batches.len() as u32).to_le_bytes());
        push_record(&mut buf, KIND_COMMIT, self.generation, &c);
        self.reserve(self.write_off + buf.len() as u64)?;
        if let Some(n) = crate::fault::journal_torn_at() {
            let _ = self
                .file
                .write_all_at(&buf[..n.min(buf.len())], self.write_off);
            std::process::abort();
        }
        self.file
            .write_all_at(&buf, self.write_off)
            .map_err(|e| Error::io("write journal", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io("sync journal", &self.path, e))?;
        self.write_off += buf.len() as u64;
        Ok(())
    }

    /// Starts a new generation: every earlier record becomes obsolete. Called
    /// once the series files the records describe are synced.
    pub fn reset(&mut self) -> Result<()> {
        self.generation += 1;
        self.file
            .write_all_at(&encode_header(self.id, self.generation), 0)
            .map_err(|e| Error::io("write journal header", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io("sync journal", &self.path, e))?;
        self.write_off = PAGE;
        Ok(())
    }
}

fn push_record(buf: &mut Vec<u8>, kind: u8, generation: u64, payload: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&[kind, 0, 0, 0]);
    buf.extend_from_slice(&generation.to_le_bytes());
    buf.extend_from_slice(&[0; 8]);
    buf.extend_from_slice(payload);
    let crc = record_crc(&buf[start..]);
    buf[start + 16..start + 20].copy_from_slice(&crc.to_le_bytes());
    while !buf.len().is_multiple_of(8) {
        buf.push(0);
    }
}

fn record_crc(rec: &[u8]) -> u32 {
    let c = checksum::crc32c(&rec[4..16]);
    let c = checksum::crc32c_append(c, &(rec.len() as u32 - REC_HEADER as u32).to_le_bytes());
    checksum::crc32c_append(c, &rec[REC_HEADER..])
}

fn encode_batch(key: &SeriesKey, precision: Precision, batch: &SeriesBatch) -> Vec<u8> {
    let sym = key.symbol.as_str().as_bytes();
    let mut b = Vec::with_capacity(
        16 + sym.len() + batch.puts.len() * (13 + FLOAT_COLUMNS * precision.width()),
    );
    b.extend_from_slice(&[
        key.market.code(),
        key.interval.code(),
        precision.width() as u8,
        sym.len() as u8,
    ]);
    b.extend_from_slice(sym);
    b.extend_from_slice(&(batch.puts.len() as u32).to_le_bytes());
    b.extend_from_slice(&(batch.missing.len() as u32).to_le_bytes());
    b.extend_from_slice(&(batch.direct.len() as u32).to_le_bytes());
    for (slot, k) in &batch.puts {
        b.extend_from_slice(&slot.to_le_bytes());
        let regular = (
            key.interval.open_time(*slot),
            key.interval.close_time(*slot),
        ) == (k.open_time, k.close_time);
        if regular {
            b.push(0);
        } else {
            b.push(1);
            b.extend_from_slice(&k.open_time.to_le_bytes());
            b.extend_from_slice(&k.close_time.to_le_bytes());
        }
        for v in k.values {
            match precision {
                Precision::F32 => b.extend_from_slice(&(v as f32).to_le_bytes()),
                Precision::F64 => b.extend_from_slice(&v.to_le_bytes()),
            }
        }
        b.extend_from_slice(&k.trades.to_le_bytes());
    }
    for (a, z) in batch.missing.iter().chain(&batch.direct) {
        b.extend_from_slice(&a.to_le_bytes());
        b.extend_from_slice(&z.to_le_bytes());
    }
    b
}

/// A bounds-checked little-endian cursor over untrusted bytes.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|s| get_u32(s, 0))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|s| get_u64(s, 0))
    }
}

/// Decodes one series record; `None` if it is malformed.
fn decode_batch(p: &[u8]) -> Option<(SeriesKey, Precision, SeriesBatch)> {
    let mut c = Cursor { b: p, at: 0 };
    let market = Market::from_code(c.u8()?)?;
    let interval = Interval::from_code(c.u8()?)?;
    let precision = match c.u8()? {
        4 => Precision::F32,
        8 => Precision::F64,
        _ => return None,
    };
    let n = c.u8()? as usize;
    let sym = std::str::from_utf8(c.take(n)?).ok()?;
    let key = SeriesKey::new(market, Symbol::new(sym).ok()?, interval).ok()?;
    let (np, nm, nd) = (c.u32()? as usize, c.u32()? as usize, c.u32()? as usize);
    let cap = interval.capacity();
    let mut puts = Vec::with_capacity(np.min(p.len() / 13));
    for _ in 0..np {
        let slot = c.u64()?;
        if slot >= cap || puts.last().is_some_and(|(s, _): &(u64, Kline)| *s >= slot) {
            return None;
        }
        let (open_time, close_time) = match c.u8()? {
            0 => (interval.open_time(slot), interval.close_time(slot)),
            1 => (c.u64()? as i64, c.u64()? as i64),
            _ => return None,
        };
        let mut values = [0.0; FLOAT_COLUMNS];
        for v in &mut values {
            *v = match precision {
                Precision::F32 => f32::from_le_bytes(c.take(4)?.try_into().ok()?) as f64,
                Precision::F64 => f64::from_le_bytes(c.take(8)?.try_into().ok()?),
            };
        }
        let trades = c.u32()?;
        puts.push((
            slot,
            Kline {
                open_time,
                close_time,
                values,
                trades,
            },
        ));
    }
    let mut ranges = |n: usize| -> Option<Vec<(u64, u64)>> {
        let mut v = Vec::with_capacity(n.min(p.len() / 16));
        for _ in 0..n {
            let (a, z) = (c.u64()?, c.u64()?);
            if a > z || z >= cap {
                return None;
            }
            v.push((a, z));
        }
        Some(v)
    };
    let missing = ranges(nm)?;
    let direct = ranges(nd)?;
    (c.at == p.len()).then_some((
        key,
        precision,
        SeriesBatch {
            puts,
            missing,
            direct,
            known_crcs: Default::default(),
        },
    ))
}

/// Reads the committed groups of a journal image (the whole file's bytes).
/// Stops at the first record that is torn, from an older generation, or
/// malformed; groups without a commit record are dropped. Never panics on
/// garbage (it is a fuzz target).
pub fn read_commits(bytes: &[u8], path: &Path) -> Result<(u64, Vec<CommitGroup>)> {
    let (id, generation) = decode_header(bytes, path)?;
    let mut out = Vec::new();
    let mut pending: Commit = Vec::new();
    let mut at = PAGE as usize;
    while let Some(h) = bytes.get(at..at + REC_HEADER) {
        let len = get_u32(h, 0) as usize;
        let kind = h[4];
        let Some(end) = (at + REC_HEADER)
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
        else {
            break;
        };
        let rec = &bytes[at..end];
        if get_u64(h, 8) != generation || record_crc(rec) != get_u32(h, 16) {
            break;
        }
        let payload = &rec[REC_HEADER..];
        match kind {
            KIND_SERIES => match decode_batch(payload) {
                Some(b) => pending.push(b),
                None => break,
            },
            KIND_COMMIT if payload.len() == 12 && get_u32(payload, 8) as usize == pending.len() => {
                out.push(CommitGroup {
                    seq: get_u64(payload, 0),
                    batches: std::mem::take(&mut pending),
                });
            }
            _ => break,
        }
        at = end.div_ceil(8) * 8;
    }
    Ok((id, out))
}

/// One committed group read back from a journal.
#[derive(Debug)]
pub struct CommitGroup {
    /// The writer's commit number.
    pub seq: u64,
    pub(crate) batches: Commit,
}

impl CommitGroup {
    /// Number of series the commit touched.
    pub fn series(&self) -> usize {
        self.batches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn sample() -> (SeriesKey, SeriesBatch) {
        let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
        let k = |slot: u64, v: f64| Kline {
            open_time: Interval::M1.open_time(slot),
            close_time: Interval::M1.close_time(slot),
            values: [v; 8],
            trades: 7,
        };
        let mut odd = k(12, 2.5);
        odd.close_time -= 1000;
        (
            key,
            SeriesBatch {
                puts: vec![(10, k(10, 1.5)), (12, odd)],
                missing: vec![(20, 30)],
                direct: vec![(40, 50)],
                known_crcs: Default::default(),
            },
        )
    }

    #[test]
    fn committed_groups_round_trip_and_torn_tails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.wal");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let mut j = Journal::create(&path, f, 42).unwrap();
        let (key, batch) = sample();
        j.append_commit(&[(&key, Precision::F32, &batch)], 1)
            .unwrap();
        j.append_commit(
            &[
                (&key, Precision::F32, &batch),
                (&key, Precision::F32, &batch),
            ],
            2,
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (id, groups) = read_commits(&bytes, &path).unwrap();
        assert_eq!(id, 42);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].batches.len(), 2);
        assert_eq!(groups[0].batches[0].2, batch);
        // Tear the last commit: only the first survives.
        let end = PAGE as usize + j.used() as usize;
        let mut torn = bytes.clone();
        torn[end - 10] ^= 0xff; // inside the commit record's payload
        assert_eq!(read_commits(&torn, &path).unwrap().1.len(), 1);
        // After a reset, old records are ignored.
        j.reset().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(read_commits(&bytes, &path).unwrap().1.is_empty());
    }
}
