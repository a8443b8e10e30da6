//! Klines, series keys, column names and value precision.

use std::fmt;

use crate::error::{Error, Result};
use crate::{Interval, Market, Symbol};

/// The float width of a store's price and volume columns.
///
/// `F32` is the default and halves the size of everything; it holds about
/// 7 significant digits, so cent-level prices above 131072 are rounded.
/// `F64` keeps every decimal Binance prints to within its last digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 4-byte IEEE 754 binary32 columns.
    #[default]
    F32,
    /// 8-byte IEEE 754 binary64 columns.
    F64,
}

impl Precision {
    /// Bytes of one value.
    pub fn width(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 8,
        }
    }

    /// `f32` or `f64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    /// Parses a decimal string straight to this precision, correctly rounded
    /// once (an `f32` store never goes through `f64` first), and returns it
    /// widened to `f64`, which is exact.
    ///
    /// ```
    /// use atm_types::Precision;
    /// let v = Precision::F32.parse_decimal("0.1").unwrap();
    /// assert_eq!(v, 0.1f32 as f64);
    /// assert!(Precision::F32.parse_decimal("1e5x").is_none());
    /// ```
    pub fn parse_decimal(self, s: &str) -> Option<f64> {
        if s.is_empty()
            || !s.bytes().all(|b| {
                b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+' || b == b'e' || b == b'E'
            })
        {
            return None;
        }
        let v = match self {
            Precision::F32 => s.parse::<f32>().ok().map(f64::from),
            Precision::F64 => s.parse::<f64>().ok(),
        }?;
        v.is_finite().then_some(v)
    }

    /// `v` in the shortest plain decimal that reads back as the same value
    /// of this precision (no exponent), as `atm query` and `atm export`
    /// print it.
    ///
    /// ```
    /// use atm_types::Precision;
    /// assert_eq!(Precision::F32.format(0.1f32 as f64), "0.1");
    /// assert_eq!(Precision::F64.format(1e-7), "0.0000001");
    /// ```
    pub fn format(self, v: f64) -> String {
        match self {
            Precision::F32 => format!("{}", v as f32),
            Precision::F64 => format!("{v}"),
        }
    }

    /// Rounds `v` to this precision (a no-op for values already representable).
    pub fn round(self, v: f64) -> f64 {
        match self {
            Precision::F32 => v as f32 as f64,
            Precision::F64 => v,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "f64" => Ok(Precision::F64),
            _ => Err(Error::InvalidInput(format!(
                "unknown precision {s:?} (expected f32 or f64)"
            ))),
        }
    }
}

/// Number of float columns (prices and volumes).
pub const FLOAT_COLUMNS: usize = 8;

/// The stored columns, in storage order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Column {
    Open,
    High,
    Low,
    Close,
    Volume,
    QuoteVolume,
    TakerBuyBase,
    TakerBuyQuote,
    Trades,
}

impl Column {
    /// All nine stored columns.
    pub const ALL: [Column; 9] = [
        Column::Open,
        Column::High,
        Column::Low,
        Column::Close,
        Column::Volume,
        Column::QuoteVolume,
        Column::TakerBuyBase,
        Column::TakerBuyQuote,
        Column::Trades,
    ];

    /// The column's name in CSV, JSON and Arrow output.
    pub fn name(self) -> &'static str {
        match self {
            Column::Open => "open",
            Column::High => "high",
            Column::Low => "low",
            Column::Close => "close",
            Column::Volume => "volume",
            Column::QuoteVolume => "quote_volume",
            Column::TakerBuyBase => "taker_buy_base",
            Column::TakerBuyQuote => "taker_buy_quote",
            Column::Trades => "trades",
        }
    }

    /// Index in storage order (0..9).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses a column name.
    pub fn from_name(name: &str) -> Result<Column> {
        Column::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| Error::InvalidInput(format!("unknown column {name:?}")))
    }
}

