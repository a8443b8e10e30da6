//! Importing Binance kline files: CSV, `.csv.gz` and data.binance.vision zips.
//!
//! Symbol and interval come from the file name (`BTCUSDT-1m-2024-02.csv`,
//! `BTCUSDT-1mo-2024-01.zip`), the market from a `spot/`, `futures/um/` or
//! `futures/cm/` path component or from the caller. Rows may have a header or
//! not, times in ms or µs. A zip with a `.CHECKSUM` file beside it is checked
//! before any row is read. Each file is committed on its own (large ones in
//! batches), so an interrupted import keeps what it committed.
//!
//! Rows already stored identically are skipped, so importing twice changes
//! nothing. A row that differs from a stored kline does not replace it: REST
//! is the authority for corrections (see `docs/architecture.md`); such rows
//! are counted in [`FileReport::kept_stored`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::{Interval, Kline, Market, Precision, SeriesKey, Store, Symbol, Writer};

/// Rows per commit inside one large file.
const BATCH_ROWS: usize = 250_000;

/// How an input file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Plain CSV.
    Csv,
    /// Gzip-compressed CSV.
    CsvGz,
    /// A data.binance.vision zip holding one CSV.
    Zip,
}

/// One file to import and the series it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub kind: FileKind,
    /// The series its rows go to.
    pub key: SeriesKey,
}

/// What importing one file did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Rows read.
    pub rows: u64,
    /// Klines newly written.
    pub written: u64,
    /// Rows identical to what was stored (no-ops).
    pub unchanged: u64,
    /// Rows that differ from a stored kline, which was kept.
    pub kept_stored: u64,
}

/// Splits `BTCUSDT-1m-2024-02` into symbol and interval.
///
/// ```
/// use atm_store::{import::parse_file_name, Interval};
/// let (s, i) = parse_file_name("BTCUSDT-1mo-2024-01.zip").unwrap();
/// assert_eq!((s.as_str(), i), ("BTCUSDT", Interval::Mo1));
/// assert!(parse_file_name("notes.txt").is_err());
/// ```
pub fn parse_file_name(name: &str) -> Result<(Symbol, Interval)> {
    let stem = name
        .strip_suffix(".zip")
        .or_else(|| name.strip_suffix(".csv.gz"))
        .or_else(|| name.strip_suffix(".csv"))
        .unwrap_or(name);
    let bad = || {
        Error::InvalidInput(format!(
            "cannot tell symbol and interval from file name {name:?} (expected SYMBOL-INTERVAL-DATE.csv, e.g. BTCUSDT-1m-2024-02.csv)"
        ))
    };
    let parts: Vec<&str> = stem.split('-').collect();
    let is_num = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    // Date: YYYY, YYYY-MM or YYYY-MM-DD at the end.
    let mut date_parts = 0;
    for i in 1..=3usize {
        if parts.len() > i + 1 {
            let tail = &parts[parts.len() - i..];
            let ok = match i {
                1 => is_num(tail[0], 4),
                2 => is_num(tail[0], 4) && is_num(tail[1], 2),
                _ => is_num(tail[0], 4) && is_num(tail[1], 2) && is_num(tail[2], 2),
            };
            if ok {
                date_parts = i;
            }
        }
    }
    if date_parts == 0 || parts.len() < date_parts + 2 {
        return Err(bad());
    }
    let iv_at = parts.len() - date_parts - 1;
    let interval: Interval = parts[iv_at].parse().map_err(|_| bad())?;
    let symbol = Symbol::new(&parts[..iv_at].join("-"))?;
    Ok((symbol, interval))
}

/// The market named by a path component (`spot`, `futures/um`, `futures/cm`).
pub fn market_from_path(path: &Path) -> Option<Market> {
    let comps: Vec<&str> = path
        .components()
        .filter_map(|c| {
            if let Component::Normal(s) = c {
                s.to_str()
            } else {
                None
            }
        })
        .collect();
    let mut found = None;
    for (i, c) in comps.iter().enumerate() {
        match *c {
            "spot" => found = Some(Market::Spot),
            "futures" => match comps.get(i + 1) {
                Some(&"um") => found = Some(Market::UsdM),
                Some(&"cm") => found = Some(Market::CoinM),
                _ => {}
            },
            _ => {}
        }
    }
    found
}

