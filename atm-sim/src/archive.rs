//! data.binance.vision on loopback: kline zips, their `.CHECKSUM`s and an
//! S3-style listing.
//!
//! * `GET /data/{spot|futures/um|futures/cm}/{daily|monthly}/klines/SYM/IV/SYM-IV-DATE.zip`
//!   One CSV of the 12 REST columns. Spot: no header, times in µs from
//!   2025-01-01. Futures: a header row, times in ms. Monthly files name
//!   `1M` as `1mo`; daily files exist for `1s`…`1d` only (`1s` on spot).
//! * `… .zip.CHECKSUM`: `<sha256>  <zip name>`, no trailing newline.
//! * `GET /?prefix=data/…/&delimiter=/[&marker=…]` (also under
//!   `/data.binance.vision`): S3 ListObjects v1 XML, 1000 entries a page.
//!
//! A daily file appears the day after its date, a monthly one on the first
//! Monday of the next month, as Binance publishes them; a file exists only
//! if its symbol had klines in it. Zips are built once and cached.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use atm_types::{Interval, Market};
use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};
use sha2::{Digest, Sha256};

use crate::candles::{next_open, Gen, Kline, Units, DAY};
use crate::exchange::Exchange;
use crate::faults::Kind;
use crate::format::{decimal, price};
use crate::rest::{Reply, Transport};

/// Spot files switched to microseconds on this day (2025-01-01).
const SPOT_MICROS_FROM: i64 = 1_735_689_600_000;
/// The futures CSV header.
const FUTURES_HEADER: &str =
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n";
/// Cached zips are evicted beyond this many bytes.
const CACHE_BYTES: usize = 256 << 20;

/// Daily or monthly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Period {
    Daily,
    Monthly,
}

/// One archive file: a symbol's klines of one interval over one day or month.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    market: Market,
    period: Period,
    symbol: String,
    interval: Interval,
    /// Start of the day or month, epoch ms.
    start: i64,
}

impl FileKey {
    fn end(&self) -> i64 {
        match self.period {
            Period::Daily => self.start + DAY,
            Period::Monthly => next_open(Interval::Mo1, self.start),
        }
    }

    fn date(&self) -> String {
        let d = Utc
            .timestamp_millis_opt(self.start)
            .single()
            .map(|d| d.date_naive())
            .unwrap_or_default();
        match self.period {
            Period::Daily => d.format("%Y-%m-%d").to_string(),
            Period::Monthly => d.format("%Y-%m").to_string(),
        }
    }

    fn zip_name(&self) -> String {
        format!(
            "{}-{}-{}.zip",
            self.symbol,
            self.interval.file_name(),
            self.date()
        )
    }

    fn dir(&self) -> String {
        let period = if self.period == Period::Daily {
            "daily"
        } else {
            "monthly"
        };
        format!(
            "data/{}/{period}/klines/{}/{}/",
            self.market.archive_path(),
            self.symbol,
            self.interval.file_name()
        )
    }

    /// When Binance publishes it: the next day, or the next month's first Monday.
    fn published(&self) -> i64 {
        match self.period {
            Period::Daily => self.end(),
            Period::Monthly => {
                let d = Utc
                    .timestamp_millis_opt(self.end())
                    .single()
                    .map(|d| d.date_naive())
                    .unwrap_or_default();
                let ahead = (7 + Weekday::Mon.num_days_from_monday() as i64
                    - d.weekday().num_days_from_monday() as i64)
                    % 7;
                self.end() + ahead * DAY
            }
        }
    }
}

/// One line of a listing: a folder (`file: None`) or a file.
struct Entry {
    name: String,
    file: Option<FileInfo>,
}

/// A listed file: when it was published, and its size once built.
struct FileInfo {
    published: i64,
    size: Option<u64>,
}

/// A built zip and its SHA-256.
#[derive(Debug)]
pub(crate) struct Built {
    zip: bytes::Bytes,
    sha256: String,
}

/// Zips built so far, evicted oldest first beyond [`CACHE_BYTES`].
#[derive(Debug, Default)]
pub(crate) struct ZipCache {
    map: HashMap<FileKey, Arc<Built>>,
    order: std::collections::VecDeque<FileKey>,
    bytes: usize,
}

fn intervals(period: Period, market: Market) -> impl Iterator<Item = Interval> {
    Interval::ALL.into_iter().filter(move |i| {
        i.valid_for(market)
            && (period == Period::Monthly
                || !matches!(i, Interval::D3 | Interval::W1 | Interval::Mo1))
    })
}

