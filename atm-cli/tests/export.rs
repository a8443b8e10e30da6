//! `atm export` end to end: a store synced from `atm sim serve` exported as
//! a Hive-partitioned Parquet dataset, read back by DuckDB, Polars and
//! pyarrow (`tests/readers/check_export.py`, pinned in
//! `tests/readers/requirements.txt`) and compared value for value with
//! `atm query`; exports again rewriting only what changed; bad input.
//!
//! The interpreter is `$ATM_TEST_READERS_PYTHON` when set, else the
//! virtualenv that `.ci/run` creates at `<workspace>/target/readers-venv`.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;

use common::{atm, error_line, sim_with, ATM};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readers/check_export.py");

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ATM_TEST_READERS_PYTHON").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let venv = Path::new(WORKSPACE).join("target/readers-venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with DuckDB and Polars: {} is missing. Run `bash .ci/run` (it creates target/readers-venv from \
         atm-cli/tests/readers/requirements.txt), or set ATM_TEST_READERS_PYTHON",
        venv.display()
    );
    venv
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn export(store: &Path, out: &Path, args: &[&str]) -> Value {
    let o = out.to_str().unwrap();
    serde_json::from_str(&ok(atm(
        store,
        &[&["export", "--out", o, "--summary", "json"][..], args].concat(),
    )))
    .unwrap()
}

/// Every data file of the dataset with its (inode, mtime in ns).
fn files(out: &Path) -> BTreeMap<PathBuf, (u64, i64)> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let m = std::fs::metadata(&p).unwrap();
                found.insert(
                    p.strip_prefix(out).unwrap().to_path_buf(),
                    (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec()),
                );
            }
        }
    }
    found
}

