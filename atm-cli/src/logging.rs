//! Logging: the `log` facade, env_logger's filtering (`RUST_LOG`, `-v`,
//! `-q`), one line per record — `[time LEVEL target] message` — on stderr
//! (the level coloured only on a terminal), and, for commands that change a
//! store, the same lines appended to the store's log record
//! (`<store>/log/atm.log`, rotated at 10 MiB, three old files kept), which
//! `atm log` prints.
//!
//! Progress bars and log lines share stderr: while a bar is shown
//! ([`set_progress`]), each line is printed with the bars suspended, so
//! neither garbles the other.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cli::{Cli, Command};

/// Rotate the record when it grows past this.
const ROTATE_BYTES: u64 = 10 << 20;
/// Old records kept (`atm.log.1` newest).
const KEEP: usize = 3;

/// The bars being shown, if any.
static PROGRESS: Mutex<Option<indicatif::MultiProgress>> = Mutex::new(None);

/// Routes log lines around `bars` while they are shown (`None` when done).
pub fn set_progress(bars: Option<indicatif::MultiProgress>) {
    *atm_types::sync::lock(&PROGRESS) = bars;
}

/// The store's log record.
pub fn record_path(store: &Path) -> PathBuf {
    atm_status::log_record_path(store)
}

/// Sets up logging for `cli`; `store` is the store directory, whose log
/// record gets the lines when the command changes the store.
pub fn init(cli: &Cli, store: &Path) {
    let (base, records): (i32, bool) = match cli.command {
        Command::Query(_)
        | Command::Info(_)
        | Command::Status(_)
        | Command::Log(_)
        | Command::Export(_) => (2, false),
        Command::Import(_) | Command::Verify(_) | Command::Compact(_) => (2, true),
        Command::Sim(_) => (3, false),
        Command::Sync(_) | Command::Markets(_) | Command::Stream(_) => (3, true),
        // The terminal UI owns the screen: no line may go to stderr.
        Command::View(_) => return,
    };
    let level = match base + cli.verbose as i32 - cli.quiet as i32 {
        i32::MIN..=0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut b = env_logger::Builder::new();
    b.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(|buf, record| {
        writeln!(
            buf,
            "[{} {:<5} {}] {}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            record.level(),
            record.target(),
            record.args()
        )
    });
    let tee = Tee {
        color: std::io::stderr().is_terminal(),
        record: records.then(|| Record::new(record_path(store))),
        pending: Vec::new(),
    };
    b.target(env_logger::Target::Pipe(Box::new(tee)));
    let _ = b.try_init();
}

/// Where formatted lines go: stderr (around progress bars) and the record.
struct Tee {
    color: bool,
    record: Option<Record>,
    pending: Vec<u8>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Tee {
    fn emit(&mut self, line: &[u8]) {
        let console = if self.color {
            colour(line)
        } else {
            line.to_vec()
        };
        let print = || {
            let _ = std::io::stderr().lock().write_all(&console);
        };
        match atm_types::sync::lock(&PROGRESS).as_ref() {
            Some(bars) => bars.suspend(print),
            None => print(),
        }
        if let Some(r) = self.record.as_mut() {
            r.append(line);
        }
    }
}

/// The level of a `[time LEVEL target]` line, coloured.
fn colour(line: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    for (level, code) in [
        ("ERROR", "31"),
        ("WARN ", "33"),
        ("INFO ", "32"),
        ("DEBUG", "34"),
        ("TRACE", "36"),
    ] {
        if let Some(at) = text.find(&format!(" {level} ")) {
            let word = level.trim_end();
            return format!(
                "{}\x1b[{code}m{word}\x1b[0m{}",
                &text[..at + 1],
                &text[at + 1 + word.len()..]
            )
            .into_bytes();
        }
    }
    line.to_vec()
}

/// The log record: appended line by line, rotated by size.
struct Record {
    path: PathBuf,
    file: Option<File>,
    failed: bool,
}

impl Record {
    fn new(path: PathBuf) -> Record {
        Record {
            path,
            file: None,
            failed: false,
        }
    }

    fn append(&mut self, line: &[u8]) {
        if self.failed {
            return;
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    // Once, on the console only: the record is a convenience.
                    self.failed = true;
                    let _ = writeln!(
                        std::io::stderr(),
                        "warning: cannot write the log record {}: {e}",
                        self.path.display()
                    );
                    return;
                }
            }
        }
        if let Some(f) = self.file.as_mut() {
            // One write per line: O_APPEND keeps lines of several processes whole.
            let _ = f.write_all(line);
            if f.metadata()
                .map(|m| m.len() > ROTATE_BYTES)
                .unwrap_or(false)
            {
                self.rotate();
            }
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        let old = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(old(KEEP));
        for n in (1..KEEP).rev() {
            let _ = std::fs::rename(old(n), old(n + 1));
        }
        let _ = std::fs::rename(&self.path, old(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_coloured_only_at_the_level_and_the_record_rotates() {
        let c = String::from_utf8(colour(
            b"[2026-01-01T00:00:00.000Z WARN  atm] careful: INFO is a word\n",
        ))
        .unwrap();
        assert_eq!(
            c,
            "[2026-01-01T00:00:00.000Z \x1b[33mWARN\x1b[0m  atm] careful: INFO is a word\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut r = Record::new(record_path(dir.path()));
        let line = vec![b'x'; 1 << 20];
        for _ in 0..25 {
            r.append(&line);
        }
        let p = record_path(dir.path());
        assert!(p.with_extension("log.1").exists() && p.with_extension("log.2").exists());
        assert!(std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) <= ROTATE_BYTES + (1 << 20));
    }
}
