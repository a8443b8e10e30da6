//! Fidelity against every real Binance sample in `shared/data/binance/`:
//! what the simulator emits has the same keys, key order, types, nesting
//! and number formats.

use std::path::PathBuf;

use atm_sim::{SimConfig, SimServer, UniverseSpec};
use serde_json::Value;

const NOW: i64 = 1_764_000_000_000;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/binance")
}

fn read_json(rel: &str) -> Value {
    let path = samples().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The shape of a JSON value: keys in order, types, and for strings whether
/// they are plain decimals (Binance's numbers) and with how many decimals.
fn shape(v: &Value, decimals: bool) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => "int".into(),
        Value::Number(_) => "float".into(),
        Value::String(s) if is_decimal(s) => match (decimals, s.split_once('.')) {
            (true, Some((_, f))) => format!("dec{}", f.len()),
            (true, None) => "dec0".into(),
            (false, _) => "dec".into(),
        },
        Value::String(_) => "str".into(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| shape(x, decimals))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, x)| format!("{k}:{}", shape(x, decimals)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn is_decimal(s: &str) -> bool {
    let (i, f) = s.split_once('.').unwrap_or((s, "0"));
    !i.is_empty()
        && i.bytes().all(|b| b.is_ascii_digit())
        && !f.is_empty()
        && f.bytes().all(|b| b.is_ascii_digit())
}

fn sim(universe: UniverseSpec) -> SimServer {
    SimServer::start(SimConfig {
        universe,
        now: Some(NOW),
        time_scale: 1e-6,
        rate_limits: false,
        ..SimConfig::default()
    })
    .unwrap()
}

fn get(sim: &SimServer, path: &str) -> Value {
    reqwest::blocking::get(format!("{}{path}", sim.base_url()))
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn spot_rest_rows_have_the_samples_shape() {
    let sim = sim(UniverseSpec::Generated(5));
    let ours = get(&sim, "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=10");
    for sample in [
        "klines_rest/spot_BTCUSDT_1m_2021-10-22_nautilus.json",
        "klines_rest/spot_UNKNOWNUSDT_1m_2024-11-16_api_v3.json",
    ] {
        let real = read_json(sample);
        // Spot prints every number with 8 decimals.
        assert_eq!(shape(&real[0], true), shape(&ours[0], true), "{sample}");
        assert_eq!(
            shape(&real[0], true),
            "[int,dec8,dec8,dec8,dec8,dec8,int,dec8,int,dec8,dec8,dec0]"
        );
    }
}

#[test]
fn exchange_info_has_the_snapshots_shape() {
    for (universe, name) in [
        (UniverseSpec::Real, "real"),
        (UniverseSpec::Generated(30), "generated"),
    ] {
        let sim = sim(universe);
        for (path, sample) in [
            (
                "/api/v3/exchangeInfo",
                "exchange_info/spot_exchangeInfo_2023-09-08.json",
            ),
            (
                "/fapi/v1/exchangeInfo",
                "exchange_info/usdm_exchangeInfo_2025-11-26.json",
            ),
            (
                "/dapi/v1/exchangeInfo",
                "exchange_info/cm_exchangeInfo_2021-07-22.extracted.json",
            ),
        ] {
            let real = read_json(sample);
            let ours = get(&sim, path);
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&real), keys(&ours), "{name} {path}");
            assert_eq!(
                shape(&real["rateLimits"][0], false),
                shape(&ours["rateLimits"][0], false)
            );
            // Every symbol has the shape of some real symbol of its market.
            let real_shapes: std::collections::HashSet<String> = real["symbols"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| shape(s, false))
                .collect();
            for s in ours["symbols"].as_array().unwrap() {
                assert!(
                    real_shapes.contains(&shape(s, false)),
                    "{name} {path}: {} has a shape no real symbol has",
                    s["symbol"]
                );
            }
        }
    }
}

