//! The symbols the exchange lists: Binance's real ones (from embedded
//! exchangeInfo snapshots) or a generated set, each with its kline model,
//! its life (listing, delisting, relisting) and its exchangeInfo entry.

use std::collections::HashMap;
use std::io::Read;

use atm_types::{Interval, Market};
use serde_json::{json, Value};

use crate::candles::{Gen, Lifecycle, SymbolModel, Units, DAY, MINUTE};
use crate::error::{Error, Result};
use crate::rng::{hash, hash_str, unit};

/// Binance's first day of spot trading, 2017-07-14: no symbol lists earlier.
pub const SPOT_LAUNCH_MS: i64 = 1_500_000_000_000 - 1_500_000_000_000 % DAY;
/// USD-M futures launched 2019-09-08; COIN-M on 2020-08-10.
pub const FUTURES_LAUNCH_MS: i64 = 1_567_900_800_000;

/// Which symbols the exchange lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UniverseSpec {
    /// The real exchangeInfo snapshots: 2292 spot, 647 USD-M, 36 COIN-M symbols.
    Real,
    /// `n` generated symbols per market.
    Generated(usize),
}

impl std::str::FromStr for UniverseSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<UniverseSpec> {
        match s {
            "real" => Ok(UniverseSpec::Real),
            n => match n.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => Ok(UniverseSpec::Generated(n)),
                _ => Err(Error::Config(format!("--universe must be `real` or a number of symbols per market (1..100000), not {s:?}"))),
            },
        }
    }
}

/// One listed symbol.
#[derive(Clone, Debug)]
pub struct Listing {
    /// How its klines are made, and its life.
    pub model: SymbolModel,
    /// Its exchangeInfo object, `status`/`contractStatus` as in the snapshot.
    pub info: Value,
    /// The snapshot's status, used while the symbol trades (spot `TRADING`,
    /// futures `TRADING`, `PRE_SETTLE`, `DELIVERING`, ...).
    pub trading_status: String,
    /// Status once delisted (spot `BREAK`, futures `SETTLING`, `DELIVERED`, ...).
    pub delisted_status: String,
}

impl Listing {
    /// The status the exchange shows at `now`.
    pub fn status(&self, now: i64) -> &str {
        let life = &self.model.life;
        let market = self.model.market;
        match life.listed {
            Some(t) if t <= now => {}
            _ if market == Market::Spot => return "BREAK",
            _ => return "PENDING_TRADING",
        }
        let gone = life.delisted.is_some_and(|d| d <= now)
            || life.gap.is_some_and(|(a, b)| a <= now && now < b);
        if gone {
            &self.delisted_status
        } else {
            &self.trading_status
        }
    }

    /// Open time of the symbol's first kline at `now`, if it has one.
    pub fn first_kline(&self, now: i64) -> Option<i64> {
        let listed = self.model.life.listed?;
        let g = Gen::new(&self.model, now);
        // The listing may fall in an outage or a relisting gap: walk forward
        // by days to the first day with a kline, then by minutes.
        let mut day = listed - listed.rem_euclid(DAY);
        while day <= now {
            if g.range(day.max(listed), day + DAY).is_some() {
                let mut t = day.max(listed);
                while t < day + DAY {
                    if g.kline(Interval::M1, t).is_some() {
                        return Some(t);
                    }
                    t += MINUTE;
                }
            }
            day += DAY;
        }
        None
    }
}

/// Every market's listings, in exchangeInfo order.
#[derive(Debug)]
pub struct Universe {
    markets: [MarketListings; 3],
}

/// One market's listings and its exchangeInfo skeleton.
#[derive(Debug)]
pub struct MarketListings {
    /// The symbols, in exchangeInfo order.
    pub listings: Vec<Listing>,
    /// Index by symbol name.
    pub by_name: HashMap<String, usize>,
    /// The exchangeInfo object without `symbols` (keys in Binance's order).
    pub skeleton: Value,
}

