//! `atm import`: Binance kline files into the store.

use std::io::IsTerminal;
use std::time::Instant;

use atm_store::import::{import_file, plan, FileReport};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{ImportArgs, PrecisionArg};
use crate::error::Result;

pub fn run(dir: &std::path::Path, a: ImportArgs) -> Result<()> {
    let precision = match a.precision {
        PrecisionArg::F32 => atm_store::Precision::F32,
        PrecisionArg::F64 => atm_store::Precision::F64,
    };
    // Plan first: a bad file name or unknown market fails before anything is written.
    let files = plan(&a.paths, a.market.map(Into::into))?;
    if files.is_empty() {
        return Err(crate::error::CliError::Usage(
            "no .csv, .csv.gz or .zip kline files in the given paths".into(),
        ));
    }
    let store = super::open_or_create(dir, precision)?;
    let mut writer = store.writer()?;
    // Every series of the plan is locked before any is written: a series
    // another writer holds fails the import at once, naming it and its pid.
    let mut keys: Vec<atm_store::SeriesKey> = files.iter().map(|f| f.key.clone()).collect();
    keys.sort();
    keys.dedup();
    writer.lock_all(&keys)?;
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(files.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let start = Instant::now();
    let mut total = FileReport::default();
    for f in &files {
        bar.set_message(format!("{}", f.key));
        let r = import_file(&store, &mut writer, f, |rows| {
            bar.set_message(format!("{} ({rows} rows)", f.key))
        })?;
        log::info!(
            "{}: {} rows, {} written, {} unchanged",
            f.path.display(),
            r.rows,
            r.written,
            r.unchanged
        );
        if r.kept_stored > 0 {
            log::warn!(
                "{}: {} rows differ from stored klines; the stored ones were kept (REST is the authority)",
                f.path.display(),
                r.kept_stored
            );
        }
        total.rows += r.rows;
        total.written += r.written;
        total.unchanged += r.unchanged;
        total.kept_stored += r.kept_stored;
        bar.inc(1);
    }
    writer.close()?;
    bar.finish_and_clear();
    println!(
        "imported {} file(s): {} rows, {} klines written, {} unchanged, {} kept as stored, in {:.2}s",
        files.len(),
        total.rows,
        total.written,
        total.unchanged,
        total.kept_stored,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
