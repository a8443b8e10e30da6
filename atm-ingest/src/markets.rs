//! Market import: each market's exchangeInfo into the store's symbol
//! registry. New listings are added, status changes recorded with when they
//! were seen, symbols gone from the exchange marked delisted; nothing is
//! dropped.

use atm_store::{Market, Store};
use serde_json::Value;

use crate::client::Client;
use crate::error::Result;

/// What one market's import changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MarketImport {
    /// The market.
    pub market: String,
    /// Symbols in the exchange's document.
    pub symbols: usize,
    /// Symbols new to the registry.
    pub added: usize,
    /// Symbols whose status changed.
    pub changed: usize,
    /// Symbols seen gone from the document (kept, marked delisted).
    pub gone: usize,
    /// Symbols skipped because their names cannot be stored (with why).
    pub skipped: Vec<String>,
}

/// Statuses under which a symbol trades.
pub fn is_trading(status: &str) -> bool {
    matches!(
        status,
        "TRADING"
            | "PRE_DELIVERING"
            | "DELIVERING"
            | "PRE_SETTLE"
            | "END_OF_DAY"
            | "HALT"
            | "CANCEL_ONLY"
    )
}

/// Fetches `market`'s exchangeInfo, sets the client's weight limit from
/// it, and merges it into the registry.
pub fn import(client: &mut Client, store: &Store, market: Market) -> Result<MarketImport> {
    let info = fetch(client, market)?;
    client.set_limits(market, &info);
    merge(client, store, market, &info)
}

/// Fetches `market`'s exchangeInfo and merges it into the registry, leaving
/// the client's limits as they are (for a refresh while other threads use
/// the client).
pub fn refresh(client: &Client, store: &Store, market: Market) -> Result<MarketImport> {
    merge(client, store, market, &fetch(client, market)?)
}

fn fetch(client: &Client, market: Market) -> Result<Value> {
    let weight = if market == Market::Spot { 20 } else { 1 };
    // A body of the wrong shape is retried like a truncated one.
    client.get_parsed(market, "exchangeInfo", "", weight, |body| {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        if v["symbols"].is_array() {
            Ok(v)
        } else {
            Err("no symbols array".to_string())
        }
    })
}

fn merge(client: &Client, store: &Store, market: Market, info: &Value) -> Result<MarketImport> {
    let now = client.clock().now();
    let symbols = info["symbols"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let status_key = if market == Market::CoinM {
        "contractStatus"
    } else {
        "status"
    };
    let mut report = MarketImport {
        market: market.as_str().to_string(),
        symbols: symbols.len(),
        ..Default::default()
    };
    store.update_registry(market, |reg| {
        let mut seen = std::collections::HashSet::new();
        for s in symbols {
            let (Some(name), Some(status)) = (s["symbol"].as_str(), s[status_key].as_str()) else {
                report
                    .skipped
                    .push(format!("an entry without symbol or {status_key}"));
                continue;
            };
            let new = !reg.symbols.contains_key(name);
            match reg.observe(name, status, now) {
                Ok(changed) => {
                    report.added += new as usize;
                    report.changed += (changed && !new) as usize;
                }
                Err(e) => {
                    report.skipped.push(format!("{name}: {e}"));
                    continue;
                }
            }
            seen.insert(name.to_string());
            let Some(e) = reg.symbols.get_mut(name) else {
                continue;
            };
            e.base = s["baseAsset"].as_str().unwrap_or_default().to_string();
            e.quote = s["quoteAsset"].as_str().unwrap_or_default().to_string();
            if let Some(t) = s["onboardDate"].as_i64() {
                e.listed = Some(t);
            }
            if is_trading(status) {
                e.delisted = None;
            } else if e.delisted.is_none() {
                e.delisted = Some(now);
            }
            for key in [
                "contractType",
                "pair",
                "contractSize",
                "pricePrecision",
                "quantityPrecision",
                "deliveryDate",
            ] {
                if let Some(v) = s.get(key).filter(|v| !v.is_null()) {
                    e.extra.insert(key.to_string(), v.clone());
                }
            }
        }
        for (name, e) in reg.symbols.iter_mut() {
            if !seen.contains(name) && e.status != "GONE" {
                e.history.push(atm_store::registry::StatusChange {
                    seen: now,
                    status: "GONE".into(),
                });
                e.status = "GONE".into();
                e.delisted.get_or_insert(now);
                report.gone += 1;
            }
        }
        Ok(())
    })?;
    for s in &report.skipped {
        log::warn!("{market}: skipped {s}");
    }
    Ok(report)
}

/// The `symbols` of an exchangeInfo document (for tests and tools).
pub fn symbol_names(info: &Value) -> Vec<String> {
    info["symbols"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["symbol"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
