//! PRD segments across processes: a writer process updates thousands of
//! multi-word slots at full speed while reader processes check that every
//! value they read is one the writer wrote (never torn, never going back);
//! then the writer is killed and its segment reads as dead.
//!
//! The children are this test binary again, picked by `ATM_PRD_CHILD`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atm_store::prd::{PrdReader, PrdWriter, ProcessState, SlotKind, SlotSpec, SlotValue};
use atm_store::Kline;

const SLOTS: usize = 4000;

/// The kline slot `slot` holds at round `n`: every word derived from `n`,
/// so a mix of two rounds is visible.
fn pattern(n: u64, slot: usize) -> Kline {
    let base = (n * 16 + slot as u64 % 7) as f64;
    Kline {
        open_time: n as i64,
        close_time: n as i64 + 1,
        values: std::array::from_fn(|i| base + i as f64),
        trades: (n % 1_000_000) as u32,
    }
}

fn round_of(k: &Kline, slot: usize) -> Option<u64> {
    let n = k.open_time as u64;
    (*k == pattern(n, slot)).then_some(n)
}

fn spawn_child(role: &str, arg: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ATM_PRD_CHILD", role)
        .env("ATM_PRD_ARG", arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Not a test by itself: the body of the child processes (ignored, so it
/// never counts as a passing test; the tests above run it with `--ignored`).
#[test]
#[ignore = "a child-process entry point, run by the other tests of this file"]
fn child() {
    let Ok(role) = std::env::var("ATM_PRD_CHILD") else {
        eprintln!("not a test: the child process of the tests in this file");
        return;
    };
    let arg = PathBuf::from(std::env::var("ATM_PRD_ARG").unwrap());
    match role.as_str() {
        "writer" => writer(&arg),
        _ => reader(&arg),
    }
}

fn writer(store: &Path) {
    let specs: Vec<SlotSpec> = (0..SLOTS)
        .map(|i| SlotSpec::new(&format!("live.{i}"), SlotKind::Kline, ""))
        .collect();
    let mut w = PrdWriter::create(store, "stream", &specs).unwrap();
    let ids: Vec<_> = (0..SLOTS)
        .map(|i| w.slot(&format!("live.{i}")).unwrap())
        .collect();
    println!("{}", w.path().display());
    for n in 1.. {
        for (slot, &id) in ids.iter().enumerate() {
            w.set_kline(id, &pattern(n, slot));
        }
        w.heartbeat();
    }
}

fn reader(segment: &Path) {
    let mut r = PrdReader::open(segment).unwrap();
    let mut last = vec![0u64; SLOTS];
    let (mut reads, mut snapshots) = (0u64, 0u64);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        for (slot, s) in r.snapshot().unwrap().iter().enumerate() {
            let SlotValue::Kline(k) = &s.value else {
                panic!("slot {slot}: {:?}", s.value)
            };
            if k.open_time == 0 && k.trades == 0 {
                continue; // not written yet
            }
            let n = round_of(k, slot).unwrap_or_else(|| panic!("slot {slot}: torn value {k:?}"));
            assert!(
                n >= last[slot],
                "slot {slot} went back from round {} to {n}",
                last[slot]
            );
            last[slot] = n;
            reads += 1;
        }
        snapshots += 1;
    }
    println!("READS {reads} {snapshots} {}", last.iter().max().unwrap());
}

/// A child killed when dropped, also when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn readers_in_other_processes_never_see_a_torn_slot_and_a_killed_writer_reads_as_dead() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Killed(spawn_child("writer", dir.path().to_str().unwrap()));
    // The harness prints its own lines first; the writer's is the segment's path.
    let mut lines = BufReader::new(w.0.stdout.take().unwrap()).lines();
    let segment = lines
        .find_map(|l| {
            l.ok()
                .filter(|l| l.ends_with(".prd"))
                .and_then(|l| l.split(' ').next_back().map(str::to_string))
        })
        .expect("the writer's segment path");
    // Keep draining the writer's stdout so it never blocks or dies on a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let readers: Vec<_> = (0..2).map(|_| spawn_child("reader", &segment)).collect();
    for r in readers {
        let out = r.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "a reader failed: {text}");
        // "READS reads snapshots newest-round-seen"
        let at = text.find("READS ").unwrap_or_else(|| panic!("{text}"));
        let nums: Vec<u64> = text[at + 6..]
            .split_whitespace()
            .take(3)
            .map(|x| x.parse().unwrap())
            .collect();
        assert!(
            nums[0] > 10 * SLOTS as u64 && nums[2] > 2,
            "the readers read while the writer wrote: {text}"
        );
    }
    let mut r = PrdReader::open(Path::new(&segment)).unwrap();
    assert_eq!(r.info().state(), ProcessState::Running);
    assert_eq!(r.info().command, "stream");
    w.0.kill().unwrap();
    w.0.wait().unwrap();
    assert_eq!(
        r.info().state(),
        ProcessState::Dead,
        "a SIGKILLed writer is dead"
    );
}
