//! The state of `atm view` and what every key and mouse event does.
//!
//! [`App`] knows nothing about the real terminal: tests and benchmarks
//! drive it with [`App::key`] and draw it into ratatui's `TestBackend`.

use std::path::Path;
use std::time::{Duration, Instant};

use atm_store::{Interval, SeriesKey, Store, StoreOptions};
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position as Point, Rect};
use ratatui::Frame;

use crate::catalog::{Catalog, Summaries, SymbolEntry};
use crate::chart::ChartState;
use crate::feed::LogTail;
use crate::filter::Filter;
use crate::table::{Position, SeriesView};
use crate::theme::Theme;
use crate::Result;

/// How `atm view` starts.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Force colors off (`Some(false)`) or on; `None` follows `NO_COLOR`.
    pub color: Option<bool>,
    /// What the title bar calls the store (default: its directory).
    pub label: Option<String>,
    /// A series to open at start: market, symbol, and interval (default:
    /// the symbol's first with data).
    pub open: Option<(atm_store::Market, String, Option<Interval>)>,
}

/// Which pane keys go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// The market tabs of the selection box.
    Markets,
    /// The symbol list.
    Symbols,
    /// The interval tabs of the selection box.
    Intervals,
    /// The table.
    Table,
    /// The chart.
    Chart,
}

const FOCUS_ORDER: [Focus; 5] = [
    Focus::Markets,
    Focus::Symbols,
    Focus::Intervals,
    Focus::Table,
    Focus::Chart,
];

impl Focus {
    /// Whether the pane is part of the selection box.
    pub fn in_selection(self) -> bool {
        matches!(self, Focus::Markets | Focus::Symbols | Focus::Intervals)
    }
}

/// A text being typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// No input: keys are commands.
    None,
    /// The symbol filter (`/`).
    Filter,
    /// A date to jump to (`:`).
    Goto(String),
}

/// The series shown in the table and chart.
pub struct Opened {
    /// Its key.
    pub key: SeriesKey,
    /// Its rows' view, refreshed on every tick.
    pub view: SeriesView,
}

/// Where panes were drawn last, for the mouse and for paging.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Areas {
    pub markets: Rect,
    pub intervals: Rect,
    pub list: Rect,
    pub table: Rect,
    pub chart: Rect,
    /// Rows of klines the table showed.
    pub table_rows: usize,
    /// Candle columns the chart showed.
    pub chart_columns: usize,
    /// Last slot the table showed (the chart's anchor).
    pub table_last_slot: Option<u64>,
}

/// Re-list the store's series this often (new listings of a running stream).
const CATALOG_EVERY: Duration = Duration::from_secs(5);
/// Read `atm status` this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Everything `atm view` shows and remembers.
pub struct App {
    pub(crate) store: Store,
    pub(crate) catalog: Catalog,
    catalog_read: Instant,
    pub(crate) market: usize,
    pub(crate) filter: Filter,
    /// Index into the filter's matches.
    pub(crate) list: usize,
    pub(crate) list_offset: usize,
    /// The interval picked last.
    pub(crate) interval: Option<Interval>,
    pub(crate) opened: Option<Opened>,
    pub(crate) table: Position,
    /// First value column shown (horizontal scroll).
    pub(crate) column: usize,
    pub(crate) chart: ChartState,
    pub(crate) focus: Focus,
    pub(crate) input: Input,
    pub(crate) help: bool,
    /// A message for the footer: (is it an error, text).
    pub(crate) message: Option<(bool, String)>,
    pub(crate) status: String,
    status_read: Option<Instant>,
    pub(crate) log: LogTail,
    pub(crate) summaries: Summaries,
    pub(crate) theme: Theme,
    pub(crate) areas: Areas,
    pub(crate) label: String,
    quit: bool,
}

/// Value columns after `open_time`, as `atm query --format table` prints
/// them: (header, index into [`atm_store::Kline::fields`]).
pub const VALUE_COLUMNS: [(&str, usize); 9] = [
    ("open", 1),
    ("high", 2),
    ("low", 3),
    ("close", 4),
    ("volume", 5),
    ("quote_volume", 7),
    ("trades", 8),
    ("taker_buy_base", 9),
    ("taker_buy_quote", 10),
];

