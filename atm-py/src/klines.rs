//! `Klines`: the grid slots of a range, column by column.

use std::sync::Arc;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, RecordBatch, RecordBatchIterator,
    TimestampMillisecondArray, UInt32Array,
};
use arrow_buffer::{ArrowNativeType, Buffer, ScalarBuffer};
use arrow_schema::{Schema, SchemaRef};
use atm_store::arrow::{States, Window, WindowColumn, COLUMN_NAMES, STATE_PRESENT};
use atm_store::{Column, Exception, Precision, SeriesKey, FLOAT_COLUMNS};
use numpy::{Element, IntoPyArray};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::zero_copy;

/// Klines of one series over a range of grid slots (the native half of
/// `atm.Klines`).
#[pyclass(frozen, module = "atm._atm")]
pub struct Klines {
    key: SeriesKey,
    precision: Precision,
    first_slot: u64,
    len: usize,
    states: States,
    /// By `Column::index`; `None` where not read.
    cols: Vec<Option<WindowColumn>>,
    exceptions: Vec<Exception>,
    /// Rows that are not consecutive grid slots (`present()` of a window
    /// with gaps): their exact open and close times.
    times: Option<Arc<(Vec<i64>, Vec<i64>)>>,
    /// Hand out private arrays instead of views.
    copy: bool,
}

impl Klines {
    /// Klines over a window (or no rows when the range holds none).
    pub fn new(
        key: SeriesKey,
        precision: Precision,
        window: Option<Window>,
        columns: &[Column],
        copy: bool,
    ) -> Klines {
        match window {
            Some(w) => Klines {
                key,
                precision,
                first_slot: w.first_slot,
                len: w.len,
                states: w.states,
                cols: w.columns,
                exceptions: w.exceptions,
                times: None,
                copy,
            },
            None => {
                let empty = |c: usize| WindowColumn {
                    buffer: match (c == FLOAT_COLUMNS, precision) {
                        (true, _) | (false, Precision::F32) => Buffer::from_vec(Vec::<u32>::new()),
                        (false, Precision::F64) => Buffer::from_vec(Vec::<f64>::new()),
                    },
                    zero_copy: false,
                };
                Klines {
                    key,
                    precision,
                    first_slot: 0,
                    len: 0,
                    states: States::AllPresent(0),
                    cols: (0..=FLOAT_COLUMNS)
                        .map(|c| columns.iter().any(|k| k.index() == c).then(|| empty(c)))
                        .collect(),
                    exceptions: Vec::new(),
                    times: Some(Arc::new((Vec::new(), Vec::new()))),
                    copy,
                }
            }
        }
    }

    fn open_times(&self) -> Vec<i64> {
        match &self.times {
            Some(t) => t.0.clone(),
            None => self.window_view().open_times(),
        }
    }

    fn close_times(&self) -> Vec<i64> {
        match &self.times {
            Some(t) => t.1.clone(),
            None => self.window_view().close_times(),
        }
    }

    /// A column-less window with this one's slots, for its time helpers.
    fn window_view(&self) -> Window {
        Window {
            key: self.key.clone(),
            precision: self.precision,
            first_slot: self.first_slot,
            len: self.len,
            states: States::AllPresent(0),
            columns: Vec::new(),
            exceptions: self.exceptions.clone(),
        }
    }

    fn column_of(&self, name: &str) -> PyResult<&WindowColumn> {
        let c = Column::from_name(name).map_err(|_| {
            PyKeyError::new_err(format!(
                "no column {name:?}: the columns are {}",
                self.column_names().join(", ")
            ))
        })?;
        self.cols[c.index()].as_ref().ok_or_else(|| {
            PyKeyError::new_err(format!(
                "column {name:?} was not read (columns= of read): the columns are {}",
                self.column_names().join(", ")
            ))
        })
    }

    fn all_present(&self) -> bool {
        self.states.all_present()
    }

    /// The present rows only; shares the buffers when there is no gap.
    fn present_rows(&self) -> Klines {
        if self.all_present() {
            return self.shallow();
        }
        let rows: Vec<usize> = (0..self.len)
            .filter(|&i| self.states.get(i) == STATE_PRESENT)
            .collect();
        let pick = |t: Vec<i64>| rows.iter().map(|&i| t[i]).collect::<Vec<_>>();
        let times = (pick(self.open_times()), pick(self.close_times()));
        let cols = self
            .cols
            .iter()
            .enumerate()
            .map(|(c, col)| {
                col.as_ref().map(|col| WindowColumn {
                    buffer: match (c == FLOAT_COLUMNS, self.precision) {
                        (true, _) => gather::<u32>(&col.buffer, &rows),
                        (false, Precision::F32) => gather::<f32>(&col.buffer, &rows),
                        (false, Precision::F64) => gather::<f64>(&col.buffer, &rows),
                    },
                    zero_copy: false,
                })
            })
            .collect();
        Klines {
            key: self.key.clone(),
            precision: self.precision,
            first_slot: 0,
            len: rows.len(),
            states: States::AllPresent(rows.len()),
            cols,
            exceptions: Vec::new(),
            times: Some(Arc::new(times)),
            copy: self.copy,
        }
    }

    fn shallow(&self) -> Klines {
        Klines {
            key: self.key.clone(),
            precision: self.precision,
            first_slot: self.first_slot,
            len: self.len,
            states: self.states.clone(),
            cols: self.cols.clone(),
            exceptions: self.exceptions.clone(),
            times: self.times.clone(),
            copy: self.copy,
        }
    }

