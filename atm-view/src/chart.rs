//! The chart: candles for a time window, each column aggregating `zoom`
//! klines, and the widget that draws them with block characters (two price
//! steps per cell), beside a price scale and above a time axis.

use atm_store::{Kline, Precision};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

use crate::table::SeriesView;
use crate::theme::Theme;
use crate::Result;

/// One column of the chart: the klines of `zoom` slots rolled up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candle {
    /// First open.
    pub open: f64,
    /// Highest high.
    pub high: f64,
    /// Lowest low.
    pub low: f64,
    /// Last close.
    pub close: f64,
    /// Volume sum.
    pub volume: f64,
    /// Whether the column holds the in-progress kline.
    pub live: bool,
}

impl Candle {
    fn of(k: &Kline, live: bool) -> Candle {
        Candle {
            open: k.open(),
            high: k.high(),
            low: k.low(),
            close: k.close(),
            volume: k.volume(),
            live,
        }
    }

    fn add(&mut self, k: &Kline, live: bool) {
        self.high = self.high.max(k.high());
        self.low = self.low.min(k.low());
        self.close = k.close();
        self.volume += k.volume();
        self.live |= live;
    }
}

/// The chart's window: how many klines a column holds, and where it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChartState {
    /// Klines per column (1 to [`MAX_ZOOM`]).
    pub zoom: u64,
    /// Last slot shown; `None` follows the table's last visible row.
    pub end: Option<u64>,
}

impl Default for ChartState {
    fn default() -> Self {
        ChartState { zoom: 1, end: None }
    }
}

/// The widest zoom: a column per this many klines.
pub const MAX_ZOOM: u64 = 1 << 14;

impl ChartState {
    /// Twice the time per column.
    pub fn zoom_out(&mut self) {
        self.zoom = (self.zoom * 2).min(MAX_ZOOM);
    }
    /// Half the time per column.
    pub fn zoom_in(&mut self) {
        self.zoom = (self.zoom / 2).max(1);
    }
    /// The window's end that puts the first kline in the first column.
    pub fn home_end(&self, v: &SeriesView, columns: usize) -> u64 {
        v.first - v.first % self.zoom + columns as u64 * self.zoom - 1
    }

    /// Moves the window by `by` columns (negative: back in time), pinning
    /// it; it stops where the first kline is in the first column, or the
    /// last in the last column.
    pub fn pan(&mut self, v: &SeriesView, anchor: u64, by: i64, columns: usize) {
        let end = self.end.unwrap_or(anchor) as i64 + by * self.zoom as i64;
        let (home, last) = (self.home_end(v, columns) as i64, v.end() as i64 - 1);
        self.end = Some(end.clamp(home.min(last), home.max(last)) as u64);
    }

    /// Caps the zoom so that the window fits in the interval's grid.
    pub fn fit(&mut self, v: &SeriesView, columns: usize) {
        while self.zoom > 1 && columns as u64 * self.zoom > v.interval.capacity() {
            self.zoom /= 2;
        }
    }
}

/// Candles for `columns` columns of `zoom` slots each, the last column ending
/// at slot `end`; `None` where a column has no kline. The live kline is part
/// of its column. Reads only the window's klines, chunk by chunk.
pub fn candles(
    v: &SeriesView,
    end: u64,
    columns: usize,
    zoom: u64,
) -> Result<(i64, Vec<Option<Candle>>)> {
    let iv = v.interval;
    let span = columns as u64 * zoom;
    // Columns are aligned to multiples of `zoom` so panning does not
    // reshuffle them; near the grid's origin the first columns stay empty.
    let last_col_start = end - end % zoom;
    let first_slot = (last_col_start + zoom) as i64 - span as i64;
    let start = first_slot.max(0) as u64;
    let mut out: Vec<Option<Candle>> = vec![None; columns];
    let col = |t: i64| -> Option<usize> {
        let c = (iv.slot_of(t).ok()? as i64 - first_slot) / zoom as i64;
        (0..columns as i64).contains(&c).then_some(c as usize)
    };
    let mut put = |k: &Kline, live: bool| {
        if let Some(c) = col(k.open_time) {
            match &mut out[c] {
                Some(cd) => cd.add(k, live),
                slot => *slot = Some(Candle::of(k, live)),
            }
        }
    };
    // To the last slot's close: an irregular kline opens after its slot does.
    let to = iv.close_time((first_slot + span as i64 - 1).max(0) as u64);
    if v.has_stored() {
        v.series.for_each_chunk(iv.open_time(start), to, |chunk| {
            chunk.iter().for_each(|k| put(k, false));
            Ok(())
        })?;
    }
    if let Some(k) = &v.live {
        put(k, true);
    }
    Ok((first_slot, out))
}

/// Draws candles (and nothing else) into its area.
pub struct CandleChart<'a> {
    /// The columns, left to right.
    pub candles: &'a [Option<Candle>],
    /// Lowest price of the scale.
    pub low: f64,
    /// Highest price of the scale.
    pub high: f64,
    pub(crate) theme: Theme,
}

