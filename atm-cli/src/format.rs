//! Printing klines: CSV, JSON and aligned tables, floats in the shortest
//! plain-decimal form that round-trips the stored type.

use std::io::Write;

use atm_store::{Kline, Precision};

pub use atm_store::arrow::COLUMN_NAMES;

/// `v` in the shortest plain decimal that reads back as the same value of
/// the store's type (Rust's `Display` for floats never uses an exponent).
pub fn float(v: f64, p: Precision) -> String {
    match p {
        Precision::F32 => format!("{}", v as f32),
        Precision::F64 => format!("{v}"),
    }
}

/// The 11 output fields of a kline, in Binance's order.
pub fn fields(k: &Kline, p: Precision) -> [String; 11] {
    let f = |c: usize| float(k.values[c], p);
    [k.open_time.to_string(), f(0), f(1), f(2), f(3), f(4), k.close_time.to_string(), f(5), k.trades.to_string(), f(6), f(7)]
}

/// Streams klines in one of the formats.
pub struct KlineWriter<W: Write> {
    out: W,
    format: crate::cli::QueryFormat,
    precision: Precision,
    rows: u64,
}

impl<W: Write> KlineWriter<W> {
    /// Starts the output (writes a header where the format has one).
    pub fn new(mut out: W, format: crate::cli::QueryFormat, precision: Precision) -> std::io::Result<Self> {
        use crate::cli::QueryFormat::*;
        match format {
            Csv => writeln!(out, "{}", COLUMN_NAMES.join(","))?,
            Json => write!(out, "[")?,
            Table => writeln!(
                out,
                "{:<19}  {:>14} {:>14} {:>14} {:>14} {:>18} {:>18} {:>8} {:>18} {:>18}",
                "open_time (UTC)", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_base", "taker_buy_quote"
            )?,
        }
        Ok(KlineWriter { out, format, precision, rows: 0 })
    }

    /// Writes one kline.
    pub fn write(&mut self, k: &Kline) -> std::io::Result<()> {
        use crate::cli::QueryFormat::*;
        let f = fields(k, self.precision);
        match self.format {
            Csv => writeln!(self.out, "{}", f.join(","))?,
            Json => {
                let sep = if self.rows == 0 { "" } else { "," };
                write!(self.out, "{sep}\n{{")?;
                for (i, (name, v)) in COLUMN_NAMES.iter().zip(f.iter()).enumerate() {
                    write!(self.out, "{}\"{name}\":{v}", if i == 0 { "" } else { "," })?;
                }
                write!(self.out, "}}")?;
            }
            Table => writeln!(
                self.out,
                "{:<19}  {:>14} {:>14} {:>14} {:>14} {:>18} {:>18} {:>8} {:>18} {:>18}",
                atm_store::format_ms(k.open_time).replace('T', " ").get(..19).unwrap_or_default(),
                f[1],
                f[2],
                f[3],
                f[4],
                f[5],
                f[7],
                f[8],
                f[9],
                f[10]
            )?,
        }
        self.rows += 1;
        Ok(())
    }

    /// Ends the output.
    pub fn finish(mut self) -> std::io::Result<u64> {
        if self.format == crate::cli::QueryFormat::Json {
            writeln!(self.out, "{}]", if self.rows == 0 { "" } else { "\n" })?;
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_shortest_plain_decimals() {
        assert_eq!(float(0.1f32 as f64, Precision::F32), "0.1");
        assert_eq!(float(1e-8f32 as f64, Precision::F32), "0.00000001");
        assert_eq!(float(123456789.0f32 as f64, Precision::F32), "123456790");
        assert_eq!(float(3e20, Precision::F64), "300000000000000000000");
        assert_eq!(float(42000.0, Precision::F32), "42000");
    }
}
