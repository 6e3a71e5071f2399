//! Huawei's `__`-prefixed image attributes: the OS version list and the attributes
//! derived from it, kept here once so every dialect shows the same values.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::image::{Image, Visibility};

/// The OS version used when a caller names none (seed 001).
pub const DEFAULT_OS_VERSION: &str = "Other Linux(64 bit)";

/// One entry of the OS version list (`GET /v1/cloudimages/os_version`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OsVersion {
    /// `__platform`, e.g. `Ubuntu`.
    pub platform: String,
    /// `__os_version`, e.g. `Ubuntu 14.04 server 64bit`.
    pub os_version: String,
    /// `__os_bit`: 32 or 64.
    pub os_bit: u8,
    /// `__os_type`: `Linux`, `Windows` or `Other`.
    pub os_type: String,
}

/// The OS version list, loaded once from the data file compiled into the binary.
pub fn os_versions() -> &'static [OsVersion] {
    static LIST: OnceLock<Vec<OsVersion>> = OnceLock::new();
    LIST.get_or_init(|| {
        serde_json::from_str(include_str!("../../data/os_versions.json"))
            .expect("data/os_versions.json is valid and checked by a unit test")
    })
}

/// Derives platform, type and bitness for an OS version, listed or not.
pub fn describe_os(os_version: &str) -> OsVersion {
    if let Some(known) = os_versions()
        .iter()
        .find(|v| v.os_version.eq_ignore_ascii_case(os_version))
    {
        return known.clone();
    }
    let lower = os_version.to_ascii_lowercase();
    let platform = os_versions()
        .iter()
        .map(|v| v.platform.as_str())
        .filter(|p| *p != "Other" && lower.starts_with(&p.to_ascii_lowercase()))
        .max_by_key(|p| p.len())
        .unwrap_or("Other");
    let os_type = match platform {
        "Windows" => "Windows",
        "Other" if !lower.contains("linux") => "Other",
        _ => "Linux",
    };
    let os_bit = if lower.contains("32bit") || lower.contains("32 bit") {
        32
    } else {
        64
    };
    OsVersion {
        platform: platform.to_string(),
        os_version: os_version.to_string(),
        os_bit,
        os_type: os_type.to_string(),
    }
}

/// Attributes ims maintains itself; callers may not set them on create.
pub const DERIVED: &[&str] = &[
    "__os_type",
    "__platform",
    "__os_bit",
    "__imagetype",
    "__isregistered",
    "__image_source_type",
    "__image_size",
];

/// Attributes ims fills with a default when the caller sets none.
pub const DEFAULTED: &[&str] = &["__os_version", "__root_origin", "virtual_env_type"];

/// Validates the caller-settable `__` attributes of an image.
pub fn validate(image: &Image) -> Result<()> {
    if let Some(v) = image.properties.get("__os_version")
        && (v.is_empty() || v.chars().count() > 255)
    {
        return Err(Error::invalid("__os_version must be 1 to 255 characters"));
    }
    if let Some(d) = image.properties.get("__description")
        && (d.chars().count() > 1024 || d.contains(['\r', '\n', '<', '>']))
    {
        return Err(Error::invalid(
            "__description must be at most 1024 characters without line breaks, '<' or '>'",
        ));
    }
    Ok(())
}

/// Recomputes the derived `__` attributes from the image's current state.
pub fn refresh(image: &mut Image) {
    let props = &mut image.properties;
    let os = describe_os(
        props
            .get("__os_version")
            .map(String::as_str)
            .unwrap_or(DEFAULT_OS_VERSION),
    );
    props.insert("__os_version".into(), os.os_version.clone());
    props.insert("__platform".into(), os.platform);
    props.insert("__os_type".into(), os.os_type);
    props.insert("__os_bit".into(), os.os_bit.to_string());
    let image_type = match image.visibility {
        Visibility::Public => "gold",
        Visibility::Shared => "shared",
        Visibility::Private | Visibility::Community => "private",
    };
    props.insert("__imagetype".into(), image_type.into());
    props.insert("__isregistered".into(), "true".into());
    props.insert("__image_source_type".into(), "uds".into());
    props.insert(
        "__image_size".into(),
        image.data.size.unwrap_or(0).to_string(),
    );
    set_default(props, "__root_origin", "file");
    set_default(props, "virtual_env_type", "FusionCompute");
}

fn set_default(props: &mut BTreeMap<String, String>, key: &str, value: &str) {
    props
        .entry(key.to_string())
        .or_insert_with(|| value.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_loads() {
        assert!(os_versions().len() > 20);
    }

    #[test]
    fn seed_example_derives_ubuntu_linux_64() {
        let os = describe_os("Ubuntu 14.04 server 64bit");
        assert_eq!(
            (os.platform.as_str(), os.os_type.as_str(), os.os_bit),
            ("Ubuntu", "Linux", 64)
        );
        let os = describe_os("Other Linux(64 bit)");
        assert_eq!(
            (os.platform.as_str(), os.os_type.as_str(), os.os_bit),
            ("Other", "Linux", 64)
        );
        let os = describe_os("Windows Server 2008 R2 32bit");
        assert_eq!(
            (os.platform.as_str(), os.os_type.as_str(), os.os_bit),
            ("Windows", "Windows", 32)
        );
    }
}
