//! # atm-store
//!
//! A memory-mapped columnar store for exchange klines (candlesticks).
//!
//! * One file per series (market, symbol, interval). **Time is the index**: a
//!   kline's slot is computed from its open time, never searched for.
//! * Columns are dense little-endian arrays (`f32` by default, `f64` on
//!   request; trades as `u32`), read zero-copy from the map.
//! * Every slot is present, known-missing or unknown; unfetched ranges are
//!   sparse and cost no disk.
//! * [`Writer::commit`] makes a group of writes to any number of series
//!   durable with one journal `fdatasync`, then publishes them; readers in any
//!   process read without locks and never see a torn kline (per-block seqlocks
//!   and checksums).
//! * After `kill -9` at any instant, opening the store replays the dead
//!   writer's journal: every committed kline is there, nothing uncommitted is.
//!
//! ```
//! use atm_store::{Interval, Kline, Market, SeriesKey, Store, StoreOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
//! let key = SeriesKey::parse(Market::UsdM, "BTCUSDT", Interval::M1).unwrap();
//! let mut w = store.writer().unwrap();
//! let t = 1_704_067_200_000; // 2024-01-01
//! w.put(&key, &Kline { open_time: t, close_time: t + 59_999, values: [42_000.5; 8], trades: 10 }).unwrap();
//! w.mark_missing(&key, t + 60_000, t + 5 * 60_000).unwrap();
//! w.commit().unwrap();
//! let s = store.series(&key).unwrap().unwrap();
//! assert_eq!(s.stats().unwrap().present, 1);
//! assert_eq!(s.stats().unwrap().missing, 5);
//! ```
//!
//! See `docs/format.md` for the bytes on disk and `docs/architecture.md` for the tour.

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[cfg(not(target_endian = "little"))]
compile_error!(
    "atm-store maps little-endian column files directly and needs a little-endian target"
);

#[cfg(feature = "arrow")]
pub mod arrow;
mod checksum;
mod cold;
mod error;
#[cfg(feature = "parquet")]
pub mod export;
#[cfg(feature = "test-hooks")]
pub mod fault;
#[cfg(not(feature = "test-hooks"))]
mod fault;
#[cfg(feature = "import")]
pub mod import;
mod journal;
#[cfg(feature = "test-hooks")]
pub mod layout;
#[cfg(not(feature = "test-hooks"))]
mod layout;
mod lock;
mod mmap;
pub mod prd;
mod recovery;
pub mod registry;
mod series;
mod series_file;
mod store;
mod verify;
mod writer;

#[cfg(feature = "test-hooks")]
pub mod fuzzing;

pub use atm_types::{
    format_ms, Column, Interval, Kline, Market, Precision, SeriesKey, Symbol, FLOAT_COLUMNS,
    MAX_SYMBOL_BYTES,
};
pub use atm_types::{STORE_EPOCH_MS, STORE_HORIZON_MS};
pub use error::{Error, Result};
pub use journal::{read_commits, CommitGroup};
pub use series::{Run, Series, SeriesStats, SCAN_CHUNK_SLOTS};
pub use series_file::{Exception, SlotState, Slots};
pub use store::{Store, StoreOptions, DEFAULT_OPEN_SERIES, SERIES_EXT, STORE_FILE};
pub use verify::Problem;
pub use writer::{Columns, CommitStats, FloatColumn, Writer};
