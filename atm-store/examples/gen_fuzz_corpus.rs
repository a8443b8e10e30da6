//! Writes seed inputs for the fuzz targets into `fuzz/corpus/`.
//!
//! `cargo run -p atm-store --example gen_fuzz_corpus`

use std::path::Path;

use atm_store::{Interval, Kline, Market, SeriesKey, Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let d = root.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(name), bytes)
    };
    // CSV: real rows of every shape in shared/data, plus broken ones.
    let spot =
        "1637971200000,0.00002253,0.00002254,0.00002251,0.00002253,5305.00000000,1637971259999,0.11951953,14,3051.00000000,0.06874034,0\n";
    let um = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n1706745600000,0.5000,0.5010,0.4990,0.5005,283971.0,1706745659999,142000.5,120,1000.0,500.25,0\n";
    let us =
        "1735689600000000,0.31600000,0.31600000,0.31600000,0.31600000,27.00000000,1735689600999999,8.53200000,1,0.00000000,0.00000000,0\n";
    put("csv", "spot_row", spot.as_bytes())?;
    put("csv", "um_header", um.as_bytes())?;
    put("csv", "spot_micros", us.as_bytes())?;
    put("csv", "bad_columns", b"1,2,3\n")?;
    put(
        "csv",
        "quoted",
        b"\"1637971200000\",\"1\",1,1,1,1,1637971259999,1,1,1,1,0\r\n",
    )?;
    put("csv", "file_name", "BTCUSDT-1mo-2024-01.zip".as_bytes())?;
    // Journal and series files from a real store.
    let dir = tempfile::tempdir()?;
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..Default::default()
        },
    )?;
    let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1)?;
    let mut w = store.writer()?;
    let t = Interval::M1.open_time(3_000_000);
    let mut odd = Kline {
        open_time: t + 600_000 + 123,
        close_time: t + 659_999,
        values: [2.5; 8],
        trades: 3,
    };
    w.put_many(
        &key,
        &(0..5)
            .map(|i| Kline {
                open_time: t + i * 60_000,
                close_time: t + i * 60_000 + 59_999,
                values: [1.25; 8],
                trades: 7,
            })
            .collect::<Vec<_>>(),
    )?;
    w.commit()?;
    w.put(&key, &odd)?;
    w.mark_missing(&key, t + 5 * 60_000, t + 9 * 60_000)?;
    odd.trades = 4;
    w.put(
        &SeriesKey::parse(Market::CoinM, "BTCUSD_PERP", Interval::Mo1)?,
        &Kline {
            open_time: Interval::Mo1.open_time(90),
            close_time: Interval::Mo1.close_time(90),
            ..odd
        },
    )?;
    w.commit()?;
    let journal = std::fs::read_dir(dir.path().join("journal"))?
        .next()
        .ok_or("no journal")??
        .path();
    let bytes = std::fs::read(&journal)?;
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map(|i| (i + 8) / 8 * 8)
        .unwrap_or(bytes.len());
    put("journal", "two_commits", &bytes[..end])?;
    put("journal", "torn_tail", &bytes[..end - 30])?;
    std::mem::forget(w); // keep the journal as a crash would
    store.update_registry(Market::UsdM, |r| {
        r.observe("BTCUSDT", "TRADING", 1)?;
        r.observe("币安人生USDT", "PENDING_TRADING", 2)?;
        Ok(())
    })?;
    put(
        "registry",
        "usdm",
        &std::fs::read(dir.path().join("um/registry"))?,
    )?;
    let kl = std::fs::read(dir.path().join("spot/1m/BTCUSDT.kl"))?;
    put("registry", "series_header", &kl[..8192])?;
    // series_file: poke triples (offset hi, offset lo, xor); empty = undamaged.
    put("series_file", "undamaged", b"")?;
    put("series_file", "header_byte", &[0, 6, 0x40])?;
    put("series_file", "live_copy", &[2, 0, 0x01])?;
    put("series_file", "table_entry", &[6, 0, 0x80])?;
    put("series_file", "data_page", &[0x20, 0x10, 0xff])?;
    put("series_file", "truncated", &[0, 1, 1, 7])?;
    println!("wrote seeds under {}", root.display());
    Ok(())
}
