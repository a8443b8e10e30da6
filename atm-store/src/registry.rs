//! The symbol registry of each market, persisted crash-safely in the store.
//!
//! One file per market, `<market>/registry`: magic `ATMREG\0\0`, format
//! version (u32), body length (u64), CRC-32C of the body (u32), then the body
//! as JSON. It is replaced atomically (temporary file, fsync, rename), under
//! a lock so that concurrent updaters do not lose each other's changes.

use crate::checksum;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::{get_u32, get_u64};
use crate::lock::FileLock;
use crate::store::atomic_write;
use crate::{Market, Store, Symbol};

/// Magic bytes of a registry file.
pub const REGISTRY_MAGIC: [u8; 8] = *b"ATMREG\0\0";
/// Registry format version.
pub const REGISTRY_VERSION: u32 = 1;

/// A status the symbol had from a given time on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// When the change was first seen (epoch ms).
    pub seen: i64,
    /// The exchange's status string (`TRADING`, `BREAK`, `SETTLING`, ...).
    pub status: String,
}

/// What the store knows about one symbol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolInfo {
    /// The exchange symbol.
    pub symbol: String,
    /// Current status as last seen.
    pub status: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Listing time, when the exchange states one (epoch ms).
    pub listed: Option<i64>,
    /// Open time of the symbol's first kline, once identified (epoch ms).
    pub first_kline: Option<i64>,
    /// When the symbol was seen gone from the exchange (epoch ms).
    pub delisted: Option<i64>,
    /// Every status change seen, oldest first.
    #[serde(default)]
    pub history: Vec<StatusChange>,
    /// Other exchange fields worth keeping (contract type, precisions, ...).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The registry of one market.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    /// Symbols by name.
    pub symbols: BTreeMap<String, SymbolInfo>,
}

impl Registry {
    /// Records `status` for `symbol` as seen at `now`, adding the symbol if new.
    /// Returns true if anything changed. The symbol name is validated.
    pub fn observe(&mut self, symbol: &str, status: &str, now: i64) -> Result<bool> {
        Symbol::new(symbol)?;
        let e = self
            .symbols
            .entry(symbol.to_string())
            .or_insert_with(|| SymbolInfo {
                symbol: symbol.to_string(),
                ..Default::default()
            });
        if e.status == status {
            return Ok(false);
        }
        e.status = status.to_string();
        e.history.push(StatusChange {
            seen: now,
            status: status.to_string(),
        });
        Ok(true)
    }
}

fn path(store: &Store, market: Market) -> PathBuf {
    store.dir().join(market.as_str()).join("registry")
}

/// Encodes a registry file.
pub fn encode(reg: &Registry) -> Result<Vec<u8>> {
    let body =
        serde_json::to_vec(reg).map_err(|e| Error::InvalidInput(format!("registry: {e}")))?;
    let mut b = Vec::with_capacity(24 + body.len());
    b.extend_from_slice(&REGISTRY_MAGIC);
    b.extend_from_slice(&REGISTRY_VERSION.to_le_bytes());
    b.extend_from_slice(&(body.len() as u64).to_le_bytes());
    b.extend_from_slice(&checksum::crc32c(&body).to_le_bytes());
    b.extend_from_slice(&body);
    Ok(b)
}

/// Decodes and verifies a registry file's bytes.
pub fn decode(b: &[u8], path: &Path) -> Result<Registry> {
    if b.len() < 24 || b[..8] != REGISTRY_MAGIC {
        return Err(Error::BadMagic {
            path: path.into(),
            kind: "registry",
        });
    }
    let v = get_u32(b, 8);
    if v != REGISTRY_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.into(),
            found: v,
            supported: REGISTRY_VERSION,
        });
    }
    let len = get_u64(b, 12);
    let body = &b[24..];
    if body.len() as u64 != len || checksum::crc32c(body) != get_u32(b, 20) {
        return Err(Error::corrupt(path, "registry length or checksum mismatch"));
    }
    serde_json::from_slice(body).map_err(|e| Error::corrupt(path, format!("registry body: {e}")))
}

impl Store {
    /// The registry of `market` (empty if none was stored yet).
    pub fn registry(&self, market: Market) -> Result<Registry> {
        let p = path(self, market);
        match std::fs::read(&p) {
            Ok(b) => decode(&b, &p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(Error::io("read", &p, e)),
        }
    }

    /// Read-modify-writes the registry of `market` under its lock; the new
    /// version replaces the old atomically.
    pub fn update_registry<R>(
        &self,
        market: Market,
        f: impl FnOnce(&mut Registry) -> Result<R>,
    ) -> Result<R> {
        let p = path(self, market);
        let dir = p.parent().unwrap_or(self.dir());
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let _lock = FileLock::acquire(&dir.join("registry.lock"))?;
        let mut reg = self.registry(market)?;
        let r = f(&mut reg)?;
        atomic_write(&p, &encode(&reg)?)?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    #[test]
    fn registry_round_trips_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        store
            .update_registry(Market::UsdM, |r| {
                assert!(r.observe("币安人生USDT", "TRADING", 1)?);
                assert!(!r.observe("币安人生USDT", "TRADING", 2)?);
                assert!(r.observe("币安人生USDT", "SETTLING", 3)?);
                assert!(r.observe("../x", "TRADING", 3).is_err());
                Ok(())
            })
            .unwrap();
        let r = store.registry(Market::UsdM).unwrap();
        assert_eq!(r.symbols["币安人生USDT"].history.len(), 2);
        assert!(store.registry(Market::Spot).unwrap().symbols.is_empty());
        let p = dir.path().join("um/registry");
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 3] ^= 1;
        std::fs::write(&p, &b).unwrap();
        assert!(store.registry(Market::UsdM).unwrap_err().is_corruption());
    }
}
