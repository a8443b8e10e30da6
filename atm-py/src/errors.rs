//! atm-store errors as the Python exceptions of `atm._errors`.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// Raises the exception class `name` of `atm._errors` with `msg`.
pub fn raise(py: Python<'_>, name: &str, msg: String) -> PyErr {
    match py
        .import("atm._errors")
        .and_then(|m| m.getattr(name))
        .and_then(|c| c.call1((msg.clone(),)))
    {
        Ok(e) => PyErr::from_value(e),
        Err(_) => PyRuntimeError::new_err(msg),
    }
}

/// The exception for a store error: damage as `CorruptError`, an
/// interrupted write as `NeedsRecoveryError`, bad arguments as `ValueError`,
/// a missing store as `StoreNotFoundError`, anything else as `atm.Error`.
pub fn to_py(py: Python<'_>, e: atm_store::Error) -> PyErr {
    use atm_store::Error as E;
    let msg = e.to_string();
    match e {
        E::Corrupt { .. } | E::BadMagic { .. } => raise(py, "CorruptError", msg),
        E::NeedsRecovery { .. } => raise(py, "NeedsRecoveryError", msg),
        E::UnsupportedVersion { .. } => raise(py, "UnsupportedVersionError", msg),
        E::InvalidInput(_) | E::InvalidSymbol { .. } => PyValueError::new_err(msg),
        E::NotFound(_) => raise(py, "StoreNotFoundError", msg),
        _ => raise(py, "Error", msg),
    }
}

/// `to_py` for use in `map_err` where a `Python` token is at hand.
pub trait IntoPy<T> {
    /// Converts the error of a store result into a Python exception.
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for atm_store::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
