//! `atm log`: print the store's log record, or follow it.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::cli::LogArgs;
use crate::error::{CliError, Result};

pub fn run(dir: &std::path::Path, a: LogArgs) -> Result<()> {
    let path = crate::logging::record_path(dir);
    let rd = |e: std::io::Error| {
        CliError::Usage(format!("reading the log record {}: {e}", path.display()))
    };
    let mut out = std::io::stdout().lock();
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !a.follow => {
            return Err(CliError::Usage(format!(
                "no log record at {}: no command has logged to this store yet",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => wait_for(&path)?,
        Err(e) => return Err(rd(e)),
    };
    // The whole record, or its last N lines.
    let lines: Vec<String> = BufReader::new(&mut file)
        .lines()
        .collect::<std::io::Result<_>>()
        .map_err(rd)?;
    let skip = a.lines.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    for l in &lines[skip..] {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    if !a.follow {
        return Ok(());
    }
    // Follow: print what is appended; start over when the record is rotated.
    let mut pos = file.seek(SeekFrom::End(0)).map_err(rd)?;
    let mut partial = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            file = wait_for(&path)?;
            pos = 0;
        }
        let mut chunk = Vec::new();
        file.seek(SeekFrom::Start(pos)).map_err(rd)?;
        file.read_to_end(&mut chunk).map_err(rd)?;
        pos += chunk.len() as u64;
        partial.extend_from_slice(&chunk);
        if let Some(end) = partial.iter().rposition(|&b| b == b'\n') {
            out.write_all(&partial[..=end])?;
            out.flush()?;
            partial.drain(..=end);
        }
    }
}

/// Opens `path`, waiting for it to appear.
fn wait_for(path: &std::path::Path) -> Result<std::fs::File> {
    loop {
        match std::fs::File::open(path) {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => {
                return Err(CliError::Usage(format!(
                    "opening the log record {}: {e}",
                    path.display()
                )))
            }
        }
    }
}
