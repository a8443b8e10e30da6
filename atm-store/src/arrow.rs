//! Arrow views of a series, with the column names of `atm query --format csv`.

use std::sync::Arc;

use arrow_array::builder::{Float32Builder, Float64Builder, TimestampMillisecondBuilder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::{Kline, Precision, Series};

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