/// Parses `data/<market>/<period>/klines/<SYM>/<iv>/<file>`.
fn parse_path(path: &str) -> Option<(FileKey, bool)> {
    let p = path.strip_prefix("/data/")?;
    let (market, rest) = if let Some(r) = p.strip_prefix("spot/") {
        (Market::Spot, r)
    } else if let Some(r) = p.strip_prefix("futures/um/") {
        (Market::UsdM, r)
    } else {
        (Market::CoinM, p.strip_prefix("futures/cm/")?)
    };
    let mut parts = rest.split('/');
    let period = match parts.next()? {
        "daily" => Period::Daily,
        "monthly" => Period::Monthly,
        _ => return None,
    };
    (parts.next()? == "klines").then_some(())?;
    let (symbol, iv, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let interval = Interval::ALL.into_iter().find(|i| i.file_name() == iv)?;
    let (stem, checksum) = match file.strip_suffix(".zip.CHECKSUM") {
        Some(s) => (s, true),
        None => (file.strip_suffix(".zip")?, false),
    };
    let date = stem
        .strip_prefix(symbol)?
        .strip_prefix('-')?
        .strip_prefix(iv)?
        .strip_prefix('-')?;
    let start = match period {
        Period::Daily => NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?,
        Period::Monthly => NaiveDate::parse_from_str(&format!("{date}-01"), "%Y-%m-%d").ok()?,
    };
    let start = start.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    let key = FileKey {
        market,
        period,
        symbol: symbol.to_string(),
        interval,
        start,
    };
    (intervals(period, market).any(|i| i == interval) && key.zip_name() == format!("{stem}.zip"))
        .then_some((key, checksum))
}

impl Exchange {
    /// Answers archive paths (`/data/…` files and `/?prefix=` listings), or `None`.
    pub fn archive(&self, path: &str, query: &str) -> Option<Reply> {
        if path == "/" || path == "/data.binance.vision" || path == "/data.binance.vision/" {
            return Some(self.listing(query));
        }
        let (key, checksum) = parse_path(path)?;
        let now = self.clock.now();
        let built = self.built(&key, now)?;
        // The CDN in front of the bucket fails like the API does.
        let faults = self.faults();
        if self.dice.roll(Kind::Http5xx, faults.http5xx).is_some() {
            self.stats.faults.http5xx.fetch_add(1, Relaxed);
            return Some(Reply {
                status: 503,
                headers: vec![],
                content_type: "text/html",
                body: "<html><body><h1>503 Service Unavailable</h1></body></html>".into(),
                transport: Transport::Normal,
            });
        }
        let transport = if self.dice.roll(Kind::Reset, faults.reset).is_some() {
            self.stats.faults.reset.fetch_add(1, Relaxed);
            Transport::Reset
        } else {
            Transport::Normal
        };
        if checksum {
            self.stats.archive_checksums.fetch_add(1, Relaxed);
            let body = format!("{}  {}", built.sha256, key.zip_name());
            self.stats
                .archive_bytes
                .fetch_add(body.len() as u64, Relaxed);
            return Some(Reply {
                status: 200,
                headers: vec![],
                content_type: "application/octet-stream",
                body: body.into(),
                transport,
            });
        }
        let mut zip = built.zip.clone();
        if let Some(h) = self
            .dice
            .roll(Kind::ArchiveCorrupt, self.faults().archive_corrupt)
        {
            if let Some(bad) = self.corrupt_zip(&key, now, h) {
                self.stats.faults.archive_corrupt.fetch_add(1, Relaxed);
                zip = bad;
            }
        }
        self.stats.archive_zips.fetch_add(1, Relaxed);
        self.stats
            .archive_bytes
            .fetch_add(zip.len() as u64, Relaxed);
        Some(Reply {
            status: 200,
            headers: vec![],
            content_type: "application/zip",
            body: zip,
            transport,
        })
    }

    /// The klines of an archive file, or `None` if it does not exist (yet).
    fn file_klines(&self, key: &FileKey, now: i64) -> Option<(Vec<Kline>, Units)> {
        if key.published() > now {
            return None;
        }
        let listing = self.universe.get(key.market, &key.symbol)?;
        let g = Gen::new(&listing.model, now);
        let (start, end) = (key.start, key.end());
        g.range(start, end)?;
        let mut rows = Vec::new();
        let mut t = start;
        while t < end {
            let next = next_open(key.interval, t);
            if let Some(agg) = g.range(t, next) {
                rows.push(Kline {
                    open_time: t,
                    close_time: next - 1,
                    agg,
                });
            }
            t = next;
        }
        Some((rows, listing.model.units))
    }

    fn built(&self, key: &FileKey, now: i64) -> Option<Arc<Built>> {
        if let Some(b) = atm_types::sync::lock(&self.zips).map.get(key) {
            // Published files never change, so a cached one is current.
            return Some(b.clone());
        }
        let (rows, units) = self.file_klines(key, now)?;
        let zip = zip_csv(key, &csv(key, &rows, &units, None))?;
        let sha256 = hex(&Sha256::digest(&zip));
        let built = Arc::new(Built {
            zip: zip.into(),
            sha256,
        });
        let mut cache = atm_types::sync::lock(&self.zips);
        cache.bytes += built.zip.len();
        cache.map.insert(key.clone(), built.clone());
        cache.order.push_back(key.clone());
        while cache.bytes > CACHE_BYTES {
            let Some(old) = cache.order.pop_front() else {
                break;
            };
            if let Some(b) = cache.map.remove(&old) {
                cache.bytes -= b.zip.len();
            }
        }
        Some(built)
    }

    /// The zip with one kline's close changed by one tick.
    fn corrupt_zip(&self, key: &FileKey, now: i64, h: u64) -> Option<bytes::Bytes> {
        let (rows, units) = self.file_klines(key, now)?;
        let victim = (h % rows.len().max(1) as u64) as usize;
        zip_csv(key, &csv(key, &rows, &units, Some(victim))).map(Into::into)
    }

    fn listing(&self, query: &str) -> Reply {
        self.stats.archive_listings.fetch_add(1, Relaxed);
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (prefix, delimiter, marker) = (get("prefix"), get("delimiter"), get("marker"));
        let now = self.clock.now();
        let mut entries = self.list(&prefix, now);
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.retain(|e| marker.is_empty() || e.name > marker);
        let truncated = entries.len() > 1000;
        entries.truncate(1000);
        let mut x = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        );
        let _ = write!(
            x,
            "<Name>data.binance.vision</Name><Prefix>{}</Prefix><Marker>{}</Marker><MaxKeys>1000</MaxKeys><Delimiter>{}</Delimiter><IsTruncated>{truncated}</IsTruncated>",
            xml(&prefix),
            xml(&marker),
            xml(&delimiter)
        );
        if truncated {
            if let Some(last) = entries.last() {
                let _ = write!(x, "<NextMarker>{}</NextMarker>", xml(&last.name));
            }
        }
        for Entry { name, file } in &entries {
            match file {
                None => {
                    let _ = write!(
                        x,
                        "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                        xml(name)
                    );
                }
                Some(FileInfo { published, size }) => {
                    let modified = Utc
                        .timestamp_millis_opt(*published)
                        .single()
                        .map(|d| d.format("%Y-%m-%dT%H:%M:%S.000Z").to_string())
                        .unwrap_or_default();
                    let etag = format!("{:016x}", crate::rng::hash_str(name));
                    let _ = write!(
                        x,
                        "<Contents><Key>{}</Key><LastModified>{modified}</LastModified><ETag>&quot;{etag}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                        xml(name),
                        size.unwrap_or(0)
                    );
                }
            }
        }
        x.push_str("</ListBucketResult>");
        Reply {
            status: 200,
            headers: vec![],
            content_type: "application/xml",
            body: x.into(),
            transport: Transport::Normal,
        }
    }

    /// Folders and files directly under `prefix` (which ends in `/`).
    fn list(&self, prefix: &str, now: i64) -> Vec<Entry> {
        let p = prefix.trim_start_matches('/');
        let parts: Vec<&str> = p
            .trim_end_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let folders = |names: Vec<String>| {
            names
                .into_iter()
                .map(|n| Entry {
                    name: format!("{p}{n}/"),
                    file: None,
                })
                .collect()
        };
        let market = |parts: &[&str]| -> Option<(Market, usize)> {
            match parts {
                ["data", "spot", ..] => Some((Market::Spot, 2)),
                ["data", "futures", "um", ..] => Some((Market::UsdM, 3)),
                ["data", "futures", "cm", ..] => Some((Market::CoinM, 3)),
                _ => None,
            }
        };
        if !p.is_empty() && !p.ends_with('/') {
            return vec![];
        }
        match parts.as_slice() {
            [] => return folders(vec!["data".into()]),
            ["data"] => return folders(vec!["futures".into(), "spot".into()]),
            ["data", "futures"] => return folders(vec!["cm".into(), "um".into()]),
            _ => {}
        }
        let Some((m, at)) = market(&parts) else {
            return vec![];
        };
        let rest = &parts[at..];
        let period = |s: &str| match s {
            "daily" => Some(Period::Daily),
            "monthly" => Some(Period::Monthly),
            _ => None,
        };
        match rest {
            [] => folders(vec!["daily".into(), "monthly".into()]),
            [p] if period(p).is_some() => folders(vec!["klines".into()]),
            [p, "klines"] if period(p).is_some() => {
                let names = self
                    .universe
                    .market(m)
                    .listings
                    .iter()
                    .filter(|l| l.first_kline(now).is_some())
                    .map(|l| l.model.symbol.clone())
                    .collect();
                folders(names)
            }
            [p, "klines", sym] => match (period(p), self.universe.get(m, sym)) {
                (Some(per), Some(_)) => folders(
                    intervals(per, m)
                        .map(|i| i.file_name().to_string())
                        .collect(),
                ),
                _ => vec![],
            },
            [p, "klines", sym, iv] => {
                let (Some(per), Some(l), Some(interval)) = (
                    period(p),
                    self.universe.get(m, sym),
                    Interval::ALL.into_iter().find(|i| i.file_name() == *iv),
                ) else {
                    return vec![];
                };
                let mut files = vec![];
                let Some(first) = l.first_kline(now) else {
                    return vec![];
                };
                let mut start = match per {
                    Period::Daily => first - first.rem_euclid(DAY),
                    Period::Monthly => crate::candles::open_of(Interval::Mo1, first),
                };
                let end = l.model.life.delisted.unwrap_or(i64::MAX).min(now);
                while start < end {
                    let key = FileKey {
                        market: m,
                        period: per,
                        symbol: sym.to_string(),
                        interval,
                        start,
                    };
                    if key.published() <= now
                        && Gen::new(&l.model, now)
                            .range(key.start, key.end())
                            .is_some()
                    {
                        let size = atm_types::sync::lock(&self.zips)
                            .map
                            .get(&key)
                            .map(|b| b.zip.len() as u64);
                        let zip = format!("{}{}", key.dir(), key.zip_name());
                        let published = key.published();
                        files.push(Entry {
                            name: format!("{zip}.CHECKSUM"),
                            file: Some(FileInfo {
                                published,
                                size: size.map(|_| 64 + 2 + key.zip_name().len() as u64),
                            }),
                        });
                        files.push(Entry {
                            name: zip,
                            file: Some(FileInfo { published, size }),
                        });
                    }
                    start = key.end();
                }
                files
            }
            _ => vec![],
        }
    }
}

