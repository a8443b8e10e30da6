//! The exchange's clock: a start time and a rate.
//!
//! `--now T` starts it at `T`, `--time-scale X` runs it `X` times faster
//! than the wall clock. Every window the exchange keeps (rate-limit
//! minutes, ban lengths, WebSocket pings, the 24-hour cut, candle cadence)
//! is measured on this clock, so a scaled run compresses all of them alike.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The exchange clock.
#[derive(Clone, Debug)]
pub struct Clock {
    start: Instant,
    start_ms: i64,
    scale: f64,
}

impl Clock {
    /// A clock reading `now_ms` now (the wall clock when `None`), running
    /// `scale` times faster than real time.
    pub fn new(now_ms: Option<i64>, scale: f64) -> Clock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock {
            start: Instant::now(),
            start_ms: now_ms.unwrap_or(wall),
            scale,
        }
    }

    /// The exchange time, epoch ms.
    pub fn now(&self) -> i64 {
        self.start_ms + (self.start.elapsed().as_secs_f64() * 1000.0 * self.scale) as i64
    }

    /// The exchange time at the real instant `t`, epoch ms.
    pub fn at(&self, t: Instant) -> i64 {
        self.start_ms
            + (t.saturating_duration_since(self.start).as_secs_f64() * 1000.0 * self.scale) as i64
    }

    /// The real instant the clock reads `ms` (now, if that has passed).
    pub fn instant_of(&self, ms: i64) -> Instant {
        let now = Instant::now();
        now + self.real(ms - self.at(now))
    }

    /// How many times faster than real time the clock runs.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration of `ms` exchange milliseconds.
    pub fn real(&self, ms: i64) -> Duration {
        Duration::from_secs_f64((ms.max(0) as f64 / 1000.0 / self.scale).min(1e9))
    }

    /// Real seconds for an HTTP `Retry-After` covering `ms` of exchange time:
    /// rounded up, at least 1.
    pub fn retry_after_secs(&self, ms: i64) -> u64 {
        ((ms.max(0) as f64 / 1000.0 / self.scale).ceil() as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock() {
        let c = Clock::new(Some(1_000_000), 60.0);
        assert!(c.now() >= 1_000_000 && c.now() < 1_000_000 + 60_000);
        assert_eq!(c.real(60_000), Duration::from_secs(1));
        assert_eq!(c.retry_after_secs(61_000), 2);
        assert_eq!(c.retry_after_secs(10), 1);
        let t = c.instant_of(c.now() + 6_000);
        assert!(
            (c.at(t) - c.now() - 6_000).abs() < 100,
            "{}",
            c.at(t) - c.now()
        );
        let wall = Clock::new(None, 1.0);
        assert!(wall.now() > 1_700_000_000_000);
    }
}
