//! Cold blocks: `atm compact` moves the column bytes of sealed blocks into a
//! zstd-compressed side file, `<SYMBOL>.klz`, beside the series file.
//!
//! ```text
//! header (24 bytes): magic "ATMCOLD\0", version u32, count u32,
//!                    CRC-32C of the index u32, zero u32
//! index:  count x 32 bytes: block u64, frame offset u64, frame length u64,
//!         CRC-32C of the frame u32, zero u32 (sorted by block)
//! frames: zstd of the block's 9 column ranges, each byte-transposed
//!         (byte 0 of every value, then byte 1, ...), which groups the
//!         slowly-changing exponent bytes and compresses far better.
//! ```
//! The block's entry in the series file carries the flag `FLAG_COLD` and,
//! as for hot blocks, the CRC-32C of each raw column range, checked after
//! decompression. The file is replaced atomically at each compaction.

use crate::checksum;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::{get_u32, get_u64, Layout, BLOCK_SLOTS, COLUMNS};

/// Magic bytes of a cold file.
pub const COLD_MAGIC: [u8; 8] = *b"ATMCOLD\0";
/// Cold-file format version.
pub const COLD_VERSION: u32 = 1;
const HEADER: usize = 24;
const INDEX_ENTRY: usize = 32;
/// zstd level for sealed data: written once, read many times.
const LEVEL: i32 = 9;

/// The path of the cold file of the series file `kl`.
pub(crate) fn cold_path(kl: &Path) -> PathBuf {
    kl.with_extension("klz")
}

/// Bytes of one block's 9 column ranges, concatenated.
pub(crate) fn raw_block_len(l: &Layout) -> usize {
    (0..COLUMNS)
        .map(|c| (BLOCK_SLOTS * l.col_width(c)) as usize)
        .sum()
}

fn transpose(col: &[u8], w: usize, out: &mut Vec<u8>) {
    let n = col.len() / w;
    for k in 0..w {
        out.extend((0..n).map(|i| col[i * w + k]));
    }
}

fn untranspose(t: &[u8], w: usize, out: &mut Vec<u8>) {
    let n = t.len() / w;
    let start = out.len();
    out.resize(start + t.len(), 0);
    for k in 0..w {
        for i in 0..n {
            out[start + i * w + k] = t[k * n + i];
        }
    }
}

/// Each column's value width and byte range inside a raw block.
fn column_spans(l: &Layout) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> + '_ {
    (0..COLUMNS).scan(0usize, |at, c| {
        let w = l.col_width(c) as usize;
        let start = *at;
        *at += BLOCK_SLOTS as usize * w;
        Some((w, start..*at))
    })
}

/// Compresses a block's raw column bytes.
pub(crate) fn compress(l: &Layout, raw: &[u8]) -> Result<Vec<u8>> {
    let mut shuffled = Vec::with_capacity(raw.len());
    for (w, span) in column_spans(l) {
        transpose(&raw[span], w, &mut shuffled);
    }
    zstd::bulk::compress(&shuffled, LEVEL).map_err(|e| Error::InvalidInput(format!("zstd: {e}")))
}

/// Decompresses a frame back into the block's raw column bytes.
pub(crate) fn decompress(l: &Layout, frame: &[u8], path: &Path, block: u64) -> Result<Vec<u8>> {
    let n = raw_block_len(l);
    let shuffled = zstd::bulk::decompress(frame, n)
        .map_err(|e| Error::corrupt(path, format!("block {block}: zstd frame: {e}")))?;
    if shuffled.len() != n {
        return Err(Error::corrupt(
            path,
            format!(
                "block {block}: frame holds {} bytes, expected {n}",
                shuffled.len()
            ),
        ));
    }
    let mut raw = Vec::with_capacity(n);
    for (w, span) in column_spans(l) {
        untranspose(&shuffled[span], w, &mut raw);
    }
    Ok(raw)
}

