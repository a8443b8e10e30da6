//! `atm export`: a Hive-partitioned dataset that DuckDB, Polars, pyarrow and
//! Spark read as one table.
//!
//! ```text
//! DIR/market=<m>/interval=<i>/symbol=<S>/year=<YYYY>/klines.parquet
//! DIR/_atm_export.json      the manifest: what each file holds
//! ```
//!
//! One file per series and UTC year of `open_time`, holding the present
//! klines in Binance's column order with the names of `atm query --format
//! csv`. Parquet files are zstd-compressed, in row groups of
//! [`ROW_GROUP_ROWS`] with min/max statistics, so readers prune by time.
//! Every file is written under a temporary name and renamed, so a reader
//! (or a crash) never sees half a file under a final name. The manifest
//! records each file's [`Series::fingerprint`]: exporting again rewrites
//! only the files whose data changed and leaves the others untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{Kline, Precision, Series, SeriesKey, Store};

/// Rows per Parquet row group: about three months of 1m klines, so a time
/// filter skips most of a year's file.
pub const ROW_GROUP_ROWS: usize = 131_072;
/// The manifest's file name (not `*.parquet`: readers globbing the dataset skip it).
pub const MANIFEST: &str = "_atm_export.json";
/// The manifest format this build writes and reads.
const MANIFEST_VERSION: u32 = 2;

/// The file format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Apache Parquet, zstd-compressed (`klines.parquet`).
    Parquet,
    /// Arrow IPC file (`klines.arrow`).
    Arrow,
    /// CSV with a header row, values as `atm query` prints them (`klines.csv`).
    Csv,
}

impl ExportFormat {
    fn file_name(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "klines.parquet",
            ExportFormat::Arrow => "klines.arrow",
            ExportFormat::Csv => "klines.csv",
        }
    }
}

/// What to export besides the series.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// File format.
    pub format: ExportFormat,
    /// First open time (inclusive).
    pub from: i64,
    /// Last open time (inclusive).
    pub to: i64,
    /// Remove the files of earlier exports that are outside this selection.
    pub prune: bool,
}

impl Default for ExportOptions {
    fn default() -> ExportOptions {
        ExportOptions {
            format: ExportFormat::Parquet,
            from: i64::MIN,
            to: i64::MAX,
            prune: false,
        }
    }
}

/// What an export did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Series with something to export.
    pub series: u64,
    /// Partition files written (new or changed).
    pub written: u64,
    /// Partition files left as they were (their data had not changed).
    pub unchanged: u64,
    /// Partition files removed by `prune`.
    pub removed: u64,
    /// Rows in the files written.
    pub rows: u64,
    /// Bytes of the files written.
    pub bytes: u64,
}

/// One file's entry in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FileEntry {
    series: String,
    year: i32,
    rows: u64,
    bytes: u64,
    fingerprint: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    atm_export: u32,
    format: Option<ExportFormat>,
    files: BTreeMap<String, FileEntry>,
    /// CRC-32C (hex) of the JSON of `files`: a damaged manifest is not trusted.
    #[serde(default)]
    check: String,
}

impl Manifest {
    fn checksum(&self) -> String {
        let json = serde_json::to_vec(&self.files).unwrap_or_default();
        format!("{:08x}", crate::checksum::crc32c(&json))
    }
}

/// Reads a manifest: version and checksum must be right.
fn parse_manifest(bytes: &[u8]) -> std::result::Result<Manifest, String> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("unreadable ({e})"))?;
    if m.atm_export != MANIFEST_VERSION {
        return Err(format!(
            "version {} is not {MANIFEST_VERSION}",
            m.atm_export
        ));
    }
    if m.check != m.checksum() {
        return Err(format!(
            "checksum {:?} is not its content's {}",
            m.check,
            m.checksum()
        ));
    }
    Ok(m)
}

/// The fuzz targets' entry: parses a manifest, and whatever parses writes
/// back to the same.
#[cfg(feature = "test-hooks")]
pub(crate) fn fuzz_manifest(data: &[u8]) {
    if let Ok(m) = parse_manifest(data) {
        let again = serde_json::to_vec(&m).unwrap_or_default();
        assert!(
            parse_manifest(&again).is_ok(),
            "a parsed manifest does not parse again"
        );
    }
}

