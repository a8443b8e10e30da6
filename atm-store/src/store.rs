//! The store: a directory of series files, their journals, locks and registries.
//!
//! ```text
//! STORE/
//!   atm-store                 store header: magic, version, precision, CRC
//!   locks                     byte-range write locks (see lock.rs)
//!   recovery.lock             serialises crash recovery
//!   journal/<id>.wal          one redo journal per live writer
//!   <market>/registry         symbol registry of the market
//!   <market>/<interval>/<SYMBOL>.kl   one series file per series
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::layout::get_u32;
use crate::series::Series;
use crate::series_file::SeriesFile;
use crate::{Interval, Market, Precision, SeriesKey, Symbol};

/// The file that makes a directory a store: magic, format version, precision.
pub const STORE_FILE: &str = "atm-store";

/// Magic bytes of the store header file.
pub const STORE_MAGIC: [u8; 8] = *b"ATMSTORE";
/// The store-header format version.
pub const STORE_VERSION: u32 = 1;
/// Extension of series files.
pub const SERIES_EXT: &str = "kl";
/// Default bound on series files a store keeps open and mapped at once.
pub const DEFAULT_OPEN_SERIES: usize = 256;

/// Options for opening a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Create the store if the directory holds none.
    pub create: bool,
    /// Precision of a newly created store (an existing store keeps its own).
    pub precision: Precision,
    /// How many series files stay open and mapped in the reader cache.
    pub max_open_series: usize,
    /// Open for reading only: do not replay the journals of writers that
    /// crashed (which writes to the store). Readers still see only
    /// published commits; a crashed writer's last commits appear once a
    /// writer, or a process opening the store normally, replays them.
    pub read_only: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create: false,
            precision: Precision::F32,
            max_open_series: DEFAULT_OPEN_SERIES,
            read_only: false,
        }
    }
}

/// An open store. Cheap to clone; shareable between threads.
///
/// ```
/// use atm_store::{Interval, Kline, Market, SeriesKey, Store, StoreOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path(), StoreOptions { create: true, ..Default::default() }).unwrap();
/// let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
/// let mut w = store.writer().unwrap();
/// let t = 1_700_000_040_000; // 2023-11-14 22:14 UTC, a minute boundary
/// w.put(&key, &Kline { open_time: t, close_time: t + 59_999, values: [1.0; 8], trades: 3 }).unwrap();
/// w.commit().unwrap();
/// let s = store.series(&key).unwrap().unwrap();
/// assert_eq!(s.latest().unwrap().unwrap().trades, 3);
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<StoreInner>,
}

pub(crate) struct StoreInner {
    pub dir: PathBuf,
    pub precision: Precision,
    cache: Mutex<Cache>,
}

/// A small LRU of open read handles, bounding open files and maps. Handles
/// given out stay valid after eviction (they own their map).
struct Cache {
    cap: usize,
    tick: u64,
    map: HashMap<SeriesKey, (Arc<SeriesFile>, u64)>,
}

impl Cache {
    fn get(&mut self, key: &SeriesKey) -> Option<Arc<SeriesFile>> {
        self.tick += 1;
        let t = self.tick;
        self.map.get_mut(key).map(|(f, tick)| {
            *tick = t;
            f.clone()
        })
    }

    fn insert(&mut self, key: SeriesKey, f: Arc<SeriesFile>) {
        if self.map.len() >= self.cap {
            if let Some(old) = self
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                self.map.remove(&old);
            }
        }
        self.tick += 1;
        self.map.insert(key, (f, self.tick));
    }
}

fn encode_store_header(precision: Precision) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[..8].copy_from_slice(&STORE_MAGIC);
    b[8..12].copy_from_slice(&STORE_VERSION.to_le_bytes());
    b[12] = precision.width() as u8;
    let crc = crc32c::crc32c(&b[..60]);
    b[60..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode_store_header(b: &[u8], path: &Path) -> Result<Precision> {
    if b.len() < 64 || b[..8] != STORE_MAGIC {
        return Err(Error::BadMagic {
            path: path.into(),
            kind: "store",
        });
    }
    let v = get_u32(b, 8);
    if v != STORE_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.into(),
            found: v,
            supported: STORE_VERSION,
        });
    }
    if crc32c::crc32c(&b[..60]) != get_u32(b, 60) {
        return Err(Error::corrupt(path, "store header checksum mismatch"));
    }
    match b[12] {
        4 => Ok(Precision::F32),
        8 => Ok(Precision::F64),
        w => Err(Error::corrupt(
            path,
            format!("store header: unknown value width {w}"),
        )),
    }
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))
}

