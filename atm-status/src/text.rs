//! `atm status` as text: the status of every atm process on a store,
//! rendered for people.

use crate::model::{ProcessStatus, Totals};

/// The wall clock in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ago(now: i64, ms: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{:.1} h ago", s as f64 / 3600.0),
    }
}

/// The processes (as [`crate::read_status`] returns them) as text for
/// people, ages measured from `now` (epoch ms): what `atm status` prints and
/// `atm view` shows in its status pane.
pub fn render(dir: &std::path::Path, processes: &[ProcessStatus], now: i64) -> String {
    let mut s = String::new();
    if processes.is_empty() {
        s.push_str(&format!(
            "no atm process is running on {} (none has published status there in the last hour)\n",
            dir.display()
        ));
        return s;
    }
    for p in processes {
        s.push_str(&headline(p, now));
        match &p.totals {
            Totals::Stream(t) => {
                let apply = p.stages.get("apply").cloned().unwrap_or_default();
                s.push_str(&format!(
                    "  {} · {} streams on {} connections ({} reconnects) · {} events · {} closes · {} repairs ({} klines) · {} corrections · {} bad messages · commit lag p50 {} µs, p99 {} µs\n",
                    p.process.phase,
                    t.streams,
                    t.connections,
                    t.reconnects,
                    t.events,
                    t.closes,
                    t.repairs,
                    t.repaired_klines,
                    t.corrections,
                    t.errors,
                    apply.latency_us_p50,
                    apply.latency_us_p99,
                ));
            }
            Totals::Sync(t) => {
                let eta = p
                    .process
                    .eta_s
                    .filter(|&e| e >= 0.0 && p.state == "running")
                    .map(|e| format!(" · ETA {e:.0} s"))
                    .unwrap_or_default();
                let held = if t.held_series > 0 {
                    format!(" · {} series held by another writer", t.held_series)
                } else {
                    String::new()
                };
                s.push_str(&format!(
                    "  {} · {}/{} pages · {} klines · {} requests · weight {} · {} retries · {} HTTP 429 · {} errors{held}{eta}\n",
                    p.process.phase, t.pages_done, t.pages_total, t.klines_written, t.requests, t.weight, t.retries, t.http429, t.errors,
                ));
                if t.archive_files_planned > 0 {
                    s.push_str(&format!(
                        "  archives: {}/{} files · {} klines · {:.1} MB in {} requests · {} not published · {} failed (left to REST)\n",
                        t.archive_files_done,
                        t.archive_files_planned,
                        t.archive_klines,
                        t.archive_bytes as f64 / 1e6,
                        t.archive_requests,
                        t.archive_files_missing,
                        t.archive_files_failed,
                    ));
                }
                stage_table(&mut s, p);
                markets(&mut s, p);
            }
            Totals::Other(_) => {
                s.push_str(&format!(
                    "  {} · {} klines\n",
                    p.process.phase,
                    p.totals.klines_written()
                ));
                stage_table(&mut s, p);
            }
        }
    }
    s
}

fn headline(p: &ProcessStatus, now: i64) -> String {
    let head = match p.state.as_str() {
        "dead" => format!(
            "DEAD: it stopped without finishing (killed or crashed) — last heartbeat {} ({})",
            atm_store::format_ms(p.heartbeat),
            ago(now, p.heartbeat)
        ),
        "finished" => format!("finished {}", ago(now, p.heartbeat)),
        _ => format!("running, heartbeat {}", ago(now, p.heartbeat)),
    };
    format!(
        "pid {} · atm {} · started {} · {head}\n",
        p.pid,
        p.command,
        atm_store::format_ms(p.started)
    )
}

fn stage_table(s: &mut String, p: &ProcessStatus) {
    if p.stages.is_empty() {
        return;
    }
    s.push_str(&format!(
        "  {:<6} {:>10} {:>10} {:>12} {:>7} {:>7} {:>6} {:>9} {:>9}  last error\n",
        "stage", "in", "out", "bytes out", "errors", "retries", "queue", "p50 µs", "p99 µs"
    ));
    let order = crate::model::stages_of(&p.command);
    let names = order.iter().copied().chain(
        p.stages
            .keys()
            .map(String::as_str)
            .filter(|k| !order.contains(k)),
    );
    for name in names {
        let Some(st) = p.stages.get(name) else {
            continue;
        };
        s.push_str(&format!(
            "  {:<6} {:>10} {:>10} {:>12} {:>7} {:>7} {:>6} {:>9} {:>9}  {}\n",
            name,
            st.items_in,
            st.items_out,
            st.bytes_out,
            st.errors,
            st.retries,
            st.queue,
            st.latency_us_p50,
            st.latency_us_p99,
            st.last_error,
        ));
    }
}

fn markets(s: &mut String, p: &ProcessStatus) {
    for (m, v) in &p.markets {
        let Some(total) = v.pages_total else { continue };
        s.push_str(&format!(
            "  {m:<4} {}/{total} pages · {} klines · weight {} this minute of {} · {}\n",
            v.pages_done.unwrap_or(0),
            v.klines.unwrap_or(0),
            v.weight_minute,
            v.weight_limit,
            v.state.as_deref().unwrap_or(""),
        ));
    }
}
