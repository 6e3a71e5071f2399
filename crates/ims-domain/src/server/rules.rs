//! What a new image server must satisfy before anything is made (Workspace's
//! `CreateImageServerReq` rules, kept here so that every door into servers checks them).

use std::collections::HashSet;

use super::{ImageRef, NewServer, RootVolumeSpec, ServerTag};
use crate::error::{Error, Result};

/// Disk types a root volume may name (all are the same volume store here).
pub const VOLUME_TYPES: &[&str] = &["ESSD", "SSD", "GPSSD", "SAS", "SATA"];
/// Where a source image may come from (recorded; any image the caller sees is accepted).
pub const IMAGE_TYPES: &[&str] = &["gold", "public", "private", "shared", "other"];
/// Root volume sizes in GB: a multiple of 10 within these bounds.
pub const ROOT_GB: std::ops::RangeInclusive<u32> = 10..=1024;
/// At most this many tags.
pub const MAX_TAGS: usize = 20;

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn within(field: &'static str, value: &str, min: usize, max: usize) -> Result<()> {
    let n = chars(value);
    if n < min || n > max {
        return Err(Error::field(
            field,
            format!("{field} must be {min} to {max} characters."),
        ));
    }
    Ok(())
}

fn optional(field: &'static str, value: Option<&str>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| within(field, v, 0, max))
}

/// A name of 1–64 letters, digits, CJK characters, `_`, `-` and spaces, neither starting
/// with a space nor only spaces. (Workspace's published pattern has no spaces, but the
/// seed's own example, "Image task 0508", has them: the seed wins.)
pub fn check_name(name: &str) -> Result<()> {
    let bad = || {
        Error::field(
            "name",
            "The name must be 1 to 64 letters, digits, Chinese characters, '_', '-' or \
             spaces, and must not start with a space.",
        )
    };
    if name.is_empty() || chars(name) > 64 || name.starts_with(' ') {
        return Err(bad());
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | ' ')
            || ('\u{4e00}'..='\u{9fa5}').contains(&c)
    };
    if name.chars().all(allowed) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A description of at most 255 characters.
pub fn check_description(description: &str) -> Result<()> {
    within("description", description, 0, 255)
}

fn check_image_ref(r: &ImageRef) -> Result<()> {
    within("image_ref.id", &r.id, 1, 128)?;
    if !IMAGE_TYPES.contains(&r.image_type.as_str()) {
        return Err(Error::field(
            "image_ref.image_type",
            format!("image_type must be one of {}.", IMAGE_TYPES.join(", ")),
        ));
    }
    for (field, value) in [
        ("image_ref.spce_code", &r.spce_code),
        ("image_ref.product_id", &r.product_id),
    ] {
        let v = value.as_deref().unwrap_or("");
        if chars(v) > 100 || v.chars().any(char::is_whitespace) {
            return Err(Error::field(
                field,
                format!("{field} must be at most 100 characters without spaces."),
            ));
        }
        if r.image_type == "gold" && v.is_empty() {
            return Err(Error::field(
                field,
                format!("{field} is required for a gold image."),
            ));
        }
    }
    Ok(())
}

fn check_root_volume(v: &RootVolumeSpec) -> Result<()> {
    if !VOLUME_TYPES.contains(&v.volume_type.as_str()) {
        return Err(Error::field(
            "root_volume.type",
            format!("type must be one of {}.", VOLUME_TYPES.join(", ")),
        ));
    }
    if !ROOT_GB.contains(&v.size) || !v.size.is_multiple_of(10) {
        return Err(Error::field(
            "root_volume.size",
            format!(
                "size must be a multiple of 10 from {} to {} (GB).",
                ROOT_GB.start(),
                ROOT_GB.end()
            ),
        ));
    }
    optional("root_volume.cluster_id", v.cluster_id.as_deref(), 255)
}

