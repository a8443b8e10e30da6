//! `atm sync` end to end: the real binary against `atm sim serve` over
//! loopback, with faults on; the store must equal the simulator's ground
//! truth exactly, known-missing ranges included, also after SIGKILLs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{atm, get, sim, Sim, ATM};

/// Every series of the store equals the ground truth: same klines (values
/// rounded once to f32), and every other slot between the first kline and
/// the last stored one known-missing.
fn assert_equals_truth(store: &Path, sim: &Sim, series: &[(&str, &str, &str)]) {
    let info: Value =
        serde_json::from_slice(&atm(store, &["info", "--format", "json"]).stdout).unwrap();
    for &(market, symbol, interval) in series {
        let s =
            info.as_array().unwrap().iter().find(|s| {
                s["market"] == market && s["symbol"] == symbol && s["interval"] == interval
            });
        let s = s.unwrap_or_else(|| panic!("{market} {symbol} {interval} not stored: {info}"));
        let (first, last) = (
            s["first_open_time"].as_i64().unwrap(),
            s["last_open_time"].as_i64().unwrap(),
        );
        let truth =
            get(&format!("{}/sim/v1/klines?market={market}&symbol={symbol}&interval={interval}&startTime=0&endTime={last}", sim.base));
        let truth = truth.as_array().unwrap();
        assert_eq!(
            truth.first().and_then(|r| r[0].as_i64()),
            Some(first),
            "{market} {symbol} {interval}: first kline"
        );
        assert_eq!(
            s["present"].as_u64(),
            Some(truth.len() as u64),
            "{market} {symbol} {interval}: present"
        );
        assert_eq!(
            s["unknown"], 0,
            "{market} {symbol} {interval}: every slot between first and last is known"
        );
        let out = atm(
            store,
            &[
                "query",
                "--market",
                market,
                "--symbol",
                symbol,
                "--interval",
                interval,
                "--format",
                "csv",
            ],
        );
        assert!(out.status.success());
        let csv = String::from_utf8(out.stdout).unwrap();
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), truth.len());
        for (got, want) in rows.iter().zip(truth) {
            let w = want.as_array().unwrap();
            assert_eq!(got[0], w[0].to_string(), "open time");
            for (g, i) in [
                (1, 1),
                (2, 2),
                (3, 3),
                (4, 4),
                (5, 5),
                (7, 7),
                (9, 9),
                (10, 10),
            ] {
                let want_f32: f32 = w[i].as_str().unwrap().parse().unwrap();
                assert_eq!(
                    got[g].parse::<f32>().unwrap(),
                    want_f32,
                    "{market} {symbol} {interval} {}: column {g}",
                    w[0]
                );
            }
            assert_eq!(got[8], w[8].to_string(), "trades");
        }
    }
}

// (This universe's BTCUSD_PERP is not trading yet; ETHUSD_PERP has a relisting gap.)
const SERIES: [(&str, &str, &str); 6] = [
    ("spot", "BTCUSDT", "1h"),
    ("spot", "ETHUSDT", "1d"),
    ("um", "BTCUSDT", "1h"),
    ("um", "ETHUSDT", "1d"),
    ("cm", "ETHUSD_PERP", "1h"),
    ("cm", "ETHUSD_PERP", "1d"),
];

#[test]
fn sync_with_faults_equals_the_truth_and_a_second_run_fetches_nothing() {
    let sim = sim(&[
        "--faults",
        "http5xx=0.05,reset=0.03,slow=0.02:100ms,malformed=0.02,html=0.02",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "sync",
        "--exchange",
        &sim.base,
        "--symbols",
        "BTCUSDT,ETHUSDT,BTCUSD_PERP,ETHUSD_PERP",
        "--intervals",
        "1h,1d",
        "--format",
        "json",
    ];
    let out = atm(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "klines_written",
        "requests",
        "weight",
        "retries",
        "http429",
        "known_missing_slots",
        "elapsed_s",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}: {summary}");
    }
    assert!(summary["klines_written"].as_u64().unwrap() > 10_000);
    assert!(
        summary["retries"].as_u64().unwrap() > 0,
        "faults were on: {summary}"
    );
    let stats = get(&format!("{}/sim/v1/stats", sim.base));
    assert_eq!(
        stats["rest"]["spot"]["http429"], 0,
        "the budget never overran the limit"
    );
    assert_eq!(stats["rest"]["um"]["http429"], 0);
    assert_eq!(
        summary["http429"].as_u64(),
        stats["faults"]["http429"].as_u64(),
        "every 429 seen was an injected one"
    );
    let sync_series: Vec<(&str, &str, &str)> = SERIES.to_vec();
    assert_equals_truth(dir.path(), &sim, &sync_series);
    // Again: only the exchangeInfo requests, no kline request for what is stored.
    let before = get(&format!("{}/sim/v1/stats", sim.base));
    let out = atm(dir.path(), &args);
    assert!(out.status.success());
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        again["first_klines_found"], 0,
        "first klines are never probed twice"
    );
    let after = get(&format!("{}/sim/v1/stats", sim.base));
    let kline_requests = |s: &Value| {
        s["rest"]["spot"]["requests"].as_u64().unwrap()
            + s["rest"]["um"]["requests"].as_u64().unwrap()
            + s["rest"]["cm"]["requests"].as_u64().unwrap()
    };
    // Three exchangeInfo requests, a few faulted retries, and the klines closed since the first run.
    assert!(
        kline_requests(&after) - kline_requests(&before) < 20,
        "{again}"
    );
}

