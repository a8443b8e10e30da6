//! Seqlocked reads: block-table entries, read sections over a window of
//! slots, `pread` copies, and copies of windows that touch cold blocks.

use std::os::unix::fs::FileExt;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::checksum;
use crate::error::{Error, Result};
use crate::layout::{entry, BLOCK_CRCS, BLOCK_SLOTS, COLUMNS};
use crate::FLOAT_COLUMNS;

/// How long a reader waits for a block whose writer is mid-update before it
/// concludes the writer died there.
const STUCK_AFTER: Duration = Duration::from_secs(2);

impl SeriesFile {
    /// Waits until `seq` is even and returns it; errors if a dead writer left it odd.
    pub(super) fn stable<T: Copy + Into<u64>>(&self, load: impl Fn() -> T) -> Result<T> {
        let s = load();
        if s.into() % 2 == 0 {
            return Ok(s); // the usual case: no clock read (a read takes this per block)
        }
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
                return Err(Error::NeedsRecovery {
                    path: self.path.clone(),
                });
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
            if !e.is_empty()
                && self.entry_crc(b) != self.u32_at(self.layout.entry_off(b) + entry::CRC as u64)
            {
                if seq_a.load(Ordering::Acquire) != seq {
                    continue;
                }
                return Err(Error::corrupt(
                    &self.path,
                    format!(
                        "series {}: block {b} table entry checksum mismatch",
                        self.key
                    ),
                ));
            }
            return Ok(e);
        }
    }

    pub(super) fn entry_raw(&self, b: u64, seq: u32) -> Entry {
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

    pub(super) fn entry_crc(&self, b: u64) -> u32 {
        let base = self.layout.entry_off(b) as usize;
        checksum::crc32c(
            self.map
                .bytes(base + entry::FLAGS, entry::CRC - entry::FLAGS),
        )
    }

    /// Runs `compute` over slots `s0..=s1` inside a seqlock read section,
    /// after verifying the checksums in `mask` of every block touched, and
    /// returns its result. If a writer changed any of those blocks
    /// meanwhile, the result is discarded and `compute` runs again: it may
    /// run several times, and only the result of the run that validated
    /// comes back, so callers accumulate what it returns, never inside it.
    pub fn read_section<R>(
        &self,
        s0: u64,
        s1: u64,
        mask: u16,
        mut compute: impl FnMut(&Slots<'_>) -> R,
    ) -> Result<R> {
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
            let view = Slots {
                file: self,
                first: s0,
                last: s1,
                b0,
                entries: &entries,
                owned: owned.as_deref(),
            };
            let r = compute(&view);
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
    pub fn copy_present(
        &self,
        c: usize,
        s0: u64,
        s1: u64,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<()> {
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
                if checksum::crc32c(&col) != e.crcs[c] || checksum::crc32c(&bits) != e.crcs[COLUMNS]
                {
                    return Err(Error::corrupt(
                        &self.path,
                        format!(
                            "series {}: block {b} {} checksum mismatch",
                            self.key,
                            crate::Column::ALL[c].name()
                        ),
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
    pub(super) fn copy_columns(
        &self,
        s0: u64,
        s1: u64,
        b0: u64,
        entries: &[Entry],
        mask: u16,
    ) -> Result<Vec<OwnedCol>> {
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
                let (i, j) = (
                    ((s - b * BLOCK_SLOTS) as usize) * w,
                    ((end - b * BLOCK_SLOTS + 1) as usize) * w,
                );
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
                (true, _) => OwnedCol::U32(
                    bytes
                        .chunks_exact(4)
                        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
                        .collect(),
                ),
                (false, 4) => OwnedCol::F32(
                    bytes
                        .chunks_exact(4)
                        .map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]]))
                        .collect(),
                ),
                _ => OwnedCol::F64(
                    bytes
                        .chunks_exact(8)
                        .map(|x| {
                            f64::from_le_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]])
                        })
                        .collect(),
                ),
            });
        }
        Ok(out)
    }

    /// Slots of the series that are present, by scanning the bitmap from
    /// `from` downwards, up to `n` of them (newest first).
    pub fn present_slots_back(&self, from: u64, n: usize) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(n.min(1 << 20));
        let mut b = from / BLOCK_SLOTS;
        loop {
            let e = self.entry(b)?;
            if e.present > 0 {
                // The slots of this block, newest first, up to what is still
                // wanted: computed in the section, kept once it validated.
                let want = n - out.len();
                let found = self.read_section(
                    b * BLOCK_SLOTS,
                    b * BLOCK_SLOTS + BLOCK_SLOTS - 1,
                    1 << COLUMNS,
                    |v| {
                        let hi = (from.min(v.last) - v.first) as usize;
                        (0..=hi)
                            .rev()
                            .filter(|&i| v.state(i) == SlotState::Present)
                            .map(|i| v.first + i as u64)
                            .take(want)
                            .collect::<Vec<_>>()
                    },
                )?;
                out.extend(found);
            }
            if out.len() >= n || b == 0 {
                break;
            }
            b -= 1;
            if e.present == 0
                && self
                    .live()?
                    .first_present
                    .is_none_or(|f| f > b * BLOCK_SLOTS + BLOCK_SLOTS - 1)
            {
                break;
            }
        }
        Ok(out)
    }
}
