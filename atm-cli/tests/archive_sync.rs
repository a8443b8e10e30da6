//! Archive-first `atm sync` against `atm sim serve`'s data.binance.vision:
//! monthly and daily zips verified against their `.CHECKSUM` before any row
//! is committed, REST for the rest, with archive faults on; a second sync
//! downloads nothing; a sync killed among the archives resumes without
//! downloading the committed ones again.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{atm, get, sim_with, ATM};

fn sync_json(store: &std::path::Path, base: &str, args: &[&str]) -> Value {
    let out = atm(
        store,
        &[&["sync", "--exchange", base, "--format", "json"][..], args].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `atm verify --exchange`: every stored kline is the exchange's, none missing.
fn verify_whole(store: &std::path::Path, base: &str) {
    let out = atm(store, &["verify", "--exchange", base]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("0 differ, 0 missing, 0 extra"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn archives_first_with_faults_equal_the_exchange_and_a_second_sync_downloads_nothing() {
    // 2 Jan 2026: December's monthly zips are not published yet (first
    // Monday of January), so its days come from REST; corrupted zips, 5xx
    // and resets on the archive host.
    let sim = sim_with(&[
        "--universe",
        "2",
        "--now",
        "2026-01-02T12:00:00Z",
        "--faults",
        "archive_corrupt=0.2,http5xx=0.05,reset=0.03",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--symbols",
        "all",
        "--intervals",
        "5m,1h,1M",
        "--since",
        "2025-09-01",
    ];
    let plan = atm(
        dir.path(),
        &[&["sync", "--exchange", &sim.base, "--dry-run"][..], &args].concat(),
    );
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("from archives") && text.contains("spot:") && text.contains("archive files"),
        "{text}"
    );

    let s = sync_json(dir.path(), &sim.base, &args);
    let a = &s["archive"];
    assert!(
        a["files"].as_u64().unwrap() >= 15 && a["klines"].as_u64().unwrap() > 50_000,
        "{s}"
    );
    assert!(
        a["missing"].as_u64().unwrap() >= 10,
        "December's monthly files were not published: {s}"
    );
    // `atm status` counted the archives as the summary did.
    let status: serde_json::Value =
        serde_json::from_slice(&atm(dir.path(), &["status", "--format", "json"]).stdout).unwrap();
    let t = &status["processes"][0]["totals"];
    for (key, want) in [
        ("archive_files_planned", &a["planned"]),
        ("archive_files_done", &a["files"]),
        ("archive_files_missing", &a["missing"]),
        ("archive_klines", &a["klines"]),
        ("archive_bytes", &a["bytes"]),
    ] {
        assert_eq!(&t[key], want, "{key}: {status}");
    }
    let failed = a["mismatches"].as_array().unwrap().len() + a["failed"].as_array().unwrap().len();
    assert_eq!(
        t["archive_files_failed"].as_u64(),
        Some(failed as u64),
        "{status}"
    );
    let text = String::from_utf8_lossy(&atm(dir.path(), &["status"]).stdout).to_string();
    assert!(
        text.contains(&format!(
            "archives: {}/{} files · {} klines",
            a["files"], a["planned"], a["klines"]
        )),
        "{text}"
    );
    let stats = get(&format!("{}/sim/v1/stats", sim.base));
    assert!(
        stats["faults"]["archive_corrupt"].as_u64().unwrap() > 0,
        "{stats}"
    );
    // Corrupted zips were never stored: every kline is the exchange's.
    verify_whole(dir.path(), &sim.base);

    // Again: nothing to download, and REST only for the klines that closed
    // meanwhile (at most a page per series).
    let zips = stats["archive"]["zips"].as_u64().unwrap();
    let s = sync_json(dir.path(), &sim.base, &args);
    assert_eq!(s["archive"]["planned"], 0, "{s}");
    assert!(s["pages"].as_u64() <= s["series"].as_u64(), "{s}");
    assert_eq!(
        get(&format!("{}/sim/v1/stats", sim.base))["archive"]["zips"].as_u64(),
        Some(zips)
    );

    // The store recorded every archive it imported; `verify --archives`
    // finds them unchanged, then reports one Binance "replaced" (here: its
    // recorded SHA-256 no longer the .CHECKSUM's).
    let out = atm(
        dir.path(),
        &["verify", "--exchange", &sim.base, "--archives"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains(&format!(
                "checked {} archives: 0 replaced, 0 gone",
                a["files"]
            )),
        "{text}"
    );
    let log = dir.path().join(atm_ingest::archive::ARCHIVE_LOG);
    let mut records = atm_ingest::archive::read_records(dir.path()).unwrap();
    assert_eq!(records.len() as u64, a["files"].as_u64().unwrap());
    records[3].sha256 = "0".repeat(64);
    let lines: Vec<String> = std::iter::once(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string(),
    )
    .chain(records.iter().map(|r| r.line()))
    .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = atm(
        dir.path(),
        &["verify", "--exchange", &sim.base, "--archives"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success()
            && text.contains(&format!(
                "{} was replaced since it was imported",
                records[3].path
            )),
        "{text}"
    );
    assert!(text.contains("1 replaced, 0 gone"), "{text}");

    // `--source rest` ignores the archives; `--source archive` uses nothing else.
    let dir2 = tempfile::tempdir().unwrap();
    let s = sync_json(
        dir2.path(),
        &sim.base,
        &[
            "--symbols",
            "BTCUSDT",
            "--markets",
            "um",
            "--intervals",
            "1h",
            "--since",
            "2025-11-01",
            "--source",
            "archive",
        ],
    );
    assert!(
        s["archive"]["files"].as_u64().unwrap() >= 1 && s["pages"] == 0,
        "{s}"
    );
    let s = sync_json(
        dir2.path(),
        &sim.base,
        &[
            "--symbols",
            "BTCUSDT",
            "--markets",
            "um",
            "--intervals",
            "1h",
            "--since",
            "2025-11-01",
            "--source",
            "rest",
        ],
    );
    assert!(
        s["archive"]["planned"] == 0 && s["pages"].as_u64().unwrap() >= 1,
        "December by REST: {s}"
    );
}

#[test]
fn a_sync_killed_among_the_archives_resumes_without_downloading_committed_ones() {
    let sim = sim_with(&["--universe", "2", "--now", "2026-01-10"]);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--markets",
        "spot,um",
        "--symbols",
        "all",
        "--intervals",
        "1m",
        "--since",
        "2025-01-01",
        "--archive-workers",
        "2",
    ];
    let plan = atm(
        dir.path(),
        &[
            &[
                "sync",
                "--exchange",
                &sim.base,
                "--dry-run",
                "--format",
                "json",
            ][..],
            &args,
        ]
        .concat(),
    );
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let files: u64 = plan["planned_from_archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["archive_files"].as_u64().unwrap())
        .sum();
    assert!(files >= 40, "{plan}");

    let mut child = Command::new(ATM)
        .arg("--store")
        .arg(dir.path())
        .args([&["sync", "--exchange", &sim.base][..], &args].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once a good part of the zips went out.
    let t = Instant::now();
    while get(&format!("{}/sim/v1/stats", sim.base))["archive"]["zips"]
        .as_u64()
        .unwrap()
        < files / 3
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the sync downloads no zip"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let zips_before = get(&format!("{}/sim/v1/stats", sim.base))["archive"]["zips"]
        .as_u64()
        .unwrap();

    let s = sync_json(dir.path(), &sim.base, &args);
    let (planned, missing) = (
        s["archive"]["planned"].as_u64().unwrap(),
        s["archive"]["missing"].as_u64().unwrap(),
    );
    assert!(
        planned < files && planned + zips_before >= files,
        "only what was not committed is planned again: {planned} of {files}: {s}"
    );
    let zips_after = get(&format!("{}/sim/v1/stats", sim.base))["archive"]["zips"]
        .as_u64()
        .unwrap();
    assert_eq!(
        zips_after - zips_before,
        planned - missing,
        "each file not committed is downloaded once (unpublished ones are not there), the committed ones never"
    );
    // A sample of pages across the series (the whole store is 2M klines).
    let out = atm(
        dir.path(),
        &["verify", "--exchange", &sim.base, "--sample", "200"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("0 differ, 0 missing, 0 extra"),
        "{text}"
    );
}
