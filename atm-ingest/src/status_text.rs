//! `atm status` as text: the status segments of every atm process on a
//! store, rendered for people.

use serde_json::Value;

/// The wall clock in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

fn ago(now: i64, ms: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{:.1} h ago", s as f64 / 3600.0),
    }
}

/// The processes (as [`crate::status::read_status`] returns them) as text
/// for people, ages measured from `now` (epoch ms): what `atm status` prints
/// and `atm view` shows in its status pane.
pub fn render(dir: &std::path::Path, processes: &[Value], now: i64) -> String {
    let mut s = String::new();
    if processes.is_empty() {
        s.push_str(&format!("no atm process is running on {} (none has published status there in the last hour)\n", dir.display()));
        return s;
    }
    for p in processes {
        let state = p["state"].as_str().unwrap_or("?");
        let started = atm_store::format_ms(p["started"].as_i64().unwrap_or(0));
        let beat = p["heartbeat"].as_i64().unwrap_or(0);
        let head = match state {
            "dead" => format!(
                "DEAD: it stopped without finishing (killed or crashed) — last heartbeat {} ({})",
                atm_store::format_ms(beat),
                ago(now, beat)
            ),
            "finished" => format!("finished {}", ago(now, beat)),
            _ => format!("running, heartbeat {}", ago(now, beat)),
        };
        s.push_str(&format!("pid {} · atm {} · started {started} · {head}\n", p["pid"], p["command"].as_str().unwrap_or("?")));
        let t = &p["totals"];
        let proc = &p["process"];
        if p["command"] == "stream" {
            let apply = &p["stages"]["apply"];
            s.push_str(&format!(
                "  {} · {} streams on {} connections ({} reconnects) · {} events · {} closes · {} repairs ({} klines) · {} corrections · {} bad messages · commit lag p50 {} µs, p99 {} µs\n",
                proc["phase"].as_str().unwrap_or(""),
                num(t, "streams"),
                num(t, "connections"),
                num(t, "reconnects"),
                num(t, "events"),
                num(t, "closes"),
                num(t, "repairs"),
                num(t, "repaired_klines"),
                num(t, "corrections"),
                num(t, "errors"),
                num(apply, "latency_us_p50"),
                num(apply, "latency_us_p99"),
            ));
            continue;
        }
        let eta =
            proc["eta_s"].as_f64().filter(|&e| e >= 0.0 && state == "running").map(|e| format!(" · ETA {:.0} s", e)).unwrap_or_default();
        s.push_str(&format!(
            "  {} · {}/{} pages · {} klines · {} requests · weight {} · {} retries · {} HTTP 429 · {} errors{eta}\n",
            proc["phase"].as_str().unwrap_or(""),
            num(t, "pages_done"),
            num(t, "pages_total"),
            num(t, "klines_written"),
            num(t, "requests"),
            num(t, "weight"),
            num(t, "retries"),
            num(t, "http429"),
            num(t, "errors"),
        ));
        if num(t, "archive_files_planned") > 0 {
            s.push_str(&format!(
                "  archives: {}/{} files · {} klines · {:.1} MB in {} requests · {} not published · {} failed (left to REST)\n",
                num(t, "archive_files_done"),
                num(t, "archive_files_planned"),
                num(t, "archive_klines"),
                num(t, "archive_bytes") as f64 / 1e6,
                num(t, "archive_requests"),
                num(t, "archive_files_missing"),
                num(t, "archive_files_failed"),
            ));
        }
        if let Some(stages) = p["stages"].as_object() {
            s.push_str(&format!(
                "  {:<6} {:>10} {:>10} {:>12} {:>7} {:>7} {:>6} {:>9} {:>9}  last error\n",
                "stage", "in", "out", "bytes out", "errors", "retries", "queue", "p50 µs", "p99 µs"
            ));
            for name in ["fetch", "parse", "write"]
                .into_iter()
                .chain(stages.keys().map(String::as_str).filter(|k| !["fetch", "parse", "write"].contains(k)))
            {
                let Some(st) = stages.get(name) else { continue };
                s.push_str(&format!(
                    "  {:<6} {:>10} {:>10} {:>12} {:>7} {:>7} {:>6} {:>9} {:>9}  {}\n",
                    name,
                    num(st, "items_in"),
                    num(st, "items_out"),
                    num(st, "bytes_out"),
                    num(st, "errors"),
                    num(st, "retries"),
                    st["queue"].as_i64().unwrap_or(0),
                    num(st, "latency_us_p50"),
                    num(st, "latency_us_p99"),
                    st["last_error"].as_str().unwrap_or(""),
                ));
            }
        }
        if let Some(markets) = p["markets"].as_object() {
            for (m, v) in markets {
                if v.get("pages_total").is_none() {
                    continue;
                }
                s.push_str(&format!(
                    "  {m:<4} {}/{} pages · {} klines · weight {} this minute of {} · {}\n",
                    num(v, "pages_done"),
                    num(v, "pages_total"),
                    num(v, "klines"),
                    v["weight_minute"].as_i64().unwrap_or(0),
                    v["weight_limit"].as_i64().unwrap_or(0),
                    v["state"].as_str().unwrap_or(""),
                ));
            }
        }
    }
    s
}
