//! WebSocket kline streams over loopback, with a fast exchange clock.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use atm_sim::{SimConfig, SimServer, UniverseSpec};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

const NOW: i64 = 1_764_000_000_000;

fn sim(scale: f64) -> SimServer {
    SimServer::start(SimConfig {
        universe: UniverseSpec::Generated(6),
        now: Some(NOW),
        time_scale: scale,
        ..SimConfig::default()
    })
    .unwrap()
}

fn connect(sim: &SimServer, path: &str) -> Ws {
    let url = format!("{}{path}", sim.base_url().replace("http://", "ws://"));
    let (ws, resp) = tungstenite::connect(url).unwrap();
    assert_eq!(resp.status(), 101);
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    ws
}

/// The next text message as JSON.
fn next(ws: &mut Ws) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn rest(sim: &SimServer, path: &str) -> Value {
    reqwest::blocking::get(format!("{}{path}", sim.base_url()))
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn raw_stream_closes_klines_equal_to_rest() {
    // 120x: a 1m kline closes every half second.
    let sim = sim(120.0);
    let mut ws = connect(&sim, "/um/market/ws/btcusdt@kline_1m");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut closed = vec![];
    let mut last_trade: Option<i64> = None;
    while closed.len() < 3 && Instant::now() < deadline {
        let e = next(&mut ws);
        assert_eq!(e["e"], "kline");
        assert_eq!(e["s"], "BTCUSDT");
        let k = &e["k"];
        assert_eq!(k["i"], "1m");
        assert_eq!(k["T"].as_i64().unwrap(), k["t"].as_i64().unwrap() + 59_999);
        for key in ["o", "c", "h", "l", "v", "q", "V", "Q", "B"] {
            assert!(k[key].is_string(), "{key}: {e}");
        }
        if k["x"] == true {
            let (f, l) = (k["f"].as_i64().unwrap(), k["L"].as_i64().unwrap());
            if let Some(prev) = last_trade {
                assert_eq!(f, prev + 1, "trade ids continue from kline to kline");
            }
            assert_eq!(l - f + 1, k["n"].as_i64().unwrap());
            last_trade = Some(l);
            closed.push(k.clone());
        }
    }
    assert!(closed.len() >= 3, "{} closed klines in 20 s", closed.len());
    for k in closed {
        let t = k["t"].as_i64().unwrap();
        let row = &rest(
            &sim,
            &format!("/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime={t}&limit=1"),
        )[0];
        let from_ws = json!([
            t, k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], "0"
        ]);
        assert_eq!(row, &from_ws);
    }
}

#[test]
fn combined_stream_and_subscriptions() {
    let sim = sim(1.0);
    let mut ws = connect(
        &sim,
        "/spot/stream?streams=btcusdt@kline_1m/ethusdt@kline_1s",
    );
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 {
        let e = next(&mut ws);
        assert_eq!(e["data"]["e"], "kline");
        seen.insert(e["stream"].as_str().unwrap().to_string());
    }
    assert!(seen.contains("ethusdt@kline_1s"));
    let send = |ws: &mut Ws, v: Value| ws.send(Message::text(v.to_string())).unwrap();
    // Replies come in order among the events.
    let reply = |ws: &mut Ws| loop {
        let v = next(ws);
        if v.get("id").is_some() {
            return v;
        }
    };
    send(
        &mut ws,
        json!({"method": "SUBSCRIBE", "params": ["bnbusdt@kline_5m"], "id": 1}),
    );
    assert_eq!(reply(&mut ws), json!({"result": null, "id": 1}));
    send(&mut ws, json!({"method": "LIST_SUBSCRIPTIONS", "id": 2}));
    assert_eq!(
        reply(&mut ws),
        json!({"result": ["btcusdt@kline_1m", "ethusdt@kline_1s", "bnbusdt@kline_5m"], "id": 2})
    );
    send(
        &mut ws,
        json!({"method": "UNSUBSCRIBE", "params": ["ethusdt@kline_1s"], "id": 3}),
    );
    assert_eq!(reply(&mut ws), json!({"result": null, "id": 3}));
    send(
        &mut ws,
        json!({"method": "GET_PROPERTY", "params": ["combined"], "id": 4}),
    );
    assert_eq!(reply(&mut ws), json!({"result": true, "id": 4}));
    send(
        &mut ws,
        json!({"method": "SUBSCRIBE", "params": ["nope@kline_1m"], "id": 5}),
    );
    let e = reply(&mut ws);
    assert_eq!(
        (e["code"].as_i64(), e["id"].as_i64()),
        (Some(2), Some(5)),
        "{e}"
    );
    let stats = rest(&sim, "/sim/v1/stats");
    assert_eq!(stats["ws"]["connections"], 1);
    assert_eq!(stats["ws"]["subscriptions"], 3);
    assert_eq!(stats["ws"]["max_streams_per_connection"], 3);
    assert!(stats["ws"]["messages"].as_u64().unwrap() >= 2);
}

