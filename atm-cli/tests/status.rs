//! `atm status` and `atm log` from separate processes while `atm sync`
//! runs against `atm sim serve`: stages and counters that grow and finally
//! match the sync's summary; a SIGKILLed sync reported dead; the log record
//! holding the console's lines.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{atm, sim, ATM};

fn status(store: &std::path::Path) -> Value {
    let out = atm(store, &["status", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_numbers(v: &Value, what: &str) {
    for (k, x) in v.as_object().unwrap_or_else(|| panic!("{what}: {v}")) {
        if k != "last_error" && k != "state" && k != "phase" {
            assert!(x.is_number(), "{what}.{k} is not a number: {x}");
        }
    }
}

#[test]
fn status_follows_a_sync_to_its_summary_and_reports_a_killed_one_dead() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing has run: it says so.
    let none = status(dir.path());
    assert_eq!(none["processes"], Value::Array(vec![]));
    let text = String::from_utf8(atm(dir.path(), &["status"]).stdout).unwrap();
    assert!(text.contains("no atm process is running"), "{text}");

    let sim = sim(&[]);
    let args = [
        "sync",
        "--exchange",
        &sim.base,
        "--markets",
        "spot,um",
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--intervals",
        "1m",
        "--since",
        "2026-07-01",
        "--workers",
        "2",
        // The REST pipeline's stages are what is watched here.
        "--source",
        "rest",
        "--format",
        "json",
    ];
    let child = Command::new(ATM)
        .arg("--store")
        .arg(dir.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Sample from another process while it runs.
    let mut seen: Vec<u64> = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let s = status(dir.path());
        if let Some(p) = s["processes"].as_array().and_then(|a| a.first()) {
            if p["state"] == "running" && p["process"]["phase"] == "fetching" {
                assert_eq!(p["command"], "sync");
                assert_eq!(p["alive"], true);
                for stage in ["fetch", "parse", "write"] {
                    assert_numbers(&p["stages"][stage], stage);
                }
                assert_numbers(&p["totals"], "totals");
                seen.push(p["totals"]["klines_written"].as_u64().unwrap());
            } else if p["state"] != "running" {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(seen.len() >= 3, "status sampled the running sync: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]) && seen.last() > seen.first(),
        "klines_written grows: {seen:?}"
    );
    // Finished: listed, not alive, its totals those of the summary.
    let s = status(dir.path());
    let p = &s["processes"][0];
    assert_eq!(
        (p["state"].as_str(), p["alive"].as_bool()),
        (Some("finished"), Some(false)),
        "{p}"
    );
    assert_eq!(
        p["totals"]["klines_written"], summary["klines_written"],
        "{p}"
    );
    assert_eq!(p["totals"]["requests"], summary["requests"]);
    assert_eq!(p["stages"]["write"]["items_out"], summary["klines_written"]);
    assert!(
        p["stages"]["fetch"]["items_out"].as_u64().unwrap()
            >= p["totals"]["pages_done"].as_u64().unwrap()
    );

    // The log record holds the console's lines.
    let console = String::from_utf8_lossy(&out.stderr).to_string();
    let record = String::from_utf8(atm(dir.path(), &["log"]).stdout).unwrap();
    let logged: Vec<&str> = console.lines().filter(|l| l.starts_with('[')).collect();
    assert!(!logged.is_empty(), "{console}");
    for l in &logged {
        assert!(record.contains(l), "{l:?} not in the record:\n{record}");
    }
    let last = String::from_utf8(atm(dir.path(), &["log", "-n", "1"]).stdout).unwrap();
    assert_eq!(last.lines().count(), 1);

    // `atm log --follow` prints lines as another command logs them.
    let mut follow = Command::new(ATM)
        .arg("--store")
        .arg(dir.path())
        .args(["log", "--follow", "-n", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    std::thread::sleep(Duration::from_millis(300));
    assert!(atm(
        dir.path(),
        &["markets", "--exchange", &sim.base, "--markets", "cm"]
    )
    .status
    .success());
    let line = lines.next().unwrap().unwrap();
    assert!(line.contains("cm: 6 symbols"), "{line}");
    let _ = follow.kill();
    let _ = follow.wait();

    // A sync killed with SIGKILL reads as dead.
    let mut killed = Command::new(ATM)
        .arg("--store")
        .arg(dir.path())
        .args([
            "sync",
            "--exchange",
            &sim.base,
            "--markets",
            "um",
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "3m",
            "--since",
            "2024-01-01",
            "--workers",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = killed.id();
    let t = Instant::now();
    loop {
        let s = status(dir.path());
        if s["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == pid && p["state"] == "running")
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the second sync never showed: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let s = status(dir.path());
    let p = s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap();
    assert_eq!(
        (p["state"].as_str(), p["alive"].as_bool()),
        (Some("dead"), Some(false)),
        "{p}"
    );
    let text = String::from_utf8(atm(dir.path(), &["status"]).stdout).unwrap();
    assert!(text.contains("DEAD") && text.contains("finished"), "{text}");
}

/// From its first moment, a process shows every documented key of its
/// command (zeros until there is something to count) and a phase: the very
/// first status read that sees an `atm sync` is already complete.
#[test]
fn a_sync_shows_its_phase_totals_and_stages_from_its_first_moment() {
    let sim = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(ATM)
        .arg("--store")
        .arg(dir.path())
        .args([
            "sync",
            "--exchange",
            &sim.base,
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1h",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let v = status(dir.path());
        if let Some(p) = v["processes"].as_array().and_then(|a| a.first()) {
            break p.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the sync never showed up in atm status"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.wait();
    let phase = first["process"]["phase"].as_str().unwrap_or_default();
    assert!(
        [
            "starting",
            "importing markets",
            "finding first klines",
            "planning",
            "archives",
            "fetching",
            "done"
        ]
        .contains(&phase),
        "a phase from the first moment: {first}"
    );
    for key in [
        "klines_written",
        "requests",
        "weight",
        "errors",
        "retries",
        "http429",
        "pages_done",
        "pages_total",
        "known_missing_slots",
        "held_series",
        "archive_files_planned",
        "archive_klines",
    ] {
        assert!(
            first["totals"][key].is_u64(),
            "totals.{key} from the first moment: {first}"
        );
    }
    for stage in ["fetch", "parse", "write"] {
        let s = &first["stages"][stage];
        assert_numbers(s, stage);
        for key in ["items_in", "items_out", "errors", "queue", "latency_us_p99"] {
            assert!(
                s[key].is_number(),
                "stages.{stage}.{key} from the first moment: {first}"
            );
        }
    }
}
