//! End-to-end tests of the `atm` binary: import, query, info, verify, and
//! every kind of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SHARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/binance/klines_csv"
);

fn atm(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atm"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn ok(store: &Path, args: &[&str]) -> String {
    let o = atm(store, args);
    assert!(
        o.status.success(),
        "atm {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a failing command; returns its one-line stderr.
fn fails(store: &Path, args: &[&str]) -> String {
    let o = atm(store, args);
    assert!(!o.status.success(), "atm {args:?} should fail");
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one error line, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

/// Copies the shared samples under Binance's names and directories.
fn samples(dir: &Path) -> Vec<(PathBuf, &'static str, &'static str, &'static str)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(SHARED).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let (market, sub, rest) = if let Some(r) = name.strip_prefix("um_") {
            ("um", "futures/um/monthly/klines", r)
        } else if let Some(r) = name.strip_prefix("spot_") {
            ("spot", "spot/daily/klines", r)
        } else {
            continue;
        };
        let binance_name = rest.replace(".issue386_excerpt", "");
        let dst = dir.join(sub).join(&binance_name);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&p, &dst).unwrap();
        let (sym, iv) = {
            let mut parts = binance_name.split('-');
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            )
        };
        out.push((
            dst,
            market,
            Box::leak(sym.into_boxed_str()) as &str,
            Box::leak(iv.into_boxed_str()) as &str,
        ));
    }
    out.sort();
    out
}

