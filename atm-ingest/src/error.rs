//! Ingestion errors, each classified retryable or fatal.

use atm_store::Market;

/// An ingestion error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The exchange answered with a Binance error (`{"code":..,"msg":..}`) or an HTTP error status.
    #[error("{market} {path}: HTTP {status}{}: {msg}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Api {
        /// Market asked.
        market: Market,
        /// Endpoint path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Binance's error code, when the body had one.
        code: Option<i64>,
        /// Binance's message, or a summary of the body.
        msg: String,
    },
    /// The connection failed, timed out or was cut.
    #[error("{market} {path}: {msg}")]
    Network {
        /// Market asked.
        market: Market,
        /// Endpoint path.
        path: String,
        /// What happened.
        msg: String,
    },
    /// A 200 response whose body is not what Binance sends (truncated, HTML, wrong shape).
    #[error("{market} {path}: malformed response: {msg}")]
    Malformed {
        /// Market asked.
        market: Market,
        /// Endpoint path.
        path: String,
        /// What was wrong.
        msg: String,
    },
    /// HTTP 418: the exchange banned this IP; the market stops.
    #[error("{market}: banned by the exchange (HTTP 418) for {retry_after_s} s: {msg}; stopping this market, run again after the ban")]
    Banned {
        /// Market asked.
        market: Market,
        /// Seconds until the ban ends, as the server said.
        retry_after_s: u64,
        /// Binance's message.
        msg: String,
    },
    /// HTTP 451: Binance refuses service from this location.
    #[error("{market}: HTTP 451, Binance refuses service from this location (region restricted); use an endpoint you may reach (--exchange URL)")]
    RegionBlocked {
        /// Market asked.
        market: Market,
    },
    /// Retries ran out.
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<Error>,
    },
    /// A bad argument or configuration.
    #[error("{0}")]
    Config(String),
    /// A thread of the job ended early; its own error is what to look at.
    #[error("{0}")]
    Stopped(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] atm_store::Error),
    /// Publishing status failed.
    #[error(transparent)]
    Status(#[from] atm_status::Error),
}

impl From<atm_types::Error> for Error {
    /// A name or value the vocabulary refused, as the store reports it.
    fn from(e: atm_types::Error) -> Self {
        Error::Store(e.into())
    }
}

impl Error {
    /// Whether trying the same request again later may succeed: 5xx,
    /// network failures, malformed (e.g. truncated) bodies; never 4xx, bans
    /// or configuration errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, code, .. } => {
                *status >= 500
                    || *status == 408
                    || (*status == 429)
                    || *code == Some(-1008)
                    || *code == Some(-1007)
            }
            Error::Network { .. } | Error::Malformed { .. } => true,
            _ => false,
        }
    }
}

/// Result with the ingestion [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
