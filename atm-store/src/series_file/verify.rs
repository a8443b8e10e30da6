//! Checksum verification: a block's checksums are verified once per process
//! and sequence number; `check` and `damaged_blocks` recompute everything.

use std::sync::atomic::Ordering;

use super::*;
use crate::checksum;
use crate::error::{Error, Result};
use crate::layout::{entry, BLOCK_CRCS, BLOCK_SLOTS, COLUMNS};

/// Hashes block numbers (small, dense integers) with one multiplication
/// (Fibonacci hashing): the map of verified blocks is looked up for every
/// block a read touches, and SipHash took a tenth of a warm full-series read.
#[derive(Default, Clone, Copy)]
pub(super) struct BlockHash(u64);

impl std::hash::Hasher for BlockHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The hasher of the verified-blocks map.
pub(super) type BlockHasher = std::hash::BuildHasherDefault<BlockHash>;

impl SeriesFile {
    /// Says to the checksum module how many bytes verifying the columns of
    /// `mask` over slots `s0..=s1` may take (see [`checksum::expect`]).
    pub fn expect_verify(&self, s0: u64, s1: u64, mask: u16) {
        let width: u64 = (0..COLUMNS)
            .filter(|c| mask & 1 << c != 0)
            .map(|c| self.layout.col_width(c))
            .sum();
        checksum::expect((s1.saturating_sub(s0) + 1).saturating_mul(width));
    }

    /// Verifies checksums `mask` of block `b` at `entry.seq` unless this process already did.
    pub(super) fn verify_block(&self, b: u64, e: &Entry, mask: u16) -> Result<bool> {
        if e.is_empty() {
            return Ok(true);
        }
        let done = {
            let v = atm_types::sync::lock(&self.verified);
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
        let mut v = atm_types::sync::lock(&self.verified);
        let ent = v.entry(b).or_insert((e.seq, 0));
        if ent.0 != e.seq {
            *ent = (e.seq, 0);
        }
        ent.1 |= todo;
        Ok(true)
    }

    /// The bytes checksum `k` of block `b` covers, wherever they live.
    pub(super) fn crc_bytes(
        &self,
        k: usize,
        b: u64,
        e: &Entry,
    ) -> Result<std::borrow::Cow<'_, [u8]>> {
        if k < COLUMNS && e.flags & entry::FLAG_COLD != 0 {
            let raw = self.cold_block(b, e.seq)?;
            let off = self.raw_col_off(k);
            let len = (BLOCK_SLOTS * self.layout.col_width(k)) as usize;
            return Ok(std::borrow::Cow::Owned(raw[off..off + len].to_vec()));
        }
        let (off, len) = self.layout.crc_range(k, b);
        Ok(std::borrow::Cow::Borrowed(
            self.map.bytes(off as usize, len as usize),
        ))
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
                let mut v = atm_types::sync::lock(&self.verified);
                v.remove(&b);
            }
            if let Err(err) = self.verify_block(b, &e, (1 << BLOCK_CRCS) - 1) {
                problems.push(err.to_string());
                continue;
            }
            let (p, m) = self.count_block(b);
            if (p, m) != (e.present, e.missing) {
                problems.push(format!(
                    "corrupt {}: series {}: block {b} counts disagree with its bitmaps",
                    self.path.display(),
                    self.key
                ));
            }
            let words = BLOCK_SLOTS / 64;
            if (b * words..(b + 1) * words).any(|w| {
                self.u64_at(self.layout.present_off + w * 8)
                    & self.u64_at(self.layout.missing_off + w * 8)
                    != 0
            }) {
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
        if (present, missing, first, last)
            != (
                live.present_total,
                live.missing_total,
                live.first_present,
                live.last_present,
            )
        {
            problems.push(format!(
                "corrupt {}: series {}: live header totals disagree with the blocks",
                self.path.display(),
                self.key
            ));
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
                    atm_types::sync::lock(&self.verified).remove(&b);
                    self.verify_block(b, &e, (1 << BLOCK_CRCS) - 1).is_err()
                }
            })
            .collect()
    }
}
