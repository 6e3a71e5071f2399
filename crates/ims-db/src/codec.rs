//! Conversions between domain values and portable column values.

use ims_domain::{Error, Result};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const TS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Fixed-width UTC text, so that text order is time order on every backend.
pub(crate) fn ts(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(TS)
        .unwrap_or_default()
}

/// Optional timestamp.
pub(crate) fn ts_opt(t: Option<OffsetDateTime>) -> Option<String> {
    t.map(ts)
}

/// Parses a stored timestamp.
pub(crate) fn parse_ts(s: &str) -> Result<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s, TS)
        .map(|t| t.assume_utc())
        .map_err(|e| Error::internal(format!("bad stored timestamp {s}: {e}")))
}

/// Parses an optional stored timestamp.
pub(crate) fn parse_ts_opt(s: Option<String>) -> Result<Option<OffsetDateTime>> {
    s.as_deref().map(parse_ts).transpose()
}

/// Stored integers are i64; domain sizes are u64.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// And back; negative values never get stored, but clamp defensively.
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_sort() {
        let a = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap();
        let b = a + time::Duration::microseconds(1);
        assert_eq!(parse_ts(&ts(a)).unwrap(), a);
        assert!(ts(a) < ts(b));
        assert_eq!(ts(a).len(), 27);
    }
}
