//! Parsing the `T` of `--from`/`--to`: RFC 3339, a date, or epoch milliseconds.

use chrono::{DateTime, NaiveDate};

use crate::error::{CliError, Result};

/// `--from` and `--to` as an inclusive range of open times (unbounded
/// where not given); `--from` after `--to` is a usage error.
pub fn range(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64)> {
    let from = from.map(parse_time).transpose()?.unwrap_or(i64::MIN);
    let to = to.map(parse_time).transpose()?.unwrap_or(i64::MAX);
    if from > to {
        return Err(CliError::Usage(format!(
            "--from ({from}) is after --to ({to})"
        )));
    }
    Ok((from, to))
}

/// Epoch milliseconds of `s`: `2024-02-01T12:00:00Z` (RFC 3339), `2024-02-01`
/// (00:00 UTC that day) or `1706745600000`.
pub fn parse_time(s: &str) -> Result<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| CliError::Usage(format!("time {s:?} is too large")));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(CliError::Usage(format!("cannot read time {s:?}: use RFC 3339 (2024-02-01T12:00:00Z), a date (2024-02-01) or epoch milliseconds")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_forms() {
        assert_eq!(parse_time("1706745600000").unwrap(), 1_706_745_600_000);
        assert_eq!(parse_time("2024-02-01").unwrap(), 1_706_745_600_000);
        assert_eq!(
            parse_time("2024-02-01T00:00:00Z").unwrap(),
            1_706_745_600_000
        );
        assert_eq!(
            parse_time("2024-02-01T01:00:00+01:00").unwrap(),
            1_706_745_600_000
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("-5").is_err());
    }
}