/// Expands files and directories into the kline files to import, sorted.
/// `market` is used where the path does not name one.
pub fn plan(paths: &[PathBuf], market: Option<Market>) -> Result<Vec<FileSpec>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io("open", p, e))?;
        if meta.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    let mut out = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let kind = if name.ends_with(".zip") {
            FileKind::Zip
        } else if name.ends_with(".csv.gz") {
            FileKind::CsvGz
        } else if name.ends_with(".csv") {
            FileKind::Csv
        } else {
            continue;
        };
        let (symbol, interval) = parse_file_name(name)
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
        let m = market_from_path(&path).or(market).ok_or_else(|| {
            Error::InvalidInput(format!(
                "cannot tell the market of {}: no spot/, futures/um/ or futures/cm/ in its path; pass --market",
                path.display()
            ))
        })?;
        let key = SeriesKey::new(m, symbol, interval)
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
        out.push(FileSpec { path, kind, key });
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for e in rd {
        let p = e.map_err(|e| Error::io("list", dir, e))?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Checks `zip` against the `.CHECKSUM` file beside it, if there is one.
/// Returns whether a checksum was verified.
pub fn verify_checksum(zip: &Path) -> Result<bool> {
    let mut sum_path = zip.as_os_str().to_owned();
    sum_path.push(".CHECKSUM");
    let sum_path = PathBuf::from(sum_path);
    let text = match std::fs::read_to_string(&sum_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("read", &sum_path, e)),
    };
    let want = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidInput(format!(
            "{}: not a sha256sum line",
            sum_path.display()
        )));
    }
    let mut f = File::open(zip).map_err(|e| Error::io("open", zip, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", zip, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if got != want {
        return Err(Error::InvalidInput(format!(
            "{}: SHA-256 {got} does not match {} ({want})",
            zip.display(),
            sum_path.display()
        )));
    }
    Ok(true)
}

/// Parses every row of a kline CSV stream: an optional header on line 1,
/// 12 (or 11) columns per row. Errors name `path` and the line.
pub fn parse_csv(
    reader: impl Read,
    path: &Path,
    precision: Precision,
    mut row: impl FnMut(u64, Kline) -> Result<()>,
) -> Result<u64> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let mut rec = csv::StringRecord::new();
    let mut rows = 0;
    let mut line = 0u64;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let l = e.position().map(|p| p.line()).unwrap_or(line + 1);
                return Err(Error::BadRow {
                    path: path.into(),
                    line: l,
                    reason: e.to_string(),
                });
            }
        }
        line = rec.position().map(|p| p.line()).unwrap_or(line + 1);
        if rec.len() == 1 && rec[0].is_empty() {
            continue;
        }
        if line == 1
            && rec.get(0).is_some_and(|f| {
                !f.is_empty() && !f.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            })
        {
            continue; // header row
        }
        let fields: Vec<&str> = rec.iter().collect();
        let k = Kline::parse_fields(&fields, precision).map_err(|reason| Error::BadRow {
            path: path.into(),
            line,
            reason,
        })?;
        row(line, k)?;
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::BadRow {
            path: path.into(),
            line: line.max(1),
            reason: "empty file: no kline rows".into(),
        });
    }
    Ok(rows)
}

/// Imports one file through `writer`, committing per batch. `progress` gets
/// the number of rows read so far.
pub fn import_file(
    store: &Store,
    writer: &mut Writer,
    spec: &FileSpec,
    mut progress: impl FnMut(u64),
) -> Result<FileReport> {
    let path = &spec.path;
    let open = || File::open(path).map_err(|e| Error::io("open", path, e));
    let mut importer = Importer {
        store,
        writer,
        key: &spec.key,
        path,
        pending: Vec::new(),
        slots: HashMap::new(),
        report: FileReport::default(),
    };
    let mut sink = |line: u64, k: Kline| -> Result<()> {
        importer.row(line, k)?;
        if importer.report.rows.is_multiple_of(8192) {
            progress(importer.report.rows);
        }
        Ok(())
    };
    let precision = store.precision();
    match spec.kind {
        FileKind::Csv => {
            parse_csv(
                BufReader::with_capacity(1 << 16, open()?),
                path,
                precision,
                &mut sink,
            )?;
        }
        FileKind::CsvGz => {
            parse_csv(
                flate2::read::GzDecoder::new(BufReader::new(open()?)),
                path,
                precision,
                &mut sink,
            )?;
        }
        FileKind::Zip => {
            verify_checksum(path)?;
            let mut zip = zip::ZipArchive::new(BufReader::new(open()?)).map_err(|e| {
                Error::InvalidInput(format!("{}: not a readable zip: {e}", path.display()))
            })?;
            let mut any = false;
            for i in 0..zip.len() {
                let entry = zip.by_index(i).map_err(|e| {
                    Error::InvalidInput(format!("{}: zip entry {i}: {e}", path.display()))
                })?;
                let name = entry.name().map(|n| n.to_string()).unwrap_or_default();
                if !name.ends_with(".csv") {
                    continue;
                }
                any = true;
                let inner = path.join(name);
                parse_csv(entry, &inner, precision, &mut sink)?;
            }
            if !any {
                return Err(Error::InvalidInput(format!(
                    "{}: the zip holds no .csv file",
                    path.display()
                )));
            }
        }
    }
    importer.flush()?;
    progress(importer.report.rows);
    Ok(importer.report)
}

