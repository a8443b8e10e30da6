//! Crash, torn-write and multi-process tests. The test binary re-runs itself
//! as the child process (`ATM_TEST_CHILD` says what the child does).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atm_store::{Error, Interval, Kline, Market, SeriesKey, Store, StoreOptions};

const BASE: u64 = 3_500_000;
const COUNTER: u64 = BASE - 1;

fn key_a() -> SeriesKey {
    SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap()
}
fn key_b() -> SeriesKey {
    SeriesKey::parse(Market::UsdM, "ETHUSDT", Interval::M5).unwrap()
}

/// A kline whose every value encodes (slot, version), so a reader can tell a
/// torn kline (columns from two versions) or a misplaced one.
fn kline(iv: Interval, slot: u64, version: u32) -> Kline {
    let mut values = [0.0; 8];
    for (c, v) in values.iter_mut().enumerate() {
        *v = (version as f64) * 16.0 + c as f64 + (slot % 64) as f64 * 100_000.0;
    }
    Kline {
        open_time: iv.open_time(slot),
        close_time: iv.close_time(slot),
        values,
        trades: version,
    }
}

fn consistent(iv: Interval, k: &Kline) -> bool {
    let slot = iv.slot_of(k.open_time).unwrap();
    *k == kline(iv, slot, k.trades)
}

/// What commit `i` writes: (series, puts, missing slot ranges).
/// (series, slots to put, slot range to mark missing).
type Plan = (SeriesKey, Vec<u64>, Option<(u64, u64)>);

fn commit_plan(i: u32) -> Vec<Plan> {
    let start = BASE + (i as u64 * 53) % 9000;
    let a: Vec<u64> = std::iter::once(COUNTER).chain(start..start + 60).collect();
    let m = BASE + 9500 + (i as u64 * 7) % 400;
    let b0 = 400_000 + (i as u64 % 50) * 3;
    vec![
        (key_a(), a, Some((m, m + 19))),
        (
            key_b(),
            vec![b0, b0 + 1, b0 + 4100],
            i.is_multiple_of(3).then_some((b0 + 10, b0 + 30)),
        ),
    ]
}

fn write_commit(w: &mut atm_store::Writer, i: u32) {
    for (key, puts, missing) in commit_plan(i) {
        let iv = key.interval;
        let ks: Vec<Kline> = puts.iter().map(|&s| kline(iv, s, i)).collect();
        w.put_many(&key, &ks).unwrap();
        if let Some((a, z)) = missing {
            w.mark_missing(&key, iv.open_time(a), iv.open_time(z))
                .unwrap();
        }
    }
}

#[derive(Default, PartialEq, Debug)]
struct Model {
    present: BTreeMap<u64, Kline>,
    missing: BTreeSet<u64>,
}

fn model(k: u32) -> BTreeMap<SeriesKey, Model> {
    let mut m: BTreeMap<SeriesKey, Model> = BTreeMap::new();
    for i in 1..=k {
        for (key, puts, missing) in commit_plan(i) {
            let e = m.entry(key.clone()).or_default();
            for s in puts {
                e.present.insert(s, kline(key.interval, s, i));
                e.missing.remove(&s);
            }
            if let Some((a, z)) = missing {
                for s in a..=z {
                    if !e.present.contains_key(&s) {
                        e.missing.insert(s);
                    }
                }
            }
        }
    }
    m
}