/// One kline (candlestick).
///
/// Float values are `f64` in memory; a store of precision `F32` keeps them as
/// `f32`. Values parsed with [`Precision::parse_decimal`] for the store's
/// precision are stored exactly.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Kline {
    /// Open time, epoch milliseconds.
    pub open_time: i64,
    /// Close time, epoch milliseconds (normally the next open time minus 1).
    pub close_time: i64,
    /// open, high, low, close, volume, quote_volume, taker_buy_base, taker_buy_quote.
    pub values: [f64; FLOAT_COLUMNS],
    /// Number of trades.
    pub trades: u32,
}

impl Kline {
    /// Open price.
    pub fn open(&self) -> f64 {
        self.values[0]
    }
    /// Highest price.
    pub fn high(&self) -> f64 {
        self.values[1]
    }
    /// Lowest price.
    pub fn low(&self) -> f64 {
        self.values[2]
    }
    /// Close price.
    pub fn close(&self) -> f64 {
        self.values[3]
    }
    /// Base-asset volume (contracts on COIN-M).
    pub fn volume(&self) -> f64 {
        self.values[4]
    }

    /// Parses Binance's 12 kline fields (REST array or archive CSV row; the
    /// 12th, "ignore", may be absent) for a store of `precision`.
    ///
    /// Times in microseconds (spot archives from 2025) are converted to
    /// milliseconds. Errors say which field was wrong.
    ///
    /// ```
    /// use atm_types::{Kline, Precision};
    /// let row = ["1499040000000", "0.01634790", "0.80000000", "0.01575800", "0.01577100",
    ///            "148976.11427815", "1499644799999", "2434.19055334", "308",
    ///            "1756.87402397", "28.46694368", "0"];
    /// let k = Kline::parse_fields(&row, Precision::F32).unwrap();
    /// assert_eq!(k.trades, 308);
    /// assert_eq!(k.close(), 0.01577100f32 as f64);
    /// ```
    pub fn parse_fields(
        fields: &[&str],
        precision: Precision,
    ) -> std::result::Result<Kline, String> {
        if fields.len() != 11 && fields.len() != 12 {
            return Err(format!("expected 12 columns, found {}", fields.len()));
        }
        let time = |i: usize, name: &str| -> std::result::Result<i64, String> {
            let s = fields[i].trim();
            let v: i64 = s
                .parse()
                .map_err(|_| format!("{name} {s:?} is not an integer"))?;
            if v < 0 {
                return Err(format!("{name} {v} is negative"));
            }
            // Microseconds (spot archives from 2025-01-01) are normalised to ms.
            Ok(if v >= 10_000_000_000_000 { v / 1000 } else { v })
        };
        let open_time = time(0, "open_time")?;
        let close_time = time(6, "close_time")?;
        if close_time < open_time {
            return Err(format!(
                "close_time {close_time} is before open_time {open_time}"
            ));
        }
        let mut values = [0.0; FLOAT_COLUMNS];
        const NAMES: [&str; 8] = [
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
            "taker_buy_base",
            "taker_buy_quote",
        ];
        const IDX: [usize; 8] = [1, 2, 3, 4, 5, 7, 9, 10];
        for (k, (&i, name)) in IDX.iter().zip(NAMES).enumerate() {
            let s = fields[i].trim();
            values[k] = precision
                .parse_decimal(s)
                .ok_or_else(|| format!("{name} {s:?} is not a decimal number"))?;
        }
        let s = fields[8].trim();
        let trades: u64 = s
            .parse()
            .map_err(|_| format!("trades {s:?} is not a non-negative integer"))?;
        let trades = u32::try_from(trades)
            .map_err(|_| format!("trades {trades} does not fit in 32 bits"))?;
        Ok(Kline {
            open_time,
            close_time,
            values,
            trades,
        })
    }

    /// The 11 output fields in Binance's order (times in epoch ms, values
    /// as [`Precision::format`] prints them), as `atm query --format csv`
    /// and `atm export --format csv` write them.
    pub fn fields(&self, p: Precision) -> [String; 11] {
        let f = |c: usize| p.format(self.values[c]);
        [
            self.open_time.to_string(),
            f(0),
            f(1),
            f(2),
            f(3),
            f(4),
            self.close_time.to_string(),
            f(5),
            self.trades.to_string(),
            f(6),
            f(7),
        ]
    }

