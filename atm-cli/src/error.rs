//! The CLI's error type and its one-line rendering.

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// An error from the store.
    #[error(transparent)]
    Store(#[from] atm_store::Error),
    /// A bad argument or combination of arguments.
    #[error("{0}")]
    Usage(String),
    /// Ingestion failed.
    #[error(transparent)]
    Ingest(#[from] atm_ingest::Error),
    /// The simulator failed.
    #[error(transparent)]
    Sim(#[from] atm_sim::Error),
    /// Reading status failed.
    #[error(transparent)]
    Status(#[from] atm_status::Error),
    /// The terminal UI failed.
    #[error(transparent)]
    View(#[from] atm_view::ViewError),
    /// A sync did everything except the series other writers held (exit 3).
    #[error("{0}")]
    Incomplete(String),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<atm_types::Error> for CliError {
    /// A name or time the vocabulary refused, as the store reports it.
    fn from(e: atm_types::Error) -> Self {
        CliError::Store(e.into())
    }
}

impl CliError {
    /// The process's exit status: 3 for a sync that did everything except
    /// series another writer held, 1 for every other failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Incomplete(_) => 3,
            _ => 1,
        }
    }

    /// What the one line on stderr starts with.
    pub fn prefix(&self) -> &'static str {
        match self {
            CliError::Incomplete(_) => "incomplete",
            _ => "error",
        }
    }
}

/// Result of a command.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// The error and its causes joined into one line.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s.replace('\n', " ")
}
