//! `--exchange`: connecting the ingestion client.

use atm_ingest::{Client, Endpoints, ExchangeSpec};

use crate::cli::ExchangeArgs;
use crate::error::Result;

/// The markets of `--markets`.
pub fn markets(a: &ExchangeArgs) -> Vec<atm_store::Market> {
    let mut v: Vec<atm_store::Market> = a.markets.iter().map(|&m| m.into()).collect();
    v.dedup();
    v
}

/// Connects to `--exchange` (`sim` starts a simulator in this process).
pub fn connect(a: &ExchangeArgs) -> Result<Client> {
    let spec: ExchangeSpec = a.exchange.parse()?;
    let endpoints = Endpoints::new(&spec, atm_sim::SimConfig::default())?;
    Ok(Client::connect(endpoints)?)
}
