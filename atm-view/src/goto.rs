//! Reading the date typed after `:` (always UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Epoch milliseconds of a typed date: `2024-02-01`, `2024-02-01 12:30`,
/// `2024-02-01 12:30:15`, the same with `T`, RFC 3339, `2024-02` (the
/// month's first day) or epoch milliseconds.
///
/// ```
/// use atm_view::goto::parse_date;
/// assert_eq!(parse_date("2024-02-01"), Ok(1_706_745_600_000));
/// assert_eq!(parse_date(" 2024-02-01 00:01 "), Ok(1_706_745_660_000));
/// assert_eq!(parse_date("2024-02"), Ok(1_706_745_600_000));
/// assert!(parse_date("tomorrow").unwrap_err().contains("tomorrow"));
/// ```
pub fn parse_date(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() > 8 {
        return s
            .parse()
            .map_err(|_| format!("{s:?} is too large for epoch milliseconds"));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(d.and_utc().timestamp_millis());
        }
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d"));
    if let Some(t) = day.ok().and_then(|d| d.and_hms_opt(0, 0, 0)) {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(format!(
        "cannot read the date {s:?}: type 2024-02-01, 2024-02-01 12:30 (UTC) or epoch milliseconds"
    ))
}
