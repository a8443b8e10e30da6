//! Console logging: `warn` by default for the short commands, `-v`/`-q` and
//! `RUST_LOG` change it.

use crate::cli::{Cli, Command};

/// Sets up env_logger for `cli`.
pub fn init(cli: &Cli) {
    let base: i32 = match cli.command {
        Command::Import(_) | Command::Query(_) | Command::Info(_) | Command::Verify(_) | Command::Compact(_) => 2, // warn
        Command::Sim(_) | Command::Sync(_) => 3,
        Command::Markets(_) => 2, // info: long-running
    };
    let level = match base + cli.verbose as i32 - cli.quiet as i32 {
        i32::MIN..=0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut b = env_logger::Builder::new();
    b.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format_timestamp_millis();
    let _ = b.try_init();
}
