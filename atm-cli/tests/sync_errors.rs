//! `atm sync` when the exchange misbehaves: bans, region blocks, broken
//! bodies, symbols removed mid-sync, proxies. Each must end with a clear
//! error (or a clear warning) and a store holding nothing wrong.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{atm, error_line, get, set_faults, sim, ATM};

/// The store's klines are all the exchange's: `atm verify --exchange` finds nothing.
fn assert_nothing_stored_wrongly(store: &std::path::Path, base: &str) {
    let out = atm(store, &["verify", "--exchange", base]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn region_block_451_says_so() {
    let sim = sim(&["--faults", "http451=1"]);
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
        ],
    );
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(
        line.contains("451") && line.contains("restricted"),
        "{line}"
    );
    // `atm status` shows the run ended on its own, and why.
    let status: Value =
        serde_json::from_slice(&atm(dir.path(), &["status", "--format", "json"]).stdout).unwrap();
    let p = &status["processes"][0];
    assert_eq!(p["state"], "finished", "{p}");
    assert!(
        p["process"]["phase"]
            .as_str()
            .unwrap()
            .starts_with("failed: ")
            && p["process"]["phase"].as_str().unwrap().contains("451"),
        "{p}"
    );
}

#[test]
fn a_ban_mid_sync_stops_cleanly_and_keeps_what_was_committed() {
    let sim = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(ATM)
        .arg("--store")
        .arg(dir.path())
        .args([
            "sync",
            "--exchange",
            &sim.base,
            "--markets",
            "spot,um",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--intervals",
            "1m",
        ])
        .args([
            "--since",
            "2024-01-01",
            "--workers",
            "2",
            "--source",
            "rest",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it fetch some pages, then ban every request.
    let t = Instant::now();
    while get(&format!("{}/sim/v1/stats", sim.base))["rest"]["spot"]["requests"]
        .as_u64()
        .unwrap()
        < 30
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the sync never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    set_faults(&sim, "http418=1");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a ban is an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("banned by the exchange (HTTP 418)")
            && err.contains("run again after the ban"),
        "{err}"
    );
    set_faults(&sim, "");
    assert!(atm(dir.path(), &["verify"]).status.success());
    assert_nothing_stored_wrongly(dir.path(), &sim.base);
}

#[test]
fn bodies_that_stay_broken_are_a_clear_error() {
    let sim = sim(&["--faults", "malformed=1"]);
    let dir = tempfile::tempdir().unwrap();
    let out = atm(
        dir.path(),
        &["markets", "--exchange", &sim.base, "--markets", "um"],
    );
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(
        line.contains("um exchangeInfo: malformed response")
            && line.contains("gave up after 8 attempts"),
        "{line}"
    );
    // An HTML error page from a proxy is named as one.
    set_faults(&sim, "html=1");
    let line = error_line(&atm(
        dir.path(),
        &["markets", "--exchange", &sim.base, "--markets", "um"],
    ));
    assert!(
        line.contains("HTTP 502") && line.contains("an HTML page"),
        "{line}"
    );
}

#[test]
fn a_symbol_removed_from_the_exchange_mid_sync_is_skipped_with_a_warning() {
    // Two simulators of the same seed and clock: the second lists only the
    // first four symbols, so DOGEUSDT (the sixth) is gone from it.
    let now = "1764547200000"; // 2025-12-01
    let full = sim(&["--now", now]);
    let dir = tempfile::tempdir().unwrap();
    let sel = [
        "--markets",
        "spot",
        "--symbols",
        "BTCUSDT,DOGEUSDT",
        "--intervals",
        "1d",
    ];
    let out = atm(
        dir.path(),
        &[
            &["sync", "--exchange", &full.base, "--until", "2025-06-01"][..],
            &sel,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let smaller = common::sim_with(&["--universe", "4", "--now", now]);
    let out = atm(
        dir.path(),
        &[
            &["sync", "--exchange", &smaller.base, "--format", "json"][..],
            &sel,
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("spot/DOGEUSDT/1d")
            && err.contains("Invalid symbol")
            && err.contains("skipping"),
        "{err}"
    );
    let markets: Value = serde_json::from_slice(
        &atm(
            dir.path(),
            &[
                "markets",
                "--exchange",
                &smaller.base,
                "--markets",
                "spot",
                "--format",
                "json",
            ],
        )
        .stdout,
    )
    .unwrap();
    let doge = markets
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["symbol"] == "DOGEUSDT")
        .unwrap();
    assert_eq!(doge["status"], "GONE", "{doge}");
    // What was stored of it is still the exchange's (the first simulator's).
    assert_nothing_stored_wrongly(dir.path(), &full.base);
}

/// A proxy that records the first line of each request and answers 502.
fn fake_proxy() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&conn);
            if reader.read_line(&mut line).is_ok() {
                let _ = tx.send(line.trim().to_string());
                let _ = std::io::Write::write_all(
                    &mut &conn,
                    b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        }
    });
    (format!("http://{addr}"), rx)
}

fn atm_with_env(
    store: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Child {
    let mut cmd = Command::new(ATM);
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().unwrap()
}

#[test]
fn proxies_are_honoured_as_users_expect() {
    let sim = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (proxy, seen) = fake_proxy();
    let host = sim.base.trim_start_matches("http://").to_string();
    // HTTP_PROXY carries plain-HTTP requests...
    let mut child = atm_with_env(
        dir.path(),
        &[("HTTP_PROXY", &proxy)],
        &["markets", "--exchange", &sim.base, "--markets", "spot"],
    );
    let line = seen
        .recv_timeout(Duration::from_secs(30))
        .expect("the request went through the proxy");
    assert!(line.starts_with(&format!("GET http://{host}/")), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    // ...unless NO_PROXY names the host.
    let mut child = atm_with_env(
        dir.path(),
        &[("HTTP_PROXY", &proxy), ("NO_PROXY", "127.0.0.1,localhost")],
        &["markets", "--exchange", &sim.base, "--markets", "spot"],
    );
    assert!(
        child.wait().unwrap().success(),
        "NO_PROXY bypasses the proxy"
    );
    assert!(seen.try_recv().is_err(), "nothing went through the proxy");
    // HTTPS_PROXY tunnels the real hosts: the proxy is asked to CONNECT to Binance.
    let mut child = atm_with_env(
        dir.path(),
        &[("HTTPS_PROXY", &proxy)],
        &["markets", "--exchange", "binance", "--markets", "spot"],
    );
    let line = seen
        .recv_timeout(Duration::from_secs(30))
        .expect("the request went through the proxy");
    assert!(line.starts_with("CONNECT api.binance.com:443"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_unreachable_exchange_names_the_market_asked_for_and_the_cause() {
    // A port nothing listens on: every connection is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let out = atm(
        dir.path(),
        &[
            "sync",
            "--exchange",
            &base,
            "--markets",
            "spot",
            "--symbols",
            "BTCUSDT",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(
        line.starts_with("error: spot time: connection refused"),
        "names the market asked for and the cause: {line}"
    );
    assert!(line.contains("gave up after"), "{line}");
    assert!(
        !line.contains("um ") && !line.contains("fapi"),
        "a spot-only run asks no futures host: {line}"
    );
    // The retries showed on the way, at the default log level.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retry 2 of"), "{err}");
}
