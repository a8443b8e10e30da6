//! # atm-py
//!
//! The `atm._atm` extension module of the Python package `atm` (distribution
//! `atm-klines`): read-only access to an atm store from Python, with value
//! columns handed out as zero-copy numpy arrays over the mapped series files
//! and an Arrow C stream (`__arrow_c_stream__`) for pyarrow, Polars, DuckDB.
//!
//! The Python-facing API (argument parsing of times, `to_pandas`, the
//! exception classes) lives in `python/atm/`; this crate does the reads,
//! with the GIL released. See `docs/python.md`.

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod errors;
mod klines;
mod shared;
mod store;
#[allow(unsafe_code)]
mod zero_copy;

use pyo3::prelude::*;

/// The native half of the `atm` package.
#[pymodule]
fn _atm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::Store>()?;
    m.add_class::<klines::Klines>()?;
    m.add_class::<zero_copy::MappedColumn>()?;
    m.add("COLUMN_NAMES", atm_store::arrow::COLUMN_NAMES.to_vec())?;
    Ok(())
}