/// The partition directory of `key`'s klines of `year`, relative to the
/// export's root: `market=spot/interval=1m/symbol=BTCUSDT/year=2024`.
/// Intervals are named as in Binance's archives (`1mo` for the API's `1M`).
pub fn partition_dir(key: &SeriesKey, year: i32) -> PathBuf {
    PathBuf::from(format!(
        "market={}/interval={}/symbol={}/year={year}",
        key.market,
        key.interval.file_name(),
        key.symbol
    ))
}

/// Exports `keys` into `out` (created if needed; see the module docs).
pub fn export(
    store: &Store,
    keys: &[SeriesKey],
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    if opts.to < opts.from {
        return Err(Error::InvalidInput(format!(
            "the export range ends ({}) before it starts ({})",
            opts.to, opts.from
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io("create the export directory", out, e))?;
    let old = read_manifest(out);
    let mut manifest = Manifest {
        atm_export: MANIFEST_VERSION,
        format: Some(opts.format),
        files: BTreeMap::new(),
        check: String::new(),
    };
    let mut report = ExportReport::default();
    let selected: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
    // The partitions of the selection, and which of them changed.
    let mut jobs = Vec::new();
    for key in keys {
        let Some(series) = store.series(key)? else {
            continue;
        };
        let stats = series.stats()?;
        let (Some(first), Some(last)) = (stats.first_open_time, stats.last_open_time) else {
            continue;
        };
        let (from, to) = (opts.from.max(first), opts.to.min(last));
        if from > to {
            continue;
        }
        report.series += 1;
        for year in year_of(from)?..=year_of(to)? {
            let (ys, ye) = year_bounds(year)?;
            let (a, z) = (from.max(ys), to.min(ye));
            let rel = partition_dir(key, year).join(opts.format.file_name());
            let name = rel.to_string_lossy().into_owned();
            let fingerprint = format!("{:016x}", series.fingerprint(a, z)?);
            let unchanged = old
                .files
                .get(&name)
                .filter(|e| e.fingerprint == fingerprint && old.format == Some(opts.format));
            if let Some(e) = unchanged
                .filter(|e| std::fs::metadata(out.join(&rel)).is_ok_and(|m| m.len() == e.bytes))
            {
                report.unchanged += 1;
                manifest.files.insert(name, e.clone());
                continue;
            }
            let entry = FileEntry {
                series: key.to_string(),
                year,
                rows: 0,
                bytes: 0,
                fingerprint,
            };
            jobs.push((series.clone(), a, z, name, entry));
        }
    }
    // The changed ones, written in parallel (encoding and compression are
    // the work; each file is independent).
    use rayon::prelude::*;
    let written: Vec<Result<(String, FileEntry)>> = jobs
        .into_par_iter()
        .map(|(series, a, z, name, mut entry)| {
            (entry.rows, entry.bytes) =
                write_partition(&series, a, z, &out.join(&name), opts.format)?;
            Ok((name, entry))
        })
        .collect();
    for w in written {
        let (name, entry) = w?;
        if entry.rows == 0 {
            continue;
        }
        report.written += 1;
        report.rows += entry.rows;
        report.bytes += entry.bytes;
        manifest.files.insert(name, entry);
    }
    // Files of earlier exports outside this run: kept (and still listed),
    // or removed with `prune` when their series is not selected.
    for (name, e) in old.files {
        if manifest.files.contains_key(&name) {
            continue;
        }
        if opts.prune && !selected.contains(&e.series) {
            let path = out.join(&name);
            match std::fs::remove_file(&path) {
                Ok(()) => report.removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", path, e)),
            }
            remove_empty_dirs(out, path.parent());
        } else {
            manifest.files.insert(name, e);
        }
    }
    write_manifest(out, &manifest)?;
    Ok(report)
}

/// Writes the present klines of `series` in `from..=to` to `path` (through
/// a temporary file renamed into place). Returns (rows, bytes); nothing is
/// written when there are no rows.
fn write_partition(
    series: &Series,
    from: i64,
    to: i64,
    path: &Path,
    format: ExportFormat,
) -> Result<(u64, u64)> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::InvalidInput(format!("{} has no directory", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = (|| -> Result<u64> {
        let file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        let rows = match format {
            ExportFormat::Parquet => write_parquet(series, from, to, &file, &tmp)?,
            ExportFormat::Arrow => write_arrow(series, from, to, &file, &tmp)?,
            ExportFormat::Csv => write_csv(series, from, to, &file, &tmp)?,
        };
        file.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        Ok(rows)
    })();
    let rows = match written {
        Ok(rows) if rows > 0 => rows,
        other => {
            let _ = std::fs::remove_file(&tmp);
            return other.map(|_| (0, 0));
        }
    };
    let bytes = std::fs::metadata(&tmp)
        .map_err(|e| Error::io("stat", &tmp, e))?
        .len();
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("rename into place", path, e)
    })?;
    Ok((rows, bytes))
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    let source = if text.contains("No space left") || text.contains("File too large") {
        std::io::Error::new(std::io::ErrorKind::StorageFull, text)
    } else {
        std::io::Error::other(text)
    };
    Error::io("write", path, source)
}

fn write_parquet(series: &Series, from: i64, to: i64, file: &File, path: &Path) -> Result<u64> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Encoding;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use parquet::schema::types::ColumnPath;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(|e| write_err(path, e))?,
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("atm {}", env!("CARGO_PKG_VERSION")));
    // Times step regularly: deltas pack them to almost nothing. Floats are
    // byte-stream-split (each byte plane compresses on its own) without
    // dictionaries: on real 1m data 16% smaller than Polars' default
    // (dictionaries + zstd) and, without the dictionaries' hashing, twice
    // as fast (docs/benchmarks.md).
    for name in crate::arrow::COLUMN_NAMES {
        let col = ColumnPath::from(name);
        let encoding = match name {
            "open_time" | "close_time" | "trades" => Encoding::DELTA_BINARY_PACKED,
            _ => Encoding::BYTE_STREAM_SPLIT,
        };
        props = props
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_encoding(col, encoding);
    }
    let props = props.build();
    let schema = crate::arrow::schema(series.precision());
    let mut w = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema, Some(props))
        .map_err(|e| write_err(path, e))?;
    let rows = for_each_batch(series, from, to, |batch| {
        w.write(&batch).map_err(|e| write_err(path, e))
    })?;
    w.close().map_err(|e| write_err(path, e))?;
    Ok(rows)
}

