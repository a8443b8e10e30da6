//! Binance's public archives (data.binance.vision): monthly and daily kline
//! zips with a `.CHECKSUM` (SHA-256) beside each.
//!
//! `atm sync --source auto` (the default) takes history from them and REST
//! only for what they do not cover: for each range a series lacks, whole
//! past months come from monthly zips (daily zips for `1s`, whose months are
//! too big to hold), the days of the current month from daily zips, and
//! the newest hours, and anything whose archive is missing (404), from
//! REST. A zip streams from the download through the hash, unzip and CSV
//! parsing into memory (one file at a time per worker: at most a month of
//! 1m or a day of 1s, ~100k rows), and its rows are committed only once its
//! SHA-256 matches the `.CHECKSUM`. A mismatch is fetched again once, then
//! that range is left to REST and reported.
//!
//! Rows the store already holds are kept: identical ones are no-ops,
//! different ones are logged and the stored (REST) value stays, as the
//! exchange's API is the authority. The slots of a verified file's range
//! that it has no row for are recorded known-missing, so a second sync of
//! the same range downloads nothing.

use std::io::Read;

use atm_store::{Interval, Kline, Precision, SeriesKey};
use chrono::{Datelike, TimeZone, Utc};
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::first_kline::{next_open, open_of};

/// Where each range of a sync comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Archives where they exist, REST for the rest.
    #[default]
    Auto,
    /// Archives only.
    Archive,
    /// REST only.
    Rest,
}

impl std::str::FromStr for Source {
    type Err = Error;

    fn from_str(s: &str) -> Result<Source> {
        match s {
            "auto" => Ok(Source::Auto),
            "archive" => Ok(Source::Archive),
            "rest" => Ok(Source::Rest),
            _ => Err(Error::Config(format!(
                "--source must be auto, archive or rest, not {s:?}"
            ))),
        }
    }
}

/// Klines per month above which daily files are used instead of monthly
/// ones (only `1s`: 2.6M a month), so a file's rows fit in memory.
const MONTHLY_MAX_ROWS: i64 = 100_000;

/// One archive file: a series' klines of one day or month.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArchiveFile {
    /// The series.
    pub key: SeriesKey,
    /// A daily file (else monthly).
    pub daily: bool,
    /// Its first open time (the day's or month's start, UTC), epoch ms.
    pub start: i64,
    /// The end of its day or month (exclusive), epoch ms.
    pub end: i64,
}

impl ArchiveFile {
    /// Its path under the archive root, e.g.
    /// `futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip`.
    pub fn path(&self) -> String {
        let d = Utc
            .timestamp_millis_opt(self.start)
            .single()
            .map(|d| d.date_naive())
            .unwrap_or_default();
        let (period, date) = if self.daily {
            ("daily", d.format("%Y-%m-%d").to_string())
        } else {
            ("monthly", format!("{:04}-{:02}", d.year(), d.month()))
        };
        let (s, iv) = (self.key.symbol.as_str(), self.key.interval.file_name());
        format!(
            "{}/{period}/klines/{s}/{iv}/{s}-{iv}-{date}.zip",
            self.key.market.archive_path()
        )
    }
}

/// Whether daily files exist for `interval` (not for 3d, 1w, 1M).
fn has_daily(interval: Interval) -> bool {
    !matches!(interval, Interval::D3 | Interval::W1 | Interval::Mo1)
}

