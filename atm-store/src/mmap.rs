//! The one place in `atm-store` with `unsafe` code: memory maps of store files.
//!
//! # The contract
//!
//! A [`Map`] maps a whole file that the store created and sized. Every other
//! module reaches mapped bytes only through the safe methods below, which
//! check bounds and alignment, so the `unsafe` blocks here rest on these
//! rules, which the rest of the crate keeps:
//!
//! 1. **Nobody truncates a mapped file.** Store files are created at their
//!    final length (sparse) and never shrunk; a file shorter than its header
//!    says is refused before it is mapped (see `series_file/open.rs`). Truncation by
//!    a foreign program would raise SIGBUS, as for every mmap-based store.
//! 2. **Writers touch only allocated blocks.** Before the writer stores through
//!    the map into a range, it reserves that range with `fallocate`, so a full
//!    disk is an error on the reservation, never a SIGBUS on a page fault.
//! 3. **Concurrent mutation is published by seqlocks.** One writer (enforced by
//!    a lock across processes) mutates a series; readers in this and other
//!    processes read the same pages without locks. Metadata words are accessed
//!    as atomics; column bytes are read as plain slices inside a seqlock read
//!    section and discarded if the block's sequence number changed, so a torn
//!    value is never returned to a caller. (Rust's memory model cannot express
//!    memory shared with another process; like every mmap store we treat the
//!    mapped bytes as plain data whose reads may race, and validate them.)
//!
//! `UNSAFE.md` at the repository root lists every site.

#![allow(unsafe_code)]

use std::fs::File;
use std::sync::atomic::{AtomicU32, AtomicU64};

use memmap2::{MmapOptions, MmapRaw};

/// A shared mapping of a whole store file.
pub(crate) struct Map {
    raw: MmapRaw,
    writable: bool,
}

