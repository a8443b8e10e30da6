//! data.binance.vision on loopback: zips, checksums, listings and the
//! corrupt-archive fault, read back by atm-store's importer.

use std::io::Read;

use atm_sim::{SimConfig, SimServer, UniverseSpec};
use atm_store::import;
use serde_json::Value;
use sha2::{Digest, Sha256};

const NOW: i64 = 1_764_000_000_000; // 2025-11-24 16:00 UTC

fn sim(faults: &str) -> SimServer {
    let faults = faults.parse().unwrap();
    SimServer::start(SimConfig {
        universe: UniverseSpec::Generated(4),
        now: Some(NOW),
        time_scale: 1e-6,
        faults,
        ..SimConfig::default()
    })
    .unwrap()
}

fn fetch(sim: &SimServer, path: &str) -> (u16, Vec<u8>) {
    let r = reqwest::blocking::get(format!("{}{path}", sim.base_url())).unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

fn unzip(zip: &[u8]) -> (String, String) {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    assert_eq!(a.len(), 1);
    let mut f = a.by_index(0).unwrap();
    let name = f.name().unwrap().to_string();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    (name, s)
}

fn truth(sim: &SimServer, q: &str) -> Vec<Value> {
    reqwest::blocking::get(format!("{}/sim/v1/klines?{q}", sim.base_url()))
        .unwrap()
        .json::<Vec<Value>>()
        .unwrap()
}

/// A ground-truth row as the archive's CSV line (µs times on spot from 2025).
fn csv_line(row: &Value, micros: bool) -> String {
    let a = row.as_array().unwrap();
    let cell = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    let mut cells: Vec<String> = a.iter().map(cell).collect();
    if micros {
        cells[0] = format!("{}000", cells[0]);
        cells[6] = format!("{}999", cells[6]);
    }
    cells.join(",")
}

#[test]
fn daily_and_monthly_files_match_the_truth() {
    let sim = sim("");
    let day = "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-11-20.zip";
    let (status, zip) = fetch(&sim, day);
    assert_eq!(status, 200);
    let (name, csv) = unzip(&zip);
    assert_eq!(name, "BTCUSDT-1m-2025-11-20.csv");
    let want: Vec<String> = truth(
        &sim,
        "market=spot&symbol=BTCUSDT&interval=1m&startTime=1763596800000&endTime=1763683199999",
    )
    .iter()
    .map(|r| csv_line(r, true))
    .collect();
    assert_eq!(want.len(), 1440);
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        want,
        "spot: no header, microseconds"
    );
    assert!(csv.ends_with('\n'));
    let (status, sum) = fetch(&sim, &format!("{day}.CHECKSUM"));
    assert_eq!(status, 200);
    let sum = String::from_utf8(sum).unwrap();
    let hex: String = Sha256::digest(&zip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sum, format!("{hex}  BTCUSDT-1m-2025-11-20.zip"));
    // Zips are built once: the same bytes again.
    assert_eq!(fetch(&sim, day).1, zip);
    // Futures monthly files: a header, milliseconds, `1mo` for 1M.
    let (status, zip) = fetch(
        &sim,
        "/data/futures/um/monthly/klines/ETHUSDT/1d/ETHUSDT-1d-2025-10.zip",
    );
    assert_eq!(status, 200);
    let (_, csv) = unzip(&zip);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore")
    );
    let want: Vec<String> = truth(
        &sim,
        "market=um&symbol=ETHUSDT&interval=1d&startTime=1759276800000&endTime=1761955199999",
    )
    .iter()
    .map(|r| csv_line(r, false))
    .collect();
    assert_eq!(lines.collect::<Vec<_>>(), want);
    assert_eq!(
        fetch(
            &sim,
            "/data/futures/cm/monthly/klines/BTCUSD_PERP/1mo/BTCUSD_PERP-1mo-2025-10.zip"
        )
        .0,
        200
    );
    // Not yet published, never existing, or not a file of this layout: 404.
    for missing in [
        "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-11-24.zip",
        "/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-11.zip",
        "/data/spot/daily/klines/BTCUSDT/1M/BTCUSDT-1M-2025-11-20.zip",
        "/data/spot/daily/klines/BTCUSDT/1w/BTCUSDT-1w-2025-11-17.zip",
        "/data/futures/um/daily/klines/BTCUSDT/1s/BTCUSDT-1s-2025-11-20.zip",
        "/data/spot/daily/klines/NOPE/1m/NOPE-1m-2025-11-20.zip",
        "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-1999-01-01.zip",
    ] {
        assert_eq!(fetch(&sim, missing).0, 404, "{missing}");
    }
    let stats: Value = reqwest::blocking::get(format!("{}/sim/v1/stats", sim.base_url()))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["archive"]["zips"], 4);
    assert_eq!(stats["archive"]["checksums"], 1);
    assert_eq!(
        stats["rest"]["spot"]["requests"], 0,
        "archives carry no weight"
    );
}

