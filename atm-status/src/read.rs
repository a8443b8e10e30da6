//! Reading the status of the processes on a store, from another process:
//! their status segments (`<store>/run/*.prd`) as typed [`ProcessStatus`]es,
//! the live kline a running `atm stream` publishes, the log record's path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atm_store::prd::{PrdReader, ProcessState, SlotValue};
use atm_store::{Kline, SeriesKey};
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::model::{stages_of, ProcessInfo, ProcessStatus, StageStatus, Totals};

/// Every atm process that published status on the store at `store_dir`
/// (in the last hour), oldest first, as `atm status --format json` prints
/// them. Every group has its command's documented keys, zeros until the
/// process publishes something to count; a segment being replaced or
/// removed right now is skipped.
pub fn read_status(store_dir: &Path) -> Result<Vec<ProcessStatus>> {
    let mut out = Vec::new();
    for path in atm_store::prd::list_segments(store_dir)? {
        let Ok(mut r) = PrdReader::open(&path) else {
            continue;
        };
        let Ok(slots) = r.snapshot() else { continue };
        let info = r.info().clone();
        let state = info.state();
        let groups = group_slots(slots.iter().map(|s| (s.name.as_str(), &s.value)));
        let command = info.command.clone();
        let totals = groups.plain.get("totals").cloned().unwrap_or_default();
        let totals = match command.as_str() {
            "sync" => Totals::Sync(typed(totals)),
            "stream" | "replay" => Totals::Stream(typed(totals)),
            _ => Totals::Other(totals.into_iter().collect()),
        };
        let mut stages: BTreeMap<String, StageStatus> = stages_of(&command)
            .iter()
            .map(|s| (s.to_string(), StageStatus::default()))
            .collect();
        let mut markets = BTreeMap::new();
        for ((group, name), fields) in groups.nested {
            if group == "stage" {
                stages.insert(name, typed(fields));
            } else {
                markets.insert(name, typed(fields));
            }
        }
        let mut process: ProcessInfo =
            typed(groups.plain.get("process").cloned().unwrap_or_default());
        if process.phase.is_empty() {
            "starting".clone_into(&mut process.phase);
        }
        out.push(ProcessStatus {
            pid: info.pid,
            command,
            alive: state == ProcessState::Running,
            state: state.as_str().to_string(),
            started: info.started_ms,
            heartbeat: info.heartbeat_ms,
            segment: path.display().to_string(),
            process,
            totals,
            stages,
            markets,
        });
    }
    Ok(out)
}

/// Slots grouped by the first parts of their names: `process.phase` and
/// `totals.x` in `plain`, `stage.fetch.x` and `market.um.x` in `nested`.
#[derive(Default)]
struct Groups<'a> {
    plain: BTreeMap<&'a str, Map<String, Value>>,
    nested: BTreeMap<(&'a str, String), Map<String, Value>>,
}

fn group_slots<'a>(slots: impl Iterator<Item = (&'a str, &'a SlotValue)>) -> Groups<'a> {
    let mut g = Groups::default();
    for (name, value) in slots {
        let mut parts = name.splitn(3, '.');
        let (Some(group), Some(second)) = (parts.next(), parts.next()) else {
            continue;
        };
        let third = parts.next();
        let target = match (group, third) {
            ("stage" | "market", Some(_)) => {
                g.nested.entry((group, second.to_string())).or_default()
            }
            (_, None) => g.plain.entry(group).or_default(),
            _ => continue,
        };
        let field = third.unwrap_or(second);
        match value {
            SlotValue::Counter(v) => _ = target.insert(field.into(), json!(v)),
            SlotValue::Gauge(v) => _ = target.insert(field.into(), json!(v)),
            SlotValue::Float(v) => {
                _ = target.insert(
                    field.into(),
                    if v.is_finite() { json!(v) } else { Value::Null },
                )
            }
            SlotValue::Text(t) => _ = target.insert(field.into(), json!(t)),
            SlotValue::Histogram(h) => {
                target.insert(format!("{field}_p50"), json!(h.quantile(0.5)));
                target.insert(format!("{field}_p99"), json!(h.quantile(0.99)));
                target.insert(format!("{field}_count"), json!(h.count));
            }
            SlotValue::Kline(k) => {
                target.insert(
                    field.into(),
                    json!({"open_time": k.open_time, "close": k.close(), "trades": k.trades}),
                );
            }
        }
    }
    g
}

/// A group's fields as its typed struct; a slot of an unexpected type reads
/// as the field's zero rather than failing the whole status.
fn typed<T: serde::de::DeserializeOwned + Default>(fields: Map<String, Value>) -> T {
    match serde_json::from_value(Value::Object(fields.clone())) {
        Ok(t) => t,
        Err(_) => {
            // Field by field, so one odd slot does not blank the others.
            let mut good = Map::new();
            for (k, v) in fields {
                let mut one = good.clone();
                one.insert(k.clone(), v.clone());
                if serde_json::from_value::<T>(Value::Object(one)).is_ok() {
                    good.insert(k, v);
                }
            }
            serde_json::from_value(Value::Object(good)).unwrap_or_default()
        }
    }
}

/// The store's log record: where commands that change the store append
/// their log lines (`atm log` prints it, `atm view` tails it).
pub fn log_record_path(store_dir: &Path) -> PathBuf {
    store_dir.join("log").join("atm.log")
}

/// The name of the slot that holds the live (in-progress) kline of `key`:
/// `live.<market>.<symbol>.<interval>`.
pub fn live_slot_name(key: &SeriesKey) -> String {
    format!("live.{}.{}.{}", key.market, key.symbol, key.interval)
}

/// The live (in-progress) kline of `key` as a running `atm stream` on the
/// store publishes it, if one does: read from its status segment.
pub fn read_live(store_dir: &Path, key: &SeriesKey) -> Result<Option<Kline>> {
    let name = live_slot_name(key);
    let mut best: Option<Kline> = None;
    for path in atm_store::prd::list_segments(store_dir)? {
        let Ok(mut r) = PrdReader::open(&path) else {
            continue;
        };
        if r.info().state() != ProcessState::Running {
            continue;
        }
        let Some(i) = r.names().position(|n| n == name) else {
            continue;
        };
        if let Some(SlotValue::Kline(k)) = r.read(i) {
            if k.close_time > 0 && best.is_none_or(|b| k.open_time >= b.open_time) {
                best = Some(k);
            }
        }
    }
    Ok(best)
}
