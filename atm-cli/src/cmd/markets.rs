//! `atm markets`: exchangeInfo into the registry, then list it.

use std::io::Write;

use crate::cli::{MarketsArgs, MarketsFormat};
use crate::error::Result;

pub fn run(dir: &std::path::Path, a: MarketsArgs) -> Result<()> {
    let store = super::open_or_create(dir, atm_store::Precision::F32)?;
    let mut client = super::exchange::connect(&a.exchange)?;
    let markets = super::exchange::markets(&a.exchange);
    for &m in &markets {
        let r = atm_ingest::markets::import(&mut client, &store, m)?;
        log::info!(
            "{m}: {} symbols ({} new, {} changed, {} gone)",
            r.symbols,
            r.added,
            r.changed,
            r.gone
        );
    }
    let mut out = std::io::stdout().lock();
    let mut rows = Vec::new();
    for &m in &markets {
        for (name, s) in store.registry(m)?.symbols {
            rows.push(serde_json::json!({
                "market": m.as_str(),
                "symbol": name,
                "status": s.status,
                "base": s.base,
                "quote": s.quote,
                "first_kline": s.first_kline,
                "listed": s.listed,
                "delisted": s.delisted,
                "status_changes": s.history.len(),
            }));
        }
    }
    match a.format {
        MarketsFormat::Json => writeln!(out, "{}", serde_json::Value::Array(rows))?,
        MarketsFormat::Table => {
            writeln!(
                out,
                "{:<6} {:<20} {:<16} {:<8} {:<8} {:<20}",
                "market", "symbol", "status", "base", "quote", "first_kline"
            )?;
            for r in rows {
                let first = r["first_kline"]
                    .as_i64()
                    .map(atm_store::format_ms)
                    .unwrap_or_else(|| "-".into());
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                writeln!(
                    out,
                    "{:<6} {:<20} {:<16} {:<8} {:<8} {:<20}",
                    s("market"),
                    s("symbol"),
                    s("status"),
                    s("base"),
                    s("quote"),
                    first
                )?;
            }
        }
    }
    Ok(())
}