#[test]
fn killed_syncs_resume_to_the_same_store() {
    // 5m klines since 2025-06: enough pages to kill the sync mid-way.
    let sim = sim(&["--faults", "http5xx=0.02,reset=0.02"]);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "sync",
        "--exchange",
        &sim.base,
        "--markets",
        "spot,um",
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--intervals",
        "5m",
        "--since",
        "2025-06-01",
        "--workers",
        "4",
    ];
    for delay_ms in [300u64, 700, 1100] {
        let mut child = Command::new(ATM)
            .arg("--store")
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(
            atm(dir.path(), &["verify"]).status.success(),
            "verify after a SIGKILL"
        );
    }
    let out = atm(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let series = [
        ("spot", "BTCUSDT", "5m"),
        ("spot", "ETHUSDT", "5m"),
        ("um", "BTCUSDT", "5m"),
        ("um", "ETHUSDT", "5m"),
    ];
    // Compare from the --since bound on: the truth starts there too.
    let info: Value =
        serde_json::from_slice(&atm(dir.path(), &["info", "--format", "json"]).stdout).unwrap();
    for &(market, symbol, interval) in &series {
        let s = info
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["market"] == market && s["symbol"] == symbol && s["interval"] == interval)
            .unwrap();
        let (first, last) = (
            s["first_open_time"].as_i64().unwrap(),
            s["last_open_time"].as_i64().unwrap(),
        );
        let truth = get(&format!(
            "{}/sim/v1/klines?market={market}&symbol={symbol}&interval={interval}&startTime={first}&endTime={last}",
            sim.base
        ));
        assert_eq!(
            s["present"].as_u64(),
            Some(truth.as_array().unwrap().len() as u64),
            "{market} {symbol}"
        );
        assert_eq!(s["unknown"], 0);
        assert!(first >= 1_748_736_000_000, "nothing before --since");
    }
}

#[test]
fn bad_selections_are_clear_errors() {
    let sim = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    for (args, want) in [
        (vec!["--symbols", "NOPEUSDT"], "unknown symbol NOPEUSDT"),
        (vec!["--intervals", "7m"], "unknown interval"),
        (vec!["--since", "yesterday"], "yesterday"),
    ] {
        let out = atm(
            dir.path(),
            &[
                &["sync", "--exchange", &sim.base, "--markets", "spot"][..],
                &args,
            ]
            .concat(),
        );
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(want),
            "{args:?}: {err}"
        );
    }
    let out = atm(dir.path(), &["sync", "--exchange", "ftp://x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--exchange must be"));
}

