//! `atm stream`: keep the store live from the exchange's kline streams.

use std::io::Write;

use atm_ingest::stream::StreamOptions;

use crate::cli::{StreamArgs, SummaryFormat};
use crate::error::{CliError, Result};

/// A positive duration flag (`90s`, `30m`, `2h`).
fn duration_arg(flag: &str, d: Option<&str>) -> Result<Option<std::time::Duration>> {
    d.map(|d| {
        atm_sim::faults::parse_duration(d)
            .ok()
            .filter(|&ms| ms > 0)
            .map(|ms| std::time::Duration::from_millis(ms as u64))
            .ok_or_else(|| CliError::Usage(format!("{flag} {d:?}: write e.g. 90s, 30m or 2h")))
    })
    .transpose()
}

pub fn run(dir: &std::path::Path, a: StreamArgs) -> Result<()> {
    let duration = duration_arg("--duration", a.duration.as_deref())?;
    let rotate_after = duration_arg("--rotate-after", a.rotate_after.as_deref())?;
    let refresh_every = duration_arg("--refresh", a.refresh.as_deref())?;
    let opts = StreamOptions {
        selection: super::sync::selection(&a.selection)?,
        duration,
        workers: a.workers.clamp(1, 64),
        control: Some(super::sync::stop_on_ctrl_c()),
        publish_status: true,
        rotate_after,
        derive: a.derive,
        refresh_every,
    };
    let store = super::open_or_create(dir, a.precision.into())?;
    let mut client = super::exchange::connect(&a.selection.exchange)?;
    let s = atm_ingest::stream::stream(&mut client, &store, &opts)?;
    let mut out = std::io::stdout().lock();
    match a.format {
        SummaryFormat::Json => writeln!(out, "{}", serde_json::to_string(&s).unwrap_or_default())?,
        SummaryFormat::Text => writeln!(
            out,
            "streamed {} series for {:.1} s: {} klines written ({} backfilled, {} closes, {} derived, {} repaired in {} repairs), {} events, {} live updates, {} reconnects, {} rotations, {} bad messages",
            s.streams,
            s.elapsed_s,
            s.klines_written + s.backfilled,
            s.backfilled,
            s.closes,
            s.derived,
            s.repaired_klines,
            s.repairs,
            s.events,
            s.live_updates,
            s.reconnects,
            s.rotations,
            s.bad_messages
        )?,
    }
    Ok(())
}