#[test]
fn limits_and_bad_requests() {
    let sim = sim(1.0);
    let url = |p: &str| format!("{}{p}", sim.base_url().replace("http://", "ws://"));
    // Unknown paths are refused before the upgrade; spot takes one raw stream per path.
    assert!(tungstenite::connect(url("/spot/ws/btcusdt@kline_1s/ethusdt@kline_1m")).is_err());
    assert!(tungstenite::connect(url("/nowhere/ws")).is_err());
    // A name that is no stream connects and carries nothing (ccxt.pro opens `/ws/0`, then SUBSCRIBEs).
    let mut ws = connect(&sim, "/spot/ws/0");
    ws.send(Message::text(
        json!({"method": "LIST_SUBSCRIPTIONS", "id": 1}).to_string(),
    ))
    .unwrap();
    assert_eq!(next(&mut ws), json!({"result": [], "id": 1}));
    ws.send(Message::text(
        json!({"method": "SUBSCRIBE", "params": ["btcusdt@kline_1s"], "id": 2}).to_string(),
    ))
    .unwrap();
    assert_eq!(next(&mut ws), json!({"result": null, "id": 2}));
    assert_eq!(next(&mut ws)["e"], "kline");
    // COIN-M: at most 200 streams a connection.
    let mut ws = connect(&sim, "/cm/ws");
    let names: Vec<String> = [
        "btcusd_perp",
        "ethusd_perp",
        "bnbusd_perp",
        "solusd_perp",
        "xrpusd_perp",
        "dogeusd_perp",
    ]
    .iter()
    .flat_map(|s| {
        [
            "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
            "1M",
        ]
        .map(|i| format!("{s}@kline_{i}"))
    })
    .collect();
    assert_eq!(names.len(), 90);
    ws.send(Message::text(
        json!({"method": "SUBSCRIBE", "params": names, "id": 1}).to_string(),
    ))
    .unwrap();
    let r = loop {
        let v = next(&mut ws);
        if v.get("id").is_some() {
            break v;
        }
    };
    assert_eq!(r, json!({"result": null, "id": 1}));
    // Futures close the socket after bad JSON.
    ws.send(Message::text("{not json")).unwrap();
    let r = loop {
        let v = next(&mut ws);
        if v.get("error").is_some() {
            break v;
        }
    };
    assert_eq!(r["error"]["code"], 3);
    let closed = loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => break true,
            Ok(_) => continue,
        }
    };
    assert!(closed);
    // Spot: more than 5 incoming messages a second closes the connection.
    let mut ws = connect(&sim, "/spot/ws");
    for i in 0..10 {
        let _ = ws.send(Message::text(
            json!({"method": "LIST_SUBSCRIPTIONS", "id": i}).to_string(),
        ));
    }
    let dropped = (0..20).any(|_| matches!(ws.read(), Ok(Message::Close(_)) | Err(_)));
    assert!(dropped);
    let stats = rest(&sim, "/sim/v1/stats");
    assert!(stats["ws"]["limit_violations"].as_u64().unwrap() >= 1);
}

#[test]
fn disconnect_fault_and_lifetime() {
    // ws_disconnect=2m at 120x: the server closes after ~1 s.
    let faults = "ws_disconnect=2m".parse().unwrap();
    let sim = SimServer::start(SimConfig {
        universe: UniverseSpec::Generated(3),
        now: Some(NOW),
        time_scale: 120.0,
        faults,
        ..SimConfig::default()
    })
    .unwrap();
    let mut ws = connect(&sim, "/spot/ws/btcusdt@kline_1m");
    let t = Instant::now();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => assert!(t.elapsed() < Duration::from_secs(10), "never disconnected"),
        }
    }
    assert!(t.elapsed() >= Duration::from_millis(500));
    let stats = rest(&sim, "/sim/v1/stats");
    assert_eq!(stats["faults"]["ws_disconnect"], 1);
}

