//! # atm-types
//!
//! The vocabulary every atm crate speaks: Binance's [`Market`]s, kline
//! [`Interval`]s and the time grid that makes time the index, validated
//! [`Symbol`] names, the [`Kline`] row, its [`Column`]s and value
//! [`Precision`], and the [`SeriesKey`] that names one series.
//!
//! It depends on nothing of atm's and on no file format, so the simulator
//! uses it without compiling the store. `atm-store` re-exports every item
//! (`atm_store::Market` is `atm_types::Market`).
//!
//! ```
//! use atm_types::{Interval, Market, SeriesKey};
//! let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
//! assert_eq!(key.to_string(), "spot/BTCUSDT/1m");
//! let t = 1_704_067_200_000; // 2024-01-01T00:00:00Z
//! assert_eq!(Interval::M1.open_time(Interval::M1.slot_of(t).unwrap()), t);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod interval;
mod kline;
mod market;
mod symbol;
pub mod sync;

pub use error::{Error, Result};
pub use interval::{format_ms, Interval, STORE_EPOCH_MS, STORE_HORIZON_MS};
pub use kline::{Column, Kline, Precision, SeriesKey, FLOAT_COLUMNS};
pub use market::Market;
pub use symbol::{Symbol, MAX_SYMBOL_BYTES};
