//! Parsing Binance's kline rows (`[[openTime,"open",…],…]`) into klines,
//! decimals rounded once, straight to the store's precision.

use atm_store::{Kline, Precision};
use serde_json::Value;

/// Parses a `klines` response body. Errors say which row and field was wrong.
pub fn klines(body: &[u8], precision: Precision) -> Result<Vec<Kline>, String> {
    let rows: Vec<Vec<Value>> = serde_json::from_slice(body).map_err(|e| format!("not a JSON array of kline rows: {e}"))?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let fields: Vec<String> = row
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => other.to_string(),
                })
                .collect();
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            Kline::parse_fields(&refs, precision).map_err(|e| format!("row {i}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/binance/klines_rest").join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn parses_every_real_sample() {
        let k = klines(&sample("spot_BTCUSDT_1m_2021-10-22_nautilus.json"), Precision::F64).unwrap();
        assert_eq!(k.len(), 10);
        assert_eq!(k[0].open_time, 1_634_943_780_000);
        assert_eq!(k[0].values[0], 60685.22);
        assert_eq!(k[0].trades, 617);
        let k = klines(&sample("spot_UNKNOWNUSDT_1m_2024-11-16_api_v3.json"), Precision::F32).unwrap();
        assert_eq!(k.len(), 500);
        assert_eq!(k[0].values[3], "0.72440000".parse::<f32>().unwrap() as f64);
    }

    #[test]
    fn bad_bodies_are_errors() {
        for bad in [
            &b"<html>502</html>"[..],
            b"[[1,2",
            b"{\"code\":-1121}",
            b"[[1,\"x\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\",\"0\"]]",
            b"[[1]]",
        ] {
            assert!(klines(bad, Precision::F32).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(klines(b"[]", Precision::F32).unwrap(), vec![]);
    }
}
