//! The status of an atm process as typed values: what a job publishes and
//! what `atm status --format json`, `atm view` and any other reader get back.
//!
//! Each group of slots is one struct, declared once with [`status_group!`]:
//! its field names are the slot names (`totals.klines_written` is
//! [`SyncTotals::klines_written`]), the publisher writes a value of it
//! ([`SyncTotals::metrics`]) and the reader deserializes the same struct
//! from the slots it finds. A slot a reader does not find reads as its zero
//! (`#[serde(default)]`), so every documented key is always there, and a
//! renamed field changes the publisher and every reader at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::publish::Metric;

/// A value that can be published as one slot (`None` publishes nothing).
pub trait ToMetric {
    /// The slot value, if there is one to publish.
    fn to_metric(&self) -> Option<Metric>;
}

impl ToMetric for u64 {
    fn to_metric(&self) -> Option<Metric> {
        Some(Metric::Counter(*self))
    }
}

impl ToMetric for i64 {
    fn to_metric(&self) -> Option<Metric> {
        Some(Metric::Gauge(*self))
    }
}

impl ToMetric for f64 {
    fn to_metric(&self) -> Option<Metric> {
        Some(Metric::Float(*self))
    }
}

impl ToMetric for String {
    fn to_metric(&self) -> Option<Metric> {
        Some(Metric::Text(self.clone()))
    }
}

impl<T: ToMetric> ToMetric for Option<T> {
    fn to_metric(&self) -> Option<Metric> {
        self.as_ref().and_then(ToMetric::to_metric)
    }
}

/// Declares a group of status slots: a serde struct whose fields are the
/// slot names, with `metrics(prefix, out)` for the publisher and `FIELDS`
/// (the slot names in order).
macro_rules! status_group {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty, )* }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl $name {
            /// The slot names of this group, in declaration order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The group as metrics named `<prefix>.<field>` (fields that are
            /// `None` are left out).
            pub fn metrics(&self, prefix: &str, out: &mut Vec<(String, Metric)>) {
                $(
                    if let Some(m) = ToMetric::to_metric(&self.$field) {
                        out.push((format!("{prefix}.{}", stringify!($field)), m));
                    }
                )*
            }
        }
    };
}

status_group! {
    /// `process.*`: what the process is doing and how fast.
    pub struct ProcessInfo {
        /// What the process does now: `starting` first, then the command's
        /// phases ([`SYNC_PHASES`], [`STREAM_PHASES`]); `failed: <error>` if
        /// a sync failed.
        pub phase: String,
        /// Seconds until done at the current rate (sync; -1 while unknown).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub eta_s: Option<f64>,
        /// Seconds since the job started (sync).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub elapsed_s: Option<f64>,
        /// Klines written per second since the start (sync).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub klines_per_s: Option<f64>,
    }
}

status_group! {
    /// `totals.*` of an `atm sync` (and `atm verify --repair`'s sync).
    pub struct SyncTotals {
        /// Klines committed.
        pub klines_written: u64,
        /// REST requests sent.
        pub requests: u64,
        /// Request weight spent.
        pub weight: u64,
        /// Errors fatal to an item (a page, a file).
        pub errors: u64,
        /// Requests tried again.
        pub retries: u64,
        /// HTTP 429 answers.
        pub http429: u64,
        /// Pages fetched and committed.
        pub pages_done: u64,
        /// Pages planned.
        pub pages_total: u64,
        /// Slots recorded known-missing.
        pub known_missing_slots: u64,
        /// Series skipped because another process holds their write lock.
        pub held_series: u64,
        /// Archive files planned (`--source archive|auto`).
        pub archive_files_planned: u64,
        /// Archive files committed.
        pub archive_files_done: u64,
        /// Archive files the exchange has not published.
        pub archive_files_missing: u64,
        /// Archive files that failed (left to REST).
        pub archive_files_failed: u64,
        /// Klines committed from archives.
        pub archive_klines: u64,
        /// Archive bytes downloaded.
        pub archive_bytes: u64,
        /// Archive requests sent.
        pub archive_requests: u64,
    }
}

status_group! {
    /// `totals.*` of an `atm stream`.
    pub struct StreamTotals {
        /// Klines committed (closes, repairs, start-up backfill).
        pub klines_written: u64,
        /// WebSocket events received.
        pub events: u64,
        /// Closed klines received.
        pub closes: u64,
        /// Updates of in-progress klines published.
        pub live_updates: u64,
        /// Repairs asked of REST.
        pub repairs: u64,
        /// Klines those repairs wrote.
        pub repaired_klines: u64,
        /// Stored klines REST corrected.
        pub corrections: u64,
        /// Bad messages.
        pub errors: u64,
        /// Reconnections.
        pub reconnects: u64,
        /// Connections rotated before Binance's 24 h cut.
        pub rotations: u64,
        /// Connections open.
        pub connections: u64,
        /// Streams subscribed.
        pub streams: u64,
        /// REST requests sent.
        pub requests: u64,
        /// Request weight spent.
        pub weight: u64,
    }
}