impl App {
    /// Opens the store in `dir` read-only and selects the first market with data.
    pub fn open(dir: &Path, opts: Options) -> Result<App> {
        // Read-only: not even a crashed writer's journal is replayed from here.
        let store = Store::open(
            dir,
            StoreOptions {
                read_only: true,
                ..StoreOptions::default()
            },
        )?;
        let catalog = Catalog::load(&store)?;
        let market = catalog.first_market_with_data().unwrap_or(0);
        let filter = Filter::new(&catalog.markets[market].symbols);
        let theme = opts
            .color
            .map_or_else(Theme::from_env, |color| Theme { color });
        let label = opts.label.unwrap_or_else(|| dir.display().to_string());
        let mut app = App {
            store,
            catalog,
            catalog_read: Instant::now(),
            market,
            filter,
            list: 0,
            list_offset: 0,
            interval: None,
            opened: None,
            table: Position::default(),
            column: 0,
            chart: ChartState::default(),
            focus: Focus::Symbols,
            input: Input::None,
            help: false,
            message: None,
            status: String::new(),
            status_read: None,
            log: LogTail::default(),
            summaries: Summaries::default(),
            theme,
            areas: Areas::default(),
            label,
            quit: false,
        };
        app.tick();
        if let Some((market, symbol, interval)) = &opts.open {
            app.select(*market, symbol, *interval)?;
        }
        Ok(app)
    }

    /// Puts the list's cursor on `symbol` of `market` and opens it at
    /// `interval` (or its first interval with data). An unknown symbol or
    /// interval is an error naming what the store has.
    pub fn select(
        &mut self,
        market: atm_store::Market,
        symbol: &str,
        interval: Option<Interval>,
    ) -> Result<()> {
        self.market = crate::catalog::market_index(market);
        self.filter = Filter::new(self.symbols());
        let Some(pos) = self.symbols().iter().position(|s| s.name == symbol) else {
            return Err(crate::ViewError::NotInStore(format!(
                "no series of {symbol} on {market} in {}",
                self.store.dir().display()
            )));
        };
        self.list = pos;
        match interval {
            None => self.open_selected(),
            Some(iv) if self.symbols()[pos].intervals.contains(&iv) => self.open_series(symbol, iv),
            Some(iv) => {
                let have: Vec<String> = self.symbols()[pos]
                    .intervals
                    .iter()
                    .map(|i| i.to_string())
                    .collect();
                Err(crate::ViewError::NotInStore(format!(
                    "no {iv} series of {symbol} on {market} (it has {})",
                    have.join(", ")
                )))
            }
        }
    }

    /// The store's directory.
    pub fn store_dir(&self) -> &Path {
        self.store.dir()
    }

    /// Whether `q` (or Ctrl-C) was pressed.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// The pane with focus.
    pub fn focus(&self) -> Focus {
        self.focus
    }

    /// The series shown, if any.
    pub fn opened(&self) -> Option<&Opened> {
        self.opened.as_ref()
    }

    /// The symbols of the current market.
    pub fn symbols(&self) -> &[SymbolEntry] {
        &self.catalog.markets[self.market].symbols
    }

    /// The symbol under the list's cursor.
    pub fn selected_symbol(&self) -> Option<&SymbolEntry> {
        let i = *self.filter.matches().get(self.list)?;
        self.symbols().get(i as usize)
    }

    /// The interval the selection box shows for `sym`: the one picked last if
    /// the symbol has it, else its shortest.
    pub fn interval_for(&self, sym: &SymbolEntry) -> Option<Interval> {
        self.interval
            .filter(|i| sym.intervals.contains(i))
            .or_else(|| sym.intervals.first().copied())
    }

    /// Draws the whole screen.
    pub fn draw(&mut self, f: &mut Frame) {
        crate::ui::draw(self, f);
    }

    /// Polls what changes on its own: the open series (new klines, the live
    /// one), the catalog, `atm status` and the log. Errors go to the footer.
    pub fn tick(&mut self) {
        if let Err(e) = self.refresh() {
            self.message = Some((true, e.to_string()));
        }
    }