fn read_text(p: &Path) -> String {
    let bytes = std::fs::read(p).unwrap();
    if p.extension().is_some_and(|e| e == "gz") {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

#[test]
fn every_shared_csv_round_trips_exactly_through_query() {
    let tmp = tempfile::tempdir().unwrap();
    let files = samples(&tmp.path().join("in"));
    assert!(files.len() >= 6);
    let store = tmp.path().join("store");
    ok(&store, &["import", tmp.path().join("in").to_str().unwrap()]);
    for (path, market, sym, iv) in files {
        let out = ok(
            &store,
            &[
                "query",
                "--market",
                market,
                "--symbol",
                sym,
                "--interval",
                iv,
                "--format",
                "csv",
            ],
        );
        let mut got = out.lines();
        assert_eq!(
            got.next().unwrap(),
            "open_time,open,high,low,close,volume,close_time,quote_volume,trades,taker_buy_base,taker_buy_quote"
        );
        let mut n = 0;
        for line in read_text(&path)
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        {
            let want: Vec<&str> = line.split(',').collect();
            let have_line = got
                .next()
                .unwrap_or_else(|| panic!("{sym}: missing row for {line}"));
            let have: Vec<&str> = have_line.split(',').collect();
            let ms = |s: &str| {
                let v: i64 = s.parse().unwrap();
                if v >= 10_000_000_000_000 {
                    v / 1000
                } else {
                    v
                }
            };
            assert_eq!(have[0].parse::<i64>().unwrap(), ms(want[0]));
            assert_eq!(have[6].parse::<i64>().unwrap(), ms(want[6]));
            assert_eq!(have[8], want[8], "trades");
            // value = the decimal string rounded once to f32, printed so it reads back exactly.
            for (h, w) in [
                (1, 1),
                (2, 2),
                (3, 3),
                (4, 4),
                (5, 5),
                (7, 7),
                (9, 9),
                (10, 10),
            ] {
                assert_eq!(
                    have[h].parse::<f32>().unwrap(),
                    want[w].parse::<f32>().unwrap(),
                    "{sym} {line} col {w}"
                );
                assert!(
                    !have[h].contains('e') && !have[h].contains('E'),
                    "no exponent: {}",
                    have[h]
                );
            }
            n += 1;
        }
        assert!(got.next().is_none(), "{sym}: extra rows");
        assert!(n > 0);
    }
    assert!(ok(&store, &["verify"]).is_empty());
}

#[test]
fn import_is_idempotent_and_info_is_deterministic_json() {
    let tmp = tempfile::tempdir().unwrap();
    samples(&tmp.path().join("in"));
    let store = tmp.path().join("store");
    ok(&store, &["import", tmp.path().join("in").to_str().unwrap()]);
    let first = ok(&store, &["info", "--format", "json"]);
    let summary = ok(&store, &["import", tmp.path().join("in").to_str().unwrap()]);
    assert!(summary.contains(" 0 klines written"), "{summary}");
    assert_eq!(
        ok(&store, &["info", "--format", "json"]),
        first,
        "importing twice changes nothing"
    );
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    let arr = v.as_array().unwrap();
    let fil = arr.iter().find(|o| o["symbol"] == "FILUSDT").unwrap();
    let keys: Vec<&str> = fil
        .as_object()
        .unwrap()
        .keys()
        .map(|s| s.as_str())
        .collect();
    for k in [
        "market",
        "symbol",
        "interval",
        "first_open_time",
        "last_open_time",
        "present",
        "missing",
        "unknown",
        "bytes",
    ] {
        assert!(keys.contains(&k), "{k}");
    }
    assert_eq!(fil["market"], "um");
    assert_eq!(fil["interval"], "1m");
    assert_eq!(fil["first_open_time"], 1_706_745_600_000i64);
    assert_eq!(
        fil["last_open_time"],
        1_706_745_600_000i64 + (41_760 - 1) * 60_000
    );
    assert_eq!(
        (
            fil["present"].as_u64(),
            fil["missing"].as_u64(),
            fil["unknown"].as_u64()
        ),
        (Some(41_760), Some(0), Some(0))
    );
    assert!(fil["bytes"].as_u64().unwrap() > 0);
}

#[test]
fn query_ranges_tails_and_formats() {
    let tmp = tempfile::tempdir().unwrap();
    samples(&tmp.path().join("in"));
    let store = tmp.path().join("store");
    ok(&store, &["import", tmp.path().join("in").to_str().unwrap()]);
    let q = |extra: &[&str]| {
        let mut a = vec![
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "1m",
        ];
        a.extend_from_slice(extra);
        ok(&store, &a)
    };
    // Both bounds inclusive, in all three time forms.
    let csv = q(&[
        "--from",
        "2021-11-27T00:02:00Z",
        "--to",
        "1637971440000",
        "--format",
        "csv",
    ]);
    assert_eq!(csv.lines().count(), 1 + 3, "{csv}");
    assert_eq!(
        q(&["--from", "2021-11-27", "--format", "csv"])
            .lines()
            .count(),
        11
    );
    let tail = q(&["--tail", "2", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&tail).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["open_time"], 1_637_971_740_000i64);
    assert!(v[1]["close"].is_number() && v[1]["trades"].is_u64());
    let table = q(&["--tail", "1"]);
    assert!(table.contains("2021-11-27 00:09:00"), "{table}");
    assert_eq!(
        q(&["--from", "2030-01-01", "--format", "json"]).trim(),
        "[]"
    );
}

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

const ROW: &str = "1637971200000,0.00002253,0.00002254,0.00002251,0.00002253,5305,1637971259999,0.11951953,14,3051,0.06874034,0\n";

#[test]
fn bad_rows_name_file_and_line_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let good = tmp.path().join("spot/ADABTC-1m-2021-11-27.csv");
    write(&good, ROW);
    ok(&store, &["import", good.to_str().unwrap()]);
    let before = ok(&store, &["info", "--format", "json"]);
    let second = "1637971260000,0.00002253,0.00002254,0.00002251,0.00002253,5305,1637971319999,0.11951953,14,3051,0.06874034,0";
    let cases = [
        ("empty", String::new(), "empty file"),
        ("columns", format!("{ROW}1,2,3\n"), ":2:"),
        (
            "nonnumeric",
            format!("{ROW}{}\n", second.replace("5305", "12x")),
            "volume",
        ),
        (
            "negative",
            format!(
                "{ROW}{}\n",
                second.replacen("1637971260000", "-1637971260000", 1)
            ),
            "negative",
        ),
        (
            "closebefore",
            format!(
                "{ROW}{}\n",
                second.replace("1637971319999", "1637971200000")
            ),
            "before open_time",
        ),
        (
            "duplicate",
            format!("{ROW}{}\n", ROW.replace("5305", "1")),
            "second, different kline",
        ),
        (
            "wronginterval",
            "1637971200000,1,1,1,1,1,1637974799999,1,1,1,1,0\n".to_string(),
            "interval",
        ),
    ];
    for (name, body, needle) in cases {
        let p = tmp
            .path()
            .join(format!("bad/{name}/spot/XRPBTC-1m-2021-11-27.csv"));
        write(&p, &body);
        let err = fails(&store, &["import", p.to_str().unwrap()]);
        assert!(err.contains("XRPBTC-1m-2021-11-27.csv"), "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
        assert_eq!(ok(&store, &["info", "--format", "json"]).replace(",{\"market\":\"spot\",\"symbol\":\"XRPBTC\",\"interval\":\"1m\",\"first_open_time\":1637971200000,\"last_open_time\":1637971200000,\"present\":1,\"missing\":0,\"unknown\":0,\"bytes\":188416}", ""), before, "{name}");
    }
    assert!(ok(&store, &["verify"]).is_empty());
}

#[test]
fn hostile_names_and_missing_market_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = tmp.path().join("spot/BTC.USD-1m-2021-11-27.csv");
    write(&p, ROW);
    assert!(fails(&store, &["import", p.to_str().unwrap()]).contains("invalid symbol"));
    let p = tmp.path().join("elsewhere/ADABTC-1m-2021-11-27.csv");
    write(&p, ROW);
    assert!(fails(&store, &["import", p.to_str().unwrap()]).contains("--market"));
    ok(&store, &["import", "--market", "spot", p.to_str().unwrap()]);
    for sym in ["../../etc", "a/b", "A B", ".hidden"] {
        let err = fails(
            &store,
            &[
                "query",
                "--market",
                "spot",
                "--symbol",
                sym,
                "--interval",
                "1m",
            ],
        );
        assert!(err.contains("invalid symbol"), "{sym}: {err}");
    }
    assert!(fails(
        &store,
        &[
            "query",
            "--market",
            "um",
            "--symbol",
            "ADABTC",
            "--interval",
            "1s"
        ]
    )
    .contains("spot only"));
    assert!(fails(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "7m"
        ]
    )
    .contains("unknown interval"));
    assert!(fails(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "NOPE",
            "--interval",
            "1m"
        ]
    )
    .contains("no series"));
    assert!(fails(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "1m",
            "--from",
            "soon"
        ]
    )
    .contains("cannot read time"));
    assert!(fails(&tmp.path().join("nostore"), &["info"]).contains("not found"));
}

