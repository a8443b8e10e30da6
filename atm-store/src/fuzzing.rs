//! Entry points shared by the fuzz targets in `fuzz/` and the regression
//! test that replays their corpora on stable Rust. Each must return (never
//! panic, never crash) whatever bytes it is given; a failure to set up the
//! input (a harness bug) panics loudly instead of passing silently.
#![allow(clippy::expect_used)]

use std::path::Path;

use crate::{Interval, Kline, Market, Precision, SeriesKey, Store, StoreOptions};

/// The kline CSV parser.
#[cfg(feature = "import")]
pub fn csv(data: &[u8]) {
    let _ = crate::import::parse_csv(data, Path::new("fuzz.csv"), Precision::F32, |_, _| Ok(()));
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = crate::import::parse_file_name(s);
    }
}

/// The export manifest reader (`_atm_export.json` of `atm export`): what
/// parses is written back to something that parses again.
#[cfg(feature = "parquet")]
pub fn export_manifest(data: &[u8]) {
    crate::export::fuzz_manifest(data);
}

/// The journal reader (crash recovery's input).
pub fn journal(data: &[u8]) {
    let _ = crate::journal::read_commits(data, Path::new("fuzz.wal"));
}

/// The registry and store-header decoders.
pub fn registry(data: &[u8]) {
    let _ = crate::registry::decode(data, Path::new("fuzz.registry"));
    let _ = crate::layout::StaticHeader::decode(data, Path::new("fuzz.kl"));
}

/// A series file damaged by the input: `data` is a list of (offset, byte)
/// pokes, 3 bytes each, applied to a small valid series file, which is then
/// opened, read and verified. Damage must surface as errors, never as a
/// panic, a crash or a torn value.
pub fn series_file(data: &[u8]) {
    let dir = tempfile_dir().expect("fuzz setup: a temporary directory");
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poke_and_read(&dir, data)));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "atm-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Builds the small valid series file, pokes it and reads it back. Setting
/// the file up must work (a failure there is a broken harness, not a
/// finding, and panics loudly); only what follows the damage may fail.
fn poke_and_read(dir: &Path, data: &[u8]) {
    let store = Store::open(
        dir,
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .expect("fuzz setup: creating the store");
    let key = SeriesKey::parse(Market::CoinM, "BTCUSD_PERP", Interval::Mo1)
        .expect("fuzz setup: the series key");
    {
        let mut w = store.writer().expect("fuzz setup: the writer");
        let ks: Vec<Kline> = (0..40u64)
            .map(|m| Kline {
                open_time: Interval::Mo1.open_time(m),
                close_time: Interval::Mo1.close_time(m),
                values: [m as f64; 8],
                trades: m as u32,
            })
            .collect();
        w.put_many(&key, &ks).expect("fuzz setup: staging klines");
        w.mark_missing(
            &key,
            Interval::Mo1.open_time(50),
            Interval::Mo1.open_time(60),
        )
        .expect("fuzz setup: marking missing");
        w.commit().expect("fuzz setup: committing");
    }
    let path = dir.join("cm/1mo/BTCUSD_PERP.kl");
    let mut bytes = std::fs::read(&path).expect("fuzz setup: reading the series file");
    let len = bytes.len();
    // Offsets land in the interesting first pages and the start of each region.
    for poke in data.chunks_exact(3) {
        let off = ((poke[0] as usize) << 8 | poke[1] as usize) * 16 % len;
        bytes[off] ^= poke[2];
    }
    if data.len() % 3 == 1 {
        bytes.truncate(len / 2);
    }
    std::fs::write(&path, &bytes).expect("fuzz setup: writing the damaged file");
    let store = match Store::open(dir, StoreOptions::default()) {
        Ok(s) => s,
        Err(_) => return,
    };
    let _ = store.verify();
    if let Ok(Some(s)) = store.series(&key) {
        let _ = s.stats();
        let _ = s.latest();
        let _ = s.tail(5);
        let _ = s.coverage(0, i64::MAX);
        if let Ok(ks) = s.range(0, i64::MAX) {
            // What is served must be what was written.
            for k in ks {
                let m = Interval::Mo1.slot_of(k.open_time).unwrap_or(0);
                assert!(
                    k.values == [m as f64; 8] && k.trades == m as u32,
                    "served a damaged kline {k:?}"
                );
            }
        }
    }
}