/// The CSV of an archive file; `corrupt` moves that row's close by one tick.
fn csv(key: &FileKey, rows: &[Kline], units: &Units, corrupt: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 140 + 128);
    if key.market != Market::Spot {
        out.extend_from_slice(FUTURES_HEADER.as_bytes());
    }
    for (i, k) in rows.iter().enumerate() {
        let micros = key.market == Market::Spot && k.open_time >= SPOT_MICROS_FROM;
        csv_row(
            &mut out,
            k,
            units,
            micros,
            if corrupt == Some(i) { units.tick } else { 0 },
        );
    }
    out
}

fn zip_csv(key: &FileKey, csv: &[u8]) -> Option<Vec<u8>> {
    let name = key.zip_name().replace(".zip", ".csv");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // A fixed timestamp keeps zips byte-identical from run to run.
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::from_date_and_time(2020, 1, 1, 0, 0, 0).ok()?);
    w.start_file(name, opts).ok()?;
    std::io::Write::write_all(&mut w, csv).ok()?;
    w.finish().ok().map(|c| c.into_inner())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Appends one CSV row, as data.binance.vision writes it.
pub(crate) fn csv_row(out: &mut Vec<u8>, k: &Kline, u: &Units, micros: bool, close_delta: i64) {
    let a = &k.agg;
    let (open_time, close_time) = if micros {
        (k.open_time * 1000, k.close_time * 1000 + 999)
    } else {
        (k.open_time, k.close_time)
    };
    use std::io::Write;
    let _ = write!(out, "{open_time},");
    for p in [
        a.open,
        a.high.max(a.close + close_delta),
        a.low.min(a.close + close_delta),
        a.close + close_delta,
    ] {
        price(out, p, u.price_decimals);
        out.push(b',');
    }
    decimal(out, a.volume, u.qty_decimals);
    let _ = write!(out, ",{close_time},");
    decimal(out, a.quote, u.quote_decimals);
    let _ = write!(out, ",{},", a.trades);
    decimal(out, a.taker_base, u.qty_decimals);
    out.push(b',');
    decimal(out, a.taker_quote, u.quote_decimals);
    out.extend_from_slice(b",0\n");
}
