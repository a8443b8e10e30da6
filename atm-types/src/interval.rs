//! Binance's kline intervals and the time grid that makes time the index.
//!
//! Every interval has a fixed origin (the open time of slot 0) and a way to map
//! an open time to a slot by arithmetic: `slot = (t - origin) / step` for the
//! fixed-length intervals, and months since the origin for `1M`. The origins sit
//! at or just before [`STORE_EPOCH_MS`] (2017-01-01, before Binance's launch) on
//! Binance's own alignment: midnight UTC for 1s..1d, Unix-epoch multiples of
//! three days for 3d, Monday 00:00 for 1w, the 1st of the month for 1M.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};

use crate::error::{Error, Result};

/// 2017-01-01T00:00:00Z: no series of the store starts before this instant.
pub const STORE_EPOCH_MS: i64 = 1_483_228_800_000;
/// 2100-01-01T00:00:00Z: the grid of every series ends here.
pub const STORE_HORIZON_MS: i64 = 4_102_444_800_000;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A Binance kline interval.
///
/// ```
/// use atm_types::Interval;
/// let i: Interval = "1h".parse().unwrap();
/// assert_eq!(i.step_ms(), Some(3_600_000));
/// // The API's `1M` is `1mo` in archive names and paths; both parse.
/// assert_eq!("1mo".parse::<Interval>().unwrap(), Interval::Mo1);
/// assert_eq!(Interval::Mo1.as_str(), "1M");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Interval {
    S1,
    M1,
    M3,
    M5,
    M15,
    M30,
    H1,
    H2,
    H4,
    H6,
    H8,
    H12,
    D1,
    D3,
    W1,
    Mo1,
}

impl Interval {
    /// All sixteen intervals, shortest first.
    pub const ALL: [Interval; 16] = [
        Interval::S1,
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H6,
        Interval::H8,
        Interval::H12,
        Interval::D1,
        Interval::D3,
        Interval::W1,
        Interval::Mo1,
    ];

    /// Binance's API name (`1s`, `1m`, ..., `1w`, `1M`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "1s",
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H6 => "6h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
            Interval::D3 => "3d",
            Interval::W1 => "1w",
            Interval::Mo1 => "1M",
        }
    }

    /// The name used by data.binance.vision and by the store's paths: the API
    /// name, except `1mo` for `1M` (so no two names differ only by case).
    pub fn file_name(self) -> &'static str {
        match self {
            Interval::Mo1 => "1mo",
            other => other.as_str(),
        }
    }

    /// The fixed length in milliseconds, or `None` for the calendar month.
    pub fn step_ms(self) -> Option<i64> {
        Some(match self {
            Interval::S1 => SECOND,
            Interval::M1 => MINUTE,
            Interval::M3 => 3 * MINUTE,
            Interval::M5 => 5 * MINUTE,
            Interval::M15 => 15 * MINUTE,
            Interval::M30 => 30 * MINUTE,
            Interval::H1 => HOUR,
            Interval::H2 => 2 * HOUR,
            Interval::H4 => 4 * HOUR,
            Interval::H6 => 6 * HOUR,
            Interval::H8 => 8 * HOUR,
            Interval::H12 => 12 * HOUR,
            Interval::D1 => DAY,
            Interval::D3 => 3 * DAY,
            Interval::W1 => 7 * DAY,
            Interval::Mo1 => return None,
        })
    }

    /// The open time of slot 0 of this interval's grid.
    pub fn origin_ms(self) -> i64 {
        match self {
            // 2016-12-31: the last multiple of three days since the Unix epoch
            // before the store epoch (Binance's 3d klines are epoch-anchored).
            Interval::D3 => STORE_EPOCH_MS - STORE_EPOCH_MS.rem_euclid(3 * DAY),
            // Monday 2016-12-26 00:00 UTC.
            Interval::W1 => 1_482_710_400_000,
            _ => STORE_EPOCH_MS,
        }
    }

    /// Number of slots from the origin to [`STORE_HORIZON_MS`].
    pub fn capacity(self) -> u64 {
        match self.step_ms() {
            Some(step) => ((STORE_HORIZON_MS - self.origin_ms()) / step) as u64,
            None => (2100 - 2017) * 12,
        }
    }

    /// The slot whose kline contains `t` (open time rounded down to the grid).
    ///
    /// Errors when `t` is before the origin or past the horizon.
    pub fn slot_of(self, t: i64) -> Result<u64> {
        if !(self.origin_ms()..STORE_HORIZON_MS).contains(&t) {
            return Err(Error::InvalidInput(format!(
                "time {t} ({}) is outside the store's range 2017-01-01..2100-01-01",
                format_ms(t)
            )));
        }
        Ok(match self.step_ms() {
            Some(step) => ((t - self.origin_ms()) / step) as u64,
            None => {
                let d = Utc.timestamp_millis_opt(t).single().map(|d| d.date_naive());
                let d = d.ok_or_else(|| Error::InvalidInput(format!("time {t} out of range")))?;
                ((d.year() as i64 - 2017) * 12 + d.month0() as i64) as u64
            }
        })
    }

    /// The regular open time of `slot`.
    pub fn open_time(self, slot: u64) -> i64 {
        match self.step_ms() {
            Some(step) => self.origin_ms() + slot as i64 * step,
            None => month_start_ms(slot as i64),
        }
    }

    /// The regular close time of `slot`: the next slot's open time minus 1 ms.
    pub fn close_time(self, slot: u64) -> i64 {
        self.open_time(slot + 1) - 1
    }

    /// True when `t` is exactly a slot's regular open time.
    pub fn is_aligned(self, t: i64) -> bool {
        self.slot_of(t)
            .map(|s| self.open_time(s) == t)
            .unwrap_or(false)
    }

    /// Whether the market trades this interval (`1s` is spot only).
    pub fn valid_for(self, market: crate::Market) -> bool {
        self != Interval::S1 || market == crate::Market::Spot
    }

    /// The byte that stands for this interval in atm's files (series headers,
    /// journal records): part of the on-disk format, never renumbered.
    pub fn code(self) -> u8 {
        Interval::ALL.iter().position(|&i| i == self).unwrap_or(0) as u8
    }

    /// The interval of a [`Self::code`] byte, `None` for an unknown one.
    pub fn from_code(code: u8) -> Option<Interval> {
        Interval::ALL.get(code as usize).copied()
    }
}

