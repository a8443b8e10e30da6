//! The periodic market refresh: new listings are streamed, delisted symbols
//! dropped, while `atm stream` runs.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use atm_store::{Market, Store};
use crossbeam_channel::Sender;

use super::{Item, Shared};
use crate::client::Client;
use crate::error::Result;
use crate::markets::is_trading;
use crate::sync::SyncOptions;

/// What changed in the selection since the last refresh.
#[derive(Debug, Default)]
pub(crate) struct Refresh {
    /// Symbols to stream from now on, with their first kline when known.
    pub added: Vec<(Market, String, Option<i64>)>,
    /// Symbols that stopped trading (or left the exchange).
    pub removed: Vec<(Market, String)>,
}

/// The trading symbols of the selection, from the registry.
pub(crate) fn streamable(
    store: &Store,
    selection: &SyncOptions,
) -> Result<BTreeSet<(Market, String)>> {
    let mut out = BTreeSet::new();
    for (m, s) in crate::sync::select(store, selection)? {
        let reg = store.registry(m)?;
        if reg.symbols.get(&s).is_some_and(|i| is_trading(&i.status)) {
            out.insert((m, s));
        }
    }
    Ok(out)
}

/// Every `every`, re-imports the markets' exchangeInfo and reports the
/// difference with what is streamed, until the stop flag is set or the
/// applier is gone. A failed refresh is logged and tried again next time.
pub(crate) fn run(
    client: &Client,
    store: &Store,
    selection: &SyncOptions,
    mut current: BTreeSet<(Market, String)>,
    every: Duration,
    shared: &Shared,
    tx: &Sender<Item>,
) {
    let mut last = Instant::now();
    while !shared.stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        match refresh(client, store, selection, &current) {
            Ok((now, r)) => {
                current = now;
                if (!r.added.is_empty() || !r.removed.is_empty())
                    && tx.send(Item::Refreshed(r)).is_err()
                {
                    return;
                }
            }
            Err(e) => log::warn!("refreshing the markets: {e}; trying again in {every:?}"),
        }
    }
}

fn refresh(
    client: &Client,
    store: &Store,
    selection: &SyncOptions,
    current: &BTreeSet<(Market, String)>,
) -> Result<(BTreeSet<(Market, String)>, Refresh)> {
    for &m in &selection.selection.markets {
        crate::markets::refresh(client, store, m)?;
    }
    let now = streamable(store, selection)?;
    let added: Vec<(Market, String)> = now.difference(current).cloned().collect();
    let removed: Vec<(Market, String)> = current.difference(&now).cloned().collect();
    if !added.is_empty() {
        crate::sync::identify_first_klines(client, store, &added, 4)?;
    }
    let mut r = Refresh {
        removed,
        ..Refresh::default()
    };
    for (m, s) in added {
        let first = store
            .registry(m)?
            .symbols
            .get(&s)
            .and_then(|i| i.first_kline);
        log::info!("{m} {s}: listed; streaming it from now on");
        r.added.push((m, s, first));
    }
    for (m, s) in &r.removed {
        log::info!("{m} {s}: no longer trading; its stream is dropped");
    }
    Ok((now, r))
}
