//! Throughput of the simulator over loopback, the numbers issue #5 asks for:
//!
//! * REST: limit-1000 kline pages with limits off, one client thread
//!   (the machine's other core), klines/s;
//! * WebSocket: 10,000 kline streams at Binance's real cadence, the server
//!   threads' CPU time per second of wall time.
//!
//! `cargo run --release -p atm-benches --bin sim-bench [-- SECONDS]`

#![forbid(unsafe_code)]

use std::io::Read;
use std::time::{Duration, Instant};

use atm_sim::{SimConfig, SimServer, UniverseSpec};
use tungstenite::Message;

const NOW: i64 = 1_764_000_000_000;

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    rest(secs);
    websocket(secs);
}

/// CPU seconds used so far by this process's threads named `atm-sim-worker`.
fn server_cpu() -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() != "atm-sim-worker" {
                continue;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // Fields after the command name's closing parenthesis; utime and stime are the 14th and 15th.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let (u, s): (f64, f64) = (
                f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0),
                f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0),
            );
            total += (u + s) / ticks;
        }
    }
    total
}

fn rest(secs: u64) {
    let sim = SimServer::start(SimConfig {
        universe: UniverseSpec::Generated(50),
        now: Some(NOW),
        rate_limits: false,
        ..SimConfig::default()
    })
    .unwrap();
    let client = reqwest::blocking::Client::new();
    // Symbols trading for the whole of the last 600 days.
    let day = 86_400_000;
    let symbols: Vec<String> = sim
        .exchange()
        .universe
        .market(atm_store::Market::UsdM)
        .listings
        .iter()
        .filter(|l| {
            l.model.life.listed.is_some_and(|t| t < NOW - 600 * day)
                && l.model.life.delisted.is_none()
                && l.model.life.gap.is_none()
        })
        .map(|l| l.model.symbol.clone())
        .collect();
    assert!(!symbols.is_empty());
    let (t0, cpu0) = (Instant::now(), server_cpu());
    let (mut pages, mut rows, mut bytes, mut i) = (0u64, 0u64, 0u64, 0i64);
    while t0.elapsed() < Duration::from_secs(secs) {
        let sym = &symbols[i as usize % symbols.len()];
        // Different pages each time: nothing is cached between requests.
        let start = NOW - 600 * day + (i % 800) * 1000 * 60_000;
        let url = format!(
            "{}/fapi/v1/klines?symbol={sym}&interval=1m&startTime={start}&limit=1000",
            sim.base_url()
        );
        let mut r = client.get(url).send().unwrap();
        assert_eq!(r.status(), 200);
        let mut body = Vec::new();
        r.read_to_end(&mut body).unwrap();
        rows += body.windows(2).filter(|w| w == b"[[" || w == b",[").count() as u64;
        bytes += body.len() as u64;
        pages += 1;
        i += 1;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = server_cpu() - cpu0;
    println!(
        "REST limit-1000 1m pages: {:.0} klines/s ({pages} pages, {:.1} MB/s, server CPU {:.2} cores)",
        rows as f64 / wall,
        bytes as f64 / wall / 1e6,
        cpu / wall
    );
}

fn websocket(secs: u64) {
    // 700 USD-M symbols x 15 intervals = 10,500 streams, 1000 per connection.
    let sim = SimServer::start(SimConfig {
        universe: UniverseSpec::Generated(700),
        now: Some(NOW),
        ..SimConfig::default()
    })
    .unwrap();
    let names: Vec<String> = sim
        .exchange()
        .universe
        .market(atm_store::Market::UsdM)
        .listings
        .iter()
        .flat_map(|l| {
            let s = l.model.symbol.to_lowercase();
            [
                "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d",
                "1w", "1M",
            ]
            .map(move |i| format!("{s}@kline_{i}"))
        })
        .take(10_000)
        .collect();
    let base = sim.base_url().replace("http://", "ws://");
    let stop = Instant::now() + Duration::from_secs(secs + 2);
    let readers: Vec<_> = names
        .chunks(1000)
        .map(|chunk| {
            let url = format!("{base}/um/market/stream?streams={}", chunk.join("/"));
            std::thread::spawn(move || {
                let (mut ws, _) = tungstenite::connect(url).unwrap();
                let mut n = 0u64;
                while Instant::now() < stop {
                    match ws.read() {
                        Ok(Message::Text(_)) => n += 1,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                n
            })
        })
        .collect();
    // Let the connections settle, then measure.
    std::thread::sleep(Duration::from_secs(2));
    let (t0, cpu0) = (Instant::now(), server_cpu());
    let msgs0 = sim
        .exchange()
        .stats
        .ws_messages
        .load(std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(secs));
    let wall = t0.elapsed().as_secs_f64();
    let cpu = server_cpu() - cpu0;
    let msgs = sim
        .exchange()
        .stats
        .ws_messages
        .load(std::sync::atomic::Ordering::Relaxed)
        - msgs0;
    let received: u64 = readers.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    println!(
        "WebSocket {} streams at Binance's cadence: {:.0} events/s sent, server CPU {:.2} cores ({} received in all)",
        names.len(),
        msgs as f64 / wall,
        cpu / wall,
        received
    );
}
