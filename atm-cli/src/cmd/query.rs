//! `atm query`: print the klines of one series.

use std::io::Write;

use atm_store::{Interval, SeriesKey, Store};

use crate::cli::QueryArgs;
use crate::error::{CliError, Result};
use crate::format::KlineWriter;

pub fn run(store: &Store, a: QueryArgs) -> Result<()> {
    let interval: Interval = a.interval.parse()?;
    let key = SeriesKey::parse(a.market.into(), &a.symbol, interval)?;
    let (from, to) = crate::time_arg::range(a.from.as_deref(), a.to.as_deref())?;
    let series = store.series(&key)?.ok_or_else(|| {
        CliError::Usage(format!(
            "no series {key} in store {}",
            store.dir().display()
        ))
    })?;
    let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut w = KlineWriter::new(out, a.format, store.precision())?;
    match a.tail {
        Some(n) if from == i64::MIN && to == i64::MAX => {
            for k in series.tail(n)? {
                w.write(&k)?;
            }
        }
        Some(n) => {
            let ks = series.range(from, to)?;
            for k in &ks[ks.len().saturating_sub(n)..] {
                w.write(k)?;
            }
        }
        None => series.for_each_chunk(from, to, |chunk| {
            for k in chunk {
                w.write(k)
                    .map_err(|e| atm_store::Error::io("write", "stdout", e))?;
            }
            Ok(())
        })?,
    }
    if a.live {
        // The kline in progress, newer than anything stored, from a running stream.
        match atm_status::read_live(store.dir(), &key)? {
            Some(k) if series.latest()?.is_none_or(|l| l.open_time < k.open_time) => w.write(&k)?,
            Some(_) => {}
            None => log::warn!("no running `atm stream` publishes {key}: no live kline"),
        }
    }
    w.finish()?;
    let _ = std::io::stdout().flush();
    Ok(())
}
