//! `atm compact`: zstd-compress sealed blocks.

use atm_store::{Interval, Market, Store, Symbol};

use crate::cli::CompactArgs;
use crate::error::Result;
use crate::time_arg::parse_time;

pub fn run(store: &Store, a: CompactArgs) -> Result<()> {
    let market: Option<Market> = a.market.map(Into::into);
    let symbol = a.symbol.as_deref().map(Symbol::new).transpose()?;
    let interval: Option<Interval> = a.interval.as_deref().map(str::parse).transpose()?;
    let before = a.before.as_deref().map(parse_time).transpose()?;
    let keys: Vec<_> = store
        .list_series()?
        .into_iter()
        .filter(|key| {
            market.is_none_or(|m| m == key.market)
                && symbol.as_ref().is_none_or(|s| *s == key.symbol)
                && interval.is_none_or(|i| i == key.interval)
        })
        .collect();
    let mut w = store.writer()?;
    // Every selected series is locked before any is compacted: one another
    // writer holds fails the command at once, naming it and its pid.
    w.lock_all(&keys)?;
    let (mut series, mut blocks, mut before_bytes, mut after_bytes) = (0u64, 0u64, 0u64, 0u64);
    for key in keys {
        let size = |store: &Store| -> Result<u64> {
            Ok(store
                .series(&key)?
                .map(|s| s.bytes_on_disk())
                .transpose()?
                .unwrap_or(0))
        };
        before_bytes += size(store)?;
        let n = w.compact(&key, before)?;
        after_bytes += size(store)?;
        if n > 0 {
            log::info!("{key}: {n} block(s) compressed");
            series += 1;
            blocks += n;
        }
    }
    w.close()?;
    println!("compacted {blocks} block(s) in {series} series: {before_bytes} -> {after_bytes} bytes on disk");
    Ok(())
}