/// The archive files that may hold the klines of `gaps` (inclusive open
/// times) of `key`, at exchange time `now`, oldest first: monthly files for
/// whole past months, daily files for the past days of the current month.
pub fn plan_files(key: &SeriesKey, gaps: &[(i64, i64)], now: i64) -> Vec<ArchiveFile> {
    let (month_now, day_now) = (open_of(Interval::Mo1, now), open_of(Interval::D1, now));
    let monthly_ok = key
        .interval
        .step_ms()
        .is_none_or(|s| 31 * 86_400_000 / s <= MONTHLY_MAX_ROWS);
    let mut files = Vec::new();
    let daily = |files: &mut Vec<ArchiveFile>, from: i64, to_excl: i64| {
        if !has_daily(key.interval) {
            return;
        }
        let mut d = open_of(Interval::D1, from);
        while d < to_excl {
            files.push(ArchiveFile {
                key: key.clone(),
                daily: true,
                start: d,
                end: d + 86_400_000,
            });
            d += 86_400_000;
        }
    };
    for &(a, z) in gaps {
        let mut m = open_of(Interval::Mo1, a);
        while m <= z {
            let m_end = next_open(Interval::Mo1, m);
            if m_end <= month_now && monthly_ok {
                files.push(ArchiveFile {
                    key: key.clone(),
                    daily: false,
                    start: m,
                    end: m_end,
                });
            } else if m_end <= month_now {
                daily(&mut files, a.max(m), (z + 1).min(m_end));
            } else {
                daily(&mut files, a.max(m), (z + 1).min(m_end).min(day_now));
            }
            m = m_end;
        }
    }
    files.sort();
    files.dedup();
    files
}

/// What fetching an archive file gave.
#[derive(Debug)]
pub enum Fetched {
    /// No such file (404): REST covers its range.
    Missing,
    /// The file's rows, its SHA-256 verified against its `.CHECKSUM`.
    Verified {
        /// Its klines, as the file lists them.
        klines: Vec<Kline>,
        /// The SHA-256, lower-case hex.
        sha256: String,
        /// Its size in bytes.
        bytes: u64,
    },
    /// The zip's SHA-256 is not its `.CHECKSUM`'s: nothing of it may be stored.
    Mismatch {
        /// What the `.CHECKSUM` says.
        want: String,
        /// What the download hashed to.
        got: String,
    },
}

/// Fetches `file` from the archive root `base` (`…/data`): its checksum,
/// then the zip, streamed through SHA-256, unzip and CSV parsing. Network
/// failures are retried with the client's backoff.
pub fn fetch(
    client: &Client,
    base: &str,
    file: &ArchiveFile,
    precision: Precision,
) -> Result<Fetched> {
    let url = format!("{base}/{}", file.path());
    let Some(sum) = client.archive_get(file.key.market, &format!("{url}.CHECKSUM"))? else {
        return Ok(Fetched::Missing);
    };
    let want = String::from_utf8_lossy(&sum)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Malformed {
            market: file.key.market,
            path: format!("{url}.CHECKSUM"),
            msg: "not a sha256sum line".into(),
        });
    }
    client.retrying(|| {
        let Some(body) = client.archive_stream(file.key.market, &url)? else {
            return Ok(Fetched::Missing);
        };
        let mut reader = Hashing {
            inner: body,
            hash: Sha256::new(),
            bytes: 0,
        };
        let parsed = read_zip(&mut reader, &url, precision);
        // The rest of the body (the zip's central directory) is hashed too.
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| net(file, &url, e))?;
        client
            .stats
            .archive_bytes
            .fetch_add(reader.bytes, std::sync::atomic::Ordering::Relaxed);
        let got: String = reader
            .hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != want {
            return Ok(Fetched::Mismatch {
                want: want.clone(),
                got,
            });
        }
        Ok(Fetched::Verified {
            klines: parsed?,
            sha256: got,
            bytes: reader.bytes,
        })
    })
}

fn net(file: &ArchiveFile, url: &str, e: impl std::fmt::Display) -> Error {
    Error::Network {
        market: file.key.market,
        path: url.to_string(),
        msg: e.to_string(),
    }
}

/// The rows of every `.csv` entry of a zip read from a stream.
fn read_zip(reader: &mut impl Read, url: &str, precision: Precision) -> Result<Vec<Kline>> {
    let mut klines = Vec::new();
    let bad = |msg: String| Error::Store(atm_store::Error::InvalidInput(format!("{url}: {msg}")));
    while let Some(entry) = zip::read::read_zipfile_from_stream(reader)
        .map_err(|e| bad(format!("not a readable zip: {e}")))?
    {
        let name = entry.name().map(|n| n.to_string()).unwrap_or_default();
        if !name.ends_with(".csv") {
            continue;
        }
        let path = std::path::PathBuf::from(format!("{url}/{name}"));
        atm_store::import::parse_csv(entry, &path, precision, |_, k| {
            klines.push(k);
            Ok(())
        })?;
    }
    Ok(klines)
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// What the archive phase of a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveSummary {
    /// Archive files planned (monthly and daily zips that may exist).
    pub planned: u64,
    /// Files verified and committed.
    pub files: u64,
    /// Klines written from them.
    pub klines: u64,
    /// Bytes of zips downloaded (every attempt).
    pub bytes: u64,
    /// Files that do not exist (404): their ranges are left to REST.
    pub missing: u64,
    /// Rows that differ from a stored kline, which was kept (logged).
    pub kept_stored: u64,
    /// Files whose SHA-256 did not match their `.CHECKSUM`, twice: nothing of
    /// them was stored; their ranges are left to REST.
    pub mismatches: Vec<String>,
    /// Files that could not be fetched (retries ran out): left to REST.
    pub failed: Vec<String>,
}

