//! `Store`: a store opened read-only.

use std::path::PathBuf;

use atm_store::{Interval, Market, SeriesKey};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{raise, IntoPy};
use crate::klines::{parse_columns, Klines};

/// An atm store opened read-only (the native half of `atm.Store`).
#[pyclass(frozen, module = "atm._atm")]
pub struct Store {
    store: atm_store::Store,
}

/// One row of `atm info --format json`.
struct Info {
    key: SeriesKey,
    first: Option<i64>,
    last: Option<i64>,
    counts: (u64, u64, u64),
    bytes: u64,
}

/// A kline as a dict with `atm query`'s column names (times in epoch ms).
fn kline_dict<'py>(py: Python<'py>, k: &atm_store::Kline) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("open_time", k.open_time)?;
    d.set_item("open", k.values[0])?;
    d.set_item("high", k.values[1])?;
    d.set_item("low", k.values[2])?;
    d.set_item("close", k.values[3])?;
    d.set_item("volume", k.values[4])?;
    d.set_item("close_time", k.close_time)?;
    d.set_item("quote_volume", k.values[5])?;
    d.set_item("trades", k.trades)?;
    d.set_item("taker_buy_base", k.values[6])?;
    d.set_item("taker_buy_quote", k.values[7])?;
    Ok(d)
}

/// An atm-status error as the store error it wraps, or `atm.Error`.
fn status_err(py: Python<'_>, e: atm_status::Error) -> PyErr {
    match e {
        atm_status::Error::Store(e) => crate::errors::to_py(py, e),
        e => raise(py, "Error", e.to_string()),
    }
}

