//! Arrow views of a series, with the column names of `atm query --format csv`.

use std::sync::Arc;

use arrow_array::builder::{
    Float32Builder, Float64Builder, TimestampMillisecondBuilder, UInt32Builder,
};
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, RecordBatch, RecordBatchReader, StringArray,
    TimestampMillisecondArray, UInt32Array,
};
use arrow_buffer::ScalarBuffer;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::{Kline, Precision, Series, SeriesKey, Store, SCAN_CHUNK_SLOTS};

/// Names of the key columns [`batches`] puts before the kline columns.
pub const KEY_COLUMN_NAMES: [&str; 3] = ["market", "symbol", "interval"];

/// Column names in Binance's order, as `atm query` prints them.
pub const COLUMN_NAMES: [&str; 11] = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
];

/// The Arrow schema of klines at `precision`: times as UTC millisecond
/// timestamps, floats as `Float32`/`Float64`, trades as `UInt32`.
pub fn schema(precision: Precision) -> SchemaRef {
    let float = match precision {
        Precision::F32 => DataType::Float32,
        Precision::F64 => DataType::Float64,
    };
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let fields: Vec<Field> = COLUMN_NAMES
        .iter()
        .map(|&n| {
            let t = match n {
                "open_time" | "close_time" => ts.clone(),
                "trades" => DataType::UInt32,
                _ => float.clone(),
            };
            Field::new(n, t, false)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Builds a record batch from klines.
pub fn to_record_batch(klines: &[Kline], precision: Precision) -> Result<RecordBatch> {
    let n = klines.len();
    let mut open_t = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut close_t = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut trades = UInt32Builder::with_capacity(n);
    for k in klines {
        open_t.append_value(k.open_time);
        close_t.append_value(k.close_time);
        trades.append_value(k.trades);
    }
    // Float columns in Binance order: open high low close volume | quote tbb tbq.
    let float = |c: usize| -> ArrayRef {
        match precision {
            Precision::F32 => {
                let mut b = Float32Builder::with_capacity(n);
                klines
                    .iter()
                    .for_each(|k| b.append_value(k.values[c] as f32));
                Arc::new(b.finish())
            }
            Precision::F64 => {
                let mut b = Float64Builder::with_capacity(n);
                klines.iter().for_each(|k| b.append_value(k.values[c]));
                Arc::new(b.finish())
            }
        }
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(open_t.finish()),
        float(0),
        float(1),
        float(2),
        float(3),
        float(4),
        Arc::new(close_t.finish()),
        float(5),
        Arc::new(trades.finish()),
        float(6),
        float(7),
    ];
    RecordBatch::try_new(schema(precision), cols)
        .map_err(|e| Error::InvalidInput(format!("arrow: {e}")))
}

impl Series {
    /// The present klines with open time in `from..=to` as one Arrow record batch.
    ///
    /// ```
    /// # use atm_store::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
    /// # let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::D1).unwrap();
    /// # let mut w = store.writer().unwrap();
    /// # let t = 1_704_067_200_000;
    /// # w.put(&key, &Kline { open_time: t, close_time: t + 86_399_999, values: [1.5; 8], trades: 9 }).unwrap();
    /// # w.commit().unwrap();
    /// let s = store.series(&key).unwrap().unwrap();
    /// let batch = s.record_batch(i64::MIN, i64::MAX).unwrap();
    /// assert_eq!(batch.num_rows(), 1);
    /// assert_eq!(batch.schema().field(8).name(), "trades");
    /// ```
    pub fn record_batch(&self, from: i64, to: i64) -> Result<RecordBatch> {
        to_record_batch(&self.range(from, to)?, self.precision())
    }
}

/// The schema of [`batches`]: `market`, `symbol`, `interval` (UTF-8; the
/// interval as the API names it) and then the kline columns of [`schema`].
pub fn keyed_schema(precision: Precision) -> SchemaRef {
    let mut fields: Vec<Field> = KEY_COLUMN_NAMES
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, false))
        .collect();
    fields.extend(
        schema(precision)
            .fields()
            .iter()
            .map(|f| f.as_ref().clone()),
    );
    Arc::new(Schema::new(fields))
}

/// Arrow record batches of the present klines of some series over a time
/// range, read lazily: each batch holds at most one chunk
/// ([`SCAN_CHUNK_SLOTS`] slots) of one series, series in the order given,
/// so memory stays bounded whatever the selection. An [`arrow_array::RecordBatchReader`]:
/// hand it to Parquet, IPC or Flight writers, or to DataFusion.
///
/// Batches are copies (one pass over each chunk of the mapped columns, whose
/// checksums are verified first): a batch is a consistent snapshot that a
/// later commit (a repair rewriting a kline) never changes under its reader.
/// For reads without a copy, [`Series::view`] lends the mapped columns as
/// slices for the length of a closure.
///
/// ```
/// use arrow_array::RecordBatchReader;
/// use atm_store::{Interval, Kline, Market, SeriesKey, Store, StoreOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
/// let keys = [
///     SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::H1).unwrap(),
///     SeriesKey::parse(Market::UsdM, "ETHUSDT", Interval::H1).unwrap(),
/// ];
/// let mut w = store.writer().unwrap();
/// let t = 1_704_067_200_000;
/// for (n, key) in keys.iter().enumerate() {
///     for h in 0..24 * (n as i64 + 1) {
///         let open_time = t + h * 3_600_000;
///         w.put(key, &Kline { open_time, close_time: open_time + 3_599_999, values: [1.0; 8], trades: 1 }).unwrap();
///     }
/// }
/// w.commit().unwrap();
/// let reader = atm_store::arrow::batches(&store, &keys, i64::MIN, i64::MAX);
/// assert_eq!(reader.schema().field(1).name(), "symbol");
/// let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
/// assert_eq!(rows, 24 + 48);
/// ```
pub fn batches(store: &Store, keys: &[SeriesKey], from: i64, to: i64) -> KlineBatches {
    KlineBatches {
        store: Some(store.clone()),
        keys: keys.to_vec(),
        from,
        to,
        schema: keyed_schema(store.precision()),
        precision: store.precision(),
        index: 0,
        current: None,
        zero_copy: false,
    }
}

/// The reader [`batches`] and [`Series::batches`] return.
pub struct KlineBatches {
    /// `None` for one series' batches without key columns.
    store: Option<Store>,
    keys: Vec<SeriesKey>,
    from: i64,
    to: i64,
    schema: SchemaRef,
    precision: Precision,
    /// Next key to open.
    index: usize,
    /// The series being read: it, the next slot, the last slot.
    current: Option<(Series, u64, u64)>,
    zero_copy: bool,
}

/// Keeps a series file (and so its map) alive while Arrow buffers over it live.
struct KeepMapped(#[allow(dead_code)] Arc<crate::series_file::SeriesFile>);

// Arrow's buffer owners must be unwind-safe: this one only holds the file
// alive and is never read or changed, so a panic cannot leave it broken.
impl std::panic::RefUnwindSafe for KeepMapped {}

impl KlineBatches {
    /// Builds the value columns of chunks whose slots are all present (and
    /// hot, and with no irregular kline) as Arrow buffers over the mapped
    /// columns, without a copy; other chunks are copied as before.
    ///
    /// The price: such a batch reads the store's pages as long as it lives,
    /// so a later commit that corrects a kline in its range (a repair from
    /// REST, rare) shows through, and may be seen half-applied. Use it on
    /// stores no writer corrects while the batches live (exports, research
    /// copies), or when that is acceptable.
    pub fn zero_copy(mut self, on: bool) -> KlineBatches {
        self.zero_copy = on;
        self
    }

    /// A batch of slots `a..=z` over the mapped columns, if they allow it.
    fn mapped_batch(&self, series: &Series, a: u64, z: u64) -> Result<Option<RecordBatch>> {
        if series
            .exceptions()?
            .iter()
            .any(|e| (a..=z).contains(&e.slot))
        {
            return Ok(None);
        }
        let file = series.file();
        let owner: Arc<dyn arrow_buffer::alloc::Allocation> = Arc::new(KeepMapped(file.clone()));
        let buffers = file.read_section(a, z, crate::series::ALL_COLUMNS, |v| {
            if !v.all_present() {
                return None;
            }
            (0..=crate::FLOAT_COLUMNS)
                .map(|c| v.arrow_buffer(c, owner.clone()))
                .collect::<Option<Vec<_>>>()
        })?;
        let Some(buffers) = buffers else {
            return Ok(None);
        };
        let n = (z - a + 1) as usize;
        let iv = series.key().interval;
        let times = |f: &dyn Fn(u64) -> i64| -> ArrayRef {
            Arc::new(
                TimestampMillisecondArray::from((a..=z).map(f).collect::<Vec<i64>>())
                    .with_timezone("UTC"),
            )
        };
        let float = |c: usize| -> ArrayRef {
            match self.precision {
                Precision::F32 => Arc::new(Float32Array::new(
                    ScalarBuffer::new(buffers[c].clone(), 0, n),
                    None,
                )),
                Precision::F64 => Arc::new(Float64Array::new(
                    ScalarBuffer::new(buffers[c].clone(), 0, n),
                    None,
                )),
            }
        };
        let trades: ArrayRef = Arc::new(UInt32Array::new(
            ScalarBuffer::new(buffers[crate::FLOAT_COLUMNS].clone(), 0, n),
            None,
        ));
        let cols = vec![
            times(&|s| iv.open_time(s)),
            float(0),
            float(1),
            float(2),
            float(3),
            float(4),
            times(&|s| iv.close_time(s)),
            float(5),
            trades,
            float(6),
            float(7),
        ];
        RecordBatch::try_new(schema(self.precision), cols)
            .map(Some)
            .map_err(|e| Error::InvalidInput(format!("arrow: {e}")))
    }

    /// The next non-empty batch, or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let Some((series, next, last)) = self.current.as_mut() else {
                // Open the next series of the selection that has klines in range.
                let Some(store) = &self.store else {
                    return Ok(None);
                };
                let Some(key) = self.keys.get(self.index) else {
                    return Ok(None);
                };
                self.index += 1;
                if let Some(s) = store.series(key)? {
                    if let Some((a, z)) = s.slot_span(self.from, self.to)? {
                        self.current = Some((s, a, z));
                    }
                }
                continue;
            };
            if *next > *last {
                self.current = None;
                if self.store.is_none() {
                    return Ok(None);
                }
                continue;
            }
            let iv = series.key().interval;
            let end = (*last).min(*next - *next % SCAN_CHUNK_SLOTS + SCAN_CHUNK_SLOTS - 1);
            let (a, z) = (*next, end);
            *next = end + 1;
            let series = series.clone();
            let mapped = if self.zero_copy {
                self.mapped_batch(&series, a, z)?
            } else {
                None
            };
            let batch = match mapped {
                Some(b) => b,
                None => {
                    let klines = series
                        .range(iv.open_time(a).max(self.from), iv.open_time(z).min(self.to))?;
                    if klines.is_empty() {
                        continue;
                    }
                    to_record_batch(&klines, self.precision)?
                }
            };
            let n = batch.num_rows();
            if self.store.is_none() {
                return Ok(Some(batch));
            }
            let key = series.key();
            let mut cols: Vec<ArrayRef> = [
                key.market.to_string(),
                key.symbol.to_string(),
                key.interval.to_string(),
            ]
            .into_iter()
            .map(|v| Arc::new(StringArray::from(vec![v; n])) as ArrayRef)
            .collect();
            cols.extend(batch.columns().iter().cloned());
            return RecordBatch::try_new(self.schema.clone(), cols)
                .map(Some)
                .map_err(|e| Error::InvalidInput(format!("arrow: {e}")));
        }
    }
}

