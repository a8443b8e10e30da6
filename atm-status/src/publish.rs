//! Status of a running job, published for other processes.
//!
//! Each stage thread counts its work in a [`StageStats`] of its own (plain
//! integers, no atomics, no sharing) and copies it out when the publisher
//! asks (a DAR, see `atm_ingest::ipc`). The [`Publisher`] thread asks every
//! stage at a fixed period, adds what the job reports about itself (phase,
//! totals, per-market weight), and writes it all to this process's PRD
//! segment in the store (`atm_store::prd`), where `atm status` reads it.
//!
//! Slot names say where a value belongs: `process.*` (phase, rate, ETA),
//! `totals.*`, `stage.<name>.*`, `market.<market>.*`.

use std::path::Path;
use std::time::{Duration, Instant};

use atm_store::prd::{Histogram, PrdWriter, SlotKind, SlotSpec};
use crossbeam_channel::{bounded, Sender};

use crate::error::{Error, Result};
use crate::model::ProcessInfo;
use atm_types::sync::lock as lock_unpoisoned;

/// How often the publisher samples the stages and writes the segment.
pub const PUBLISH_PERIOD: Duration = Duration::from_millis(250);

/// How long a sampler waits for the stages' answers each period.
pub const GATHER_TIMEOUT: Duration = Duration::from_millis(20);

/// One stage thread's counts, kept in its own memory.
#[derive(Clone, Debug, Default)]
pub struct StageStats {
    /// Items taken in (pages, bodies, klines).
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
    /// Time per item, µs.
    pub latency_us: Histogram,
    /// The last error, if any.
    pub last_error: String,
}

impl StageStats {
    /// Adds another thread's counts (the last error of either).
    pub fn merge(&mut self, o: &StageStats) {
        self.items_in += o.items_in;
        self.items_out += o.items_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.errors += o.errors;
        self.retries += o.retries;
        self.latency_us.merge(&o.latency_us);
        if !o.last_error.is_empty() {
            self.last_error.clone_from(&o.last_error);
        }
    }

    /// Records one item's time.
    pub fn time(&mut self, started: Instant) {
        self.latency_us.record(started.elapsed().as_micros() as u64);
    }

    /// The stage as metrics named `stage.<name>.*`, with its input queue's
    /// depth: the fields of [`crate::StageStatus`] (the histogram becomes
    /// `latency_us_p50`, `_p99` and `_count` there).
    pub fn metrics(&self, name: &str, queue: usize, out: &mut Vec<(String, Metric)>) {
        let m = |field: &str| format!("stage.{name}.{field}");
        out.push((m("items_in"), Metric::Counter(self.items_in)));
        out.push((m("items_out"), Metric::Counter(self.items_out)));
        out.push((m("bytes_in"), Metric::Counter(self.bytes_in)));
        out.push((m("bytes_out"), Metric::Counter(self.bytes_out)));
        out.push((m("errors"), Metric::Counter(self.errors)));
        out.push((m("retries"), Metric::Counter(self.retries)));
        out.push((m("queue"), Metric::Gauge(queue as i64)));
        out.push((
            m("latency_us"),
            Metric::Histogram(Box::new(self.latency_us.clone())),
        ));
        out.push((m("last_error"), Metric::Text(self.last_error.clone())));
    }
}

/// A value to publish.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    /// Only grows.
    Counter(u64),
    /// Goes up and down.
    Gauge(i64),
    /// A rate, a ratio, seconds.
    Float(f64),
    /// Latencies.
    Histogram(Box<Histogram>),
    /// A phase, an error.
    Text(String),
}

impl Metric {
    pub(crate) fn kind(&self) -> SlotKind {
        match self {
            Metric::Counter(_) => SlotKind::Counter,
            Metric::Gauge(_) => SlotKind::Gauge,
            Metric::Float(_) => SlotKind::Float,
            Metric::Histogram(_) => SlotKind::Histogram,
            Metric::Text(_) => SlotKind::Text,
        }
    }
}

/// Publishes a job's status from a thread of its own until dropped (or
/// [`Publisher::finish`]ed): every [`PUBLISH_PERIOD`], `sample` is called
/// (it asks the stages, e.g. through `atm_ingest::ipc::Gather`) and its metrics are
/// written to the segment; names seen for the first time become new slots.
pub struct Publisher {
    stop: Option<Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    segment: std::sync::Arc<std::sync::Mutex<PrdWriter>>,
}

