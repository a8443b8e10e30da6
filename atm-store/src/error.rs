//! The store's error type: one enum for every operation of the crate.

use std::path::PathBuf;

/// Result alias used throughout `atm-store`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
///
/// Messages name the thing that was wrong (file, series, line, symbol) so a
/// command-line front end can print them as one line. The store never serves
/// data it could not verify: checksum failures surface as [`Error::Corrupt`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed on a file of the store.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (e.g. "open", "map", "sync").
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file system has no space left; nothing committed was lost.
    #[error("disk full while reserving space in {}: nothing committed was lost", path.display())]
    DiskFull {
        /// The file that could not grow.
        path: PathBuf,
    },
    /// A file does not start with the expected magic bytes.
    #[error("{} is not an atm {kind} file (bad magic)", path.display())]
    BadMagic {
        /// The offending file.
        path: PathBuf,
        /// Which kind of file was expected.
        kind: &'static str,
    },
    /// A file was written by a newer (or unknown) format version.
    #[error("{} has format version {found}, this atm reads version {supported}: upgrade atm", path.display())]
    UnsupportedVersion {
        /// The offending file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Stored bytes do not match their checksum or an invariant does not hold.
    #[error("corrupt {}: {detail}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What exactly failed (block, column, field).
        detail: String,
    },
    /// Another live process (or handle) holds the write lock.
    #[error("{what} is locked by another writer (pid {pid})")]
    Locked {
        /// The series or file that is locked.
        what: String,
        /// The process id of the holder (this process's own id when the
        /// holder is another handle in the same process).
        pid: i32,
    },
    /// Series that other writers hold, found while locking a whole plan
    /// before writing ([`crate::Writer::lock_all`]): nothing was written.
    #[error(
        "{} held by another writer, nothing was written: {}; wait for it to finish or stop it",
        held_count(series),
        held_list(series)
    )]
    Held {
        /// Each held series and its holder's pid.
        series: Vec<(String, i32)>,
    },
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
    /// A row of an input file that cannot be parsed or is inconsistent.
    #[error("{}:{line}: {reason}", path.display())]
    BadRow {
        /// The input file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What was wrong with the row.
        reason: String,
    },
    /// A stored series or store directory that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The store was created with another precision than the operation needs.
    #[error("store precision mismatch: {0}")]
    Precision(String),
    /// A write was interrupted by a crash and needs recovery by a writer.
    #[error("{} has an interrupted write that needs recovery: open the store with write access (e.g. `atm verify`)", path.display())]
    NeedsRecovery {
        /// The series file.
        path: PathBuf,
    },
}

impl Error {
    /// Wraps an I/O error with the operation and path it came from.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.raw_os_error() == Some(libc_enospc()) {
            return Error::DiskFull { path };
        }
        Error::Io { op, path, source }
    }

    /// Builds a corruption error.
    pub fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// True when the store refused to serve damaged bytes.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}

impl From<atm_types::Error> for Error {
    /// The vocabulary's refusals keep their variants and messages.
    fn from(e: atm_types::Error) -> Self {
        match e {
            atm_types::Error::InvalidSymbol { symbol, reason } => {
                Error::InvalidSymbol { symbol, reason }
            }
            atm_types::Error::InvalidInput(m) => Error::InvalidInput(m),
            other => Error::InvalidInput(other.to_string()),
        }
    }
}

fn held_count(series: &[(String, i32)]) -> String {
    match series.len() {
        1 => "1 series is".to_string(),
        n => format!("{n} series are"),
    }
}

fn held_list(series: &[(String, i32)]) -> String {
    const SHOWN: usize = 20;
    let mut s: Vec<String> = series
        .iter()
        .take(SHOWN)
        .map(|(what, pid)| format!("{what} (pid {pid})"))
        .collect();
    if series.len() > SHOWN {
        s.push(format!("and {} more", series.len() - SHOWN));
    }
    s.join(", ")
}

/// `ENOSPC` without pulling libc into the public API.
fn libc_enospc() -> i32 {
    nix::errno::Errno::ENOSPC as i32
}

/// Maps a `nix` error into an [`Error::Io`].
pub(crate) fn nix_io(op: &'static str, path: impl Into<PathBuf>, e: nix::Error) -> Error {
    Error::io(op, path, std::io::Error::from_raw_os_error(e as i32))
}
