//! Disk reservation before a write: `fallocate` (zeroing fresh blocks, so
//! their checksums are known), and prefaulting the pages a write touches.

use super::*;
use crate::error::{nix_io, Result};
use crate::layout::{
    entry, BLOCK_CRCS, BLOCK_SLOTS, COLUMNS, ENTRY_BYTES, LIVE_LEN, LIVE_OFF, PAGE,
};

impl SeriesFile {
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
        blocks.retain(|b| !atm_types::sync::lock(&self.reserved).contains(b));
        if blocks.is_empty() {
            return Ok(());
        }
        for &b in &blocks {
            self.thaw(b)?;
        }
        let mut reserved = atm_types::sync::lock(&self.reserved);
        // A block whose entry says "reserved" was reserved by an earlier
        // process: that flag is written only after the commit's journal
        // fsync, which made the file system commit the allocation too (one
        // file system journal for all files), so its space is there.
        for b in &blocks {
            if self
                .entry(*b)
                .is_ok_and(|e| e.flags & entry::FLAG_RESERVED != 0)
            {
                reserved.insert(*b);
            }
        }
        blocks.retain(|b| !reserved.contains(b));
        // Blocks never written get their columns zeroed as they are
        // reserved (allocated as unwritten extents, which read as zeros),
        // so their checksums are known without reading them. Nothing was
        // ever committed there; bytes a failed bulk write left are dropped.
        let empty: Vec<bool> = blocks
            .iter()
            .map(|&b| zero && self.entry(b).is_ok_and(|e| e.is_empty()))
            .collect();
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
            let mut ranges = vec![(
                table,
                (self.layout.entry_off(b1) + ENTRY_BYTES).div_ceil(PAGE) * PAGE - table,
                false,
            )];
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
                let allocate =
                    |flags| nix::fcntl::fallocate(&self.file, flags, off as i64, len as i64);
                let done =
                    zero && allocate(nix::fcntl::FallocateFlags::FALLOC_FL_ZERO_RANGE).is_ok();
                if !done {
                    allocate(nix::fcntl::FallocateFlags::empty())
                        .map_err(|e| nix_io("reserve space in", &self.path, e))?;
                }
                zeroed &= done || !zero;
            }
            if empty[i] && zeroed {
                atm_types::sync::lock(&self.zeroed).extend(b0..=b1);
            }
            reserved.extend(b0..=b1);
            i = j;
        }
        Ok(())
    }

    /// Forgets that block `b`'s columns are zeros (they are being written).
    pub(super) fn unzero(&self, b: u64) -> bool {
        atm_types::sync::lock(&self.zeroed).remove(&b)
    }

    /// Prefaults the pages a write at `slot` touches (its block's table
    /// entry, the slot's page of each column and bitmap, the live header),
    /// when its block is reserved on disk: a writer about to write one kline
    /// into thousands of series does it beforehand rather than in the middle
    /// of a commit. Best effort.
    pub fn prefault(&self, slot: u64) -> Result<()> {
        let b = slot / BLOCK_SLOTS;
        let reserved = atm_types::sync::lock(&self.reserved).contains(&b);
        if slot >= self.key.interval.capacity()
            || !(reserved || self.entry(b)?.flags & entry::FLAG_RESERVED != 0)
        {
            return Ok(());
        }
        let page = |off: u64| (off / PAGE * PAGE, PAGE);
        let mut ranges = vec![page(self.layout.entry_off(b)), (LIVE_OFF, LIVE_LEN)];
        for c in 0..COLUMNS {
            ranges.push(page(
                self.layout.col_off[c] + slot * self.layout.col_width(c),
            ));
        }
        ranges.push(page(self.layout.present_off + slot / 8));
        ranges.push(page(self.layout.missing_off + slot / 8));
        for (off, len) in ranges {
            self.map.prefault_write(off as usize, len as usize);
        }
        Ok(())
    }
}
