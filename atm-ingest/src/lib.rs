//! # atm-ingest
//!
//! Binance ingestion for atm: a REST client that spends each rate-limit
//! pool's weight exactly as the exchange counts it, market import into the
//! store's registry, first-kline search, and the resumable backfill behind
//! `atm sync`.
//!
//! See `docs/architecture.md` for the tour.

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod archive;
pub mod budget;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod first_kline;
#[cfg(feature = "test-hooks")]
pub mod fuzzing;
pub mod ipc;
pub mod markets;
pub mod parse;
pub mod pipeline;
pub mod stream;
pub mod sync;
pub mod verify;
pub mod ws_event;
pub mod ws_shard;

pub use client::Client;
pub use endpoint::{Endpoints, ExchangeSpec};
pub use error::{Error, Result};
pub use sync::{sync, MarketProgress, OnHeld, Progress, Summary, SymbolFilter, SyncOptions};
pub use verify::{verify, Mismatch, MismatchKind, VerifyOptions, VerifyReport};
