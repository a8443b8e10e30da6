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

/// Connects to `--exchange`: `sim` starts a simulator in this process and
/// hands the library its URL; `binance` and URLs go to the library as they are.
pub fn connect(a: &ExchangeArgs) -> Result<Client> {
    let endpoints = if a.exchange == "sim" {
        let server = atm_sim::SimServer::start(atm_sim::SimConfig::default())?;
        let base = server.base_url().to_string();
        log::info!("embedded simulator at {base}");
        Endpoints::served_by(&base, server)
    } else {
        Endpoints::new(&a.exchange.parse::<ExchangeSpec>()?)
    };
    Ok(Client::connect_for(endpoints, &markets(a))?)
}