status_group! {
    /// `market.<market>.*`: one market of a sync.
    pub struct MarketStatus {
        /// Weight spent on this market.
        pub weight: u64,
        /// The exchange's weight limit per minute.
        pub weight_limit: i64,
        /// Weight used in the current minute, as the exchange counts it.
        pub weight_minute: i64,
        /// Pages committed (markets with planned work).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub pages_done: Option<u64>,
        /// Pages planned.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub pages_total: Option<u64>,
        /// Klines committed.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub klines: Option<u64>,
        /// `running`, `done` or `stopped: <why>`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub state: Option<String>,
    }
}

/// `stage.<name>.*` as readers see it: a stage's counts, its input queue and
/// its latency quantiles (published as one histogram,
/// [`crate::StageStats::latency_us`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageStatus {
    /// Items taken in (pages, bodies, klines, events).
    pub items_in: u64,
    /// Items passed on.
    pub items_out: u64,
    /// Bytes taken in.
    pub bytes_in: u64,
    /// Bytes passed on.
    pub bytes_out: u64,
    /// Errors (fatal for the item).
    pub errors: u64,
    /// Retries.
    pub retries: u64,
    /// Items waiting in the stage's input queue.
    pub queue: i64,
    /// Median time per item, µs.
    pub latency_us_p50: u64,
    /// 99th percentile time per item, µs.
    pub latency_us_p99: u64,
    /// Items timed.
    pub latency_us_count: u64,
    /// The last error, if any.
    pub last_error: String,
}

/// A process's totals: their fields depend on the command.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Totals {
    /// `atm sync`.
    Sync(SyncTotals),
    /// `atm stream` (and `replay`).
    Stream(StreamTotals),
    /// Another command: its totals as published.
    Other(BTreeMap<String, serde_json::Value>),
}

impl Default for Totals {
    fn default() -> Self {
        Totals::Other(BTreeMap::new())
    }
}

impl Totals {
    /// Klines written, whatever the command.
    pub fn klines_written(&self) -> u64 {
        match self {
            Totals::Sync(t) => t.klines_written,
            Totals::Stream(t) => t.klines_written,
            Totals::Other(m) => m
                .get("klines_written")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
        }
    }
}

/// The phases of `atm sync`, in order (then `done`, or `failed: <error>`).
pub const SYNC_PHASES: &[&str] = &[
    "starting",
    "importing markets",
    "finding first klines",
    "planning",
    "archives",
    "fetching",
    "done",
];

/// The phases of `atm stream`, in order.
pub const STREAM_PHASES: &[&str] = &["starting", "backfilling", "streaming", "stopping"];

/// The stages of `atm sync`, in pipeline order.
pub const SYNC_STAGES: &[&str] = &["fetch", "parse", "write"];

/// The stages of `atm stream`.
pub const STREAM_STAGES: &[&str] = &["ws", "apply"];

/// The stages a command always shows (zeros until they count something).
pub fn stages_of(command: &str) -> &'static [&'static str] {
    match command {
        "sync" => SYNC_STAGES,
        "stream" | "replay" => STREAM_STAGES,
        _ => &[],
    }
}

/// One atm process's status, as `atm status --format json` prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProcessStatus {
    /// The process id.
    pub pid: u32,
    /// The command (`sync`, `stream`, ...).
    pub command: String,
    /// Whether the process is running.
    pub alive: bool,
    /// `running`, `finished` or `dead`.
    pub state: String,
    /// When it started, epoch ms.
    pub started: i64,
    /// Its last heartbeat, epoch ms.
    pub heartbeat: i64,
    /// The status segment's path.
    pub segment: String,
    /// What it is doing.
    pub process: ProcessInfo,
    /// What it has done.
    pub totals: Totals,
    /// Its stages by name.
    pub stages: BTreeMap<String, StageStatus>,
    /// Per market (sync).
    pub markets: BTreeMap<String, MarketStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_publishes_its_fields_under_their_names() {
        let t = SyncTotals {
            klines_written: 7,
            held_series: 2,
            ..Default::default()
        };
        let mut out = Vec::new();
        t.metrics("totals", &mut out);
        assert_eq!(out.len(), SyncTotals::FIELDS.len());
        assert_eq!(
            out[0],
            ("totals.klines_written".to_string(), Metric::Counter(7))
        );
        assert!(out.contains(&("totals.held_series".to_string(), Metric::Counter(2))));
        let p = ProcessInfo {
            phase: "starting".into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        p.metrics("process", &mut out);
        assert_eq!(
            out,
            [("process.phase".to_string(), Metric::Text("starting".into()))],
            "None fields are not published"
        );
    }

    #[test]
    fn a_missing_slot_reads_as_zero() {
        let t: StreamTotals = serde_json::from_value(serde_json::json!({"closes": 3})).unwrap();
        assert_eq!(t.closes, 3);
        assert_eq!(t.events, 0);
        let json = serde_json::to_value(&t).unwrap();
        for f in StreamTotals::FIELDS {
            assert!(json.get(f).is_some(), "{f} is always shown");
        }
    }
}
