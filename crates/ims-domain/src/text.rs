//! The one rule for text that enters the domain: no NUL and no other control characters.
//!
//! Why: PostgreSQL refuses a NUL in any text value (SQLSTATE 22021) while SQLite stores it,
//! so without this rule the same request is a 500 on one catalog and a silent success on
//! the other. Control characters in names also end up in logs, terminals and CSV exports
//! of other tools. Glance and Keystone have no use for them, and Huawei IMS forbids them in
//! names already, so every dialect refuses them with its own 400.
//!
//! What counts: Unicode category Cc (U+0000–U+001F, U+007F–U+009F), which is what
//! [`char::is_control`] tests. Identifiers (names, keys, tags, member ids, filter values,
//! passwords) get [`check`]; free text a person writes (a Glance property value, a
//! Keystone project description) gets [`check_free_text`], which also accepts tab, line
//! feed and carriage return, because multi-line property values are legitimate Glance
//! usage (e.g. a `description` or `cloud-init` note) and PostgreSQL stores them fine.

use crate::error::{Error, Result};
use crate::image::Image;

/// Refuses `value` if it contains any control character. `field` names the input in the
/// domain's vocabulary (`name`, `tags`, `member`, …) for dialects with per-field codes.
pub fn check(field: &'static str, value: &str) -> Result<()> {
    refuse_if(field, value, |c| c.is_control())
}

/// Like [`check`], but tab, line feed and carriage return are allowed: for free text.
pub fn check_free_text(field: &'static str, value: &str) -> Result<()> {
    refuse_if(field, value, |c| {
        c.is_control() && !matches!(c, '\t' | '\n' | '\r')
    })
}

/// Checks every value of an optional input.
pub fn check_opt(field: &'static str, value: Option<&str>) -> Result<()> {
    value.map_or(Ok(()), |v| check(field, v))
}

/// Checks every caller-written text of an image before it is stored: the last gate for
/// the paths that set attributes without going through [`crate::image::attributes`]
/// (Huawei IMS creates, copies, imports).
pub fn check_image(image: &Image) -> Result<()> {
    check_opt("name", image.name.as_deref())?;
    check_opt("owner", image.owner.as_deref())?;
    for tag in &image.tags {
        check("tags", tag)?;
    }
    for (key, value) in &image.properties {
        check("property name", key)?;
        check_free_text(property_field(key), value)?;
    }
    Ok(())
}

/// The field a property is reported as: Huawei's `__description` is the IMS
/// `description` (with its own error code); the rest are property values.
fn property_field(key: &str) -> &'static str {
    match key {
        "__description" => "description",
        "__os_version" => "os_version",
        _ => "property value",
    }
}

fn refuse_if(field: &'static str, value: &str, bad: impl Fn(char) -> bool) -> Result<()> {
    match value.chars().find(|c| bad(*c)) {
        None => Ok(()),
        Some(c) => Err(Error::field(
            field,
            format!(
                "Invalid {field}: control characters are not allowed (found U+{:04X})",
                u32::from(c)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_and_printable_text_is_not() {
        for ok in ["", "ubuntu 24.04", "名前", "emoji 🙂", "a=b", "tab-free"] {
            assert!(check("name", ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "\0",
            "a\0b",
            "x\u{1}",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}",
            "tab\t",
        ] {
            let err = check("name", bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidField { field: "name", message } if message.contains("control characters")),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn free_text_allows_line_breaks_and_tabs_only() {
        assert!(check_free_text("description", "line 1\r\nline\t2\n").is_ok());
        assert!(check_free_text("description", "nul\0").is_err());
        assert!(check_free_text("description", "esc\u{1b}[31m").is_err());
        assert!(check_opt("name", None).is_ok());
        assert!(check_opt("name", Some("a\0")).is_err());
    }

    #[test]
    fn the_message_names_the_code_point_not_the_raw_character() {
        let msg = check("tags", "a\0").unwrap_err().to_string();
        assert!(msg.contains("U+0000"), "{msg}");
        assert!(!msg.contains('\0'));
    }
}
