//! Where the exchange is: Binance's real hosts, or any server with Binance's
//! paths (a running `atm sim serve`, or the simulator `atm-cli` embeds for
//! `--exchange sim` and hands over as a URL).

use atm_store::Market;

use crate::error::{Error, Result};

/// Where to connect: Binance itself or one base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeSpec {
    /// `https://api.binance.com`, `https://fapi.binance.com`, `https://dapi.binance.com`.
    Binance,
    /// One base URL serving all three markets' paths (`/api/v3`, `/fapi/v1`, `/dapi/v1`).
    Url(String),
}

impl std::str::FromStr for ExchangeSpec {
    type Err = Error;

    /// `binance` or a base URL (`http://127.0.0.1:8080`); a trailing `/` is dropped.
    fn from_str(s: &str) -> Result<ExchangeSpec> {
        match s {
            "binance" => Ok(ExchangeSpec::Binance),
            u if u.starts_with("http://") || u.starts_with("https://") => Ok(ExchangeSpec::Url(u.trim_end_matches('/').to_string())),
            _ => Err(Error::Config(format!("--exchange must be binance, sim or a base URL like http://127.0.0.1:8080, not {s:?}"))),
        }
    }
}

/// Resolved endpoints, keeping whatever serves them (an embedded simulator)
/// alive while in use.
pub struct Endpoints {
    bases: [String; 3],
    /// The base of a server other than Binance: a simulator's
    /// `/sim/v1/clock` there tells the time scale.
    pub sim_base: Option<String>,
    _server: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Endpoints {
    /// Resolves `spec`.
    pub fn new(spec: &ExchangeSpec) -> Endpoints {
        match spec {
            ExchangeSpec::Binance => Endpoints {
                bases: [
                    "https://api.binance.com".into(),
                    "https://fapi.binance.com".into(),
                    "https://dapi.binance.com".into(),
                ],
                sim_base: None,
                _server: None,
            },
            ExchangeSpec::Url(u) => Endpoints {
                bases: [u.clone(), u.clone(), u.clone()],
                sim_base: Some(u.clone()),
                _server: None,
            },
        }
    }

    /// Endpoints at `base_url` that own `server` (e.g. an embedded
    /// simulator), dropping it only when they are dropped.
    pub fn served_by(base_url: &str, server: impl std::any::Any + Send + Sync) -> Endpoints {
        let mut e = Endpoints::new(&ExchangeSpec::Url(
            base_url.trim_end_matches('/').to_string(),
        ));
        e._server = Some(Box::new(server));
        e
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