/// An open cold file: its index in memory, frames read on demand.
pub(crate) struct ColdFile {
    path: PathBuf,
    file: File,
    index: HashMap<u64, (u64, u64, u32)>,
}

impl ColdFile {
    /// Opens the cold file at `path`; `None` if there is none.
    pub fn open(path: &Path) -> Result<Option<ColdFile>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        let mut head = [0u8; HEADER];
        file.read_exact_at(&mut head, 0)
            .map_err(|_| Error::corrupt(path, "cold file: truncated header"))?;
        if head[..8] != COLD_MAGIC {
            return Err(Error::BadMagic {
                path: path.into(),
                kind: "cold block",
            });
        }
        let v = get_u32(&head, 8);
        if v != COLD_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.into(),
                found: v,
                supported: COLD_VERSION,
            });
        }
        let count = get_u32(&head, 12) as usize;
        let mut idx = vec![0u8; count * INDEX_ENTRY];
        file.read_exact_at(&mut idx, HEADER as u64)
            .map_err(|_| Error::corrupt(path, "cold file: truncated index"))?;
        if checksum::crc32c(&idx) != get_u32(&head, 16) {
            return Err(Error::corrupt(path, "cold file: index checksum mismatch"));
        }
        let index = idx
            .chunks_exact(INDEX_ENTRY)
            .map(|e| {
                (
                    get_u64(e, 0),
                    (get_u64(e, 8), get_u64(e, 16), get_u32(e, 24)),
                )
            })
            .collect();
        Ok(Some(ColdFile {
            path: path.to_path_buf(),
            file,
            index,
        }))
    }

    /// The verified compressed frame of `block`, if this file holds it.
    pub fn frame(&self, block: u64) -> Result<Option<Vec<u8>>> {
        let Some(&(off, len, crc)) = self.index.get(&block) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, off)
            .map_err(|_| Error::corrupt(&self.path, format!("block {block}: truncated frame")))?;
        if checksum::crc32c(&buf) != crc {
            return Err(Error::corrupt(
                &self.path,
                format!("block {block}: frame checksum mismatch"),
            ));
        }
        Ok(Some(buf))
    }

    /// Blocks held.
    pub fn blocks(&self) -> impl Iterator<Item = u64> + '_ {
        self.index.keys().copied()
    }

    /// Writes a cold file holding `frames` (block, compressed bytes) atomically.
    pub fn write(path: &Path, mut frames: Vec<(u64, Vec<u8>)>) -> Result<()> {
        frames.sort_by_key(|(b, _)| *b);
        let mut index = Vec::with_capacity(frames.len() * INDEX_ENTRY);
        let mut off = (HEADER + frames.len() * INDEX_ENTRY) as u64;
        for (b, f) in &frames {
            index.extend_from_slice(&b.to_le_bytes());
            index.extend_from_slice(&off.to_le_bytes());
            index.extend_from_slice(&(f.len() as u64).to_le_bytes());
            index.extend_from_slice(&checksum::crc32c(f).to_le_bytes());
            index.extend_from_slice(&[0; 4]);
            off += f.len() as u64;
        }
        let mut bytes = Vec::with_capacity(off as usize);
        bytes.extend_from_slice(&COLD_MAGIC);
        bytes.extend_from_slice(&COLD_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&checksum::crc32c(&index).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&index);
        for (_, f) in &frames {
            bytes.extend_from_slice(f);
        }
        crate::store::atomic_write(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Interval, Precision};

    #[test]
    fn frames_round_trip() {
        let l = Layout::new(Interval::M1, Precision::F32);
        let raw: Vec<u8> = (0..raw_block_len(&l))
            .map(|i| ((i / 7) % 13) as u8)
            .collect();
        let f = compress(&l, &raw).unwrap();
        assert!(f.len() < raw.len() / 4);
        assert_eq!(decompress(&l, &f, Path::new("x"), 0).unwrap(), raw);
        assert!(decompress(&l, &f[..f.len() / 2], Path::new("x"), 0).is_err());
    }
}