/// Fetches, verifies and commits the archive files that may hold the
/// `gaps` of each series (see the module docs), with `workers` downloads in
/// flight. Returns when every file is done, or, after a
/// [`Control::Stop`](crate::pipeline::Control::Stop) on `control`, when the
/// downloads under way are (the `bool` says it was stopped).
pub(crate) fn import(
    client: &Client,
    store: &atm_store::Store,
    writer: &mut atm_store::Writer,
    plans: &[crate::sync::SeriesPlan],
    now: i64,
    workers: usize,
    control: Option<&crate::pipeline::ControlRequests>,
) -> Result<(ArchiveSummary, bool)> {
    use crate::pipeline::{Control, ControlReply};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let stop = &AtomicBool::new(false);
    let files: Vec<(ArchiveFile, &[(i64, i64)])> = plans
        .iter()
        .flat_map(|p| {
            plan_files(&p.key, &p.gaps, now)
                .into_iter()
                .map(move |f| (f, p.gaps.as_slice()))
        })
        .collect();
    let mut summary = ArchiveSummary {
        planned: files.len() as u64,
        ..ArchiveSummary::default()
    };
    let stats = &client.stats;
    stats
        .archive_files_planned
        .fetch_add(summary.planned, Relaxed);
    if files.is_empty() {
        return Ok((summary, false));
    }
    let base = root_of(client.endpoints().sim_base.as_deref());
    let precision = store.precision();
    let bytes0 = client.stats.archive_bytes.load(Relaxed);
    let next = AtomicUsize::new(0);
    let (tx, rx) = crossbeam_channel::bounded::<(usize, Result<Fetched>)>(workers.max(1) * 2);
    let result = std::thread::scope(|scope| -> Result<()> {
        for _ in 0..workers.clamp(1, 32).min(files.len()) {
            let (tx, next, files, base) = (tx.clone(), &next, &files, &base);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Relaxed);
                let Some((file, _)) = files.get(i).filter(|_| !stop.load(Relaxed)) else {
                    break;
                };
                // A mismatch is fetched once more before the range goes to REST.
                let mut got = fetch(client, base, file, precision);
                if let Ok(Fetched::Mismatch { want, got: hashed }) = &got {
                    log::warn!(
                        "{}: SHA-256 {hashed} is not the .CHECKSUM's {want}; fetching it again",
                        file.path()
                    );
                    got = fetch(client, base, file, precision);
                }
                if tx.send((i, got)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut control = control.cloned().unwrap_or_else(crossbeam_channel::never);
        loop {
            let (i, got) = crossbeam_channel::select! {
                recv(rx) -> r => match r {
                    Ok(r) => r,
                    Err(_) => break,
                },
                recv(control) -> req => {
                    match req {
                        Ok(req) => {
                            if matches!(req.body(), Control::Stop) {
                                log::info!("stopping: finishing the archive downloads under way");
                                stop.store(true, Relaxed);
                            }
                            req.reply(ControlReply::Done);
                        }
                        Err(_) => control = crossbeam_channel::never(),
                    }
                    continue;
                }
            };
            let (file, gaps) = &files[i];
            match got {
                Ok(Fetched::Missing) => {
                    summary.missing += 1;
                    stats.archive_files_missing.fetch_add(1, Relaxed);
                }
                Ok(Fetched::Mismatch { want, got }) => {
                    stats.archive_files_failed.fetch_add(1, Relaxed);
                    log::warn!(
                        "{}: SHA-256 {got} is not the .CHECKSUM's {want} again: nothing of it is stored; REST covers its range",
                        file.path()
                    );
                    summary.mismatches.push(file.path());
                }
                Ok(Fetched::Verified {
                    klines,
                    sha256,
                    bytes,
                }) => {
                    let record = ArchiveRecord {
                        series: file.key.to_string(),
                        path: file.path(),
                        sha256,
                        bytes,
                        from: file.start,
                        to: open_of(file.key.interval, file.end - 1),
                    };
                    append_record(store.dir(), &record)?;
                    let (written, kept) = commit_file(store, writer, file, gaps, klines)?;
                    summary.files += 1;
                    summary.klines += written;
                    summary.kept_stored += kept;
                    stats.archive_files_done.fetch_add(1, Relaxed);
                    stats.archive_klines.fetch_add(written, Relaxed);
                }
                Err(e) => {
                    stats.archive_files_failed.fetch_add(1, Relaxed);
                    log::warn!("{}: {e}; REST covers its range", file.path());
                    summary.failed.push(file.path());
                }
            }
        }
        Ok(())
    });
    if result.is_err() {
        writer.rollback();
    }
    result?;
    summary.bytes = client.stats.archive_bytes.load(Relaxed) - bytes0;
    Ok((summary, stop.load(Relaxed)))
}

/// For `--dry-run`: of the klines `gaps` lack, how many fall in archive
/// files that may exist, per series (files, klines).
pub(crate) fn estimate(key: &SeriesKey, gaps: &[(i64, i64)], now: i64) -> (u64, u64) {
    let files = plan_files(key, gaps, now);
    let iv = key.interval;
    let mut klines = 0;
    for f in &files {
        for &(a, z) in gaps {
            let (a, z) = (a.max(f.start), z.min(open_of(iv, f.end - 1)));
            if a <= z {
                klines += crate::sync::slots_between(iv, a, z);
            }
        }
    }
    (files.len() as u64, klines)
}

/// Writes a verified file's rows into the slots of `gaps` it covers, marks
/// the slots of those gaps it has no row for known-missing, and commits.
/// Rows on slots already stored are compared: identical ones are no-ops,
/// different ones keep the stored kline (REST is the authority) and are
/// counted. Returns (klines written, rows that differed from the store).
fn commit_file(
    store: &atm_store::Store,
    writer: &mut atm_store::Writer,
    file: &ArchiveFile,
    gaps: &[(i64, i64)],
    mut rows: Vec<Kline>,
) -> Result<(u64, u64)> {
    let key = &file.key;
    let (lo, hi) = (file.start, file.end - 1);
    rows.retain(|k| (lo..=hi).contains(&k.open_time));
    rows.sort_by_key(|k| k.open_time);
    rows.dedup_by_key(|k| k.open_time);
    let in_gap = |t: i64| gaps.iter().any(|&(a, z)| (a..=z).contains(&t));
    let (fresh, stored_slots): (Vec<Kline>, Vec<Kline>) =
        rows.into_iter().partition(|k| in_gap(k.open_time));
    let mut kept = 0;
    if !stored_slots.is_empty() {
        if let Some(series) = store.series(key)? {
            let precision = store.precision();
            let stored: std::collections::HashMap<i64, Kline> = series
                .range(lo, hi)?
                .into_iter()
                .map(|k| (k.open_time, k))
                .collect();
            for k in &stored_slots {
                let rounded = Kline {
                    values: k.values.map(|v| precision.round(v)),
                    ..*k
                };
                if stored.get(&k.open_time).is_some_and(|s| *s != rounded) {
                    kept += 1;
                    if kept == 1 {
                        log::warn!(
                            "{key}: {} has a kline at {} that differs from the stored one; the stored (REST) one stays",
                            file.path(),
                            k.open_time
                        );
                    }
                }
            }
        }
    }
    writer.put_many(key, &fresh)?;
    for &(a, z) in gaps {
        let (a, z) = (a.max(lo), z.min(open_of(key.interval, hi)));
        if a <= z {
            let page = crate::sync::Page {
                key: key.clone(),
                from: a,
                to: z,
                limit: 0,
            };
            let inside: Vec<Kline> = fresh
                .iter()
                .filter(|k| (a..=z).contains(&k.open_time))
                .copied()
                .collect();
            crate::pipeline::mark_absent(writer, &page, &inside)?;
        }
    }
    writer.commit()?;
    Ok((fresh.len() as u64, kept))
}

/// The record of which archive filled which range, `<store>/archives.jsonl`
/// (see docs/format.md): a header line, then one JSON object per
/// committed file, each with a `check` over its other fields. Appended
/// (and synced) before the file's rows are committed, so every committed
/// archive has its line; a torn last line is ignored on reading.
pub const ARCHIVE_LOG: &str = "archives.jsonl";
pub(crate) const ARCHIVE_LOG_HEADER: &str = "{\"atm_archives\":1}";

/// One line of [`ARCHIVE_LOG`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchiveRecord {
    /// The series, `um/BTCUSDT/1m`.
    pub series: String,
    /// The file's path under the archive root.
    pub path: String,
    /// Its SHA-256 when it was imported.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// First and last open time of its range.
    pub from: i64,
    /// Last open time of its range.
    pub to: i64,
}

