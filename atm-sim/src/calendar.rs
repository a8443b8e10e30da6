//! When klines do not exist or do not trade: exchange-wide outages and
//! single-symbol halts.
//!
//! Outages are Binance's real maintenance windows (the fact sheet's §6, spot,
//! UTC): no kline at all exists inside them, for any symbol of any market.
//! Halts are per symbol and generated: the symbol stays listed and its klines
//! exist, with zero volume, no trades and every price at the last close.

use crate::rng::{hash, unit};

const MINUTE: i64 = 60_000;

/// Exchange-wide outages as `[start, end)` in epoch ms, sorted, minute-aligned.
pub const OUTAGES: &[(i64, i64)] = &[
    (1_504_713_600_000, 1_504_738_800_000), // 2017-09-06 16:00 - 23:00
    (1_518_049_680_000, 1_518_170_400_000), // 2018-02-08 00:28 - 02-09 10:00
    (1_529_978_400_000, 1_530_014_400_000), // 2018-06-26 02:00 - 12:00
    (1_557_889_200_000, 1_557_925_200_000), // 2019-05-15 03:00 - 13:00
    (1_582_112_100_000, 1_582_133_400_000), // 2020-02-19 11:35 - 17:30
    (1_593_309_600_000, 1_593_322_200_000), // 2020-06-28 02:00 - 05:30
    (1_608_558_420_000, 1_608_573_600_000), // 2020-12-21 13:47 - 18:00
    (1_619_323_200_000, 1_619_340_300_000), // 2021-04-25 04:00 - 08:45
    (1_628_820_000_000, 1_628_836_200_000), // 2021-08-13 02:00 - 06:30
    (1_679_661_900_000, 1_679_666_400_000), // 2023-03-24 12:45 - 14:00
];

/// The outages overlapping `[from, to)`.
pub fn outages_in(from: i64, to: i64) -> impl Iterator<Item = (i64, i64)> {
    let first = OUTAGES.partition_point(|&(_, end)| end <= from);
    OUTAGES[first..]
        .iter()
        .copied()
        .take_while(move |&(start, _)| start < to)
}

/// Halts: in each 30-day window of a symbol's life, with probability
/// [`HALT_PROBABILITY`], one halt of 5 to 90 minutes at a random minute.
pub const HALT_WINDOW_MS: i64 = 30 * 24 * 60 * MINUTE;
/// Chance that a 30-day window holds a halt.
pub const HALT_PROBABILITY: f64 = 0.25;

/// The halt of window `w` of the symbol keyed `key`, if it has one.
pub fn halt_of_window(key: u64, w: i64) -> Option<(i64, i64)> {
    let h = hash(&[key, 0x4a17, w as u64]);
    if unit(h) >= HALT_PROBABILITY {
        return None;
    }
    let minutes = HALT_WINDOW_MS / MINUTE;
    let start = w * HALT_WINDOW_MS + (hash(&[h, 1]) % minutes as u64) as i64 * MINUTE;
    let len = (5 + hash(&[h, 2]) % 86) as i64 * MINUTE;
    Some((start, start + len))
}

/// The halts of `key` overlapping `[from, to)`, oldest first.
pub fn halts_in(key: u64, from: i64, to: i64) -> impl Iterator<Item = (i64, i64)> {
    // A halt may start in the window before `from` and reach into it.
    let (w0, w1) = (
        from.div_euclid(HALT_WINDOW_MS) - 1,
        (to - 1).div_euclid(HALT_WINDOW_MS),
    );
    (w0..=w1)
        .filter_map(move |w| halt_of_window(key, w))
        .filter(move |&(s, e)| s < to && e > from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_sorted_minute_aligned_and_found() {
        for w in OUTAGES.windows(2) {
            assert!(w[0].1 < w[1].0);
        }
        for &(s, e) in OUTAGES {
            assert!(s < e && s % MINUTE == 0 && e % MINUTE == 0);
        }
        // 2018-02-08 00:28 is the start of the long outage (binance-api.md §6).
        assert_eq!(
            atm_types::format_ms(OUTAGES[1].0),
            "2018-02-08T00:28:00.000Z"
        );
        assert_eq!(outages_in(1_518_000_000_000, 1_518_100_000_000).count(), 1);
        assert_eq!(outages_in(0, i64::MAX).count(), OUTAGES.len());
        assert_eq!(outages_in(1_700_000_000_000, 1_700_000_060_000).count(), 0);
    }

    #[test]
    fn halts_are_found_from_any_window() {
        let key = 42;
        let all: Vec<_> = halts_in(key, 1_500_000_000_000, 1_800_000_000_000).collect();
        assert!(all.len() > 10, "{}", all.len());
        for &(s, e) in &all {
            // Every halt is found by a query covering only its last minute.
            assert!(halts_in(key, e - MINUTE, e).any(|h| h == (s, e)));
            assert!(halts_in(key, e, e + MINUTE).all(|h| h != (s, e)));
        }
    }
}
