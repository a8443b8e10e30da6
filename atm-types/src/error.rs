//! The vocabulary's error type: a name or value that is not one of Binance's.

/// Result alias used throughout `atm-types`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A market, interval, symbol, column or time that cannot be used.
///
/// `atm-store` converts it into its own error with the same message, so a
/// user of the store matches `atm_store::Error::InvalidSymbol` and
/// `atm_store::Error::InvalidInput` as before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A symbol name that cannot be stored.
    #[error("invalid symbol {symbol:?}: {reason}")]
    InvalidSymbol {
        /// The name as given.
        symbol: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An argument that is out of range or malformed.
    #[error("{0}")]
    InvalidInput(String),
}