impl ArchiveRecord {
    /// The record's check: the first 16 hex digits of the SHA-256 of its JSON.
    fn check(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        Sha256::digest(json.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The record as a line of the log (its JSON with its `check`), no newline.
    pub fn line(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["check"] = serde_json::Value::String(self.check());
        v.to_string()
    }
}

/// Appends `r` to the store's archive log, synced.
fn append_record(store_dir: &std::path::Path, r: &ArchiveRecord) -> Result<()> {
    use std::io::Write;
    let path = store_dir.join(ARCHIVE_LOG);
    let io = |e: std::io::Error| Error::Store(atm_store::Error::io("append to", &path, e));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    let mut line = String::new();
    if f.metadata().map_err(io)?.len() == 0 {
        line.push_str(ARCHIVE_LOG_HEADER);
        line.push('\n');
    }
    line.push_str(&r.line());
    line.push('\n');
    f.write_all(line.as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)
}

/// Every valid record of the store's archive log, oldest first (lines that
/// fail their check, a torn last line, are skipped with a warning).
pub fn read_records(store_dir: &std::path::Path) -> Result<Vec<ArchiveRecord>> {
    let path = store_dir.join(ARCHIVE_LOG);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Store(atm_store::Error::io("read", &path, e))),
    };
    parse_records(&text, &path)
}