#[test]
fn futures_rest_rows_print_the_symbols_precisions() {
    let sim = sim(UniverseSpec::Real);
    let info = get(&sim, "/fapi/v1/exchangeInfo");
    let btc = info["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["symbol"] == "BTCUSDT")
        .unwrap();
    let (pp, qp) = (
        btc["pricePrecision"].as_u64().unwrap(),
        btc["quantityPrecision"].as_u64().unwrap(),
    );
    let rows = get(&sim, "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=5");
    let want = format!(
        "[int,dec{pp},dec{pp},dec{pp},dec{pp},dec{qp},int,dec{},int,dec{qp},dec{},dec0]",
        pp + qp,
        pp + qp
    );
    assert_eq!(shape(&rows[0], true), want);
    // COIN-M: whole contracts, base-asset volume with 8 decimals.
    let cm = get(
        &sim,
        "/dapi/v1/klines?symbol=BTCUSD_PERP&interval=1m&limit=5",
    );
    let info = get(&sim, "/dapi/v1/exchangeInfo");
    let perp = info["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["symbol"] == "BTCUSD_PERP")
        .unwrap();
    let pp = perp["pricePrecision"].as_u64().unwrap();
    assert_eq!(
        shape(&cm[0], true),
        format!("[int,dec{pp},dec{pp},dec{pp},dec{pp},dec0,int,dec8,int,dec0,dec8,dec0]")
    );
    // The non-ASCII USD-M symbol is served.
    let rows = get(
        &sim,
        "/fapi/v1/klines?symbol=%E5%B8%81%E5%AE%89%E4%BA%BA%E7%94%9FUSDT&interval=1h&limit=2",
    );
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
}

#[test]
fn kline_events_have_the_samples_shape() {
    use tungstenite::Message;
    let sim = SimServer::start(SimConfig {
        universe: UniverseSpec::Generated(4),
        now: Some(NOW),
        time_scale: 1.0,
        ..SimConfig::default()
    })
    .unwrap();
    for (prefix, sample) in [
        ("/spot", "ws/spot_kline_events_2021-08-14.extracted.jsonl"),
        ("/um", "ws/um_kline_events_2021-07-22.extracted.jsonl"),
    ] {
        let text = std::fs::read_to_string(samples().join(sample)).unwrap();
        let real: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let url = format!(
            "{}{prefix}/stream?streams=btcusdt@kline_1m",
            sim.base_url().replace("http://", "ws://")
        );
        let (mut ws, _) = tungstenite::connect(url).unwrap();
        let ours: Value = loop {
            if let Message::Text(t) = ws.read().unwrap() {
                break serde_json::from_str(t.as_str()).unwrap();
            }
        };
        for r in &real {
            assert_eq!(shape(r, false), shape(&ours, false), "{sample}");
        }
        // Raw streams carry the bare payload.
        let url = format!(
            "{}{prefix}/ws/btcusdt@kline_1m",
            sim.base_url().replace("http://", "ws://")
        );
        let (mut ws, _) = tungstenite::connect(url).unwrap();
        let raw: Value = loop {
            if let Message::Text(t) = ws.read().unwrap() {
                break serde_json::from_str(t.as_str()).unwrap();
            }
        };
        assert_eq!(shape(&real[0]["data"], false), shape(&raw, false));
    }
}

#[test]
fn archive_csvs_have_the_samples_format() {
    use std::io::Read;
    let sim = sim(UniverseSpec::Generated(3));
    let csv = |path: &str| {
        let zip = reqwest::blocking::get(format!("{}{path}", sim.base_url()))
            .unwrap()
            .bytes()
            .unwrap();
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
        let mut s = String::new();
        a.by_index(0).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    let cells = |line: &str| -> String {
        line.split(',')
            .map(|c| {
                if c.contains('.') {
                    format!("dec{}", c.split_once('.').unwrap().1.len())
                } else {
                    "int".into()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    // Spot, before 2025: no header, ms, 8 decimals (spot_ADABTC-1m-2021-11-27.csv).
    let real = std::fs::read_to_string(samples().join("klines_csv/spot_ADABTC-1m-2021-11-27.csv"))
        .unwrap();
    let ours = csv("/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-11-20.zip");
    assert_eq!(
        cells(real.lines().next().unwrap()),
        cells(ours.lines().next().unwrap())
    );
    assert_eq!(
        ours.lines()
            .next()
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .len(),
        13,
        "ms"
    );
    // Spot from 2025: µs times (the DOGEUSDT 1s excerpt of issue #386).
    let real = std::fs::read_to_string(
        samples().join("klines_csv/spot_DOGEUSDT-1s-2025-01-01.issue386_excerpt.csv"),
    )
    .unwrap();
    let ours = csv("/data/spot/daily/klines/ETHUSDT/1s/ETHUSDT-1s-2025-11-20.zip");
    let (r, o) = (real.lines().next().unwrap(), ours.lines().next().unwrap());
    assert_eq!(cells(r), cells(o));
    assert_eq!(
        r.split(',').next().unwrap().len(),
        o.split(',').next().unwrap().len(),
        "µs"
    );
    assert!(o.split(',').nth(6).unwrap().ends_with("999999"));
    // USD-M: the same header as the real files.
    let mut gz = flate2::read::GzDecoder::new(
        std::fs::File::open(samples().join("klines_csv/um_FILUSDT-1m-2024-02.csv.gz")).unwrap(),
    );
    let mut real = String::new();
    gz.read_to_string(&mut real).unwrap();
    let ours = csv("/data/futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-10.zip");
    assert_eq!(real.lines().next(), ours.lines().next());
}