/// The price range of `candles`, widened a little when flat.
pub fn price_range(candles: &[Option<Candle>]) -> Option<(f64, f64)> {
    let (lo, hi) = candles
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c.low), hi.max(c.high))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = (hi.abs() * 0.001).max(1e-9);
        return Some((lo - pad, hi + pad));
    }
    Some((lo, hi))
}

impl Widget for CandleChart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width == 0 || self.high <= self.low {
            return;
        }
        // Half-cell steps, 0 at the bottom.
        let steps = area.height as f64 * 2.0;
        let unit = |p: f64| {
            (((p - self.low) / (self.high - self.low)) * (steps - 1.0))
                .round()
                .clamp(0.0, steps - 1.0) as i64
        };
        for (x, c) in self.candles.iter().take(area.width as usize).enumerate() {
            let Some(c) = c else { continue };
            let (wick_lo, wick_hi) = (unit(c.low), unit(c.high));
            let (body_lo, body_hi) = (unit(c.open.min(c.close)), unit(c.open.max(c.close)));
            let up = c.close >= c.open;
            let style = if c.live {
                self.theme.live()
            } else if up {
                self.theme.up()
            } else {
                self.theme.down()
            };
            for row in 0..area.height {
                // Cell `row` from the top covers half steps `lo` (lower) and `lo + 1` (upper).
                let lo = (area.height - 1 - row) as i64 * 2;
                let has = |a: i64, b: i64, u: i64| (a..=b).contains(&u);
                let (bl, bu) = (has(body_lo, body_hi, lo), has(body_lo, body_hi, lo + 1));
                let (wl, wu) = (has(wick_lo, wick_hi, lo), has(wick_lo, wick_hi, lo + 1));
                let ch = match (bl, bu, wl, wu) {
                    (true, true, ..) => body_char(up, self.theme),
                    (false, true, ..) => "▀",
                    (true, false, ..) => "▄",
                    (_, _, true, true) => "│",
                    (_, _, false, true) => "╷",
                    (_, _, true, false) => "╵",
                    _ => continue,
                };
                buf[(area.x + x as u16, area.y + row)]
                    .set_symbol(ch)
                    .set_style(style);
            }
        }
    }
}

/// A full body: solid, or with `NO_COLOR` hollow-looking for rising candles.
fn body_char(up: bool, theme: Theme) -> &'static str {
    if up && !theme.color {
        "░"
    } else {
        "█"
    }
}

/// Volumes scaled to the integer bars of ratatui's `Sparkline`.
pub fn volume_bars(candles: &[Option<Candle>]) -> Vec<u64> {
    let max = candles
        .iter()
        .flatten()
        .map(|c| c.volume)
        .fold(0.0, f64::max);
    candles
        .iter()
        .map(|c| {
            c.map_or(0, |c| {
                if max > 0.0 {
                    (c.volume / max * 1000.0).round() as u64
                } else {
                    0
                }
            })
        })
        .collect()
}

/// A price for the scale, short enough for the gutter.
pub fn price_label(p: f64, precision: Precision) -> String {
    let s = precision.format(p);
    if s.len() <= 10 {
        return s;
    }
    format!("{p:.4e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(o: f64, h: f64, l: f64, cl: f64) -> Option<Candle> {
        Some(Candle {
            open: o,
            high: h,
            low: l,
            close: cl,
            volume: 1.0,
            live: false,
        })
    }

    #[test]
    fn candles_draw_bodies_and_wicks() {
        let cs = [c(2.0, 4.0, 0.0, 3.0), None, c(3.0, 3.0, 1.0, 1.0)];
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 3));
        CandleChart {
            candles: &cs,
            low: 0.0,
            high: 4.0,
            theme: Theme { color: false },
        }
        .render(buf.area, &mut buf);
        let col = |x: u16| {
            (0..3)
                .map(|y| buf[(x, y)].symbol().to_string())
                .collect::<Vec<_>>()
                .join("")
        };
        // 6 half steps over 0..4: high 4 -> 5, close 3 -> 4 (3.75), open 2 -> 3 (2.5 rounds up), low 0 -> 0:
        // the body fills the lower half of the top cell and the upper half of the middle one.
        assert_eq!(col(0), "▄▀│");
        assert_eq!(col(1), "   ");
        assert!(col(2).contains('█'), "{}", col(2));
    }

    #[test]
    fn flat_prices_still_get_a_range() {
        let (lo, hi) = price_range(&[c(5.0, 5.0, 5.0, 5.0)]).unwrap();
        assert!(lo < 5.0 && hi > 5.0);
        assert_eq!(price_range(&[None]), None);
        assert_eq!(volume_bars(&[c(1.0, 1.0, 1.0, 1.0), None]), [1000, 0]);
    }
}
