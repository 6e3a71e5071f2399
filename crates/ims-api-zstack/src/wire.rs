//! Wire facts shared by both front ends: 32-hex uuids, ZStack's date format.

use time::OffsetDateTime;

use crate::error::{ZsError, ZsResult};

/// An ims id (hyphenated UUID) as ZStack shows it: 32 hex digits, no dashes.
pub fn zs_uuid(id: &str) -> String {
    id.replace('-', "").to_ascii_lowercase()
}

/// Whether `s` is a ZStack uuid: exactly 32 hex digits.
pub fn is_zs_uuid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A ZStack uuid (or an ims hyphenated one) as ims's hyphenated lower-case id; `None`
/// if it is neither.
pub fn ims_id(s: &str) -> Option<String> {
    let hex: String = if is_zs_uuid(s) {
        s.to_ascii_lowercase()
    } else if s.len() == 36 {
        let h = s.replace('-', "");
        if !is_zs_uuid(&h) {
            return None;
        }
        h.to_ascii_lowercase()
    } else {
        return None;
    };
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The ims id of a uuid path or parameter; anything that is not a uuid names nothing
/// (`SYS.1003`).
pub fn resource_id(s: &str) -> ZsResult<String> {
    ims_id(s).ok_or_else(|| {
        ZsError::api(
            "SYS.1003",
            format!("invalid field[uuid], resource[uuid:{s}, type:ImageVO] not found"),
        )
    })
}

/// A caller-chosen `resourceUuid`: 32 hex digits (dashes stripped first), else SYS.1007.
pub fn resource_uuid(s: &str) -> ZsResult<String> {
    let stripped = s.replace('-', "");
    if !is_zs_uuid(&stripped) {
        return Err(ZsError::invalid(format!(
            "resourceUuid[{s}] is not a valid uuid: it must be 32 hexadecimal characters"
        )));
    }
    Ok(ims_id(&stripped).unwrap_or_default())
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `MMM d, yyyy h:mm:ss a` (Gson's default with US locale), in UTC.
pub fn date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (h24, ampm) = (t.hour(), if t.hour() < 12 { "AM" } else { "PM" });
    let h12 = match h24 % 12 {
        0 => 12,
        h => h,
    };
    format!(
        "{} {}, {} {}:{:02}:{:02} {}",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.year(),
        h12,
        t.minute(),
        t.second(),
        ampm
    )
}

/// Parses a date in ZStack's format (UTC), or RFC 3339.
pub fn parse_date(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(t);
    }
    let (date_part, rest) = s.split_once(", ")?;
    let (month, day) = date_part.split_once(' ')?;
    let month = MONTHS.iter().position(|m| *m == month)? as u8 + 1;
    let mut parts = rest.split(' ');
    let (year, clock, ampm) = (parts.next()?, parts.next()?, parts.next()?);
    let mut hms = clock.split(':');
    let (h, m, sec): (u8, u8, u8) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    let hour = match (ampm, h) {
        ("AM", 12) => 0,
        ("AM", h) if h < 12 => h,
        ("PM", 12) => 12,
        ("PM", h) if h < 12 => h + 12,
        _ => return None,
    };
    let d = time::Date::from_calendar_date(
        year.parse().ok()?,
        time::Month::try_from(month).ok()?,
        day.parse().ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(hour, m, sec).ok()?;
    Some(time::PrimitiveDateTime::new(d, t).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_map_both_ways() {
        let id = "7247cf56-9e2b-4104-8320-71822cf845c5";
        assert_eq!(zs_uuid(id), "7247cf569e2b4104832071822cf845c5");
        assert_eq!(ims_id("7247CF569E2B4104832071822CF845C5").unwrap(), id);
        assert_eq!(ims_id(id).unwrap(), id);
        assert!(ims_id("7247cf569e2b41048320").is_none());
        assert!(resource_uuid("xyz").is_err());
    }

    #[test]
    fn dates_use_the_gson_format() {
        let t = time::macros::datetime!(2017-01-06 03:51:16 UTC);
        assert_eq!(date(t), "Jan 6, 2017 3:51:16 AM");
        assert_eq!(parse_date("Jan 6, 2017 3:51:16 AM"), Some(t));
        let pm = time::macros::datetime!(2016-12-22 17:10:06 UTC);
        assert_eq!(date(pm), "Dec 22, 2016 5:10:06 PM");
        assert_eq!(parse_date(&date(pm)), Some(pm));
        let noon = time::macros::datetime!(2016-12-22 12:00:00 UTC);
        assert_eq!(date(noon), "Dec 22, 2016 12:00:00 PM");
        assert_eq!(parse_date("nope"), None);
    }
}
