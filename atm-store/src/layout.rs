//! Byte layout of a series file (`docs/format.md` is the prose version).
//!
//! ```text
//! 0        static header (4 KiB): magic, version, key, grid, region offsets, CRC
//! 4096     live control page: version u64 (selects the live copy), dirty-journal marker
//! 8192     live copy A (8 KiB), 16384 live copy B (8 KiB): first/last present
//!          slot, totals, commit count, exceptions table, CRC
//! 24576    block table: one 64-byte entry per block of 4096 slots
//! ...      present bitmap, missing bitmap (512 bytes per block each)
//! ...      nine column regions: 8 float columns (4 or 8 bytes per slot), trades (u32)
//! ```
//! The file is created at its full length as a sparse file; a block's ranges
//! get disk space (fallocate) the first time it is written, so unfetched
//! ranges cost nothing.

use crate::checksum;
use crate::error::{Error, Result};
use crate::FLOAT_COLUMNS;
use crate::{Interval, Market, Precision, Symbol};

/// Magic bytes at offset 0 of every series file.
pub const SERIES_MAGIC: [u8; 8] = *b"ATMSER\0\0";
/// The series-file format this build writes and the newest it reads.
pub const SERIES_VERSION: u32 = 1;
/// Page size the layout aligns regions to.
pub const PAGE: u64 = 4096;
/// Slots per block: the unit of checksums, seqlocks and disk reservation.
pub const BLOCK_SLOTS: u64 = 4096;
/// Bytes of one block-table entry.
pub const ENTRY_BYTES: u64 = 64;
/// Offset of the live control page (version and dirty marker).
pub const LIVE_OFF: u64 = PAGE;
/// Length of the live region: the control page and two copies.
pub const LIVE_LEN: u64 = 5 * PAGE;
/// Offset of live copy 0; copy 1 follows it.
pub const LIVE_COPY_OFF: u64 = 2 * PAGE;
/// Length of one live copy.
pub const LIVE_COPY_LEN: u64 = 2 * PAGE;
/// Offset of the exceptions table inside a live copy.
pub const EXC_OFF: u64 = 48;
/// Bytes of one exception entry (slot u64, open i64, close i64).
pub const EXC_BYTES: u64 = 24;
/// How many irregular klines (open/close off the grid) one series can hold.
pub const MAX_EXCEPTIONS: usize = ((LIVE_COPY_LEN - EXC_OFF) / EXC_BYTES) as usize;
/// Number of stored columns (8 floats + trades).
pub const COLUMNS: usize = FLOAT_COLUMNS + 1;
/// Checksums per block entry: 9 columns + present bitmap + missing bitmap.
pub const BLOCK_CRCS: usize = COLUMNS + 2;
/// Bytes of one block's bitmap.
pub const BITMAP_BLOCK_BYTES: u64 = BLOCK_SLOTS / 8;

/// Static-header field offsets.
pub(crate) mod hdr {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const HEADER_BYTES: usize = 12;
    pub const MARKET: usize = 16;
    pub const INTERVAL: usize = 17;
    pub const WIDTH: usize = 18;
    pub const BLOCK_SLOTS: usize = 20;
    pub const ORIGIN: usize = 24;
    pub const CAPACITY: usize = 32;
    pub const FILE_LEN: usize = 40;
    pub const TABLE_OFF: usize = 48;
    pub const PRESENT_OFF: usize = 56;
    pub const MISSING_OFF: usize = 64;
    pub const COL_OFF: usize = 72; // 9 x u64
    pub const SYMBOL_LEN: usize = 144;
    pub const SYMBOL: usize = 146; // 64 bytes
    pub const CRC: usize = 4092;
}

/// Live control-page offsets (relative to [`LIVE_OFF`]) and live-copy field
/// offsets (relative to the copy).
pub(crate) mod live {
    /// Version: bumped by 2 per publication; copy `(version / 2) % 2` is current.
    pub const VERSION: usize = 0;
    /// Id of the journal with applied, not yet synced changes (0 = clean).
    pub const DIRTY_JOURNAL: usize = 8;
    pub const FIRST_PRESENT: usize = 0;
    pub const LAST_PRESENT: usize = 8;
    pub const PRESENT_TOTAL: usize = 16;
    pub const MISSING_TOTAL: usize = 24;
    pub const COMMITS: usize = 32;
    pub const EXC_COUNT: usize = 40;
    pub const CRC: usize = 44;
}

/// Block-entry field offsets (relative to the entry).
pub(crate) mod entry {
    pub const SEQ: usize = 0;
    pub const FLAGS: usize = 4;
    pub const PRESENT: usize = 8;
    pub const MISSING: usize = 12;
    pub const CRCS: usize = 16;
    pub const CRC: usize = 60;
    /// Flag: the block's ranges have disk space reserved.
    pub const FLAG_RESERVED: u32 = 1;
    /// Flag: the block's columns live compressed in the cold file.
    pub const FLAG_COLD: u32 = 2;
}