    /// The present rows as one record batch with `atm query`'s schema (the
    /// columns read): the value buffers are shared when every row is
    /// present (zero-copy over hot data), copied otherwise.
    fn record_batch(&self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let p = self.present_rows();
        let full = atm_store::arrow::schema(self.precision);
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        let ts = |t: Vec<i64>| -> ArrayRef {
            Arc::new(TimestampMillisecondArray::from(t).with_timezone("UTC"))
        };
        for (i, name) in COLUMN_NAMES.iter().enumerate() {
            let array: ArrayRef = match *name {
                "open_time" => ts(p.open_times()),
                "close_time" => ts(p.close_times()),
                _ => {
                    let Ok(c) = Column::from_name(name) else {
                        continue;
                    };
                    let Some(col) = &p.cols[c.index()] else {
                        continue;
                    };
                    let b = col.buffer.clone();
                    match (c == Column::Trades, self.precision) {
                        (true, _) => {
                            Arc::new(UInt32Array::new(ScalarBuffer::new(b, 0, p.len), None))
                        }
                        (false, Precision::F32) => {
                            Arc::new(Float32Array::new(ScalarBuffer::new(b, 0, p.len), None))
                        }
                        (false, Precision::F64) => {
                            Arc::new(Float64Array::new(ScalarBuffer::new(b, 0, p.len), None))
                        }
                    }
                }
            };
            fields.push(full.field(i).clone());
            arrays.push(array);
        }
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        RecordBatch::try_new(schema, arrays)
    }

    fn column_names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = COLUMN_NAMES
            .iter()
            .copied()
            .filter(|n| match Column::from_name(n) {
                Ok(c) => self.cols[c.index()].is_some(),
                Err(_) => true,
            })
            .collect();
        v.push("state");
        v
    }

    fn array<'py, T: Element + ArrowNativeType>(
        &self,
        py: Python<'py>,
        col: &WindowColumn,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Over the map (zero-copy), or over the private copy the read made
        // inside its seqlock section (`copy=True`, cold blocks): either way
        // no further copy, and read-only.
        Ok(zero_copy::borrowed::<T>(py, &col.buffer, self.len)?.into_any())
    }
}

/// The values of `rows` of a buffer of `T`s, copied.
fn gather<T: ArrowNativeType>(b: &Buffer, rows: &[usize]) -> Buffer {
    let v = b.typed_data::<T>();
    Buffer::from_vec(rows.iter().map(|&i| v[i]).collect::<Vec<T>>())
}

#[pymethods]
impl Klines {
    /// Market code (`spot`, `um`, `cm`).
    #[getter]
    fn market(&self) -> String {
        self.key.market.to_string()
    }

    /// Symbol.
    #[getter]
    fn symbol(&self) -> String {
        self.key.symbol.to_string()
    }

    /// Interval (`1m`, `1h`, ...).
    #[getter]
    fn interval(&self) -> String {
        self.key.interval.to_string()
    }

    /// `"f32"` or `"f64"`: the type of the float columns.
    #[getter]
    fn precision(&self) -> &'static str {
        self.precision.as_str()
    }

    /// Whether arrays are private copies (`copy=True`) rather than views.
    #[getter]
    fn copied(&self) -> bool {
        self.copy
    }

    /// Column names available, in `atm query`'s order, then `state`.
    fn names(&self) -> Vec<&'static str> {
        self.column_names()
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// The numpy array of column `name`. Value columns are read-only views
    /// of the mapped file where it is hot (unless `copy=True`); `open_time`,
    /// `close_time` (int64 ms) and `state` (uint8) are computed, allocated.
    fn column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match name {
            "open_time" => Ok(py.detach(|| self.open_times()).into_pyarray(py).into_any()),
            "close_time" => Ok(py.detach(|| self.close_times()).into_pyarray(py).into_any()),
            "state" => Ok(py
                .detach(|| self.states.to_vec())
                .into_pyarray(py)
                .into_any()),
            _ => {
                let col = self.column_of(name)?;
                match (name == "trades", self.precision) {
                    (true, _) => self.array::<u32>(py, col),
                    (false, Precision::F32) => self.array::<f32>(py, col),
                    (false, Precision::F64) => self.array::<f64>(py, col),
                }
            }
        }
    }

    /// True when column `name` lies over the mapped file (no copy was made).
    fn is_zero_copy(&self, name: &str) -> PyResult<bool> {
        Ok(!self.copy && self.column_of(name)?.zero_copy)
    }

    /// The present rows only, as `atm query` prints them (a copy when the
    /// range has gaps, the same views when it has none).
    fn present(&self, py: Python<'_>) -> Klines {
        py.detach(|| self.present_rows())
    }

    /// The present rows as an Arrow C stream (PyCapsule interface).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // A requested schema is a hint the producer may ignore (the
        // consumer casts); the stream has `atm query`'s types.
        let _ = requested_schema;
        let batch = py
            .detach(|| self.record_batch())
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let schema = batch.schema();
        let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    fn __repr__(&self) -> String {
        format!(
            "<atm.Klines {} {} {}: {} rows, {} present>",
            self.key.market,
            self.key.symbol,
            self.key.interval,
            self.len,
            self.states.present()
        )
    }
}

/// Value columns named in `names` (all when `None`); `ValueError` otherwise.
pub fn parse_columns(names: Option<Vec<String>>) -> PyResult<Vec<Column>> {
    let Some(names) = names else {
        return Ok(Column::ALL.to_vec());
    };
    let mut out = Vec::new();
    for n in names {
        match n.as_str() {
            "open_time" | "close_time" | "state" => {}
            _ => out.push(Column::from_name(&n).map_err(|_| {
                PyValueError::new_err(format!(
                    "unknown column {n:?}: expected some of {}",
                    COLUMN_NAMES.join(", ")
                ))
            })?),
        }
    }
    Ok(out)
}
