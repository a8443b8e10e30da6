//! The writer's `apply`: a committed batch written block by block inside one
//! seqlock write section over all the blocks it touches, then the live header
//! published; and [`CrcStrategy`], how each block's checksums are renewed.

use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering};

use super::*;
use crate::checksum;
use crate::error::{Error, Result};
use crate::layout::{entry, BLOCK_CRCS, BLOCK_SLOTS, COLUMNS, MAX_EXCEPTIONS};
use crate::Kline;

/// Puts into one block up to which its checksums are patched rather than
/// recomputed (each put patches 11 checksums at ~50 ns; a recomputation
/// reads the whole block, 150-300 KiB).
const PATCH_PUTS: usize = 64;

/// How [`SeriesFile::apply`] arrives at the new checksums of one block,
/// chosen once per block by [`CrcStrategy::choose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrcStrategy<'a> {
    /// A few klines (at most [`PATCH_PUTS`]) put into a hot block whose
    /// checksums are known, with no run or missing range touching it: each
    /// checksum is patched with the bytes the puts change
    /// ([`checksum::crc32c_patch`]) instead of recomputed over the whole
    /// block. With `from_zeros`, the block was never written and this
    /// writer zeroed its columns when it reserved them
    /// (`SeriesFile::reserve_blocks`): the columns' checksums to patch
    /// are those of zeros, computed without reading; the bitmaps' are read.
    /// The block's counts move by the bits the puts changed, too.
    Patch {
        /// The columns are zeros this writer made.
        from_zeros: bool,
    },
    /// A block the bulk path wrote whole (no puts): its column checksums
    /// were computed while writing it (`SeriesBatch::known_crcs`), so they
    /// are not read back; the bitmaps' are recomputed.
    Known(&'a [u32; COLUMNS]),
    /// Everything else, and every block on replay (whose metadata is not
    /// trusted): the checksums of what the batch may have changed are
    /// recomputed from the bytes: the bitmaps always, the columns when a
    /// kline or a run landed in the block, the block was empty, or on
    /// replay (a block only marked missing keeps its column checksums).
    Recompute,
}

impl<'a> CrcStrategy<'a> {
    /// The strategy for block `b` of `batch`, given the `puts` that land in
    /// it, its entry `before` the batch, whether this writer `zeroed` its
    /// columns (and it is still empty), and whether this is a `replay`.
    fn choose(
        batch: &'a SeriesBatch,
        b: u64,
        puts: &[(u64, Kline)],
        before: &Entry,
        zeroed: bool,
        replay: bool,
    ) -> CrcStrategy<'a> {
        let (lo, hi) = (b * BLOCK_SLOTS, (b + 1) * BLOCK_SLOTS - 1);
        let touched = |r: &[(u64, u64)]| r.iter().any(|&(a, z)| a <= hi && z >= lo);
        if replay {
            return CrcStrategy::Recompute;
        }
        let patch = (zeroed || !before.is_empty())
            && !puts.is_empty()
            && puts.len() <= PATCH_PUTS
            && before.flags & entry::FLAG_COLD == 0
            && !touched(&batch.direct)
            && !touched(&batch.missing);
        if patch {
            return CrcStrategy::Patch { from_zeros: zeroed };
        }
        match batch.known_crcs.get(&b) {
            Some(known) if puts.is_empty() => CrcStrategy::Known(known),
            _ => CrcStrategy::Recompute,
        }
    }
}

