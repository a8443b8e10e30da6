//! Locks that do not propagate poison: the one rule every atm crate follows.
//!
//! A `std::sync` lock is poisoned when a thread panics while holding it.
//! Ignoring that is sound in atm because of how its critical sections are
//! written: each one either assigns whole values or pushes/removes whole
//! entries, so the protected data is consistent at every point where a
//! panic could unwind (no multi-step invariant is ever half-updated under a
//! lock). A panic in one thread already fails the job through that thread's
//! join or its closed channel; turning it into a second panic in every
//! thread that touches the same lock afterwards (the status publisher, a
//! `Drop` that flushes, a reader) would only hide the first one.
//!
//! ```
//! use std::sync::Mutex;
//! let m = Mutex::new(1);
//! *atm_types::sync::lock(&m) += 1;
//! assert_eq!(*atm_types::sync::lock(&m), 2);
//! ```

use std::sync::{LockResult, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, taking the data as it is if a panicking thread poisoned it.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    unpoison(m.lock())
}

/// Read-locks `l`, ignoring poison (see the module doc).
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    unpoison(l.read())
}

/// Write-locks `l`, ignoring poison (see the module doc).
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    unpoison(l.write())
}

/// The value of any lock result (a guard, `Condvar::wait_timeout`'s pair,
/// `Mutex::into_inner`), ignoring poison (see the module doc).
pub fn unpoison<T>(r: LockResult<T>) -> T {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}