    /// Each step on its own: one failing does not freeze the others, and
    /// none is retried sooner than its period.
    fn refresh(&mut self) -> Result<()> {
        let mut first_error = None;
        if self.catalog_read.elapsed() >= CATALOG_EVERY {
            self.catalog_read = Instant::now();
            first_error = self.reload_catalog().err();
        }
        if self.status_read.is_none_or(|t| t.elapsed() >= STATUS_EVERY) {
            self.status_read = Some(Instant::now());
            match crate::feed::status_text(self.store.dir()) {
                Ok(s) => self.status = s,
                Err(e) => self.status = format!("cannot read the status segments: {e}"),
            }
        }
        self.log.poll(&crate::feed::log_path(self.store.dir()));
        if let Some(o) = &self.opened {
            let key = o.key.clone();
            let series = o.view.series.clone();
            // No readable live kline is no live kline.
            let live = crate::feed::live_kline(self.store.dir(), &key).unwrap_or(None);
            match SeriesView::new(series, live) {
                Ok(Some(view)) => self.opened = Some(Opened { key, view }),
                Ok(None) => {
                    // Only a live kline was shown, and its stream stopped.
                    self.opened = None;
                    if !self.focus.in_selection() {
                        self.focus = Focus::Symbols;
                    }
                    self.message =
                        Some((false, format!("{key} holds no kline (its stream stopped)")));
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Lists the store again, keeping the symbol under the cursor.
    fn reload_catalog(&mut self) -> Result<()> {
        let keep = self.selected_symbol().map(|s| s.name.clone());
        self.catalog = Catalog::load(&self.store)?;
        self.filter
            .reapply(&self.catalog.markets[self.market].symbols);
        if let Some(name) = keep {
            let syms = &self.catalog.markets[self.market].symbols;
            if let Some(p) = self
                .filter
                .matches()
                .iter()
                .position(|&i| syms[i as usize].name == name)
            {
                self.list = p;
            }
        }
        self.list = self.list.min(self.filter.matches().len().saturating_sub(1));
        Ok(())
    }

    /// Handles one terminal event; returns whether the screen may have
    /// changed (mouse motion does not redraw).
    pub fn event(&mut self, ev: Event) -> bool {
        match ev {
            Event::Key(k) if k.kind != KeyEventKind::Release => self.key(k),
            Event::Mouse(m)
                if matches!(m.kind, MouseEventKind::Moved | MouseEventKind::Drag(_)) =>
            {
                return false
            }
            // The mouse waits while text is typed or the help is shown.
            Event::Mouse(_) if self.input != Input::None || self.help => return false,
            Event::Mouse(m) => self.mouse(m),
            Event::Key(_) => return false,
            _ => {}
        }
        true
    }

    /// Handles one key.
    pub fn key(&mut self, k: KeyEvent) {
        if k.modifiers.contains(KeyModifiers::CONTROL) && matches!(k.code, KeyCode::Char('c')) {
            self.quit = true;
            return;
        }
        let r = match &self.input {
            Input::Filter => {
                self.filter_key(k);
                Ok(())
            }
            Input::Goto(_) => self.goto_key(k),
            Input::None => self.command_key(k),
        };
        if let Err(e) = r {
            self.message = Some((true, e.to_string()));
        }
    }

    fn filter_key(&mut self, k: KeyEvent) {
        let mut q = self.filter.query().to_string();
        match k.code {
            KeyCode::Enter | KeyCode::Esc => {
                self.input = Input::None;
                return;
            }
            KeyCode::Backspace => {
                q.pop();
            }
            KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => q.clear(),
            KeyCode::Char(c) => q.push(c),
            KeyCode::Up | KeyCode::Down | KeyCode::PageUp | KeyCode::PageDown => {
                self.list_key(k.code);
                return;
            }
            _ => return,
        }
        self.set_filter(&q);
    }

    /// Sets the symbol filter (as typing after `/` does).
    pub fn set_filter(&mut self, q: &str) {
        let syms = &self.catalog.markets[self.market].symbols;
        self.filter.set(syms, q);
        self.list = 0;
        self.list_offset = 0;
    }

    fn goto_key(&mut self, k: KeyEvent) -> Result<()> {
        let Input::Goto(text) = &mut self.input else {
            return Ok(());
        };
        match k.code {
            KeyCode::Esc => self.input = Input::None,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
            KeyCode::Char(c) => text.push(c),
            KeyCode::Enter => {
                let typed = text.clone();
                self.input = Input::None;
                match crate::goto::parse_date(&typed) {
                    Ok(t) => self.jump_to(t)?,
                    Err(e) => self.message = Some((true, e)),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Puts the row holding time `t` at the top of the table.
    pub fn jump_to(&mut self, t: i64) -> Result<()> {
        let h = self.table_height();
        let Some(o) = &self.opened else { return Ok(()) };
        self.table.jump(&o.view, t, h)?;
        self.chart.end = None;
        self.message = Some((
            false,
            format!(
                "went to {}",
                atm_store::format_ms(t)
                    .replace('T', " ")
                    .trim_end_matches(".000Z")
            ),
        ));
        Ok(())
    }

    fn command_key(&mut self, k: KeyEvent) -> Result<()> {
        if self.help {
            match k.code {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Char('?') | KeyCode::Esc => self.help = false,
                _ => {}
            }
            return Ok(());
        }
        self.message = None;
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab => self.cycle_focus(1),
            KeyCode::BackTab => self.cycle_focus(-1),
            KeyCode::Char('/') => {
                self.focus = Focus::Symbols;
                self.input = Input::Filter;
            }
            KeyCode::Char(':') if self.opened.is_some() => self.input = Input::Goto(String::new()),
            KeyCode::Char('m') => self.step_market(1),
            KeyCode::Char('M') => self.step_market(-1),
            KeyCode::Char('i') => self.step_interval(1)?,
            KeyCode::Char('I') => self.step_interval(-1)?,
            code => match self.focus {
                Focus::Markets => match code {
                    KeyCode::Left | KeyCode::Up | KeyCode::Char('h') | KeyCode::Char('k') => {
                        self.step_market(-1)
                    }
                    KeyCode::Right | KeyCode::Down | KeyCode::Char('l') | KeyCode::Char('j') => {
                        self.step_market(1)
                    }
                    KeyCode::Enter => self.focus = Focus::Symbols,
                    _ => {}
                },
                Focus::Symbols => match code {
                    KeyCode::Enter => self.open_selected()?,
                    KeyCode::Left => self.step_market(-1),
                    KeyCode::Right => self.step_market(1),
                    c => self.list_key(c),
                },
                Focus::Intervals => match code {
                    KeyCode::Left | KeyCode::Up | KeyCode::Char('h') | KeyCode::Char('k') => {
                        self.step_interval(-1)?
                    }
                    KeyCode::Right | KeyCode::Down | KeyCode::Char('l') | KeyCode::Char('j') => {
                        self.step_interval(1)?
                    }
                    KeyCode::Enter => {
                        if let Some(sym) = self.selected_symbol() {
                            if let Some(iv) = self.interval_for(sym) {
                                let name = sym.name.clone();
                                self.open_series(&name, iv)?;
                            }
                        }
                    }
                    _ => {}
                },
                Focus::Table => self.table_key(code)?,
                Focus::Chart => self.chart_key(code),
            },
        }
        Ok(())
    }

    fn cycle_focus(&mut self, step: i64) {
        let n = FOCUS_ORDER.len() as i64;
        let mut i = FOCUS_ORDER
            .iter()
            .position(|&f| f == self.focus)
            .unwrap_or(0) as i64;
        loop {
            i = (i + step).rem_euclid(n);
            let f = FOCUS_ORDER[i as usize];
            // The table and chart take focus only with a series open.
            if f.in_selection() || self.opened.is_some() {
                self.focus = f;
                return;
            }
        }
    }

    fn step_market(&mut self, step: i64) {
        let n = self.catalog.markets.len() as i64;
        self.market = (self.market as i64 + step).rem_euclid(n) as usize;
        let q = self.filter.query().to_string();
        self.filter = Filter::new(self.symbols());
        self.set_filter(&q);
    }

    /// Picks the next (or previous) interval of the symbol under the cursor,
    /// and shows it if a series of that symbol is open.
    fn step_interval(&mut self, step: i64) -> Result<()> {
        if let (Some(o), false) = (&self.opened, self.focus.in_selection()) {
            // In the table or chart: the open series' symbol.
            let market = o.key.market;
            let name = o.key.symbol.to_string();
            let ivs = crate::catalog::market_index(market);
            let Some(sym) = self.catalog.markets[ivs]
                .symbols
                .iter()
                .find(|s| s.name == name)
            else {
                return Ok(());
            };
            let list = sym.intervals.clone();
            let cur = list.iter().position(|&x| x == o.key.interval).unwrap_or(0) as i64;
            let Some(&next) = list.get((cur + step).rem_euclid(list.len().max(1) as i64) as usize)
            else {
                return Ok(());
            };
            let focus = self.focus;
            self.open_in(market, &name, next)?;
            self.focus = focus;
            return Ok(());
        }
        let Some(sym) = self.selected_symbol() else {
            return Ok(());
        };
        let ivs = sym.intervals.clone();
        let name = sym.name.clone();
        if ivs.is_empty() {
            return Ok(());
        }
        let cur = self
            .interval_for(sym)
            .and_then(|iv| ivs.iter().position(|&x| x == iv))
            .unwrap_or(0) as i64;
        let next = ivs[(cur + step).rem_euclid(ivs.len() as i64) as usize];
        self.interval = Some(next);
        let market = self.catalog.markets[self.market].market;
        if self
            .opened
            .as_ref()
            .is_some_and(|o| o.key.symbol.as_str() == name && o.key.market == market)
        {
            let focus = self.focus;
            self.open_series(&name, next)?;
            self.focus = focus;
        }
        Ok(())
    }

    fn list_key(&mut self, code: KeyCode) {
        let n = self.filter.matches().len();
        if n == 0 {
            return;
        }
        let page = self.areas.list.height.max(1) as usize;
        self.list = match code {
            KeyCode::Up | KeyCode::Char('k') => self.list.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.list + 1,
            KeyCode::PageUp => self.list.saturating_sub(page),
            KeyCode::PageDown | KeyCode::Char(' ') => self.list + page,
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => n - 1,
            _ => self.list,
        }
        .min(n - 1);
    }

    /// Opens the symbol under the cursor at its first interval with data.
    pub fn open_selected(&mut self) -> Result<()> {
        let Some(sym) = self.selected_symbol().cloned() else {
            return Ok(());
        };
        let market = self.catalog.markets[self.market].market;
        let mut pick = sym.intervals.first().copied();
        for &iv in &sym.intervals {
            let key = SeriesKey::parse(market, &sym.name, iv)?;
            let live = || {
                crate::feed::live_kline(self.store.dir(), &key)
                    .ok()
                    .flatten()
                    .is_some()
            };
            if self.summaries.get(&self.store, &key)?.present > 0 || live() {
                pick = Some(iv);
                break;
            }
        }
        match pick {
            Some(iv) => self.open_series(&sym.name, iv),
            None => Ok(()),
        }
    }

    /// Shows `symbol` at `interval` of the current market in the table and
    /// chart, at its newest klines, and focuses the table.
    pub fn open_series(&mut self, symbol: &str, interval: Interval) -> Result<()> {
        self.open_in(self.catalog.markets[self.market].market, symbol, interval)
    }

    fn open_in(
        &mut self,
        market: atm_store::Market,
        symbol: &str,
        interval: Interval,
    ) -> Result<()> {
        let key = SeriesKey::parse(market, symbol, interval)?;
        let Some(series) = self.store.series(&key)? else {
            self.message = Some((true, format!("{key} is gone from the store")));
            return Ok(());
        };
        let live = crate::feed::live_kline(self.store.dir(), &key).unwrap_or(None);
        match SeriesView::new(series, live)? {
            Some(view) => {
                self.opened = Some(Opened { key, view });
                self.interval = Some(interval);
                self.table = Position {
                    top: None,
                    follow: true,
                };
                self.chart = ChartState::default();
                self.focus = Focus::Table;
            }
            None => self.message = Some((false, format!("{key} holds no kline yet"))),
        }
        Ok(())
    }

    /// Rows of klines the table shows (from the last draw).
    fn table_height(&self) -> usize {
        if self.areas.table_rows > 0 {
            self.areas.table_rows
        } else {
            20
        }
    }

    fn table_key(&mut self, code: KeyCode) -> Result<()> {
        let h = self.table_height();
        let Some(o) = &self.opened else { return Ok(()) };
        let v = &o.view;
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.table.up(v, 1, h)?,
            KeyCode::Down | KeyCode::Char('j') => self.table.down(v, 1, h)?,
            KeyCode::PageUp => self.table.up(v, h.saturating_sub(1).max(1), h)?,
            KeyCode::PageDown | KeyCode::Char(' ') => {
                self.table.down(v, h.saturating_sub(1).max(1), h)?
            }
            KeyCode::Home | KeyCode::Char('g') => self.table.home(v),
            KeyCode::End | KeyCode::Char('G') => self.table.end(),
            KeyCode::Left | KeyCode::Char('h') => self.column = self.column.saturating_sub(1),
            KeyCode::Right | KeyCode::Char('l') => {
                self.column = (self.column + 1).min(VALUE_COLUMNS.len() - 1)
            }
            KeyCode::Esc => self.focus = Focus::Symbols,
            _ => return Ok(()),
        }
        self.chart.end = None;
        Ok(())
    }

    fn chart_key(&mut self, code: KeyCode) {
        let Some(o) = &self.opened else { return };
        let v = &o.view;
        let cols = self.areas.chart_columns.max(4);
        let anchor = self.areas.table_last_slot.unwrap_or(v.end() - 1);
        let step = (cols as i64 / 4).max(1);
        match code {
            KeyCode::Left | KeyCode::Char('h') => self.chart.pan(v, anchor, -step, cols),
            KeyCode::Right | KeyCode::Char('l') => self.chart.pan(v, anchor, step, cols),
            KeyCode::Char('+') | KeyCode::Char('=') => self.chart.zoom_in(),
            KeyCode::Char('-') => {
                self.chart.zoom_out();
                self.chart.fit(v, cols);
            }
            // The first kline in the first column (the window may reach past the last).
            KeyCode::Home | KeyCode::Char('g') => {
                self.chart.end = Some(self.chart.home_end(v, cols))
            }
            KeyCode::End | KeyCode::Char('G') => {
                self.chart.end = None;
                self.table.end();
            }
            KeyCode::Char('0') => self.chart.end = None,
            KeyCode::Esc => self.focus = Focus::Table,
            _ => {}
        }
    }

    fn mouse(&mut self, m: MouseEvent) {
        let at = Point::new(m.column, m.row);
        let a = self.areas;
        let r = match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                let up = m.kind == MouseEventKind::ScrollUp;
                if a.table.contains(at) {
                    self.focus = Focus::Table;
                    self.table_scroll(if up { -3 } else { 3 })
                } else if a.list.contains(at) {
                    self.focus = Focus::Symbols;
                    (0..3)
                        .for_each(|_| self.list_key(if up { KeyCode::Up } else { KeyCode::Down }));
                    Ok(())
                } else if a.chart.contains(at) {
                    self.focus = Focus::Chart;
                    self.chart_key(if up {
                        KeyCode::Char('+')
                    } else {
                        KeyCode::Char('-')
                    });
                    Ok(())
                } else {
                    Ok(())
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if a.list.contains(at) {
                    self.focus = Focus::Symbols;
                    let row = self.list_offset + (m.row - a.list.y) as usize;
                    if row < self.filter.matches().len() {
                        self.list = row;
                    }
                } else if a.markets.contains(at) {
                    self.focus = Focus::Markets;
                } else if a.intervals.contains(at) {
                    self.focus = Focus::Intervals;
                } else if a.table.contains(at) && self.opened.is_some() {
                    self.focus = Focus::Table;
                } else if a.chart.contains(at) && self.opened.is_some() {
                    self.focus = Focus::Chart;
                }
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            self.message = Some((true, e.to_string()));
        }
    }

    fn table_scroll(&mut self, rows: i64) -> Result<()> {
        let h = self.table_height();
        let Some(o) = &self.opened else { return Ok(()) };
        if rows < 0 {
            self.table.up(&o.view, rows.unsigned_abs() as usize, h)?;
        } else {
            self.table.down(&o.view, rows as usize, h)?;
        }
        self.chart.end = None;
        Ok(())
    }
}
