//! **The only `unsafe` of atm-py**: numpy arrays that borrow the memory of
//! an Arrow buffer over a mapped series file (see UNSAFE.md).
//!
//! The contract: a [`MappedColumn`] owns an `arrow_buffer::Buffer` whose
//! bytes lie inside a series file's read-only map, kept alive by the
//! buffer's owner (atm-store's `KeepMapped`, an `Arc` of the series file);
//! the numpy array has the `MappedColumn` as its base object, so the map
//! outlives every array over it, whatever happens to the `Store` object.
//! The arrays are made read-only (numpy refuses to make an array writeable
//! again when its base is not a writeable buffer; the map is read-only
//! anyway).

use arrow_buffer::{ArrowNativeType, Buffer};
use numpy::ndarray::ArrayView1;
use numpy::{Element, PyArray1, PyArrayMethods};
use pyo3::prelude::*;

/// The base object of zero-copy numpy arrays: holds the mapped bytes alive.
#[pyclass(frozen, module = "atm._atm")]
pub struct MappedColumn {
    buffer: Buffer,
}

#[pymethods]
impl MappedColumn {
    /// Bytes of the column in the map.
    fn __len__(&self) -> usize {
        self.buffer.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<atm mapped column: {} bytes at {:#x}>",
            self.buffer.len(),
            self.buffer.as_ptr() as usize
        )
    }
}

/// A read-only numpy array of the first `len` values of `buffer`, without a
/// copy. `buffer` must hold at least `len` values of `T` (checked).
pub fn borrowed<'py, T: Element + ArrowNativeType>(
    py: Python<'py>,
    buffer: &Buffer,
    len: usize,
) -> PyResult<Bound<'py, PyArray1<T>>> {
    let owner = Bound::new(
        py,
        MappedColumn {
            buffer: buffer.clone(),
        },
    )?;
    // `typed_data` checks the alignment; the slice bounds check the length.
    let values: &[T] = &owner.get().buffer.typed_data::<T>()[..len];
    let view = ArrayView1::from(values);
    // SAFETY: `values` points into the bytes `owner` holds (an Arrow buffer
    // over the series file's map, kept mapped by the buffer's owner, or a
    // Rust allocation the buffer owns); `owner` is frozen, so the buffer is
    // never replaced or reallocated, and it becomes the array's base object,
    // which numpy keeps alive as long as the array and every view of it.
    // The map is never truncated while mapped (atm-store's rule 1), so the
    // pages stay valid; every bit pattern is a valid f32/f64/u32.
    let array = unsafe { PyArray1::borrow_from_array(&view, owner.clone().into_any()) };
    // Read-only: the map is PROT_READ, and a view must not pretend otherwise.
    array.readwrite().make_nonwriteable();
    Ok(array)
}
