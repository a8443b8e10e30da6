//! # atm-sim
//!
//! A Binance-compatible exchange on loopback, for tests, benchmarks and
//! `atm sync --exchange sim` on a machine without internet.
//!
//! See `docs/simulator.md` for what it models and what it does not.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod archive;
pub mod calendar;
pub mod candles;
pub mod clock;
pub mod control;
pub mod error;
pub mod exchange;
pub mod faults;
pub mod format;
#[cfg(feature = "test-hooks")]
pub mod fuzzing;
pub mod limits;
pub mod rest;
pub mod rng;
pub mod server;
pub mod stats;
pub mod universe;
pub mod ws;
pub use error::{Error, Result};
pub use exchange::{Exchange, SimConfig};
pub use server::SimServer;
pub use universe::UniverseSpec;
