//! The window of slots a read section hands out.

use super::*;
use crate::layout::BLOCK_SLOTS;
use crate::Precision;
use crate::FLOAT_COLUMNS;

/// Columns of a read window copied out of the map (some blocks are cold).
pub(crate) enum OwnedCol {
    F32(Vec<f32>),
    F64(Vec<f64>),
    U32(Vec<u32>),
    /// Not requested by the read.
    None,
}

/// The state of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlotState {
    /// Not fetched yet.
    Unknown,
    /// The exchange has no kline there.
    Missing,
    /// A kline is stored.
    Present,
}

/// A validated window of slots `first..=last`, valid inside a read section.
pub struct Slots<'a> {
    pub(super) file: &'a SeriesFile,
    /// First slot of the window.
    pub first: u64,
    /// Last slot of the window (inclusive).
    pub last: u64,
    /// The first block of the window.
    pub(super) b0: u64,
    /// The entries of the window's blocks, as validated at the start of the section.
    pub(super) entries: &'a [Entry],
    /// Columns copied out when the window touches cold blocks.
    pub(super) owned: Option<&'a [OwnedCol]>,
}

impl Slots<'_> {
    /// Number of slots.
    pub fn len(&self) -> usize {
        (self.last - self.first + 1) as usize
    }

    /// Always false: a window holds at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The state of the `i`-th slot of the window.
    pub fn state(&self, i: usize) -> SlotState {
        let slot = self.first + i as u64;
        let e = &self.entries[(slot / BLOCK_SLOTS - self.b0) as usize];
        if e.present == 0 && e.missing == 0 {
            return SlotState::Unknown;
        }
        let (w, bit) = (slot / 64, 1u64 << (slot % 64));
        let l = &self.file.layout;
        if e.present > 0 && self.file.u64_at(l.present_off + w * 8) & bit != 0 {
            SlotState::Present
        } else if e.missing > 0 && self.file.u64_at(l.missing_off + w * 8) & bit != 0 {
            SlotState::Missing
        } else {
            SlotState::Unknown
        }
    }

    /// True when every slot of the window is present (checked a block or a
    /// bitmap word at a time), so the column slices hold only klines.
    pub fn all_present(&self) -> bool {
        let l = &self.file.layout;
        (self.b0..=self.last / BLOCK_SLOTS).all(|b| {
            let e = &self.entries[(b - self.b0) as usize];
            e.present as u64 == BLOCK_SLOTS || {
                let (a, z) = (
                    self.first.max(b * BLOCK_SLOTS),
                    self.last.min((b + 1) * BLOCK_SLOTS - 1),
                );
                word_masks(a, z).all(|(w, m)| self.file.u64_at(l.present_off + w * 8) & m == m)
            }
        })
    }

    /// Column `c` (0..8) of an `f32` store, zero-copy.
    pub fn f32s(&self, c: usize) -> Option<&[f32]> {
        if let Some(o) = self.owned {
            return match o.get(c) {
                Some(OwnedCol::F32(v)) => Some(v),
                _ => None,
            };
        }
        let l = &self.file.layout;
        (self.file.precision == Precision::F32 && c < FLOAT_COLUMNS).then(|| {
            self.file
                .map
                .f32s((l.col_off[c] + self.first * 4) as usize, self.len())
        })
    }

    #[cfg(feature = "arrow")]
    /// Column `c` (0..8 the floats, 8 the trades) of the window as an Arrow
    /// buffer over the mapped bytes, without a copy; `None` when the window
    /// touches cold (compressed) blocks. `owner` must hold this series file.
    pub(crate) fn arrow_buffer(
        &self,
        c: usize,
        owner: std::sync::Arc<dyn arrow_buffer::alloc::Allocation>,
    ) -> Option<arrow_buffer::Buffer> {
        if self.owned.is_some() || c > FLOAT_COLUMNS {
            return None;
        }
        let width = if c == FLOAT_COLUMNS {
            4
        } else {
            self.file.precision.width() as u64
        };
        let l = &self.file.layout;
        let off = l.col_off[c] + self.first * width;
        Some(self.file.map.arrow_buffer(
            off as usize,
            self.len() * width as usize,
            width as usize,
            owner,
        ))
    }

    /// Column `c` (0..8) of an `f64` store, zero-copy.
    pub fn f64s(&self, c: usize) -> Option<&[f64]> {
        if let Some(o) = self.owned {
            return match o.get(c) {
                Some(OwnedCol::F64(v)) => Some(v),
                _ => None,
            };
        }
        let l = &self.file.layout;
        (self.file.precision == Precision::F64 && c < FLOAT_COLUMNS).then(|| {
            self.file
                .map
                .f64s((l.col_off[c] + self.first * 8) as usize, self.len())
        })
    }

    /// The trades column, zero-copy.
    pub fn trades(&self) -> &[u32] {
        if let Some(o) = self.owned {
            return match o.get(FLOAT_COLUMNS) {
                Some(OwnedCol::U32(v)) => v,
                _ => &[],
            };
        }
        let l = &self.file.layout;
        self.file.map.u32s(
            (l.col_off[FLOAT_COLUMNS] + self.first * 4) as usize,
            self.len(),
        )
    }

    /// Float column `c` of slot `i` as `f64`, whatever the precision.
    pub fn value(&self, c: usize, i: usize) -> f64 {
        if let Some(o) = self.owned {
            return match o.get(c) {
                Some(OwnedCol::F32(v)) => v[i] as f64,
                Some(OwnedCol::F64(v)) => v[i],
                _ => 0.0,
            };
        }
        let l = &self.file.layout;
        let slot = self.first + i as u64;
        match self.file.precision {
            Precision::F32 => self.file.map.f32s((l.col_off[c] + slot * 4) as usize, 1)[0] as f64,
            Precision::F64 => self.file.map.f64s((l.col_off[c] + slot * 8) as usize, 1)[0],
        }
    }
}