#[test]
fn zips_are_checked_against_their_checksum_file() {
    use sha2::Digest;
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let zp = tmp
        .path()
        .join("data/spot/daily/klines/ADABTC/1m/ADABTC-1m-2021-11-27.zip");
    std::fs::create_dir_all(zp.parent().unwrap()).unwrap();
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zp).unwrap());
        z.start_file(
            "ADABTC-1m-2021-11-27.csv",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.write_all(ROW.as_bytes()).unwrap();
        z.finish().unwrap();
    }
    let sum: String = sha2::Sha256::digest(std::fs::read(&zp).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cp = PathBuf::from(format!("{}.CHECKSUM", zp.display()));
    std::fs::write(&cp, format!("{}  ADABTC-1m-2021-11-27.zip", "0".repeat(64))).unwrap();
    let err = fails(&store, &["import", zp.to_str().unwrap()]);
    assert!(
        err.contains("CHECKSUM") && err.contains("does not match"),
        "{err}"
    );
    std::fs::write(&cp, format!("{sum}  ADABTC-1m-2021-11-27.zip")).unwrap();
    ok(
        &store,
        &["import", tmp.path().join("data").to_str().unwrap()],
    );
    let out = ok(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "1m",
            "--format",
            "csv",
        ],
    );
    assert_eq!(out.lines().count(), 2);
}

