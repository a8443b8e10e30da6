//! # atm-status
//!
//! What other processes can see of a running atm job, and how they read it.
//!
//! * A job publishes its status with a [`Publisher`]: every stage's counts
//!   ([`StageStats`]), its phase and totals ([`SyncTotals`],
//!   [`StreamTotals`]) and the live klines of `atm stream` ([`LiveSlots`]),
//!   written to a shared-memory segment of named slots in the store
//!   (`atm_store::prd`, a "PRD").
//! * Any process reads them back with [`read_status`] (what
//!   `atm status --format json` prints), [`read_live`] and [`render`] (the
//!   text of `atm status` and `atm view`'s status pane).
//!
//! It depends on the store only, so readers (`atm view`, the Python
//! package) compile no network code. The status model is typed
//! ([`ProcessStatus`]): slot names are the field names of one struct per
//! group, shared by the publisher and every reader.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let p = atm_status::Publisher::start(dir.path(), "sync", Vec::new).unwrap();
//! let seen = atm_status::read_status(dir.path()).unwrap();
//! assert_eq!(seen[0].process.phase, "starting");
//! assert!(matches!(&seen[0].totals, atm_status::Totals::Sync(t) if t.klines_written == 0));
//! assert_eq!(seen[0].stages.keys().collect::<Vec<_>>(), ["fetch", "parse", "write"]);
//! p.finish();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod model;
mod publish;
mod read;
mod text;

pub use error::{Error, Result};
pub use model::{
    MarketStatus, ProcessInfo, ProcessStatus, StageStatus, StreamTotals, SyncTotals, Totals,
    STREAM_PHASES, STREAM_STAGES, SYNC_PHASES, SYNC_STAGES,
};
pub use publish::{LiveSlots, Metric, Publisher, StageStats, GATHER_TIMEOUT, PUBLISH_PERIOD};
pub use read::{live_slot_name, log_record_path, read_live, read_status};
pub use text::{now_ms, render};
