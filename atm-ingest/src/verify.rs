//! `atm verify --exchange`: fetch stored ranges again and compare them,
//! kline by kline, with what the store holds; `--repair` rewrites what
//! differs from REST and refetches blocks whose checksums fail.
//!
//! ```text
//!  pages of stored ranges ──▶ fetchers (N threads, budget) ──▶ comparer (+ writer when repairing)
//!  (all, or a random sample)
//! ```
//!
//! A series' stored range is its first to its last present kline; pages
//! cover it as `atm sync` would have fetched it. Only closed klines are
//! compared.

use std::sync::atomic::Ordering::Relaxed;

use atm_store::{Kline, Market, SeriesKey, SlotState, Store, FLOAT_COLUMNS};
use crossbeam_channel::bounded;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::sync::{page_count, pages_of, Page, SeriesPlan};

/// What to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Only series of these markets.
    pub markets: Vec<Market>,
    /// Check only this many pages, drawn at random over every stored range;
    /// all of them when `None`.
    pub sample: Option<u64>,
    /// Seeds the sample.
    pub seed: u64,
    /// Rewrite what differs from REST, and refetch damaged blocks.
    pub repair: bool,
    /// Requests in flight.
    pub workers: usize,
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            markets: Market::ALL.to_vec(),
            sample: None,
            seed: 1,
            repair: false,
            workers: 8,
        }
    }
}

/// One kline that is not as the exchange has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// The series.
    pub series: SeriesKey,
    /// Open time of the slot (the first slot of a damaged block).
    pub open_time: i64,
    /// What is wrong.
    pub kind: MismatchKind,
}

/// What is wrong with a slot.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MismatchKind {
    /// Stored, but a field differs: (field, stored, exchange).
    Differs(&'static str, String, String),
    /// The exchange has the kline; the store has nothing there.
    NotStored,
    /// The exchange has the kline; the store records the slot known-missing.
    MarkedMissing,
    /// Stored, but the exchange has no kline there.
    Extra,
    /// The block holding these slots fails its checksum (up to `to`).
    Damaged {
        /// Open time of the block's last slot.
        to: i64,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = atm_store::format_ms(self.open_time);
        match &self.kind {
            MismatchKind::Differs(field, s, e) => write!(
                f,
                "{} {at}: {field} differs: stored {s}, exchange {e}",
                self.series
            ),
            MismatchKind::NotStored => write!(
                f,
                "{} {at}: missing: the exchange has this kline, the store does not",
                self.series
            ),
            MismatchKind::MarkedMissing => {
                write!(
                    f,
                    "{} {at}: missing: recorded known-missing, but the exchange has this kline",
                    self.series
                )
            }
            MismatchKind::Extra => write!(
                f,
                "{} {at}: extra: stored, but the exchange has no kline here",
                self.series
            ),
            MismatchKind::Damaged { to } => {
                write!(
                    f,
                    "{} {at} to {}: damaged: the block fails its checksum",
                    self.series,
                    atm_store::format_ms(*to)
                )
            }
        }
    }
}

/// What a verification found and did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Series looked at.
    pub series: u64,
    /// Pages fetched and compared.
    pub pages: u64,
    /// Klines the exchange returned for them.
    pub klines_checked: u64,
    /// Stored klines with a field that differs.
    pub differ: u64,
    /// Klines the exchange has that the store lacks (unknown or marked missing).
    pub missing: u64,
    /// Stored klines the exchange does not have.
    pub extra: u64,
    /// Blocks failing their checksums.
    pub damaged_blocks: u64,
    /// Klines rewritten by `--repair`.
    pub repaired: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Weight used.
    pub weight: u64,
}

impl VerifyReport {
    /// Whether anything was found wrong.
    pub fn found_problems(&self) -> bool {
        self.differ + self.missing + self.extra + self.damaged_blocks > 0
    }
}

