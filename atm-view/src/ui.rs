//! Drawing the [`App`] into a ratatui frame: the title bar, the selection
//! box, the table, the chart, the status and log panes, the footer and the
//! help overlay. The layout adapts to the terminal: at 120x40 everything is
//! on screen; on narrow terminals the selection box and the data panes take
//! turns; below 40x10 a single line asks for more room.

use atm_store::{format_ms, Interval, SeriesKey};
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Clear, Paragraph, Scrollbar, ScrollbarOrientation, ScrollbarState, Sparkline,
    Wrap,
};
use ratatui::Frame;

use crate::app::{App, Focus, Input, VALUE_COLUMNS};
use crate::chart::{candles, price_label, price_range, volume_bars, CandleChart};
use crate::table::{Row, RowKind};

/// The smallest terminal drawn in full.
pub const MIN_SIZE: (u16, u16) = (40, 10);

/// The buffer as text: one line per row, trailing spaces trimmed (what
/// snapshot tests compare and what `tmux capture-pane` shows).
pub fn buffer_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..buf.area.width {
            let cell = &buf[(x, y)];
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = cell.symbol();
            line.push_str(sym);
            // A wide character covers the next cell too.
            skip = unicode_width(sym).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn unicode_width(s: &str) -> usize {
    ratatui::text::Span::raw(s).width()
}

/// Times as the table shows them: `YYYY-MM-DD HH:MM`, with `:SS` for 1s.
pub fn format_time(t: i64, interval: Interval) -> String {
    let full = format_ms(t).replace('T', " ");
    let n = if interval == Interval::S1 { 19 } else { 16 };
    full.get(..n).unwrap_or(&full).to_string()
}

/// Draws the whole screen.
pub(crate) fn draw(app: &mut App, f: &mut Frame) {
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let msg = format!(
            "atm view needs at least {}x{} (this terminal is {}x{}); q quits",
            MIN_SIZE.0, MIN_SIZE.1, area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let bottom_h = if area.height >= 30 { 7 } else { 0 };
    let [title, body, bottom, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(bottom_h),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(app, f, title);

    let wide = area.width >= 100;
    let selecting = app.focus.in_selection() || app.opened.is_none();
    let (side, data) = if wide {
        let w = if selecting {
            (area.width / 2).min(58)
        } else {
            34
        };
        let [s, d] = Layout::horizontal([Constraint::Length(w), Constraint::Min(1)]).areas(body);
        (Some(s), Some(d))
    } else if selecting {
        (Some(body), None)
    } else {
        (None, Some(body))
    };
    app.areas = Default::default();
    if let Some(s) = side {
        draw_selection(app, f, s);
    }
    if let Some(d) = data {
        draw_data(app, f, d);
    }
    if bottom_h > 0 {
        let [st, lg] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(bottom);
        draw_status(app, f, st);
        draw_log(app, f, lg);
    }
    draw_footer(app, f, footer);
    if app.help {
        draw_help(app, f, area);
    }
}

fn draw_title(app: &App, f: &mut Frame, area: Rect) {
    let mut spans = vec![
        Span::styled(" atm view ", app.theme.header()),
        Span::raw(format!("· {} ", app.label)),
    ];
    if let Some(o) = &app.opened {
        spans.push(Span::styled(
            format!("· {} {} {} ", o.key.market, o.key.symbol, o.key.interval),
            app.theme.header(),
        ));
        if o.view.live.is_some() {
            spans.push(Span::styled("● live ", app.theme.live()));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
    let hint = Paragraph::new("? keys · q quit ").alignment(Alignment::Right);
    f.render_widget(hint, area);
}

fn pane<'a>(app: &App, title: String, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(app.theme.border(focused))
}

fn draw_selection(app: &mut App, f: &mut Frame, area: Rect) {
    let block = pane(app, " select ".to_string(), app.focus.in_selection());
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height < 4 {
        return;
    }
    let [markets, intervals, filter, list] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    app.areas.markets = markets;
    app.areas.intervals = intervals;
    app.areas.list = list;
    let t = app.theme;

    // Market tabs.
    let mut spans = Vec::new();
    for (i, m) in app.catalog.markets.iter().enumerate() {
        let label = format!(" {} {} ", m.market, m.symbols.len());
        let style = match (i == app.market, app.focus == Focus::Markets) {
            (true, true) => t.selected(),
            (true, false) => t
                .header()
                .add_modifier(ratatui::style::Modifier::UNDERLINED),
            _ => Style::default(),
        };
        spans.push(Span::styled(label, style));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), markets);

    // Interval tabs of the symbol under the cursor.
    let sym = app.selected_symbol().cloned();
    let mut spans = vec![Span::styled("interval ", t.dim())];
    if let Some(s) = &sym {
        let cur = app.interval_for(s);
        for iv in &s.intervals {
            let style = match (Some(*iv) == cur, app.focus == Focus::Intervals) {
                (true, true) => t.selected(),
                (true, false) => t
                    .header()
                    .add_modifier(ratatui::style::Modifier::UNDERLINED),
                _ => Style::default(),
            };
            spans.push(Span::styled(format!(" {iv} "), style));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), intervals);

    // Filter line.
    let n = app.filter.matches().len();
    let total = app.symbols().len();
    let line = match (&app.input, app.filter.query()) {
        (Input::Filter, q) => Line::from(vec![
            Span::styled("/", t.header()),
            Span::raw(format!("{q}▏")),
        ]),
        (_, "") => Line::from(Span::styled("/ filters", t.dim())),
        (_, q) => Line::from(vec![
            Span::styled("/", t.header()),
            Span::raw(q.to_string()),
        ]),
    };
    f.render_widget(Paragraph::new(line), filter);
    f.render_widget(
        Paragraph::new(Span::styled(format!("{n}/{total}"), t.dim())).alignment(Alignment::Right),
        filter,
    );

    // The list: only visible rows are summarized.
    if app.catalog.series_count() == 0 {
        let msg = format!(
            "no series in {}.\nFill it with `atm sync` or `atm import`.",
            app.label
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), list);
        return;
    }
    if n == 0 {
        let msg = if total == 0 {
            "no symbol in this market (m: next market)"
        } else {
            "no symbol matches the filter"
        };
        f.render_widget(Paragraph::new(Span::styled(msg, t.dim())), list);
        return;
    }
    let h = list.height as usize;
    if app.list < app.list_offset {
        app.list_offset = app.list;
    } else if app.list >= app.list_offset + h {
        app.list_offset = app.list + 1 - h;
    }
    let market = app.catalog.markets[app.market].market;
    let w = list.width as usize;
    let mut lines = Vec::with_capacity(h);
    for row in app.list_offset..(app.list_offset + h).min(n) {
        let s = app.symbols()[app.filter.matches()[row] as usize].clone();
        let iv = app.interval_for(&s);
        let summary = iv
            .and_then(|iv| SeriesKey::parse(market, &s.name, iv).ok())
            .map(|k| app.summaries.get(&app.store, &k));
        let (pct, span) = match summary {
            Some(Ok(sm)) if sm.present > 0 => (
                format!("{:5.1}%", sm.percent_present()),
                match (sm.first, sm.last) {
                    (Some(a), Some(b)) => {
                        format!("{}→{}", &format_ms(a)[..10], &format_ms(b)[..10])
                    }
                    _ => String::new(),
                },
            ),
            Some(Err(e)) => ("  err".to_string(), e.to_string()),
            _ => ("    -".to_string(), "empty".to_string()),
        };
        let name_w = 14.min(w.saturating_sub(7)).max(4);
        // Padded by display width: Binance lists symbols in CJK characters.
        let name = pad(&fit(&s.name, name_w), name_w);
        let text = if w >= 52 {
            format!("{name} {:<8} {pct} {span}", fit(&s.status, 8))
        } else if w >= 30 {
            format!("{name} {:<8} {pct}", fit(&s.status, 8))
        } else {
            format!("{name} {pct}")
        };
        let style = match (row == app.list, app.focus == Focus::Symbols) {
            (true, true) => t.selected(),
            (true, false) => t.header(),
            _ if s.status == "delisted" => t.dim(),
            _ => Style::default(),
        };
        lines.push(Line::styled(fit(&text, w), style));
    }
    f.render_widget(Paragraph::new(lines), list);
}

/// `s` padded with spaces to `w` display columns.
fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(Span::raw(s).width())))
}

