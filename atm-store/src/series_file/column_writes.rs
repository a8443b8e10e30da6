//! Writing column values: through the map for a commit's few klines, or with
//! `pwrite` for bulk runs. Neither publishes anything.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use super::*;
use crate::checksum;
use crate::error::{Error, Result};
use crate::layout::{BLOCK_SLOTS, COLUMNS};
use crate::Precision;
use crate::{Kline, FLOAT_COLUMNS};

impl SeriesFile {
    /// Writes column slices for consecutive slots from `first` with `pwrite`
    /// (through the page cache, without faulting the map), converting to the
    /// store's precision in chunks. Publishes nothing.
    /// Returns the column checksums of the blocks the run covers whole.
    pub fn write_column_slices(
        &self,
        first: u64,
        cols: &crate::writer::Columns<'_>,
    ) -> Result<HashMap<u64, [u32; COLUMNS]>> {
        use crate::writer::FloatColumn;
        // Up to 2 MiB per `pwrite`, ending on 2 MiB boundaries of the file:
        // the kernel keeps such runs in aligned 2 MiB folios, which a reader
        // maps a whole folio per fault (see `write_values_pwrite`; a run
        // straddling the boundaries ends up in smaller folios, and a new
        // process's 30-day read took ~2x the faulting time). 2 MiB still
        // fits in a core's L2 cache (larger buffers made W1 slower).
        const RUN_BYTES: u64 = 2 << 20;
        // Per block: the CRC of each column, and which columns had the block
        // whole in one run (the runs of different columns end at different
        // slots: each column's 2 MiB boundaries fall elsewhere).
        let mut crcs: HashMap<u64, ([u32; COLUMNS], u16)> = HashMap::new();
        let mut buf: Vec<u8> = Vec::with_capacity(RUN_BYTES as usize);
        let n = cols.trades.len();
        if n > 0 {
            for b in first / BLOCK_SLOTS..=(first + n as u64 - 1) / BLOCK_SLOTS {
                self.unzero(b);
            }
        }
        for c in 0..COLUMNS {
            let w = self.layout.col_width(c);
            let mut i = 0;
            while i < n {
                let at = self.layout.col_off[c] + (first + i as u64) * w;
                let j = (i + ((RUN_BYTES - at % RUN_BYTES) / w).max(1) as usize).min(n);
                buf.clear();
                if c == FLOAT_COLUMNS {
                    cols.trades[i..j]
                        .iter()
                        .for_each(|t| buf.extend_from_slice(&t.to_le_bytes()));
                } else {
                    match (cols.values[c], self.precision) {
                        (FloatColumn::F32(v), Precision::F32) => v[i..j]
                            .iter()
                            .for_each(|x| buf.extend_from_slice(&x.to_le_bytes())),
                        (FloatColumn::F32(v), Precision::F64) => v[i..j]
                            .iter()
                            .for_each(|x| buf.extend_from_slice(&(*x as f64).to_le_bytes())),
                        (FloatColumn::F64(v), Precision::F32) => v[i..j]
                            .iter()
                            .for_each(|x| buf.extend_from_slice(&(*x as f32).to_le_bytes())),
                        (FloatColumn::F64(v), Precision::F64) => v[i..j]
                            .iter()
                            .for_each(|x| buf.extend_from_slice(&x.to_le_bytes())),
                    }
                }
                let w = w as usize;
                let (s_lo, s_hi) = (first + i as u64, first + j as u64); // slots [s_lo, s_hi)
                let mut b = s_lo.div_ceil(BLOCK_SLOTS);
                while (b + 1) * BLOCK_SLOTS <= s_hi {
                    let at = ((b * BLOCK_SLOTS - s_lo) as usize) * w;
                    let e = crcs.entry(b).or_insert(([0; COLUMNS], 0));
                    e.0[c] = checksum::crc32c(&buf[at..at + BLOCK_SLOTS as usize * w]);
                    e.1 |= 1 << c;
                    b += 1;
                }
                self.file
                    .write_all_at(&buf, at)
                    .map_err(|e| Error::io("write", &self.path, e))?;
                i = j;
            }
        }
        // A block some column split between two runs is checksummed at apply.
        let all = (1u16 << COLUMNS) - 1;
        Ok(crcs
            .into_iter()
            .filter(|(_, (_, done))| *done == all)
            .map(|(b, (crc, _))| (b, crc))
            .collect())
    }