/// Milliseconds of 00:00 UTC on the 1st of the month `months` after 2017-01.
fn month_start_ms(months: i64) -> i64 {
    let year = 2017 + months.div_euclid(12);
    let month = months.rem_euclid(12) as u32 + 1;
    NaiveDate::from_ymd_opt(year as i32, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or(STORE_HORIZON_MS)
}

/// Formats epoch milliseconds as RFC 3339 UTC, for messages.
pub fn format_ms(t: i64) -> String {
    match Utc.timestamp_millis_opt(t).single() {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("{t} ms"),
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interval {
    type Err = Error;

    fn from_str(s: &str) -> Result<Interval> {
        if s == "1mo" {
            return Ok(Interval::Mo1);
        }
        Interval::ALL.into_iter().find(|i| i.as_str() == s).ok_or_else(|| {
            Error::InvalidInput(format!("unknown interval {s:?} (expected one of 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_intervals_round_trip_slots() {
        for i in Interval::ALL {
            for slot in [0u64, 1, 17, 1000, i.capacity() - 1]
                .into_iter()
                .filter(|&s| s < i.capacity())
            {
                let t = i.open_time(slot);
                assert_eq!(i.slot_of(t).unwrap(), slot, "{i} slot {slot}");
                assert_eq!(i.slot_of(i.close_time(slot)).unwrap(), slot, "{i} close");
                assert!(i.is_aligned(t));
            }
        }
    }

    #[test]
    fn weekly_klines_open_on_monday_as_binance_documents() {
        // Binance's doc example: open 1499040000000 (Mon 2017-07-03), close 1499644799999.
        let s = Interval::W1.slot_of(1_499_040_000_000).unwrap();
        assert_eq!(Interval::W1.open_time(s), 1_499_040_000_000);
        assert_eq!(Interval::W1.close_time(s), 1_499_644_799_999);
    }

    #[test]
    fn three_day_klines_are_epoch_anchored() {
        assert_eq!(Interval::D3.origin_ms() % (3 * DAY), 0);
        assert!(Interval::D3.origin_ms() <= STORE_EPOCH_MS);
    }

    #[test]
    fn months_follow_the_calendar() {
        let feb_2024 = 1_706_745_600_000; // 2024-02-01
        let s = Interval::Mo1.slot_of(feb_2024 + 5 * DAY).unwrap();
        assert_eq!(s, 7 * 12 + 1);
        assert_eq!(Interval::Mo1.open_time(s), feb_2024);
        assert_eq!(
            Interval::Mo1.close_time(s),
            feb_2024 + 29 * DAY - 1,
            "leap February"
        );
    }

    #[test]
    fn times_outside_the_grid_are_refused() {
        assert!(Interval::M1.slot_of(0).is_err());
        assert!(Interval::M1.slot_of(-5).is_err());
        assert!(Interval::M1.slot_of(STORE_HORIZON_MS).is_err());
    }

    #[test]
    fn names_parse_both_ways() {
        for i in Interval::ALL {
            assert_eq!(i.as_str().parse::<Interval>().unwrap(), i);
            assert_eq!(i.file_name().parse::<Interval>().unwrap(), i);
            assert_eq!(Interval::from_code(i.code()), Some(i));
        }
        assert!("1H".parse::<Interval>().is_err());
    }
}