impl Universe {
    /// Builds the universe for `seed`, with generated lifecycles relative to `now`.
    pub fn build(spec: &UniverseSpec, seed: u64, now: i64) -> Result<Universe> {
        let markets = Market::ALL.map(|m| {
            let snapshot = snapshot(m)?;
            let listings = match spec {
                UniverseSpec::Real => real_listings(m, &snapshot, seed, now)?,
                UniverseSpec::Generated(n) => generated_listings(m, &snapshot, *n, seed, now)?,
            };
            let by_name = listings
                .iter()
                .enumerate()
                .map(|(i, l)| (l.model.symbol.clone(), i))
                .collect();
            let mut skeleton = snapshot;
            if let Some(o) = skeleton.as_object_mut() {
                o.remove("symbols");
            }
            Ok(MarketListings {
                listings,
                by_name,
                skeleton,
            })
        });
        let [a, b, c] = markets;
        Ok(Universe {
            markets: [a?, b?, c?],
        })
    }

    /// Adds life while running to a generated universe: per market, one new
    /// symbol lists `after` ms past `now`, and the last symbol that trades
    /// for good is delisted `2 after` past `now`.
    pub fn churn(&mut self, spec: &UniverseSpec, seed: u64, now: i64, after: i64) -> Result<()> {
        let UniverseSpec::Generated(n) = *spec else {
            return Err(Error::Config(
                "--churn needs a generated universe (--universe N)".into(),
            ));
        };
        if after <= 0 {
            return Err(Error::Config(format!(
                "--churn must be positive, not {after} ms"
            )));
        }
        let minute = |t: i64| t - t.rem_euclid(MINUTE);
        for (i, m) in Market::ALL.into_iter().enumerate() {
            let ml = &mut self.markets[i];
            let last = ml.listings.iter().rposition(|l| {
                l.model.life.listed.is_some_and(|t| t < now) && l.model.life.delisted.is_none()
            });
            if let Some(last) = last {
                ml.listings[last].model.life.delisted = Some(minute(now + 2 * after));
            }
            let mut new = generated_listings(m, &snapshot(m)?, n + 1, seed, now)?
                .pop()
                .ok_or_else(|| Error::Config("no listing".into()))?;
            new.model.life = Lifecycle {
                listed: Some(minute(now + after)),
                delisted: None,
                gap: None,
            };
            ml.by_name
                .insert(new.model.symbol.clone(), ml.listings.len());
            ml.listings.push(new);
        }
        Ok(())
    }

    /// The listings of `market`.
    pub fn market(&self, market: Market) -> &MarketListings {
        &self.markets[market as usize]
    }

    /// The listing of `symbol` on `market`.
    pub fn get(&self, market: Market, symbol: &str) -> Option<&Listing> {
        let m = self.market(market);
        m.by_name.get(symbol).map(|&i| &m.listings[i])
    }
}

/// The embedded exchangeInfo snapshot of `market`.
fn snapshot(market: Market) -> Result<Value> {
    let zst: &[u8] = match market {
        Market::Spot => include_bytes!("../data/spot_exchangeInfo_2023-09-08.json.zst"),
        Market::UsdM => include_bytes!("../data/usdm_exchangeInfo_2025-11-26.json.zst"),
        Market::CoinM => include_bytes!("../data/cm_exchangeInfo_2021-07-22.extracted.json.zst"),
    };
    let mut json = Vec::new();
    zstd::stream::Decoder::new(zst)
        .and_then(|mut d| d.read_to_end(&mut json))
        .map_err(|e| Error::Config(format!("embedded {market} exchangeInfo: {e}")))?;
    serde_json::from_slice(&json)
        .map_err(|e| Error::Config(format!("embedded {market} exchangeInfo: {e}")))
}

/// A decimal string as an integer count of `10^-decimals`.
fn decimal_units(s: &str, decimals: u32) -> Option<u128> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = frac.trim_end_matches('0');
    if frac.len() > decimals as usize {
        return None;
    }
    let digits = format!("{int}{frac:0<width$}", width = decimals as usize);
    digits.parse().ok()
}

/// Decimals a decimal string needs (`"0.00100"` → 3).
fn decimals_of(s: &str) -> u32 {
    s.split_once('.')
        .map_or(0, |(_, f)| f.trim_end_matches('0').len() as u32)
}