fn write_arrow(series: &Series, from: i64, to: i64, file: &File, path: &Path) -> Result<u64> {
    let schema = crate::arrow::schema(series.precision());
    let mut w =
        arrow_ipc::writer::FileWriter::try_new(BufWriter::with_capacity(1 << 20, file), &schema)
            .map_err(|e| write_err(path, e))?;
    let rows = for_each_batch(series, from, to, |batch| {
        w.write(&batch).map_err(|e| write_err(path, e))
    })?;
    w.finish().map_err(|e| write_err(path, e))?;
    w.into_inner()
        .map_err(|e| write_err(path, e))?
        .flush()
        .map_err(|e| Error::io("write", path, e))?;
    Ok(rows)
}

fn write_csv(series: &Series, from: i64, to: i64, file: &File, path: &Path) -> Result<u64> {
    let precision = series.precision();
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let io = |e| Error::io("write", path, e);
    writeln!(w, "{}", crate::arrow::COLUMN_NAMES.join(",")).map_err(io)?;
    let mut rows = 0;
    series.for_each_chunk(from, to, |klines| {
        for k in klines {
            writeln!(w, "{}", k.fields(precision).join(",")).map_err(io)?;
        }
        rows += klines.len() as u64;
        Ok(())
    })?;
    w.flush().map_err(io)?;
    Ok(rows)
}

