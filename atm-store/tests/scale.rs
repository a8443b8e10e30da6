//! Scale and resource tests: 20,000 series within default Linux limits, and
//! a full disk that is a clean error.

use std::time::Instant;

use atm_store::{Interval, Kline, Market, SeriesKey, Store, StoreOptions};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn key(i: usize) -> SeriesKey {
    let market = Market::ALL[i % 3];
    let interval = [Interval::M1, Interval::H1, Interval::D1, Interval::M5][i / 3 % 4];
    SeriesKey::parse(market, &format!("SYM{i}USDT"), interval).unwrap()
}

fn kline(k: &SeriesKey, i: usize) -> Kline {
    let t = k
        .interval
        .open_time(k.interval.slot_of(1_700_000_000_000).unwrap());
    Kline {
        open_time: t,
        close_time: k.interval.close_time(k.interval.slot_of(t).unwrap()),
        values: [i as f64; 8],
        trades: i as u32,
    }
}

#[test]
fn twenty_thousand_series_stay_within_default_limits() {
    const N: usize = 20_000;
    // Default Linux limits: 1024 open files, 65530 maps. Stay far below both.
    const FD_BUDGET: usize = 600;
    const MAP_BUDGET: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (fd0, map0) = (open_fds(), maps());
    let start = Instant::now();
    let mut w = store.writer().unwrap();
    for i in 0..N {
        let k = key(i);
        w.put(&k, &kline(&k, i)).unwrap();
        if i % 500 == 499 {
            w.commit().unwrap();
            assert!(
                open_fds() < fd0 + FD_BUDGET,
                "writer holds {} fds",
                open_fds() - fd0
            );
            assert!(
                maps() < map0 + MAP_BUDGET,
                "writer holds {} maps",
                maps() - map0
            );
        }
    }
    w.commit().unwrap();
    assert_eq!(
        w.held_series().count(),
        N,
        "the writer still holds every series' lock"
    );
    drop(w);
    eprintln!("wrote {N} series in {:?}", start.elapsed());
    assert_eq!(store.list_series().unwrap().len(), N);
    let start = Instant::now();
    for i in 0..N {
        let k = key(i);
        let latest = store
            .series(&k)
            .unwrap()
            .unwrap()
            .latest()
            .unwrap()
            .unwrap();
        assert_eq!(latest, kline(&k, i));
        if i % 1000 == 0 {
            assert!(
                open_fds() < fd0 + FD_BUDGET && maps() < map0 + MAP_BUDGET,
                "reader holds {} fds, {} maps",
                open_fds() - fd0,
                maps() - map0
            );
        }
    }
    assert!(store.open_series() <= atm_store::DEFAULT_OPEN_SERIES);
    eprintln!("read {N} series in {:?}", start.elapsed());
    // A cross-section over every 1m series of one market.
    let t = kline(&key(0), 0).open_time;
    let cs = store.cross_section(Market::Spot, Interval::M1, t).unwrap();
    assert_eq!(cs.len(), N.div_ceil(12));
    assert!(cs.iter().all(|(_, k)| k.is_some()));
}

/// Mounts a small tmpfs (needs root; the test is skipped without it).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mb: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_is_a_clean_error_that_loses_nothing_committed() {
    let Some(disk) = SmallDisk::mount(24) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let root = disk.dir.path().join("store");
    let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
    let block = |b: u64| -> Vec<Kline> {
        (0..4096u64)
            .map(|i| {
                let s = 3_000_000 + b * 4096 * 3 + i; // every third block: no shared pages
                Kline {
                    open_time: Interval::M1.open_time(s),
                    close_time: Interval::M1.close_time(s),
                    values: [b as f64; 8],
                    trades: b as u32,
                }
            })
            .collect()
    };
    let mut committed = 0;
    {
        let store = Store::open(
            &root,
            StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        let mut w = store.writer().unwrap();
        let err = loop {
            w.put_many(&key, &block(committed)).unwrap();
            match w.commit() {
                Ok(_) => committed += 1,
                Err(e) => break e,
            }
            assert!(committed < 1000, "the disk never filled");
        };
        assert!(matches!(err, atm_store::Error::DiskFull { .. }), "{err}");
        assert!(
            err.to_string().contains("disk full")
                && err.to_string().contains("nothing committed was lost"),
            "{err}"
        );
        w.rollback();
        // Dropping the writer may fail to checkpoint on a full disk: the journal
        // then stays and is replayed at the next open.
    }
    assert!(committed > 2, "some blocks fit before the disk filled");
    let store = Store::open(&root, StoreOptions::default()).unwrap();
    let s = store.series(&key).unwrap().unwrap();
    assert_eq!(s.stats().unwrap().present, committed * 4096);
    let all = s.range(0, i64::MAX).unwrap();
    let want: Vec<Kline> = (0..committed).flat_map(block).collect();
    assert!(all == want, "committed klines intact");
    assert!(store.verify().unwrap().is_empty());
}
