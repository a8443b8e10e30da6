//! Every released on-disk format stays readable: the fixtures under
//! `tests/fixtures/v<N>/` were written by the release that introduced format N.

use std::path::{Path, PathBuf};

use atm_store::{Market, Store, StoreOptions};

#[path = "support/fixture_data.rs"]
mod fixture_data;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dst = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).unwrap();
        }
    }
}

fn fixture(v: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{v}"))
}

#[test]
fn format_v1_fixture_reads_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(1), tmp.path());
    let store = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert!(store.verify().unwrap().is_empty());
    for (key, klines, missing) in fixture_data::series() {
        let s = store.series(&key).unwrap().unwrap();
        let want: Vec<_> = klines
            .iter()
            .map(|k| atm_store::Kline {
                values: k.values.map(|v| v as f32 as f64),
                ..*k
            })
            .collect();
        assert_eq!(s.range(i64::MIN, i64::MAX).unwrap(), want, "{key}");
        let gap = missing.map(|(a, z)| s.counts(a, z).unwrap().1).unwrap_or(0);
        assert_eq!(s.stats().unwrap().missing, gap);
    }
    assert_eq!(
        store.registry(Market::CoinM).unwrap().symbols["BTCUSD_PERP"].status,
        "TRADING"
    );
}

#[test]
fn todays_writer_produces_the_v1_bytes() {
    // While the format version stays 1, writing the same data must give the
    // same series files byte for byte; a change of bytes needs a new version.
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(
        tmp.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .unwrap();
    fixture_data::write(&store).unwrap();
    for rel in [
        "atm-store",
        "spot/1mo/BTCUSDT.kl",
        "cm/1d/BTCUSD_PERP.kl",
        "cm/registry",
    ] {
        let a = std::fs::read(fixture(1).join(rel)).unwrap();
        let b = std::fs::read(tmp.path().join(rel)).unwrap();
        assert!(
            a == b,
            "{rel} differs from the v1 fixture: bump the format version and add a fixture"
        );
    }
}