/// A handle to write the live (in-progress) klines of series into the
/// publisher's segment, from the thread that receives them: one seqlocked
/// slot per series, `live.<market>.<symbol>.<interval>`, registered on
/// first use.
pub struct LiveSlots {
    segment: std::sync::Arc<std::sync::Mutex<PrdWriter>>,
    ids: std::collections::HashMap<String, Option<atm_store::prd::SlotId>>,
}

impl LiveSlots {
    /// Registers the slots of `names` at once: one new generation of the
    /// segment for all of them, not one per name.
    pub fn register(&mut self, names: &[String]) {
        let mut w = lock_unpoisoned(&self.segment);
        let specs: Vec<SlotSpec> = names
            .iter()
            .filter(|n| n.len() <= 40)
            .map(|n| SlotSpec::new(n, SlotKind::Kline, ""))
            .collect();
        if let Err(e) = w.add_slots(&specs) {
            log::warn!("registering {} live slots: {e}", specs.len());
            return;
        }
        for n in names {
            self.ids.insert(n.clone(), w.slot(n));
        }
    }

    /// Publishes `k` as the live kline of `name` (e.g. `live.spot.BTCUSDT.1m`).
    /// Names longer than a slot name allows are skipped (logged once).
    pub fn set(&mut self, name: &str, k: &atm_store::Kline) {
        let mut w = lock_unpoisoned(&self.segment);
        let id = match self.ids.get(name) {
            Some(id) => *id,
            None => {
                let id = match w.slot_or_add(&SlotSpec::new(name, SlotKind::Kline, "")) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        log::debug!("no live slot for {name}: {e}");
                        None
                    }
                };
                self.ids.insert(name.to_string(), id);
                id
            }
        };
        if let Some(id) = id {
            w.set_kline(id, k);
        }
    }
}

impl Publisher {
    /// Creates this process's segment in `store_dir` for `command` (cleaning
    /// up segments of processes ended over an hour ago) and starts publishing.
    ///
    /// The segment says `process.phase` = `starting` from the moment it
    /// exists, and holds a first sample before this returns: a reader never
    /// sees the process without its phase, totals or stages.
    pub fn start(
        store_dir: &Path,
        command: &str,
        mut sample: impl FnMut() -> Vec<(String, Metric)> + Send + 'static,
    ) -> Result<Publisher> {
        if let Err(e) = atm_store::prd::cleanup(store_dir, 3_600_000) {
            log::warn!("cleaning up old status segments: {e}");
        }
        let mut first = Vec::new();
        ProcessInfo {
            phase: "starting".into(),
            ..ProcessInfo::default()
        }
        .metrics("process", &mut first);
        let mut writer = PrdWriter::create(store_dir, command, &[])?;
        let mut ids = std::collections::HashMap::new();
        publish(&mut writer, &mut ids, first)?;
        publish(&mut writer, &mut ids, sample())?;
        writer.heartbeat();
        let segment = std::sync::Arc::new(std::sync::Mutex::new(writer));
        let w_shared = segment.clone();
        let (stop, stopped) = bounded::<bool>(1);
        let thread = std::thread::Builder::new()
            .name("atm-status".into())
            .spawn(move || loop {
                let finished = match stopped.recv_timeout(PUBLISH_PERIOD) {
                    Ok(finished) => Some(finished),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Some(false),
                };
                let metrics = sample();
                let mut w = lock_unpoisoned(&w_shared);
                if let Err(e) = publish(&mut w, &mut ids, metrics) {
                    log::warn!("publishing status: {e}");
                }
                w.heartbeat();
                match finished {
                    Some(true) => {
                        w.finish();
                        return;
                    }
                    Some(false) => return,
                    None => {}
                }
            })
            .map_err(Error::Thread)?;
        Ok(Publisher {
            stop: Some(stop),
            thread: Some(thread),
            segment,
        })
    }

    /// A writer of live klines into this publisher's segment.
    pub fn live_slots(&self) -> LiveSlots {
        LiveSlots {
            segment: self.segment.clone(),
            ids: Default::default(),
        }
    }

