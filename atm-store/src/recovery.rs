//! Crash recovery: replaying the journals of writers that died.
//!
//! A journal whose `flock` can be taken belongs to a dead writer (the kernel
//! releases the lock with the process). Its committed records are applied
//! again to their series files (idempotent: the same bytes land in the same
//! places), the files are synced, and the journal is removed. Recovery runs
//! when a store is opened and when a writer takes over a series still marked
//! dirty by a dead journal, always under `recovery.lock`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::Path;

use crate::error::{Error, Result};
use crate::lock::FileLock;
use crate::series_file::SeriesFile;
use crate::store::StoreInner;
use crate::SeriesKey;

/// Replays every orphaned journal of the store. Returns how many it replayed.
pub(crate) fn recover_orphans(store: &StoreInner) -> Result<usize> {
    let dir = store.journal_dir();
    let mut paths: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    // Journals of live writers are locked: skip them without taking any
    // lock ourselves (a reader without write access must still open the store).
    paths.retain(|p| is_orphaned(p));
    if paths.is_empty() {
        return Ok(0);
    }
    paths.sort();
    let _guard = FileLock::acquire(&store.dir.join("recovery.lock"))?;
    let mut n = 0;
    for p in paths {
        if replay_if_orphaned(store, &p)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Replays the journal with `id` if its writer is dead (waiting if another
/// process is replaying it right now).
pub(crate) fn recover_journal_id(store: &StoreInner, id: u64) -> Result<()> {
    let path = store.journal_dir().join(format!("{id:016x}.wal"));
    let _guard = FileLock::acquire(&store.dir.join("recovery.lock"))?;
    if path.exists() && !replay_if_orphaned(store, &path)? {
        return Err(Error::Locked {
            what: format!("journal {}", path.display()),
            pid: 0,
        });
    }
    Ok(())
}

/// Whether the journal at `path` has no live writer (its `flock` is free).
fn is_orphaned(path: &Path) -> bool {
    match std::fs::File::open(path) {
        Ok(f) => match f.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(_)) => true,
        },
        Err(_) => false,
    }
}

fn replay_if_orphaned(store: &StoreInner, path: &Path) -> Result<bool> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let (id, groups) = match crate::journal::read_commits(&bytes, path) {
        Ok(r) => r,
        // A journal whose header never became durable holds no commit.
        Err(e) if bytes.len() < crate::layout::PAGE as usize || e.is_corruption() => {
            (0, Vec::new())
        }
        Err(e) => return Err(e),
    };
    let mut files: HashMap<SeriesKey, SeriesFile> = HashMap::new();
    let commits = groups.len();
    for g in groups {
        for (key, precision, batch) in g.batches {
            if !files.contains_key(&key) {
                let sp = store.series_path(&key);
                let f = SeriesFile::create_or_open(&sp, &key, precision)?;
                files.insert(key.clone(), f);
            }
            let f = &files[&key];
            f.reopen_seqlocks(&batch);
            f.reserve(&batch, false)?;
            f.apply(&batch, true)?;
        }
    }
    for (key, f) in &files {
        f.sync()?;
        if f.dirty() == id {
            f.set_dirty(0);
        }
        store.forget(key);
    }
    std::fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
    log::info!(
        "recovered {commits} commit(s) of {} series from {}",
        files.len(),
        path.display()
    );
    Ok(true)
}
