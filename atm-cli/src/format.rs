//! Printing klines: CSV, JSON and aligned tables, floats in the shortest
//! plain-decimal form that round-trips the stored type; or an Arrow IPC
//! stream.

use std::io::Write;

use atm_store::{Kline, Precision};

pub use atm_store::arrow::COLUMN_NAMES;

/// Rows per Arrow record batch of `--format arrow`.
const ARROW_BATCH: usize = 65_536;

/// Streams klines in one of the formats.
pub struct KlineWriter<W: Write> {
    out: Sink<W>,
    format: crate::cli::QueryFormat,
    precision: Precision,
    rows: u64,
}

/// Text goes straight out; Arrow rows are batched.
enum Sink<W: Write> {
    Text(W),
    Arrow(Box<arrow_ipc::writer::StreamWriter<W>>, Vec<Kline>),
}

fn arrow_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("arrow: {e}"))
}

impl<W: Write> KlineWriter<W> {
    /// Starts the output (writes a header where the format has one).
    pub fn new(
        mut out: W,
        format: crate::cli::QueryFormat,
        precision: Precision,
    ) -> std::io::Result<Self> {
        use crate::cli::QueryFormat::*;
        match format {
            Csv => writeln!(out, "{}", COLUMN_NAMES.join(","))?,
            Json => write!(out, "[")?,
            Table => writeln!(
                out,
                "{:<19}  {:>14} {:>14} {:>14} {:>14} {:>18} {:>18} {:>8} {:>18} {:>18}",
                "open_time (UTC)",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "quote_volume",
                "trades",
                "taker_buy_base",
                "taker_buy_quote"
            )?,
            Arrow => {
                let w = arrow_ipc::writer::StreamWriter::try_new(
                    out,
                    &atm_store::arrow::schema(precision),
                )
                .map_err(arrow_err)?;
                let out = Sink::Arrow(Box::new(w), Vec::with_capacity(ARROW_BATCH));
                return Ok(KlineWriter {
                    out,
                    format,
                    precision,
                    rows: 0,
                });
            }
        }
        Ok(KlineWriter {
            out: Sink::Text(out),
            format,
            precision,
            rows: 0,
        })
    }

    /// Writes one kline.
    pub fn write(&mut self, k: &Kline) -> std::io::Result<()> {
        use crate::cli::QueryFormat::*;
        self.rows += 1;
        let out = match &mut self.out {
            Sink::Text(out) => out,
            Sink::Arrow(w, rows) => {
                rows.push(*k);
                if rows.len() >= ARROW_BATCH {
                    let batch = atm_store::arrow::to_record_batch(rows, self.precision)
                        .map_err(arrow_err)?;
                    w.write(&batch).map_err(arrow_err)?;
                    rows.clear();
                }
                return Ok(());
            }
        };
        let f = k.fields(self.precision);
        match self.format {
            Csv | Arrow => writeln!(out, "{}", f.join(","))?,
            Json => {
                let sep = if self.rows == 1 { "" } else { "," };
                write!(out, "{sep}\n{{")?;
                for (i, (name, v)) in COLUMN_NAMES.iter().zip(f.iter()).enumerate() {
                    write!(out, "{}\"{name}\":{v}", if i == 0 { "" } else { "," })?;
                }
                write!(out, "}}")?;
            }
            Table => writeln!(
                out,
                "{:<19}  {:>14} {:>14} {:>14} {:>14} {:>18} {:>18} {:>8} {:>18} {:>18}",
                atm_store::format_ms(k.open_time)
                    .replace('T', " ")
                    .get(..19)
                    .unwrap_or_default(),
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
        Ok(())
    }

    /// Ends the output.
    pub fn finish(self) -> std::io::Result<u64> {
        match self.out {
            Sink::Text(mut out) => {
                if self.format == crate::cli::QueryFormat::Json {
                    writeln!(out, "{}]", if self.rows == 0 { "" } else { "\n" })?;
                }
                out.flush()?;
            }
            Sink::Arrow(mut w, rows) => {
                if !rows.is_empty() {
                    w.write(
                        &atm_store::arrow::to_record_batch(&rows, self.precision)
                            .map_err(arrow_err)?,
                    )
                    .map_err(arrow_err)?;
                }
                w.finish().map_err(arrow_err)?;
                w.into_inner().map_err(arrow_err)?.flush()?;
            }
        }
        Ok(self.rows)
    }
}