/// `s` cut to `w` display columns, with `…` when cut.
fn fit(s: &str, w: usize) -> String {
    if Span::raw(s).width() <= w {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if Span::raw(format!("{out}{c}…")).width() > w {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

fn draw_data(app: &mut App, f: &mut Frame, area: Rect) {
    if app.opened.is_none() {
        let block = pane(app, " table ".to_string(), false);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let msg =
            "Pick a symbol on the left and press Enter to see its klines here (? shows every key).";
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), inner);
        return;
    }
    let both = area.height >= 16;
    let (table, chart) = if both {
        let [a, b] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
        (Some(a), Some(b))
    } else if app.focus == Focus::Chart {
        (None, Some(area))
    } else {
        (Some(area), None)
    };
    if let Some(a) = table {
        draw_table(app, f, a);
    } else {
        // The chart still follows the table's page.
        let h = area.height.saturating_sub(3) as usize;
        if let Some(o) = &app.opened {
            if let Ok(top) = app.table.resolve(&o.view, h) {
                app.areas.table_last_slot = o
                    .view
                    .rows_from(top, h)
                    .ok()
                    .and_then(|r| r.last().map(|r| r.to));
            }
        }
    }
    if let Some(c) = chart {
        draw_chart(app, f, c);
    }
}

fn draw_table(app: &mut App, f: &mut Frame, area: Rect) {
    let t = app.theme;
    let Some(o) = &app.opened else { return };
    let v = &o.view;
    let count = o.view.series.stats().map(|s| s.present).unwrap_or(0);
    let title = format!(
        " {} {} {} · {} klines ",
        o.key.market,
        o.key.symbol,
        o.key.interval,
        group(count)
    );
    let block = pane(app, title, app.focus == Focus::Table);
    let inner = block.inner(area);
    f.render_widget(block, area);
    app.areas.table = inner;
    if inner.height < 2 {
        return;
    }
    let h = inner.height as usize - 1;
    app.areas.table_rows = h;
    let rows = match app.table.resolve(v, h).and_then(|top| v.rows_from(top, h)) {
        Ok(r) => r,
        Err(e) => {
            f.render_widget(
                Paragraph::new(Span::styled(e.to_string(), t.error())),
                inner,
            );
            return;
        }
    };
    app.areas.table_last_slot = rows.last().map(|r| r.to);
    let precision = app.store.precision();
    let iv = v.interval;
    let tw = if iv == Interval::S1 { 19 } else { 16 };
    // Column widths from the visible rows.
    let cells: Vec<Option<[String; 11]>> = rows
        .iter()
        .map(|r| match &r.kind {
            RowKind::Kline(k) | RowKind::Live(k) => Some(k.fields(precision)),
            _ => None,
        })
        .collect();
    let widths: Vec<usize> = VALUE_COLUMNS
        .iter()
        .map(|(name, i)| {
            cells
                .iter()
                .flatten()
                .map(|c| c[*i].len())
                .max()
                .unwrap_or(0)
                .max(name.len())
        })
        .collect();
    let avail = (inner.width as usize).saturating_sub(tw + 3);
    let mut shown = Vec::new();
    let mut used = 0;
    for (c, w) in widths.iter().enumerate().skip(app.column) {
        if used + w + 1 > avail && !shown.is_empty() {
            break;
        }
        shown.push(c);
        used += w + 1;
    }
    let mut header = format!("{:<tw$}  ", "open_time (UTC)");
    for &c in &shown {
        header.push_str(&format!(" {:>w$}", VALUE_COLUMNS[c].0, w = widths[c]));
    }
    if app.column > 0 {
        header.push_str("  ◂");
    }
    if shown.last().is_some_and(|&c| c + 1 < VALUE_COLUMNS.len()) {
        header.push_str("  ▸");
    }
    let mut lines = vec![Line::styled(header, t.header())];
    for (r, c) in rows.iter().zip(&cells) {
        lines.push(row_line(app, r, c.as_ref(), &shown, &widths, tw));
    }
    f.render_widget(Paragraph::new(lines), inner);
    // Where the page is in the series' time span.
    let span = v.end().saturating_sub(v.first).max(1) as usize;
    let pos = rows
        .first()
        .map_or(0, |r| r.from.saturating_sub(v.first) as usize);
    let mut sb = ScrollbarState::new(span.saturating_sub(h).max(1)).position(pos.min(span));
    f.render_stateful_widget(
        Scrollbar::new(ScrollbarOrientation::VerticalRight),
        area.inner(ratatui::layout::Margin::new(0, 1)),
        &mut sb,
    );
}

fn row_line(
    app: &App,
    r: &Row,
    cells: Option<&[String; 11]>,
    shown: &[usize],
    widths: &[usize],
    tw: usize,
) -> Line<'static> {
    let t = app.theme;
    let iv = app
        .opened
        .as_ref()
        .map_or(Interval::M1, |o| o.view.interval);
    // A kline's own open time (irregular ones open after their slot's).
    let open = match &r.kind {
        RowKind::Kline(k) | RowKind::Live(k) => k.open_time,
        _ => iv.open_time(r.from),
    };
    let time = format_time(open, iv);
    match (&r.kind, cells) {
        (RowKind::Kline(_) | RowKind::Live(_), Some(c)) => {
            let live = matches!(r.kind, RowKind::Live(_));
            let mut s = format!("{time:<tw$} {}", if live { "●" } else { " " });
            for &i in shown {
                s.push_str(&format!(" {:>w$}", c[VALUE_COLUMNS[i].1], w = widths[i]));
            }
            Line::styled(s, if live { t.live() } else { Style::default() })
        }
        (kind, _) => {
            let (what, style) = if *kind == RowKind::Missing {
                ("✕ known-missing", t.missing())
            } else {
                ("? not fetched", t.unknown())
            };
            let n = r.slots();
            let until = if n > 1 {
                format!(" until {}", format_time(iv.open_time(r.to), iv))
            } else {
                String::new()
            };
            let unit = if n == 1 { "kline" } else { "klines" };
            Line::styled(
                format!("{time:<tw$}   {what}: {} {unit}{until}", group(n)),
                style,
            )
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn draw_chart(app: &mut App, f: &mut Frame, area: Rect) {
    let t = app.theme;
    let Some(o) = &app.opened else { return };
    let v = &o.view;
    let iv = v.interval;
    let zoom = app.chart.zoom;
    let per = if zoom == 1 {
        format!("1 {iv} kline per column")
    } else {
        format!("{zoom} {iv} klines per column")
    };
    let pinned = if app.chart.end.is_some() {
        " · panned (0 follows the table)"
    } else {
        ""
    };
    let block = pane(
        app,
        format!(" chart · {per}{pinned} "),
        app.focus == Focus::Chart,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    app.areas.chart = inner;
    const GUTTER: u16 = 11;
    if inner.width <= GUTTER + 4 || inner.height < 4 {
        return;
    }
    let vol_h = if inner.height >= 12 { 3 } else { 1 };
    let [plot, vol, axis] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(vol_h),
        Constraint::Length(1),
    ])
    .areas(inner);
    let [gutter, candles_area] =
        Layout::horizontal([Constraint::Length(GUTTER), Constraint::Min(1)]).areas(plot);
    let [_, vol_area] =
        Layout::horizontal([Constraint::Length(GUTTER), Constraint::Min(1)]).areas(vol);
    let [_, axis_area] =
        Layout::horizontal([Constraint::Length(GUTTER), Constraint::Min(1)]).areas(axis);
    let cols = candles_area.width as usize;
    app.areas.chart_columns = cols;
    let end = app
        .chart
        .end
        .or(app.areas.table_last_slot)
        .unwrap_or(v.end() - 1);
    let (start, cs) = match candles(v, end, cols, zoom) {
        Ok(x) => x,
        Err(e) => {
            f.render_widget(
                Paragraph::new(Span::styled(e.to_string(), t.error())),
                inner,
            );
            return;
        }
    };
    let Some((lo, hi)) = price_range(&cs) else {
        f.render_widget(
            Paragraph::new(Span::styled(
                "no kline in this window (g/G: first/last)",
                t.dim(),
            )),
            candles_area,
        );
        return;
    };
    let p = app.store.precision();
    // High at the top, mid in the middle, low at the bottom.
    let gh = gutter.height as usize;
    let mut g = vec![Line::raw(""); gh];
    g[0] = Line::raw(price_label(hi, p));
    if gh >= 2 {
        g[gh - 1] = Line::raw(price_label(lo, p));
    }
    if gh >= 5 {
        g[gh / 2] = Line::raw(price_label((hi + lo) / 2.0, p));
    }
    f.render_widget(
        Paragraph::new(g).alignment(Alignment::Right),
        Rect {
            width: GUTTER - 1,
            ..gutter
        },
    );
    f.render_widget(
        CandleChart {
            candles: &cs,
            low: lo,
            high: hi,
            theme: t,
        },
        candles_area,
    );
    let bars = volume_bars(&cs);
    f.render_widget(Sparkline::default().data(&bars).style(t.dim()), vol_area);
    f.render_widget(
        Paragraph::new(Span::styled("volume", t.dim())),
        Rect {
            width: GUTTER - 1,
            ..vol
        },
    );
    let from = format_time(iv.open_time(start.max(0) as u64), iv);
    let to = format_time(
        iv.open_time((start + (cols as u64 * zoom) as i64 - 1).max(0) as u64),
        iv,
    );
    f.render_widget(Paragraph::new(from), axis_area);
    f.render_widget(Paragraph::new(to).alignment(Alignment::Right), axis_area);
}

fn draw_status(app: &App, f: &mut Frame, area: Rect) {
    let block = pane(app, " status ".to_string(), false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    f.render_widget(
        Paragraph::new(app.status.as_str()).wrap(Wrap { trim: false }),
        inner,
    );
}

fn draw_log(app: &App, f: &mut Frame, area: Rect) {
    let block = pane(app, " log ".to_string(), false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let lines = app.log.lines();
    let text: Vec<Line> = if lines.is_empty() {
        vec![Line::styled(
            "(the store's log record is empty)",
            app.theme.dim(),
        )]
    } else {
        lines[lines.len().saturating_sub(inner.height as usize)..]
            .iter()
            .map(|l| {
                let style = if l.contains(" ERROR ") {
                    app.theme.error()
                } else if l.contains(" WARN ") {
                    app.theme.missing()
                } else {
                    Style::default()
                };
                Line::styled(l.clone(), style)
            })
            .collect()
    };
    f.render_widget(Paragraph::new(text), inner);
}

fn draw_footer(app: &App, f: &mut Frame, area: Rect) {
    let t = app.theme;
    let line = match (&app.input, &app.message) {
        (Input::Goto(s), _) => Line::from(vec![
            Span::styled("go to (UTC, 2024-02-01 or 2024-02-01 12:30): ", t.header()),
            Span::raw(format!("{s}▏")),
            Span::styled("  Enter go · Esc cancel", t.dim()),
        ]),
        (Input::Filter, _) => Line::styled("type to filter · Enter or Esc ends · Backspace deletes", t.dim()),
        (_, Some((true, m))) => Line::styled(m.clone(), t.error()),
        (_, Some((false, m))) => Line::raw(m.clone()),
        _ => Line::styled(
            match app.focus {
                Focus::Markets => "←/→ market · Enter symbols · Tab next pane · ? keys",
                Focus::Symbols => "↑/↓ move · Enter open · / filter · ←/→ market · i interval · Tab next pane · ? keys",
                Focus::Intervals => "←/→ interval · Enter open · Tab next pane · ? keys",
                Focus::Table => "↑/↓ PgUp/PgDn scroll · g/G first/last · : go to date · ←/→ columns · Tab chart · ? keys",
                Focus::Chart => "←/→ pan · +/- zoom · g/G first/last · 0 follow table · Tab next pane · ? keys",
            },
            t.dim(),
        ),
    };
    f.render_widget(Paragraph::new(line), area);
}

/// Every key, as `?` shows them.
pub const KEYS: &[(&str, &str)] = &[
    ("q", "quit (Ctrl-C also, even while typing)"),
    ("?", "this help; ? or Esc closes it"),
    ("Tab, Shift-Tab", "next, previous pane"),
    ("/", "filter the symbols; Enter or Esc ends"),
    ("Backspace, Ctrl-U", "in a filter or date: delete, clear"),
    ("Enter", "open the symbol (first interval with data)"),
    ("m, M", "next, previous market"),
    ("i, I", "next, previous interval"),
    ("↑ ↓  k j", "one row"),
    ("PgUp PgDn Space", "one page"),
    ("g G  Home End", "first, last kline (symbol in the list)"),
    (":", "go to a date (UTC): 2024-02-01 12:30"),
    ("← →  h l", "table: columns; chart: pan in time"),
    ("+ -", "chart: zoom in, out"),
    ("0", "chart: follow the table again"),
    ("Esc", "leave an input; back to the symbols"),
    ("mouse", "wheel scrolls; click focuses, picks"),
];

fn draw_help(app: &App, f: &mut Frame, area: Rect) {
    // One column of keys when it fits, else two side by side (descriptions
    // cut to the room there is): every key is always on screen.
    let entry_w = 18
        + KEYS
            .iter()
            .map(|(_, w)| w.chars().count())
            .max()
            .unwrap_or(0);
    let two = (area.height as usize) < KEYS.len() + 2;
    let rows = if two {
        KEYS.len().div_ceil(2)
    } else {
        KEYS.len()
    };
    let col_w = if two {
        entry_w.min((area.width as usize).saturating_sub(3) / 2)
    } else {
        entry_w.min(area.width as usize - 2)
    };
    let w = area
        .width
        .min(if two { 2 * col_w + 3 } else { col_w + 2 } as u16);
    let h = area.height.min(rows as u16 + 2);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    let block = pane(app, " keys · ? or Esc closes ".to_string(), true);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let line = |(k, what): &(&'static str, &'static str)| -> Line<'static> {
        Line::from(vec![
            Span::styled(format!("{k:<18}"), app.theme.header()),
            Span::raw(fit(what, col_w.saturating_sub(18))),
        ])
    };
    if two {
        let [a, b] = Layout::horizontal([Constraint::Length(col_w as u16 + 1), Constraint::Min(1)])
            .areas(inner);
        f.render_widget(
            Paragraph::new(KEYS[..rows].iter().map(line).collect::<Vec<_>>()),
            a,
        );
        f.render_widget(
            Paragraph::new(KEYS[rows..].iter().map(line).collect::<Vec<_>>()),
            b,
        );
    } else {
        f.render_widget(
            Paragraph::new(KEYS.iter().map(line).collect::<Vec<_>>()),
            inner,
        );
    }
}
