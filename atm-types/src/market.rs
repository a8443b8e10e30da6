//! Binance markets.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// One of Binance's three kline markets.
///
/// ```
/// use atm_types::Market;
/// assert_eq!("um".parse::<Market>().unwrap(), Market::UsdM);
/// assert_eq!(Market::CoinM.as_str(), "cm");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Market {
    /// Spot (`api.binance.com`, `/api/v3`).
    Spot,
    /// USDⓈ-M futures (`fapi.binance.com`, `/fapi/v1`).
    UsdM,
    /// COIN-M futures (`dapi.binance.com`, `/dapi/v1`). Its quote-volume
    /// columns hold base-asset volume, as Binance defines them.
    CoinM,
}

impl Market {
    /// All markets, in their canonical order.
    pub const ALL: [Market; 3] = [Market::Spot, Market::UsdM, Market::CoinM];

    /// The short name used in paths, flags and JSON: `spot`, `um`, `cm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::UsdM => "um",
            Market::CoinM => "cm",
        }
    }

    /// The path component of data.binance.vision (`spot`, `futures/um`, `futures/cm`).
    pub fn archive_path(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::UsdM => "futures/um",
            Market::CoinM => "futures/cm",
        }
    }

    /// The byte that stands for this market in atm's files (series headers,
    /// journal records): part of the on-disk format, never renumbered.
    pub fn code(self) -> u8 {
        match self {
            Market::Spot => 1,
            Market::UsdM => 2,
            Market::CoinM => 3,
        }
    }

    /// The market of a [`Self::code`] byte, `None` for an unknown one.
    pub fn from_code(code: u8) -> Option<Market> {
        Market::ALL.into_iter().find(|m| m.code() == code)
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Market {
    type Err = Error;

    fn from_str(s: &str) -> Result<Market> {
        match s {
            "spot" => Ok(Market::Spot),
            "um" | "usdm" | "futures/um" => Ok(Market::UsdM),
            "cm" | "coinm" | "futures/cm" => Ok(Market::CoinM),
            _ => Err(Error::InvalidInput(format!(
                "unknown market {s:?} (expected spot, um or cm)"
            ))),
        }
    }
}