fn filter<'a>(info: &'a Value, kind: &str, key: &str) -> Option<&'a str> {
    info["filters"]
        .as_array()?
        .iter()
        .find(|f| f["filterType"] == kind)?[key]
        .as_str()
}

/// The printing units of a symbol's exchangeInfo entry.
fn units_of(market: Market, info: &Value) -> Result<Units> {
    let name = info["symbol"].as_str().unwrap_or("?");
    let bad = |what: &str| Error::Config(format!("{market} {name}: {what}"));
    let tick =
        filter(info, "PRICE_FILTER", "tickSize").ok_or_else(|| bad("no PRICE_FILTER tickSize"))?;
    let step = filter(info, "LOT_SIZE", "stepSize").ok_or_else(|| bad("no LOT_SIZE stepSize"))?;
    let (price_decimals, qty_decimals, quote_decimals, contract_size) = match market {
        Market::Spot => (8, 8, 8, None),
        Market::UsdM => {
            let pp = info["pricePrecision"].as_u64().unwrap_or(8) as u32;
            let qp = info["quantityPrecision"].as_u64().unwrap_or(8) as u32;
            let (pp, qp) = (pp.max(decimals_of(tick)), qp.max(decimals_of(step)));
            (pp, qp, pp + qp, None)
        }
        Market::CoinM => {
            let pp = (info["pricePrecision"].as_u64().unwrap_or(8) as u32).max(decimals_of(tick));
            (
                pp,
                0,
                8,
                Some(info["contractSize"].as_f64().unwrap_or(10.0)),
            )
        }
    };
    // A zero tick or step disables the check (filters.md); the smallest
    // printable unit is the grid then (USD-M's OPENUSDT has tickSize "0").
    let tick = decimal_units(tick, price_decimals)
        .ok_or_else(|| bad("tickSize"))?
        .max(1) as i64;
    let step = match market {
        Market::CoinM => 1,
        _ => decimal_units(step, qty_decimals)
            .ok_or_else(|| bad("stepSize"))?
            .max(1),
    };
    Ok(Units {
        price_decimals,
        tick,
        qty_decimals,
        step,
        quote_decimals,
        contract_size,
    })
}

/// A typical USD value of one unit of `asset`, to scale prices and volumes.
fn usd_value(asset: &str) -> f64 {
    match asset {
        "BTC" => 30_000.0,
        "ETH" => 2_000.0,
        "BNB" => 300.0,
        "TRY" => 0.04,
        "EUR" | "GBP" => 1.1,
        "BRL" => 0.2,
        "RUB" => 0.011,
        _ => 1.0,
    }
}

/// The kline model of a symbol: price level, volatility and activity drawn
/// from the seed, scaled to its tick, step and quote asset.
fn model_of(market: Market, info: &Value, seed: u64, life: Lifecycle) -> Result<SymbolModel> {
    let symbol = info["symbol"].as_str().unwrap_or_default().to_string();
    let units = units_of(market, info)?;
    let key = hash(&[seed, market as u64, hash_str(&symbol)]);
    let h = |i: u64| unit(hash(&[key, 0x5eed, i]));
    let quote_usd = usd_value(info["quoteAsset"].as_str().unwrap_or("USDT"));
    // Price: log-uniform from $0.001 to $50,000 (quote-asset adjusted), at least 200 ticks.
    let usd = 10f64.powf(-3.0 + 7.7 * h(1));
    let scale = 10f64.powi(units.price_decimals as i32);
    let min_price = filter(info, "PRICE_FILTER", "minPrice")
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    let price = (usd / quote_usd * scale)
        .max(200.0 * units.tick as f64)
        .max(min_price * 5.0 * scale);
    let sigma = 0.015 + 0.05 * h(2);
    // Daily turnover: log-uniform from $20k to $2bn; trades of $50 to $2,000.
    let turnover_usd = 10f64.powf(4.3 + 5.0 * h(3));
    let trade_usd = 10f64.powf(1.7 + 1.6 * h(4));
    let real_price = price / scale * quote_usd; // USD per base unit (COIN-M: per coin)
    let step_real = units.step as f64 / 10f64.powi(units.qty_decimals as i32);
    let steps_per_day = match units.contract_size {
        Some(cs) => turnover_usd / cs,
        None => turnover_usd / real_price / step_real,
    }
    .max(10.0);
    let trades_per_day = (turnover_usd / trade_usd).clamp(5.0, steps_per_day);
    Ok(SymbolModel {
        market,
        symbol,
        key,
        units,
        price,
        sigma,
        steps_per_day,
        trades_per_day,
        life,
    })
}

