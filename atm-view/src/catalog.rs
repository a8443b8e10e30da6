//! What the store holds: markets, their symbols and each symbol's intervals,
//! with the registry's status; and per-series coverage summaries, computed
//! only for the rows a person looks at.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atm_store::{Interval, Market, SeriesKey, Store};

use crate::Result;

/// One symbol of a market.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolEntry {
    /// The exchange symbol.
    pub name: String,
    /// `name` in lower case, for the filter.
    pub lower: String,
    /// Intervals with a series in the store, shortest first.
    pub intervals: Vec<Interval>,
    /// The registry's status in lower case (`trading`, `break`, `delisted`,
    /// ...), or `-` when the registry does not know the symbol.
    pub status: String,
}

/// The symbols of one market.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketEntry {
    /// The market.
    pub market: Market,
    /// Its symbols, sorted by name.
    pub symbols: Vec<SymbolEntry>,
}

/// Every market with its symbols (markets in [`Market::ALL`] order, empty
/// ones included so their tabs stay put).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// The three markets.
    pub markets: Vec<MarketEntry>,
}

impl Catalog {
    /// Lists the store's series and reads each market's registry.
    pub fn load(store: &Store) -> Result<Catalog> {
        let keys = store.list_series()?;
        let mut statuses = HashMap::new();
        for m in Market::ALL {
            // A store filled by `atm import` alone has no registry: statuses stay unknown.
            let Ok(reg) = store.registry(m) else { continue };
            for (name, info) in reg.symbols {
                let status = if info.delisted.is_some() {
                    "delisted".to_string()
                } else {
                    info.status.to_lowercase()
                };
                statuses.insert((m, name), status);
            }
        }
        Ok(Catalog::from_keys(&keys, |m, s| {
            statuses.get(&(m, s.to_string())).cloned()
        }))
    }

    /// Builds a catalog from series keys and a status lookup.
    ///
    /// ```
    /// use atm_store::{Interval, Market, SeriesKey};
    /// let keys = [
    ///     SeriesKey::parse(Market::UsdM, "ETHUSDT", Interval::H1).unwrap(),
    ///     SeriesKey::parse(Market::UsdM, "ETHUSDT", Interval::M1).unwrap(),
    /// ];
    /// let c = atm_view::catalog::Catalog::from_keys(&keys, |_, _| None);
    /// assert_eq!(c.first_market_with_data(), Some(1));
    /// assert_eq!(c.markets[1].symbols[0].intervals, [Interval::M1, Interval::H1]);
    /// ```
    pub fn from_keys(
        keys: &[SeriesKey],
        status: impl Fn(Market, &str) -> Option<String>,
    ) -> Catalog {
        let mut by_market: Vec<std::collections::BTreeMap<&str, Vec<Interval>>> =
            vec![Default::default(); Market::ALL.len()];
        for k in keys {
            let mi = market_index(k.market);
            by_market[mi]
                .entry(k.symbol.as_str())
                .or_default()
                .push(k.interval);
        }
        let markets = Market::ALL
            .iter()
            .zip(by_market)
            .map(|(&market, syms)| MarketEntry {
                market,
                symbols: syms
                    .into_iter()
                    .map(|(name, mut intervals)| {
                        intervals.sort();
                        intervals.dedup();
                        SymbolEntry {
                            name: name.to_string(),
                            lower: name.to_lowercase(),
                            intervals,
                            status: status(market, name).unwrap_or_else(|| "-".to_string()),
                        }
                    })
                    .collect(),
            })
            .collect();
        Catalog { markets }
    }

    /// Index of the first market (spot, um, cm) holding any series.
    pub fn first_market_with_data(&self) -> Option<usize> {
        self.markets.iter().position(|m| !m.symbols.is_empty())
    }

    /// Number of series in the catalog.
    pub fn series_count(&self) -> usize {
        self.markets
            .iter()
            .flat_map(|m| &m.symbols)
            .map(|s| s.intervals.len())
            .sum()
    }
}

/// Index of `m` in [`Market::ALL`].
pub fn market_index(m: Market) -> usize {
    Market::ALL.iter().position(|&x| x == m).unwrap_or(0)
}

/// Coverage of one series: its span and how much of it is present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    /// Open time of the first present kline.
    pub first: Option<i64>,
    /// Open time of the last present kline.
    pub last: Option<i64>,
    /// Present klines between them.
    pub present: u64,
    /// Known-missing slots between them.
    pub missing: u64,
    /// Unknown (not fetched) slots between them.
    pub unknown: u64,
}

impl Summary {
    /// Percent of the span that is present (100 for an empty span).
    pub fn percent_present(&self) -> f64 {
        let all = self.present + self.missing + self.unknown;
        if all == 0 {
            100.0
        } else {
            self.present as f64 * 100.0 / all as f64
        }
    }
}

/// How long a summary is trusted before it is read again (the store may be
/// filling while it is shown).
const SUMMARY_TTL: Duration = Duration::from_secs(2);

/// Summaries of the series on screen, read when first shown and refreshed
/// when stale. Bounded: the cache is dropped whole past `MAX_SUMMARIES`.
#[derive(Default)]
pub struct Summaries {
    map: HashMap<SeriesKey, (Instant, Summary)>,
}

const MAX_SUMMARIES: usize = 4096;

impl Summaries {
    /// The summary of `key`, read from the store if unknown or stale.
    pub fn get(&mut self, store: &Store, key: &SeriesKey) -> Result<Summary> {
        if let Some((at, s)) = self.map.get(key) {
            if at.elapsed() < SUMMARY_TTL {
                return Ok(*s);
            }
        }
        let s = summarize(store, key)?;
        if self.map.len() >= MAX_SUMMARIES {
            self.map.clear();
        }
        self.map.insert(key.clone(), (Instant::now(), s));
        Ok(s)
    }
}

/// Reads the summary of one series (block table only, no kline is read).
pub fn summarize(store: &Store, key: &SeriesKey) -> Result<Summary> {
    let Some(series) = store.series(key)? else {
        return Ok(Summary::default());
    };
    let st = series.stats()?;
    let (present, missing, unknown) = match (st.first_open_time, st.last_open_time) {
        (Some(f), Some(l)) => series.counts(f, l)?,
        _ => (0, 0, 0),
    };
    Ok(Summary {
        first: st.first_open_time,
        last: st.last_open_time,
        present,
        missing,
        unknown,
    })
}