impl Iterator for KlineBatches {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
            .map_err(|e| ArrowError::ExternalError(Box::new(e)))
            .transpose()
    }
}

impl RecordBatchReader for KlineBatches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Series {
    /// This series' present klines in `from..=to` as Arrow record batches of
    /// at most one chunk each, with the kline columns of [`schema`] only
    /// (see [`batches`] for a selection of series, and for what a batch is).
    pub fn batches(&self, from: i64, to: i64) -> Result<KlineBatches> {
        let current = self.slot_span(from, to)?.map(|(a, z)| (self.clone(), a, z));
        Ok(KlineBatches {
            store: None,
            keys: Vec::new(),
            from,
            to,
            schema: schema(self.precision()),
            precision: self.precision(),
            index: 0,
            current,
            zero_copy: false,
        })
    }
}

/// The state of a slot in a [`Window`]: not fetched.
pub const STATE_UNKNOWN: u8 = 0;
/// The state of a slot in a [`Window`]: a kline is stored.
pub const STATE_PRESENT: u8 = 1;
/// The state of a slot in a [`Window`]: the exchange has no kline there.
pub const STATE_MISSING: u8 = 2;

/// Every grid slot of a series over a time range, column by column, as
/// Arrow buffers: over the mapped file (zero-copy) where the window's blocks
/// are hot, copied where it touches cold (compressed) blocks. What
/// [`Series::window`] returns, and what the Python package hands out as
/// numpy arrays.
///
/// The window was read in one seqlock section, after verifying the
/// checksums of its columns and bitmaps: `states` and, at the moment the
/// section validated, every column held one consistent snapshot. A
/// zero-copy buffer keeps reading the store's pages afterwards, so a later
/// commit into the window's slots (a kline filling an unknown slot, a
/// correction from REST) shows through its values, never through `states`;
/// a block that `atm compact` later punches out of the file reads as zeros.
/// The buffers keep the series file (and its map) alive as long as they live.
pub struct Window {
    /// The series.
    pub key: SeriesKey,
    /// Precision of the float columns.
    pub precision: Precision,
    /// The grid slot of the first row.
    pub first_slot: u64,
    /// Rows (grid slots).
    pub len: usize,
    /// The state of each row.
    pub states: States,
    /// Columns by [`Column::index`] (0..8 the floats in store order, 8 the
    /// trades): `None` where not requested.
    pub columns: Vec<Option<WindowColumn>>,
    /// Klines of the window whose open or close time is not their slot's regular one.
    pub exceptions: Vec<crate::Exception>,
}