    /// The kline of a longer interval made of `parts` (in time order), as
    /// Binance builds it: the first open, the highest high, the lowest low,
    /// the last close, and the sums of volumes and trades. Sums are taken in
    /// `f64` and rounded once to `precision`. `None` when `parts` is empty.
    ///
    /// ```
    /// use atm_types::{Kline, Precision};
    /// let k = |t: i64, o: f64, h: f64, l: f64, c: f64, v: f64| Kline {
    ///     open_time: t, close_time: t + 59_999, values: [o, h, l, c, v, 0.0, 0.0, 0.0], trades: 2,
    /// };
    /// let five = Kline::aggregate(&[k(0, 10.0, 12.0, 9.0, 11.0, 1.5), k(60_000, 11.0, 11.5, 8.0, 8.5, 2.0)], 0, 299_999, Precision::F64).unwrap();
    /// assert_eq!(five.values[..5], [10.0, 12.0, 8.0, 8.5, 3.5]);
    /// assert_eq!((five.open_time, five.close_time, five.trades), (0, 299_999, 4));
    /// ```
    pub fn aggregate(
        parts: &[Kline],
        open_time: i64,
        close_time: i64,
        precision: Precision,
    ) -> Option<Kline> {
        let (first, last) = (parts.first()?, parts.last()?);
        let mut values = [
            first.open(),
            f64::MIN,
            f64::MAX,
            last.close(),
            0.0,
            0.0,
            0.0,
            0.0,
        ];
        let mut trades = 0u32;
        for p in parts {
            values[1] = values[1].max(p.high());
            values[2] = values[2].min(p.low());
            for (v, pv) in values[4..].iter_mut().zip(&p.values[4..]) {
                *v += pv;
            }
            trades = trades.saturating_add(p.trades);
        }
        for v in &mut values[4..] {
            *v = precision.round(*v);
        }
        Some(Kline {
            open_time,
            close_time,
            values,
            trades,
        })
    }

    /// Whether `other` is the same kline up to the rounding of sums: times,
    /// prices and trades equal, volumes within a few units in the last
    /// place of `precision` (an aggregate of rounded parts may differ from
    /// the exchange's exactly summed, once rounded, value there).
    pub fn agrees_with(&self, other: &Kline, precision: Precision) -> bool {
        let eps = match precision {
            Precision::F32 => f64::from(f32::EPSILON),
            Precision::F64 => f64::EPSILON,
        } * 16.0;
        (self.open_time, self.close_time, self.trades)
            == (other.open_time, other.close_time, other.trades)
            && self.values[..4] == other.values[..4]
            && self.values[4..]
                .iter()
                .zip(&other.values[4..])
                .all(|(a, b)| (a - b).abs() <= eps * a.abs().max(b.abs()))
    }
}

/// Identifies one series: (market, symbol, interval).
///
/// ```
/// use atm_types::{Interval, Market, SeriesKey};
/// let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
/// assert_eq!(key.to_string(), "spot/BTCUSDT/1m");
/// assert!(SeriesKey::parse(Market::UsdM, "BTCUSDT", Interval::S1).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The market.
    pub market: Market,
    /// The symbol.
    pub symbol: Symbol,
    /// The interval.
    pub interval: Interval,
}

impl SeriesKey {
    /// Builds a key, refusing `1s` outside spot.
    pub fn new(market: Market, symbol: Symbol, interval: Interval) -> Result<SeriesKey> {
        if !interval.valid_for(market) {
            return Err(Error::InvalidInput(format!(
                "interval {interval} exists on spot only, not on {market}"
            )));
        }
        Ok(SeriesKey {
            market,
            symbol,
            interval,
        })
    }

