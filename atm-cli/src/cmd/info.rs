//! `atm info`: every series with its span, counts and size.

use std::io::Write;

use atm_store::Store;
use serde::Serialize;

use crate::cli::{InfoArgs, InfoFormat};
use crate::error::Result;

/// One line of `atm info --format json` (keys in contract order).
#[derive(Serialize)]
struct SeriesInfo {
    market: String,
    symbol: String,
    interval: String,
    first_open_time: Option<i64>,
    last_open_time: Option<i64>,
    present: u64,
    missing: u64,
    unknown: u64,
    bytes: u64,
}

pub fn run(store: &Store, a: InfoArgs) -> Result<()> {
    let mut rows = Vec::new();
    for key in store.list_series()? {
        let Some(s) = store.series(&key)? else {
            continue;
        };
        let st = s.stats()?;
        let (present, missing, unknown) = match (st.first_open_time, st.last_open_time) {
            (Some(f), Some(l)) => s.counts(f, l)?,
            _ => (0, 0, 0),
        };
        rows.push(SeriesInfo {
            market: key.market.to_string(),
            symbol: key.symbol.to_string(),
            interval: key.interval.to_string(),
            first_open_time: st.first_open_time,
            last_open_time: st.last_open_time,
            present,
            missing,
            unknown,
            bytes: s.bytes_on_disk()?,
        });
    }
    let mut out = std::io::stdout().lock();
    match a.format {
        InfoFormat::Json => {
            let s = serde_json::to_string(&rows)
                .map_err(|e| crate::error::CliError::Usage(e.to_string()))?;
            writeln!(out, "{s}")?;
        }
        InfoFormat::Table => {
            if rows.is_empty() {
                writeln!(out, "store {} holds no series", store.dir().display())?;
            }
            writeln!(
                out,
                "{:<6} {:<16} {:<4} {:<17} {:<17} {:>10} {:>9} {:>9} {:>12}",
                "market",
                "symbol",
                "int",
                "first (UTC)",
                "last (UTC)",
                "present",
                "missing",
                "unknown",
                "bytes"
            )?;
            let t = |v: Option<i64>| {
                v.map(|t| {
                    atm_store::format_ms(t)
                        .replace('T', " ")
                        .chars()
                        .take(16)
                        .collect()
                })
                .unwrap_or_else(|| "-".to_string())
            };
            for r in &rows {
                writeln!(
                    out,
                    "{:<6} {:<16} {:<4} {:<17} {:<17} {:>10} {:>9} {:>9} {:>12}",
                    r.market,
                    r.symbol,
                    r.interval,
                    t(r.first_open_time),
                    t(r.last_open_time),
                    r.present,
                    r.missing,
                    r.unknown,
                    r.bytes
                )?;
            }
        }
    }
    Ok(())
}
