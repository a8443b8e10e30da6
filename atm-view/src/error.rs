//! The one error type of `atm view`.

/// What can stop `atm view`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] atm_store::Error),
    /// Reading the status segments failed.
    #[error(transparent)]
    Status(#[from] atm_status::Error),
    /// The terminal could not be set up, drawn or restored.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// The series asked for on the command line is not in the store.
    #[error("{0}")]
    NotInStore(String),
    /// Standard output or input is not a terminal.
    #[error("atm view needs an interactive terminal ({0} is not one); use `atm query` or `atm info` in scripts")]
    NotATerminal(&'static str),
}

impl From<atm_types::Error> for ViewError {
    /// A name or time the vocabulary refused, as the store reports it.
    fn from(e: atm_types::Error) -> Self {
        ViewError::Store(e.into())
    }
}

/// `Result` with [`ViewError`].
pub type Result<T> = std::result::Result<T, ViewError>;
