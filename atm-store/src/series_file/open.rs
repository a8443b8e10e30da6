//! Creating and opening a series file: header checks, then the map.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use super::live_header::encode_live;
use super::*;
use crate::cold;
use crate::error::{Error, Result};
use crate::layout::{Layout, StaticHeader, LIVE_COPY_OFF, PAGE};
use crate::{Precision, SeriesKey};

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))
}

impl SeriesFile {
    /// Creates the file for `key` at `path` unless it exists; then opens it.
    pub fn create_or_open(
        path: &Path,
        key: &SeriesKey,
        precision: Precision,
    ) -> Result<SeriesFile> {
        if !path.exists() {
            let dir = path.parent().ok_or_else(|| {
                Error::InvalidInput(format!("bad series path {}", path.display()))
            })?;
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
            let layout = Layout::new(key.interval, precision);
            let header = StaticHeader {
                market: key.market,
                interval: key.interval,
                precision,
                symbol: key.symbol.clone(),
                origin_ms: key.interval.origin_ms(),
                layout: layout.clone(),
            };
            let tmp = dir.join(format!(".{}.{}.tmp", key.symbol, std::process::id()));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| Error::io("create", &tmp, e))?;
            let io = |e| Error::io("initialise", &tmp, e);
            f.set_len(layout.file_len).map_err(io)?;
            f.write_all_at(&header.encode(), 0).map_err(io)?;
            f.write_all_at(&encode_live(&Live::default()), LIVE_COPY_OFF)
                .map_err(io)?;
            f.sync_all().map_err(io)?;
            drop(f);
            // hard_link never replaces: if another process created the series
            // meanwhile, keep theirs.
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => sync_dir(dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create", path, e)),
            }
        }
        let s = SeriesFile::open(path, true)?;
        if s.key != *key || s.precision != precision {
            return Err(Error::corrupt(
                path,
                format!(
                    "file holds {} at {}, expected {key} at {}",
                    s.key,
                    s.precision.as_str(),
                    precision.as_str()
                ),
            ));
        }
        Ok(s)
    }

    /// Opens and verifies the headers of an existing series file.
    pub fn open(path: &Path, writable: bool) -> Result<SeriesFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        let mut head = vec![0u8; PAGE as usize];
        if len < PAGE {
            return Err(Error::corrupt(
                path,
                format!("truncated: {len} bytes, shorter than its header"),
            ));
        }
        file.read_exact_at(&mut head, 0)
            .map_err(|e| Error::io("read header", path, e))?;
        let h = StaticHeader::decode(&head, path)?;
        if len < h.layout.file_len {
            return Err(Error::corrupt(
                path,
                format!("truncated: {len} bytes, header says {}", h.layout.file_len),
            ));
        }
        let map =
            Map::new(&file, h.layout.file_len, writable).map_err(|e| Error::io("map", path, e))?;
        let key = SeriesKey::new(h.market, h.symbol, h.interval)
            .map_err(|e| Error::corrupt(path, e.to_string()))?;
        Ok(SeriesFile {
            path: path.to_path_buf(),
            key,
            precision: h.precision,
            layout: h.layout,
            file,
            map,
            writable,
            verified: Mutex::new(HashMap::default()),
            reserved: Mutex::new(HashSet::new()),
            zeroed: Mutex::new(HashSet::new()),
            dirty_set: AtomicU64::new(u64::MAX),
            cold: Mutex::new(None),
            thawed: Mutex::new(HashMap::new()),
        })
    }

    /// The open file (for locks and syncs).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Bytes of disk the file occupies.
    pub fn bytes_on_disk(&self) -> Result<u64> {
        let cold = std::fs::metadata(cold::cold_path(&self.path))
            .map(|m| m.blocks() * 512)
            .unwrap_or(0);
        Ok(self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?
            .blocks()
            * 512
            + cold)
    }

    /// Flushes everything written through the map to disk.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("sync", &self.path, e))
    }
}