    /// Builds a key from a symbol string, validating it.
    pub fn parse(market: Market, symbol: &str, interval: Interval) -> Result<SeriesKey> {
        SeriesKey::new(market, Symbol::new(symbol)?, interval)
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.market, self.symbol, self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_shortest_plain_decimals() {
        assert_eq!(Precision::F32.format(0.1f32 as f64), "0.1");
        assert_eq!(Precision::F32.format(1e-8f32 as f64), "0.00000001");
        assert_eq!(Precision::F32.format(123456789.0f32 as f64), "123456790");
        assert_eq!(Precision::F64.format(3e20), "300000000000000000000");
        assert_eq!(Precision::F32.format(42000.0), "42000");
    }

    #[test]
    fn an_aggregate_of_rounded_minutes_agrees_with_the_exactly_summed_kline() {
        // Sixty minutes of f32(0.1) volume sum to about, not exactly, the
        // exchange's 6.0: within a few units in the last place.
        let minute = |i: i64| Kline {
            open_time: i * 60_000,
            close_time: i * 60_000 + 59_999,
            values: [
                1.0,
                2.0 + i as f64,
                0.5,
                1.5,
                Precision::F32.round(0.1),
                0.3f32 as f64,
                0.0,
                0.0,
            ],
            trades: 1,
        };
        let parts: Vec<Kline> = (0..60).map(minute).collect();
        let hour = Kline::aggregate(&parts, 0, 3_599_999, Precision::F32).unwrap();
        assert_eq!(
            (hour.values[1], hour.values[2], hour.trades),
            (61.0, 0.5, 60)
        );
        let exchange = Kline {
            values: [1.0, 61.0, 0.5, 1.5, 6.0f32 as f64, 18.0f32 as f64, 0.0, 0.0],
            ..hour
        };
        assert!(hour.agrees_with(&exchange, Precision::F32));
        let wrong_price = Kline {
            values: [1.0, 61.5, 0.5, 1.5, 6.0, 18.0, 0.0, 0.0],
            ..hour
        };
        assert!(!hour.agrees_with(&wrong_price, Precision::F32));
        let wrong_volume = Kline {
            values: [1.0, 61.0, 0.5, 1.5, 6.01, 18.0, 0.0, 0.0],
            ..hour
        };
        assert!(!hour.agrees_with(&wrong_volume, Precision::F32));
        assert!(Kline::aggregate(&[], 0, 1, Precision::F32).is_none());
    }

    #[test]
    fn decimal_parsing_rounds_once_to_f32() {
        // A decimal whose f64 rounding then f32 rounding differs from direct f32
        // rounding (double-rounding trap): 1 + 2^-24 + 2^-60, written exactly.
        let s = "1.0000000596046447753906250867361737988403547205962240695953369140625";
        let direct = s.parse::<f32>().unwrap();
        let via_f64 = s.parse::<f64>().unwrap() as f32;
        assert_ne!(
            direct, via_f64,
            "the test string must expose double rounding"
        );
        assert_eq!(Precision::F32.parse_decimal(s).unwrap(), direct as f64);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut row = vec![
            "1", "1", "1", "1", "1", "1", "60000", "1", "3", "1", "1", "0",
        ];
        row[4] = "x";
        assert!(Kline::parse_fields(&row, Precision::F32)
            .unwrap_err()
            .contains("close"));
        row[4] = "1";
        row[8] = "-1";
        assert!(Kline::parse_fields(&row, Precision::F32)
            .unwrap_err()
            .contains("trades"));
        row[8] = "1";
        row[0] = "-5";
        assert!(Kline::parse_fields(&row, Precision::F32)
            .unwrap_err()
            .contains("negative"));
        row[0] = "70000";
        assert!(Kline::parse_fields(&row, Precision::F32)
            .unwrap_err()
            .contains("before"));
        assert!(Kline::parse_fields(&row[..5], Precision::F32)
            .unwrap_err()
            .contains("12 columns"));
    }

    #[test]
    fn microseconds_become_milliseconds() {
        let row = [
            "1735689600000000",
            "1",
            "1",
            "1",
            "1",
            "1",
            "1735689600999999",
            "1",
            "3",
            "1",
            "1",
            "0",
        ];
        let k = Kline::parse_fields(&row, Precision::F32).unwrap();
        assert_eq!(
            (k.open_time, k.close_time),
            (1_735_689_600_000, 1_735_689_600_999)
        );
    }
}
