//! `atm export` of the peers' workload series (3.2M 1m klines, a seeded
//! random walk with prices on a 0.01 tick and volumes on a 1e-5 lot, as
//! `shared/peers` generates it): rows/s into Parquet, and the file's size
//! against what Polars writes by default for the same data (when the
//! readers' virtualenv of `.ci/run` is there).
//!
//! `cargo run --release -p atm-benches --bin export-bench [-- ROWS]`

#![forbid(unsafe_code)]

use std::time::Instant;

use atm_benches::{cpu_and_peak, peers_walk as walk};
use atm_store::export::{export, ExportFormat, ExportOptions};
use atm_store::{Columns, FloatColumn, Interval, Market, SeriesKey, Store, StoreOptions};

/// 2019-09-09 02:57 UTC, the peers' origin.
const ORIGIN: i64 = 1_567_997_820_000;

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_200_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path().join("store"),
        StoreOptions {
            create: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
    let (floats, trades) = walk(rows);
    let mut w = store.writer().unwrap();
    let cols = Columns {
        values: std::array::from_fn(|c| FloatColumn::F32(&floats[c])),
        trades: &trades,
    };
    w.commit_columns(&key, ORIGIN, &cols).unwrap();
    w.close().unwrap();

    let out = dir.path().join("dataset");
    let t = Instant::now();
    let (cpu0, _) = cpu_and_peak();
    let r = export(
        &store,
        std::slice::from_ref(&key),
        &out,
        &ExportOptions::default(),
    )
    .unwrap();
    let (cpu1, peak) = cpu_and_peak();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.rows, rows as u64);
    println!(
        "export of {rows} 1m klines (one series, {} yearly Parquet files):",
        r.written
    );
    println!(
        "  {secs:.2} s = {:.0} rows/s (target 5,000,000); {:.2} s CPU; peak resident {peak:.0} MB; {} bytes = {:.1} bytes/row",
        rows as f64 / secs,
        cpu1 - cpu0,
        r.bytes,
        r.bytes as f64 / rows as f64
    );
    let t = Instant::now();
    let again = export(
        &store,
        std::slice::from_ref(&key),
        &out,
        &ExportOptions::default(),
    )
    .unwrap();
    println!(
        "  again, unchanged: {} files untouched in {:.1} ms",
        again.unchanged,
        t.elapsed().as_secs_f64() * 1e3
    );
    let csv = dir.path().join("csv");
    let t = Instant::now();
    export(
        &store,
        &[SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap()],
        &csv,
        &ExportOptions {
            format: ExportFormat::Csv,
            ..ExportOptions::default()
        },
    )
    .unwrap();
    println!(
        "  CSV: {:.0} rows/s",
        rows as f64 / t.elapsed().as_secs_f64()
    );

    // Polars' default Parquet of the same rows, for size.
    let python = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/readers-venv/bin/python"
    );
    let script = "import glob, os, sys, polars as pl\n\
        files = sorted(glob.glob(sys.argv[1] + '/**/*.parquet', recursive=True))\n\
        pl.concat([pl.read_parquet(f) for f in files]).write_parquet(sys.argv[2])\n\
        print(sum(os.path.getsize(f) for f in files), os.path.getsize(sys.argv[2]))";
    let polars = dir.path().join("polars.parquet");
    match std::process::Command::new(python)
        .args([
            "-c",
            script,
            out.to_str().unwrap(),
            polars.to_str().unwrap(),
        ])
        .output()
    {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let v: Vec<f64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [atm, pl] = v[..] {
                println!("  Parquet size: atm {atm:.0} bytes, Polars' default {pl:.0} bytes: atm / Polars = {:.2} (target <= 1)", atm / pl);
            }
        }
        _ => println!(
            "  (no {python}: run `bash .ci/run` once to compare with Polars' Parquet size)"
        ),
    }
}
