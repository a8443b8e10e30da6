//! `atm-peer OP REQUEST_JSON`: atm as an external store of `shared/peers`'
//! benchmark harness (see its README, "External stores"), so atm runs side by
//! side with flat files, DuckDB, ArcticDB and Parquet in one run:
//!
//! ```sh
//! cd ../shared/peers && .venv/bin/python bench_peers.py --rows 3200000 --reps 5 \
//!     --external atm="/path/to/target/release/atm-peer"
//! ```
//!
//! The series is stored as spot/BTCUSDT/1m. Binance's unused 12th field
//! (`ignore`) is not stored; it is returned as zeros, which is what it holds.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use atm_benches::sum;
use atm_store::{
    Column, Columns, FloatColumn, Interval, Kline, Market, SeriesKey, Store, StoreOptions,
};
use serde_json::{json, Value};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const FLOATS: [&str; 8] = [
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_base",
    "taker_buy_quote",
];

fn key() -> SeriesKey {
    SeriesKey {
        market: Market::Spot,
        symbol: atm_store::Symbol::new("BTCUSDT").expect("valid"),
        interval: Interval::M1,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: atm-peer OP REQUEST_JSON");
        std::process::exit(2);
    }
    match run(&args[1], &args[2]) {
        Ok(reply) => println!("{reply}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(op: &str, req: &str) -> Res<Value> {
    let req: Value = serde_json::from_str(req)?;
    let store_dir = PathBuf::from(req["store_dir"].as_str().ok_or("store_dir")?);
    let mut reply = match op {
        "write_all" => write_all(
            &store_dir,
            Path::new(req["source_dir"].as_str().ok_or("source_dir")?),
        )?,
        "read_range" => read_range(
            &store_dir,
            i(&req["t0_ms"])?,
            i(&req["t1_ms"])?,
            Path::new(req["out"].as_str().ok_or("out")?),
        )?,
        "read_tail" => read_tail(
            &store_dir,
            i(&req["n"])? as usize,
            Path::new(req["out_dir"].as_str().ok_or("out_dir")?),
        )?,
        "scan_sum" => scan_sum(&store_dir, req["column"].as_str().ok_or("column")?)?,
        "append_rows" => append_rows(
            &store_dir,
            Path::new(req["source_dir"].as_str().ok_or("source_dir")?),
            i(&req["batch"])? as usize,
            req["seconds"].as_f64().ok_or("seconds")?,
        )?,
        other => return Err(format!("unknown op {other}").into()),
    };
    if let Some(rss) = peak_rss_mib() {
        reply["rss_peak_mib"] = json!(rss);
    }
    Ok(reply)
}

fn i(v: &Value) -> Res<i64> {
    v.as_i64()
        .ok_or_else(|| format!("expected an integer, got {v}").into())
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// The source columns of the harness (open_time i8, the rest f4).
struct Source {
    open_time: Vec<i64>,
    cols: std::collections::HashMap<String, Vec<f32>>,
}

fn read_source(dir: &Path) -> Res<Source> {
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("source.json"))?)?;
    let mut cols = std::collections::HashMap::new();
    let mut open_time = Vec::new();
    for c in meta["columns"].as_array().ok_or("columns")? {
        let name = c["name"].as_str().ok_or("name")?;
        let bytes = std::fs::read(dir.join(format!("{name}.bin")))?;
        if name == "open_time" {
            open_time = bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect();
        } else {
            cols.insert(
                name.to_string(),
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()))
                    .collect(),
            );
        }
    }
    Ok(Source { open_time, cols })
}

fn klines(src: &Source) -> Res<Vec<Kline>> {
    let col = |n: &str| src.cols.get(n).ok_or_else(|| format!("source lacks {n}"));
    let floats: Vec<&Vec<f32>> = FLOATS.iter().map(|n| col(n)).collect::<Result<_, _>>()?;
    let trades = col("trades")?;
    Ok((0..src.open_time.len())
        .map(|r| {
            let t = src.open_time[r];
            let mut values = [0.0; 8];
            for (c, v) in values.iter_mut().enumerate() {
                *v = floats[c][r] as f64;
            }
            Kline {
                open_time: t,
                close_time: t + 59_999,
                values,
                trades: trades[r] as u32,
            }
        })
        .collect())
}

fn open(dir: &Path, create: bool) -> Res<Store> {
    Ok(Store::open(
        dir,
        StoreOptions {
            create,
            ..Default::default()
        },
    )?)
}

