//! Cold blocks: reading their columns from the zstd side file, freezing hot
//! blocks into it (`atm compact`) and thawing them before a write.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use super::*;
use crate::checksum;
use crate::cold::{self, ColdFile};
use crate::error::{nix_io, Error, Result};
use crate::layout::{entry, BLOCK_SLOTS, COLUMNS};

/// Raw column bytes of cold blocks, by (block, sequence number).
pub(super) type ThawedCache = HashMap<(u64, u32), Arc<Vec<u8>>>;

/// Decompressed cold blocks a reader keeps (about 147 KiB each for f32).
const THAWED_CACHE: usize = 64;

impl SeriesFile {
    /// The raw column bytes of cold block `b` at sequence `seq`, from the
    /// cache or decompressed from the cold file (reopened if it was replaced).
    pub(crate) fn cold_block(&self, b: u64, seq: u32) -> Result<Arc<Vec<u8>>> {
        if let Some(raw) = atm_types::sync::lock(&self.thawed).get(&(b, seq)) {
            return Ok(raw.clone());
        }
        let path = cold::cold_path(&self.path);
        let mut frame = None;
        for reopen in [false, true] {
            let mut slot = atm_types::sync::lock(&self.cold);
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
        let frame = frame.ok_or_else(|| {
            Error::corrupt(
                &path,
                format!(
                    "series {}: cold block {b} is missing from the cold file",
                    self.key
                ),
            )
        })?;
        let raw = Arc::new(cold::decompress(&self.layout, &frame, &path, b)?);
        let mut cache = atm_types::sync::lock(&self.thawed);
        if cache.len() >= THAWED_CACHE {
            cache.clear();
        }
        cache.insert((b, seq), raw.clone());
        Ok(raw)
    }

    /// Offset of column `c`'s bytes inside a raw cold block.
    pub(super) fn raw_col_off(&self, c: usize) -> usize {
        (0..c)
            .map(|k| (BLOCK_SLOTS * self.layout.col_width(k)) as usize)
            .sum()
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
                        format!(
                            "series {}: block {b} fails its checksum; not compacting it",
                            self.key
                        ),
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
        *atm_types::sync::lock(&self.cold) = None;
        // Forgotten as reserved before they are flagged cold, so a later
        // write thaws them first even if punching their holes fails below.
        let mut reserved = atm_types::sync::lock(&self.reserved);
        for &b in &todo {
            reserved.remove(&b);
            self.set_flags(b, |f| f | entry::FLAG_COLD);
        }
        drop(reserved);
        self.sync()?;
        for &b in &todo {
            for c in 0..COLUMNS {
                let (off, len) = self.layout.col_block(c, b);
                let mode = nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                    | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
                nix::fcntl::fallocate(&self.file, mode, off as i64, len as i64)
                    .map_err(|e| nix_io("free space in", &self.path, e))?;
            }
        }
        Ok(todo.len() as u64)
    }

    /// Brings cold block `b` back into the series file before a write to it.
    pub(super) fn thaw(&self, b: u64) -> Result<()> {
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
            nix::fcntl::fallocate(
                &self.file,
                nix::fcntl::FallocateFlags::empty(),
                off as i64,
                len as i64,
            )
            .map_err(|e| nix_io("reserve space in", &self.path, e))?;
            if checksum::crc32c(&raw[at..at + len as usize]) != e.crcs[c] {
                return Err(Error::corrupt(
                    &self.path,
                    format!("series {}: cold block {b} fails its checksum", self.key),
                ));
            }
            self.file
                .write_all_at(&raw[at..at + len as usize], off)
                .map_err(|e| Error::io("write", &self.path, e))?;
            at += len as usize;
        }
        self.sync()?;
        self.set_flags(b, |f| f & !entry::FLAG_COLD);
        Ok(())
    }

    /// Changes block `b`'s flags under its seqlock (and its entry CRC).
    pub(super) fn set_flags(&self, b: u64, f: impl Fn(u32) -> u32) {
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
}