#[test]
fn an_export_reads_back_in_duckdb_and_polars_and_is_rewritten_only_where_data_changed() {
    let sim = sim_with(&["--universe", "2", "--now", "2026-01-03"]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sync = |args: &[&str]| {
        ok(atm(
            &store,
            &[&["sync", "--exchange", &sim.base][..], args].concat(),
        ))
    };
    // Three markets, hourly and monthly klines across a new year, and a 1m
    // series long enough for several row groups in its 2025 file.
    sync(&[
        "--symbols",
        "all",
        "--intervals",
        "1h,1M",
        "--since",
        "2025-10-01",
        "--until",
        "2025-12-15",
    ]);
    sync(&[
        "--markets",
        "um",
        "--symbols",
        "BTCUSDT",
        "--intervals",
        "1m",
        "--since",
        "2025-09-20",
        "--until",
        "2025-12-31",
    ]);
    let out = dir.path().join("dataset");
    let r = export(&store, &out, &[]);
    assert!(
        r["written"].as_u64().unwrap() >= 10 && r["unchanged"] == 0,
        "{r}"
    );
    assert!(
        out.join("market=um/interval=1mo/symbol=BTCUSDT/year=2025/klines.parquet")
            .exists(),
        "1M is `1mo` in partition names"
    );
    let before = files(&out);
    assert_eq!(before.len() as u64, r["written"].as_u64().unwrap());

    // Real readers: every value equals what `atm query` prints; a time
    // filter prunes row groups.
    let check = Command::new(python())
        .args([SCRIPT, ATM, store.to_str().unwrap(), out.to_str().unwrap()])
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(&ok(check)).unwrap();
    assert!(
        report["rows"].as_u64().unwrap() > 140_000 && report["series"].as_u64().unwrap() >= 10,
        "{report}"
    );
    assert!(
        report["row_groups_after_filter"].as_u64() < report["row_groups"].as_u64(),
        "{report}"
    );

    // Again, unchanged: no file touched.
    let r = export(&store, &out, &[]);
    assert_eq!(
        (r["written"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(before.len() as u64)),
        "{r}"
    );
    assert_eq!(files(&out), before, "same inodes and mtimes");

    // One series gets its last weeks of 2025: only its 2025 file is rewritten.
    sync(&[
        "--markets",
        "spot",
        "--symbols",
        "BTCUSDT",
        "--intervals",
        "1h",
        "--since",
        "2025-12-16",
        "--until",
        "2025-12-31",
    ]);
    let r = export(&store, &out, &[]);
    assert_eq!(
        (r["written"].as_u64(), r["unchanged"].as_u64()),
        (Some(1), Some(before.len() as u64 - 1)),
        "{r}"
    );
    let after = files(&out);
    let changed: Vec<&PathBuf> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        changed,
        [&PathBuf::from(
            "market=spot/interval=1h/symbol=BTCUSDT/year=2025/klines.parquet"
        )]
    );

    // A narrower selection keeps the rest; `--prune` removes what is outside it.
    let r = export(&store, &out, &["--markets", "um"]);
    assert_eq!(
        (r["written"].as_u64(), r["removed"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(files(&out).len(), after.len());
    let r = export(&store, &out, &["--markets", "um", "--prune"]);
    let left = files(&out);
    assert!(
        r["removed"].as_u64().unwrap() > 0 && left.keys().all(|p| p.starts_with("market=um")),
        "{r} {left:?}"
    );
    assert!(
        !out.join("market=spot").exists(),
        "empty partition directories go too"
    );
    assert!(
        left.iter().all(|(p, v)| after.get(p) == Some(v)),
        "the kept files are untouched"
    );
}

#[test]
fn export_refuses_bad_output_an_empty_selection_and_leaves_no_partial_file_when_the_disk_fills() {
    let sim = sim_with(&["--universe", "2", "--now", "2026-01-03"]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(atm(
        &store,
        &[
            "sync",
            "--exchange",
            &sim.base,
            "--markets",
            "um",
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1m",
            "--since",
            "2025-12-01",
        ],
    ));

    // An output path that cannot be a directory.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("dataset");
    let line = error_line(&atm(&store, &["export", "--out", bad.to_str().unwrap()]));
    assert!(
        line.contains("export directory") && line.contains(bad.to_str().unwrap()),
        "{line}"
    );

    // Nothing selected.
    let out = dir.path().join("dataset");
    let line = error_line(&atm(
        &store,
        &[
            "export",
            "--out",
            out.to_str().unwrap(),
            "--symbols",
            "NOPEUSDT",
        ],
    ));
    assert!(line.contains("nothing to export"), "{line}");

    // The disk fills up (here: a file-size limit, 64 KiB) during an export.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 128; exec {ATM} --store {} export --out {}",
            store.display(),
            out.display()
        ))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: write") && err.contains("too large"),
        "{err}"
    );
    let part = out.join("market=um/interval=1m/symbol=BTCUSDT/year=2025");
    let names: Vec<String> = std::fs::read_dir(&part)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.is_empty(),
        "no file left under a final name, no temporary file: {names:?}"
    );
    // With room again, the same export completes.
    let r = export(&store, &out, &[]);
    assert_eq!(r["written"], 2, "2025 and 2026: {r}");

    // CSV and Arrow IPC files: the same rows, in the same partitions. The
    // CSV files are exactly what `atm query --format csv` prints.
    let csv = dir.path().join("csv");
    export(&store, &csv, &["--format", "csv"]);
    let query = ok(atm(
        &store,
        &[
            "query",
            "--market",
            "um",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--format",
            "csv",
        ],
    ));
    let mut lines: Vec<String> = Vec::new();
    for year in [2025, 2026] {
        let text = std::fs::read_to_string(csv.join(format!(
            "market=um/interval=1m/symbol=BTCUSDT/year={year}/klines.csv"
        )))
        .unwrap();
        let mut it = text.lines();
        assert_eq!(it.next(), query.lines().next(), "the header");
        lines.extend(it.map(str::to_string));
    }
    assert_eq!(lines, query.lines().skip(1).collect::<Vec<_>>());
    let arrow = dir.path().join("arrow");
    export(&store, &arrow, &["--format", "arrow"]);
    let bytes =
        std::fs::read(arrow.join("market=um/interval=1m/symbol=BTCUSDT/year=2026/klines.arrow"))
            .unwrap();
    assert!(
        bytes.starts_with(b"ARROW1") && bytes.ends_with(b"ARROW1"),
        "an Arrow IPC file"
    );
}
