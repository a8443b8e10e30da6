//! The kline update cadence over real WebSocket on loopback, measured in
//! exchange time (the events' `E`): Binance pushes the kline in progress
//! every 2000 ms on spot and every 250 ms on USD-M and COIN-M.
//!
//! The default run, `--time-scale 60` for 8 exchange minutes (8 s), is where
//! the simulator once sent futures updates every 1.2 s and spot ones every
//! 2.4 s (a 20 ms real-time floor on its ticks). `ATM_CADENCE_SCALE` and
//! `ATM_CADENCE_MINUTES` change the run, to measure at other time scales:
//! `ATM_CADENCE_SCALE=1 ATM_CADENCE_MINUTES=5 cargo test -p atm-sim --test cadence -- --nocapture`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atm_sim::{SimConfig, SimServer, UniverseSpec};
use serde_json::Value;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

const NOW: i64 = 1_764_000_000_000;

fn env_or(key: &str, default: f64) -> f64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Intervals (exchange ms) between consecutive in-progress updates of one
/// kline, per stream, from `path` until `minutes` of exchange time passed.
fn intervals(
    base: &str,
    path: &str,
    minutes: i64,
    real_limit: Duration,
) -> HashMap<String, Vec<i64>> {
    let url = format!("{}{path}", base.replace("http://", "ws://"));
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let deadline = Instant::now() + real_limit;
    let mut last: HashMap<String, (i64, i64)> = HashMap::new(); // stream → (kline open, E)
    let mut out: HashMap<String, Vec<i64>> = HashMap::new();
    let mut start = None;
    while Instant::now() < deadline {
        let text = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(_) => continue,
            Err(e) => panic!("{path}: {e}"),
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        let (stream, d) = (v["stream"].as_str().unwrap().to_string(), &v["data"]);
        let e = d["E"].as_i64().unwrap();
        let start = *start.get_or_insert(e);
        if e - start > minutes * 60_000 {
            break;
        }
        if d["k"]["x"] == true {
            last.remove(&stream);
            continue;
        }
        let t = d["k"]["t"].as_i64().unwrap();
        if let Some((open, prev)) = last.insert(stream.clone(), (t, e)) {
            if open == t {
                out.entry(stream).or_default().push(e - prev);
            }
        }
    }
    out
}

fn quantile(sorted: &[i64], q: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn kline_updates_come_at_binances_cadence_in_exchange_time() {
    let scale = env_or("ATM_CADENCE_SCALE", 60.0);
    let minutes = env_or("ATM_CADENCE_MINUTES", 8.0) as i64;
    let sim = SimServer::start(SimConfig {
        universe: UniverseSpec::Generated(6),
        now: Some(NOW),
        time_scale: scale,
        ..SimConfig::default()
    })
    .unwrap();
    let base = sim.base_url().to_string();
    // Exchange minutes take 60/scale real seconds; allow twice that and a margin.
    let real_limit = Duration::from_secs_f64(minutes as f64 * 60.0 / scale * 2.0 + 20.0);
    let cases = [
        (
            "/spot/stream?streams=btcusdt@kline_1m/ethusdt@kline_5m/bnbusdt@kline_1h",
            2000,
        ),
        (
            "/um/market/stream?streams=btcusdt@kline_1m/ethusdt@kline_5m/bnbusdt@kline_1h",
            250,
        ),
        (
            "/cm/stream?streams=btcusd_perp@kline_1m/ethusd_perp@kline_15m",
            250,
        ),
    ];
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(path, period)| {
                let base = &base;
                s.spawn(move || (*path, *period, intervals(base, path, minutes, real_limit)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut bad = vec![];
    for (path, period, per_stream) in results {
        assert!(!per_stream.is_empty(), "{path}: no updates");
        for (stream, mut iv) in per_stream {
            iv.sort_unstable();
            let (p50, p90) = (quantile(&iv, 0.5), quantile(&iv, 0.9));
            eprintln!("--time-scale {scale}, {stream}: {} intervals, median {p50} ms, p90 {p90} ms (Binance: {period} ms)", iv.len());
            if (p50 - period).abs() as f64 > 0.15 * period as f64 {
                bad.push(format!("{stream}: median {p50} ms, Binance {period} ms"));
            }
        }
    }
    assert!(bad.is_empty(), "cadence off by more than 15%: {bad:?}");
}