    /// Publishes a last sample, marks the process finished, and stops.
    pub fn finish(mut self) {
        self.stop_with(true);
    }

    fn stop_with(&mut self, finished: bool) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(finished);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    /// Stops without marking the process finished: a job that failed reads
    /// as ended by `atm status` only once the process is gone.
    fn drop(&mut self) {
        self.stop_with(false);
    }
}

fn publish(
    w: &mut PrdWriter,
    ids: &mut std::collections::HashMap<String, atm_store::prd::SlotId>,
    metrics: Vec<(String, Metric)>,
) -> atm_store::Result<()> {
    let new: Vec<SlotSpec> = metrics
        .iter()
        .filter(|(n, _)| !ids.contains_key(n))
        .map(|(n, m)| SlotSpec::new(n, m.kind(), unit_of(n)))
        .collect();
    if !new.is_empty() {
        w.add_slots(&new)?;
        for s in &new {
            if let Some(id) = w.slot(&s.name) {
                ids.insert(s.name.clone(), id);
            }
        }
    }
    for (name, m) in &metrics {
        let Some(&id) = ids.get(name) else { continue };
        match m {
            Metric::Counter(v) => w.set_u64(id, *v),
            Metric::Gauge(v) => w.set_i64(id, *v),
            Metric::Float(v) => w.set_f64(id, *v),
            Metric::Histogram(h) => w.set_histogram(id, h),
            Metric::Text(t) => w.set_text(id, t),
        }
    }
    Ok(())
}

/// The unit of a metric, from its name.
fn unit_of(name: &str) -> &'static str {
    let field = name.rsplit('.').next().unwrap_or("");
    match field {
        f if f.ends_with("_us") => "us",
        f if f.ends_with("_s") => "s",
        f if f.starts_with("bytes") => "bytes",
        f if f.contains("weight") => "weight",
        f if f.contains("klines") => "klines",
        f if f.starts_with("pages") => "pages",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atm_store::prd::{PrdReader, ProcessState, SlotValue};

    #[test]
    fn the_phase_is_starting_before_the_first_period() {
        let dir = tempfile::tempdir().unwrap();
        let p = Publisher::start(dir.path(), "sync", || {
            vec![("totals.klines_written".to_string(), Metric::Counter(1))]
        })
        .unwrap();
        // Read at once: no publishing period has passed yet.
        let path = atm_store::prd::list_segments(dir.path())
            .unwrap()
            .pop()
            .unwrap();
        let snap = PrdReader::open(&path).unwrap().snapshot().unwrap();
        assert!(snap.iter().any(|s| s.name == "process.phase" && s.value == SlotValue::Text("starting".into())), "{snap:?}");
        assert!(
            snap.iter()
                .any(|s| s.name == "totals.klines_written" && s.value == SlotValue::Counter(1)),
            "{snap:?}"
        );
        p.finish();
    }

    #[test]
    fn publishes_new_names_and_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0u64;
        let p = Publisher::start(dir.path(), "sync", move || {
            n += 1;
            let mut v = vec![(
                "totals.klines_written".to_string(),
                Metric::Counter(n * 100),
            )];
            if n > 2 {
                v.push(("process.phase".to_string(), Metric::Text("fetching".into())));
            }
            v
        })
        .unwrap();
        std::thread::sleep(PUBLISH_PERIOD * 4);
        let path = atm_store::prd::list_segments(dir.path())
            .unwrap()
            .pop()
            .unwrap();
        let mut r = PrdReader::open(&path).unwrap();
        let snap = r.snapshot().unwrap();
        let written = snap
            .iter()
            .find(|s| s.name == "totals.klines_written")
            .unwrap();
        assert!(
            matches!(written.value, SlotValue::Counter(k) if k >= 200),
            "{snap:?}"
        );
        assert_eq!(written.unit, "klines");
        assert!(snap
            .iter()
            .any(|s| s.name == "process.phase" && s.value == SlotValue::Text("fetching".into())));
        assert_eq!(r.info().state(), ProcessState::Running);
        p.finish();
        assert_eq!(r.info().state(), ProcessState::Finished);
    }
}
