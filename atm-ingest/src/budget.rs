//! Weight budgets: the exchange's rate-limit pools, tracked on the
//! exchange's clock.
//!
//! Binance counts request weight per fixed exchange minute. A [`Budget`]
//! charges each request's real weight before sending it, waits for the next
//! minute when the pool is full, and adopts the server's count from the
//! `X-MBX-USED-WEIGHT-1M` header when it is higher (another client on the
//! same IP, or requests this process does not know of).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

const MINUTE: i64 = 60_000;

/// The exchange's clock as seen from here: its time at a local instant, and
/// its rate (a simulator may run faster than real time).
#[derive(Clone, Debug)]
pub struct ExchangeClock {
    at: Instant,
    server_ms: i64,
    scale: f64,
}

impl ExchangeClock {
    /// A clock reading `server_ms` at local instant `at`, running `scale`
    /// times faster than real time.
    pub fn new(at: Instant, server_ms: i64, scale: f64) -> ExchangeClock {
        ExchangeClock {
            at,
            server_ms,
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
        }
    }

    /// The exchange's time now, epoch ms.
    pub fn now(&self) -> i64 {
        self.server_ms + (self.at.elapsed().as_secs_f64() * 1000.0 * self.scale) as i64
    }

    /// How many times faster than real time the exchange runs.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real time `ms` exchange milliseconds take.
    pub fn real(&self, ms: i64) -> Duration {
        Duration::from_secs_f64(ms.max(0) as f64 / 1000.0 / self.scale)
    }
}

/// Exchange milliseconds kept free at the start of each minute: our
/// estimate of the exchange's time may be a little ahead of it.
const WINDOW_MARGIN_MS: i64 = 600;

#[derive(Debug, Default)]
struct State {
    window: i64,
    used: u64,
    /// No request leaves before this instant (a 429's `Retry-After`).
    paused_until: Option<Instant>,
}

/// One rate-limit pool's budget of weight per exchange minute.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    state: Mutex<State>,
    freed: Condvar,
}

impl Budget {
    /// A budget of `limit` weight per minute.
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    /// The weight allowed per minute.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `weight` from the current exchange minute, waiting for the next
    /// minute while this one is full. Returns the minute it was charged to
    /// and the weight used in it so far.
    pub fn acquire(&self, clock: &ExchangeClock, weight: u64) -> (i64, u64) {
        let weight = weight.min(self.limit);
        let mut s = atm_types::sync::lock(&self.state);
        loop {
            if let Some(until) = s.paused_until {
                let left = until.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    s = atm_types::sync::unpoison(self.freed.wait_timeout(s, left)).0;
                    continue;
                }
                s.paused_until = None;
            }
            let now = clock.now();
            let window = now.div_euclid(MINUTE);
            let next = if window > s.window && now - window * MINUTE < WINDOW_MARGIN_MS {
                // Too early in a new minute: wait out the margin.
                window * MINUTE + WINDOW_MARGIN_MS
            } else {
                if window > s.window {
                    s.window = window;
                    s.used = 0;
                }
                if s.used + weight <= self.limit {
                    s.used += weight;
                    return (s.window, s.used);
                }
                // Full: sleep until the next minute opens.
                (s.window + 1) * MINUTE + WINDOW_MARGIN_MS
            };
            let wait = clock.real(next - now).max(Duration::from_millis(1));
            s = atm_types::sync::unpoison(self.freed.wait_timeout(s, wait)).0;
        }
    }

    /// The server said `used` weight is spent in `window`: adopt it if higher.
    pub fn observe(&self, window: i64, used: u64) {
        let mut s = atm_types::sync::lock(&self.state);
        if s.window == window && used > s.used {
            s.used = used.min(self.limit);
        }
    }

    /// Holds every request of this pool for `wait` (real time), as a 429's
    /// `Retry-After` asks.
    pub fn pause(&self, wait: Duration) {
        let mut s = atm_types::sync::lock(&self.state);
        let until = Instant::now() + wait;
        s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
    }

    /// A 429 in `window`: nothing more fits in it.
    pub fn exhaust(&self, window: i64) {
        let mut s = atm_types::sync::lock(&self.state);
        if s.window == window {
            s.used = self.limit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_next_exchange_minute() {
        // 600x: an exchange minute is 100 ms.
        let start = 1_000 * MINUTE + 30_000;
        let clock = ExchangeClock::new(Instant::now(), start, 600.0);
        let b = Budget::new(10);
        let (w0, used) = b.acquire(&clock, 6);
        assert_eq!(used, 6);
        assert_eq!(w0, 1000);
        assert_eq!(b.acquire(&clock, 4), (1000, 10));
        let t = Instant::now();
        let (w1, _) = b.acquire(&clock, 1);
        assert_eq!(w1, 1001);
        assert!(
            t.elapsed() >= Duration::from_millis(40),
            "{:?}",
            t.elapsed()
        );
        assert!(clock.now() >= 1001 * MINUTE + WINDOW_MARGIN_MS);
        // The server's count wins when higher.
        b.observe(w1, 10);
        let t = Instant::now();
        assert_eq!(b.acquire(&clock, 1).0, 1002);
        assert!(t.elapsed() >= Duration::from_millis(50));
        // At the very start of a minute, only the margin is waited out.
        let clock = ExchangeClock::new(Instant::now(), 2_000 * MINUTE, 600.0);
        let t = Instant::now();
        assert_eq!(Budget::new(10).acquire(&clock, 1).0, 2_000);
        assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
        // A pause holds the pool for its whole length, whatever the window.
        b.pause(Duration::from_millis(150));
        let t = Instant::now();
        b.acquire(&clock, 1);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
    }
}
