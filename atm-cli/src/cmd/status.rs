//! `atm status`: every atm process that runs (or ran) on the store, read
//! from their status segments (`<store>/run/*.prd`), once or live.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::cli::{StatusArgs, SummaryFormat};
use crate::error::Result;

pub fn run(dir: &std::path::Path, a: StatusArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    loop {
        let processes = atm_status::read_status(dir)?;
        match a.format {
            SummaryFormat::Json => {
                writeln!(
                    out,
                    "{}",
                    json!({"store": dir.display().to_string(), "processes": processes})
                )?;
            }
            SummaryFormat::Text => {
                if a.watch {
                    // Clear the screen and draw from the top.
                    write!(out, "\x1b[2J\x1b[H")?;
                }
                write!(
                    out,
                    "{}",
                    atm_status::render(dir, &processes, atm_status::now_ms())
                )?;
            }
        }
        out.flush()?;
        if !a.watch {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