#[test]
fn unaligned_binance_klines_keep_their_exact_times() {
    // The 2018-02-08 outage: a truncated 1h kline and an unaligned one after it.
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = tmp.path().join("spot/BTCUSDT-1h-2018-02.csv");
    let rows = "1518048000000,8000,8100,7900,8050,10,1518049694788,80000,100,5,40000,0\n\
                1518168494789,8100,8200,8000,8150,20,1518170399999,160000,200,10,80000,0\n\
                1518170400000,8150,8250,8050,8200,30,1518173999999,240000,300,15,120000,0\n";
    write(&p, rows);
    ok(&store, &["import", p.to_str().unwrap()]);
    let out = ok(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1h",
            "--format",
            "csv",
        ],
    );
    let times: Vec<(String, String)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[6].to_string())
        })
        .collect();
    assert_eq!(
        times,
        vec![
            ("1518048000000".into(), "1518049694788".into()),
            ("1518168494789".into(), "1518170399999".into()),
            ("1518170400000".into(), "1518173999999".into())
        ]
    );
    // Import twice: still idempotent with exceptions.
    assert!(ok(&store, &["import", p.to_str().unwrap()]).contains(" 0 klines written"));
}

fn series_file(store: &Path) -> PathBuf {
    store.join("spot/1m/ADABTC.kl")
}

fn damaged_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = tmp.path().join("spot/ADABTC-1m-2021-11-27.csv");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::copy(format!("{SHARED}/spot_ADABTC-1m-2021-11-27.csv"), &p).unwrap();
    ok(&store, &["import", p.to_str().unwrap()]);
    let p = tmp.path().join("spot/XRPBTC-1m-2021-11-27.csv");
    write(&p, ROW);
    ok(&store, &["import", p.to_str().unwrap()]);
    (tmp, store)
}

#[test]
fn a_flipped_byte_fails_verify_and_query_but_not_other_series() {
    let (_tmp, store) = damaged_store();
    let f = series_file(&store);
    // The close column of the first kline: find its offset from the layout.
    let layout = atm_store::layout::Layout::new(atm_store::Interval::M1, atm_store::Precision::F32);
    let slot = atm_store::Interval::M1.slot_of(1_637_971_200_000).unwrap();
    let off = layout.col_off[3] + slot * 4;
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[off as usize] ^= 0x01;
    std::fs::write(&f, &bytes).unwrap();
    let o = atm(&store, &["verify"]);
    assert!(!o.status.success());
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert!(
        stdout.contains("ADABTC.kl")
            && stdout.contains("spot/ADABTC/1m")
            && stdout.contains("close"),
        "{stdout}"
    );
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("error: ") && err.contains("spot/ADABTC/1m"),
        "{err}"
    );
    let err = fails(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "1m",
        ],
    );
    assert!(err.contains("checksum mismatch"), "{err}");
    ok(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "XRPBTC",
            "--interval",
            "1m",
        ],
    );
}

#[test]
fn truncated_and_foreign_files_are_refused_clearly() {
    let (_tmp, store) = damaged_store();
    let f = series_file(&store);
    let full = std::fs::read(&f).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
    file.set_len(full.len() as u64 / 2).unwrap();
    drop(file);
    let stdout = String::from_utf8(atm(&store, &["verify"]).stdout).unwrap();
    assert!(stdout.contains("truncated"), "{stdout}");
    assert!(fails(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "1m"
        ]
    )
    .contains("truncated"));
    std::fs::write(&f, b"hello, this is not a series file at all").unwrap();
    assert!(fails(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "1m"
        ]
    )
    .contains("truncated"));
    let mut newer = full.clone();
    newer[8] = 99;
    std::fs::write(&f, &newer).unwrap();
    let err = fails(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "1m",
        ],
    );
    assert!(
        err.contains("format version 99") && err.contains("upgrade"),
        "{err}"
    );
    newer[0] = b'X';
    std::fs::write(&f, &newer).unwrap();
    assert!(fails(
        &store,
        &[
            "query",
            "--market",
            "spot",
            "--symbol",
            "ADABTC",
            "--interval",
            "1m"
        ]
    )
    .contains("bad magic"));
    // The store header too.
    let mut head = std::fs::read(store.join("atm-store")).unwrap();
    head[8] = 7;
    std::fs::write(store.join("atm-store"), &head).unwrap();
    assert!(fails(&store, &["info"]).contains("format version 7"));
}

