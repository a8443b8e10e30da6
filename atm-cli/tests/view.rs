//! `atm view` end to end: the real binary inside tmux, driven with
//! `send-keys` and read with `capture-pane`, checking what a person sees.
//! `.ci/run` installs tmux when a machine lacks it.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{atm, sim, ATM};

/// A tmux server of our own (its socket in a temporary directory) running
/// one bash at a fixed size; killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(dir: &Path, width: u16, height: u16) -> Tmux {
        let t = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let out = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "atm",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .args([
                "env",
                "-i",
                &format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
                "TERM=tmux-256color",
                "PS1=$ ",
            ])
            .args(["bash", "--norc", "--noprofile"])
            .output()
            .expect("running tmux (install it: apt-get install tmux; .ci/run does)");
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "atm", "-l", text]);
    }

    /// Presses named keys (`Enter`, `Escape`, `BSpace`, `q`, ...), one at a time
    /// so that Escape followed by a letter is not read as Alt+letter.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", "atm", k]);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "atm"])
    }

    /// Waits up to 20 s for the screen to satisfy `ok`.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("waited 20 s for {what}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// The table rows on screen: (open time as shown, values by column name).
fn table_rows(screen: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut header: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in screen.lines() {
        for cell in line.split('│') {
            let c = cell.trim();
            if let Some(rest) = c.strip_prefix("open_time (UTC)") {
                // Names only: not the ◂ ▸ column hints nor the scrollbar.
                header = rest
                    .split_whitespace()
                    .filter(|w| w.chars().any(|c| c.is_ascii_alphanumeric()))
                    .map(str::to_string)
                    .collect();
            }
            let b = c.as_bytes();
            if b.len() > 16
                && b[4] == b'-'
                && b[7] == b'-'
                && b[10] == b' '
                && b[13] == b':'
                && !header.is_empty()
            {
                let time = c[..16].to_string();
                // Values only: not the live mark nor the scrollbar.
                let vals: Vec<&str> = c[16..]
                    .split_whitespace()
                    .filter(|w| w.parse::<f64>().is_ok())
                    .collect();
                if vals.len() == header.len() {
                    rows.push((
                        time,
                        header
                            .iter()
                            .cloned()
                            .zip(vals.iter().map(|v| v.to_string()))
                            .collect(),
                    ));
                }
            }
        }
    }
    rows
}

/// `atm query --format csv` of a series, by open time as the table shows it.
fn query(
    store: &Path,
    market: &str,
    symbol: &str,
    interval: &str,
) -> HashMap<String, HashMap<String, String>> {
    let out = atm(
        store,
        &[
            "query",
            "--market",
            market,
            "--symbol",
            symbol,
            "--interval",
            interval,
            "--format",
            "csv",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let t: i64 = f[0].parse().unwrap();
            let shown = chrono::DateTime::from_timestamp_millis(t)
                .unwrap()
                .format("%Y-%m-%d %H:%M")
                .to_string();
            (
                shown,
                names
                    .iter()
                    .zip(&f)
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            )
        })
        .collect()
}

/// Every table row on screen holds exactly what `atm query` prints.
fn assert_rows_match(
    screen: &str,
    expected: &HashMap<String, HashMap<String, String>>,
    at_least: usize,
) -> Vec<String> {
    let rows = table_rows(screen);
    assert!(
        rows.len() >= at_least,
        "expected {at_least}+ table rows on screen, found {}:\n{screen}",
        rows.len()
    );
    for (time, vals) in &rows {
        let want = expected
            .get(time)
            .unwrap_or_else(|| panic!("row {time} is not in `atm query`'s output"));
        for (col, v) in vals {
            assert_eq!(
                v, &want[col],
                "{time} {col}: the table shows {v}, `atm query` prints {}",
                want[col]
            );
        }
    }
    rows.into_iter().map(|r| r.0).collect()
}

