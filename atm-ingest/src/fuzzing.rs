//! Entry points for the fuzz targets in `fuzz/` (and their corpora, replayed
//! on stable Rust by `tests/fuzz_corpus.rs`): every parser of untrusted
//! input atm-ingest has. None may panic, whatever the bytes.

use atm_store::Precision;

/// A `klines` response body, at both precisions. What parses must be a
/// kline the store accepts: close not before open.
pub fn klines(data: &[u8]) {
    for precision in [Precision::F32, Precision::F64] {
        if let Ok(rows) = crate::parse::klines(data, precision) {
            for k in rows {
                assert!(
                    k.close_time >= k.open_time,
                    "parsed a kline closing before it opens"
                );
            }
        }
    }
}

/// Command-line selections: `--symbols` and `--exchange`.
pub fn selections(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = s.parse::<crate::SymbolFilter>();
    let _ = s.parse::<crate::ExchangeSpec>();
}

/// A WebSocket text message, at both precisions: what parses as a kline is
/// one the store accepts.
pub fn ws_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for precision in [Precision::F32, Precision::F64] {
        if let Ok(crate::ws_event::WsMessage::Kline(e)) = crate::ws_event::parse(text, precision) {
            assert!(e.kline.close_time >= e.kline.open_time && e.kline.open_time >= 0);
        }
    }
}

/// The store's archive log (`archives.jsonl`): records that parse are ones
/// whose check matches, and write back to the same line.
pub fn archive_log(data: &[u8]) {
    if let Ok(records) = crate::archive::parse_records(data, std::path::Path::new("fuzz.jsonl")) {
        for r in records {
            let again = format!("{}\n{}\n", crate::archive::ARCHIVE_LOG_HEADER, r.line());
            let back =
                crate::archive::parse_records(again.as_bytes(), std::path::Path::new("fuzz.jsonl"));
            assert_eq!(
                back.ok().as_deref(),
                Some(std::slice::from_ref(&r)),
                "a record does not survive a round trip"
            );
        }
    }
}

/// A data.binance.vision zip as it streams from the network, through unzip
/// and CSV parsing.
pub fn archive_zip(data: &[u8]) {
    crate::archive::fuzz_zip(data);
}