fn parse_market(m: &str) -> PyResult<Market> {
    m.parse::<Market>()
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

fn parse_interval(i: &str) -> PyResult<Interval> {
    i.parse::<Interval>()
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

fn parse_key(market: &str, symbol: &str, interval: &str) -> PyResult<SeriesKey> {
    SeriesKey::parse(parse_market(market)?, symbol, parse_interval(interval)?)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

impl Store {
    /// The series `key`, or a `SeriesNotFoundError` naming what the store has.
    fn series_of(&self, py: Python<'_>, key: &SeriesKey) -> PyResult<atm_store::Series> {
        let (found, listed) = py
            .detach(|| -> atm_store::Result<_> {
                Ok(match self.store.series(key)? {
                    Some(s) => (Some(s), Vec::new()),
                    None => (None, self.store.list_series()?),
                })
            })
            .py_err(py)?;
        if let Some(s) = found {
            return Ok(s);
        }
        let same_market: Vec<String> = listed
            .iter()
            .filter(|k| k.market == key.market)
            .map(|k| format!("{} {}", k.symbol, k.interval))
            .collect();
        let has = if listed.is_empty() {
            "it holds no series".to_string()
        } else if same_market.is_empty() {
            format!(
                "it holds no {} series ({} series of other markets)",
                key.market,
                listed.len()
            )
        } else {
            let shown: Vec<&str> = same_market.iter().take(20).map(String::as_str).collect();
            let more = same_market.len().saturating_sub(shown.len());
            format!(
                "its {} series are: {}{}",
                key.market,
                shown.join(", "),
                if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                }
            )
        };
        Err(raise(
            py,
            "SeriesNotFoundError",
            format!(
                "no series {} {} {} in store {}: {has}",
                key.market,
                key.symbol,
                key.interval,
                self.store.dir().display()
            ),
        ))
    }
}

#[pymethods]
impl Store {
    /// Opens the store in `path` read-only: never writes a byte, never
    /// replays a crashed writer's journal. A store this process has open
    /// already is shared (see `shared`).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Store> {
        let store = py.detach(|| crate::shared::open(&path)).py_err(py)?;
        Ok(Store { store })
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.store.dir().to_path_buf()
    }

    /// `"f32"` or `"f64"`: the type of the float columns.
    #[getter]
    fn precision(&self) -> &'static str {
        self.store.precision().as_str()
    }

    /// Every series (of `market`, of `interval`) as `atm info --format json`
    /// lists them: dicts with market, symbol, interval, first_open_time,
    /// last_open_time, present, missing, unknown, bytes.
    #[pyo3(signature = (market=None, interval=None))]
    fn series<'py>(
        &self,
        py: Python<'py>,
        market: Option<&str>,
        interval: Option<&str>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let market = market.map(parse_market).transpose()?;
        let interval = interval.map(parse_interval).transpose()?;
        let rows = py
            .detach(|| -> atm_store::Result<Vec<Info>> {
                let mut rows = Vec::new();
                for key in self.store.list_series()? {
                    if market.is_some_and(|m| m != key.market)
                        || interval.is_some_and(|i| i != key.interval)
                    {
                        continue;
                    }
                    let Some(s) = self.store.series(&key)? else {
                        continue;
                    };
                    let st = s.stats()?;
                    let counts = match (st.first_open_time, st.last_open_time) {
                        (Some(f), Some(l)) => s.counts(f, l)?,
                        _ => (0, 0, 0),
                    };
                    rows.push(Info {
                        key,
                        first: st.first_open_time,
                        last: st.last_open_time,
                        counts,
                        bytes: s.bytes_on_disk()?,
                    });
                }
                Ok(rows)
            })
            .py_err(py)?;
        rows.into_iter()
            .map(|r| {
                let d = PyDict::new(py);
                d.set_item("market", r.key.market.to_string())?;
                d.set_item("symbol", r.key.symbol.to_string())?;
                d.set_item("interval", r.key.interval.to_string())?;
                d.set_item("first_open_time", r.first)?;
                d.set_item("last_open_time", r.last)?;
                d.set_item("present", r.counts.0)?;
                d.set_item("missing", r.counts.1)?;
                d.set_item("unknown", r.counts.2)?;
                d.set_item("bytes", r.bytes)?;
                Ok(d)
            })
            .collect()
    }

    /// The grid slots of `start..=end` (epoch ms, inclusive open times),
    /// clipped to the series' span; see `atm.Store.read`.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (market, symbol, interval, start, end, tail=None, columns=None, copy=false))]
    fn read(
        &self,
        py: Python<'_>,
        market: &str,
        symbol: &str,
        interval: &str,
        start: i64,
        end: i64,
        tail: Option<usize>,
        columns: Option<Vec<String>>,
        copy: bool,
    ) -> PyResult<Klines> {
        let key = parse_key(market, symbol, interval)?;
        let cols = parse_columns(columns)?;
        if start > end {
            return Err(PyValueError::new_err(format!(
                "start ({start}) is after end ({end})"
            )));
        }
        let series = self.series_of(py, &key)?;
        let window = py
            .detach(|| series.window(start, end, tail, &cols, copy))
            .py_err(py)?;
        Ok(Klines::new(
            key,
            self.store.precision(),
            window,
            &cols,
            copy,
        ))
    }

    /// The newest present kline as a dict (`atm query`'s column names), or
    /// None when the series holds none. O(1).
    fn latest<'py>(
        &self,
        py: Python<'py>,
        market: &str,
        symbol: &str,
        interval: &str,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let key = parse_key(market, symbol, interval)?;
        let series = self.series_of(py, &key)?;
        let Some(k) = py.detach(|| series.latest()).py_err(py)? else {
            return Ok(None);
        };
        kline_dict(py, &k).map(Some)
    }

    /// The kline in progress that a running `atm stream` publishes in
    /// shared memory (a dict like `latest`'s), or None when none does.
    fn live<'py>(
        &self,
        py: Python<'py>,
        market: &str,
        symbol: &str,
        interval: &str,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let key = parse_key(market, symbol, interval)?;
        let k = py
            .detach(|| atm_status::read_live(self.store.dir(), &key))
            .map_err(|e| status_err(py, e))?;
        k.map(|k| kline_dict(py, &k)).transpose()
    }

    /// `atm status --format json`'s `processes`, as a JSON string.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        let p = py
            .detach(|| atm_status::read_status(self.store.dir()))
            .map_err(|e| status_err(py, e))?;
        serde_json::to_string(&p).map_err(|e| raise(py, "Error", e.to_string()))
    }

    /// The symbol registry of `market`, as a JSON string.
    fn registry_json(&self, py: Python<'_>, market: &str) -> PyResult<String> {
        let m = parse_market(market)?;
        let r = py.detach(|| self.store.registry(m)).py_err(py)?;
        serde_json::to_string(&r).map_err(|e| raise(py, "Error", e.to_string()))
    }

    /// The kline at open time `at` of every series of `market` and
    /// `interval`: a list of (symbol, dict or None), symbols sorted.
    fn cross_section<'py>(
        &self,
        py: Python<'py>,
        market: &str,
        interval: &str,
        at: i64,
    ) -> PyResult<Vec<(String, Option<Bound<'py, PyDict>>)>> {
        let (m, iv) = (parse_market(market)?, parse_interval(interval)?);
        let rows = py
            .detach(|| self.store.cross_section(m, iv, at))
            .py_err(py)?;
        rows.into_iter()
            .map(|(s, k)| Ok((s.to_string(), k.map(|k| kline_dict(py, &k)).transpose()?)))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("<atm.Store {} (read-only)>", self.store.dir().display())
    }
}