/// Where everything is in one series file; derived from the grid and precision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Slots in the grid.
    pub capacity: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// Bytes per float value (4 or 8).
    pub width: u64,
    /// Offset of the block table.
    pub table_off: u64,
    /// Offset of the present bitmap.
    pub present_off: u64,
    /// Offset of the missing bitmap.
    pub missing_off: u64,
    /// Offsets of the nine column regions.
    pub col_off: [u64; COLUMNS],
    /// Total file length.
    pub file_len: u64,
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

impl Layout {
    /// The layout of a series of `interval` at `precision`.
    pub fn new(interval: Interval, precision: Precision) -> Layout {
        let capacity = interval.capacity();
        let blocks = capacity.div_ceil(BLOCK_SLOTS);
        let slots = blocks * BLOCK_SLOTS;
        let width = precision.width() as u64;
        let table_off = LIVE_OFF + LIVE_LEN;
        let present_off = table_off + round_up(blocks * ENTRY_BYTES, PAGE);
        let bitmap_len = round_up(slots / 8, PAGE);
        let missing_off = present_off + bitmap_len;
        let mut off = missing_off + bitmap_len;
        let mut col_off = [0; COLUMNS];
        for (c, o) in col_off.iter_mut().enumerate() {
            *o = off;
            let w = if c < FLOAT_COLUMNS { width } else { 4 };
            off += round_up(slots * w, PAGE);
        }
        Layout {
            capacity,
            blocks,
            width,
            table_off,
            present_off,
            missing_off,
            col_off,
            file_len: off,
        }
    }

    /// Width of column `c` in bytes.
    pub fn col_width(&self, c: usize) -> u64 {
        if c < FLOAT_COLUMNS {
            self.width
        } else {
            4
        }
    }

    /// Offset of block `b`'s table entry.
    pub fn entry_off(&self, b: u64) -> u64 {
        self.table_off + b * ENTRY_BYTES
    }

    /// Byte range of block `b` in column `c`.
    pub fn col_block(&self, c: usize, b: u64) -> (u64, u64) {
        let w = self.col_width(c);
        (self.col_off[c] + b * BLOCK_SLOTS * w, BLOCK_SLOTS * w)
    }

    /// Byte range of block `b` in the present (`missing == false`) or missing bitmap.
    pub fn bitmap_block(&self, missing: bool, b: u64) -> (u64, u64) {
        let base = if missing {
            self.missing_off
        } else {
            self.present_off
        };
        (base + b * BITMAP_BLOCK_BYTES, BITMAP_BLOCK_BYTES)
    }

    /// The byte range the checksum `k` of block `b` covers (0..9 columns, 9 present, 10 missing).
    pub fn crc_range(&self, k: usize, b: u64) -> (u64, u64) {
        match k {
            k if k < COLUMNS => self.col_block(k, b),
            k if k == COLUMNS => self.bitmap_block(false, b),
            _ => self.bitmap_block(true, b),
        }
    }
}

/// The parsed, verified static header of a series file.
#[derive(Clone, Debug)]
pub struct StaticHeader {
    /// Market of the series.
    pub market: Market,
    /// Interval of the series.
    pub interval: Interval,
    /// Column precision.
    pub precision: Precision,
    /// Symbol of the series.
    pub symbol: Symbol,
    /// Open time of slot 0.
    pub origin_ms: i64,
    /// The layout the header describes.
    pub layout: Layout,
}

fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn get_u64(buf: &[u8], off: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(b)
}
pub(crate) fn get_u32(buf: &[u8], off: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&buf[off..off + 4]);
    u32::from_le_bytes(b)
}

impl StaticHeader {
    /// Encodes the 4 KiB static header, CRC included.
    pub fn encode(&self) -> Vec<u8> {
        let l = &self.layout;
        let mut b = vec![0u8; PAGE as usize];
        b[hdr::MAGIC..hdr::MAGIC + 8].copy_from_slice(&SERIES_MAGIC);
        put_u32(&mut b, hdr::VERSION, SERIES_VERSION);
        put_u32(&mut b, hdr::HEADER_BYTES, PAGE as u32);
        b[hdr::MARKET] = self.market.code();
        b[hdr::INTERVAL] = self.interval.code();
        b[hdr::WIDTH] = l.width as u8;
        put_u32(&mut b, hdr::BLOCK_SLOTS, BLOCK_SLOTS as u32);
        put_u64(&mut b, hdr::ORIGIN, self.origin_ms as u64);
        put_u64(&mut b, hdr::CAPACITY, l.capacity);
        put_u64(&mut b, hdr::FILE_LEN, l.file_len);
        put_u64(&mut b, hdr::TABLE_OFF, l.table_off);
        put_u64(&mut b, hdr::PRESENT_OFF, l.present_off);
        put_u64(&mut b, hdr::MISSING_OFF, l.missing_off);
        for (c, o) in l.col_off.iter().enumerate() {
            put_u64(&mut b, hdr::COL_OFF + 8 * c, *o);
        }
        let sym = self.symbol.as_str().as_bytes();
        b[hdr::SYMBOL_LEN..hdr::SYMBOL_LEN + 2].copy_from_slice(&(sym.len() as u16).to_le_bytes());
        b[hdr::SYMBOL..hdr::SYMBOL + sym.len()].copy_from_slice(sym);
        let crc = checksum::crc32c(&b[..hdr::CRC]);
        put_u32(&mut b, hdr::CRC, crc);
        b
    }