/// A minute-aligned time drawn uniformly from `[from, to)`.
fn time_between(h: u64, from: i64, to: i64) -> i64 {
    let t = from + (unit(h) * (to - from).max(1) as f64) as i64;
    t - t.rem_euclid(MINUTE)
}

fn is_trading_status(s: &str) -> bool {
    matches!(
        s,
        "TRADING"
            | "PRE_DELIVERING"
            | "DELIVERING"
            | "PRE_SETTLE"
            | "END_OF_DAY"
            | "HALT"
            | "CANCEL_ONLY"
    )
}

fn real_listings(market: Market, snapshot: &Value, seed: u64, now: i64) -> Result<Vec<Listing>> {
    let symbols = snapshot["symbols"]
        .as_array()
        .ok_or_else(|| Error::Config(format!("{market} exchangeInfo has no symbols")))?;
    let snapshot_time = snapshot["serverTime"].as_i64().unwrap_or(now).min(now);
    let status_key = if market == Market::CoinM {
        "contractStatus"
    } else {
        "status"
    };
    let launch = if market == Market::Spot {
        SPOT_LAUNCH_MS
    } else {
        FUTURES_LAUNCH_MS
    };
    let yesterday = now - DAY;
    symbols
        .iter()
        .map(|info| {
            let name = info["symbol"].as_str().unwrap_or_default();
            let status = info[status_key].as_str().unwrap_or("TRADING").to_string();
            let h = |i: u64| hash(&[seed, market as u64, hash_str(name), 0x11fe, i]);
            let onboard = info["onboardDate"].as_i64();
            let delivery = info["deliveryDate"]
                .as_i64()
                .filter(|&d| d < 4_000_000_000_000);
            let trading = is_trading_status(&status);
            if status == "PENDING_TRADING" {
                let life = pending_life(
                    onboard,
                    delivery,
                    snapshot["serverTime"].as_i64().unwrap_or(now).min(now),
                    h(2),
                );
                let mut info = info.clone();
                if let (Some(listed), Some(o)) = (life.listed, info.get_mut("onboardDate")) {
                    *o = json!(listed); // unchanged unless the snapshot's was not minute-aligned
                }
                let trading_status = "TRADING".to_string();
                let model = model_of(market, &info, seed, life)?;
                return Ok(Listing {
                    model,
                    info,
                    trading_status,
                    delisted_status: status,
                });
            }
            let mut life = match (market, status.as_str()) {
                (Market::Spot, _) => {
                    // A symbol the snapshot shows delisted was listed before it.
                    let until = if trading {
                        yesterday
                    } else {
                        (snapshot_time - 60 * DAY).max(launch + DAY)
                    };
                    let listed = time_between(h(1), launch, until);
                    Lifecycle {
                        listed: Some(listed),
                        delisted: None,
                        gap: None,
                    }
                }
                _ => {
                    let listed = onboard
                        .unwrap_or_else(|| time_between(h(1), launch, yesterday))
                        .clamp(launch, yesterday);
                    Lifecycle {
                        listed: Some(listed - listed.rem_euclid(MINUTE)),
                        delisted: None,
                        gap: None,
                    }
                }
            };
            if let Some(listed) = life.listed {
                if !trading {
                    // Delisted: at the contract's delivery when known, else
                    // somewhere between a month after listing and the snapshot.
                    let until = snapshot_time.max(listed + 31 * DAY).min(now);
                    let end = delivery
                        .filter(|&d| d > listed && d <= now)
                        .unwrap_or_else(|| {
                            time_between(h(2), (listed + 30 * DAY).min(until - MINUTE), until)
                        });
                    life.delisted = Some(end - end.rem_euclid(MINUTE));
                } else if unit(h(3)) < 0.03 && yesterday - listed > 120 * DAY {
                    // A few trading symbols were delisted for a while and came back.
                    let from = time_between(h(4), listed + 30 * DAY, yesterday - 60 * DAY);
                    let to =
                        time_between(h(5), from + DAY, (from + 180 * DAY).min(yesterday - DAY));
                    life.gap = Some((from, to));
                }
            }
            let delisted_status = if trading {
                default_delisted(market)
            } else {
                status.clone()
            };
            let trading_status = if trading {
                status.clone()
            } else {
                "TRADING".to_string()
            };
            Ok(Listing {
                model: model_of(market, info, seed, life)?,
                info: info.clone(),
                trading_status,
                delisted_status,
            })
        })
        .collect()
}

