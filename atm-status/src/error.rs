//! The status crate's error type.

/// Result alias of `atm-status`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can fail while publishing or reading status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A status segment could not be created, listed or written.
    #[error(transparent)]
    Store(#[from] atm_store::Error),
    /// The publisher thread could not be started.
    #[error("starting the status thread: {0}")]
    Thread(#[source] std::io::Error),
}
