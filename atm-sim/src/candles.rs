//! The simulated market: every kline of every symbol, computed on demand.
//!
//! # How a kline is made
//!
//! Klines are generated **top-down** and aggregated **bottom-up**:
//!
//! * A day's kline comes straight from the symbol's parameters and the day
//!   number: its open and close are the price path's anchors at the two
//!   midnights (smooth multi-scale noise, so trends last weeks and months),
//!   its range, volume and trade count are drawn around the symbol's levels.
//! * That day is *split* into 24 hours, each hour into 60 minutes and each
//!   minute into 60 seconds. A split hands out the parent's trades, volume,
//!   quote volume and taker volumes exactly (integer units, so the children
//!   always sum to the parent), walks a bridge from the parent's open to its
//!   close through the active children, and gives one child the parent's high
//!   and one its low. So the children aggregate to exactly their parent.
//!
//! Any kline of any symbol at any time costs a day formula plus at most
//! three splits, with no history generated before it; sequential reads reuse
//! the last split of each level.
//!
//! Where something breaks the regular pattern (the listing minute, a
//! delisting, a relisting gap, an exchange outage, a halt, or the present
//! moment inside the unit), the unit is aggregated bottom-up from the
//! children that exist instead. Either way, every interval's kline equals the
//! aggregate of its base klines: 1m (and 1s on spot) as Binance does.
//!
//! # Units
//!
//! Values are integers in the units the exchange prints ([`Units`]): prices
//! in `10^-price_decimals`, multiples of the tick size; volumes in
//! `10^-qty_decimals`, multiples of the step size; quote volumes in
//! `10^-quote_decimals`. Sums are therefore exact, and printing is placing a
//! decimal point.

use std::cell::RefCell;

use atm_types::{Interval, Market};

use crate::calendar::{halts_in, outages_in};
use crate::rng::{hash, mix, normal, unit, value_noise};

/// Milliseconds per second, minute, hour and day.
pub const SECOND: i64 = 1_000;
/// Milliseconds per minute.
pub const MINUTE: i64 = 60 * SECOND;
/// Milliseconds per hour.
pub const HOUR: i64 = 60 * MINUTE;
/// Milliseconds per day.
pub const DAY: i64 = 24 * HOUR;

/// One kline's values, exact, in the symbol's [`Units`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Agg {
    /// First trade price.
    pub open: i64,
    /// Highest trade price.
    pub high: i64,
    /// Lowest trade price.
    pub low: i64,
    /// Last trade price.
    pub close: i64,
    /// Base volume (COIN-M: contracts).
    pub volume: u128,
    /// Quote volume (COIN-M: base-asset volume).
    pub quote: u128,
    /// Number of trades.
    pub trades: u64,
    /// Taker-buy base volume (COIN-M: contracts).
    pub taker_base: u128,
    /// Taker-buy quote volume (COIN-M: base-asset volume).
    pub taker_quote: u128,
}

impl Agg {
    /// A kline without trades: every price at `price`, all volumes zero.
    pub fn flat(price: i64) -> Agg {
        Agg {
            open: price,
            high: price,
            low: price,
            close: price,
            ..Agg::default()
        }
    }

    /// Extends `self` (earlier) by `next` (later), as Binance aggregates klines.
    pub fn merge(&mut self, next: &Agg) {
        self.high = self.high.max(next.high);
        self.low = self.low.min(next.low);
        self.close = next.close;
        self.volume += next.volume;
        self.quote += next.quote;
        self.trades += next.trades;
        self.taker_base += next.taker_base;
        self.taker_quote += next.taker_quote;
    }

    /// Aggregates a sequence of klines, oldest first.
    pub fn sum(parts: impl IntoIterator<Item = Agg>) -> Option<Agg> {
        parts.into_iter().reduce(|mut a, b| {
            a.merge(&b);
            a
        })
    }
}

/// How a symbol's numbers are scaled and printed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Units {
    /// Decimals printed for prices (spot: 8; futures: `pricePrecision`).
    pub price_decimals: u32,
    /// Tick size in price units (≥ 1).
    pub tick: i64,
    /// Decimals printed for base volumes (spot: 8; USD-M: `quantityPrecision`; COIN-M: 0).
    pub qty_decimals: u32,
    /// Step size in volume units (≥ 1).
    pub step: u128,
    /// Decimals printed for quote volumes (spot: 8; USD-M: price + quantity decimals; COIN-M: 8).
    pub quote_decimals: u32,
    /// COIN-M: USD per contract; the "quote" columns then hold base-asset volume.
    pub contract_size: Option<f64>,
}

