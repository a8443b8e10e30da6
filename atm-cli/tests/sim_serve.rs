//! `atm sim serve` as a user runs it: the first stdout line, the served
//! API, and a clean exit on SIGTERM or SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

fn start(args: &[&str]) -> (std::process::Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atm"))
        .args(["sim", "serve"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("first line {line:?}: {e}"));
    (child, v)
}

fn signal(child: &std::process::Child, sig: &str) {
    assert!(Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn first_line_then_serves_until_sigterm() {
    let (mut child, v) = start(&[
        "--universe",
        "5",
        "--seed",
        "7",
        "--now",
        "2025-11-24T16:00:00Z",
        "--time-scale",
        "60",
    ]);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["base", "seed", "now", "time_scale"]);
    let base = v["base"].as_str().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert_eq!(v["seed"], 7);
    assert_eq!(v["time_scale"], 60.0);
    assert!((1_764_000_000_000..1_764_000_000_000 + 120_000).contains(&v["now"].as_i64().unwrap()));
    let clock: Value = reqwest::blocking::get(format!("{base}/sim/v1/clock"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(clock["time_scale"], 60.0);
    let rows: Value = reqwest::blocking::get(format!(
        "{base}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=3"
    ))
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(3));
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let (mut child, _) = start(&["--universe", "2"]);
    signal(&child, "INT");
    assert!(child.wait().unwrap().success());
}

#[test]
fn bad_options_are_one_line_errors() {
    for (args, want) in [
        (vec!["--faults", "http5xx=2"], "http5xx"),
        (vec!["--faults", "nope=0.1"], "unknown fault"),
        (vec!["--universe", "lots"], "--universe"),
        (vec!["--now", "yesterday"], "yesterday"),
        (vec!["--time-scale", "0"], "time-scale"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_atm"))
            .args(["sim", "serve"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}
