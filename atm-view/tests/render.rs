//! Rendering tests: the view drawn into ratatui's `TestBackend` over real
//! stores, compared with reviewed snapshots in `tests/snapshots/`.
//!
//! After a deliberate change of the screen, review the differences and
//! accept them with `INSTA_UPDATE=always cargo test -p atm-view --test render`.

use atm_store::{Interval, Kline, Market, SeriesKey, Store, StoreOptions};
use atm_view::app::{App, Focus, Options};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

const T0: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC

fn kline(t: i64, step: i64, i: i64) -> Kline {
    let base = 100.0 + (i as f64 / 7.0).sin() * 10.0 + i as f64 * 0.05;
    let (o, c) = (base, base + ((i * 37) % 11 - 5) as f64 * 0.3);
    Kline {
        open_time: t,
        close_time: t + step - 1,
        values: [
            o,
            o.max(c) + 0.5,
            o.min(c) - 0.5,
            c,
            10.0 + (i % 13) as f64,
            1000.0 + i as f64,
            5.0,
            500.0,
        ],
        trades: 7 + (i % 5) as u32,
    }
}

/// A store: spot BTCUSDT 1m with a known-missing run and an unknown gap,
/// spot BTCUSDT 1h, um ETHUSDT 1h, and `extra` um symbols with one kline.
fn store(extra: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut w = store.writer().unwrap();
    let m1 = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
    for i in (0..30).chain(1040..1100) {
        w.put(&m1, &kline(T0 + i * 60_000, 60_000, i)).unwrap();
    }
    w.mark_missing(&m1, T0 + 30 * 60_000, T0 + 1029 * 60_000)
        .unwrap();
    let h1 = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::H1).unwrap();
    let eth = SeriesKey::parse(Market::UsdM, "ETHUSDT", Interval::H1).unwrap();
    for i in 0..200 {
        w.put(&h1, &kline(T0 + i * 3_600_000, 3_600_000, i))
            .unwrap();
        w.put(&eth, &kline(T0 + i * 3_600_000, 3_600_000, i + 50))
            .unwrap();
    }
    for n in 0..extra {
        let k = SeriesKey::parse(Market::UsdM, &format!("S{n:05}USDT"), Interval::D1).unwrap();
        w.put(&k, &kline(T0, 86_400_000, n as i64)).unwrap();
    }
    w.commit().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::write(
        log.join("atm.log"),
        "[2024-01-01T00:00:00.000Z INFO  atm_ingest::sync] sync started\n[2024-01-01T00:00:05.000Z WARN  atm_ingest::sync] spot BTCUSDT 1m: 1000 klines known-missing\n",
    )
    .unwrap();
    dir
}

fn app(dir: &std::path::Path) -> App {
    App::open(
        dir,
        Options {
            color: Some(false),
            label: Some("test-store".into()),
            open: None,
        },
    )
    .unwrap()
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| app.draw(f)).unwrap();
    atm_view::ui::buffer_text(term.backend().buffer())
}

fn press(app: &mut App, keys: &[KeyCode]) {
    for &k in keys {
        app.key(KeyEvent::new(k, KeyModifiers::NONE));
    }
}

fn type_text(app: &mut App, s: &str) {
    press(app, &s.chars().map(KeyCode::Char).collect::<Vec<_>>());
}

#[test]
fn empty_store() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut a = app(dir.path());
    assert_eq!(a.focus(), Focus::Symbols);
    insta::assert_snapshot!("empty_store_120x40", screen(&mut a, 120, 40));
    insta::assert_snapshot!("empty_store_80x24", screen(&mut a, 80, 24));
    press(
        &mut a,
        &[
            KeyCode::Enter,
            KeyCode::Down,
            KeyCode::Char('/'),
            KeyCode::Char('x'),
            KeyCode::Enter,
            KeyCode::Tab,
        ],
    );
    assert!(
        screen(&mut a, 80, 24).contains("no series"),
        "keys on an empty store change nothing"
    );
}

