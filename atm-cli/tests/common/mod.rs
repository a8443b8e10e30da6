//! Helpers shared by the tests that run `atm` against `atm sim serve`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const ATM: &str = env!("CARGO_BIN_EXE_atm");

/// A running `atm sim serve`, killed when dropped.
pub struct Sim {
    pub child: Child,
    pub base: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `atm sim serve --universe 6 --seed 3 ARGS` on a free port.
pub fn sim(args: &[&str]) -> Sim {
    sim_with(&[&["--universe", "6"][..], args].concat())
}

/// Starts `atm sim serve --seed 3 ARGS` on a free port.
pub fn sim_with(args: &[&str]) -> Sim {
    let mut child = Command::new(ATM)
        .args(["sim", "serve", "--seed", "3"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("sim's first line {line:?}: {e}"));
    Sim {
        base: v["base"].as_str().unwrap().to_string(),
        child,
    }
}

/// Runs `atm --store STORE ARGS` to completion.
pub fn atm(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(ATM)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

/// GETs a JSON document.
pub fn get(url: &str) -> Value {
    reqwest::blocking::get(url).unwrap().json().unwrap()
}

/// Replaces a running simulator's faults.
pub fn set_faults(sim: &Sim, spec: &str) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/sim/v1/faults?spec={spec}", sim.base))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
}

/// The last line of stderr, which must be `error: ...`.
pub fn error_line(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{err}");
    last
}
