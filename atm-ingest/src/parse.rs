//! Parsing Binance's kline rows (`[[openTime,"open",…],…]`) into klines,
//! decimals rounded once, straight to the store's precision.

use std::borrow::Cow;
use std::fmt;

use atm_store::{Kline, Precision};
use serde::de::{DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};

/// Parses a `klines` response body. Errors say which row and field was wrong.
///
/// Streams through the body once: fields are borrowed from it, never
/// collected into a JSON tree, so parsing costs about as much as reading.
pub fn klines(body: &[u8], precision: Precision) -> Result<Vec<Kline>, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let rows = Rows(precision)
        .deserialize(&mut de)
        .map_err(|e| format!("not a JSON array of kline rows: {e}"))?;
    de.end()
        .map_err(|e| format!("trailing bytes after the kline rows: {e}"))?;
    Ok(rows)
}

/// The top-level array of rows.
struct Rows(Precision);

impl<'de> DeserializeSeed<'de> for Rows {
    type Value = Vec<Kline>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Kline>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows {
    type Value = Vec<Kline>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of kline rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Kline>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1000).min(1500));
        while let Some(k) = seq.next_element_seed(Row {
            precision: self.0,
            index: out.len(),
        })? {
            out.push(k);
        }
        Ok(out)
    }
}

/// One row: `[openTime, "open", "high", "low", "close", "volume", closeTime,
/// "quoteVolume", trades, "takerBase", "takerQuote", "ignore"]`.
struct Row {
    precision: Precision,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for Row {
    type Value = Kline;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kline, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Row {
    type Value = Kline;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "row {}: an array of 12 fields", self.index)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kline, A::Error> {
        let mut fields: [Cow<'de, str>; 12] = Default::default();
        let mut n = 0;
        while let Some(Field(f)) = seq.next_element()? {
            if n == fields.len() {
                return Err(A::Error::custom(format!(
                    "row {}: more than 12 fields",
                    self.index
                )));
            }
            fields[n] = f;
            n += 1;
        }
        let refs: [&str; 12] = std::array::from_fn(|i| fields[i].as_ref());
        Kline::parse_fields(&refs[..n], self.precision)
            .map_err(|e| A::Error::custom(format!("row {}: {e}", self.index)))
    }
}

/// A field as text: borrowed from the body when it is a plain string,
/// rendered when it is a number.
struct Field<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field<'de>, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(Field(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Field<'de>, E> {
        Ok(Field(Cow::Owned(v.to_owned())))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Field<'de>, E> {
        Ok(Field(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Field<'de>, E> {
        Ok(Field(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Field<'de>, E> {
        Ok(Field(Cow::Owned(v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/binance/klines_rest")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn parses_every_real_sample() {
        let k = klines(
            &sample("spot_BTCUSDT_1m_2021-10-22_nautilus.json"),
            Precision::F64,
        )
        .unwrap();
        assert_eq!(k.len(), 10);
        assert_eq!(k[0].open_time, 1_634_943_780_000);
        assert_eq!(k[0].values[0], 60685.22);
        assert_eq!(k[0].trades, 617);
        let k = klines(
            &sample("spot_UNKNOWNUSDT_1m_2024-11-16_api_v3.json"),
            Precision::F32,
        )
        .unwrap();
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
            b"[[1,\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\",\"0\",\"extra\"]]",
            b"[[1,\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\",\"0\"]] trailing",
            b"[[1,null,\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\",\"0\"]]",
        ] {
            assert!(
                klines(bad, Precision::F32).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(klines(b"[]", Precision::F32).unwrap(), vec![]);
        // Numbers where strings are expected, and escaped strings, are read alike.
        let a = klines(
            b"[[1,\"1.5\",\"2\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\",\"0\"]]",
            Precision::F64,
        )
        .unwrap();
        let b = klines(
            b"[[1,1.5,\"\\u0032\",\"1\",\"1\",\"1\",2,\"1\",\"3\",\"1\",\"1\",0]]",
            Precision::F64,
        )
        .unwrap();
        assert_eq!(a, b);
        let e = klines(
            b"[[1,\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\",\"0\"],[5,\"x\"]]",
            Precision::F32,
        )
        .unwrap_err();
        assert!(e.contains("row 1"), "{e}");
    }
}