#[test]
fn pings_need_pongs() {
    // 100x: spot pings every 0.2 s and wants a pong within 0.6 s.
    let sim = sim(100.0);
    let mut ws = connect(&sim, "/spot/ws/btcusdt@kline_1m");
    // A reading client answers pings (tungstenite pongs on read) and stays.
    let t = Instant::now();
    let mut pings = 0;
    while t.elapsed() < Duration::from_secs(2) {
        match ws.read().unwrap() {
            Message::Ping(_) => pings += 1,
            Message::Close(_) => panic!("closed although it answered pings"),
            _ => {}
        }
    }
    assert!(pings >= 3, "{pings} pings in 2 s");
    // A client that stops reading stops answering: the server hangs up.
    let mut silent = connect(&sim, "/spot/ws/btcusdt@kline_1m");
    std::thread::sleep(Duration::from_secs(2));
    let closed = (0..100_000).any(|_| matches!(silent.read(), Ok(Message::Close(_)) | Err(_)));
    assert!(closed, "no pong, yet still open");
}

#[test]
fn connections_end_at_24_hours() {
    // 100,000x: 24 exchange hours pass in under a second.
    let sim = sim(100_000.0);
    let mut ws = connect(&sim, "/um/ws/btcusdt@kline_1h");
    let t = Instant::now();
    let mut closes = 0;
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                closes += (v["k"]["x"] == true) as u32;
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "still open after 10 s"
        );
    }
    // Every hour of the day closed on the stream, none thinned away.
    assert!(
        (23..=25).contains(&closes),
        "{closes} closed 1h klines in 24 h"
    );
}

#[test]
fn dropped_closing_events_are_counted() {
    let faults = "ws_close_drop=1".parse().unwrap();
    let sim = SimServer::start(SimConfig {
        universe: UniverseSpec::Generated(3),
        now: Some(NOW),
        time_scale: 600.0,
        faults,
        ..SimConfig::default()
    })
    .unwrap();
    let mut ws = connect(&sim, "/um/ws/btcusdt@kline_1m");
    let t = Instant::now();
    let mut updates = 0;
    while t.elapsed() < Duration::from_secs(1) {
        let e = next(&mut ws);
        assert_eq!(e["k"]["x"], false, "a closing event got through");
        updates += 1;
    }
    assert!(updates > 10);
    let stats = rest(&sim, "/sim/v1/stats");
    assert!(
        stats["faults"]["ws_close_drop"].as_u64().unwrap() >= 5,
        "{stats}"
    );
}

#[test]
fn continuous_klines_close_handshake_and_1s_cadence() {
    let sim = sim(1.0);
    // Futures continuous klines: the perpetual's klines, `ps`/`ct`, no `s` in `k`.
    let mut ws = connect(&sim, "/um/market/ws/btcusdt_perpetual@continuousKline_1m");
    let e = next(&mut ws);
    assert_eq!(
        (e["e"].as_str(), e["ps"].as_str(), e["ct"].as_str()),
        (Some("continuous_kline"), Some("BTCUSDT"), Some("PERPETUAL"))
    );
    assert!(e["k"].get("s").is_none() && e["k"]["i"] == "1m");
    // The server answers a client's close (RFC 6455).
    ws.close(None).unwrap();
    let answered = loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break true,
            Err(e) => panic!("no close reply: {e}"),
        }
    };
    assert!(answered);
    // Spot 1s streams update every second.
    let mut ws = connect(&sim, "/spot/ws/btcusdt@kline_1s");
    let mut closes = vec![];
    while closes.len() < 5 {
        let e = next(&mut ws);
        if e["k"]["x"] == true {
            closes.push(e["E"].as_i64().unwrap());
        }
    }
    let gap = (closes[4] - closes[0]) / 4;
    assert!(
        (800..=1300).contains(&gap),
        "a 1s kline closes every {gap} ms"
    );
}
