//! `atm verify`: check every file; with `--exchange`, also compare stored
//! klines with the exchange's and (`--repair`) fix them. One line per
//! problem on stdout.

use std::io::Write;

use atm_ingest::{Mismatch, VerifyOptions};
use atm_store::Store;

use crate::cli::{ExchangeArgs, SummaryFormat, VerifyArgs};
use crate::error::{CliError, Result};

pub fn run(store: &Store, a: VerifyArgs) -> Result<()> {
    let json = matches!(a.format, SummaryFormat::Json);
    let mut out = std::io::stdout().lock();
    let mut lines: Vec<String> = Vec::new();
    let mut emit = |line: String, out: &mut std::io::StdoutLock| -> std::io::Result<()> {
        if json {
            lines.push(line);
            Ok(())
        } else {
            writeln!(out, "{line}")
        }
    };
    // Damaged blocks are repaired (or reported) by the exchange comparison;
    // other file problems are reported here.
    let file_problems = store.verify()?;
    let comparing = a.exchange.is_some();
    for p in &file_problems {
        if !(comparing && p.detail.contains("checksum mismatch")) {
            emit(p.to_string(), &mut out)?;
        }
    }
    let Some(exchange) = a.exchange else {
        if json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"series": store.list_series()?.len(), "problems": lines})
            )?;
        }
        return finish_files(store, &file_problems);
    };
    let ex = ExchangeArgs {
        exchange,
        markets: a.markets.clone(),
    };
    let client = super::exchange::connect(&ex)?;
    if a.archives {
        return archives(&client, store, json, &mut out);
    }
    let opts = VerifyOptions {
        markets: super::exchange::markets(&ex),
        sample: a.sample,
        seed: a.seed,
        repair: a.repair,
        workers: a.workers.clamp(1, 64),
    };
    let mut write_err = None;
    let report = atm_ingest::verify(&client, store, &opts, |m: &Mismatch| {
        if let Err(e) = emit(m.to_string(), &mut out) {
            write_err.get_or_insert(e);
        }
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    let other_file_problems = file_problems
        .iter()
        .filter(|p| !p.detail.contains("checksum mismatch"))
        .count();
    if json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        v["problems"] = serde_json::json!(lines);
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "compared {} klines in {} pages of {} series: {} differ, {} missing, {} extra, {} damaged blocks{}",
            report.klines_checked,
            report.pages,
            report.series,
            report.differ,
            report.missing,
            report.extra,
            report.damaged_blocks,
            if a.repair { format!("; {} klines rewritten", report.repaired) } else { String::new() }
        )?;
    }
    // After a repair, what is left wrong is what the exchange cannot fix.
    let unfixed = if a.repair {
        let left = store.verify()?;
        left.len() as u64 + report.extra
    } else {
        report.differ
            + report.missing
            + report.extra
            + report.damaged_blocks
            + other_file_problems as u64
    };
    if unfixed > 0 {
        return Err(CliError::Usage(if a.repair {
            format!("{unfixed} problem(s) remain after the repair (klines the exchange does not have cannot be removed)")
        } else {
            format!("{unfixed} problem(s) found; `atm verify --exchange E --repair` rewrites them from the exchange")
        }));
    }
    Ok(())
}

/// `--archives`: every imported archive's `.CHECKSUM` against the recorded one.
fn archives(
    client: &atm_ingest::Client,
    store: &Store,
    json: bool,
    out: &mut std::io::StdoutLock,
) -> Result<()> {
    let checks = atm_ingest::archive::check_records(client, store.dir())?;
    let bad: Vec<&atm_ingest::archive::ArchiveCheck> =
        checks.iter().filter(|c| c.state != "same").collect();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"archives": checks.len(), "changed": bad})
        )?;
    } else {
        for c in &bad {
            let r = &c.record;
            writeln!(
                out,
                "{}: {} was {} since it was imported (sha256 {}, now {}); it filled {}..{}",
                r.series,
                r.path,
                c.state,
                r.sha256,
                c.sha256_now.as_deref().unwrap_or("none"),
                atm_store::format_ms(r.from),
                atm_store::format_ms(r.to)
            )?;
        }
        writeln!(
            out,
            "checked {} archives: {} replaced, {} gone",
            checks.len(),
            bad.iter().filter(|c| c.state == "replaced").count(),
            bad.iter().filter(|c| c.state == "gone").count()
        )?;
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "{} archive(s) changed since they were imported; `atm verify --exchange E --repair` compares their ranges with REST and rewrites what differs",
            bad.len()
        )))
    }
}

fn finish_files(store: &Store, problems: &[atm_store::Problem]) -> Result<()> {
    if problems.is_empty() {
        let n = store.list_series()?.len();
        log::info!("{n} series verified, no problems");
        Ok(())
    } else {
        let series: std::collections::BTreeSet<_> =
            problems.iter().filter_map(|p| p.series.clone()).collect();
        Err(CliError::Usage(format!(
            "{} problem(s) found in {}",
            problems.len(),
            if series.is_empty() {
                "the store's files".to_string()
            } else {
                series.into_iter().collect::<Vec<_>>().join(", ")
            }
        )))
    }
}
