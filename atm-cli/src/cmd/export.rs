//! `atm export`: stored klines as a Hive-partitioned dataset.

use std::io::Write;

use atm_ingest::SymbolFilter;
use atm_store::export::{export, ExportOptions};
use atm_store::{Interval, Market, SeriesKey, Store};

use crate::cli::{ExportArgs, SummaryFormat};
use crate::error::{CliError, Result};

pub fn run(store: &Store, a: ExportArgs) -> Result<()> {
    let markets: Vec<Market> = a.markets.iter().map(|&m| m.into()).collect();
    let symbols: SymbolFilter = a.symbols.parse()?;
    let intervals = a
        .intervals
        .iter()
        .map(|i| i.parse::<Interval>())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (from, to) = crate::time_arg::range(a.from.as_deref(), a.to.as_deref())?;
    let keys: Vec<SeriesKey> = store
        .list_series()?
        .into_iter()
        .filter(|k| {
            markets.contains(&k.market)
                && (intervals.is_empty() || intervals.contains(&k.interval))
                && symbols.matches(k.symbol.as_str())
        })
        .collect();
    if keys.is_empty() {
        return Err(CliError::Usage(format!(
            "nothing to export: no series in store {} matches --markets {} --symbols {} --intervals {}",
            store.dir().display(),
            markets.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
            a.symbols,
            if a.intervals.is_empty() { "(all)".to_string() } else { a.intervals.join(",") }
        )));
    }
    let opts = ExportOptions {
        format: a.format.into(),
        from,
        to,
        prune: a.prune,
    };
    let r = export(store, &keys, &a.out, &opts)?;
    if r.series == 0 {
        return Err(CliError::Usage(format!(
            "nothing to export: the {} selected series have no kline in the range",
            keys.len()
        )));
    }
    let mut out = std::io::stdout().lock();
    match a.summary {
        SummaryFormat::Json => writeln!(out, "{}", serde_json::to_string(&r).unwrap_or_default())?,
        SummaryFormat::Text => writeln!(
            out,
            "exported {} series to {}: {} files written ({} rows, {} bytes), {} unchanged, {} removed",
            r.series,
            a.out.display(),
            r.written,
            r.rows,
            r.bytes,
            r.unchanged,
            r.removed
        )?,
    }
    Ok(())
}