impl Units {
    /// Quote volume (in quote units) of `volume` (in volume units) traded at `price` (in price units).
    pub fn quote_of(&self, volume: u128, price: f64) -> u128 {
        let v = volume as f64;
        let q = match self.contract_size {
            None => {
                v * price
                    * 10f64.powi(
                        self.quote_decimals as i32
                            - self.qty_decimals as i32
                            - self.price_decimals as i32,
                    )
            }
            Some(cs) => {
                v / 10f64.powi(self.qty_decimals as i32) * cs
                    / (price / 10f64.powi(self.price_decimals as i32))
                    * 10f64.powi(self.quote_decimals as i32)
            }
        };
        q.max(0.0).round() as u128
    }

    /// The multiple of the tick nearest to `x`, at least one tick.
    fn round_tick(&self, x: f64) -> i64 {
        ((x / self.tick as f64).round() as i64).clamp(1, i64::MAX / self.tick) * self.tick
    }
}

/// A symbol's life on the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// Open time of the first kline (minute-aligned); `None` while not yet trading.
    pub listed: Option<i64>,
    /// Klines stop before this time (minute-aligned), for delisted symbols.
    pub delisted: Option<i64>,
    /// A relisting gap `[from, to)`: delisted at `from`, back at `to`.
    pub gap: Option<(i64, i64)>,
}

/// Everything needed to compute a symbol's klines.
#[derive(Clone, Debug, PartialEq)]
pub struct SymbolModel {
    /// The market.
    pub market: Market,
    /// The symbol's name as the exchange spells it.
    pub symbol: String,
    /// Seeds every random draw of this symbol (the seed, market and name).
    pub key: u64,
    /// Scaling and printing.
    pub units: Units,
    /// Typical price, in price units.
    pub price: f64,
    /// Daily volatility of the log price.
    pub sigma: f64,
    /// Typical daily volume in steps.
    pub steps_per_day: f64,
    /// Typical daily number of trades.
    pub trades_per_day: f64,
    /// Listing, delisting, relisting.
    pub life: Lifecycle,
}

/// Which klines exist, as far as a unit of time is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cover {
    /// None of its base klines exist.
    Empty,
    /// All exist, none halted, all in the past: the top-down kline is exact.
    Full,
    /// Some exist, or some are halted: aggregate the children that exist.
    Partial,
}

/// The level of a unit of time in the generation tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Day,
    Hour,
    Minute,
    Second,
}

impl Level {
    fn ms(self) -> i64 {
        match self {
            Level::Day => DAY,
            Level::Hour => HOUR,
            Level::Minute => MINUTE,
            Level::Second => SECOND,
        }
    }

    fn child(self) -> Option<Level> {
        match self {
            Level::Day => Some(Level::Hour),
            Level::Hour => Some(Level::Minute),
            Level::Minute => Some(Level::Second),
            Level::Second => None,
        }
    }
}

/// A kline ready to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kline {
    /// Open time, epoch ms.
    pub open_time: i64,
    /// Close time: the next open time minus 1 ms.
    pub close_time: i64,
    /// The values.
    pub agg: Agg,
}

/// Computes one symbol's klines as seen at exchange time `now`.
///
/// Cheap to create; holds small caches of the last split at each level, so
/// reuse one for sequential reads.
pub struct Gen<'a> {
    model: &'a SymbolModel,
    now: i64,
    hours: RefCell<Option<(i64, [Agg; 24])>>,
    minutes: RefCell<Option<(i64, [Agg; 60])>>,
    seconds: RefCell<Option<(i64, [Agg; 60])>>,
}

/// Salts separating the random draws of each purpose.
mod salt {
    pub const ANCHOR: u64 = 1;
    pub const DAY: u64 = 2;
    pub const ACTIVITY: u64 = 3;
    pub const SPLIT: u64 = 4;
}

