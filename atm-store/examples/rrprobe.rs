use atm_store::*;
use std::time::Instant;
fn main() {
    let t = Instant::now();
    let store = Store::open("/tmp/ps3", StoreOptions::default()).unwrap();
    let a = t.elapsed();
    let key = SeriesKey::parse(Market::Spot, "BTCUSDT", Interval::M1).unwrap();
    let s = store.series(&key).unwrap().unwrap();
    let b = t.elapsed();
    let st = s.stats().unwrap();
    let c = t.elapsed();
    let v = s.view(1640000040000, 1642592040000 - 1, &[Column::Close], |v| v.f32s(3).unwrap().to_vec()).unwrap().unwrap();
    let d = t.elapsed();
    let v2 = s.view(1640000040000, 1642592040000 - 1, &[Column::Close], |v| v.f32s(3).unwrap().len()).unwrap().unwrap();
    let e = t.elapsed();
    let mut buf = vec![0f32; 43200];
    let e2 = t.elapsed();
    s.view(1640000040000, 1642592040000 - 1, &[Column::Close], |v| buf.copy_from_slice(v.f32s(3).unwrap())).unwrap().unwrap();
    let e3 = t.elapsed();
    println!("alloc {:?} copy {:?}", e2 - e, e3 - e2);
    println!("open {a:?} series {b:?} stats {c:?} view {d:?} again {e:?} {} {} {}", v.len(), v2, st.present);
}
