//! The stores this process has open, shared by every `atm.open` of them.
//!
//! Python code opens stores freely (`atm.open()` in a function called once
//! per bar, per symbol, per notebook cell). Each new `atm_store::Store` would
//! map its series files anew and checksum again every block it reads:
//! mapping a series file and faulting in the few pages of its block table
//! and bitmaps costs more than a 30-day read itself. So a store opened
//! before is handed out again, with its open maps and the blocks already
//! verified ("once per process"): a new handle costs one `stat`.
//!
//! A store is the same store when its path and its `atm-store` file's
//! device, inode and birth time are: a store deleted and made again at the
//! same path (even if the inode number is reused) is opened anew. Without a
//! birth time (a file system that does not record one) nothing is shared.
//! The last [`KEEP`] stores opened stay open after their handles are gone.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use atm_store::{Store, StoreOptions, STORE_FILE};

/// Stores kept open after their last handle is gone.
pub const KEEP: usize = 8;

/// What makes two opens the same store.
#[derive(Clone, PartialEq, Eq)]
struct Identity {
    path: PathBuf,
    dev: u64,
    ino: u64,
    born: SystemTime,
}

impl Identity {
    fn of(dir: &Path) -> Option<Identity> {
        let m = std::fs::metadata(dir.join(STORE_FILE)).ok()?;
        Some(Identity {
            path: dir.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            born: m.created().ok()?,
        })
    }
}

/// Open stores, the most recently opened last.
static OPEN: Mutex<Vec<(Identity, Store)>> = Mutex::new(Vec::new());

/// The store in `dir`, read-only: the one this process already has open, or
/// opened now (errors as [`Store::open`]'s).
pub fn open(dir: &Path) -> atm_store::Result<Store> {
    let id = Identity::of(dir);
    if let Some(id) = &id {
        let mut open = atm_types::sync::lock(&OPEN);
        if let Some(i) = open.iter().position(|(k, _)| k == id) {
            let entry = open.remove(i);
            let store = entry.1.clone();
            open.push(entry);
            return Ok(store);
        }
    }
    let store = Store::open(
        dir,
        StoreOptions {
            read_only: true,
            ..Default::default()
        },
    )?;
    if let Some(id) = id {
        let mut open = atm_types::sync::lock(&OPEN);
        // A store made again at the same path replaces the old one.
        open.retain(|(k, _)| k.path != id.path);
        open.push((id, store.clone()));
        if open.len() > KEEP {
            open.remove(0);
        }
    }
    Ok(store)
}