#[test]
fn a_person_filters_opens_reads_jumps_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/binance");
    let out = atm(&store, &["import", data.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = query(&store, "um", "FILUSDT", "1m");

    let files_before = files(&store);
    let t = Tmux::start(dir.path(), 120, 40);
    let before = dir.path().join("stty.before");
    let after = dir.path().join("stty.after");
    t.type_text(&format!(
        "stty -g > {}; {ATM} --store {} view; echo EXIT=$?; stty -g > {}",
        before.display(),
        store.display(),
        after.display()
    ));
    t.keys(&["Enter"]);
    // Spot has data first: its list has focus.
    let s = t.wait("the symbol list", |s| {
        s.contains("ADABTC") && s.contains("DOGEUSDT")
    });
    assert!(s.contains("2/2"), "{s}");

    // The filter narrows the list as the person types.
    t.keys(&["/"]);
    t.type_text("doge");
    let s = t.wait("the filter narrowing the list", |s| s.contains("1/2"));
    assert!(s.contains("DOGEUSDT") && !s.contains("ADABTC"), "{s}");
    t.keys(&["Enter", "m"]);
    t.wait("no USD-M symbol matches doge", |s| {
        s.contains("no symbol matches the filter")
    });
    t.keys(&["/", "BSpace", "BSpace", "BSpace", "BSpace", "Enter"]);
    t.wait("FILUSDT in the USD-M list", |s| {
        s.contains("FILUSDT") && s.contains("1/1")
    });

    // Enter opens its first interval at the newest klines: values as `atm query` prints them.
    t.keys(&["Enter"]);
    let s = t.wait("the FILUSDT table", |s| {
        s.contains("um FILUSDT 1m · 41,760 klines") && s.contains("2024-02-29 23:59")
    });
    let shown = assert_rows_match(&s, &expected, 10);
    assert_eq!(
        shown.last().map(String::as_str),
        Some("2024-02-29 23:59"),
        "{s}"
    );

    // The chart is beside or below the table, with candles and volume.
    assert!(s.contains("chart ·") && s.contains("volume"), "{s}");
    let glyphs = s.chars().filter(|c| "█▀▄│╵╷".contains(*c)).count();
    assert!(glyphs >= 40, "only {glyphs} candle glyphs:\n{s}");

    // g, then : jumps to a date.
    t.keys(&["g"]);
    let s = t.wait("the first kline", |s| {
        table_rows(s)
            .first()
            .is_some_and(|r| r.0 == "2024-02-01 00:00")
    });
    assert_rows_match(&s, &expected, 10);
    t.keys(&[":"]);
    t.type_text("2024-02-15 12:30");
    t.keys(&["Enter"]);
    let s = t.wait("the jump to 2024-02-15 12:30", |s| {
        table_rows(s)
            .first()
            .is_some_and(|r| r.0 == "2024-02-15 12:30")
    });
    assert_rows_match(&s, &expected, 10);
    t.keys(&["PPage"]);
    let s = t.wait("a page up", |s| {
        table_rows(s)
            .first()
            .is_some_and(|r| r.0.as_str() < "2024-02-15 12:30")
    });
    assert_rows_match(&s, &expected, 10);

    // ? shows every key; q quits: status 0, the terminal as it was.
    t.keys(&["?"]);
    t.wait("the help", |s| s.contains("go to a date"));
    t.keys(&["Escape"]);
    t.keys(&["q"]);
    let s = t.wait("the shell after q", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(
        !s.contains("select") && s.contains("stty -g"),
        "the main screen is back:\n{s}"
    );
    let flags = t.run(&[
        "display-message",
        "-p",
        "-t",
        "atm",
        "#{alternate_on} #{cursor_flag} #{mouse_any_flag} #{mouse_button_flag} #{mouse_sgr_flag}",
    ]);
    assert_eq!(
        flags.trim(),
        "0 1 0 0 0",
        "alternate screen, cursor shown, mouse reporting (tmux's flags)"
    );
    let start = Instant::now();
    while !after.exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(&before).unwrap(),
        std::fs::read_to_string(&after).unwrap(),
        "terminal modes (stty -g) restored"
    );
    assert_eq!(
        files(&store),
        files_before,
        "atm view wrote nothing to the store"
    );

    // A bad --store is a one-line error, with the terminal left alone.
    t.type_text(&format!(
        "{ATM} --store {} view; echo EXIT=$?",
        dir.path().join("nowhere").display()
    ));
    t.keys(&["Enter"]);
    let s = t.wait("the error", |s| s.contains("EXIT=1"));
    assert!(s.contains("error: ") && s.contains("nowhere"), "{s}");
    assert_eq!(
        t.run(&["display-message", "-p", "-t", "atm", "#{alternate_on}"])
            .trim(),
        "0"
    );
}

/// Every file under `dir` with its length and modification time.
fn files(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn without_a_terminal_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/binance");
    assert!(atm(&store, &["import", data.to_str().unwrap()])
        .status
        .success());
    let out = atm(&store, &["view"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("atm view needs an interactive terminal"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing drawn on a pipe");
}

/// An `atm stream` child, killed when dropped.
struct Stream(Child);

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_live_kline_changes_on_screen_and_closed_klines_appear() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // One simulated minute per real second.
    let sim = sim(&["--time-scale", "60"]);
    let _stream = Stream(
        Command::new(ATM)
            .arg("--store")
            .arg(&store)
            .args([
                "stream",
                "--exchange",
                &sim.base,
                "--markets",
                "spot",
                "--symbols",
                "BTCUSDT",
                "--intervals",
                "1m",
                "--duration",
                "90s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while !store.join("spot/1m/BTCUSDT.kl").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the stream wrote no BTCUSDT series"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Tmux::start(dir.path(), 120, 40);
    t.type_text(&format!(
        "{ATM} --store {} view; echo EXIT=$?",
        store.display()
    ));
    t.keys(&["Enter"]);
    t.wait("the symbol list", |s| s.contains("BTCUSDT"));
    t.keys(&["Enter"]);
    // The table row marked ● (the title bar's "● live" is not a row).
    let live_row = |s: &str| {
        s.lines()
            .flat_map(|l| l.split('│'))
            .map(str::trim)
            .find(|c| c.get(16..21) == Some(" ● "))
            .map(str::to_string)
    };
    let first = t.wait("the live kline", |s| {
        live_row(s).is_some() && s.contains("● live")
    });
    let live0 = live_row(&first).unwrap();
    let closed0 = table_rows(&first)
        .iter()
        .rev()
        .find(|r| !live0.starts_with(&r.0))
        .map(|r| r.0.clone());
    // The live row updates in place...
    let s = t.wait("the live kline to change", |s| {
        live_row(s).is_some_and(|l| l != live0)
    });
    assert!(
        s.contains("atm stream"),
        "the status pane shows the stream:\n{s}"
    );
    // ...and closed klines appear above it.
    t.wait("a newer closed kline", |s| {
        let live = live_row(s).unwrap_or_default();
        table_rows(s)
            .iter()
            .rev()
            .find(|r| !live.starts_with(&r.0))
            .map(|r| r.0.clone())
            > closed0
    });
    t.keys(&["q"]);
    t.wait("the shell after q", |s| s.contains("EXIT=0"));
}
