//! The simulator's errors: bad configuration, or a server that cannot start.

/// A simulator error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad option: universe, fault spec, time, address.
    #[error("{0}")]
    Config(String),
    /// The server could not bind or run.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result with the simulator's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
