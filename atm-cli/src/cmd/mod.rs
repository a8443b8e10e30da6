//! One module per subcommand.

mod compact;
mod exchange;
mod export;
mod import;
mod info;
mod log;
mod markets;
mod query;
mod sim;
mod status;
mod stream;
mod sync;
mod verify;

use std::path::PathBuf;

use atm_store::{Precision, Store, StoreOptions};

use crate::cli::{Cli, Command};
use crate::error::Result;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let dir = store_dir(cli.store);
    match cli.command {
        Command::Import(a) => import::run(&dir, a),
        Command::Query(a) => query::run(&open(&dir)?, a),
        Command::Info(a) => info::run(&open(&dir)?, a),
        Command::Verify(a) => verify::run(&open(&dir)?, a),
        Command::Compact(a) => compact::run(&open(&dir)?, a),
        Command::Sim(c) => sim::run(c),
        Command::Sync(a) => sync::run(&dir, a),
        Command::Markets(a) => markets::run(&dir, a),
        Command::Export(a) => export::run(&open(&dir)?, a),
        Command::Status(a) => status::run(&dir, a),
        Command::Stream(a) => stream::run(&dir, a),
        Command::Log(a) => log::run(&dir, a),
        Command::View(a) => {
            let interval = a.interval.as_deref().map(str::parse).transpose()?;
            let open = a.symbol.map(|s| {
                (
                    a.market.map_or(atm_store::Market::Spot, Into::into),
                    s,
                    interval,
                )
            });
            Ok(atm_view::run(
                &dir,
                atm_view::app::Options {
                    open,
                    ..Default::default()
                },
            )?)
        }
    }
}

/// `--store`, `ATM_STORE`, or the per-user data directory.
pub fn store_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("atm")
    })
}

/// Opens an existing store.
fn open(dir: &std::path::Path) -> Result<Store> {
    Ok(Store::open(dir, StoreOptions::default())?)
}

/// Opens the store, creating it with `precision` if it does not exist.
pub(crate) fn open_or_create(dir: &std::path::Path, precision: Precision) -> Result<Store> {
    Ok(Store::open(
        dir,
        StoreOptions {
            create: true,
            precision,
            ..Default::default()
        },
    )?)
}
