//! `atm sync`: the complete kline history of a selection, resumable.

use std::io::{IsTerminal, Write};

use atm_ingest::{MarketProgress, Progress, Selection, SyncOptions};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::{SummaryFormat, SyncArgs};
use crate::error::{CliError, Result};
use crate::time_arg::parse_time;

/// `--intervals`, each checked.
pub(crate) fn parse_intervals(list: &[String]) -> Result<Vec<atm_store::Interval>> {
    list.iter()
        .map(|i| {
            i.parse::<atm_store::Interval>()
                .map_err(|_| CliError::Usage(format!("unknown interval {i:?}: use 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M")))
        })
        .collect()
}

/// `--markets`, `--symbols` and `--intervals` of `sync` and `stream`.
pub(crate) fn selection(a: &crate::cli::SelectionArgs) -> Result<Selection> {
    Ok(Selection {
        markets: super::exchange::markets(&a.exchange),
        symbols: a.symbols.parse()?,
        intervals: parse_intervals(&a.intervals)?,
    })
}

pub fn run(dir: &std::path::Path, a: SyncArgs) -> Result<()> {
    let opts = SyncOptions {
        selection: selection(&a.selection)?,
        since: a.since.as_deref().map(parse_time).transpose()?,
        until: a.until.as_deref().map(parse_time).transpose()?,
        include_delisted: a.include_delisted,
        recheck_missing: a.recheck_missing,
        dry_run: a.dry_run,
        recent_first: !a.oldest_first,
        workers: a.workers.clamp(1, 64),
        control: Some(stop_on_ctrl_c()),
        publish_status: true,
        since_last_stored: false,
        source: a.source.parse()?,
        archive_workers: a.archive_workers.clamp(1, 32),
        on_held: atm_ingest::OnHeld::Skip,
    };
    let store = super::open_or_create(dir, a.precision.into())?;
    let mut client = super::exchange::connect(&a.selection.exchange)?;
    let mut bars = if std::io::stderr().is_terminal() {
        Some(Bars::new(&opts.selection.markets))
    } else {
        None
    };
    let mut last_log = std::time::Instant::now();
    let summary = atm_ingest::sync(&mut client, &store, &opts, |p: &Progress| match &mut bars {
        Some(b) => b.update(p),
        None if last_log.elapsed().as_secs() >= 10 => {
            let markets: Vec<String> = p.markets.iter().map(market_line).collect();
            log::info!(
                "{}/{} pages, {} klines, weight {} | {}",
                p.pages_done,
                p.pages_total,
                p.klines,
                p.weight,
                markets.join(" | ")
            );
            last_log = std::time::Instant::now();
        }
        None => {}
    })?;
    if let Some(b) = bars {
        b.finish();
    }
    let mut out = std::io::stdout().lock();
    match a.format {
        SummaryFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string(&summary).unwrap_or_default()
        )?,
        SummaryFormat::Text => {
            if opts.dry_run && !summary.planned_from_archives.is_empty() {
                // REST's share of the requests, weight and time, in proportion to its klines.
                let rest: u64 = summary
                    .planned_from_archives
                    .iter()
                    .map(|s| s.rest_klines)
                    .sum();
                let archived: u64 = summary
                    .planned_from_archives
                    .iter()
                    .map(|s| s.archive_klines)
                    .sum();
                let share = if summary.planned_klines == 0 {
                    0.0
                } else {
                    rest as f64 / summary.planned_klines as f64
                };
                writeln!(
                    out,
                    "plan: {} series, {} klines missing: up to {archived} from archives, {rest} from REST (about {:.0} requests, weight {:.0}, {:.1} minutes at the rate limit); about {} MB on disk",
                    summary.series,
                    summary.planned_klines,
                    summary.pages as f64 * share,
                    summary.planned_weight as f64 * share,
                    summary.planned_minutes * share,
                    summary.planned_bytes / 1_000_000
                )?;
                for m in &summary.planned_from_archives {
                    writeln!(
                        out,
                        "  {}: {} klines in up to {} archive files, {} from REST",
                        m.market, m.archive_klines, m.archive_files, m.rest_klines
                    )?;
                }
            } else if opts.dry_run {
                writeln!(
                    out,
                    "plan: {} series, {} klines to fetch in {} requests, weight {}, about {:.1} minutes at the rate limit, about {} MB on disk",
                    summary.series,
                    summary.planned_klines,
                    summary.pages,
                    summary.planned_weight,
                    summary.planned_minutes,
                    summary.planned_bytes / 1_000_000
                )?;
            } else {
                let ar = &summary.archive;
                if ar.planned > 0 {
                    writeln!(
                        out,
                        "archives: {} files verified and committed ({} klines, {} bytes), {} not published, {} checksum mismatches, {} failed (their ranges went to REST)",
                        ar.files,
                        ar.klines,
                        ar.bytes,
                        ar.missing,
                        ar.mismatches.len(),
                        ar.failed.len()
                    )?;
                }
                writeln!(
                    out,
                    "synced {} series: {} klines written, {} slots known-missing, {} requests, weight {}, {} retries, {} HTTP 429, {:.1} s",
                    summary.series,
                    summary.klines_written,
                    summary.known_missing_slots,
                    summary.requests,
                    summary.weight,
                    summary.retries,
                    summary.http429,
                    summary.elapsed_s
                )?;
            }
        }
    }
    if summary.stopped {
        return Err(CliError::Usage(format!(
            "interrupted: {} of {} pages done; run the same command again to resume",
            summary.pages_done, summary.pages
        )));
    }
    if !summary.failed_markets.is_empty() {
        return Err(CliError::Usage(format!(
            "stopped: {}",
            summary.failed_markets.join("; ")
        )));
    }
    if summary.held_series > 0 {
        return Err(CliError::Incomplete(format!(
            "done except {} series another writer held (each named in a warning above); run the same command again once it is done",
            summary.held_series
        )));
    }
    Ok(())
}