#[test]
fn compact_keeps_every_value_and_damage_in_cold_blocks_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    samples(&tmp.path().join("in"));
    let store = tmp.path().join("store");
    ok(&store, &["import", tmp.path().join("in").to_str().unwrap()]);
    let q = [
        "query",
        "--market",
        "um",
        "--symbol",
        "FILUSDT",
        "--interval",
        "1m",
        "--format",
        "csv",
    ];
    let before = ok(&store, &q);
    let info_before: serde_json::Value =
        serde_json::from_str(&ok(&store, &["info", "--format", "json"])).unwrap();
    let out = ok(&store, &["compact", "--market", "um"]);
    assert!(
        out.contains("compacted") && !out.contains("compacted 0 block"),
        "{out}"
    );
    assert_eq!(ok(&store, &q), before, "reads are transparent");
    let info_after: serde_json::Value =
        serde_json::from_str(&ok(&store, &["info", "--format", "json"])).unwrap();
    let bytes = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|o| o["symbol"] == "FILUSDT")
            .unwrap()["bytes"]
            .as_u64()
            .unwrap()
    };
    assert!(bytes(&info_after) < bytes(&info_before), "smaller on disk");
    assert!(ok(&store, &["verify"]).is_empty());
    // Flip a byte inside a compressed frame.
    let klz = store.join("um/1m/FILUSDT.klz");
    let mut b = std::fs::read(&klz).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x20;
    std::fs::write(&klz, &b).unwrap();
    let o = atm(&store, &["verify"]);
    assert!(!o.status.success());
    assert!(String::from_utf8(o.stdout).unwrap().contains("FILUSDT"));
    assert!(fails(&store, &q).contains("FILUSDT"));
}

/// `atm import` killed with SIGKILL at several moments: `atm verify` is clean
/// right after (the dead writer's journal is replayed), and importing again
/// ends with exactly what a clean import gives.
#[test]
fn an_import_killed_midway_recovers_and_resumes_to_the_same_store() {
    let tmp = tempfile::tempdir().unwrap();
    samples(&tmp.path().join("in"));
    let input = tmp.path().join("in");
    let clean = tmp.path().join("clean");
    ok(&clean, &["import", input.to_str().unwrap()]);
    let want = ok(&clean, &["info", "--format", "json"]);
    let store = tmp.path().join("killed");
    for delay_ms in [5u64, 40, 90, 150, 250] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atm"))
            .arg("--store")
            .arg(&store)
            .args(["import", input.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if store.join("atm-store").exists() {
            let v = atm(&store, &["verify"]);
            assert!(
                v.status.success(),
                "verify after a kill at {delay_ms} ms: {}",
                String::from_utf8_lossy(&v.stdout)
            );
        }
    }
    ok(&store, &["import", input.to_str().unwrap()]);
    assert_eq!(ok(&store, &["info", "--format", "json"]), want);
    for (market, sym) in [("um", "FILUSDT"), ("um", "NEARUSDT"), ("spot", "ADABTC")] {
        let q = [
            "query",
            "--market",
            market,
            "--symbol",
            sym,
            "--interval",
            "1m",
            "--format",
            "csv",
        ];
        assert_eq!(ok(&store, &q), ok(&clean, &q), "{sym}");
    }
}
