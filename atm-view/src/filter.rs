//! The symbol filter: a case-insensitive substring match over thousands of
//! names, narrowed incrementally as the person types.

use crate::catalog::SymbolEntry;

/// The current query and the indexes of the symbols that match it.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    query: String,
    lower: String,
    matches: Vec<u32>,
}

impl Filter {
    /// A filter over `symbols` matching everything.
    pub fn new(symbols: &[SymbolEntry]) -> Filter {
        Filter {
            query: String::new(),
            lower: String::new(),
            matches: (0..symbols.len() as u32).collect(),
        }
    }

    /// The query as typed.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Indexes into the symbol list, in list order.
    pub fn matches(&self) -> &[u32] {
        &self.matches
    }

    /// Sets the query. When the new query extends the old one only the
    /// previous matches are searched, so each key typed gets cheaper.
    ///
    /// ```
    /// use atm_store::{Interval, Market, SeriesKey};
    /// let keys: Vec<_> = ["BTCUSDT", "ETHBTC", "ETHUSDT"].iter()
    ///     .map(|s| SeriesKey::parse(Market::Spot, s, Interval::M1).unwrap()).collect();
    /// let cat = atm_view::catalog::Catalog::from_keys(&keys, |_, _| None);
    /// let syms = &cat.markets[0].symbols;
    /// let mut f = atm_view::filter::Filter::new(syms);
    /// f.set(syms, "bt");
    /// assert_eq!(f.matches(), [0, 1]);
    /// f.set(syms, "btcu");
    /// assert_eq!(f.matches(), [0]);
    /// f.set(syms, "");
    /// assert_eq!(f.matches().len(), 3);
    /// ```
    pub fn set(&mut self, symbols: &[SymbolEntry], query: &str) {
        let lower = query.to_lowercase();
        let narrowing = lower.contains(self.lower.as_str())
            && !self.lower.is_empty()
            && self.matches.len() <= symbols.len();
        let found = |i: &u32| {
            symbols
                .get(*i as usize)
                .is_some_and(|s| s.lower.contains(lower.as_str()))
        };
        self.matches = if lower.is_empty() {
            (0..symbols.len() as u32).collect()
        } else if narrowing {
            self.matches.iter().copied().filter(found).collect()
        } else {
            (0..symbols.len() as u32).filter(found).collect()
        };
        self.query = query.to_string();
        self.lower = lower;
    }

    /// Re-applies the query to a new symbol list (after the catalog is reloaded).
    pub fn reapply(&mut self, symbols: &[SymbolEntry]) {
        let q = std::mem::take(&mut self.query);
        self.lower.clear();
        self.set(symbols, &q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use atm_store::{Interval, Market, SeriesKey};

    fn syms(names: &[&str]) -> Vec<SymbolEntry> {
        let keys: Vec<_> = names
            .iter()
            .map(|s| SeriesKey::parse(Market::UsdM, s, Interval::M1).unwrap())
            .collect();
        Catalog::from_keys(&keys, |_, _| None).markets[1]
            .symbols
            .clone()
    }

    #[test]
    fn narrowing_and_widening_agree_with_a_full_scan() {
        let s = syms(&[
            "BTCUSDT",
            "ETHUSDT",
            "1000SHIBUSDT",
            "币安人生USDT",
            "BTCDOMUSDT",
        ]);
        let mut f = Filter::new(&s);
        for q in [
            "u", "us", "usdt", "t", "BTC", "btcd", "", "币安", "人生u", "x", "SHIB",
        ] {
            f.set(&s, q);
            let full: Vec<u32> = (0..s.len() as u32)
                .filter(|&i| s[i as usize].lower.contains(&q.to_lowercase()))
                .collect();
            assert_eq!(f.matches(), full, "query {q:?}");
        }
    }

    #[test]
    fn reapply_follows_a_new_list() {
        let mut f = Filter::new(&syms(&["AUSDT"]));
        f.set(&syms(&["AUSDT"]), "b");
        assert!(f.matches().is_empty());
        let s2 = syms(&["AUSDT", "BUSDT"]);
        f.reapply(&s2);
        assert_eq!(f.matches(), [1]);
        assert_eq!(f.query(), "b");
    }
}
