//! The present and missing bitmaps: counting, first and last present slot,
//! setting bits (the writer, inside a block's seqlock).

use std::sync::atomic::Ordering;

use super::*;
use crate::layout::BLOCK_SLOTS;

impl SeriesFile {
    pub(super) fn count_block(&self, b: u64) -> (u32, u32) {
        let words = BLOCK_SLOTS / 64;
        let (mut p, mut m) = (0, 0);
        for w in b * words..(b + 1) * words {
            p += self.u64_at(self.layout.present_off + w * 8).count_ones();
            m += self.u64_at(self.layout.missing_off + w * 8).count_ones();
        }
        (p, m)
    }

    pub(super) fn first_present_in(&self, b: u64) -> Option<u64> {
        let words = BLOCK_SLOTS / 64;
        (b * words..(b + 1) * words).find_map(|w| {
            let v = self.u64_at(self.layout.present_off + w * 8);
            (v != 0).then(|| w * 64 + v.trailing_zeros() as u64)
        })
    }

    pub(super) fn last_present_in(&self, b: u64) -> Option<u64> {
        let words = BLOCK_SLOTS / 64;
        (b * words..(b + 1) * words).rev().find_map(|w| {
            let v = self.u64_at(self.layout.present_off + w * 8);
            (v != 0).then(|| w * 64 + 63 - v.leading_zeros() as u64)
        })
    }

    /// Sets the present bits (and clears the missing bits) of slots `a..=z`.
    pub(super) fn set_present(&self, a: u64, z: u64) {
        for (w, mask) in word_masks(a, z) {
            self.map
                .atomic_u64((self.layout.present_off + w * 8) as usize)
                .fetch_or(mask, Ordering::Relaxed);
            self.map
                .atomic_u64((self.layout.missing_off + w * 8) as usize)
                .fetch_and(!mask, Ordering::Relaxed);
        }
    }

    pub(super) fn mark_missing_words(&self, a: u64, z: u64) {
        for (w, mask) in word_masks(a, z) {
            let present = self.u64_at(self.layout.present_off + w * 8);
            self.map
                .atomic_u64((self.layout.missing_off + w * 8) as usize)
                .fetch_or(mask & !present, Ordering::Relaxed);
        }
    }
}
