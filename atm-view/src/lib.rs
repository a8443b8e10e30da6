//! `atm view`: a read-only terminal UI over an atm store.
//!
//! A person picks a series in the **selection box** (market, symbol and
//! interval pickers, the symbol list filtering as they type), reads it in the
//! **table** (present klines, known-missing and unknown runs shown
//! distinctly) and the **chart** (candlesticks with a volume strip), and
//! watches the store fill: the in-progress kline of a running `atm stream`,
//! the **status** of every atm process and the tail of the store's **log**.
//!
//! The crate is split so that each part can be tested without a terminal:
//!
//! - [`catalog`]: what the store holds (markets, symbols, intervals), and the
//!   per-series coverage summaries of the symbol list;
//! - [`filter`]: the incremental, case-insensitive symbol filter;
//! - [`table`]: rows of a series (klines, collapsed missing/unknown runs)
//!   found by slot arithmetic and read only for the visible window;
//! - [`chart`]: candles aggregated for a time window and the widget that
//!   draws them;
//! - [`feed`]: the live side (the in-progress kline, `atm status`, the log);
//! - [`app`]: the state and what every key does;
//! - [`ui`]: drawing the state into a ratatui frame;
//! - [`terminal`]: the real terminal (raw mode, alternate screen, mouse,
//!   restore on exit and on panic) and the event loop.
//!
//! Everything reads the store through [`atm_store`]; nothing here writes.
//!
//! ```
//! use atm_view::app::App;
//! use ratatui::{backend::TestBackend, Terminal};
//!
//! let dir = tempfile::tempdir().unwrap();
//! atm_store::Store::open(dir.path(), atm_store::StoreOptions { create: true, ..Default::default() }).unwrap();
//! let mut app = App::open(dir.path(), atm_view::app::Options::default()).unwrap();
//! let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
//! term.draw(|f| app.draw(f)).unwrap();
//! let screen = atm_view::ui::buffer_text(term.backend().buffer());
//! assert!(screen.contains("no series"));
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod app;
pub mod catalog;
pub mod chart;
mod error;
pub mod feed;
pub mod filter;
pub mod goto;
pub mod table;
pub mod terminal;
mod theme;
pub mod ui;

pub use error::{Result, ViewError};
pub use terminal::run;
