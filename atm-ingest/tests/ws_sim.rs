//! The WebSocket pieces of `atm stream` against the simulator: the planned
//! URL and SUBSCRIBE messages open streams, and every event parses; each
//! closed kline equals the exchange's REST kline.

use std::time::{Duration, Instant};

use atm_ingest::ws_event::{parse, WsMessage};
use atm_ingest::ws_shard::{stream_name, stream_url, subscribe_messages};
use atm_ingest::Endpoints;
use atm_sim::SimConfig;
use atm_store::{Interval, Kline, Market, Precision};

#[test]
fn subscribed_streams_deliver_events_whose_closes_equal_rest() {
    // 60x: a 1m kline closes every real second.
    let config = SimConfig {
        universe: atm_sim::universe::UniverseSpec::Generated(4),
        time_scale: 60.0,
        ..SimConfig::default()
    };
    let endpoints = sim_endpoints(config);
    let base = endpoints.sim_base.clone().unwrap();
    for market in [Market::Spot, Market::UsdM, Market::CoinM] {
        let symbol = if market == Market::CoinM {
            "BTCUSD_PERP"
        } else {
            "BTCUSDT"
        };
        let streams = vec![
            stream_name(symbol, Interval::M1),
            stream_name(symbol, Interval::M3),
        ];
        let (mut ws, _) = tungstenite::connect(stream_url(&endpoints, market)).unwrap();
        for m in subscribe_messages(&streams, 200, 1) {
            ws.send(tungstenite::Message::text(m)).unwrap();
        }
        let (mut replies, mut events, mut closed) = (0, 0, Vec::<Kline>::new());
        let t = Instant::now();
        while closed.len() < 2 && t.elapsed() < Duration::from_secs(20) {
            let tungstenite::Message::Text(text) = ws.read().unwrap() else {
                continue;
            };
            match parse(&text, Precision::F64).unwrap_or_else(|e| panic!("{market}: {e}: {text}")) {
                WsMessage::Reply { .. } => replies += 1,
                WsMessage::Kline(e) => {
                    assert_eq!(e.symbol, symbol);
                    events += 1;
                    if e.closed && e.interval == Interval::M1 {
                        closed.push(e.kline);
                    }
                }
                other => panic!("{market}: unexpected {other:?}"),
            }
        }
        assert_eq!(replies, 1, "{market}: one SUBSCRIBE, one reply");
        assert!(
            events > closed.len() && closed.len() >= 2,
            "{market}: {events} events, {} closes",
            closed.len()
        );
        for k in &closed {
            let url = format!(
                "{base}/sim/v1/klines?market={}&symbol={symbol}&interval=1m&startTime={}&endTime={}",
                market.as_str(),
                k.open_time,
                k.open_time
            );
            let rows: serde_json::Value = reqwest::blocking::get(url).unwrap().json().unwrap();
            let row: Vec<String> = rows[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
                .collect();
            let refs: Vec<&str> = row.iter().map(String::as_str).collect();
            assert_eq!(
                *k,
                Kline::parse_fields(&refs, Precision::F64).unwrap(),
                "{market}: the close event is the REST kline"
            );
        }
    }
}

/// Endpoints of a simulator started for this test (stopped when they drop).
fn sim_endpoints(config: atm_sim::SimConfig) -> Endpoints {
    let server = atm_sim::SimServer::start(config).unwrap();
    let base = server.base_url().to_string();
    Endpoints::served_by(&base, server)
}
