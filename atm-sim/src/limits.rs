//! Request-weight limits as Binance applies them.
//!
//! One pool per rate-limit pool: spot has its own; USD-M and COIN-M share
//! one (Binance merged them on 2026-06-30). Windows are fixed exchange-clock
//! minutes. The request that would pass the limit gets 429; if the client
//! keeps sending in that window, its 101st further request gets 418 and a
//! ban of 2 exchange minutes, doubling for each repeat (at most 3 days);
//! during a ban every request gets 418.

use std::sync::Mutex;

const MINUTE: i64 = 60_000;
/// Further requests tolerated in a window after its first 429.
pub const REQUESTS_BEFORE_BAN: u64 = 100;
/// The first ban's length; each later one doubles, up to [`MAX_BAN_MS`].
pub const FIRST_BAN_MS: i64 = 2 * MINUTE;
/// The longest ban, 3 days.
pub const MAX_BAN_MS: i64 = 3 * 24 * 60 * MINUTE;

/// What the limiter decided about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Served; the window's weight including this request.
    Allowed {
        /// Weight used in the current minute.
        used: u64,
    },
    /// 429: over the limit; retry after the window ends.
    Limited {
        /// Weight used in the current minute.
        used: u64,
        /// Exchange ms until the window ends.
        retry_in: i64,
    },
    /// 418: banned until `until`.
    Banned {
        /// Weight used in the current minute.
        used: u64,
        /// Exchange time the ban ends.
        until: i64,
        /// Whether this request started the ban (counted as a 418 issued).
        new: bool,
    },
}

#[derive(Debug, Default)]
struct State {
    minute: i64,
    used: u64,
    limited: bool,
    after_limit: u64,
    ban_until: i64,
    bans: u32,
}

/// One rate-limit pool.
#[derive(Debug)]
pub struct Pool {
    limit: u64,
    state: Mutex<State>,
}

impl Pool {
    /// A pool of `limit` weight per minute.
    pub fn new(limit: u64) -> Pool {
        Pool {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    /// The pool's weight limit per minute.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Charges a request of `weight` at exchange time `now`.
    pub fn charge(&self, now: i64, weight: u64) -> Verdict {
        let mut s = atm_types::sync::lock(&self.state);
        let minute = now.div_euclid(MINUTE);
        if minute != s.minute {
            s.minute = minute;
            s.used = 0;
            s.limited = false;
            s.after_limit = 0;
        }
        if now < s.ban_until {
            return Verdict::Banned {
                used: s.used,
                until: s.ban_until,
                new: false,
            };
        }
        let retry_in = (minute + 1) * MINUTE - now;
        if s.limited {
            s.after_limit += 1;
            if s.after_limit > REQUESTS_BEFORE_BAN {
                let len = FIRST_BAN_MS
                    .saturating_mul(1i64 << s.bans.min(20))
                    .min(MAX_BAN_MS);
                s.bans += 1;
                s.ban_until = now + len;
                s.limited = false;
                s.after_limit = 0;
                return Verdict::Banned {
                    used: s.used,
                    until: s.ban_until,
                    new: true,
                };
            }
            return Verdict::Limited {
                used: s.used,
                retry_in,
            };
        }
        if s.used + weight > self.limit {
            s.limited = true;
            return Verdict::Limited {
                used: s.used,
                retry_in,
            };
        }
        s.used += weight;
        Verdict::Allowed { used: s.used }
    }

    /// Weight used so far in the window of `now`.
    pub fn used(&self, now: i64) -> u64 {
        let s = atm_types::sync::lock(&self.state);
        if s.minute == now.div_euclid(MINUTE) {
            s.used
        } else {
            0
        }
    }
}

/// The futures klines' weight by limit tier (binance-api.md §2).
pub fn futures_klines_weight(limit: u64) -> u64 {
    match limit {
        0..=99 => 1,
        100..=499 => 2,
        500..=1000 => 5,
        _ => 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_429_then_418_on_the_101st_further_request() {
        let p = Pool::new(10);
        let t = 120_000;
        for i in 1..=5 {
            assert_eq!(p.charge(t, 2), Verdict::Allowed { used: 2 * i });
        }
        assert_eq!(
            p.charge(t + 1000, 1),
            Verdict::Limited {
                used: 10,
                retry_in: 59_000
            }
        );
        for _ in 0..REQUESTS_BEFORE_BAN {
            assert!(matches!(p.charge(t + 2000, 1), Verdict::Limited { .. }));
        }
        assert_eq!(
            p.charge(t + 3000, 1),
            Verdict::Banned {
                used: 10,
                until: t + 3000 + FIRST_BAN_MS,
                new: true
            }
        );
        // Banned across windows, then free; the next ban lasts twice as long.
        assert!(matches!(
            p.charge(t + 70_000, 1),
            Verdict::Banned { new: false, .. }
        ));
        let after = t + 3000 + FIRST_BAN_MS;
        assert_eq!(p.charge(after, 1), Verdict::Allowed { used: 1 });
        for _ in 0..10 {
            p.charge(after, 1);
        }
        for _ in 0..=REQUESTS_BEFORE_BAN {
            p.charge(after, 1);
        }
        assert!(
            matches!(p.charge(after + 1, 1), Verdict::Banned { until, .. } if until == after + 2 * FIRST_BAN_MS)
        );
    }

    #[test]
    fn a_new_minute_resets_the_window() {
        let p = Pool::new(3);
        assert!(matches!(p.charge(59_999, 3), Verdict::Allowed { used: 3 }));
        assert!(matches!(
            p.charge(59_999, 1),
            Verdict::Limited { retry_in: 1, .. }
        ));
        assert_eq!(p.charge(60_000, 1), Verdict::Allowed { used: 1 });
        assert_eq!(p.used(60_001), 1);
        assert_eq!(p.used(120_000), 0);
    }

    #[test]
    fn weight_tiers() {
        assert_eq!(
            [1, 99, 100, 499, 500, 1000, 1001, 1500].map(futures_klines_weight),
            [1, 1, 2, 2, 5, 5, 10, 10]
        );
    }
}