fn open(dir: &Path) -> Store {
    Store::open(
        dir,
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn committed_count(store: &Store) -> u32 {
    match store.series(&key_a()).unwrap() {
        Some(s) => s
            .at(Interval::M1.open_time(COUNTER))
            .unwrap()
            .map(|k| k.trades)
            .unwrap_or(0),
        None => 0,
    }
}

fn assert_matches_model(store: &Store, k: u32) {
    for (key, m) in model(k) {
        let s = store.series(&key).unwrap().expect("series exists");
        let got: BTreeMap<u64, Kline> = s
            .range(0, i64::MAX / 2)
            .unwrap()
            .into_iter()
            .map(|k| (key.interval.slot_of(k.open_time).unwrap(), k))
            .collect();
        assert_eq!(got, m.present, "{key} after {k} commits");
        assert_eq!(
            s.stats().unwrap().missing,
            m.missing.len() as u64,
            "{key} missing"
        );
        assert!(s.verify().is_empty(), "{key}: {:?}", s.verify());
    }
}

fn child(mode: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_entry",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ATM_TEST_CHILD", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The child side, started by the tests below (ignored, so it never counts
/// as a passing test; they run it with `--ignored`).
#[test]
#[ignore = "a child-process entry point, run by the other tests of this file"]
fn child_entry() {
    let Ok(mode) = std::env::var("ATM_TEST_CHILD") else {
        eprintln!("not a test: the child process of the tests in this file");
        return;
    };
    let parts: Vec<&str> = mode.split('|').collect();
    let dir = Path::new(parts[1]);
    match parts[0] {
        "writer" => {
            let store = open(dir);
            let mut w = store.writer().unwrap();
            // Odd commits take the bulk path where they can, even ones the journal.
            let first = committed_count(&store) + 1;
            let stop_at: u32 = parts.get(2).map(|s| s.parse().unwrap()).unwrap_or(u32::MAX);
            for i in first.. {
                if i == stop_at {
                    match parts[3] {
                        "tear" => {
                            atm_store::fault::tear_next_journal_write(parts[4].parse().unwrap())
                        }
                        "abort" => {
                            atm_store::fault::abort_after_block_writes(parts[4].parse().unwrap())
                        }
                        _ => unreachable!(),
                    }
                }
                w.set_bulk_threshold(if i % 2 == 1 { 1 } else { usize::MAX });
                write_commit(&mut w, i);
                w.commit().unwrap();
                println!("@@ {i}");
            }
        }
        "reader" => {
            let store = Store::open(dir, StoreOptions::default()).unwrap();
            let deadline = Instant::now() + Duration::from_millis(parts[2].parse().unwrap());
            let (mut reads, mut klines) = (0u64, 0u64);
            while Instant::now() < deadline {
                for key in [key_a(), key_b()] {
                    if let Some(s) = store.series(&key).unwrap() {
                        for k in s.range(0, i64::MAX / 2).unwrap() {
                            assert!(
                                consistent(key.interval, &k),
                                "torn or misplaced kline {k:?}"
                            );
                            klines += 1;
                        }
                        if let Some(k) = s.latest().unwrap() {
                            assert!(consistent(key.interval, &k));
                        }
                    }
                }
                reads += 1;
            }
            println!("@@ {reads} {klines}");
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// Reads the child's stdout lines on a thread; returns the last commit it reported.
fn watch(child: &mut Child) -> std::sync::mpsc::Receiver<u32> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(Ok(n)) = line.split("@@ ").nth(1).map(|s| s.trim().parse()) {
                let _ = tx.send(n);
            }
        }
    });
    rx
}

fn kill9(child: &mut Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

#[test]
fn sigkill_at_random_moments_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut last = 0;
    for trial in 0..12 {
        let mut c = child(&format!("writer|{}", dir.path().display()));
        let rx = watch(&mut c);
        // Wait for a first commit, then a random extra delay.
        let mut reported = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child commits");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 150_000));
        kill9(&mut c);
        while let Ok(n) = rx.recv_timeout(Duration::from_millis(200)) {
            reported = n;
        }
        let store = open(dir.path());
        let k = committed_count(&store);
        assert!(
            k == reported || k == reported + 1,
            "trial {trial}: store has {k} commits, child reported {reported}"
        );
        assert!(k > last, "progress");
        last = k;
        assert_matches_model(&store, k);
    }
}

/// Every file under `dir` with its length and modification time.
fn listing(dir: &Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_read_only_open_after_a_crash_changes_nothing_and_serves_no_torn_kline() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = child(&format!("writer|{}", dir.path().display()));
    let rx = watch(&mut c);
    rx.recv_timeout(Duration::from_secs(30))
        .expect("child commits");
    std::thread::sleep(Duration::from_millis(30));
    kill9(&mut c);
    let before = listing(dir.path());
    let store = Store::open(
        dir.path(),
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    for key in [key_a(), key_b()] {
        // A series the dead writer was changing says it needs recovery; the
        // others read whole klines only.
        match store
            .series(&key)
            .and_then(|s| s.map(|s| s.range(i64::MIN, i64::MAX)).transpose())
        {
            Ok(klines) => assert!(
                klines
                    .unwrap_or_default()
                    .iter()
                    .all(|kl| consistent(key.interval, kl)),
                "{key}: a torn kline"
            ),
            Err(Error::NeedsRecovery { .. }) => {}
            Err(e) => panic!("{key}: {e}"),
        }
    }
    drop(store);
    assert_eq!(
        listing(dir.path()),
        before,
        "a read-only open wrote nothing (no journal replayed)"
    );
    // A normal open replays the dead writer's journal: nothing committed is lost.
    let store = open(dir.path());
    assert_matches_model(&store, committed_count(&store));
}

#[test]
fn torn_journal_write_is_rolled_back() {
    for bytes in [0u64, 7, 24, 100, 1_000, 2_500] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = child(&format!("writer|{}|6|tear|{bytes}", dir.path().display()));
        let rx = watch(&mut c);
        let status = c.wait().unwrap();
        assert!(!status.success(), "child aborts");
        let reported: Vec<u32> = rx.iter().collect();
        assert_eq!(reported.last(), Some(&5));
        let store = open(dir.path());
        assert_eq!(
            committed_count(&store),
            5,
            "torn at {bytes}: the torn commit is not there"
        );
        assert_matches_model(&store, 5);
        // And the store takes new commits afterwards.
        let mut w = store.writer().unwrap();
        write_commit(&mut w, 6);
        w.commit().unwrap();
        drop(w);
        assert_matches_model(&open(dir.path()), 6);
    }
}

#[test]
fn crash_in_the_middle_of_applying_a_commit_is_replayed() {
    // Commit 4 goes through the journal, commit 5 through the bulk path.
    for (at, blocks) in [(4u32, 0u64), (4, 1), (4, 2), (5, 0), (5, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = child(&format!(
            "writer|{}|{at}|abort|{blocks}",
            dir.path().display()
        ));
        let rx = watch(&mut c);
        assert!(!c.wait().unwrap().success());
        // The child has exited: read its output to the end (the watcher may lag).
        assert_eq!(rx.iter().last(), Some(at - 1));
        // The journal sync happened before the abort: the commit is durable.
        let store = open(dir.path());
        assert_eq!(
            committed_count(&store),
            at,
            "abort in commit {at} after {blocks} blocks"
        );
        assert_matches_model(&store, at);
    }
}

#[test]
fn readers_in_other_processes_never_see_torn_klines() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = child(&format!("writer|{}", dir.path().display()));
    let rx = watch(&mut w);
    rx.recv_timeout(Duration::from_secs(30))
        .expect("writer commits");
    let mut readers: Vec<Child> = (0..2)
        .map(|_| child(&format!("reader|{}|1500", dir.path().display())))
        .collect();
    let outputs: Vec<_> = readers.iter_mut().map(watch_lines).collect();
    for r in &mut readers {
        assert!(r.wait().unwrap().success(), "a reader saw a torn kline");
    }
    kill9(&mut w);
    for o in outputs {
        let line = o.recv_timeout(Duration::from_secs(5)).unwrap();
        let reads: u64 = line.split(' ').next().unwrap().parse().unwrap();
        assert!(reads > 0);
    }
}

fn watch_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("@@ ").nth(1) {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    rx
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid_and_takes_over_after_death() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = child(&format!("writer|{}", dir.path().display()));
    let rx = watch(&mut c);
    rx.recv_timeout(Duration::from_secs(30))
        .expect("writer commits");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut w = store.writer().unwrap();
    let err = w.put(&key_a(), &kline(Interval::M1, BASE, 1)).unwrap_err();
    match &err {
        Error::Locked { pid, .. } => assert_eq!(*pid, c.id() as i32),
        other => panic!("expected Locked, got {other}"),
    }
    assert!(
        err.to_string().contains(&format!("pid {}", c.id())),
        "{err}"
    );
    kill9(&mut c);
    // The kill may land inside a commit: a store opened now replays the dead
    // writer's journal first, so its reads see the last commit whole (the
    // handle opened before the kill would answer NeedsRecovery for a file
    // left mid-commit, by design).
    let k = committed_count(&open(dir.path()));
    // The dead writer's lock is gone: this writer takes over.
    w.put(&key_a(), &kline(Interval::M1, COUNTER, k + 1000))
        .unwrap();
    w.commit().unwrap();
    drop(w);
    let store = open(dir.path());
    assert_eq!(committed_count(&store), k + 1000);
}

#[test]
fn two_writers_in_one_process_exclude_each_other_however_the_path_is_spelled() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    let b = open(&dir.path().join(".").join("spot").join(".."));
    let mut wa = a.writer().unwrap();
    let mut wb = b.writer().unwrap();
    wa.put(&key_a(), &kline(Interval::M1, BASE, 1)).unwrap();
    match wb.put(&key_a(), &kline(Interval::M1, BASE, 2)) {
        Err(Error::Locked { pid, .. }) => assert_eq!(pid, std::process::id() as i32),
        other => panic!("expected Locked, got {other:?}"),
    }
    // Other series are free.
    wb.put(&key_b(), &kline(Interval::M5, 400_000, 2)).unwrap();
    wb.commit().unwrap();
    wa.commit().unwrap();
}