/// The life of a contract the snapshot shows `PENDING_TRADING`.
///
/// Binance shows a delisted perpetual as `PENDING_TRADING` once it has
/// settled (OMGUSDT, onboarded 2019-09-25, in the 2025-11-26 snapshot), and
/// a contract about to list the same way, with its future `onboardDate`. So:
/// listed at its `onboardDate`; if that is before `until` (the snapshot's
/// time, or the exchange's clock if earlier) it traded and was delisted at
/// its `deliveryDate` when that is a real date in between (DEFIUSDT,
/// VIDTUSDT), else at a seeded minute from `min(30 days, half its life)`
/// after listing to `until`: at least one minute of klines. A contract
/// onboarded after `until` has not traded yet: it lists at its
/// `onboardDate`, in the future.
fn pending_life(onboard: Option<i64>, delivery: Option<i64>, until: i64, h: u64) -> Lifecycle {
    let Some(onboard) = onboard.filter(|&o| o < 4_000_000_000_000) else {
        return Lifecycle {
            listed: None,
            delisted: None,
            gap: None,
        };
    };
    let listed = onboard - onboard.rem_euclid(MINUTE);
    let until = until - until.rem_euclid(MINUTE);
    if listed >= until {
        return Lifecycle {
            listed: Some(listed),
            delisted: None,
            gap: None,
        };
    }
    let life = until - listed;
    let end = delivery
        .map(|d| d - d.rem_euclid(MINUTE))
        .filter(|&d| d > listed && d <= until)
        .unwrap_or_else(|| time_between(h, listed + (30 * DAY).min(life / 2), until))
        .max(listed + MINUTE);
    Lifecycle {
        listed: Some(listed),
        delisted: Some(end),
        gap: None,
    }
}

fn default_delisted(market: Market) -> String {
    if market == Market::Spot {
        "BREAK"
    } else {
        "SETTLING"
    }
    .to_string()
}