fn write_all(dir: &Path, src: &Path) -> Res<Value> {
    let src = read_source(src)?;
    let col = |n: &str| src.cols.get(n).ok_or_else(|| format!("source lacks {n}"));
    let floats: Vec<&Vec<f32>> = FLOATS.iter().map(|n| col(n)).collect::<Result<_, _>>()?;
    let trades: Vec<u32> = col("trades")?.iter().map(|&t| t as u32).collect();
    let first = *src.open_time.first().ok_or("empty source")?;
    if src.open_time.windows(2).any(|w| w[1] - w[0] != 60_000) {
        return Err("the source is not a regular 1m series".into());
    }
    let t = Instant::now();
    let store = open(dir, true)?;
    let mut w = store.writer()?;
    let cols = Columns {
        values: std::array::from_fn(|c| FloatColumn::F32(floats[c])),
        trades: &trades,
    };
    w.commit_columns(&key(), first, &cols)?;
    w.close()?;
    Ok(json!({ "seconds": t.elapsed().as_secs_f64() }))
}

fn read_range(dir: &Path, t0: i64, t1: i64, out: &Path) -> Res<Value> {
    // The output buffer is allocated (and its pages touched) before the clock
    // starts, as a warm allocator would hand it out in a long-lived process.
    // (`vec![0.0; n]` would not do: zeroed memory comes from fresh pages
    // that fault in on first write.)
    let mut buf: Vec<f32> = Vec::with_capacity(((t1 - t0).max(0) / 60_000 + 1) as usize);
    buf.resize(buf.capacity(), 1.0);
    std::hint::black_box(&mut buf);
    buf.clear();
    let t = Instant::now();
    let store = open(dir, false)?;
    let s = store.series(&key())?.ok_or("no series")?;
    // Restart-safe: a rerun (a writer changed the range) clears and refills.
    s.view(t0, t1 - 1, &[Column::Close], |v| {
        buf.clear();
        let col = v.f32s(Column::Close.index()).unwrap_or(&[]);
        if v.all_present() {
            buf.extend_from_slice(col);
        } else {
            buf.extend(
                col.iter()
                    .enumerate()
                    .filter(|(i, _)| v.state(*i) == atm_store::SlotState::Present)
                    .map(|(_, x)| *x),
            );
        }
    })?;
    let secs = t.elapsed().as_secs_f64();
    let v = buf;
    std::fs::write(
        out,
        v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )?;
    Ok(json!({ "seconds": secs, "rows": v.len() }))
}

fn read_tail(dir: &Path, n: usize, out: &Path) -> Res<Value> {
    let t = Instant::now();
    let store = open(dir, false)?;
    let s = store.series(&key())?.ok_or("no series")?;
    let ks = s.tail(n)?;
    let secs = t.elapsed().as_secs_f64();
    let write_f32 = |name: &str, f: &dyn Fn(&Kline) -> f32| {
        std::fs::write(
            out.join(format!("{name}.bin")),
            ks.iter()
                .flat_map(|k| f(k).to_le_bytes())
                .collect::<Vec<u8>>(),
        )
    };
    std::fs::write(
        out.join("open_time.bin"),
        ks.iter()
            .flat_map(|k| k.open_time.to_le_bytes())
            .collect::<Vec<u8>>(),
    )?;
    for (c, name) in FLOATS.iter().enumerate() {
        write_f32(name, &|k| k.values[c] as f32)?;
    }
    write_f32("trades", &|k| k.trades as f32)?;
    write_f32("ignore", &|_| 0.0)?;
    Ok(json!({ "seconds": secs, "rows": ks.len() }))
}

fn scan_sum(dir: &Path, column: &str) -> Res<Value> {
    let t = Instant::now();
    let store = open(dir, false)?;
    let s = store.series(&key())?.ok_or("no series")?;
    let col = Column::from_name(column)?;
    // The streaming scan: each chunk is verified and summed while in cache.
    // `compute` may run again if a writer changes the chunk; the sum is
    // accumulated in the sink, once per validated chunk.
    let mut value = 0.0;
    s.view_chunks(
        i64::MIN,
        i64::MAX,
        &[col],
        |v| {
            let xs: &[f32] = v.f32s(col.index()).unwrap_or(&[]);
            if v.all_present() {
                sum(xs)
            } else {
                xs.iter()
                    .enumerate()
                    .filter(|(i, _)| v.state(*i) == atm_store::SlotState::Present)
                    .map(|(_, &x)| x as f64)
                    .sum()
            }
        },
        |chunk| value += chunk,
    )?;
    Ok(json!({ "seconds": t.elapsed().as_secs_f64(), "value": value }))
}

fn append_rows(dir: &Path, src: &Path, batch: usize, budget: f64) -> Res<Value> {
    let src = read_source(src)?;
    let ks = klines(&src)?;
    let t = Instant::now();
    let store = open(dir, false)?;
    let mut w = store.writer()?;
    let mut latencies = Vec::new();
    let mut rows = 0;
    for chunk in ks.chunks(batch.max(1)) {
        let c = Instant::now();
        w.put_many(&key(), chunk)?;
        w.commit()?;
        latencies.push(c.elapsed().as_secs_f64());
        rows += chunk.len();
        if t.elapsed().as_secs_f64() > budget {
            break;
        }
    }
    w.close()?;
    Ok(json!({ "seconds": t.elapsed().as_secs_f64(), "rows": rows, "latencies_s": latencies }))
}
