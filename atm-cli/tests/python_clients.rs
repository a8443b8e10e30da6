//! Popular, unmodified Python Binance clients (python-binance, ccxt and
//! ccxt.pro, binance-connector, websocket-client) against `atm sim serve`,
//! only their base URLs changed. The checks live in
//! `tests/clients/check_clients.py`, the pinned client versions in
//! `tests/clients/requirements.txt`.
//!
//! The interpreter is `$ATM_TEST_PYTHON` when set, else the virtualenv that
//! `.ci/run` creates at `<workspace>/target/py-venv`.
#![cfg(unix)]

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/check_clients.py"
);
/// The script stops itself after 100 s; this is the backstop.
const TIMEOUT: Duration = Duration::from_secs(115);

fn python() -> OsString {
    if let Some(p) = std::env::var_os("ATM_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return p;
    }
    let venv = Path::new(WORKSPACE).join("target/py-venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the Binance clients: {} is missing. Run `bash .ci/run` (it creates target/py-venv from \
         atm-cli/tests/clients/requirements.txt), or set ATM_TEST_PYTHON to a python that has those packages installed",
        venv.display()
    );
    venv.into_os_string()
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

#[test]
fn python_binance_clients_work_against_the_simulator() {
    let python = python();
    let mut child = Command::new(&python)
        .arg(SCRIPT)
        .arg(env!("CARGO_BIN_EXE_atm"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout also ends the simulator it started.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}. Run `bash .ci/run` (it creates target/py-venv) or set ATM_TEST_PYTHON",
                Path::new(&python).display()
            )
        });
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for python") {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", group.as_str()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    match status {
        None => panic!("check_clients.py did not finish within {TIMEOUT:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"),
        Some(s) if !s.success() => panic!("check_clients.py failed ({s})\n--- stdout ---\n{out}\n--- stderr ---\n{err}"),
        Some(_) => {
            assert!(out.contains(" passed, 0 failed"), "check_clients.py printed no summary\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
            println!("{out}");
        }
    }
}
