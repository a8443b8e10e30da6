//! Entry points for the fuzz targets in `fuzz/` (and their corpora, replayed
//! on stable Rust by `tests/fuzz_corpus.rs`): every parser of untrusted
//! input the simulator has. None may panic, whatever the bytes.

use std::sync::{Arc, OnceLock};

use crate::exchange::{Exchange, SimConfig};
use crate::universe::UniverseSpec;

fn exchange() -> &'static Arc<Exchange> {
    static EX: OnceLock<Arc<Exchange>> = OnceLock::new();
    EX.get_or_init(|| {
        let config = SimConfig {
            universe: UniverseSpec::Generated(3),
            now: Some(1_764_000_000_000),
            time_scale: 1e-9,
            rate_limits: false,
            ..SimConfig::default()
        };
        match Exchange::new(config) {
            Ok(ex) => Arc::new(ex),
            Err(e) => panic!("the fuzzing exchange must build: {e}"),
        }
    })
}

/// An HTTP request line's target, `path?query`, through every router.
pub fn request(data: &[u8]) {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // The ground truth has no limit by design: keep fuzzed ranges small.
    if path.starts_with("/sim/v1/klines") || (path.starts_with("/data/") && path.contains("-1s-")) {
        return;
    }
    let ex = exchange();
    let _ = ex
        .rest(path, query)
        .or_else(|| ex.control("GET", path, query))
        .or_else(|| ex.archive(path, query));
}

/// A WebSocket control message (`SUBSCRIBE` and friends), on each market.
pub fn ws_control(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    crate::ws::fuzz_control(exchange().clone(), text);
}

/// The command line's specs: `--faults`, `--universe`, durations.
pub fn specs(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = text.parse::<crate::faults::FaultSpec>();
    let _ = text.parse::<UniverseSpec>();
    let _ = crate::faults::parse_duration(text);
}
