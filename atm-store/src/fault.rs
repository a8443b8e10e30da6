//! Fault injection for crash tests: make this process die at a chosen point
//! of the commit protocol, as a power cut or `kill -9` would.
//!
//! Compiled in only with the `test-hooks` feature; without it the checks
//! are empty functions the compiler removes. Disarmed (the default) each
//! check is one relaxed atomic load.

#[cfg(feature = "test-hooks")]
use std::sync::atomic::{AtomicI64, Ordering};

#[cfg(feature = "test-hooks")]
static JOURNAL_TORN_AT: AtomicI64 = AtomicI64::new(-1);
#[cfg(feature = "test-hooks")]
static ABORT_AFTER_BLOCKS: AtomicI64 = AtomicI64::new(-1);

/// On the next journal append, write only the first `bytes` bytes of the
/// commit (a torn write), then abort the process.
#[cfg(feature = "test-hooks")]
pub fn tear_next_journal_write(bytes: u64) {
    JOURNAL_TORN_AT.store(bytes as i64, Ordering::SeqCst);
}

/// Abort the process in the middle of applying a commit: after `blocks`
/// more blocks were written through the map (their seqlocks left odd).
#[cfg(feature = "test-hooks")]
pub fn abort_after_block_writes(blocks: u64) {
    ABORT_AFTER_BLOCKS.store(blocks as i64, Ordering::SeqCst);
}

#[cfg(not(feature = "test-hooks"))]
pub(crate) fn journal_torn_at() -> Option<usize> {
    None
}

#[cfg(not(feature = "test-hooks"))]
pub(crate) fn block_written() {}

#[cfg(feature = "test-hooks")]
pub(crate) fn journal_torn_at() -> Option<usize> {
    let v = JOURNAL_TORN_AT.load(Ordering::Relaxed);
    (v >= 0).then_some(v as usize)
}

#[cfg(feature = "test-hooks")]
pub(crate) fn block_written() {
    if ABORT_AFTER_BLOCKS.load(Ordering::Relaxed) >= 0
        && ABORT_AFTER_BLOCKS.fetch_sub(1, Ordering::SeqCst) == 0
    {
        std::process::abort();
    }
}