fn check_tags(tags: &[ServerTag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::field("tags", format!("At most {MAX_TAGS} tags.")));
    }
    let mut keys = HashSet::new();
    for t in tags {
        within("tags.key", &t.key, 1, 128)?;
        if t.key.starts_with("_sys_") || t.key.ends_with(char::is_whitespace) {
            return Err(Error::field(
                "tags.key",
                "A tag key may not start with _sys_ or end with a space.",
            ));
        }
        optional("tags.value", t.value.as_deref(), 255)?;
        if !keys.insert(t.key.as_str()) {
            return Err(Error::field(
                "tags",
                format!("Tag key {} is repeated.", t.key),
            ));
        }
    }
    Ok(())
}

/// Checks everything of `req` that needs no look-up: names and lengths, enums, the root
/// volume's size, the single authorised account, tags and the recorded settings.
pub fn check_new(req: &NewServer) -> Result<()> {
    check_name(&req.name)?;
    check_description(req.description.as_deref().unwrap_or(""))?;
    check_image_ref(&req.image_ref)?;
    check_root_volume(&req.root_volume)?;
    match req.authorize_accounts.as_slice() {
        [one] => {
            within("authorize_accounts.account", &one.account, 1, 128)?;
            optional("authorize_accounts.domain", one.domain.as_deref(), 64)?;
            if one.account_type != "USER" {
                return Err(Error::field(
                    "authorize_accounts.account_type",
                    "account_type must be USER (user groups are not supported).",
                ));
            }
        }
        _ => {
            return Err(Error::field(
                "authorize_accounts",
                "Exactly one authorised account is required.",
            ));
        }
    }
    check_tags(&req.tags)?;
    let s = &req.settings;
    within("vpc_id", &s.vpc_id, 1, 128)?;
    within("subnet_id", &s.subnet_id, 1, 128)?;
    within("product_id", &s.product_id, 1, 128)?;
    if let Some(flavor) = &s.flavor_id {
        within("flavor_id", flavor, 1, 255)?;
    }
    within("availability_zone", &s.availability_zone, 0, 255)?;
    optional("ou_name", s.ou_name.as_deref(), 255)?;
    optional(
        "enterprise_project_id",
        s.enterprise_project_id.as_deref(),
        64,
    )?;
    let apps: HashSet<&str> = s.attach_apps.iter().map(String::as_str).collect();
    if s.attach_apps.len() > 100 || apps.len() != s.attach_apps.len() {
        return Err(Error::field("attach_apps", "At most 100 distinct app ids."));
    }
    for app in &s.attach_apps {
        within("attach_apps", app, 1, 128)?;
    }
    if s.extra_session_type
        .as_deref()
        .is_some_and(|t| !matches!(t, "GPU" | "CPU"))
    {
        return Err(Error::field(
            "extra_session_type",
            "extra_session_type must be GPU or CPU.",
        ));
    }
    if s.extra_session_size
        .is_some_and(|n| !(1..=10_000).contains(&n))
    {
        return Err(Error::field(
            "extra_session_size",
            "extra_session_size must be 1 to 10000.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern_with_the_seeds_spaces() {
        for good in ["img-srv-1", "Image task 0508", "镜像_1", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            " lead",
            "   ",
            "semi;colon",
            "dot.name",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn root_volumes_are_multiples_of_ten_of_known_types() {
        let spec = |t: &str, size| RootVolumeSpec {
            volume_type: t.into(),
            size,
            cluster_id: None,
        };
        assert!(check_root_volume(&spec("SATA", 60)).is_ok());
        for (t, size) in [("SATA", 65), ("SATA", 0), ("SATA", 1030), ("HDD", 60)] {
            assert!(check_root_volume(&spec(t, size)).is_err(), "{t} {size}");
        }
    }

    #[test]
    fn gold_images_need_both_codes() {
        let mut r = ImageRef {
            id: "i".into(),
            image_type: "gold".into(),
            spce_code: Some("s".into()),
            product_id: None,
        };
        assert!(check_image_ref(&r).is_err());
        r.product_id = Some("p".into());
        assert!(check_image_ref(&r).is_ok());
        r.image_type = "marketplace".into();
        assert!(check_image_ref(&r).is_err());
    }
}