/// Calls `write` with the present klines of `from..=to` as record batches
/// (one per chunk the store reads at a time); returns the rows.
fn for_each_batch(
    series: &Series,
    from: i64,
    to: i64,
    mut write: impl FnMut(arrow_array::RecordBatch) -> Result<()>,
) -> Result<u64> {
    let precision: Precision = series.precision();
    let mut rows = 0;
    series.for_each_chunk(from, to, |klines: &[Kline]| {
        if klines.is_empty() {
            return Ok(());
        }
        rows += klines.len() as u64;
        write(crate::arrow::to_record_batch(klines, precision)?)
    })?;
    Ok(rows)
}

/// The UTC year of epoch ms `t`.
fn year_of(t: i64) -> Result<i32> {
    chrono::DateTime::from_timestamp_millis(t)
        .map(|d| d.year())
        .ok_or_else(|| Error::InvalidInput(format!("time {t} is out of range")))
}

/// First and last epoch ms of UTC `year`.
fn year_bounds(year: i32) -> Result<(i64, i64)> {
    let start = |y: i32| {
        chrono::NaiveDate::from_ymd_opt(y, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp_millis())
            .ok_or_else(|| Error::InvalidInput(format!("year {y} is out of range")))
    };
    Ok((start(year)?, start(year + 1)? - 1))
}

/// The manifest of an earlier export in `out`, or an empty one (none, or
/// one this build cannot trust: then every file is written again).
fn read_manifest(out: &Path) -> Manifest {
    let path = out.join(MANIFEST);
    let Ok(bytes) = std::fs::read(&path) else {
        return Manifest::default();
    };
    parse_manifest(&bytes).unwrap_or_else(|e| {
        log::warn!(
            "{}: manifest {e}; every file is written again",
            path.display()
        );
        Manifest::default()
    })
}

/// Writes the manifest atomically (temporary file, sync, rename).
fn write_manifest(out: &Path, m: &Manifest) -> Result<()> {
    let path = out.join(MANIFEST);
    let tmp = out.join(format!(".{MANIFEST}.tmp-{}", std::process::id()));
    let signed = Manifest {
        atm_export: m.atm_export,
        format: m.format,
        files: m.files.clone(),
        check: m.checksum(),
    };
    let bytes = serde_json::to_vec_pretty(&signed)
        .map_err(|e| Error::InvalidInput(format!("manifest: {e}")))?;
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", &path, e)
    })
}

/// Removes `dir` and its parents up to (not including) `root` while empty.
fn remove_empty_dirs(root: &Path, mut dir: Option<&Path>) {
    while let Some(d) = dir.filter(|d| d.starts_with(root) && *d != root) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_and_partitions() {
        assert_eq!(year_of(1_704_067_199_999).unwrap(), 2023);
        assert_eq!(year_of(1_704_067_200_000).unwrap(), 2024);
        assert_eq!(
            year_bounds(2024).unwrap(),
            (1_704_067_200_000, 1_735_689_599_999)
        );
        let key = SeriesKey::parse(crate::Market::UsdM, "BTCUSDT", crate::Interval::Mo1).unwrap();
        assert_eq!(
            partition_dir(&key, 2024),
            PathBuf::from("market=um/interval=1mo/symbol=BTCUSDT/year=2024")
        );
    }

    #[test]
    fn a_manifest_is_trusted_only_when_its_checksum_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest {
            atm_export: MANIFEST_VERSION,
            format: Some(ExportFormat::Csv),
            ..Manifest::default()
        };
        m.files.insert(
            "a/klines.csv".into(),
            FileEntry {
                series: "spot/X/1m".into(),
                year: 2024,
                rows: 5,
                bytes: 9,
                fingerprint: "01".into(),
            },
        );
        write_manifest(dir.path(), &m).unwrap();
        assert_eq!(read_manifest(dir.path()).files, m.files);
        let path = dir.path().join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"rows\": 5", "\"rows\": 6");
        std::fs::write(&path, text).unwrap();
        assert!(
            read_manifest(dir.path()).files.is_empty(),
            "a changed entry: every file is written again"
        );
        assert!(
            parse_manifest(b"{\"atm_export\":1,\"format\":null,\"files\":{}}")
                .unwrap_err()
                .contains("version 1")
        );
    }
}