#[test]
fn s3_listing_pages_through_folders_and_files() {
    let sim = sim("");
    let list = |q: &str| String::from_utf8(fetch(&sim, &format!("/?{q}")).1).unwrap();
    let top = list("prefix=data/&delimiter=/");
    assert!(
        top.starts_with("<?xml")
            && top.contains("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">")
    );
    assert!(top.contains("<CommonPrefixes><Prefix>data/spot/</Prefix></CommonPrefixes>"));
    let syms = list("prefix=data/futures/um/daily/klines/&delimiter=/");
    assert!(syms.contains("<Prefix>data/futures/um/daily/klines/BTCUSDT/</Prefix>"));
    let ivs = list("prefix=data/spot/daily/klines/BTCUSDT/&delimiter=/");
    assert!(ivs.contains("BTCUSDT/1s/") && !ivs.contains("BTCUSDT/1w/"));
    // Daily files of years: more than one page; the marker continues.
    let page = list("prefix=data/spot/daily/klines/BTCUSDT/1d/&delimiter=/");
    assert!(
        page.contains("<IsTruncated>true</IsTruncated>"),
        "{}",
        &page[..400]
    );
    let next = page
        .split("<NextMarker>")
        .nth(1)
        .and_then(|s| s.split("</NextMarker>").next())
        .unwrap();
    let page2 = list(&format!(
        "prefix=data/spot/daily/klines/BTCUSDT/1d/&delimiter=/&marker={next}"
    ));
    assert!(page2.contains("<Key>data/spot/daily/klines/BTCUSDT/1d/BTCUSDT-1d-"));
    assert!(!page2.contains(&format!("<Key>{next}</Key>")));
    assert!(page.contains(".zip.CHECKSUM</Key>"));
}

#[test]
fn imported_by_atm_store_and_corruption_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let save = |sim: &SimServer, rel: &str| {
        let path = dir.path().join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for suffix in ["", ".CHECKSUM"] {
            let (status, body) = fetch(sim, &format!("{rel}{suffix}"));
            assert_eq!(status, 200);
            std::fs::write(format!("{}{suffix}", path.display()), body).unwrap();
        }
        path
    };
    let good = sim("");
    let zip = save(
        &good,
        "/data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-11-20.zip",
    );
    assert!(import::verify_checksum(&zip).unwrap());
    let plan = import::plan(&[dir.path().to_path_buf()], None).unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].key.market, atm_store::Market::UsdM);
    let bad = sim("archive_corrupt=1");
    let zip = save(
        &bad,
        "/data/spot/daily/klines/ETHUSDT/1h/ETHUSDT-1h-2025-11-20.zip",
    );
    let err = import::verify_checksum(&zip).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    // The corrupt zip is still a valid zip: one close moved by a tick.
    let (_, csv) = unzip(&std::fs::read(&zip).unwrap());
    let (_, good_csv) = unzip(
        &fetch(
            &good,
            "/data/spot/daily/klines/ETHUSDT/1h/ETHUSDT-1h-2025-11-20.zip",
        )
        .1,
    );
    let diff = csv
        .lines()
        .zip(good_csv.lines())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(diff, 1);
    let stats: Value = reqwest::blocking::get(format!("{}/sim/v1/stats", bad.base_url()))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["faults"]["archive_corrupt"], 1);
}