/// The records of an archive log's bytes (see [`read_records`]).
pub fn parse_records(bytes: &[u8], path: &std::path::Path) -> Result<Vec<ArchiveRecord>> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h == ARCHIVE_LOG_HEADER => {}
        Some(h) => {
            let h: String = h.chars().take(80).collect();
            return Err(Error::Config(format!(
                "{}: not an atm archive log (first line {h:?})",
                path.display()
            )));
        }
        None => return Ok(Vec::new()),
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| {
                let check = v["check"].as_str()?.to_string();
                let r: ArchiveRecord = serde_json::from_value(v).ok()?;
                (r.check() == check).then_some(r)
            });
        match parsed {
            Some(r) => out.push(r),
            None => log::warn!(
                "{} line {}: torn or damaged, skipped",
                path.display(),
                i + 2
            ),
        }
    }
    Ok(out)
}

/// The fuzz targets' entry for a streamed zip: every kline parsed from it
/// (at both precisions) is one the store accepts.
#[cfg(feature = "test-hooks")]
pub(crate) fn fuzz_zip(data: &[u8]) {
    for precision in [Precision::F32, Precision::F64] {
        if let Ok(klines) = read_zip(&mut &data[..], "fuzz.zip", precision) {
            for k in klines {
                assert!(
                    k.close_time >= k.open_time,
                    "a zip row closing before it opens was accepted"
                );
            }
        }
    }
}

/// What `atm verify --archives` found for one recorded archive.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveCheck {
    /// The record.
    pub record: ArchiveRecord,
    /// `same`, `replaced` (its `.CHECKSUM` changed since the import) or `gone` (404).
    pub state: String,
    /// The `.CHECKSUM`'s SHA-256 now, when there is one.
    pub sha256_now: Option<String>,
}