/// Base assets of generated symbols: a few famous ones, then made-up names.
fn generated_base(i: usize) -> String {
    const FAMOUS: [&str; 8] = ["BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "TRX"];
    if let Some(f) = FAMOUS.get(i) {
        return f.to_string();
    }
    // Three to five letters, unique per index (base 26 with an offset).
    let mut n = i - FAMOUS.len() + 26 * 26;
    let mut s = String::new();
    while n > 0 {
        s.insert(0, (b'A' + (n % 26) as u8) as char);
        n /= 26;
    }
    format!("{s}X")
}

fn generated_listings(
    market: Market,
    snapshot: &Value,
    n: usize,
    seed: u64,
    now: i64,
) -> Result<Vec<Listing>> {
    let symbols = snapshot["symbols"]
        .as_array()
        .ok_or_else(|| Error::Config(format!("{market} exchangeInfo has no symbols")))?;
    let template = symbols
        .first()
        .cloned()
        .ok_or_else(|| Error::Config(format!("{market} exchangeInfo is empty")))?;
    let launch = if market == Market::Spot {
        SPOT_LAUNCH_MS
    } else {
        FUTURES_LAUNCH_MS
    };
    let yesterday = now - DAY;
    (0..n)
        .map(|i| {
            let base = generated_base(i);
            let h = |k: u64| hash(&[seed, market as u64, i as u64, 0x6e4, k]);
            let (symbol, quote) = match market {
                Market::Spot if i % 5 == 4 => (format!("{base}BTC"), "BTC"),
                Market::Spot | Market::UsdM => (format!("{base}USDT"), "USDT"),
                Market::CoinM => (format!("{base}USD_PERP"), "USD"),
            };
            // Tick and step: powers of ten suited to a price drawn like the model's.
            let price_usd = 10f64.powf(
                -3.0 + 7.7 * unit(hash(&[seed, market as u64, hash_str(&symbol), 0x5eed, 1])),
            ) / usd_value(quote);
            let tick_exp = (price_usd.log10().floor() as i32 - 4).clamp(-8, 2);
            let step_exp = (-(price_usd.log10().floor() as i32) - 1).clamp(-8, 3);
            let mut info = template.clone();
            let status = if unit(h(1)) < 0.05 && market != Market::Spot {
                "PENDING_TRADING"
            } else {
                "TRADING"
            };
            let listed = time_between(h(2), launch, yesterday);
            // A pending contract lists in the future (its `onboardDate`), a month to a year away.
            let listed = if status == "PENDING_TRADING" {
                time_between(h(7), now + 30 * DAY, now + 365 * DAY)
            } else {
                listed
            };
            let mut life = Lifecycle {
                listed: Some(listed),
                delisted: None,
                gap: None,
            };
            let r = unit(h(3));
            if status == "TRADING" && r < 0.10 && yesterday - listed > 60 * DAY {
                life.delisted = Some(time_between(h(4), listed + 30 * DAY, yesterday));
            } else if status == "TRADING" && r < 0.13 && yesterday - listed > 120 * DAY {
                let from = time_between(h(5), listed + 30 * DAY, yesterday - 60 * DAY);
                let to = time_between(h(6), from + DAY, (from + 180 * DAY).min(yesterday - DAY));
                life.gap = Some((from, to));
            }
            fill_generated_info(
                market, &mut info, &symbol, &base, quote, tick_exp, step_exp, life, status,
            );
            Ok(Listing {
                model: model_of(market, &info, seed, life)?,
                info,
                trading_status: "TRADING".to_string(),
                delisted_status: default_delisted(market),
            })
        })
        .collect()
}

/// A power of ten as Binance prints filter values (`"0.00100000"` on spot).
fn pow10_str(exp: i32, decimals: u32) -> String {
    let v = 10f64.powi(exp);
    format!("{v:.prec$}", prec = decimals as usize)
}

#[allow(clippy::too_many_arguments)]
fn fill_generated_info(
    market: Market,
    info: &mut Value,
    symbol: &str,
    base: &str,
    quote: &str,
    tick_exp: i32,
    step_exp: i32,
    life: Lifecycle,
    status: &str,
) {
    let Some(o) = info.as_object_mut() else {
        return;
    };
    o.insert("symbol".into(), json!(symbol));
    o.insert("baseAsset".into(), json!(base));
    o.insert("quoteAsset".into(), json!(quote));
    let (price_dec, qty_dec) = ((-tick_exp).max(0) as u32, (-step_exp).max(0) as u32);
    match market {
        Market::Spot => {
            o.insert("status".into(), json!(status));
        }
        Market::UsdM | Market::CoinM => {
            let pair = symbol.trim_end_matches("_PERP");
            o.insert("pair".into(), json!(pair));
            o.insert("contractType".into(), json!("PERPETUAL"));
            o.insert("deliveryDate".into(), json!(4_133_404_800_000i64));
            o.insert(
                "onboardDate".into(),
                json!(life.listed.unwrap_or(4_133_404_800_000)),
            );
            o.insert(
                if market == Market::CoinM {
                    "contractStatus"
                } else {
                    "status"
                }
                .into(),
                json!(status),
            );
            o.insert("pricePrecision".into(), json!(price_dec));
            o.insert(
                "quantityPrecision".into(),
                json!(if market == Market::CoinM { 0 } else { qty_dec }),
            );
            if market == Market::UsdM {
                o.insert("marginAsset".into(), json!(quote));
            } else {
                o.insert("marginAsset".into(), json!(base));
                o.insert(
                    "contractSize".into(),
                    json!(if base == "BTC" { 100 } else { 10 }),
                );
            }
        }
    }
    let spot = market == Market::Spot;
    let fmt = |exp: i32| {
        if spot {
            pow10_str(exp, 8)
        } else {
            pow10_str(exp, (-exp).max(0) as u32)
        }
    };
    if let Some(filters) = o.get_mut("filters").and_then(Value::as_array_mut) {
        for f in filters {
            match f["filterType"].as_str() {
                Some("PRICE_FILTER") => {
                    f["tickSize"] = json!(fmt(tick_exp));
                    f["minPrice"] = json!(fmt(tick_exp));
                }
                Some("LOT_SIZE") | Some("MARKET_LOT_SIZE") if market != Market::CoinM => {
                    f["stepSize"] = json!(fmt(step_exp));
                    f["minQty"] = json!(fmt(step_exp));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000; // 2025-11-24

    #[test]
    fn decimals() {
        assert_eq!(decimal_units("0.00001000", 8), Some(1000));
        assert_eq!(decimal_units("0.10", 2), Some(10));
        assert_eq!(decimal_units("1", 0), Some(1));
        assert_eq!(decimal_units("0.001", 2), None);
        assert_eq!(decimals_of("0.00100"), 3);
        assert_eq!(pow10_str(-3, 8), "0.00100000");
        assert_eq!(pow10_str(1, 0), "10");
    }

    #[test]
    fn real_universe_matches_the_snapshots() {
        let u = Universe::build(&UniverseSpec::Real, 1, NOW).unwrap();
        assert_eq!(u.market(Market::Spot).listings.len(), 2292);
        assert_eq!(u.market(Market::UsdM).listings.len(), 647);
        assert_eq!(u.market(Market::CoinM).listings.len(), 36);
        let spot = u.market(Market::Spot);
        let trading = spot
            .listings
            .iter()
            .filter(|l| l.status(NOW) == "TRADING")
            .count();
        assert!((1290..=1340).contains(&trading), "{trading}");
        let btc = u.get(Market::UsdM, "BTCUSDT").unwrap();
        assert_eq!(
            btc.model.units,
            Units {
                price_decimals: 2,
                tick: 10,
                qty_decimals: 3,
                step: 1,
                quote_decimals: 5,
                contract_size: None
            }
        );
        assert_eq!(btc.model.life.listed, Some(1_569_398_400_000));
        assert!(u.get(Market::UsdM, "币安人生USDT").is_some());
        let pending = u
            .market(Market::UsdM)
            .listings
            .iter()
            .filter(|l| l.status(NOW) == "PENDING_TRADING")
            .count();
        assert_eq!(pending, 46);
        let cm = u.get(Market::CoinM, "BTCUSD_PERP").unwrap();
        assert_eq!(cm.model.units.contract_size, Some(100.0));
        for l in spot.listings.iter().take(50) {
            let first = l.first_kline(NOW);
            assert!(first.is_some(), "{}", l.model.symbol);
            assert!(first >= l.model.life.listed);
        }
    }

    #[test]
    fn generated_universe_has_every_kind_of_life() {
        let u = Universe::build(&UniverseSpec::Generated(200), 7, NOW).unwrap();
        for m in Market::ALL {
            let ls = &u.market(m).listings;
            assert_eq!(ls.len(), 200);
            let names: std::collections::HashSet<_> =
                ls.iter().map(|l| l.model.symbol.as_str()).collect();
            assert_eq!(names.len(), 200, "{m}: duplicate names");
            assert!(
                ls.iter().any(|l| l.model.life.delisted.is_some()),
                "{m}: none delisted"
            );
            assert!(
                ls.iter().any(|l| l.model.life.gap.is_some()),
                "{m}: none relisted"
            );
            if m != Market::Spot {
                assert!(
                    ls.iter().any(|l| l.status(NOW) == "PENDING_TRADING"),
                    "{m}: none pending"
                );
            }
            for l in ls {
                atm_types::Symbol::new(&l.model.symbol).unwrap();
            }
        }
        assert_eq!(u.market(Market::Spot).listings[0].model.symbol, "BTCUSDT");
        assert_eq!(
            u.market(Market::CoinM).listings[0].model.symbol,
            "BTCUSD_PERP"
        );
    }
}