impl SeriesFile {
    /// Applies a committed batch: writes values and states block by block,
    /// then publishes the live header. Replaying the same batch again leaves
    /// the same bytes (journal replay relies on it).
    ///
    /// Every block the batch touches is changed inside one seqlock write
    /// section: all their sequence numbers are made odd before the first
    /// byte is written and even again after the last, so a reader whose
    /// window spans several of them sees all of the batch or none of it
    /// (it notes every block's sequence number before reading and
    /// rechecks them all after), never some blocks before it and some after.
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
        // Every entry as it was, read while the sequence numbers are even.
        let mut befores = Vec::with_capacity(blocks.len());
        for &b in &blocks {
            befores.push(if replay {
                let seq = self.block_seq(b);
                let s = seq.load(Ordering::Relaxed);
                seq.store(s + s % 2, Ordering::Relaxed);
                let mut e = self.entry_raw(b, s + s % 2);
                (e.present, e.missing) = self.count_block(b);
                e.flags |= u32::from(e.present + e.missing > 0);
                e
            } else {
                self.entry(b)?
            });
        }
        // Open the write section of every block before writing any.
        for &b in &blocks {
            let seq = self.block_seq(b);
            seq.store(seq.load(Ordering::Relaxed) | 1, Ordering::Relaxed);
        }
        fence(Ordering::Release);
        let mut exc: HashMap<u64, Exception> =
            live.exceptions.iter().map(|e| (e.slot, *e)).collect();
        let mut put_i = 0;
        for (&b, before) in blocks.iter().zip(&befores) {
            let (lo, hi) = (b * BLOCK_SLOTS, (b + 1) * BLOCK_SLOTS - 1);
            let start = put_i;
            while put_i < batch.puts.len() && batch.puts[put_i].0 <= hi {
                put_i += 1;
            }
            let puts = &batch.puts[start..put_i];
            // A block never written has known checksums if this writer
            // zeroed its columns (see `reserve_blocks`).
            let zeroed = self.unzero(b) && before.is_empty();
            let strategy = CrcStrategy::choose(batch, b, puts, before, zeroed, replay);
            let mut crcs = before.crcs;
            if strategy == (CrcStrategy::Patch { from_zeros: true }) {
                for (k, c) in crcs.iter_mut().enumerate() {
                    let (off, len) = self.layout.crc_range(k, b);
                    *c = match k < COLUMNS {
                        true => checksum::crc32c_zeros(len as usize),
                        // The bitmaps' 512 bytes are read: no zeroing covered them.
                        false => checksum::crc32c(self.map.bytes(off as usize, len as usize)),
                    };
                }
            }
            let patch = matches!(strategy, CrcStrategy::Patch { .. });
            let old = patch.then(|| self.put_bytes(b, puts));
            if !puts.is_empty() {
                self.write_puts(puts);
                for (slot, k) in puts {
                    let regular = (
                        self.key.interval.open_time(*slot),
                        self.key.interval.close_time(*slot),
                    );
                    if (k.open_time, k.close_time) == regular {
                        exc.remove(slot);
                    } else {
                        exc.insert(
                            *slot,
                            Exception {
                                slot: *slot,
                                open_time: k.open_time,
                                close_time: k.close_time,
                            },
                        );
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
                        v.iter()
                            .filter(|e| e.0 == k)
                            .map(|e| u64::from_le_bytes(e.2).count_ones() as i64)
                            .sum()
                    };
                    let moved =
                        |count: u32, k: usize| (count as i64 + ones(new, k) - ones(old, k)) as u32;
                    (
                        moved(before.present, COLUMNS),
                        moved(before.missing, COLUMNS + 1),
                    )
                }
                _ => self.count_block(b),
            };
            let recompute = |k: usize| {
                let (off, len) = self.layout.crc_range(k, b);
                checksum::crc32c(self.map.bytes(off as usize, len as usize))
            };
            match (strategy, &old, &new_bytes) {
                (CrcStrategy::Patch { .. }, Some(old), Some(new)) => {
                    self.patch_crcs(b, old, new, &mut crcs)
                }
                (CrcStrategy::Known(known), _, _) => {
                    for (k, c) in crcs.iter_mut().enumerate() {
                        *c = if k < COLUMNS { known[k] } else { recompute(k) };
                    }
                }
                _ => {
                    for (k, c) in crcs.iter_mut().enumerate() {
                        if k >= COLUMNS || !puts.is_empty() || direct || before.is_empty() || replay
                        {
                            *c = recompute(k);
                        }
                    }
                }
            }
            let base = self.layout.entry_off(b);
            self.write_u32(
                base + entry::FLAGS as u64,
                before.flags | entry::FLAG_RESERVED,
            );
            self.write_u32(base + entry::PRESENT as u64, present);
            self.write_u32(base + entry::MISSING as u64, missing);
            for (k, c) in crcs.iter().enumerate() {
                self.write_u32(base + (entry::CRCS + 4 * k) as u64, *c);
            }
            self.write_u32(base + entry::CRC as u64, self.entry_crc(b));
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
        // Close them all: the batch is visible to readers at once.
        for &b in &blocks {
            let seq = self.block_seq(b);
            seq.store(seq.load(Ordering::Relaxed) + 1, Ordering::Release);
        }
        if exc.len() > MAX_EXCEPTIONS {
            // Checked by the writer before the commit; replay of a valid journal cannot get here.
            return Err(Error::InvalidInput(format!(
                "series {} would hold more than {MAX_EXCEPTIONS} irregular klines",
                self.key
            )));
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

    /// The bytes that checksums of block `b` cover at the slots of `puts`:
    /// each column's value, then the bitmap words holding the slots
    /// (present, then missing), with their offsets in the checksummed ranges.
    pub(super) fn put_bytes(&self, b: u64, puts: &[(u64, Kline)]) -> Vec<(usize, usize, [u8; 8])> {
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
            for (k, base) in [
                (COLUMNS, self.layout.present_off),
                (COLUMNS + 1, self.layout.missing_off),
            ] {
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
    pub(super) fn patch_crcs(
        &self,
        b: u64,
        old: &[(usize, usize, [u8; 8])],
        new: &[(usize, usize, [u8; 8])],
        crcs: &mut [u32; BLOCK_CRCS],
    ) {
        for (&(k, at, o), &(_, _, n)) in old.iter().zip(new) {
            let (_, len) = self.layout.crc_range(k, b);
            let w = if k < COLUMNS {
                self.layout.col_width(k) as usize
            } else {
                8
            };
            crcs[k] = checksum::crc32c_patch(crcs[k], len as usize, at, &o[..w], &n[..w]);
        }
    }

    /// Writes the values of `puts` (all in one block) column by column, one
    /// contiguous run at a time, and sets their present bits.
    pub(super) fn write_puts(&self, puts: &[(u64, Kline)]) {
        self.write_values(puts);
        for (slot, _) in puts {
            self.set_present(*slot, *slot);
        }
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
                self.write_u32(
                    self.layout.entry_off(b) + entry::CRC as u64,
                    self.entry_crc(b),
                );
                seq.store(s + 1, Ordering::Release);
            }
        }
    }
}
