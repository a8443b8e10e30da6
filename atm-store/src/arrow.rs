//! Arrow views of a series, with the column names of `atm query --format csv`.

use std::sync::Arc;

use arrow_array::builder::{Float32Builder, Float64Builder, TimestampMillisecondBuilder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchReader, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::{Kline, Precision, Series, SeriesKey, Store, SCAN_CHUNK_SLOTS};

/// Names of the key columns [`batches`] puts before the kline columns.
pub const KEY_COLUMN_NAMES: [&str; 3] = ["market", "symbol", "interval"];

/// Column names in Binance's order, as `atm query` prints them.
pub const COLUMN_NAMES: [&str; 11] =
    ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades", "taker_buy_base", "taker_buy_quote"];

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
                klines.iter().for_each(|k| b.append_value(k.values[c] as f32));
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
    RecordBatch::try_new(schema(precision), cols).map_err(|e| Error::InvalidInput(format!("arrow: {e}")))
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
    let mut fields: Vec<Field> = KEY_COLUMN_NAMES.iter().map(|n| Field::new(*n, DataType::Utf8, false)).collect();
    fields.extend(schema(precision).fields().iter().map(|f| f.as_ref().clone()));
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
}

impl KlineBatches {
    /// The next non-empty batch, or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let Some((series, next, last)) = self.current.as_mut() else {
                // Open the next series of the selection that has klines in range.
                let Some(store) = &self.store else { return Ok(None) };
                let Some(key) = self.keys.get(self.index) else { return Ok(None) };
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
            let klines = series.range(iv.open_time(*next).max(self.from), iv.open_time(end).min(self.to))?;
            *next = end + 1;
            if klines.is_empty() {
                continue;
            }
            let batch = to_record_batch(&klines, self.precision)?;
            if self.store.is_none() {
                return Ok(Some(batch));
            }
            let key = series.key();
            let n = klines.len();
            let mut cols: Vec<ArrayRef> = [key.market.to_string(), key.symbol.to_string(), key.interval.to_string()]
                .into_iter()
                .map(|v| Arc::new(StringArray::from(vec![v; n])) as ArrayRef)
                .collect();
            cols.extend(batch.columns().iter().cloned());
            return RecordBatch::try_new(self.schema.clone(), cols).map(Some).map_err(|e| Error::InvalidInput(format!("arrow: {e}")));
        }
    }
}

impl Iterator for KlineBatches {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().map_err(|e| ArrowError::ExternalError(Box::new(e))).transpose()
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Interval, Market, StoreOptions};

    #[test]
    fn batches_cover_the_selection_and_range_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions { create: true, precision: Precision::F64, ..Default::default() }).unwrap();
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
                w.put(&a, &Kline { open_time: t, close_time: t + 59_999, values: [i as f64 + 0.5; 8], trades: i as u32 }).unwrap();
            }
            if i < 10 {
                w.put(&b, &Kline { open_time: t, close_time: t + 59_999, values: [1.25; 8], trades: 2 }).unwrap();
            }
        }
        w.commit().unwrap();
        let (from, to) = (t0 + 5 * 60_000, t0 + (n - 6) * 60_000);
        let got: Vec<RecordBatch> = batches(&store, &[b.clone(), none, a.clone()], from, to).collect::<std::result::Result<_, _>>().unwrap();
        assert!(got.iter().all(|x| x.num_rows() as u64 <= SCAN_CHUNK_SLOTS));
        assert_eq!(got[0].column(1).as_any().downcast_ref::<StringArray>().unwrap().value(0), "BUSD_PERP");
        assert_eq!(got[0].num_rows(), 5, "b from the 5th minute");
        let rows: usize = got[1..].iter().map(|x| x.num_rows()).sum();
        let sa = store.series(&a).unwrap().unwrap();
        assert_eq!(rows, sa.range(from, to).unwrap().len());
        // The kline columns equal the copying reader's, batch by batch.
        let flat: Vec<RecordBatch> = sa.batches(from, to).unwrap().collect::<std::result::Result<_, _>>().unwrap();
        assert_eq!(flat.len(), got.len() - 1);
        for (k, f) in got[1..].iter().zip(&flat) {
            assert_eq!(k.columns()[3..], f.columns()[..]);
            assert_eq!(k.schema().field(3).name(), "open_time");
        }
        assert_eq!(batches(&store, &[], i64::MIN, i64::MAX).count(), 0);
        assert_eq!(sa.batches(t0 - 10, t0 - 1).unwrap().count(), 0);
    }
}