/// Fetches the `.CHECKSUM` of every archive the store imported and compares
/// it with the one recorded: archives Binance replaced later (or removed)
/// are reported, with the range they filled.
pub fn check_records(client: &Client, store_dir: &std::path::Path) -> Result<Vec<ArchiveCheck>> {
    let base = root_of(client.endpoints().sim_base.as_deref());
    let mut out = Vec::new();
    for record in read_records(store_dir)? {
        let market = record
            .series
            .split('/')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(atm_store::Market::Spot);
        let sum = client.archive_get(market, &format!("{base}/{}.CHECKSUM", record.path))?;
        let now = sum.map(|s| {
            String::from_utf8_lossy(&s)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        });
        let state = match &now {
            None => "gone",
            Some(h) if *h == record.sha256 => "same",
            Some(_) => "replaced",
        };
        out.push(ArchiveCheck {
            record,
            state: state.to_string(),
            sha256_now: now,
        });
    }
    Ok(out)
}

/// The archive root of a market-data base URL: data.binance.vision for
/// Binance's hosts, `<base>/data` for a simulator or another server.
pub fn root_of(spec_base: Option<&str>) -> String {
    match spec_base {
        Some(u) => format!("{}/data", u.trim_end_matches('/')),
        None => "https://data.binance.vision/data".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atm_store::Market;

    const DAY: i64 = 86_400_000;

    #[test]
    fn zips_stream_into_klines_whatever_their_entries() {
        let seed = |n: &str| {
            std::fs::read(format!(
                "{}/../fuzz/corpus/ingest_archive_zip/{n}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let ks = read_zip(&mut &seed("spot_1m")[..], "spot_1m", Precision::F32).unwrap();
        assert_eq!((ks.len(), ks[0].open_time), (10, 1_637_971_200_000));
        // Spot's microsecond times from 2025 become milliseconds.
        let ks = read_zip(
            &mut &seed("spot_1s_micros")[..],
            "spot_1s_micros",
            Precision::F64,
        )
        .unwrap();
        assert_eq!((ks.len(), ks[0].open_time), (3, 1_735_689_600_000));
        assert_eq!(
            read_zip(&mut &seed("header_row")[..], "header_row", Precision::F32)
                .unwrap()
                .len(),
            1
        );
        assert!(read_zip(&mut &seed("no_csv")[..], "no_csv", Precision::F32)
            .unwrap()
            .is_empty());
        let err = read_zip(&mut &b"PK\x03\x04garbage"[..], "bad.zip", Precision::F32)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.zip"), "{err}");
    }

    #[test]
    fn months_then_days_then_rest() {
        let key = SeriesKey::parse(Market::UsdM, "BTCUSDT", Interval::M1).unwrap();
        // Now: 2024-03-05 12:00 UTC. Wanted: 2024-01-15 .. now.
        let now = 1_709_640_000_000;
        let from = 1_705_276_800_000;
        let files = plan_files(&key, &[(from, now)], now);
        let paths: Vec<String> = files.iter().map(ArchiveFile::path).collect();
        assert_eq!(
            paths,
            [
                "futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip",
                "futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-02.zip",
                "futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-01.zip",
                "futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-02.zip",
                "futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-03.zip",
                "futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-04.zip",
            ]
        );
        assert!(files.iter().all(|f| f.end
            == if f.daily {
                f.start + DAY
            } else {
                next_open(Interval::Mo1, f.start)
            }));
        // 1s: days, even of past months; 1M: months only, `1mo` in names.
        let s1 = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::S1).unwrap();
        assert!(
            plan_files(&s1, &[(1_706_659_200_000, 1_706_831_999_000)], now)
                .iter()
                .all(|f| f.daily)
        );
        let mo = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::Mo1).unwrap();
        let files = plan_files(&mo, &[(1_704_067_200_000, now)], now);
        assert_eq!(
            files.iter().map(ArchiveFile::path).collect::<Vec<_>>(),
            [
                "spot/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2024-01.zip",
                "spot/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2024-02.zip"
            ]
        );
    }
}
