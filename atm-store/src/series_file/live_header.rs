//! The live header: first/last present slot, totals and the exceptions
//! table, double-buffered and checksummed; and the dirty word.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use super::*;
use crate::checksum;
use crate::error::{Error, Result};
use crate::layout::{
    self, entry, live, EXC_BYTES, EXC_OFF, LIVE_COPY_LEN, LIVE_COPY_OFF, LIVE_OFF, MAX_EXCEPTIONS,
};

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

impl SeriesFile {
    pub(super) fn live_version(&self) -> &AtomicU64 {
        self.map.atomic_u64(LIVE_OFF as usize + live::VERSION)
    }

    pub(super) fn dirty_word(&self) -> &AtomicU64 {
        self.map.atomic_u64(LIVE_OFF as usize + live::DIRTY_JOURNAL)
    }

    /// The journal id with applied but unsynced changes in this file (0 = none).
    pub fn dirty(&self) -> u64 {
        self.dirty_word().load(Ordering::Acquire)
    }

    /// A consistent, verified snapshot of the live header (the published copy).
    pub fn live(&self) -> Result<Live> {
        loop {
            let version = self.live_version().load(Ordering::Acquire);
            let off = LIVE_COPY_OFF + (version / 2 % 2) * LIVE_COPY_LEN;
            let bytes = self.map.bytes(off as usize, LIVE_COPY_LEN as usize);
            let l =
                decode_live(bytes).filter(|_| live_crc(bytes) == layout::get_u32(bytes, live::CRC));
            fence(Ordering::Acquire);
            if self.live_version().load(Ordering::Relaxed) != version {
                continue;
            }
            return l.ok_or_else(|| {
                Error::corrupt(
                    &self.path,
                    format!("series {}: live header checksum mismatch", self.key),
                )
            });
        }
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
    pub(super) fn write_live(&self, l: &Live) {
        let next = self.live_version().load(Ordering::Relaxed) + 2;
        let off = LIVE_COPY_OFF + (next / 2 % 2) * LIVE_COPY_LEN;
        self.map.write(off as usize, &encode_live(l));
        self.live_version().store(next, Ordering::Release);
    }

    /// Recomputes the live totals and first/last present slot from the block table.
    pub(super) fn recount(&self, live: &mut Live) {
        let (mut p, mut m, mut first, mut last) = (0u64, 0u64, None, None);
        for b in 0..self.layout.blocks {
            let base = self.layout.entry_off(b);
            let (bp, bm) = (
                self.u32_at(base + entry::PRESENT as u64),
                self.u32_at(base + entry::MISSING as u64),
            );
            p += bp as u64;
            m += bm as u64;
            if bp > 0 {
                first = first.or_else(|| self.first_present_in(b));
                last = self.last_present_in(b);
            }
        }
        (
            live.present_total,
            live.missing_total,
            live.first_present,
            live.last_present,
        ) = (p, m, first, last);
    }
}

// ----- live header encoding ------------------------------------------------

/// The bytes of a live copy up to its last used exception (what follows
/// is not read: the count says where the table ends).
pub(super) fn encode_live(l: &Live) -> Vec<u8> {
    let mut b =
        vec![0u8; (EXC_OFF + l.exceptions.len().min(MAX_EXCEPTIONS) as u64 * EXC_BYTES) as usize];
    let put =
        |b: &mut Vec<u8>, off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(
        &mut b,
        live::FIRST_PRESENT,
        l.first_present.unwrap_or(u64::MAX),
    );
    put(
        &mut b,
        live::LAST_PRESENT,
        l.last_present.unwrap_or(u64::MAX),
    );
    put(&mut b, live::PRESENT_TOTAL, l.present_total);
    put(&mut b, live::MISSING_TOTAL, l.missing_total);
    put(&mut b, live::COMMITS, l.commits);
    b[live::EXC_COUNT..live::EXC_COUNT + 4]
        .copy_from_slice(&(l.exceptions.len() as u32).to_le_bytes());
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
pub(super) fn live_crc(b: &[u8]) -> u32 {
    let n = (layout::get_u32(b, live::EXC_COUNT) as usize).min(MAX_EXCEPTIONS);
    let c = checksum::crc32c(&b[..live::CRC]);
    checksum::crc32c_append(
        c,
        &b[EXC_OFF as usize..EXC_OFF as usize + n * EXC_BYTES as usize],
    )
}

pub(super) fn decode_live(b: &[u8]) -> Option<Live> {
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
