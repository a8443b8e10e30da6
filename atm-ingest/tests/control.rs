//! FAR requests to a running sync, in-process against the simulator:
//! pause and resume a market, flush, stop; and an owner that has exited.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use atm_ingest::ipc::{self, CallError};
use atm_ingest::pipeline::{Control, ControlReply};
use atm_ingest::{Client, Endpoints, Progress, Selection, SymbolFilter, SyncOptions};
use atm_sim::SimConfig;
use atm_store::{Interval, Market, Store, StoreOptions};

const NOW: i64 = 1_764_000_000_000;

fn pages(p: &Mutex<Progress>, m: Market) -> u64 {
    p.lock()
        .unwrap()
        .markets
        .iter()
        .find(|x| x.market == m)
        .map(|x| x.pages_done)
        .unwrap_or(0)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pause_resume_flush_and_stop_a_running_sync() {
    // Limits off, and slow responses so the run lasts while it is steered.
    let faults = "slow=1:15ms".parse().unwrap();
    let config = SimConfig {
        universe: atm_sim::universe::UniverseSpec::Generated(6),
        now: Some(NOW),
        rate_limits: false,
        faults,
        ..SimConfig::default()
    };
    let mut client = Client::connect(sim_endpoints(config)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let (far, requests) = ipc::channel::<Control, ControlReply>(4);
    let opts = SyncOptions {
        selection: Selection {
            markets: vec![Market::Spot, Market::UsdM],
            symbols: SymbolFilter::List(vec!["BTCUSDT".into(), "SOLUSDT".into()]),
            intervals: vec![Interval::M1],
        },
        since: Some(NOW - 400 * 86_400_000),
        workers: 2,
        control: Some(requests),
        publish_status: false,
        // Pages are what is paused, flushed and stopped here: REST only.
        source: atm_ingest::archive::Source::Rest,
        ..SyncOptions::default()
    };
    let latest = Mutex::new(Progress::default());
    let call = |c: Control| far.call(c, Duration::from_secs(10));
    let summary = std::thread::scope(|s| {
        let run = s.spawn(|| {
            atm_ingest::sync(&mut client, &store, &opts, |p| {
                *latest.lock().unwrap() = p.clone()
            })
            .unwrap()
        });
        wait_until("pages are done", || {
            pages(&latest, Market::Spot) > 2 && pages(&latest, Market::UsdM) > 2
        });

        // Paused: spot stands still while USD-M goes on.
        assert_eq!(call(Control::Pause(Market::Spot)), Ok(ControlReply::Done));
        std::thread::sleep(Duration::from_millis(400)); // pages already in flight land
        let (spot, um) = (pages(&latest, Market::Spot), pages(&latest, Market::UsdM));
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(
            pages(&latest, Market::Spot),
            spot,
            "a paused market sends no request"
        );
        assert!(
            pages(&latest, Market::UsdM) > um,
            "the other market goes on"
        );

        // Resumed: spot moves again.
        assert_eq!(call(Control::Resume(Market::Spot)), Ok(ControlReply::Done));
        wait_until("spot resumes", || pages(&latest, Market::Spot) > spot);

        // Flush commits now and says how far it got.
        match call(Control::Flush) {
            Ok(ControlReply::Flushed { pages }) => assert!(pages > 4),
            other => panic!("{other:?}"),
        }

        // Stop ends the run early, with what arrived committed.
        assert_eq!(call(Control::Stop), Ok(ControlReply::Done));
        run.join().unwrap()
    });
    assert!(summary.stopped, "{summary:?}");
    assert!(
        summary.pages_done < summary.pages && summary.klines_written > 0,
        "{summary:?}"
    );
    // The owner has exited: once its requests channel is gone (it lives in
    // the options), a request says so at once.
    drop(opts);
    assert_eq!(call(Control::Flush), Err(CallError::OwnerGone));
    // What was committed is whole.
    assert!(store.verify().unwrap().is_empty());
}

/// Endpoints of a simulator started for this test (stopped when they drop).
fn sim_endpoints(config: atm_sim::SimConfig) -> Endpoints {
    let server = atm_sim::SimServer::start(config).unwrap();
    let base = server.base_url().to_string();
    Endpoints::served_by(&base, server)
}
