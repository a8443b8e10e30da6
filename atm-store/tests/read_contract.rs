//! The read API's contract under a writer: `Series::view_chunks` hands each
//! chunk's result to its sink exactly once, and only a result computed from
//! one consistent snapshot of the chunk, however often a writer rewrites the
//! chunk while it is read (the compute closure then runs again).
//!
//! A writer thread rewrites whole chunks, each commit every kline of one
//! chunk with one value `v` (`v` increasing), while the reader scans and
//! sums every chunk many times. Some passes force the race: the first run
//! of `compute` on each chunk asks the writer to rewrite that very chunk and
//! waits until the commit is done, so its result cannot validate and
//! `compute` must run again; that does not depend on timing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use atm_store::{
    Column, Interval, Kline, Market, SeriesKey, SlotState, Store, StoreOptions, SCAN_CHUNK_SLOTS,
};

/// Chunks in the series, each `SCAN_CHUNK_SLOTS` klines, chunk-aligned.
const CHUNKS: u64 = 3;
/// The series starts at this chunk of the 1m grid (2023).
const FIRST_CHUNK: u64 = 100;
/// Passes that force a race on every chunk.
const FORCED_PASSES: usize = 4;
/// Free passes (the writer rewriting as fast as it can) at least, and the
/// time they may take at most beyond that.
const MIN_FREE_PASSES: usize = 20;
const FREE_TIME: Duration = Duration::from_secs(4);

fn key() -> SeriesKey {
    SeriesKey::parse(Market::Spot, "RACEUSDT", Interval::M1).unwrap()
}

/// Every kline of chunk `c` with value `v` (all floats `v`, trades `v`).
fn chunk_klines(c: u64, v: u32) -> Vec<Kline> {
    let iv = Interval::M1;
    let s0 = (FIRST_CHUNK + c) * SCAN_CHUNK_SLOTS;
    (s0..s0 + SCAN_CHUNK_SLOTS)
        .map(|s| Kline {
            open_time: iv.open_time(s),
            close_time: iv.close_time(s),
            values: [v as f64; 8],
            trades: v,
        })
        .collect()
}

/// What the reader computes over one chunk.
#[derive(Clone, Copy, Debug)]
struct ChunkSum {
    first: u64,
    len: u64,
    present: u64,
    sum: f64,
    min: f32,
    max: f32,
    trades_min: u32,
    trades_max: u32,
}

/// Stops the writer when the reader is done, or panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn each_chunk_reaches_the_sink_once_and_whole_while_a_writer_rewrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .unwrap();
    let key = key();
    {
        let mut w = store.writer().unwrap();
        for c in 0..CHUNKS {
            w.put_many(&key, &chunk_klines(c, 1)).unwrap();
        }
        w.commit().unwrap();
        w.close().unwrap();
    }
    let series = store.series(&key).unwrap().unwrap();
    let stop = AtomicBool::new(false);
    // Requests from the reader: rewrite this chunk now, and say when done.
    let (ask, asked) = mpsc::channel::<u64>();
    let (done, wait_done) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let (store, key, stop) = (&store, &key, &stop);
        let writer = scope.spawn(move || {
            let mut w = store.writer().unwrap();
            let (mut v, mut next, mut commits) = (1u32, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let (c, reply) = match asked.try_recv() {
                    Ok(c) => (c, true),
                    Err(_) => (next, false),
                };
                v += 1;
                w.put_many(key, &chunk_klines(c, v)).unwrap();
                w.commit().unwrap();
                commits += 1;
                if w.journal_bytes() > 64 << 20 {
                    w.checkpoint().unwrap();
                }
                if reply {
                    done.send(()).unwrap();
                } else {
                    next = (next + 1) % CHUNKS;
                }
            }
            w.close().unwrap();
            commits
        });

        let stopper = StopOnDrop(stop);
        let cols = [Column::Close, Column::Trades];
        let (mut computes, mut sinks, mut passes, mut forced_reruns) =
            (0usize, 0usize, 0usize, 0usize);
        let mut last_v = [0u32; CHUNKS as usize];
        let start = Instant::now();
        while passes < FORCED_PASSES + MIN_FREE_PASSES || start.elapsed() < FREE_TIME {
            let forced = passes < FORCED_PASSES;
            let mut raced: Option<u64> = None;
            let (mut pass_computes, mut got) = (0usize, Vec::new());
            series
                .view_chunks(
                    i64::MIN,
                    i64::MAX,
                    &cols,
                    |v| {
                        pass_computes += 1;
                        if forced && raced != Some(v.first) {
                            // The first run on this chunk: have it rewritten
                            // under us, so this run cannot validate.
                            raced = Some(v.first);
                            ask.send((v.first / SCAN_CHUNK_SLOTS) - FIRST_CHUNK)
                                .unwrap();
                            wait_done.recv().unwrap();
                        }
                        let xs = v.f32s(Column::Close.index()).unwrap();
                        let ts = v.trades();
                        let present = (0..v.len())
                            .filter(|&i| v.state(i) == SlotState::Present)
                            .count() as u64;
                        ChunkSum {
                            first: v.first,
                            len: v.len() as u64,
                            present,
                            sum: xs.iter().map(|&x| x as f64).sum(),
                            min: xs.iter().copied().fold(f32::INFINITY, f32::min),
                            max: xs.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                            trades_min: ts.iter().copied().min().unwrap(),
                            trades_max: ts.iter().copied().max().unwrap(),
                        }
                    },
                    |r| got.push(r),
                )
                .unwrap();
            assert_eq!(
                got.len() as u64,
                CHUNKS,
                "pass {passes}: one sink call per chunk, exactly"
            );
            for (c, r) in got.iter().enumerate() {
                assert_eq!(
                    r.first,
                    (FIRST_CHUNK + c as u64) * SCAN_CHUNK_SLOTS,
                    "pass {passes}: chunks in order"
                );
                assert_eq!(
                    (r.len, r.present),
                    (SCAN_CHUNK_SLOTS, SCAN_CHUNK_SLOTS),
                    "pass {passes}: whole chunks"
                );
                assert_eq!(
                    r.min, r.max,
                    "pass {passes}, chunk {c}: a mix of two commits: {r:?}"
                );
                let v = r.min as u32;
                assert_eq!(
                    r.sum,
                    (r.len * v as u64) as f64,
                    "pass {passes}, chunk {c}: sum of one value {v}: {r:?}"
                );
                assert_eq!(
                    (r.trades_min, r.trades_max),
                    (v, v),
                    "pass {passes}, chunk {c}: trades of the same commit"
                );
                assert!(
                    v >= last_v[c],
                    "pass {passes}, chunk {c}: went back from {} to {v}",
                    last_v[c]
                );
                last_v[c] = v;
            }
            if forced {
                // Every chunk was rewritten under its first run: it ran again.
                assert!(
                    pass_computes >= 2 * CHUNKS as usize,
                    "pass {passes}: {pass_computes} runs of compute"
                );
                forced_reruns += pass_computes - got.len();
            }
            computes += pass_computes;
            sinks += got.len();
            passes += 1;
        }
        drop(stopper);
        let commits = writer.join().unwrap();
        assert_eq!(sinks, passes * CHUNKS as usize);
        assert!(forced_reruns >= FORCED_PASSES * CHUNKS as usize);
        assert!(computes > sinks);
        eprintln!(
            "{passes} passes, {commits} commits, {computes} runs of compute for {sinks} chunks"
        );
    });
}
