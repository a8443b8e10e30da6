//! The real WebSocket captures (`shared/data/binance/ws`) replayed through
//! `atm stream`'s applier into a real store: every message is understood,
//! every closed kline is committed exactly as the event carried it, and the
//! live kline of every series is readable from shared memory.

use atm_ingest::ws_event::{parse, WsMessage};
use atm_store::{Market, Precision, SeriesKey, Store, StoreOptions, Symbol};

fn capture(name: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/binance/ws")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn real_captures_replay_into_the_store() {
    for (market, file) in [
        (Market::Spot, "spot_kline_events_2021-08-14.extracted.jsonl"),
        (Market::UsdM, "um_kline_events_2021-07-22.extracted.jsonl"),
    ] {
        let lines = capture(file);
        let events: Vec<_> = lines
            .iter()
            .map(|l| match parse(l, Precision::F32) {
                Ok(WsMessage::Kline(e)) => e,
                other => panic!("{file}: {other:?}: {l}"),
            })
            .collect();
        let mut keys: Vec<SeriesKey> = events
            .iter()
            .map(|e| SeriesKey::new(market, Symbol::new(&e.symbol).unwrap(), e.interval).unwrap())
            .collect();
        keys.sort();
        keys.dedup();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                create: true,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let s = atm_ingest::stream::replay(&store, market, &keys, lines.clone()).unwrap();
        assert_eq!(
            (s.events, s.bad_messages),
            (lines.len() as u64, 0),
            "{file}: {s:?}"
        );
        let closes: Vec<_> = events.iter().filter(|e| e.closed).collect();
        assert_eq!(s.closes, closes.len() as u64, "{file}");
        assert_eq!(
            s.live_updates,
            (events.len() - closes.len()) as u64,
            "{file}"
        );
        for e in closes {
            let key = SeriesKey::new(market, Symbol::new(&e.symbol).unwrap(), e.interval).unwrap();
            let stored = store
                .series(&key)
                .unwrap()
                .unwrap()
                .at(e.kline.open_time)
                .unwrap();
            assert_eq!(stored, Some(e.kline), "{file}: {key}");
        }
        // The newest update of each series is its live kline in the replay's
        // segment (finished now, so `read_live` would skip it: read it whole).
        let segments = atm_store::prd::list_segments(dir.path()).unwrap();
        let r = atm_store::prd::PrdReader::open(&segments[0]).unwrap();
        let names: Vec<String> = r.names().map(str::to_string).collect();
        for e in events.iter().filter(|e| !e.closed) {
            let newest = events
                .iter()
                .rev()
                .find(|x| x.symbol == e.symbol && x.interval == e.interval && !x.closed)
                .unwrap();
            let name = format!("live.{market}.{}.{}", e.symbol, e.interval);
            let i = names
                .iter()
                .position(|n| *n == name)
                .unwrap_or_else(|| panic!("{name} in {names:?}"));
            assert_eq!(
                r.read(i),
                Some(atm_store::prd::SlotValue::Kline(newest.kline)),
                "{file}: {name}"
            );
        }
    }
}