struct Importer<'a> {
    store: &'a Store,
    writer: &'a mut Writer,
    key: &'a SeriesKey,
    path: &'a Path,
    pending: Vec<Kline>,
    /// Slot -> (line, kline) of every row of this file, to catch conflicting duplicates.
    slots: HashMap<u64, (u64, Kline)>,
    report: FileReport,
}

impl Importer<'_> {
    fn row(&mut self, line: u64, k: Kline) -> Result<()> {
        let iv = self.key.interval;
        let bad = |reason: String| Error::BadRow {
            path: self.path.into(),
            line,
            reason,
        };
        let slot = iv.slot_of(k.open_time).map_err(|e| bad(e.to_string()))?;
        if k.close_time > iv.close_time(slot) {
            return Err(bad(format!(
                "kline {}..{} does not fit one {iv} slot (is the file's interval right?)",
                crate::format_ms(k.open_time),
                crate::format_ms(k.close_time)
            )));
        }
        self.report.rows += 1;
        if let Some((l, prev)) = self.slots.get(&slot) {
            if *prev == k {
                self.report.unchanged += 1;
                return Ok(());
            }
            return Err(bad(format!(
                "a second, different kline for open time {} (first on line {l})",
                crate::format_ms(iv.open_time(slot))
            )));
        }
        self.slots.insert(slot, (line, k));
        self.pending.push(k);
        if self.pending.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Stages the pending rows that are not already stored, and commits.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (lo, hi) = self.pending.iter().fold((i64::MAX, i64::MIN), |(a, b), k| {
            (a.min(k.open_time), b.max(k.open_time))
        });
        let stored: HashMap<i64, Kline> = match self.store.series(self.key)? {
            Some(s) => s
                .range(lo, hi)?
                .into_iter()
                .map(|k| (k.open_time, k))
                .collect(),
            None => HashMap::new(),
        };
        let precision = self.store.precision();
        let mut fresh = Vec::with_capacity(self.pending.len());
        for k in self.pending.drain(..) {
            let rounded = Kline {
                values: k.values.map(|v| precision.round(v)),
                ..k
            };
            match stored.get(&k.open_time) {
                Some(s) if *s == rounded => self.report.unchanged += 1,
                Some(_) => self.report.kept_stored += 1,
                None => fresh.push(k),
            }
        }
        if !fresh.is_empty() {
            self.report.written += fresh.len() as u64;
            self.writer.put_many(self.key, &fresh)?;
            self.writer.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_symbol_and_interval() {
        let ok = |n: &str, s: &str, i: Interval| {
            let (sym, iv) = parse_file_name(n).unwrap();
            assert_eq!((sym.as_str(), iv), (s, i), "{n}");
        };
        ok("BTCUSDT-1m-2024-02.csv", "BTCUSDT", Interval::M1);
        ok("BTCUSDT-1s-2025-01-01.zip", "BTCUSDT", Interval::S1);
        ok("BTCUSDT-1mo-2024.zip", "BTCUSDT", Interval::Mo1);
        ok("BTCUSD_PERP-1d-2021-07.csv.gz", "BTCUSD_PERP", Interval::D1);
        ok(
            "币安人生USDT-1h-2025-11-01.csv",
            "币安人生USDT",
            Interval::H1,
        );
        for bad in [
            "BTCUSDT.csv",
            "BTCUSDT-1x-2024-01.csv",
            "-1m-2024-01.csv",
            "BTC/USDT-1m-2024-01.csv",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn market_comes_from_the_path() {
        assert_eq!(
            market_from_path(Path::new(
                "/d/data/futures/um/monthly/klines/X/1m/X-1m-2024-01.zip"
            )),
            Some(Market::UsdM)
        );
        assert_eq!(
            market_from_path(Path::new("data/spot/daily/x.zip")),
            Some(Market::Spot)
        );
        assert_eq!(
            market_from_path(Path::new("futures/cm/x.zip")),
            Some(Market::CoinM)
        );
        assert_eq!(market_from_path(Path::new("/tmp/x.zip")), None);
    }

    #[test]
    fn csv_errors_name_file_and_line() {
        let p = Path::new("f.csv");
        let good = "1499040000000,1,1,1,1,1,1499040059999,1,3,1,1,0\n";
        let run = |s: &str| parse_csv(s.as_bytes(), p, Precision::F32, |_, _| Ok(()));
        assert_eq!(run(good).unwrap(), 1);
        assert_eq!(
            run(&format!(
                "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n{good}"
            ))
            .unwrap(),
            1
        );
        let e = run(&format!(
            "{good}1499040060000,1,1,x,1,1,1499040119999,1,3,1,1,0\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("f.csv:2:") && e.contains("low"), "{e}");
        assert!(run("").unwrap_err().to_string().contains("empty"));
        assert!(run("1,2,3\n")
            .unwrap_err()
            .to_string()
            .contains("12 columns"));
    }
}