/// The state of each row of a [`Window`]: [`STATE_UNKNOWN`],
/// [`STATE_PRESENT`] or [`STATE_MISSING`]. A window with no gap (the usual
/// read of a synced series) holds one word, not a byte per row, so reading
/// the value columns of millions of klines allocates nothing per row.
///
/// ```
/// use atm_store::arrow::{States, STATE_PRESENT, STATE_UNKNOWN};
/// let s = States::from_bytes(vec![STATE_PRESENT, STATE_UNKNOWN]);
/// assert_eq!((s.len(), s.get(1), s.all_present()), (2, STATE_UNKNOWN, false));
/// assert_eq!(States::AllPresent(3).to_vec(), vec![STATE_PRESENT; 3]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum States {
    /// This many rows, every one present.
    AllPresent(usize),
    /// One state per row.
    Each(Vec<u8>),
}

impl States {
    /// The states of `bytes`, folded to [`States::AllPresent`] when there is no gap.
    pub fn from_bytes(bytes: Vec<u8>) -> States {
        if bytes.iter().all(|&s| s == STATE_PRESENT) {
            States::AllPresent(bytes.len())
        } else {
            States::Each(bytes)
        }
    }

    /// Rows.
    pub fn len(&self) -> usize {
        match self {
            States::AllPresent(n) => *n,
            States::Each(v) => v.len(),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state of row `i` (panics past the end, like indexing).
    pub fn get(&self, i: usize) -> u8 {
        match self {
            States::AllPresent(n) => {
                assert!(i < *n, "row {i} of {n}");
                STATE_PRESENT
            }
            States::Each(v) => v[i],
        }
    }

    /// True when every row is present.
    pub fn all_present(&self) -> bool {
        match self {
            States::AllPresent(_) => true,
            States::Each(v) => v.iter().all(|&s| s == STATE_PRESENT),
        }
    }

    /// Rows that are present.
    pub fn present(&self) -> usize {
        match self {
            States::AllPresent(n) => *n,
            States::Each(v) => v.iter().filter(|&&s| s == STATE_PRESENT).count(),
        }
    }

    /// One byte per row (allocated).
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            States::AllPresent(n) => vec![STATE_PRESENT; *n],
            States::Each(v) => v.clone(),
        }
    }
}

