use atm_store::*;
use std::time::Instant;
fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let n: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let store = Store::open(&dir, StoreOptions { create: true, ..Default::default() }).unwrap();
    let t = Instant::now();
    let mut w = store.writer().unwrap();
    for i in 0..n {
        let k = SeriesKey::parse(Market::Spot, &format!("S{i}"), Interval::M1).unwrap();
        let t0 = 1_700_000_040_000;
        w.put(&k, &Kline { open_time: t0, close_time: t0 + 59_999, values: [1.0; 8], trades: 1 }).unwrap();
        if i % 100 == 99 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
    drop(w);
    eprintln!("write {:?}", t.elapsed());
    let t = Instant::now();
    for i in 0..n {
        let k = SeriesKey::parse(Market::Spot, &format!("S{i}"), Interval::M1).unwrap();
        let s = store.series(&k).unwrap().unwrap();
        let t1 = Instant::now();
        s.latest().unwrap();
        if i < 3 {
            eprintln!("latest {:?}", t1.elapsed());
        }
    }
    eprintln!("read {:?}", t.elapsed());
}