    /// Decodes and verifies a static header read from `path`.
    pub fn decode(b: &[u8], path: &std::path::Path) -> Result<StaticHeader> {
        if b.len() < PAGE as usize || b[..8] != SERIES_MAGIC {
            return Err(Error::BadMagic {
                path: path.into(),
                kind: "series",
            });
        }
        let version = get_u32(b, hdr::VERSION);
        if version != SERIES_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.into(),
                found: version,
                supported: SERIES_VERSION,
            });
        }
        if checksum::crc32c(&b[..hdr::CRC]) != get_u32(b, hdr::CRC) {
            return Err(Error::corrupt(path, "static header checksum mismatch"));
        }
        let bad = |what: &str| Error::corrupt(path, format!("static header: {what}"));
        let market = Market::from_code(b[hdr::MARKET]).ok_or_else(|| bad("unknown market code"))?;
        let interval =
            Interval::from_code(b[hdr::INTERVAL]).ok_or_else(|| bad("unknown interval code"))?;
        let precision = match b[hdr::WIDTH] {
            4 => Precision::F32,
            8 => Precision::F64,
            _ => return Err(bad("unknown value width")),
        };
        let n = b[hdr::SYMBOL_LEN] as usize | (b[hdr::SYMBOL_LEN + 1] as usize) << 8;
        let name = b
            .get(hdr::SYMBOL..hdr::SYMBOL + n)
            .and_then(|s| std::str::from_utf8(s).ok())
            .ok_or_else(|| bad("symbol"))?;
        let symbol = Symbol::new(name).map_err(|_| bad("invalid symbol"))?;
        let layout = Layout::new(interval, precision);
        let origin_ms = get_u64(b, hdr::ORIGIN) as i64;
        let same = get_u32(b, hdr::BLOCK_SLOTS) as u64 == BLOCK_SLOTS
            && get_u32(b, hdr::HEADER_BYTES) as u64 == PAGE
            && origin_ms == interval.origin_ms()
            && get_u64(b, hdr::CAPACITY) == layout.capacity
            && get_u64(b, hdr::FILE_LEN) == layout.file_len
            && get_u64(b, hdr::TABLE_OFF) == layout.table_off
            && get_u64(b, hdr::PRESENT_OFF) == layout.present_off
            && get_u64(b, hdr::MISSING_OFF) == layout.missing_off
            && (0..COLUMNS).all(|c| get_u64(b, hdr::COL_OFF + 8 * c) == layout.col_off[c]);
        if !same {
            return Err(bad("grid or region offsets disagree with format version 1"));
        }
        Ok(StaticHeader {
            market,
            interval,
            precision,
            symbol,
            origin_ms,
            layout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_page_aligned_and_disjoint() {
        for i in Interval::ALL {
            for p in [Precision::F32, Precision::F64] {
                let l = Layout::new(i, p);
                let mut offs = vec![l.table_off, l.present_off, l.missing_off];
                offs.extend(l.col_off);
                offs.push(l.file_len);
                assert!(offs.windows(2).all(|w| w[0] < w[1]), "{i} {p:?}");
                assert!(offs.iter().all(|o| o % PAGE == 0));
            }
        }
        const { assert!(MAX_EXCEPTIONS >= 300) };
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = StaticHeader {
            market: Market::UsdM,
            interval: Interval::H4,
            precision: Precision::F64,
            symbol: Symbol::new("币安人生USDT").unwrap(),
            origin_ms: Interval::H4.origin_ms(),
            layout: Layout::new(Interval::H4, Precision::F64),
        };
        let mut b = h.encode();
        let p = std::path::Path::new("x");
        let d = StaticHeader::decode(&b, p).unwrap();
        assert_eq!(
            (d.market, d.interval, d.precision, d.symbol.as_str()),
            (Market::UsdM, Interval::H4, Precision::F64, "币安人生USDT")
        );
        b[100] ^= 1;
        assert!(StaticHeader::decode(&b, p).unwrap_err().is_corruption());
        b[100] ^= 1;
        b[8] = 2;
        assert!(matches!(
            StaticHeader::decode(&b, p),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        b[0] = b'X';
        assert!(matches!(
            StaticHeader::decode(&b, p),
            Err(Error::BadMagic { .. })
        ));
    }
}