    /// Writes the values of `puts` (sorted by slot) through the map, column
    /// by column, one contiguous run at a time, without publishing them:
    /// for the few klines of a commit's apply.
    pub fn write_values(&self, puts: &[(u64, Kline)]) {
        self.encode_runs(puts, |off, bytes| {
            self.map.write(off as usize, bytes);
            Ok(())
        })
        .unwrap_or_default(); // the sink never fails
    }

    /// Like [`SeriesFile::write_values`], but with `pwrite`: the bulk path's
    /// fresh blocks. A long run goes to the page cache in one large write,
    /// which the kernel keeps in large folios (up to 2 MiB); a process that
    /// later maps them takes a fraction of the page faults it takes over
    /// pages written 4 KiB at a time through the map (a full scan of a
    /// 3.2M-row column: ~40 µs of faults instead of ~400 µs).
    pub fn write_values_pwrite(&self, puts: &[(u64, Kline)]) -> Result<()> {
        // The blocks' columns are no longer zeros, whether the commit goes
        // through or not: no later kline may patch their checksums from the
        // CRC of zeros.
        let mut blocks: Vec<u64> = puts.iter().map(|(s, _)| s / BLOCK_SLOTS).collect();
        blocks.dedup(); // sorted by slot: one lock per block, not per kline
        for b in blocks {
            self.unzero(b);
        }
        self.encode_runs(puts, |off, bytes| {
            self.file
                .write_all_at(bytes, off)
                .map_err(|e| Error::io("write", &self.path, e))
        })
    }

    /// Encodes the values of `puts` (sorted by slot) column by column, one
    /// contiguous run at a time, handing each run's bytes and file offset to
    /// `sink`.
    pub(super) fn encode_runs(
        &self,
        puts: &[(u64, Kline)],
        mut sink: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut i = 0;
        let mut buf = Vec::new();
        while i < puts.len() {
            let mut j = i + 1;
            while j < puts.len() && puts[j].0 == puts[j - 1].0 + 1 {
                j += 1;
            }
            let run = &puts[i..j];
            let first = run[0].0;
            for c in 0..COLUMNS {
                buf.clear();
                for (_, k) in run {
                    if c == FLOAT_COLUMNS {
                        buf.extend_from_slice(&k.trades.to_le_bytes());
                    } else if self.precision == Precision::F32 {
                        buf.extend_from_slice(&(k.values[c] as f32).to_le_bytes());
                    } else {
                        buf.extend_from_slice(&k.values[c].to_le_bytes());
                    }
                }
                sink(
                    self.layout.col_off[c] + first * self.layout.col_width(c),
                    &buf,
                )?;
            }
            i = j;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Columns, FloatColumn, Interval, Market, SeriesKey, Store, StoreOptions};

    /// A bulk run long enough to cross several 2 MiB boundaries, from a slot
    /// that is not a block's first, with different values in every column:
    /// every column's runs end at other slots, and every block's checksums
    /// must still be right (the blocks some column split are checksummed
    /// at apply).
    #[test]
    fn a_long_bulk_run_has_right_checksums_in_every_column() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
        let n = 1_300_000;
        let cols: Vec<Vec<f32>> = (0..8)
            .map(|c| (0..n).map(|i| (i * 8 + c) as f32).collect())
            .collect();
        let trades: Vec<u32> = (0..n as u32).collect();
        let columns = Columns {
            values: std::array::from_fn(|c| FloatColumn::F32(&cols[c])),
            trades: &trades,
        };
        let first = 1_567_997_820_000; // 2019-09-09 02:57, inside a block
        let mut w = store.writer().unwrap();
        w.commit_columns(&key, first, &columns).unwrap();
        w.close().unwrap();
        let s = store.series(&key).unwrap().unwrap();
        assert_eq!(s.verify(), Vec::<String>::new());
        let last = s.tail(1).unwrap();
        assert_eq!(last[0].values[4], ((n - 1) * 8 + 4) as f64);
        assert_eq!(last[0].trades, n as u32 - 1);
    }
}