impl Map {
    /// Maps the first `len` bytes of `file`, which the caller has checked is at
    /// least that long.
    pub(crate) fn new(file: &File, len: u64, writable: bool) -> std::io::Result<Map> {
        let actual = file.metadata()?.len();
        if actual < len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("file is {actual} bytes, shorter than the {len} its header states"),
            ));
        }
        let len =
            usize::try_from(len).map_err(|_| std::io::Error::other("file too large to map"))?;
        let mut opts = MmapOptions::new();
        opts.len(len);
        let raw = if writable {
            opts.map_raw(file)?
        } else {
            opts.map_raw_read_only(file)?
        };
        // Series files are sparse and mostly touched a few pages at a time:
        // without this, each page fault would read ahead (and zero-fill)
        // megabytes. (Measured: `MADV_POPULATE_READ` before large reads is
        // slower than their page faults, so reads just fault.)
        raw.advise(memmap2::Advice::Random)?;
        Ok(Map { raw, writable })
    }

    /// Maps `off..off+len` (page-aligned, reserved on disk) writable in the
    /// page tables now, so that the first writes there do not fault; best
    /// effort (`MADV_POPULATE_WRITE`, Linux 5.14 and later).
    pub(crate) fn prefault_write(&self, off: usize, len: usize) {
        self.check(off, len, 1);
        if self.writable {
            let _ = self
                .raw
                .advise_range(memmap2::Advice::PopulateWrite, off, len);
        }
    }

    /// The byte length of `n` values of `width` bytes, by checked (saturating)
    /// multiplication: a product that does not fit a `usize` becomes
    /// `usize::MAX`, which [`Map::check`] then
    /// refuses: it must never wrap (in release builds `n * width` would, to a
    /// small length that passes the bounds check while the slice built from
    /// `n` runs past the map). Not reachable from a file's contents: every
    /// count is a window of the series' slot grid, which the layout, checked
    /// against the header when the file is opened, fits inside the map.
    fn byte_len(n: usize, width: usize) -> usize {
        n.saturating_mul(width)
    }

    fn check(&self, off: usize, len: usize, align: usize) {
        let end = off.checked_add(len);
        assert!(
            matches!(end, Some(e) if e <= self.raw.len()),
            "mapped access {off}+{len} past the end ({}): layout bug",
            self.raw.len()
        );
        assert!(
            (self.raw.as_ptr() as usize + off).is_multiple_of(align),
            "misaligned mapped access at {off}"
        );
    }

    /// The bytes `off..off+len`.
    pub(crate) fn bytes(&self, off: usize, len: usize) -> &[u8] {
        self.check(off, len, 1);
        // SAFETY: the range lies inside the mapping (checked above), which lives
        // as long as `self`; the file is never truncated while mapped (rule 1).
        // Bytes may change under a concurrent writer: callers read them inside a
        // seqlock section and discard the result on a change (rule 3).
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(off), len) }
    }

    /// `n` little-endian `f32` values starting at `off` (4-aligned).
    pub(crate) fn f32s(&self, off: usize, n: usize) -> &[f32] {
        self.check(off, Map::byte_len(n, 4), 4);
        // SAFETY: in bounds and 4-aligned (checked above); every bit pattern is a
        // valid f32; lifetime and concurrency as in `bytes`. Little-endian
        // targets only (enforced by a compile_error! in lib.rs).
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(off).cast::<f32>(), n) }
    }

    #[cfg(feature = "arrow")]
    /// An Arrow buffer over `len` bytes at `off` of the map (aligned to
    /// `align`), without a copy; `owner` keeps this map alive as long as the
    /// buffer (or any slice of it) is.
    pub(crate) fn arrow_buffer(
        &self,
        off: usize,
        len: usize,
        align: usize,
        owner: std::sync::Arc<dyn arrow_buffer::alloc::Allocation>,
    ) -> arrow_buffer::Buffer {
        self.check(off, len, align);
        // `as_ptr` of a live mapping is never null; `add` stays in bounds (checked above).
        let ptr = std::ptr::NonNull::new(self.raw.as_mut_ptr().wrapping_add(off))
            .unwrap_or(std::ptr::NonNull::dangling());
        // SAFETY: the `len` bytes at `ptr` lie inside the mapping (checked
        // above, with the alignment of the values the buffer will be read as),
        // and the mapping lives as long as `owner`, which the caller builds
        // around the `SeriesFile` holding this map, and which the buffer keeps;
        // the file is never truncated while mapped (rule 1). Every bit pattern
        // is a valid value of the numeric types read through it. The bytes may
        // change if a later commit corrects a kline in the range: callers
        // build buffers only inside a seqlock section (rule 3) and document
        // that such a correction shows through afterwards.
        unsafe { arrow_buffer::Buffer::from_custom_allocation(ptr, len, owner) }
    }

    /// `n` little-endian `f64` values starting at `off` (8-aligned).
    pub(crate) fn f64s(&self, off: usize, n: usize) -> &[f64] {
        self.check(off, Map::byte_len(n, 8), 8);
        // SAFETY: as for `f32s`, with 8-byte alignment checked above.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(off).cast::<f64>(), n) }
    }

    /// `n` little-endian `u32` values starting at `off` (4-aligned).
    pub(crate) fn u32s(&self, off: usize, n: usize) -> &[u32] {
        self.check(off, Map::byte_len(n, 4), 4);
        // SAFETY: as for `f32s`; every bit pattern is a valid u32.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(off).cast::<u32>(), n) }
    }

    /// The 4-aligned word at `off`, as an atomic shared with other processes.
    pub(crate) fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4, 4);
        // SAFETY: in bounds and aligned (checked above); AtomicU32 has the size
        // and alignment of u32 and any bit pattern is valid. Shared-memory
        // atomics are the intended way for processes to publish to each other.
        unsafe { &*self.raw.as_ptr().add(off).cast::<AtomicU32>() }
    }

    /// The 8-aligned word at `off`, as an atomic shared with other processes.
    pub(crate) fn atomic_u64(&self, off: usize) -> &AtomicU64 {
        self.check(off, 8, 8);
        // SAFETY: as for `atomic_u32`, with 8-byte alignment checked above.
        unsafe { &*self.raw.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// Copies `src` into the map at `off`. Only for maps opened writable, and
    /// only by the series' single writer, inside a seqlock write section over
    /// a range it has reserved with `fallocate` (rule 2).
    pub(crate) fn write(&self, off: usize, src: &[u8]) {
        assert!(self.writable, "write through a read-only map");
        self.check(off, src.len(), 1);
        // SAFETY: in bounds (checked above) of a writable shared mapping; `src`
        // is a separate Rust allocation, so the ranges cannot overlap. The
        // block was reserved on disk before (rule 2); readers validate with the
        // block's seqlock (rule 3).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.raw.as_mut_ptr().add(off), src.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Map;

    fn map() -> (tempfile::NamedTempFile, Map) {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(4096).unwrap();
        let m = Map::new(f.as_file(), 4096, false).unwrap();
        (f, m)
    }

    #[test]
    fn typed_slices_in_bounds() {
        let (_f, m) = map();
        assert_eq!(m.f32s(0, 1024).len(), 1024);
        assert_eq!(m.f64s(8, 511).len(), 511);
        assert_eq!(m.u32s(4092, 1).len(), 1);
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn a_count_whose_byte_length_overflows_is_refused_not_wrapped() {
        let (_f, m) = map();
        // n * 4 wraps to 0 in a release build; the checked length refuses it.
        m.f32s(0, usize::MAX / 4 + 1);
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn an_f64_count_whose_byte_length_overflows_is_refused_not_wrapped() {
        let (_f, m) = map();
        m.f64s(0, usize::MAX / 8 + 1);
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn a_u32_count_whose_byte_length_overflows_is_refused_not_wrapped() {
        let (_f, m) = map();
        m.u32s(0, usize::MAX / 4 + 1);
    }
}
