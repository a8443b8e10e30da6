//! Both ways of finding a symbol's first kline, direct (`startTime=0`) and
//! coarse-to-fine bisection, agree with the simulator's ground truth on
//! every symbol of its real universe (about 3,000 over three markets),
//! including symbols whose listing fell in an outage and delisted ones.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use atm_ingest::{first_kline, Client, Endpoints};
use atm_sim::{SimConfig, UniverseSpec};
use atm_store::Market;
use serde_json::Value;

#[test]
fn direct_and_bisection_agree_with_the_truth_on_the_real_universe() {
    // A fast clock: the client keeps to the real weight limits, in 100 ms minutes.
    let config = SimConfig {
        universe: UniverseSpec::Real,
        time_scale: 600.0,
        ..SimConfig::default()
    };
    let endpoints = sim_endpoints(config);
    let base = endpoints.sim_base.clone().unwrap();
    let client = Client::connect(endpoints).unwrap();
    let truth: Value = reqwest::blocking::get(format!("{base}/sim/v1/symbols"))
        .unwrap()
        .json()
        .unwrap();
    let symbols: Vec<(Market, String, Option<i64>, bool, bool)> = truth
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let first = s["first_kline"].as_i64();
            let late_start = first.is_some() && first != s["listed"].as_i64();
            (
                s["market"].as_str().unwrap().parse().unwrap(),
                s["symbol"].as_str().unwrap().to_string(),
                first,
                s["delisted"].is_i64(),
                late_start,
            )
        })
        .collect();
    assert!(symbols.len() > 2500, "the real universe: {}", symbols.len());
    let delisted = symbols.iter().filter(|s| s.3 && s.2.is_some()).count();
    let late_start = symbols.iter().filter(|s| s.4).count();
    assert!(
        delisted > 50 && late_start > 0,
        "{delisted} delisted, {late_start} listed into an outage"
    );

    let next = AtomicUsize::new(0);
    let wrong = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Relaxed);
                let Some((market, symbol, want, _, _)) = symbols.get(i) else {
                    break;
                };
                let bisected = first_kline::bisect(&client, *market, symbol).unwrap();
                if bisected != *want {
                    wrong.lock().unwrap().push(format!(
                        "{market} {symbol}: bisection {bisected:?}, truth {want:?}"
                    ));
                }
                if *market != Market::CoinM {
                    let direct = first_kline::direct(&client, *market, symbol).unwrap();
                    if direct != *want {
                        wrong.lock().unwrap().push(format!(
                            "{market} {symbol}: direct {direct:?}, truth {want:?}"
                        ));
                    }
                }
            });
        }
    });
    let wrong = wrong.into_inner().unwrap();
    assert!(
        wrong.is_empty(),
        "{} disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Endpoints of a simulator started for this test (stopped when they drop).
fn sim_endpoints(config: atm_sim::SimConfig) -> Endpoints {
    let server = atm_sim::SimServer::start(config).unwrap();
    let base = server.base_url().to_string();
    Endpoints::served_by(&base, server)
}