/// One market's progress in a line: `spot 120/400 pages, 119,000 klines`.
fn market_line(m: &MarketProgress) -> String {
    let state = match &m.failed {
        Some(why) => format!(", STOPPED: {why}"),
        None if m.pages_total > 0 && m.pages_done == m.pages_total => ", done".to_string(),
        None => String::new(),
    };
    format!(
        "{} {}/{} pages, {} klines{state}",
        m.market, m.pages_done, m.pages_total, m.klines
    )
}

/// The terminal display: an overall bar with rate and ETA, and a line per market.
struct Bars {
    _multi: MultiProgress,
    overall: ProgressBar,
    markets: Vec<ProgressBar>,
}

impl Bars {
    fn new(markets: &[atm_store::Market]) -> Bars {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} pages  {msg}  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let markets = markets
            .iter()
            .map(|_| {
                let b = multi.add(ProgressBar::new(0));
                b.set_style(
                    ProgressStyle::with_template("  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b
            })
            .collect();
        crate::logging::set_progress(Some(multi.clone()));
        Bars {
            _multi: multi,
            overall,
            markets,
        }
    }

    fn update(&mut self, p: &Progress) {
        self.overall.set_length(p.pages_total);
        self.overall.set_position(p.pages_done);
        self.overall
            .set_message(format!("{} klines, weight {}", p.klines, p.weight));
        for (bar, m) in self.markets.iter().zip(&p.markets) {
            bar.set_message(market_line(m));
        }
    }

    fn finish(self) {
        crate::logging::set_progress(None);
        self.overall.finish_and_clear();
        for b in self.markets {
            b.finish_and_clear();
        }
    }
}

/// Ctrl-C asks the running sync to stop (a FAR): it commits what arrived
/// and returns. A second Ctrl-C exits at once (still safe: nothing
/// committed is lost, the next run resumes).
pub(crate) fn stop_on_ctrl_c() -> atm_ingest::pipeline::ControlRequests {
    let (far, requests) = atm_ingest::ipc::channel(4);
    let pressed = std::sync::atomic::AtomicBool::new(false);
    let installed = ctrlc::set_handler(move || {
        if pressed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            eprintln!(
                "interrupted again: exiting now (what was committed stays; run again to resume)"
            );
            std::process::exit(130);
        }
        eprintln!("stopping: committing what arrived (Ctrl-C again to exit at once)");
        if let Err(e) = far.call(
            atm_ingest::pipeline::Control::Stop,
            std::time::Duration::from_secs(10),
        ) {
            eprintln!("the sync did not answer ({e}): exiting");
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        log::warn!("Ctrl-C handler not installed: {e}");
    }
    requests
}