/// Verifies the store against the exchange; calls `found` for each mismatch
/// as it is found.
pub fn verify(
    client: &Client,
    store: &Store,
    opts: &VerifyOptions,
    mut found: impl FnMut(&Mismatch),
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut plans = Vec::new();
    for key in store.list_series()? {
        if !opts.markets.contains(&key.market) {
            continue;
        }
        let Some(series) = store.series(&key)? else {
            continue;
        };
        let stats = series.stats()?;
        let damaged = series.damaged_ranges();
        for &(from, to) in &damaged {
            report.damaged_blocks += 1;
            found(&Mismatch {
                series: key.clone(),
                open_time: from,
                kind: MismatchKind::Damaged { to },
            });
        }
        report.series += 1;
        let mut gaps = Vec::new();
        if let (Some(a), Some(b)) = (stats.first_open_time, stats.last_open_time) {
            gaps.push((a, b));
        }
        if opts.repair {
            gaps.extend(damaged.iter().copied());
        }
        if !gaps.is_empty() {
            plans.push(SeriesPlan { key, gaps });
        }
    }
    let now = client.clock().now();
    let mut writer = if opts.repair {
        // Every series to repair is locked before any is written: one
        // another writer holds fails the repair at once, naming it and its pid.
        let mut w = store.writer()?;
        w.lock_all(&plans.iter().map(|p| p.key.clone()).collect::<Vec<_>>())?;
        Some(w)
    } else {
        None
    };
    let failure: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    let precision = store.precision();
    std::thread::scope(|scope| -> Result<()> {
        let (page_tx, page_rx) = bounded::<Page>(opts.workers * 2);
        let (got_tx, got_rx) = bounded::<(Page, Vec<Kline>)>(opts.workers * 2);
        let plans = &plans;
        scope.spawn(move || send_pages(plans, opts, |page| page_tx.send(page).is_ok()));
        let failure = &failure;
        for _ in 0..opts.workers.max(1) {
            let (page_rx, got_tx) = (page_rx.clone(), got_tx.clone());
            scope.spawn(move || {
                for page in page_rx {
                    match page.fetch(client, precision) {
                        Ok(k) => {
                            if got_tx.send((page, k)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            atm_types::sync::lock(failure).get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
        drop(got_tx);
        drop(page_rx);
        let mut since_commit = 0;
        for (page, remote) in got_rx {
            let remote: Vec<Kline> = remote
                .into_iter()
                .filter(|k| {
                    k.open_time >= page.from && k.open_time <= page.to && k.close_time < now
                })
                .collect();
            report.pages += 1;
            report.klines_checked += remote.len() as u64;
            let wrong = compare(store, &page, &remote, &mut report, &mut found)?;
            if let Some(w) = writer.as_mut() {
                // A damaged block is rewritten whole; otherwise only what differs.
                let series = store.series(&page.key)?;
                let damaged = series.as_ref().is_some_and(|s| {
                    s.damaged_ranges()
                        .iter()
                        .any(|&(a, b)| a <= page.to && page.from <= b)
                });
                let fix: Vec<Kline> = if damaged {
                    remote.clone()
                } else {
                    remote
                        .iter()
                        .filter(|k| wrong.contains(&k.open_time))
                        .copied()
                        .collect()
                };
                if !fix.is_empty() {
                    w.put_many(&page.key, &fix)?;
                    report.repaired += fix.len() as u64;
                    since_commit += 1;
                }
                if since_commit >= 64 {
                    w.commit()?;
                    since_commit = 0;
                }
            }
        }
        if let Some(w) = writer.as_mut() {
            w.commit()?;
        }
        Ok(())
    })?;
    if let Some(w) = writer {
        w.close()?;
    }
    report.requests = client.stats.requests.load(Relaxed);
    report.weight = client.stats.weight.load(Relaxed);
    match atm_types::sync::unpoison(failure.into_inner()) {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Compares a page's klines from the exchange with the store; reports each
/// mismatch and returns the open times of the exchange's klines the store
/// lacks or holds differently.
fn compare(
    store: &Store,
    page: &Page,
    remote: &[Kline],
    report: &mut VerifyReport,
    found: &mut impl FnMut(&Mismatch),
) -> Result<Vec<i64>> {
    let Some(series) = store.series(&page.key)? else {
        return Ok(remote.iter().map(|k| k.open_time).collect());
    };
    let iv = page.key.interval;
    let mut wrong = Vec::new();
    let mut report_one = |open_time: i64, kind: MismatchKind| {
        match kind {
            MismatchKind::Differs(..) => report.differ += 1,
            MismatchKind::NotStored | MismatchKind::MarkedMissing => report.missing += 1,
            MismatchKind::Extra => report.extra += 1,
            MismatchKind::Damaged { .. } => {}
        }
        found(&Mismatch {
            series: page.key.clone(),
            open_time,
            kind,
        });
    };
    // A damaged block cannot be read: it is reported once, by block.
    let Ok(stored) = series.range(page.from, page.to) else {
        return Ok(remote.iter().map(|k| k.open_time).collect());
    };
    let missing: Vec<(i64, i64)> = series
        .coverage(page.from, page.to)?
        .into_iter()
        .filter(|r| r.state == SlotState::Missing)
        .map(|r| (r.from, r.to))
        .collect();
    let slot = |t: i64| iv.slot_of(t).ok();
    let (mut i, mut j) = (0, 0);
    while i < remote.len() || j < stored.len() {
        let (r, s) = (remote.get(i), stored.get(j));
        match (r, s) {
            (Some(r), Some(s)) if slot(r.open_time) == slot(s.open_time) => {
                if let Some((field, a, b)) = first_difference(s, r) {
                    report_one(r.open_time, MismatchKind::Differs(field, a, b));
                    wrong.push(r.open_time);
                }
                i += 1;
                j += 1;
            }
            (Some(r), s) if s.is_none_or(|s| slot(r.open_time) < slot(s.open_time)) => {
                let marked = missing
                    .iter()
                    .any(|&(a, b)| a <= r.open_time && r.open_time <= b);
                report_one(
                    r.open_time,
                    if marked {
                        MismatchKind::MarkedMissing
                    } else {
                        MismatchKind::NotStored
                    },
                );
                wrong.push(r.open_time);
                i += 1;
            }
            (_, Some(s)) => {
                report_one(s.open_time, MismatchKind::Extra);
                j += 1;
            }
            (_, None) => i += 1,
        }
    }
    Ok(wrong)
}

/// The first field in which a stored kline differs from the exchange's.
fn first_difference(stored: &Kline, remote: &Kline) -> Option<(&'static str, String, String)> {
    const NAMES: [&str; FLOAT_COLUMNS] = [
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "taker_buy_base",
        "taker_buy_quote",
    ];
    if stored.open_time != remote.open_time {
        return Some((
            "open_time",
            stored.open_time.to_string(),
            remote.open_time.to_string(),
        ));
    }
    if stored.close_time != remote.close_time {
        return Some((
            "close_time",
            stored.close_time.to_string(),
            remote.close_time.to_string(),
        ));
    }
    for (c, name) in NAMES.iter().enumerate() {
        if stored.values[c].to_bits() != remote.values[c].to_bits() {
            return Some((
                name,
                stored.values[c].to_string(),
                remote.values[c].to_string(),
            ));
        }
    }
    if stored.trades != remote.trades {
        return Some((
            "trades",
            stored.trades.to_string(),
            remote.trades.to_string(),
        ));
    }
    None
}

/// Sends every page of the plans, or a random sample of `opts.sample` of
/// them (drawn without replacement, uniformly over all pages), one series'
/// pages at a time, so a whole store's pages are never held at once.
fn send_pages(plans: &[SeriesPlan], opts: &VerifyOptions, mut send: impl FnMut(Page) -> bool) {
    let total: u64 = plans.iter().map(page_count).sum();
    let chosen = opts.sample.filter(|&n| n < total).map(|n| {
        // Floyd's algorithm: n distinct indices in 0..total.
        let mut rng = SplitMix(opts.seed);
        let mut chosen = std::collections::BTreeSet::new();
        for j in total - n..total {
            let t = rng.next() % (j + 1);
            if !chosen.insert(t) {
                chosen.insert(j);
            }
        }
        chosen
    });
    let mut index = 0u64;
    for p in plans {
        let n = page_count(p);
        let wanted = chosen
            .as_ref()
            .is_none_or(|c| c.range(index..index + n).next().is_some());
        if wanted {
            for (k, page) in pages_of(p, true).enumerate() {
                if chosen
                    .as_ref()
                    .is_none_or(|c| c.contains(&(index + k as u64)))
                    && !send(page)
                {
                    return;
                }
            }
        }
        index += n;
    }
}

/// A small, seeded generator for sampling.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_distinct_and_seeded() {
        let key = SeriesKey::parse(Market::Spot, "BTCUSDT", atm_store::Interval::M1).unwrap();
        let t0 = 1_600_000_000_000 - 1_600_000_000_000 % 60_000;
        let plans = vec![
            SeriesPlan {
                key: key.clone(),
                gaps: vec![(t0, t0 + 99_999 * 60_000)],
            },
            SeriesPlan {
                key,
                gaps: vec![(t0 - 999 * 60_000, t0)],
            },
        ];
        let pick = |sample, seed| {
            let mut froms = Vec::new();
            send_pages(
                &plans,
                &VerifyOptions {
                    sample,
                    seed,
                    ..VerifyOptions::default()
                },
                |p| {
                    froms.push(p.from);
                    true
                },
            );
            froms
        };
        let a = pick(Some(7), 9);
        assert_eq!(a.len(), 7);
        assert_eq!(a, pick(Some(7), 9));
        assert_ne!(a, pick(Some(7), 10));
        let mut dedup = a.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 7);
        assert_eq!(pick(Some(1000), 1).len(), 101);
        assert_eq!(pick(None, 1).len(), 101);
    }

    #[test]
    fn differences_name_the_field() {
        let k = Kline {
            open_time: 0,
            close_time: 59_999,
            values: [1.0; FLOAT_COLUMNS],
            trades: 3,
        };
        assert_eq!(first_difference(&k, &k), None);
        let mut r = k;
        r.values[3] = 2.0;
        assert_eq!(
            first_difference(&k, &r),
            Some(("close", "1".into(), "2".into()))
        );
        r = k;
        r.trades = 4;
        assert_eq!(first_difference(&k, &r).map(|d| d.0), Some("trades"));
    }
}
