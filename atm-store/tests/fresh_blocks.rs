//! The first kline written into a block nobody has written: its checksums
//! are patched from those of zeroed columns (the writer zeroes such blocks
//! as it reserves them), and they must equal the checksums of the bytes
//! really on disk, whatever an earlier, failed write left there.

use std::os::unix::fs::FileExt;

use atm_store::layout::{Layout, BLOCK_SLOTS};
use atm_store::{Interval, Kline, Market, Precision, SeriesKey, Store, StoreOptions};

fn kline(iv: Interval, slot: u64) -> Kline {
    let v = slot as f64;
    Kline {
        open_time: iv.open_time(slot),
        close_time: iv.close_time(slot),
        values: [v, v + 2.0, v - 1.0, v + 1.0, 5.5, 6.5, 7.5, 8.5],
        trades: 42,
    }
}

#[test]
fn a_first_kline_into_a_block_with_leftover_bytes_is_checksummed_over_what_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
    let iv = key.interval;
    let slot = 50 * BLOCK_SLOTS + 17;
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let mut w = store.writer().unwrap();
    w.put(&key, &kline(iv, slot)).unwrap();
    w.commit().unwrap();
    w.close().unwrap();
    // Bytes a failed bulk write could leave in blocks still empty: two
    // blocks later, in every column.
    let later = slot + 2 * BLOCK_SLOTS;
    let layout = Layout::new(iv, Precision::F32);
    let path = dir
        .path()
        .join("spot")
        .join(iv.file_name())
        .join(format!("BTCUSDT.{}", atm_store::SERIES_EXT));
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for c in 0..atm_store::layout::COLUMNS {
        let (off, len) = layout.col_block(c, later / BLOCK_SLOTS);
        file.write_all_at(&vec![0xA5; len as usize], off).unwrap();
    }
    file.sync_all().unwrap();
    // A new writer writes one kline there (and one into a fresh series).
    let fresh = SeriesKey::parse(Market::Spot, "ETHUSDT", Interval::M1).unwrap();
    let mut w = store.writer().unwrap();
    w.prepare(&fresh, iv.open_time(slot)).unwrap();
    w.put(&key, &kline(iv, later)).unwrap();
    w.put(&fresh, &kline(iv, slot)).unwrap();
    w.commit().unwrap();
    w.put(&fresh, &kline(iv, slot + 1)).unwrap();
    w.commit().unwrap();
    w.close().unwrap();
    drop(store);
    // A new process's view: every block verified on first read.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.verify().unwrap(), vec![], "no checksum problem");
    let s = store.series(&key).unwrap().unwrap();
    assert_eq!(s.at(iv.open_time(later)).unwrap(), Some(kline(iv, later)));
    assert_eq!(s.at(iv.open_time(slot)).unwrap(), Some(kline(iv, slot)));
    let f = store.series(&fresh).unwrap().unwrap();
    assert_eq!(
        f.range(iv.open_time(slot), iv.open_time(slot + 1)).unwrap(),
        vec![kline(iv, slot), kline(iv, slot + 1)]
    );
}
