//! The exchange's shared state: configuration, universe, clock, rate-limit
//! pools, fault dice and counters. One `Exchange` serves every connection.

use std::net::SocketAddr;
use std::sync::Mutex;

use atm_types::Market;
use serde_json::{json, Value};

use crate::clock::Clock;
use crate::error::Result;
use crate::faults::{Dice, FaultSpec};
use crate::limits::Pool;
use crate::stats::Stats;
use crate::universe::{Universe, UniverseSpec};

/// How to run the simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to bind; port 0 picks a free one. Loopback by default.
    pub addr: SocketAddr,
    /// Seeds every random draw: klines, lifecycles, faults.
    pub seed: u64,
    /// Which symbols exist.
    pub universe: UniverseSpec,
    /// The exchange time at start, epoch ms; the wall clock when `None`.
    pub now: Option<i64>,
    /// How many times faster than real time the exchange clock runs.
    pub time_scale: f64,
    /// Faults to inject.
    pub faults: FaultSpec,
    /// Whether to enforce request-weight limits (off for throughput benchmarks).
    pub rate_limits: bool,
    /// Listings while running (generated universes): with `Some(d)`, one
    /// new symbol per market lists `d` ms (exchange time) after start and
    /// one trading symbol per market is delisted `2 d` after start.
    pub churn: Option<i64>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            universe: UniverseSpec::Generated(20),
            now: None,
            time_scale: 1.0,
            faults: FaultSpec::default(),
            rate_limits: true,
            churn: None,
        }
    }
}

/// A market's rendered exchangeInfo `symbols` and the statuses it shows.
pub(crate) type SymbolsCache = Mutex<Option<(Vec<String>, std::sync::Arc<Vec<u8>>)>>;

/// The weight limits Binance documents (binance-api.md §3), used by the
/// generated universe.
const SPOT_WEIGHT_LIMIT: u64 = 6000;
const FUTURES_WEIGHT_LIMIT: u64 = 2400;

/// The whole simulated exchange.
#[derive(Debug)]
pub struct Exchange {
    /// The configuration it runs with.
    pub config: SimConfig,
    /// The symbols.
    pub universe: Universe,
    /// Exchange time.
    pub clock: Clock,
    /// Spot's weight pool.
    pub spot_pool: Pool,
    /// The pool USD-M and COIN-M share.
    pub futures_pool: Pool,
    /// Fault draws.
    pub dice: Dice,
    /// The faults in force: `config.faults` at start, replaceable at run time.
    faults: std::sync::RwLock<FaultSpec>,
    /// Counters.
    pub stats: Stats,
    /// Rendered `symbols` arrays of exchangeInfo, per market, with the
    /// statuses they were rendered for.
    pub(crate) symbols_json: [SymbolsCache; 3],
    /// Archive zips built so far.
    pub(crate) zips: Mutex<crate::archive::ZipCache>,
    /// Trades before each (market, symbol, day), for kline events' trade ids.
    pub(crate) trade_base: crate::ws::TradeBase,
    /// WebSocket connection attempts per market in the current 5-minute window.
    pub(crate) ws_connects: Mutex<std::collections::HashMap<u8, (i64, u32)>>,
}

impl Exchange {
    /// Builds the exchange for `config`.
    pub fn new(config: SimConfig) -> Result<Exchange> {
        if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
            return Err(crate::Error::Config(format!(
                "--time-scale must be a positive number, not {}",
                config.time_scale
            )));
        }
        let clock = Clock::new(config.now, config.time_scale);
        let mut universe = Universe::build(&config.universe, config.seed, clock.now())?;
        if let Some(d) = config.churn {
            universe.churn(&config.universe, config.seed, clock.now(), d)?;
        }
        let limit_of = |m: Market, default: u64| match config.universe {
            UniverseSpec::Real => weight_limit(&universe.market(m).skeleton).unwrap_or(default),
            UniverseSpec::Generated(_) => default,
        };
        let spot_pool = Pool::new(limit_of(Market::Spot, SPOT_WEIGHT_LIMIT));
        let futures_pool = Pool::new(limit_of(Market::UsdM, FUTURES_WEIGHT_LIMIT));
        let dice = Dice::new(config.seed);
        Ok(Exchange {
            faults: std::sync::RwLock::new(config.faults),
            config,
            universe,
            clock,
            spot_pool,
            futures_pool,
            dice,
            stats: Stats::default(),
            symbols_json: Default::default(),
            zips: Default::default(),
            trade_base: Default::default(),
            ws_connects: Default::default(),
        })
    }

    /// The faults in force now.
    pub fn faults(&self) -> FaultSpec {
        *atm_types::sync::unpoison(self.faults.read())
    }

    /// Replaces the faults in force (`POST /sim/v1/faults`).
    pub fn set_faults(&self, faults: FaultSpec) {
        *atm_types::sync::unpoison(self.faults.write()) = faults;
    }

    /// The weight pool of `market` (COIN-M shares USD-M's).
    pub fn pool(&self, market: Market) -> &Pool {
        match market {
            Market::Spot => &self.spot_pool,
            Market::UsdM | Market::CoinM => &self.futures_pool,
        }
    }

    /// The `rateLimits` array exchangeInfo serves for `market`: the
    /// snapshot's entries, with REQUEST_WEIGHT set to the pool's limit.
    pub fn rate_limits_json(&self, market: Market) -> Value {
        // With limits off, the document says so: a weight no client reaches.
        let limit = if self.config.rate_limits {
            self.pool(market).limit()
        } else {
            UNLIMITED_WEIGHT
        };
        let mut limits = match self.universe.market(market).skeleton.get("rateLimits") {
            Some(Value::Array(a)) => a.clone(),
            _ => vec![],
        };
        match limits.iter_mut().find(|l| l["rateLimitType"] == "REQUEST_WEIGHT") {
            Some(l) => l["limit"] = json!(limit),
            None => limits.insert(0, json!({"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit})),
        }
        Value::Array(limits)
    }
}

/// The REQUEST_WEIGHT per minute exchangeInfo states when limits are off.
pub const UNLIMITED_WEIGHT: u64 = 1_000_000_000;

/// The REQUEST_WEIGHT per minute an exchangeInfo document states.
fn weight_limit(info: &Value) -> Option<u64> {
    info["rateLimits"]
        .as_array()?
        .iter()
        .find(|l| l["rateLimitType"] == "REQUEST_WEIGHT" && l["interval"] == "MINUTE")?["limit"]
        .as_u64()
}
