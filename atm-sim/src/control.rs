//! The control and ground-truth API under `/sim/v1/`: no weight, no limits,
//! no faults. Tests compare what a client stored against it.
//!
//! | path | answer |
//! |---|---|
//! | `GET /sim/v1/clock` | `{"now":ms,"time_scale":X}` |
//! | `GET /sim/v1/klines?market=&symbol=&interval=&startTime=&endTime=` | every closed kline with open time in `[startTime, endTime]`, as `/api/v3/klines` rows |
//! | `GET /sim/v1/symbols` | `[{"market","symbol","status","listed","first_kline","delisted"}]` for every symbol of every market |
//! | `GET /sim/v1/stats` | the counters ([`crate::stats::Stats`]) |
//! | `GET /sim/v1/faults` | the faults in force, as a `--faults` spec |
//! | `POST /sim/v1/faults?spec=SPEC` | replaces the faults in force (an empty spec turns them off) |

use atm_types::{Interval, Market};
use serde_json::{json, Value};

use crate::candles::{next_open, open_of, Gen, Kline};
use crate::exchange::Exchange;
use crate::format::rest_rows;
use crate::rest::Reply;

impl Exchange {
    /// Answers `/sim/v1/…`, or `None` for other paths.
    pub fn control(&self, method: &str, path: &str, query: &str) -> Option<Reply> {
        let rest = path.strip_prefix("/sim/v1/")?;
        let now = self.clock.now();
        Some(match rest {
            "clock" => Reply::json(200, json!({"now": now, "time_scale": self.clock.scale()}).to_string()),
            "stats" => Reply::json(200, self.stats.to_json().to_string()),
            "symbols" => Reply::json(200, self.symbols_truth(now).to_string()),
            "faults" if method == "POST" => {
                let spec = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "spec").map(|(_, v)| v.into_owned());
                match spec.unwrap_or_default().parse::<crate::faults::FaultSpec>() {
                    Ok(f) => {
                        self.set_faults(f);
                        Reply::json(200, json!({"faults": f.to_string()}).to_string())
                    }
                    Err(e) => Reply::error(400, -1100, &e.to_string()),
                }
            }
            "faults" => Reply::json(200, json!({"faults": self.faults().to_string()}).to_string()),
            "klines" => match self.truth_klines(query, now) {
                Ok(body) => Reply::json(200, body),
                Err(msg) => Reply::error(400, -1100, &msg),
            },
            _ => Reply::error(
                404,
                -1000,
                &format!("unknown control endpoint /sim/v1/{rest}: known are clock, klines, symbols, stats, faults"),
            ),
        })
    }

    fn symbols_truth(&self, now: i64) -> Value {
        let mut out = Vec::new();
        for market in Market::ALL {
            for l in &self.universe.market(market).listings {
                let life = &l.model.life;
                out.push(json!({
                    "market": market.as_str(),
                    "symbol": l.model.symbol,
                    "status": l.status(now),
                    "listed": life.listed,
                    "first_kline": l.first_kline(now),
                    "delisted": life.delisted,
                }));
            }
        }
        Value::Array(out)
    }

    fn truth_klines(&self, query: &str, now: i64) -> Result<Vec<u8>, String> {
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let need = |k: &str| get(k).ok_or_else(|| format!("missing parameter {k}"));
        let market: Market = need("market")?
            .parse()
            .map_err(|e| format!("market: {e}"))?;
        let symbol = need("symbol")?;
        let interval: Interval = need("interval")?
            .parse()
            .map_err(|e| format!("interval: {e}"))?;
        if !interval.valid_for(market) {
            return Err(format!("interval {interval} does not exist on {market}"));
        }
        let time = |k: &str, default: i64| {
            get(k).map_or(Ok(default), |v| {
                v.parse::<i64>()
                    .map_err(|_| format!("{k}: not a number: {v:?}"))
            })
        };
        let (start, end) = (time("startTime", 0)?, time("endTime", now)?);
        let listing = self
            .universe
            .get(market, symbol)
            .ok_or_else(|| format!("unknown symbol {symbol} on {market}"))?;
        let g = Gen::new(&listing.model, now);
        let life = g.life();
        let mut rows = Vec::new();
        if let Some(listed) = life.listed {
            let mut t = open_of(interval, start.max(listed));
            if t < start {
                t = next_open(interval, t);
            }
            let end = end.min(now).min(life.delisted.unwrap_or(i64::MAX));
            while t <= end {
                let close = next_open(interval, t) - 1;
                if close >= now {
                    break; // closed klines only
                }
                if let Some(agg) = g.range(t, close + 1) {
                    rows.push(Kline {
                        open_time: t,
                        close_time: close,
                        agg,
                    });
                }
                t = close + 1;
            }
        }
        let mut out = Vec::with_capacity(rows.len() * 160 + 2);
        rest_rows(&mut out, &rows, &listing.model.units);
        Ok(out)
    }
}