impl<'a> Gen<'a> {
    /// A generator for `model` at exchange time `now` (epoch ms).
    pub fn new(model: &'a SymbolModel, now: i64) -> Gen<'a> {
        Gen {
            model,
            now,
            hours: RefCell::new(None),
            minutes: RefCell::new(None),
            seconds: RefCell::new(None),
        }
    }

    /// The exchange time this generator answers for.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The symbol's name.
    pub fn symbol(&self) -> &str {
        &self.model.symbol
    }

    /// The symbol's life.
    pub fn life(&self) -> &Lifecycle {
        &self.model.life
    }

    /// The kline of `interval` opening at `open_time` (a regular open time of
    /// that interval), or `None` when it has no base kline yet or at all.
    /// The kline in progress at `now` is included with its values so far.
    pub fn kline(&self, interval: Interval, open_time: i64) -> Option<Kline> {
        let close_time = next_open(interval, open_time) - 1;
        self.range(open_time, close_time + 1).map(|agg| Kline {
            open_time,
            close_time,
            agg,
        })
    }

    /// The aggregate of every base kline opening in `[from, to)` (second-aligned).
    pub fn range(&self, from: i64, to: i64) -> Option<Agg> {
        let mut acc: Option<Agg> = None;
        let mut t = from;
        while t < to {
            // The largest unit that starts at `t` and fits.
            let level = [Level::Day, Level::Hour, Level::Minute, Level::Second]
                .into_iter()
                .find(|l| t.rem_euclid(l.ms()) == 0 && t + l.ms() <= to)
                .unwrap_or(Level::Second);
            if let Some(a) = self.unit(level, t.div_euclid(level.ms())) {
                match &mut acc {
                    Some(acc) => acc.merge(&a),
                    None => acc = Some(a),
                }
            }
            t += level.ms();
        }
        acc
    }

    /// Whether the base kline of the minute starting at `t` exists and is halted.
    fn halted(&self, t: i64) -> bool {
        halts_in(self.model.key, t, t + MINUTE).next().is_some()
    }

    fn cover(&self, start: i64, end: i64) -> Cover {
        let life = &self.model.life;
        let Some(listed) = life.listed else {
            return Cover::Empty;
        };
        // Only seconds that have opened by `now` exist.
        let avail = end.min(self.now.div_euclid(SECOND) * SECOND + SECOND);
        let lo = start.max(listed);
        let hi = avail.min(life.delisted.unwrap_or(i64::MAX));
        if lo >= hi {
            return Cover::Empty;
        }
        let mut partial = lo > start || hi < end;
        if let Some((g0, g1)) = life.gap {
            if g0 <= lo && g1 >= hi {
                return Cover::Empty;
            }
            partial |= g0 < hi && g1 > lo;
        }
        for (o0, o1) in outages_in(lo, hi) {
            if o0 <= lo && o1 >= hi {
                return Cover::Empty;
            }
            partial = true;
        }
        partial |= halts_in(self.model.key, lo, hi).next().is_some();
        if partial {
            Cover::Partial
        } else {
            Cover::Full
        }
    }

    /// The kline of unit `index` at `level`, as it exists.
    fn unit(&self, level: Level, index: i64) -> Option<Agg> {
        let start = index * level.ms();
        if level == Level::Second {
            let minute = start.div_euclid(MINUTE);
            return match self.cover(minute * MINUTE, (minute + 1) * MINUTE) {
                Cover::Empty => None,
                _ if start > self.now => None,
                _ if self.halted(minute * MINUTE) => {
                    Some(Agg::flat(self.top(Level::Minute, minute).open))
                }
                _ => Some(self.top(Level::Second, index)),
            };
        }
        match self.cover(start, start + level.ms()) {
            Cover::Empty => None,
            Cover::Full => Some(self.top(level, index)),
            Cover::Partial if level == Level::Minute && self.halted(start) => {
                Some(Agg::flat(self.top(level, index).open))
            }
            Cover::Partial => {
                let child = level.child()?;
                let n = level.ms() / child.ms();
                Agg::sum((0..n).filter_map(|i| self.unit(child, index * n + i)))
            }
        }
    }

    /// The top-down kline of a unit: what it would be if all its base klines existed.
    fn top(&self, level: Level, index: i64) -> Agg {
        match level {
            Level::Day => self.day(index),
            Level::Hour => {
                let day = index.div_euclid(24);
                self.children(&self.hours, day, || self.day(day))[index.rem_euclid(24) as usize]
            }
            Level::Minute => {
                let hour = index.div_euclid(60);
                self.children(&self.minutes, hour, || self.top(Level::Hour, hour))
                    [index.rem_euclid(60) as usize]
            }
            Level::Second => {
                let minute = index.div_euclid(60);
                self.children(&self.seconds, minute, || self.top(Level::Minute, minute))
                    [index.rem_euclid(60) as usize]
            }
        }
    }

    /// The children of `parent_index` at one level, from the one-entry cache.
    fn children<const N: usize>(
        &self,
        cache: &RefCell<Option<(i64, [Agg; N])>>,
        parent_index: i64,
        parent: impl FnOnce() -> Agg,
    ) -> [Agg; N] {
        if let Some((i, kids)) = *cache.borrow() {
            if i == parent_index {
                return kids;
            }
        }
        let mut kids = [Agg::default(); N];
        split(
            &self.model.units,
            &parent(),
            hash(&[self.model.key, salt::SPLIT, N as u64, parent_index as u64]),
            &mut kids,
        );
        *cache.borrow_mut() = Some((parent_index, kids));
        kids
    }

    /// The price path's anchor at midnight starting day `d`, in price units.
    fn anchor(&self, d: i64) -> i64 {
        let m = self.model;
        // Octaves from a day to about three years; amplitudes grow like a
        // random walk's spread, so long trends dominate, as in real markets.
        const OCTAVES: [(f64, f64); 6] = [
            (1.0, 0.9),
            (4.0, 1.6),
            (16.0, 2.6),
            (64.0, 4.2),
            (256.0, 6.5),
            (1024.0, 9.0),
        ];
        let x: f64 = OCTAVES
            .iter()
            .enumerate()
            .map(|(k, &(period, amp))| {
                amp * value_noise(mix(m.key ^ salt::ANCHOR ^ k as u64), d as f64 / period)
            })
            .sum();
        m.units.round_tick(m.price * (x * m.sigma).exp())
    }

    /// The top-down kline of day `d`.
    fn day(&self, d: i64) -> Agg {
        let m = self.model;
        let u = &m.units;
        let h = |i: u64| hash(&[m.key, salt::DAY, d as u64, i]);
        let (open, close) = (self.anchor(d), self.anchor(d + 1));
        let sigma = m.sigma * (0.5 + unit(h(0)));
        let top = open.max(close) as f64;
        let high = u
            .round_tick(top * (1.0 + sigma * (0.1 + 0.6 * unit(h(1)))))
            .max(open.max(close));
        let bottom = open.min(close) as f64;
        let low = u
            .round_tick(bottom * (1.0 - sigma * (0.1 + 0.6 * unit(h(2)))))
            .min(open.min(close));
        let activity = (0.6 * value_noise(mix(m.key ^ salt::ACTIVITY), d as f64 / 45.0)
            + 0.25 * normal(h(3)))
        .exp();
        let steps = (m.steps_per_day * activity).round().max(1.0) as u128;
        let trades = ((m.trades_per_day * activity * (0.8 + 0.4 * unit(h(4))))
            .round()
            .max(1.0) as u128)
            .min(steps) as u64;
        let volume = steps * u.step;
        let quote = u.quote_of(volume, (open + high + low + close) as f64 / 4.0);
        let share = 0.35 + 0.3 * unit(h(5));
        let taker_base = ((steps as f64 * share) as u128).min(steps) * u.step;
        let taker_quote = ((quote as f64 * share) as u128).min(quote);
        Agg {
            open,
            high,
            low,
            close,
            volume,
            quote,
            trades,
            taker_base,
            taker_quote,
        }
    }
}

/// The open time of the kline after the one opening at `t`.
pub fn next_open(interval: Interval, t: i64) -> i64 {
    match interval.step_ms() {
        Some(step) => t + step,
        None => {
            use chrono::{Datelike, TimeZone, Utc};
            let d = Utc
                .timestamp_millis_opt(t)
                .single()
                .map(|d| d.date_naive())
                .unwrap_or_default();
            let (y, m) = if d.month() == 12 {
                (d.year() + 1, 1)
            } else {
                (d.year(), d.month() + 1)
            };
            Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                .single()
                .map(|d| d.timestamp_millis())
                .unwrap_or(i64::MAX)
        }
    }
}

/// The regular open time of the kline of `interval` containing `t`.
pub fn open_of(interval: Interval, t: i64) -> i64 {
    match interval.step_ms() {
        // Binance's 1w opens on Mondays (the epoch was a Thursday); the
        // other fixed intervals are multiples of their length since the epoch.
        Some(step) if interval == Interval::W1 => t - (t - 4 * DAY).rem_euclid(step),
        Some(step) => t - t.rem_euclid(step),
        None => {
            use chrono::{Datelike, TimeZone, Utc};
            let d = Utc
                .timestamp_millis_opt(t)
                .single()
                .map(|d| d.date_naive())
                .unwrap_or_default();
            Utc.with_ymd_and_hms(d.year(), d.month(), 1, 0, 0, 0)
                .single()
                .map(|d| d.timestamp_millis())
                .unwrap_or(i64::MIN)
        }
    }
}

/// Splits `parent` into `out.len()` consecutive children that aggregate to
/// exactly `parent` (see the module's documentation).
fn split(u: &Units, parent: &Agg, key: u64, out: &mut [Agg]) {
    let n = out.len();
    let h = |i: usize, what: u64| hash(&[key, i as u64, what]);
    // Trades, then volume: every active child gets one step per trade plus
    // a share of the rest, so volume >= trades holds at every level.
    const MAX: usize = 60;
    let mut weights = [0f64; MAX];
    for (i, w) in weights[..n].iter_mut().enumerate() {
        *w = (0.8 * normal(h(i, 0))).exp();
    }
    let mut trades = [0u128; MAX];
    split_capped(parent.trades as u128, &weights[..n], None, &mut trades);
    let steps = parent.volume / u.step;
    let extra_steps = steps - parent.trades as u128;
    let mut vw = [0f64; MAX];
    for i in 0..n {
        vw[i] = if trades[i] > 0 {
            weights[i] * (0.5 + unit(h(i, 1)))
        } else {
            0.0
        };
    }
    let mut extra = [0u128; MAX];
    split_capped(extra_steps, &vw[..n], None, &mut extra);
    let mut active = [0usize; MAX];
    let mut m = 0;
    for i in (0..n).filter(|&i| trades[i] > 0) {
        active[m] = i;
        m += 1;
    }
    // Prices: a Brownian bridge from the parent's open to its close through
    // the active children; inactive children sit at the last close.
    let mut bounds = [parent.open; MAX + 1];
    if m > 0 {
        bounds[m] = parent.close;
        let mut walk = [0f64; MAX + 1];
        for j in 1..=m {
            walk[j] = walk[j - 1] + normal(h(active[j - 1], 2));
        }
        let spread = (parent.high - parent.low) as f64 * 0.3 / (m as f64).sqrt();
        for j in 1..m {
            let f = j as f64 / m as f64;
            let x = parent.open as f64
                + (parent.close - parent.open) as f64 * f
                + spread * (walk[j] - f * walk[m]);
            bounds[j] = u.round_tick(x).clamp(parent.low, parent.high);
        }
    }
    let (hi, lo) = if m > 0 {
        (
            active[(h(n, 3) % m as u64) as usize],
            active[(h(n, 4) % m as u64) as usize],
        )
    } else {
        (n, n)
    };
    let excursion = (parent.high - parent.low) as f64 * 0.12 / (m.max(1) as f64).sqrt();
    let mut last = parent.open;
    let mut j = 0;
    for (i, child) in out.iter_mut().enumerate() {
        if trades[i] == 0 {
            *child = Agg::flat(last);
            continue;
        }
        let (open, close) = (bounds[j], bounds[j + 1]);
        j += 1;
        let up = (unit(h(i, 5)) * excursion / u.tick as f64) as i64 * u.tick;
        let down = (unit(h(i, 6)) * excursion / u.tick as f64) as i64 * u.tick;
        let high = if i == hi {
            parent.high
        } else {
            (open.max(close) + up).min(parent.high)
        };
        let low = if i == lo {
            parent.low
        } else {
            (open.min(close) - down).max(parent.low)
        };
        *child = Agg {
            open,
            high,
            low,
            close,
            volume: (trades[i] + extra[i]) * u.step,
            trades: trades[i] as u64,
            ..Agg::default()
        };
        last = close;
    }
    // Quote volume follows volume times price; taker volumes a random share
    // of each, never more than the child's own.
    let mut qw = [0f64; MAX];
    let mut share = [0f64; MAX];
    let mut caps = [0u128; MAX];
    for (i, c) in out.iter().enumerate() {
        qw[i] = c.volume as f64 * (c.high + c.low) as f64;
        share[i] = 0.3 + 0.4 * unit(h(i, 7));
        caps[i] = c.volume / u.step;
    }
    let mut quote = [0u128; MAX];
    split_capped(parent.quote, &qw[..n], None, &mut quote);
    let mut tw = [0f64; MAX];
    for i in 0..n {
        tw[i] = caps[i] as f64 * share[i];
    }
    let mut taker_base = [0u128; MAX];
    split_capped(
        parent.taker_base / u.step,
        &tw[..n],
        Some(&caps[..n]),
        &mut taker_base,
    );
    for i in 0..n {
        tw[i] = quote[i] as f64 * share[i];
    }
    let mut taker_quote = [0u128; MAX];
    split_capped(
        parent.taker_quote,
        &tw[..n],
        Some(&quote[..n]),
        &mut taker_quote,
    );
    for (i, child) in out.iter_mut().enumerate() {
        child.quote = quote[i];
        child.taker_base = taker_base[i] * u.step;
        child.taker_quote = taker_quote[i];
    }
}

/// Splits `total` into `weights.len()` integer parts proportional to
/// `weights`, summing to exactly `total`, by cumulative rounding: part `i` is
/// `⌊total·W≤i/W⌋ − ⌊total·W<i/W⌋` (no sorting, no allocation). Zero weights
/// get nothing (all-zero weights: the first child with room takes all). With
/// `caps`, any excess over a cap moves to the next children with room, so
/// the parts stay exact as long as the caps allow `total`.
fn split_capped(total: u128, weights: &[f64], caps: Option<&[u128]>, out: &mut [u128]) {
    let n = weights.len();
    out[..n].fill(0);
    if total == 0 || n == 0 {
        return;
    }
    let w: f64 = weights.iter().sum();
    match weights.iter().rposition(|&x| x > 0.0) {
        Some(last) if w > 0.0 => {
            let (mut acc, mut prev) = (0.0, 0u128);
            for i in 0..n {
                acc += weights[i];
                let c = if i >= last {
                    total
                } else {
                    (((total as f64) * (acc / w)).floor() as u128).clamp(prev, total)
                };
                out[i] = c - prev;
                prev = c;
            }
        }
        _ => {
            let first = (0..n).find(|&i| caps.is_none_or(|c| c[i] > 0)).unwrap_or(0);
            out[first] = total;
        }
    }
    if let Some(caps) = caps {
        let mut excess = 0u128;
        for i in 0..n {
            if out[i] > caps[i] {
                excess += out[i] - caps[i];
                out[i] = caps[i];
            }
        }
        for i in 0..n {
            if excess == 0 {
                break;
            }
            let g = (caps[i] - out[i]).min(excess);
            out[i] += g;
            excess -= g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model(market: Market, key: u64) -> SymbolModel {
        let units = match market {
            Market::Spot => Units {
                price_decimals: 8,
                tick: 1000,
                qty_decimals: 8,
                step: 10_000,
                quote_decimals: 8,
                contract_size: None,
            },
            Market::UsdM => Units {
                price_decimals: 2,
                tick: 10,
                qty_decimals: 3,
                step: 1,
                quote_decimals: 5,
                contract_size: None,
            },
            Market::CoinM => Units {
                price_decimals: 1,
                tick: 1,
                qty_decimals: 0,
                step: 1,
                quote_decimals: 8,
                contract_size: Some(100.0),
            },
        };
        let price = match market {
            Market::Spot => 2e6, // 0.02
            Market::UsdM => 3_000_000.0,
            Market::CoinM => 300_000.0,
        };
        SymbolModel {
            market,
            symbol: "TESTUSDT".into(),
            key,
            units,
            price,
            sigma: 0.04,
            steps_per_day: 5e6,
            trades_per_day: 20_000.0,
            life: Lifecycle {
                listed: Some(1_600_000_000_000 - 1_600_000_000_000 % MINUTE + 23 * MINUTE),
                delisted: None,
                gap: None,
            },
        }
    }

    fn check_kline(a: &Agg, u: &Units) {
        assert!(
            a.low <= a.open.min(a.close) && a.high >= a.open.max(a.close),
            "{a:?}"
        );
        assert!(
            a.low >= u.tick && a.low % u.tick == 0 && a.high % u.tick == 0,
            "{a:?}"
        );
        assert!(
            a.volume.is_multiple_of(u.step) && a.taker_base <= a.volume && a.taker_quote <= a.quote,
            "{a:?}"
        );
        assert!(a.volume / u.step >= a.trades as u128, "{a:?}");
        if a.trades == 0 {
            assert!(
                a.volume == 0 && a.open == a.high && a.low == a.close && a.open == a.close,
                "{a:?}"
            );
        }
    }

    #[test]
    fn split_capped_is_exact() {
        let split = |total: u128, w: &[f64], caps: Option<&[u128]>| {
            let mut out = vec![0; w.len()];
            split_capped(total, w, caps, &mut out);
            out
        };
        let w = [1.0, 0.0, 3.0, 2.5];
        let parts = split(1000, &w, None);
        assert_eq!(parts.iter().sum::<u128>(), 1000);
        assert_eq!(parts[1], 0, "zero weight, nothing");
        let caps = [10, 100, 5, 1000];
        let parts = split(200, &w, Some(&caps));
        assert_eq!(parts.iter().sum::<u128>(), 200);
        assert!(parts.iter().zip(caps).all(|(p, c)| *p <= c));
        assert_eq!(split(0, &w, None), vec![0; 4]);
        assert_eq!(split(7, &[0.0; 3], None), vec![7, 0, 0]);
        // Trailing zero weights get nothing even when floats round down.
        let big = u128::MAX >> 20;
        let parts = split(big, &[0.3, 0.3, 0.3, 0.0], None);
        assert_eq!((parts.iter().sum::<u128>(), parts[3]), (big, 0));
    }

    #[test]
    fn week_and_month_boundaries() {
        // 2017-07-03 was a Monday (binance-api.md's 1w example).
        assert_eq!(
            open_of(Interval::W1, 1_499_040_000_000 + 3 * DAY + 5),
            1_499_040_000_000
        );
        assert_eq!(
            next_open(Interval::W1, 1_499_040_000_000) - 1,
            1_499_644_799_999
        );
        assert_eq!(
            open_of(Interval::Mo1, 1_709_251_200_000 - 1),
            1_706_745_600_000
        ); // Feb 2024
        assert_eq!(
            next_open(Interval::Mo1, 1_706_745_600_000),
            1_709_251_200_000
        ); // leap February
        assert_eq!(open_of(Interval::D3, 1_700_000_000_000) % (3 * DAY), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Every interval's kline is the aggregate of its 1m klines (and, on
        /// spot, every 1m kline the aggregate of its 1s klines).
        #[test]
        fn intervals_aggregate_their_base(key in any::<u64>(), market in 0usize..3, iv in 0usize..16, at in 1_600_000_000_000i64..1_700_000_000_000) {
            let market = Market::ALL[market];
            let m = model(market, key);
            let g = Gen::new(&m, 1_800_000_000_000);
            let interval = Interval::ALL[iv];
            prop_assume!(interval.valid_for(market) && !matches!(interval, Interval::Mo1 | Interval::W1 | Interval::D3));
            let t = open_of(interval, at);
            let k = g.kline(interval, t);
            let base = if interval == Interval::S1 { Interval::S1 } else { Interval::M1 };
            let step = base.step_ms().unwrap();
            let parts: Vec<Agg> = (0..(next_open(interval, t) - t) / step).filter_map(|i| g.kline(base, t + i * step).map(|k| k.agg)).collect();
            prop_assert_eq!(k.map(|k| k.agg), Agg::sum(parts.iter().copied()));
            for p in &parts {
                check_kline(p, &m.units);
            }
            if market == Market::Spot && interval == Interval::M1 {
                if let Some(k) = k {
                    let secs = Agg::sum((0..60).filter_map(|i| g.kline(Interval::S1, t + i * SECOND).map(|k| k.agg)));
                    prop_assert_eq!(Some(k.agg), secs);
                }
            }
        }
    }

    #[test]
    fn long_intervals_aggregate_days() {
        let m = model(Market::UsdM, 9);
        let g = Gen::new(&m, 1_800_000_000_000);
        for (iv, t) in [
            (Interval::W1, open_of(Interval::W1, 1_650_000_000_000)),
            (Interval::Mo1, 1_706_745_600_000),
            (Interval::D3, open_of(Interval::D3, 1_640_000_000_000)),
        ] {
            let end = next_open(iv, t);
            let days = Agg::sum(
                (0..(end - t) / DAY)
                    .filter_map(|i| g.kline(Interval::D1, t + i * DAY).map(|k| k.agg)),
            );
            assert_eq!(g.kline(iv, t).map(|k| k.agg), days, "{iv}");
            // ... and the days their hours.
            let hours = Agg::sum(
                (0..24).filter_map(|i| g.kline(Interval::H1, t + i * HOUR).map(|k| k.agg)),
            );
            assert_eq!(g.kline(Interval::D1, t).map(|k| k.agg), hours);
        }
    }

    #[test]
    fn lifecycle_outages_halts_and_now() {
        let mut m = model(Market::Spot, 5);
        let listed = m.life.listed.unwrap();
        let g = Gen::new(&m, 1_800_000_000_000);
        // Nothing before the listing minute; the first kline is not at midnight.
        assert!(g.kline(Interval::M1, listed - MINUTE).is_none());
        assert!(g.kline(Interval::M1, listed).is_some());
        let day = open_of(Interval::D1, listed);
        assert_ne!(day, listed);
        let first_day = g.kline(Interval::D1, day).unwrap().agg;
        let minutes = Agg::sum(
            (0..1440).filter_map(|i| g.kline(Interval::M1, day + i * MINUTE).map(|k| k.agg)),
        );
        assert_eq!(Some(first_day), minutes);
        // An exchange outage: no klines inside (2020-12-21 13:47 - 18:00).
        assert!(g.kline(Interval::M1, 1_608_558_420_000).is_none());
        assert!(g.kline(Interval::M1, 1_608_558_420_000 - MINUTE).is_some());
        assert!(g.kline(Interval::M1, 1_608_573_600_000).is_some());
        // A halt: klines exist, zero volume, flat at the last close.
        let (h0, h1) = halts_in(m.key, listed + DAY, i64::MAX).next().unwrap();
        let before = g.kline(Interval::M1, h0 - MINUTE).unwrap().agg;
        for t in (h0..h1).step_by(MINUTE as usize) {
            let k = g.kline(Interval::M1, t).unwrap().agg;
            assert_eq!(k.volume, 0);
            assert_eq!(k.trades, 0);
            assert_eq!(k, Agg::flat(k.open));
        }
        assert!(before.trades > 0);
        // Delisting and relisting.
        m.life.delisted = Some(1_700_000_000_000 - 1_700_000_000_000 % MINUTE);
        m.life.gap = Some((
            1_650_000_000_000 - 1_650_000_000_000 % MINUTE,
            1_660_000_000_000 - 1_660_000_000_000 % MINUTE,
        ));
        let g = Gen::new(&m, 1_800_000_000_000);
        assert!(g.kline(Interval::M1, m.life.delisted.unwrap()).is_none());
        assert!(g
            .kline(Interval::M1, m.life.delisted.unwrap() - MINUTE)
            .is_some());
        assert!(g
            .kline(Interval::H1, 1_655_000_000_000 - 1_655_000_000_000 % HOUR)
            .is_none());
        // The open candle: only what happened by `now`.
        let now = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE - 12 * HOUR + 17 * SECOND + 400;
        let g = Gen::new(&m, now);
        let open = g.kline(Interval::M1, now - now % MINUTE).unwrap().agg;
        let secs = Agg::sum((0..=17).filter_map(|i| {
            g.kline(Interval::S1, now - now % MINUTE + i * SECOND)
                .map(|k| k.agg)
        }));
        assert_eq!(Some(open), secs);
        assert!(g.kline(Interval::M1, now - now % MINUTE + MINUTE).is_none());
        let later = Gen::new(&m, now + 20 * SECOND)
            .kline(Interval::M1, now - now % MINUTE)
            .unwrap()
            .agg;
        assert!(later.trades >= open.trades && later.volume >= open.volume);
    }

    #[test]
    fn prices_look_like_a_market() {
        let m = model(Market::UsdM, 77);
        let g = Gen::new(&m, 1_800_000_000_000);
        let closes: Vec<f64> = (0..1000)
            .map(|d| {
                g.kline(
                    Interval::D1,
                    1_600_000_000_000 - 1_600_000_000_000 % DAY + d * DAY,
                )
                .unwrap()
                .agg
                .close as f64
            })
            .collect();
        let rets: Vec<f64> = closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let sd = (rets.iter().map(|r| r * r).sum::<f64>() / rets.len() as f64).sqrt();
        assert!((0.01..0.15).contains(&sd), "daily log-return sd {sd}");
        let (lo, hi) = closes
            .iter()
            .fold((f64::MAX, 0f64), |(a, b), &c| (a.min(c), b.max(c)));
        assert!(hi / lo > 1.5, "prices hardly move: {lo}..{hi}");
    }
}
