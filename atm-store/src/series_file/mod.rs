//! One series file: opening, verifying, seqlocked reads and the writer's apply.
//!
//! Readers never lock. Each block has a sequence number (a seqlock): the writer
//! makes it odd, changes the block's bytes and metadata, then makes it even
//! again; a commit makes the numbers of all the blocks it touches in a series
//! odd before it writes any of them, and even again after the last. A reader
//! notes the sequence numbers of the blocks it reads, reads, and accepts the
//! result only if none changed, so a window it accepts holds each commit
//! whole or not at all. Checksums are verified the first time this process
//! reads a block at a given sequence number.
//!
//! # A tour
//!
//! [`SeriesFile`] (here, with the words of the map every part builds on:
//! block sequence numbers, `u32`/`u64` loads and stores) is one open file.
//! Its methods live by job:
//!
//! | file | job |
//! |---|---|
//! | `open.rs` | creating a file (atomically, at its final sparse length) and opening one: header checks, the map |
//! | `read.rs` | seqlocked reads: block-table entries, read sections over a window of slots, `pread` copies, cold-window copies |
//! | `slots.rs` | [`Slots`], the validated window a read section hands out, and [`SlotState`] |
//! | `bitmaps.rs` | the present/missing bitmaps: counting, first/last present slot, setting bits |
//! | `verify.rs` | checksum verification (once per block and sequence number), `check`, damaged blocks |
//! | `reserve.rs` | disk reservation (`fallocate`, zeroed fresh blocks) and prefaulting before a write |
//! | `apply.rs` | the writer's `apply` of a committed batch, and its checksum strategy ([`CrcStrategy`]) |
//! | `column_writes.rs` | writing column values: through the map, or with `pwrite` for bulk runs |
//! | `cold_blocks.rs` | cold (compressed) blocks: reading them, freezing, thawing |
//! | `live_header.rs` | the double-buffered live header and the dirty word |

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cold::ColdFile;
use crate::layout::{entry, Layout, BLOCK_CRCS, COLUMNS, ENTRY_BYTES};
use crate::mmap::Map;
use crate::Kline;
use crate::{Precision, SeriesKey};

mod apply;
mod bitmaps;
mod cold_blocks;
mod column_writes;
mod live_header;
mod open;
mod read;
mod reserve;
mod slots;
mod verify;

use cold_blocks::ThawedCache;
pub(crate) use live_header::Live;
pub(crate) use slots::OwnedCol;
pub use slots::{SlotState, Slots};
use verify::BlockHasher;

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
    verified: Mutex<HashMap<u64, (u32, u16), BlockHasher>>,
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

impl SeriesFile {
    pub(super) fn block_seq(&self, b: u64) -> &AtomicU32 {
        self.map
            .atomic_u32((self.layout.entry_off(b)) as usize + entry::SEQ)
    }

    pub(super) fn u32_at(&self, off: u64) -> u32 {
        self.map.atomic_u32(off as usize).load(Ordering::Relaxed)
    }

    pub(super) fn u64_at(&self, off: u64) -> u64 {
        self.map.atomic_u64(off as usize).load(Ordering::Relaxed)
    }

    pub(super) fn write_u32(&self, off: u64, v: u32) {
        self.map
            .atomic_u32(off as usize)
            .store(v, Ordering::Relaxed);
    }
}

/// The bitmap words covering slots `a..=z`, each with the mask of its slots.
fn word_masks(a: u64, z: u64) -> impl Iterator<Item = (u64, u64)> {
    (a / 64..=z / 64).map(move |w| {
        let (lo, hi) = (a.max(w * 64) % 64, z.min(w * 64 + 63) % 64);
        let width = hi - lo + 1;
        (
            w,
            if width == 64 {
                u64::MAX
            } else {
                ((1u64 << width) - 1) << lo
            },
        )
    })
}

const _: () = assert!(ENTRY_BYTES as usize == entry::CRC + 4);