#[test]
fn dry_run_plans_and_markets_lists() {
    let sim = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = atm(
        dir.path(),
        &[
            "sync",
            "--exchange",
            &sim.base,
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1d",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["pages"].as_u64().unwrap() >= 2 && plan["klines_written"] == 0);
    assert!(plan["planned_klines"].as_u64().unwrap() > 100);
    // The dry run stored the markets and the first klines.
    let out = atm(
        dir.path(),
        &[
            "markets",
            "--exchange",
            &sim.base,
            "--markets",
            "spot,um",
            "--format",
            "json",
        ],
    );
    let markets: Value = serde_json::from_slice(&out.stdout).unwrap();
    let truth = get(&format!("{}/sim/v1/symbols", sim.base));
    for m in markets.as_array().unwrap() {
        for key in ["market", "symbol", "status", "base", "quote", "first_kline"] {
            assert!(m.get(key).is_some(), "{m}: {key}");
        }
        if m["symbol"] == "BTCUSDT" {
            let t = truth
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["market"] == m["market"] && t["symbol"] == "BTCUSDT")
                .unwrap();
            assert_eq!(m["first_kline"], t["first_kline"], "{m}");
        }
    }
    assert_eq!(markets.as_array().unwrap().len(), 12);
}

fn truth_kline(sim: &Sim, market: &str, symbol: &str, interval: &str, t: i64) -> atm_store::Kline {
    let rows = get(&format!("{}/sim/v1/klines?market={market}&symbol={symbol}&interval={interval}&startTime={t}&endTime={t}", sim.base));
    let row: Vec<String> = rows[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
        .collect();
    let refs: Vec<&str> = row.iter().map(String::as_str).collect();
    atm_store::Kline::parse_fields(&refs, atm_store::Precision::F32).unwrap()
}

#[test]
fn verify_against_the_exchange_finds_and_repairs_what_differs() {
    let sim = sim(&["--faults", "http5xx=0.03,malformed=0.03,html=0.02"]);
    let dir = tempfile::tempdir().unwrap();
    const H: i64 = 3_600_000;
    let until = 1_735_689_600_000; // 2025-01-01: the stored range stops here, the truth goes on
    let out = atm(
        dir.path(),
        &[
            "sync",
            "--exchange",
            &sim.base,
            "--markets",
            "spot",
            "--symbols",
            "BTCUSDT",
            "--intervals",
            "1h",
            "--until",
            &until.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = atm(
        dir.path(),
        &["verify", "--exchange", &sim.base, "--markets", "spot"],
    );
    let text = String::from_utf8_lossy(&clean.stdout);
    assert!(
        clean.status.success() && text.contains("0 differ, 0 missing, 0 extra, 0 damaged blocks"),
        "{text}"
    );
    let sampled = atm(
        dir.path(),
        &[
            "verify",
            "--exchange",
            &sim.base,
            "--sample",
            "3",
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_slice(&sampled.stdout).unwrap();
    assert_eq!(v["pages"], 3, "{v}");

    // Damage the store three ways: a kline changed, slots wrongly recorded
    // known-missing, and a flipped byte in an old block.
    let key =
        atm_store::SeriesKey::parse(atm_store::Market::Spot, "BTCUSDT", atm_store::Interval::H1)
            .unwrap();
    let changed_at = until - 100 * H;
    {
        let store = atm_store::Store::open(dir.path(), atm_store::StoreOptions::default()).unwrap();
        let mut w = store.writer().unwrap();
        let mut k = truth_kline(&sim, "spot", "BTCUSDT", "1h", changed_at);
        k.values[3] += 1.0;
        w.put(&key, &k).unwrap();
        w.mark_missing(&key, until + H, until + 10 * H).unwrap();
        w.put(
            &key,
            &truth_kline(&sim, "spot", "BTCUSDT", "1h", until + 11 * H),
        )
        .unwrap();
        w.commit().unwrap();
        w.close().unwrap();
    }
    let info: Value =
        serde_json::from_slice(&atm(dir.path(), &["info", "--format", "json"]).stdout).unwrap();
    let first = info[0]["first_open_time"].as_i64().unwrap();
    let file = atm_store::Store::open(dir.path(), atm_store::StoreOptions::default())
        .unwrap()
        .series(&key)
        .unwrap()
        .unwrap()
        .path()
        .to_path_buf();
    let layout = atm_store::layout::Layout::new(atm_store::Interval::H1, atm_store::Precision::F32);
    let slot = atm_store::Interval::H1.slot_of(first).unwrap() + 10;
    let mut bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    bytes[(layout.col_off[1] + slot * 4) as usize] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();

    let out = atm(
        dir.path(),
        &["verify", "--exchange", &sim.base, "--markets", "spot"],
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("close differs"), "{text}");
    assert_eq!(
        text.matches("recorded known-missing, but the exchange has this kline")
            .count(),
        10,
        "{text}"
    );
    assert_eq!(
        text.matches("damaged: the block fails its checksum")
            .count(),
        1,
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repair"));

    let out = atm(
        dir.path(),
        &[
            "verify",
            "--exchange",
            &sim.base,
            "--markets",
            "spot",
            "--repair",
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        atm(dir.path(), &["verify"]).status.success(),
        "the files are whole again"
    );
    let again = atm(
        dir.path(),
        &["verify", "--exchange", &sim.base, "--markets", "spot"],
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_equals_truth(dir.path(), &sim, &[("spot", "BTCUSDT", "1h")]);
}