#[test]
fn selection_box_with_thousands_of_symbols() {
    let dir = store(3000);
    let mut a = app(dir.path());
    // Spot has data first: its list has focus.
    insta::assert_snapshot!("selection_spot_120x40", screen(&mut a, 120, 40));
    press(&mut a, &[KeyCode::Char('m')]);
    let s = screen(&mut a, 120, 40);
    assert!(s.contains("/ filters") && s.contains("3001/3001"), "{s}");
    press(&mut a, &[KeyCode::Char('/')]);
    type_text(&mut a, "s0299");
    insta::assert_snapshot!("selection_filtered_120x40", screen(&mut a, 120, 40));
    press(
        &mut a,
        &[KeyCode::Backspace, KeyCode::Backspace, KeyCode::Enter],
    );
    let s = screen(&mut a, 120, 40);
    assert!(s.contains("1000/3001"), "widening the filter again: {s}");
    press(&mut a, &[KeyCode::End]);
    let s = screen(&mut a, 120, 40);
    assert!(
        s.contains("S02999USDT"),
        "G/End goes to the last match: {s}"
    );
}

#[test]
fn table_shows_missing_and_unknown_runs_as_one_row_each() {
    let dir = store(0);
    let mut a = app(dir.path());
    press(&mut a, &[KeyCode::Enter]);
    assert_eq!(a.focus(), Focus::Table);
    assert_eq!(
        a.opened().unwrap().key.interval,
        Interval::M1,
        "the first interval with data"
    );
    insta::assert_snapshot!("table_end_120x40", screen(&mut a, 120, 40));
    press(&mut a, &[KeyCode::Char('g')]);
    let s = screen(&mut a, 120, 40);
    assert!(s.contains("2024-01-01 00:00"), "{s}");
    press(
        &mut a,
        &[
            KeyCode::PageDown,
            KeyCode::Down,
            KeyCode::Down,
            KeyCode::Down,
        ],
    );
    let s = screen(&mut a, 120, 40);
    assert!(
        s.lines().nth(3).unwrap().contains("2024-01-01 00:16"),
        "a page of 14 rows and 3 lines down: {s}"
    );
    press(&mut a, &[KeyCode::Up, KeyCode::Char(':')]);
    type_text(&mut a, "2024-01-01 00:25");
    press(&mut a, &[KeyCode::Enter]);
    insta::assert_snapshot!("table_runs_120x40", screen(&mut a, 120, 40));
    // Jump into the missing run: its row is at the top.
    press(&mut a, &[KeyCode::Char(':')]);
    type_text(&mut a, "2024-01-01 05:00");
    press(&mut a, &[KeyCode::Enter]);
    let s = screen(&mut a, 120, 40);
    let first_row = s.lines().nth(3).unwrap();
    assert!(
        first_row.contains("2024-01-01 00:30") && first_row.contains("known-missing: 1,000 klines"),
        "{s}"
    );
    // A bad date is an error in the footer, and the table stays.
    press(&mut a, &[KeyCode::Char(':')]);
    type_text(&mut a, "yesterday");
    press(&mut a, &[KeyCode::Enter]);
    let s = screen(&mut a, 120, 40);
    assert!(s.contains("cannot read the date \"yesterday\""), "{s}");
    assert!(s.lines().nth(3).unwrap().contains("2024-01-01 00:30"));
    // Columns scroll sideways.
    press(
        &mut a,
        &[
            KeyCode::Right,
            KeyCode::Right,
            KeyCode::Right,
            KeyCode::Right,
        ],
    );
    let s = screen(&mut a, 120, 40);
    assert!(
        s.contains("taker_buy_quote") && !s.contains(" open "),
        "{s}"
    );
}

