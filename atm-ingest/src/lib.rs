//! # atm-ingest
//!
//! Binance ingestion for atm, over REST and WebSocket, into an
//! [`atm_store::Store`]:
//!
//! * [`client`]: a REST client that spends each rate-limit pool's weight
//!   exactly as the exchange counts it (following its used-weight headers,
//!   honouring `Retry-After`, stopping on 418), with every error classified
//!   retryable or fatal ([`Error::is_retryable`]);
//! * [`markets`]: exchangeInfo into the store's symbol registry;
//! * [`first_kline`]: the earliest kline of a symbol, by direct query or
//!   bisection;
//! * [`sync()`] and [`pipeline`]: the resumable backfill behind `atm sync`
//!   (plan, lock, fetch, parse, write), and [`archive`]: data.binance.vision
//!   files first (`--source auto`);
//! * [`stream`]: `atm stream`, every symbol live over WebSocket with REST
//!   repairs ([`ws_event`], [`ws_shard`]);
//! * [`verify()`]: `atm verify --exchange`, comparing the store with the
//!   exchange and repairing it;
//! * [`ipc`]: FAR and DAR, the typed requests between threads; the status
//!   they feed is published with the `atm-status` crate.
//!
//! The library takes the exchange as a URL ([`Endpoints`]): it has no
//! simulator of its own (`atm-cli` embeds one for `--exchange sim`).
//! See `docs/architecture.md` for the tour.

#![forbid(unsafe_code)]
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
pub use sync::{
    sync, MarketProgress, OnHeld, Progress, Selection, Summary, SymbolFilter, SyncOptions,
};
pub use verify::{verify, Mismatch, MismatchKind, VerifyOptions, VerifyReport};
