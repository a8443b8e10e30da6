//! `atm stream` end to end against `atm sim serve` on a fast clock with
//! faults on: afterwards every stored kline is the exchange's, with no gap
//! (verified with `atm verify --exchange`), also across a SIGKILL and a
//! restart.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{atm, get, sim, ATM};

/// The store holds every closed kline from its first to now: the exchange
/// agrees with every stored one, nothing in between is unknown, and each
/// series reaches the last closed kline (at most a minute of exchange time
/// old when the stream stopped).
fn assert_live_and_whole(store: &std::path::Path, base: &str, series: usize) {
    let out = atm(store, &["verify", "--exchange", base]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("0 differ, 0 missing, 0 extra"), "{text}");
    let info: Value = serde_json::from_slice(&atm(store, &["info", "--format", "json"]).stdout).unwrap();
    let now = get(&format!("{base}/sim/v1/clock"))["now"].as_i64().unwrap();
    let all = info.as_array().unwrap();
    assert_eq!(all.len(), series, "{info}");
    for s in all {
        assert_eq!(s["unknown"], 0, "no gap: {s}");
        let last = s["last_open_time"].as_i64().unwrap();
        assert!(now - last < 60 * 60_000, "the stream kept {s} live (exchange now {now})");
    }
}

#[test]
fn a_faulty_simulated_hour_streams_into_a_whole_store_and_a_killed_stream_resumes() {
    // 120x: an exchange hour in 30 s; connections cut every 20 exchange minutes.
    let sim = sim(&["--time-scale", "120", "--faults", "ws_drop=0.05,ws_close_drop=0.2,ws_disconnect=20m,http5xx=0.05,reset=0.02"]);
    let dir = tempfile::tempdir().unwrap();
    // The history first, then the stream keeps it live (every market, 18 symbols).
    let out = atm(dir.path(), &["sync", "--exchange", &sim.base, "--symbols", "all", "--intervals", "1m,5m", "--since", "2026-11-20"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&atm(dir.path(), &["info", "--format", "json"]).stdout).unwrap();
    let series = info.as_array().unwrap().len();
    assert!(series >= 20, "{info}");
    let out = atm(
        dir.path(),
        &["stream", "--exchange", &sim.base, "--symbols", "all", "--intervals", "1m,5m", "--duration", "20s", "--format", "json"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["closes"].as_u64().unwrap() > 100 && s["repairs"].as_u64().unwrap() > 0 && s["reconnects"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["bad_messages"], 0, "{s}");
    assert_live_and_whole(dir.path(), &sim.base, series);

    // Killed mid-stream, then restarted later: the restart backfills the hole.
    let mut child = Command::new(ATM)
        .arg("--store")
        .arg(dir.path())
        .args(["stream", "--exchange", &sim.base, "--symbols", "all", "--intervals", "1m,5m"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // Meanwhile, other processes see it: its status, and the live kline in
    // shared memory, newer than the newest stored one.
    let status: Value = serde_json::from_slice(&atm(dir.path(), &["status", "--format", "json"]).stdout).unwrap();
    let p = status["processes"].as_array().unwrap().iter().find(|p| p["pid"] == child.id()).unwrap_or_else(|| panic!("{status}")).clone();
    assert_eq!((p["command"].as_str(), p["state"].as_str()), (Some("stream"), Some("running")), "{p}");
    assert!(p["totals"]["connections"].as_u64().unwrap() >= 3 && p["totals"]["events"].as_u64().unwrap() > 0, "{p}");
    let out = atm(
        dir.path(),
        &["query", "--market", "spot", "--symbol", "BTCUSDT", "--interval", "1m", "--tail", "1", "--live", "--format", "json"],
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "the newest stored kline and the live one: {rows:?}");
    assert!(rows[1]["open_time"].as_i64() > rows[0]["open_time"].as_i64(), "{rows:?}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(3)); // six exchange minutes pass unwatched
                                                // This time connections are also replaced make-before-break every 2 s.
    let out = atm(
        dir.path(),
        &[
            "stream",
            "--exchange",
            &sim.base,
            "--symbols",
            "all",
            "--intervals",
            "1m,5m",
            "--duration",
            "5s",
            "--rotate-after",
            "2s",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["rotations"].as_u64().unwrap() >= 3, "{s}");
    // Half the series are 1m: at least four of their minutes passed unwatched.
    assert!(s["backfilled"].as_u64().unwrap() >= series as u64 / 2 * 4, "the hole was backfilled: {s}");
    assert_live_and_whole(dir.path(), &sim.base, series);
}
