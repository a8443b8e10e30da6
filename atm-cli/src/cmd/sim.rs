//! `atm sim serve`: the built-in Binance simulator as a server.

use std::io::Write;

use atm_sim::{SimConfig, UniverseSpec};

use crate::cli::{SimCommand, SimServeArgs};
use crate::error::{CliError, Result};
use crate::time_arg::parse_time;

/// Runs `atm sim ...`.
pub fn run(cmd: SimCommand) -> Result<()> {
    match cmd {
        SimCommand::Serve(a) => serve(a),
    }
}

fn serve(a: SimServeArgs) -> Result<()> {
    let config = SimConfig {
        addr: a.addr,
        seed: a.seed,
        universe: a.universe.parse::<UniverseSpec>()?,
        now: a.now.as_deref().map(parse_time).transpose()?,
        time_scale: a.time_scale,
        faults: a.faults.parse()?,
        rate_limits: !a.no_limits,
        churn: a
            .churn
            .as_deref()
            .map(|d| {
                atm_sim::faults::parse_duration(d)
                    .map_err(|_| CliError::Usage(format!("--churn {d:?}: write e.g. 30m or 2h")))
            })
            .transpose()?,
    };
    if !a.addr.ip().is_loopback() {
        log::warn!(
            "serving on {}, not loopback: anyone who can reach it can use it",
            a.addr
        );
    }
    let mut printed = Ok(());
    atm_sim::server::run_until_signal(config, |base, ex| {
        let line = serde_json::json!({"base": base, "seed": ex.config.seed, "now": ex.clock.now(), "time_scale": ex.clock.scale()});
        let mut out = std::io::stdout().lock();
        printed = writeln!(out, "{line}").and_then(|()| out.flush());
        log::info!(
            "simulated Binance at {base} (spot {base}/api/v3, USD-M {base}/fapi/v1, COIN-M {base}/dapi/v1, streams {base}/spot|um|cm/ws)"
        );
    })?;
    printed.map_err(CliError::Output)
}