/// One column of a [`Window`].
#[derive(Clone)]
pub struct WindowColumn {
    /// `len` little-endian values of the stored type (`f32`/`f64`, `u32` trades).
    pub buffer: arrow_buffer::Buffer,
    /// True when `buffer` lies over the mapped file, false for a copy.
    pub zero_copy: bool,
}

impl Window {
    /// Open times of the rows (irregular klines with their exact times).
    pub fn open_times(&self) -> Vec<i64> {
        self.times(|iv, s| iv.open_time(s), |e| e.open_time)
    }

    /// Close times of the rows (irregular klines with their exact times).
    pub fn close_times(&self) -> Vec<i64> {
        self.times(|iv, s| iv.close_time(s), |e| e.close_time)
    }

    fn times(
        &self,
        regular: impl Fn(crate::Interval, u64) -> i64,
        exact: impl Fn(&crate::Exception) -> i64,
    ) -> Vec<i64> {
        let iv = self.key.interval;
        let mut t: Vec<i64> = (0..self.len as u64)
            .map(|i| regular(iv, self.first_slot + i))
            .collect();
        for e in &self.exceptions {
            t[(e.slot - self.first_slot) as usize] = exact(e);
        }
        t
    }
}

impl Series {
    /// Every grid slot with open time in `from..=to` (inclusive, epoch ms),
    /// clipped to the series' span (first to last present kline; `None`
    /// when they do not overlap), with the `columns` asked for; with
    /// `tail = Some(n)` the window starts at the n-th newest present kline
    /// of that range instead. See [`Window`] for what it holds and how it
    /// ages; with `copy` every column is copied inside the read section
    /// instead, a private snapshot that no later commit changes.
    pub fn window(
        &self,
        from: i64,
        to: i64,
        tail: Option<usize>,
        columns: &[crate::Column],
        copy: bool,
    ) -> Result<Option<Window>> {
        let Some((mut a, z)) = self.slot_span(from, to)? else {
            return Ok(None);
        };
        if let Some(n) = tail {
            if n == 0 {
                return Ok(None);
            }
            let back = self.file().present_slots_back(z, n)?;
            match back.last() {
                Some(&lo) => a = a.max(lo),
                None => return Ok(None),
            }
        }
        let mask = columns
            .iter()
            .fold(crate::series::STATES, |m, c| m | 1 << c.index());
        let file = self.file();
        file.expect_verify(a, z, mask);
        let owner: Arc<dyn arrow_buffer::alloc::Allocation> = Arc::new(KeepMapped(file.clone()));
        let precision = self.precision();
        let (states, cols) = file.read_section(a, z, mask, |v| {
            let states = if v.all_present() {
                States::AllPresent(v.len())
            } else {
                States::Each(
                    (0..v.len())
                        .map(|i| match v.state(i) {
                            crate::SlotState::Unknown => STATE_UNKNOWN,
                            crate::SlotState::Present => STATE_PRESENT,
                            crate::SlotState::Missing => STATE_MISSING,
                        })
                        .collect(),
                )
            };
            let cols: Vec<Option<WindowColumn>> = (0..=crate::FLOAT_COLUMNS)
                .map(|c| {
                    if mask & (1 << c) == 0 {
                        return None;
                    }
                    if !copy {
                        if let Some(buffer) = v.arrow_buffer(c, owner.clone()) {
                            return Some(WindowColumn {
                                buffer,
                                zero_copy: true,
                            });
                        }
                    }
                    // A copy, or cold blocks (the section copied them out):
                    // copied here, inside the section.
                    let buffer = match (c == crate::FLOAT_COLUMNS, precision) {
                        (true, _) => arrow_buffer::Buffer::from_vec(v.trades().to_vec()),
                        (false, Precision::F32) => {
                            arrow_buffer::Buffer::from_vec(v.f32s(c).unwrap_or_default().to_vec())
                        }
                        (false, Precision::F64) => {
                            arrow_buffer::Buffer::from_vec(v.f64s(c).unwrap_or_default().to_vec())
                        }
                    };
                    Some(WindowColumn {
                        buffer,
                        zero_copy: false,
                    })
                })
                .collect();
            (states, cols)
        })?;
        let exceptions = self
            .exceptions()?
            .into_iter()
            .filter(|e| (a..=z).contains(&e.slot))
            .collect();
        Ok(Some(Window {
            key: self.key().clone(),
            precision,
            first_slot: a,
            len: (z - a + 1) as usize,
            states,
            columns: cols,
            exceptions,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kline;
    use crate::{Interval, Market, StoreOptions};

    #[test]
    fn batches_cover_the_selection_and_range_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                precision: Precision::F64,
                ..Default::default()
            },
        )
        .unwrap();
        let a = SeriesKey::parse(Market::Spot, "AUSDT", Interval::M1).unwrap();
        let b = SeriesKey::parse(Market::CoinM, "BUSD_PERP", Interval::M1).unwrap();
        let none = SeriesKey::parse(Market::Spot, "NONE", Interval::M1).unwrap();
        let t0 = 1_704_067_200_000;
        let n = SCAN_CHUNK_SLOTS as i64 * 2 + 100;
        let mut w = store.writer().unwrap();
        for i in 0..n {
            let t = t0 + i * 60_000;
            // A gap in the middle of a.
            if !(1000..2000).contains(&i) {
                w.put(
                    &a,
                    &Kline {
                        open_time: t,
                        close_time: t + 59_999,
                        values: [i as f64 + 0.5; 8],
                        trades: i as u32,
                    },
                )
                .unwrap();
            }
            if i < 10 {
                w.put(
                    &b,
                    &Kline {
                        open_time: t,
                        close_time: t + 59_999,
                        values: [1.25; 8],
                        trades: 2,
                    },
                )
                .unwrap();
            }
        }
        w.commit().unwrap();
        let (from, to) = (t0 + 5 * 60_000, t0 + (n - 6) * 60_000);
        let got: Vec<RecordBatch> = batches(&store, &[b.clone(), none, a.clone()], from, to)
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert!(got.iter().all(|x| x.num_rows() as u64 <= SCAN_CHUNK_SLOTS));
        assert_eq!(
            got[0]
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(0),
            "BUSD_PERP"
        );
        assert_eq!(got[0].num_rows(), 5, "b from the 5th minute");
        let rows: usize = got[1..].iter().map(|x| x.num_rows()).sum();
        let sa = store.series(&a).unwrap().unwrap();
        assert_eq!(rows, sa.range(from, to).unwrap().len());
        // The kline columns equal the copying reader's, batch by batch.
        let flat: Vec<RecordBatch> = sa
            .batches(from, to)
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(flat.len(), got.len() - 1);
        for (k, f) in got[1..].iter().zip(&flat) {
            assert_eq!(k.columns()[3..], f.columns()[..]);
            assert_eq!(k.schema().field(3).name(), "open_time");
        }
        assert_eq!(batches(&store, &[], i64::MIN, i64::MAX).count(), 0);
        // Zero-copy: the same batches; whole-present chunks point into the map.
        let zc: Vec<RecordBatch> = sa
            .batches(from, to)
            .unwrap()
            .zero_copy(true)
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(zc, flat);
        let mapped = sa
            .view(
                t0 + 3 * SCAN_CHUNK_SLOTS as i64 * 60_000 / 2,
                t0 + 3 * SCAN_CHUNK_SLOTS as i64 * 60_000 / 2,
                &[crate::Column::Close],
                |v| v.f64s(3).unwrap().as_ptr() as usize,
            )
            .unwrap()
            .unwrap();
        let zero_copied = zc.iter().any(|b| {
            let col = b
                .column(4)
                .as_any()
                .downcast_ref::<arrow_array::Float64Array>()
                .unwrap()
                .values();
            let p = col.as_ptr() as usize;
            (p..p + col.len() * 8).contains(&mapped)
        });
        assert!(
            zero_copied,
            "a whole-present chunk's close column is the mapped column"
        );
        let copied_gap = zc[0].num_rows() < SCAN_CHUNK_SLOTS as usize - 5;
        assert!(
            copied_gap,
            "the chunk with the gap holds its present klines only"
        );
        assert_eq!(sa.batches(t0 - 10, t0 - 1).unwrap().count(), 0);
    }

    #[test]
    fn a_window_holds_every_slot_of_the_range_over_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        let key = SeriesKey::parse(Market::UsdM, "WUSDT", Interval::M1).unwrap();
        let t0 = 1_704_067_200_000;
        let mut w = store.writer().unwrap();
        for i in 0..100i64 {
            // Slots 10..20 unknown, 20..25 known-missing.
            if (10..25).contains(&i) {
                continue;
            }
            let t = t0 + i * 60_000;
            w.put(
                &key,
                &Kline {
                    open_time: t,
                    close_time: t + 59_999,
                    values: [i as f64; 8],
                    trades: i as u32,
                },
            )
            .unwrap();
        }
        w.mark_missing(&key, t0 + 20 * 60_000, t0 + 24 * 60_000)
            .unwrap();
        w.commit().unwrap();
        let s = store.series(&key).unwrap().unwrap();
        let all = s
            .window(i64::MIN, i64::MAX, None, &crate::Column::ALL, false)
            .unwrap()
            .unwrap();
        assert_eq!(all.len, 100);
        assert_eq!(all.open_times()[0], t0);
        assert_eq!(all.close_times()[99], t0 + 99 * 60_000 + 59_999);
        let states = all.states.to_vec();
        assert_eq!(states[..10], [STATE_PRESENT; 10]);
        assert_eq!(states[10..20], [STATE_UNKNOWN; 10]);
        assert_eq!(states[20..25], [STATE_MISSING; 5]);
        let close = all.columns[crate::Column::Close.index()].as_ref().unwrap();
        assert!(close.zero_copy);
        assert_eq!(close.buffer.typed_data::<f32>()[42], 42.0);
        let trades = all.columns[crate::Column::Trades.index()].as_ref().unwrap();
        assert_eq!(trades.buffer.typed_data::<u32>()[99], 99);
        // The buffer is the mapped column itself.
        let mapped = s
            .view(t0, t0, &[crate::Column::Close], |v| {
                v.f32s(3).unwrap().as_ptr() as usize
            })
            .unwrap()
            .unwrap();
        assert_eq!(close.buffer.as_ptr() as usize, mapped);
        // A range, a tail, a column selection, nothing.
        let r = s
            .window(
                t0 + 5 * 60_000,
                t0 + 30 * 60_000,
                None,
                &[crate::Column::Open],
                false,
            )
            .unwrap()
            .unwrap();
        assert_eq!((r.first_slot, r.len), (all.first_slot + 5, 26));
        assert!(r.columns[crate::Column::Open.index()].is_some());
        assert!(r.columns[crate::Column::Close.index()].is_none());
        let t = s
            .window(i64::MIN, t0 + 30 * 60_000, Some(8), &[], false)
            .unwrap()
            .unwrap();
        assert_eq!(
            t.first_slot,
            all.first_slot + 8,
            "8 present: 8, 9 and 25..=30"
        );
        assert!(s
            .window(t0 - 10, t0 - 1, None, &[], false)
            .unwrap()
            .is_none());
        assert!(s
            .window(i64::MIN, i64::MAX, Some(0), &[], false)
            .unwrap()
            .is_none());
        let copied = s
            .window(i64::MIN, i64::MAX, None, &[crate::Column::Close], true)
            .unwrap()
            .unwrap();
        let c = copied.columns[crate::Column::Close.index()]
            .as_ref()
            .unwrap();
        assert!(!c.zero_copy);
        assert_ne!(c.buffer.as_ptr() as usize, mapped);
        assert_eq!(c.buffer.typed_data::<f32>()[42], 42.0);
    }
}
