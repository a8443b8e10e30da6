//! The simulator over real loopback HTTP: status codes, headers, bodies,
//! rate limits, faults and the control API, each test on its own server.

use atm_sim::{SimConfig, SimServer, UniverseSpec};
use serde_json::Value;

const NOW: i64 = 1_764_000_000_000; // 2025-11-24 16:00 UTC

fn server(config: SimConfig) -> SimServer {
    SimServer::start(config).unwrap()
}

fn frozen(universe: UniverseSpec) -> SimConfig {
    // A clock that barely moves keeps every window of a test in one minute.
    SimConfig {
        universe,
        now: Some(NOW),
        time_scale: 1e-6,
        ..SimConfig::default()
    }
}

fn get(sim: &SimServer, path: &str) -> reqwest::blocking::Response {
    reqwest::blocking::get(format!("{}{path}", sim.base_url())).unwrap()
}

fn json(sim: &SimServer, path: &str) -> Value {
    let r = get(sim, path);
    assert_eq!(r.status(), 200, "{path}");
    r.json().unwrap()
}

#[test]
fn rest_endpoints_answer_like_binance() {
    let sim = server(frozen(UniverseSpec::Generated(10)));
    for (path, weight) in [
        ("/api/v3/ping", 1),
        ("/fapi/v1/ping", 1),
        ("/dapi/v1/time", 1),
    ] {
        let r = get(&sim, path);
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(
            r.headers()["x-mbx-used-weight-1m"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                % weight,
            0
        );
    }
    assert_eq!(json(&sim, "/api/v3/ping"), serde_json::json!({}));
    assert_eq!(
        json(&sim, "/api/v3/time")["serverTime"].as_i64().unwrap() / 60_000,
        NOW / 60_000
    );
    let rows = json(&sim, "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000");
    assert_eq!(rows.as_array().unwrap().len(), 1000);
    let r = get(&sim, "/api/v3/klines?symbol=NOPE&interval=1m");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["code"], -1121);
    assert_eq!(get(&sim, "/api/v3/nothing").status(), 404);
    // Weight: spot klines cost 2, futures by limit tier.
    let used = |r: &reqwest::blocking::Response| {
        r.headers()["x-mbx-used-weight-1m"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let a = used(&get(
        &sim,
        "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=99",
    ));
    let b = used(&get(
        &sim,
        "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=499",
    ));
    let c = used(&get(&sim, "/fapi/v1/klines?symbol=BTCUSDT&interval=1m"));
    let d = used(&get(
        &sim,
        "/dapi/v1/klines?symbol=BTCUSD_PERP&interval=1m&limit=1500",
    ));
    assert_eq!(
        (b - a, c - b, d - c),
        (2, 5, 10),
        "COIN-M shares USD-M's pool"
    );
    let s = used(&get(&sim, "/api/v3/klines?symbol=BTCUSDT&interval=1m"));
    let s2 = get(&sim, "/api/v3/klines?symbol=BTCUSDT&interval=1m");
    assert_eq!(used(&s2) - s, 2);
    assert_eq!(
        s2.headers()["x-mbx-used-weight"],
        s2.headers()["x-mbx-used-weight-1m"]
    );
}

#[test]
fn rate_limit_429_then_418_and_stats() {
    let sim = server(frozen(UniverseSpec::Generated(3)));
    // Spot allows 6000 weight a minute: exchangeInfo costs 20, so 300 fit.
    for _ in 0..300 {
        assert_eq!(
            get(&sim, "/api/v3/exchangeInfo?symbol=BTCUSDT").status(),
            200
        );
    }
    let r = get(&sim, "/api/v3/ping");
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(r.json::<Value>().unwrap()["code"], -1003);
    for _ in 0..100 {
        assert_eq!(get(&sim, "/api/v3/ping").status(), 429);
    }
    let r = get(&sim, "/api/v3/ping");
    assert_eq!(r.status(), 418, "the 101st request after a 429 is banned");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(get(&sim, "/api/v3/time").status(), 418);
    // Futures have their own pool.
    assert_eq!(get(&sim, "/fapi/v1/ping").status(), 200);
    let stats = json(&sim, "/sim/v1/stats");
    assert_eq!(stats["rest"]["spot"]["http429"], 101);
    assert_eq!(stats["rest"]["spot"]["http418"], 2);
    assert_eq!(stats["rest"]["spot"]["weight"], 6000);
    assert_eq!(stats["rest"]["um"]["requests"], 1);
    assert_eq!(stats["faults"]["http5xx"], 0);
}

#[test]
fn control_api_tells_the_truth() {
    let sim = server(frozen(UniverseSpec::Generated(8)));
    let clock = json(&sim, "/sim/v1/clock");
    assert_eq!(clock["now"].as_i64().unwrap() / 60_000, NOW / 60_000);
    assert_eq!(clock["time_scale"], 1e-6);
    let symbols = json(&sim, "/sim/v1/symbols");
    let all = symbols.as_array().unwrap();
    assert_eq!(all.len(), 24);
    for s in all {
        for key in [
            "market",
            "symbol",
            "status",
            "listed",
            "first_kline",
            "delisted",
        ] {
            assert!(s.get(key).is_some(), "{s}: {key}");
        }
    }
    let btc = all
        .iter()
        .find(|s| s["market"] == "spot" && s["symbol"] == "BTCUSDT")
        .unwrap();
    let first = btc["first_kline"].as_i64().unwrap();
    // The ground truth agrees with the REST API, closed klines only.
    let truth = json(
        &sim,
        &format!(
            "/sim/v1/klines?market=spot&symbol=BTCUSDT&interval=1m&startTime={first}&endTime={}",
            first + 99 * 60_000
        ),
    );
    let rest = json(
        &sim,
        "/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=0&limit=100",
    );
    assert_eq!(truth, rest);
    let tail = json(
        &sim,
        &format!(
            "/sim/v1/klines?market=um&symbol=BTCUSDT&interval=1h&startTime={}",
            NOW - 5 * 3_600_000
        ),
    );
    let rows = tail.as_array().unwrap();
    assert!(
        rows.iter().all(|r| r[6].as_i64().unwrap() < NOW),
        "closed only"
    );
    assert_eq!(rows.len(), 5, "{tail}");
    assert_eq!(
        get(&sim, "/sim/v1/klines?market=spot&symbol=NOPE&interval=1m").status(),
        400
    );
}

#[test]
fn faults_are_injected_and_counted() {
    let faults = "http5xx=0.2,http429=0.1,reset=0.2,slow=0.1:10ms"
        .parse()
        .unwrap();
    // Real time: a slow reply waits 10 ms of exchange time.
    let sim = server(SimConfig {
        faults,
        time_scale: 1.0,
        ..frozen(UniverseSpec::Generated(3))
    });
    let (mut ok, mut e5, mut e429, mut broken) = (0, 0, 0, 0);
    for _ in 0..200 {
        match reqwest::blocking::get(format!(
            "{}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=50",
            sim.base_url()
        )) {
            Ok(r) if r.status().is_server_error() => e5 += 1,
            Ok(r) if r.status() == 429 => {
                assert!(r.headers().contains_key("retry-after"));
                e429 += 1
            }
            Ok(r) => match r.bytes() {
                Ok(b) if serde_json::from_slice::<Value>(&b).is_ok() => ok += 1,
                _ => broken += 1,
            },
            Err(_) => broken += 1,
        }
    }
    let stats = json(&sim, "/sim/v1/stats");
    assert_eq!(stats["faults"]["http5xx"], e5);
    assert_eq!(stats["faults"]["http429"], e429);
    assert_eq!(stats["faults"]["reset"], broken);
    assert_eq!(
        stats["rest"]["spot"]["http429"], 0,
        "injected 429s are not the limiter's"
    );
    assert!(
        e5 > 10 && e429 > 5 && broken > 5 && ok > 50,
        "{ok} {e5} {e429} {broken}"
    );
    assert!(stats["faults"]["slow"].as_u64().unwrap() > 0);
}

#[test]
fn limits_follow_the_scaled_clock() {
    // 10x: an exchange minute lasts 6 real seconds, a 2-minute ban 12.
    let sim = server(SimConfig {
        universe: UniverseSpec::Generated(3),
        time_scale: 10.0,
        ..SimConfig::default()
    });
    let base = sim.base_url().to_string();
    let get = |path: &str| reqwest::blocking::get(format!("{base}{path}")).unwrap();
    // Start right after a window boundary, so the whole test fits in it.
    loop {
        let now = get("/sim/v1/clock").json::<Value>().unwrap()["now"]
            .as_i64()
            .unwrap();
        if now % 60_000 < 5_000 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // USD-M: 2400 a minute; limit=1500 costs 10, so exactly 240 pass.
    for i in 0..240 {
        let r = get("/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1500");
        assert_eq!(r.status(), 200, "request {i}");
    }
    let r = get("/dapi/v1/ping");
    assert_eq!(r.status(), 429, "COIN-M shares the spent pool");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=6).contains(&retry),
        "Retry-After {retry} s is the rest of a 6 s window"
    );
    std::thread::sleep(std::time::Duration::from_secs(retry));
    assert_eq!(
        get("/fapi/v1/ping").status(),
        200,
        "a new window after Retry-After"
    );
}

/// USD-M contracts the real snapshot shows `PENDING_TRADING` with an
/// `onboardDate` in the past (OMGUSDT, 2019-09-25, ...) traded and were
/// delisted: listed at their onboardDate, klines from then until their
/// delisting, `PENDING_TRADING` now; their onboardDate served as is.
#[test]
fn pending_usdm_contracts_with_a_past_onboard_date_keep_their_history() {
    // The snapshot the simulator embeds: Binance's USD-M exchangeInfo of 2025-11-26
    // (`shared/data/binance/exchange_info/usdm_exchangeInfo_2025-11-26.json`).
    let zst = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/usdm_exchangeInfo_2025-11-26.json.zst"
    ))
    .unwrap();
    let snapshot: Value = serde_json::from_slice(&zstd::decode_all(&zst[..]).unwrap()).unwrap();
    let sample_time = snapshot["serverTime"].as_i64().unwrap();
    // At the sample's moment, before it (2025-11-24), and today's wall clock.
    for now in [Some(sample_time), Some(NOW), None] {
        let sim = server(SimConfig {
            now,
            ..frozen(UniverseSpec::Real)
        });
        let clock = json(&sim, "/sim/v1/clock")["now"].as_i64().unwrap();
        let truth = json(&sim, "/sim/v1/symbols");
        let info = json(&sim, "/fapi/v1/exchangeInfo");
        let served: std::collections::HashMap<&str, &Value> = info["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["symbol"].as_str().unwrap(), s))
            .collect();
        let mut checked = 0;
        for s in snapshot["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "PENDING_TRADING")
        {
            let name = s["symbol"].as_str().unwrap();
            let onboard = s["onboardDate"].as_i64().unwrap();
            let t = truth
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["market"] == "um" && t["symbol"] == name)
                .unwrap();
            let e = served[name];
            assert_eq!(
                e["onboardDate"].as_i64(),
                Some(onboard),
                "{name}: exchangeInfo onboardDate"
            );
            assert_ne!(e["onboardDate"].as_i64(), Some(4_133_404_800_000), "{name}");
            assert_eq!(
                t["listed"].as_i64(),
                Some(onboard),
                "{name}: listed is the onboardDate exchangeInfo shows: {t}"
            );
            if onboard >= clock {
                assert_eq!(t["first_kline"], Value::Null, "{name}: not listed yet: {t}");
                assert_eq!(e["status"], "PENDING_TRADING", "{name}");
                continue;
            }
            checked += 1;
            assert_eq!(
                e["status"], "PENDING_TRADING",
                "{name}: exchangeInfo status at {clock}"
            );
            assert_eq!(t["status"], "PENDING_TRADING", "{name}: {t}");
            let delisted = t["delisted"]
                .as_i64()
                .unwrap_or_else(|| panic!("{name}: no delisting: {t}"));
            assert!(
                onboard < delisted && delisted <= sample_time.min(clock),
                "{name}: delisted {delisted}: {t}"
            );
            // Klines from the listing on (the first after an outage at worst), none after the delisting.
            let first = t["first_kline"]
                .as_i64()
                .unwrap_or_else(|| panic!("{name}: no kline: {t}"));
            assert!(first >= onboard && first < delisted, "{name}: {t}");
            let rows = json(
                &sim,
                &format!("/fapi/v1/klines?symbol={name}&interval=1m&startTime={onboard}&limit=5"),
            );
            assert_eq!(
                rows[0][0].as_i64(),
                Some(first),
                "{name}: REST's first kline"
            );
            let rows = json(
                &sim,
                &format!(
                    "/fapi/v1/klines?symbol={name}&interval=1d&startTime={onboard}&limit=1500"
                ),
            );
            let last = rows.as_array().unwrap().last().unwrap()[0]
                .as_i64()
                .unwrap();
            assert!(
                last < delisted,
                "{name}: a day kline at {last} after the delisting {delisted}"
            );
            let after = json(
                &sim,
                &format!("/fapi/v1/klines?symbol={name}&interval=1m&startTime={delisted}&limit=5"),
            );
            assert_eq!(
                after,
                serde_json::json!([]),
                "{name}: klines after the delisting"
            );
        }
        assert_eq!(
            checked, 46,
            "every pending contract of the sample traded before {clock}"
        );
    }
}