#[test]
fn chart_and_narrow_terminals() {
    let dir = store(0);
    let mut a = app(dir.path());
    press(&mut a, &[KeyCode::Char('i'), KeyCode::Enter]);
    assert_eq!(a.opened().unwrap().key.interval, Interval::M1);
    press(&mut a, &[KeyCode::Esc, KeyCode::Char('i')]);
    assert_eq!(
        a.opened().unwrap().key.interval,
        Interval::H1,
        "i switches the open series' interval"
    );
    assert_eq!(
        a.focus(),
        Focus::Symbols,
        "switching the interval keeps the focus"
    );
    press(&mut a, &[KeyCode::Tab, KeyCode::Tab]);
    assert_eq!(a.focus(), Focus::Table);
    press(&mut a, &[KeyCode::Tab]);
    assert_eq!(a.focus(), Focus::Chart);
    insta::assert_snapshot!("chart_80x24", screen(&mut a, 80, 24));
    press(&mut a, &[KeyCode::Char('-'), KeyCode::Char('-')]);
    let s = screen(&mut a, 80, 24);
    assert!(s.contains("4 1h klines per column"), "{s}");
    press(&mut a, &[KeyCode::Char('g')]);
    let s = screen(&mut a, 80, 24);
    assert!(
        s.contains("2024-01-01 00:00") && s.contains("panned"),
        "{s}"
    );
    insta::assert_snapshot!("table_80x24", {
        press(&mut a, &[KeyCode::BackTab]);
        screen(&mut a, 80, 24)
    });
    insta::assert_snapshot!("tiny_30x8", screen(&mut a, 30, 8));
}

#[test]
fn help_lists_every_key_and_q_quits() {
    let dir = store(0);
    let mut a = app(dir.path());
    press(&mut a, &[KeyCode::Char('?')]);
    insta::assert_snapshot!("help_120x40", screen(&mut a, 120, 40));
    press(&mut a, &[KeyCode::Esc]);
    assert!(
        !screen(&mut a, 120, 40).contains("keys · ? or Esc closes"),
        "Esc closes the help"
    );
    press(&mut a, &[KeyCode::Char('?')]);
    let small = screen(&mut a, 80, 16);
    assert!(
        small.contains("mouse") && small.contains("Backspace, Ctrl-U"),
        "every key, in two columns when short:\n{small}"
    );
    press(&mut a, &[KeyCode::Char('q')]);
    assert!(a.should_quit(), "q quits even with the help open");
    let mut a = app(dir.path());
    press(&mut a, &[KeyCode::Char('/'), KeyCode::Char('q')]);
    assert!(!a.should_quit(), "q is text inside the filter");
    press(&mut a, &[KeyCode::Esc, KeyCode::Char('q')]);
    assert!(a.should_quit());
}

#[test]
fn no_color_leaves_only_modifiers() {
    use ratatui::style::Color;
    let dir = store(0);
    let colors = |color: bool| {
        let mut a = App::open(
            dir.path(),
            Options {
                color: Some(color),
                ..Options::default()
            },
        )
        .unwrap();
        press(&mut a, &[KeyCode::Enter]);
        let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
        term.draw(|f| a.draw(f)).unwrap();
        let buf = term.backend().buffer().clone();
        buf.content()
            .iter()
            .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
            .count()
    };
    assert!(
        colors(true) > 100,
        "candles, borders and states are colored"
    );
    assert_eq!(colors(false), 0, "NO_COLOR: no cell has a color");
}

#[test]
fn a_series_named_at_start_is_open() {
    let dir = store(0);
    let open = |m: Market, s: &str, iv: Option<Interval>| {
        App::open(
            dir.path(),
            Options {
                color: Some(false),
                label: None,
                open: Some((m, s.to_string(), iv)),
            },
        )
    };
    let a = open(Market::UsdM, "ETHUSDT", None).unwrap();
    assert_eq!(
        a.opened().unwrap().key,
        SeriesKey::parse(Market::UsdM, "ETHUSDT", Interval::H1).unwrap()
    );
    assert_eq!(a.focus(), Focus::Table);
    let a = open(Market::Spot, "BTCUSDT", Some(Interval::H1)).unwrap();
    assert_eq!(a.opened().unwrap().key.interval, Interval::H1);
    let e = open(Market::Spot, "BTCUSDT", Some(Interval::D1))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no 1d series of BTCUSDT on spot (it has 1m, 1h)"),
        "{e}"
    );
    let e = open(Market::CoinM, "BTCUSDT", None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no series of BTCUSDT on cm"), "{e}");
}
