//! The live side of the view, polled on every tick: the in-progress kline a
//! running `atm stream` publishes, what `atm status` shows, and the tail of
//! the store's log record.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use atm_store::{Kline, SeriesKey};

use crate::Result;

/// The store's log record (as `atm log` reads it).
pub fn log_path(store: &Path) -> PathBuf {
    atm_status::log_record_path(store)
}

/// The in-progress kline of `key`, if a running stream publishes it.
pub fn live_kline(store: &Path, key: &SeriesKey) -> Result<Option<Kline>> {
    Ok(atm_status::read_live(store, key)?)
}

/// `atm status` as text.
pub fn status_text(store: &Path) -> Result<String> {
    let mut processes = atm_status::read_status(store)?;
    // Running processes first (the pane is short), newest first.
    processes.sort_by_key(|p| (p.state != "running", std::cmp::Reverse(p.started)));
    if processes.is_empty() {
        return Ok(
            "no atm process runs on this store (none has published status in the last hour)"
                .to_string(),
        );
    }
    Ok(atm_status::render(store, &processes, atm_status::now_ms()))
}

/// The last lines of a growing (and sometimes rotated) log file, re-read
/// only when its length changes, and never more than its last 64 KiB.
#[derive(Debug, Default)]
pub struct LogTail {
    len: Option<u64>,
    lines: Vec<String>,
}

/// Bytes read from the end of the log at most.
const TAIL_BYTES: u64 = 64 * 1024;
/// Lines kept.
const TAIL_LINES: usize = 200;

impl LogTail {
    /// Reads the tail again if the file changed; returns whether it did.
    pub fn poll(&mut self, path: &Path) -> bool {
        let len = std::fs::metadata(path).ok().map(|m| m.len());
        if len == self.len {
            return false;
        }
        self.len = len;
        self.lines = len
            .map(|n| {
                read_tail(path, n)
                    .unwrap_or_else(|e| vec![format!("cannot read {}: {e}", path.display())])
            })
            .unwrap_or_default();
        true
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

fn read_tail(path: &Path, len: u64) -> std::io::Result<Vec<String>> {
    let mut f = std::fs::File::open(path)?;
    let from = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity((len - from) as usize);
    f.take(len - from).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let skip = lines.len().saturating_sub(TAIL_LINES);
    Ok(lines[skip..].iter().map(|l| l.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_follows_appends_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("atm.log");
        let mut t = LogTail::default();
        assert!(!t.poll(&p), "no file yet, nothing changed");
        std::fs::write(&p, "a\nb\n").unwrap();
        assert!(t.poll(&p));
        assert_eq!(t.lines(), ["a", "b"]);
        assert!(!t.poll(&p));
        let big: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &big).unwrap();
        assert!(t.poll(&p));
        assert_eq!(t.lines().len(), TAIL_LINES);
        assert_eq!(t.lines().last().unwrap(), "line 9999");
        std::fs::write(&p, "fresh\n").unwrap();
        assert!(t.poll(&p));
        assert_eq!(t.lines(), ["fresh"]);
    }
}
