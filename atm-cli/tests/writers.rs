//! One writer per series, across processes: what each writing command does
//! when another process holds a series it needs (README, "Writers").
//!
//! - `import`, `compact` and `verify --repair` lock their whole plan first
//!   and fail at once, naming every held series and its holder's pid;
//! - `sync` skips a held series with a warning, counts it (`held_series`)
//!   and exits 3;
//! - `stream` holds its series while it runs, and refuses to start on a
//!   series another process holds.
//!
//! The holder is this test process itself (a `Writer` that locked the
//! series), or a running `atm stream`: both are other processes to `atm`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atm_store::{Interval, Market, SeriesKey, Store, StoreOptions};
use common::{atm, sim, ATM};
use serde_json::Value;

const ADABTC_1M: &str = "../testdata/binance/spot/daily/klines/ADABTC/1m/ADABTC-1m-2021-11-27.csv";

fn key(symbol: &str, interval: Interval) -> SeriesKey {
    SeriesKey::parse(Market::Spot, symbol, interval).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Imports the ADABTC sample so the store has a series to contend for.
fn store_with_adabtc() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = atm(dir.path(), &["import", "--market", "spot", ADABTC_1M]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// Locks `keys` in this process, as another writer would.
fn hold(store: &Path, keys: &[SeriesKey]) -> atm_store::Writer {
    let store = Store::open(
        store,
        StoreOptions {
            create: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let mut w = store.writer().unwrap();
    w.lock_all(keys).unwrap();
    w
}

fn info(store: &Path) -> String {
    let out = atm(store, &["info", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn import_and_compact_fail_at_once_naming_the_held_series_and_pid() {
    let dir = store_with_adabtc();
    let before = info(dir.path());
    let me = std::process::id();
    let holder = hold(dir.path(), &[key("ADABTC", Interval::M1)]);

    let out = atm(dir.path(), &["import", "--market", "spot", ADABTC_1M]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("spot/ADABTC/1m") && err.contains(&format!("pid {me}")),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");

    let out = atm(dir.path(), &["compact", "--symbol", "ADABTC"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("spot/ADABTC/1m (pid {me})")),
        "{}",
        stderr(&out)
    );

    assert_eq!(
        info(dir.path()),
        before,
        "the refused commands changed nothing"
    );

    // Released: the same import goes through.
    drop(holder);
    let out = atm(dir.path(), &["import", "--market", "spot", ADABTC_1M]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_import_with_many_files_is_refused_before_its_first_file() {
    // Two series planned; the second is held: the first must not be written either.
    let dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(ADABTC_1M).unwrap();
    let a = src.path().join("ADABTC-1m-2021-11-27.csv");
    let b = src.path().join("XRPBTC-1m-2021-11-27.csv");
    std::fs::write(&a, &csv).unwrap();
    std::fs::write(&b, &csv).unwrap();
    // Create both series, then hold the second.
    let out = atm(
        dir.path(),
        &["import", "--market", "spot", b.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let _holder = hold(dir.path(), &[key("XRPBTC", Interval::M1)]);
    let out = atm(
        dir.path(),
        &[
            "import",
            "--market",
            "spot",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("spot/XRPBTC/1m"), "{}", stderr(&out));
    // Not even an empty file: a refused command leaves no trace.
    assert!(
        !info(dir.path()).contains("ADABTC"),
        "the free series was not written: {}",
        info(dir.path())
    );
}

#[test]
fn sync_skips_held_series_counts_them_and_exits_3_and_stream_holds_its_series() {
    let sim = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sync = |dir: &Path| {
        atm(
            dir,
            &[
                "sync",
                "--exchange",
                &sim.base,
                "--markets",
                "spot",
                "--symbols",
                "BTCUSDT,ETHUSDT",
                "--intervals",
                "1d",
                "--format",
                "json",
            ],
        )
    };
    let me = std::process::id();
    {
        // BTCUSDT is held from before the first sync: everything of it is to do.
        let _holder = hold(dir.path(), &[key("BTCUSDT", Interval::D1)]);
        let out = sync(dir.path());
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(
            err.matches("spot/BTCUSDT/1d: another writer holds it")
                .count(),
            1,
            "one warning: {err}"
        );
        assert!(
            err.contains(&format!(
                "spot/BTCUSDT/1d: another writer holds it (pid {me})"
            )),
            "{err}"
        );
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("incomplete: done except 1 series another writer held"),
            "{err}"
        );
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["held_series"], 1, "{summary}");
        assert!(
            summary["klines_written"].as_u64().unwrap() > 0,
            "ETHUSDT was synced: {summary}"
        );
    }
    // Released: the next run does the rest and exits 0.
    let out = sync(dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["held_series"], 0, "{summary}");
    assert!(
        summary["klines_written"].as_u64().unwrap() > 0,
        "BTCUSDT was synced now: {summary}"
    );

    // `atm stream` on BTCUSDT and ETHUSDT: held while it runs.
    let mut stream = Command::new(ATM)
        .arg("--store")
        .arg(dir.path())
        .args([
            "stream",
            "--exchange",
            &sim.base,
            "--markets",
            "spot",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--intervals",
            "1m",
            "--duration",
            "60s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = stream.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = atm(dir.path(), &["status", "--format", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let streaming = v["processes"].as_array().into_iter().flatten().any(|p| {
            p["pid"] == pid && p["command"] == "stream" && p["process"]["phase"] == "streaming"
        });
        if streaming {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stream never reached its streaming phase: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = atm(
        dir.path(),
        &[
            "sync",
            "--exchange",
            &sim.base,
            "--markets",
            "spot",
            "--symbols",
            "ETHUSDT",
            "--intervals",
            "1m",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "spot/ETHUSDT/1m: another writer holds it (pid {pid})"
        )),
        "{}",
        stderr(&out)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["held_series"], 1, "{summary}");
    let _ = stream.kill();
    let _ = stream.wait();
}

#[test]
fn repair_and_stream_refuse_to_start_on_a_series_another_process_holds() {
    let sim = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = atm(
        dir.path(),
        &[
            "sync",
            "--exchange",
            &sim.base,
            "--markets",
            "spot",
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1h",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let _holder = hold(dir.path(), &[key("BTCUSDT", Interval::H1)]);
    let me = std::process::id();
    let out = atm(
        dir.path(),
        &[
            "verify",
            "--exchange",
            &sim.base,
            "--markets",
            "spot",
            "--repair",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("spot/BTCUSDT/1h (pid {me})")),
        "{}",
        stderr(&out)
    );
    let out = atm(
        dir.path(),
        &[
            "stream",
            "--exchange",
            &sim.base,
            "--markets",
            "spot",
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1h",
            "--duration",
            "5s",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("spot/BTCUSDT/1h (pid {})", std::process::id())),
        "{}",
        stderr(&out)
    );
}
