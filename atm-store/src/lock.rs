//! Write locks that other processes see.
//!
//! A series is locked by a POSIX record lock (`fcntl(F_SETLK)`) on one byte of
//! the store's `locks` file, at the offset given by the series file's inode
//! number. One file descriptor serves every series of the store, so a writer
//! holding thousands of series needs no extra open files; the kernel drops
//! the locks when the process dies, so a dead writer's locks are taken over
//! at once; and `F_GETLK` names the holder's pid for the error message.
//!
//! POSIX record locks belong to the process and vanish when *any* descriptor
//! of the file is closed, so this module opens the `locks` file once per
//! process and store and never closes it, and tracks the locks held inside
//! the process itself (the kernel would not make two handles of one process
//! conflict).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{nix_io, Error, Result};

/// The per-process handle on one store's `locks` file.
pub(crate) struct LockTable {
    file: File,
    path: PathBuf,
    held: Mutex<HashSet<u64>>,
}

/// The lock table of the store at `dir` (opened once per process).
pub(crate) fn lock_table(dir: &Path) -> Result<Arc<LockTable>> {
    static TABLES: OnceLock<Mutex<HashMap<PathBuf, Arc<LockTable>>>> = OnceLock::new();
    // One table per store, however its directory is spelled: two tables of
    // one file would not see each other's locks (they belong to one process).
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("resolve", dir, e))?;
    let path = dir.join("locks");
    let mut tables = atm_types::sync::lock(TABLES.get_or_init(Default::default));
    if let Some(t) = tables.get(&path) {
        return Ok(t.clone());
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    let t = Arc::new(LockTable {
        file,
        path: path.clone(),
        held: Mutex::new(HashSet::new()),
    });
    tables.insert(path, t.clone());
    Ok(t)
}

fn flock_at(kind: libc::c_short, offset: u64) -> libc::flock {
    // Every field of `libc::flock` is an integer; start from all zeros.
    let mut fl: libc::flock = zeroed_flock();
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = (offset & (i64::MAX as u64)) as libc::off_t;
    fl.l_len = 1;
    fl
}

/// A zeroed `flock`.
fn zeroed_flock() -> libc::flock {
    libc::flock {
        l_type: 0,
        l_whence: 0,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

impl LockTable {
    /// Takes the write lock `id` (a series file's inode) or reports its holder.
    pub fn try_lock(&self, id: u64, what: &str) -> Result<()> {
        let mut held = atm_types::sync::lock(&self.held);
        if held.contains(&id) {
            return Err(Error::Locked {
                what: what.to_string(),
                pid: std::process::id() as i32,
            });
        }
        let fl = flock_at(libc::F_WRLCK as libc::c_short, id);
        match nix::fcntl::fcntl(&self.file, nix::fcntl::FcntlArg::F_SETLK(&fl)) {
            Ok(_) => {
                held.insert(id);
                Ok(())
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => {
                let mut probe = flock_at(libc::F_WRLCK as libc::c_short, id);
                let pid = match nix::fcntl::fcntl(
                    &self.file,
                    nix::fcntl::FcntlArg::F_GETLK(&mut probe),
                ) {
                    Ok(_) if probe.l_type != libc::F_UNLCK as libc::c_short => probe.l_pid,
                    _ => 0,
                };
                Err(Error::Locked {
                    what: what.to_string(),
                    pid,
                })
            }
            Err(e) => Err(nix_io("lock", &self.path, e)),
        }
    }

    /// Releases lock `id`.
    pub fn unlock(&self, id: u64) {
        let mut held = atm_types::sync::lock(&self.held);
        if held.remove(&id) {
            let fl = flock_at(libc::F_UNLCK as libc::c_short, id);
            if let Err(e) = nix::fcntl::fcntl(&self.file, nix::fcntl::FcntlArg::F_SETLK(&fl)) {
                log::warn!("unlock {}: {e}", self.path.display());
            }
        }
    }
}

/// An exclusive `flock` on a whole file, held while the value lives.
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits for the exclusive lock on `path`, creating the file if needed.
    pub fn acquire(path: &Path) -> Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        file.lock().map_err(|e| Error::io("lock", path, e))?;
        Ok(FileLock { _file: file })
    }
}
