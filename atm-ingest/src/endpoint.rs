//! Where the exchange is: Binance's real hosts, the embedded simulator, or
//! any server with Binance's paths (a running `atm sim serve`).

use atm_store::Market;

use crate::error::{Error, Result};

/// The `--exchange` choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeSpec {
    /// `https://api.binance.com`, `https://fapi.binance.com`, `https://dapi.binance.com`.
    Binance,
    /// The simulator, started in this process.
    Sim,
    /// One base URL serving all three markets' paths (`/api/v3`, `/fapi/v1`, `/dapi/v1`).
    Url(String),
}

impl std::str::FromStr for ExchangeSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<ExchangeSpec> {
        match s {
            "binance" => Ok(ExchangeSpec::Binance),
            "sim" => Ok(ExchangeSpec::Sim),
            u if u.starts_with("http://") || u.starts_with("https://") => Ok(ExchangeSpec::Url(u.trim_end_matches('/').to_string())),
            _ => Err(Error::Config(format!("--exchange must be binance, sim or a base URL like http://127.0.0.1:8080, not {s:?}"))),
        }
    }
}

/// Resolved endpoints, keeping an embedded simulator alive while in use.
pub struct Endpoints {
    bases: [String; 3],
    /// The base of a simulator (its `/sim/v1/clock` tells the time scale).
    pub sim_base: Option<String>,
    _sim: Option<atm_sim::SimServer>,
}

impl Endpoints {
    /// Resolves `spec`; `Sim` starts a simulator with `config`.
    pub fn new(spec: &ExchangeSpec, sim: atm_sim::SimConfig) -> Result<Endpoints> {
        Ok(match spec {
            ExchangeSpec::Binance => Endpoints {
                bases: ["https://api.binance.com".into(), "https://fapi.binance.com".into(), "https://dapi.binance.com".into()],
                sim_base: None,
                _sim: None,
            },
            ExchangeSpec::Url(u) => Endpoints { bases: [u.clone(), u.clone(), u.clone()], sim_base: Some(u.clone()), _sim: None },
            ExchangeSpec::Sim => {
                let server = atm_sim::SimServer::start(sim)?;
                let u = server.base_url().to_string();
                log::info!("embedded simulator at {u}");
                Endpoints { bases: [u.clone(), u.clone(), u.clone()], sim_base: Some(u), _sim: Some(server) }
            }
        })
    }

    /// The REST base URL of `market` (without the `/api/v3` prefix).
    pub fn base(&self, market: Market) -> &str {
        &self.bases[market as usize]
    }

    /// `/api/v3`, `/fapi/v1` or `/dapi/v1`.
    pub fn prefix(market: Market) -> &'static str {
        match market {
            Market::Spot => "/api/v3",
            Market::UsdM => "/fapi/v1",
            Market::CoinM => "/dapi/v1",
        }
    }
}