impl Store {
    /// Opens the store in `dir` (creating it with `opts.create`), recovering
    /// from any writer that crashed since it was last used.
    pub fn open(dir: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref();
        let head = dir.join(STORE_FILE);
        let precision = match std::fs::read(&head) {
            Ok(b) => {
                let p = decode_store_header(&b, &head)?;
                if opts.create && p != opts.precision {
                    log::warn!(
                        "store {} has precision {}; ignoring the requested {}",
                        dir.display(),
                        p.as_str(),
                        opts.precision.as_str()
                    );
                }
                p
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.create => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
                atomic_write(&head, &encode_store_header(opts.precision))?;
                opts.precision
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!(
                    "store {} (no atm-store file; create it with `atm import` or `--create`)",
                    dir.display()
                )));
            }
            Err(e) => return Err(Error::io("read", &head, e)),
        };
        let inner = StoreInner {
            dir: dir.to_path_buf(),
            precision,
            cache: Mutex::new(Cache {
                cap: opts.max_open_series.max(1),
                tick: 0,
                map: HashMap::new(),
            }),
        };
        let store = Store {
            inner: Arc::new(inner),
        };
        if !opts.read_only {
            crate::recovery::recover_orphans(&store.inner)?;
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Precision of the store's float columns.
    pub fn precision(&self) -> Precision {
        self.inner.precision
    }

    /// Starts a writer (a new journal). Series are locked as the writer first touches them.
    pub fn writer(&self) -> Result<crate::Writer> {
        crate::Writer::new(self.inner.clone())
    }

    /// The series `key`, or `None` if nothing was ever written to it.
    pub fn series(&self, key: &SeriesKey) -> Result<Option<Series>> {
        if let Some(f) = atm_types::sync::lock(&self.inner.cache).get(key) {
            return Ok(Some(Series::new(f)));
        }
        let path = self.inner.series_path(key);
        if !path.exists() {
            return Ok(None);
        }
        let f = Arc::new(SeriesFile::open(&path, false)?);
        if f.key != *key {
            return Err(Error::corrupt(
                &path,
                format!("file holds series {}, expected {key}", f.key),
            ));
        }
        atm_types::sync::lock(&self.inner.cache).insert(key.clone(), f.clone());
        Ok(Some(Series::new(f)))
    }

    /// Every series in the store, sorted by market, symbol, interval.
    pub fn list_series(&self) -> Result<Vec<SeriesKey>> {
        let mut out = Vec::new();
        for market in Market::ALL {
            for interval in Interval::ALL {
                out.extend(
                    self.list_symbols(market, interval)?
                        .into_iter()
                        .filter_map(|s| SeriesKey::new(market, s, interval).ok()),
                );
            }
        }
        out.sort();
        Ok(out)
    }

    /// Symbols with a series of `interval` on `market`, sorted.
    pub fn list_symbols(&self, market: Market, interval: Interval) -> Result<Vec<Symbol>> {
        let dir = self
            .inner
            .dir
            .join(market.as_str())
            .join(interval.file_name());
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| Error::io("list", &dir, e))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(sym) = name.strip_suffix(&format!(".{SERIES_EXT}")) {
                if let Ok(s) = Symbol::new(sym) {
                    out.push(s);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The kline at open time `t` of every series of `market` and `interval`
    /// (a universe snapshot), with `None` where a series has none there.
    pub fn cross_section(
        &self,
        market: Market,
        interval: Interval,
        t: i64,
    ) -> Result<Vec<(Symbol, Option<crate::Kline>)>> {
        let slot = interval.slot_of(t)?;
        let mut out = Vec::new();
        for sym in self.list_symbols(market, interval)? {
            let key = SeriesKey::new(market, sym.clone(), interval)?;
            let k = match self.series(&key)? {
                Some(s) => s.at_slot(slot)?,
                None => None,
            };
            out.push((sym, k));
        }
        Ok(out)
    }

    /// Number of series files currently held open by the reader cache.
    pub fn open_series(&self) -> usize {
        atm_types::sync::lock(&self.inner.cache).map.len()
    }
}

impl StoreInner {
    /// Path of the file of series `key`.
    pub fn series_path(&self, key: &SeriesKey) -> PathBuf {
        self.dir
            .join(key.market.as_str())
            .join(key.interval.file_name())
            .join(format!("{}.{SERIES_EXT}", key.symbol))
    }

    /// Drops the cached read handle of `key` (after recovery rewrote it).
    pub fn forget(&self, key: &SeriesKey) {
        atm_types::sync::lock(&self.cache).map.remove(key);
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.dir.join("journal")
    }
}
