//! `atm view`'s budgets: opening the 3.2M-row series of the peers' workload
//! and jumping to dates (target: each rendered in under 20 ms), the symbol
//! filter over 10,000 symbols (target: under 5 ms per key, list redrawn),
//! and memory bounded by the visible window, not by the series.
//!
//! Frames are drawn at 120x40 into ratatui's `TestBackend` (the same
//! drawing as on a terminal, without the terminal's own output time). The
//! view runs in a child process so its memory is its own.
//!
//! `cargo run --release -p atm-benches --bin view-bench [-- ROWS SYMBOLS]`

#![forbid(unsafe_code)]

use std::time::Instant;

use atm_benches::{anon_mb, cpu_and_peak, peers_walk, rss_mb};
use atm_store::{Columns, FloatColumn, Interval, Kline, Market, SeriesKey, Store, StoreOptions};
use atm_view::app::{App, Options};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

/// 2019-09-09 02:57 UTC, the peers' origin.
const ORIGIN: i64 = 1_567_997_820_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--view") {
        return view(
            std::path::Path::new(&args[2]),
            args[3].parse().unwrap_or(3_200_000),
        );
    }
    let rows: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_200_000);
    let symbols: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let t = Instant::now();
    build(&path, rows, symbols);
    println!("store: spot BTCUSDT 1m with {rows} klines, and {symbols} USD-M symbols (1d) built in {:.1} s", t.elapsed().as_secs_f64());
    let status = std::process::Command::new(&args[0])
        .arg("--view")
        .arg(&path)
        .arg(rows.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn build(path: &std::path::Path, rows: usize, symbols: usize) {
    let store = Store::open(
        path,
        StoreOptions {
            create: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
    let (floats, trades) = peers_walk(rows);
    let mut w = store.writer().unwrap();
    let cols = Columns {
        values: std::array::from_fn(|c| FloatColumn::F32(&floats[c])),
        trades: &trades,
    };
    w.commit_columns(&key, ORIGIN, &cols).unwrap();
    // Symbols named like Binance's: a base of 2 to 8 letters and a quote.
    for n in 0..symbols {
        let quote = ["USDT", "USDC", "BTC", "FDUSD"][n % 4];
        let base: String = (0..2 + n % 7)
            .map(|i| (b'A' + ((n / 4 + i * 7 + n * i) % 26) as u8) as char)
            .collect();
        let k = SeriesKey::parse(Market::UsdM, &format!("{base}{n}{quote}"), Interval::D1).unwrap();
        let t = 1_700_006_400_000; // a day boundary
        w.put(
            &k,
            &Kline {
                open_time: t,
                close_time: t + 86_399_999,
                values: [1.0; 8],
                trades: 1,
            },
        )
        .unwrap();
        if n % 1000 == 999 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
    w.close().unwrap();
}

fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

/// (p50, p99, max) in ms.
fn quantiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    (q(0.5), q(0.99), ms[ms.len() - 1])
}

fn view(path: &std::path::Path, rows: usize) {
    let (rss0, anon0) = (rss_mb(), anon_mb());
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let t = Instant::now();
    let mut app = App::open(
        path,
        Options {
            color: Some(true),
            ..Options::default()
        },
    )
    .unwrap();
    term.draw(|f| app.draw(f)).unwrap();
    println!(
        "open the store and draw the first frame: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // Open the 3.2M-row series: Enter on BTCUSDT, then the frame.
    let t = Instant::now();
    key(&mut app, KeyCode::Enter);
    term.draw(|f| app.draw(f)).unwrap();
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(app.opened().map(|o| o.key.symbol.as_str()), Some("BTCUSDT"));
    println!("open spot BTCUSDT 1m ({rows} klines) at its end and draw: {open_ms:.2} ms (target < 20 ms)");

    // Jump to dates spread over the series, each followed by a frame.
    let mut state = 7u64;
    let mut jumps = Vec::new();
    for _ in 0..300 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let t0 = ORIGIN + ((state >> 33) % rows as u64) as i64 * 60_000;
        let t = Instant::now();
        app.jump_to(t0).unwrap();
        term.draw(|f| app.draw(f)).unwrap();
        jumps.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p99, max) = quantiles(jumps);
    println!("jump to a date and draw (300 dates): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (target < 20 ms)");

    // Page through: PgDn and draw.
    key(&mut app, KeyCode::Char('g'));
    let mut pages = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        key(&mut app, KeyCode::PageDown);
        term.draw(|f| app.draw(f)).unwrap();
        pages.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p99, max) = quantiles(pages);
    println!("page down and draw: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms");

    // Zoomed-out chart: 16,384 klines per column, ending at the last kline.
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Tab);
    for _ in 0..14 {
        key(&mut app, KeyCode::Char('-'));
    }
    let t = Instant::now();
    term.draw(|f| app.draw(f)).unwrap();
    println!(
        "chart zoomed out to 16,384 klines per column (about 1.4M klines read): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    for _ in 0..14 {
        key(&mut app, KeyCode::Char('+'));
    }

    // The filter over the USD-M list, typed and erased key by key.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('m'));
    let n = app.symbols().len();
    let mut per_key = Vec::new();
    key(&mut app, KeyCode::Char('/'));
    for word in ["usdt", "ab1", "fdusd", "q9", "zzzz", "c"] {
        for c in word
            .chars()
            .map(KeyCode::Char)
            .chain(std::iter::repeat_n(KeyCode::Backspace, word.len()))
        {
            let t = Instant::now();
            key(&mut app, c);
            term.draw(|f| app.draw(f)).unwrap();
            per_key.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (p50, p99, max) = quantiles(per_key);
    println!("filter over {n} symbols, per key with the list redrawn: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (target < 5 ms)");

    let (cpu, peak) = cpu_and_peak();
    let series_mb = rows as f64 * 36.0 / 1e6;
    println!(
        "memory: heap (RssAnon) {anon0:.1} MB at start, {:.1} MB now; resident in all {rss0:.1} MB at start, {:.1} MB now (peak {peak:.1} MB), \
         the rest being the store's file pages the kernel maps around each read (shared page cache, dropped under pressure); \
         the series holds {series_mb:.0} MB of columns ({cpu:.1} s CPU in all)",
        anon_mb(),
        rss_mb()
    );
}
