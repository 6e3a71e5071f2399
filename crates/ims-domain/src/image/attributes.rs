//! The attribute rules shared by create and update: which names exist, which are
//! read-only or reserved, and how each value is typed and validated.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::huawei;
use crate::image::{Image, ImageStatus};
use crate::policy;
use crate::principal::Principal;
use crate::text;

/// Attributes computed by the service; setting one is `Forbidden`.
pub const READ_ONLY: &[&str] = &[
    "status",
    "created_at",
    "updated_at",
    "checksum",
    "size",
    "virtual_size",
    "os_hash_algo",
    "os_hash_value",
    "direct_url",
    "self",
    "file",
    "schema",
    "stores",
];
/// Properties only the service writes, recording where an image's data came from and
/// how it is encrypted: setting one is `Forbidden`, removing one changes nothing (as for
/// derived attributes). A volume is held while an importing image of its project names
/// it in `__data_origin`, so a caller must not be able to forge or erase that record.
pub const SERVICE_SET: &[&str] = &["__data_origin", "__system__cmkid", "__system_encrypted"];
/// Attributes reserved for internal use; setting one is `Forbidden`.
pub const RESERVED: &[&str] = &["location", "deleted", "deleted_at", "locations"];
/// Base attributes: always present, never removable.
pub const BASE: &[&str] = &[
    "id",
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "tags",
];

/// Limits on attribute values, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeLimits {
    /// Maximum tags per image (`image_tag_quota`).
    pub max_tags: usize,
    /// Maximum extra properties per image (`image_property_quota`).
    pub max_properties: usize,
    /// Maximum bytes (UTF-8) of one property value. Glance stores values in a
    /// 65,535-byte column.
    pub max_property_value: usize,
    /// Maximum bytes of all of an image's property names, values and tags together:
    /// every list page and every save carries them, so this bounds the cost of a row.
    pub max_metadata_bytes: usize,
}

/// The longest property name, in bytes (Glance's schema and column: 255).
pub const MAX_PROPERTY_NAME: usize = 255;

impl Default for AttributeLimits {
    fn default() -> Self {
        AttributeLimits {
            max_tags: 128,
            max_properties: 128,
            max_property_value: 65_535,
            max_metadata_bytes: 256 * 1024,
        }
    }
}

/// Whether the request is a create (id may be set) or an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `POST /v2/images` and its twins.
    Create,
    /// PATCH and its twins.
    Update,
}

/// Refuses names that callers can never write.
pub fn check_writable(name: &str, mode: Mode) -> Result<()> {
    if READ_ONLY.contains(&name)
        || SERVICE_SET.contains(&name)
        || (name == "id" && mode == Mode::Update)
    {
        return Err(Error::Forbidden(format!(
            "Attribute '{name}' is read-only."
        )));
    }
    if RESERVED.contains(&name) || name.starts_with("os_glance") {
        return Err(Error::Forbidden(format!("Attribute '{name}' is reserved.")));
    }
    if name.is_empty() || name.len() > MAX_PROPERTY_NAME {
        return Err(Error::invalid("Property names must be 1 to 255 characters"));
    }
    text::check("property name", name)
}

/// Sets one attribute on `image`, validating type and rules.
pub fn set(
    who: &Principal,
    image: &mut Image,
    name: &str,
    value: &Value,
    mode: Mode,
) -> Result<()> {
    check_writable(name, mode)?;
    if huawei::DERIVED.contains(&name) {
        // ims computes these; clients echo what they read, sometimes stale (openstacksdk
        // patches from the copy it fetched), so a written value is ignored, not refused.
        return Ok(());
    }
    match name {
        "id" => {} // handled by create
        "name" => image.name = opt_string("name", value, 1, 255)?,
        "visibility" => {
            let v = req_string("visibility", value)?.parse()?;
            policy::check_visibility(who, v)?;
            image.visibility = v;
        }
        "protected" => image.protected = req_bool(name, value)?,
        "os_hidden" => image.os_hidden = req_bool(name, value)?,
        "owner" => {
            let owner = opt_string("owner", value, 0, 255)?;
            if owner != image.owner && !who.is_admin() {
                return Err(Error::Forbidden(
                    "Owner can only be changed by an administrator.".into(),
                ));
            }
            image.owner = owner;
        }
        "disk_format" => set_format(image, "disk_format", value, mode)?,
        "container_format" => set_format(image, "container_format", value, mode)?,
        "min_disk" => image.min_disk = int_in(name, value, 0, 1024)?,
        "min_ram" => image.min_ram = int_in(name, value, 0, i64::MAX as u64)?,
        "tags" => {
            let tags = value
                .as_array()
                .ok_or_else(|| Error::invalid("tags must be an array of strings"))?
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Error::invalid("tags must be an array of strings"))
                })
                .collect::<Result<Vec<_>>>()?;
            image.tags.clear();
            for tag in tags {
                crate::image::service::tags::validate_tag(&tag)?;
                image.tags.insert(tag);
            }
        }
        _ => {
            let v = value.as_str().ok_or_else(|| {
                Error::invalid(format!("Value of property '{name}' must be a string"))
            })?;
            text::check_free_text("property value", v)?;
            image.properties.insert(name.to_string(), v.to_string());
        }
    }
    Ok(())
}

/// Removes an extra property; base attributes cannot be removed.
pub fn remove(image: &mut Image, name: &str) -> Result<()> {
    if SERVICE_SET.contains(&name) {
        return Ok(());
    }
    check_writable(name, Mode::Update)?;
    if huawei::DERIVED.contains(&name) {
        // Derived attributes are recomputed after every edit; removing one is a no-op,
        // so openstacksdk's "remove what I did not send" patches keep working.
        return Ok(());
    }
    if BASE.contains(&name) {
        return Err(Error::Forbidden(format!(
            "Property '{name}' may not be removed."
        )));
    }
    if image.properties.remove(name).is_none() {
        return Err(Error::Conflict(format!("Property {name} does not exist.")));
    }
    Ok(())
}

/// Whether `name` currently has a value (for JSON-patch `replace` semantics).
pub fn exists(image: &Image, name: &str) -> bool {
    BASE.contains(&name)
        || READ_ONLY.contains(&name)
        || RESERVED.contains(&name)
        || image.properties.contains_key(name)
}

/// Checks tags and properties against the limits, whichever path set them (every
/// dialect's create, update, import and copy ends in `finish_edit`, which calls this):
/// each tag is a valid tag, each property name and value within its length
/// (`InvalidInput`/`InvalidField`), and the counts and the total size within the
/// per-image limits (`QuotaExceeded`).
pub fn check_limits(image: &Image, limits: AttributeLimits) -> Result<()> {
    for tag in &image.tags {
        crate::image::service::tags::validate_stored_tag(tag)?;
    }
    let mut bytes = image.tags.iter().map(String::len).sum::<usize>();
    for (name, value) in &image.properties {
        if name.is_empty() || name.len() > MAX_PROPERTY_NAME {
            return Err(Error::invalid(format!(
                "Property names must be 1 to {MAX_PROPERTY_NAME} bytes"
            )));
        }
        if value.len() > limits.max_property_value {
            return Err(Error::field(
                property_field(name),
                format!(
                    "The value of property '{}' is {} bytes long, at most {} are allowed",
                    name,
                    value.len(),
                    limits.max_property_value
                ),
            ));
        }
        bytes += name.len() + value.len();
    }
    if bytes > limits.max_metadata_bytes {
        return Err(Error::QuotaExceeded(format!(
            "The image's properties and tags take {bytes} bytes, at most {} are allowed",
            limits.max_metadata_bytes
        )));
    }
    if image.tags.len() > limits.max_tags {
        return Err(Error::QuotaExceeded(format!(
            "Maximum number of tags exceeded: {} > {}",
            image.tags.len(),
            limits.max_tags
        )));
    }
    let user_props = image
        .properties
        .keys()
        .filter(|k| !k.starts_with("__"))
        .count();
    if user_props > limits.max_properties {
        return Err(Error::QuotaExceeded(format!(
            "Maximum number of properties exceeded: {user_props} > {}",
            limits.max_properties
        )));
    }
    Ok(())
}

/// The field a property is reported as, for dialects with per-field codes: Huawei's
/// `__description` is the IMS `description`.
fn property_field(name: &str) -> &'static str {
    match name {
        "__description" => "description",
        _ => "property value",
    }
}

fn set_format(image: &mut Image, name: &'static str, value: &Value, mode: Mode) -> Result<()> {
    if mode == Mode::Update && !matches!(image.status, ImageStatus::Queued | ImageStatus::Importing)
    {
        return Err(Error::Forbidden(format!(
            "Attribute {name} can be only replaced for a queued image."
        )));
    }
    let s = match value {
        Value::Null => None,
        _ => Some(req_string(name, value)?),
    };
    if name == "disk_format" {
        image.disk_format = s.map(str::parse).transpose()?;
    } else {
        image.container_format = s.map(str::parse).transpose()?;
    }
    Ok(())
}

fn req_string<'a>(name: &'static str, value: &'a Value) -> Result<&'a str> {
    let s = value
        .as_str()
        .ok_or_else(|| Error::invalid(format!("{name}: {value} is not of type 'string'")))?;
    text::check(name, s)?;
    Ok(s)
}

fn opt_string(name: &'static str, value: &Value, min: usize, max: usize) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            text::check(name, s)?;
            let n = s.chars().count();
            if n < min || n > max {
                return Err(Error::invalid(format!(
                    "{name} must be {min} to {max} characters"
                )));
            }
            Ok(Some(s.clone()))
        }
        _ => Err(Error::invalid(format!(
            "{name}: {value} is not of type 'string'"
        ))),
    }
}

fn req_bool(name: &str, value: &Value) -> Result<bool> {
    value
        .as_bool()
        .ok_or_else(|| Error::invalid(format!("{name}: {value} is not of type 'boolean'")))
}

fn int_in(name: &str, value: &Value, min: u64, max: u64) -> Result<u64> {
    let n = value
        .as_u64()
        .or_else(|| value.as_i64().map(|_| u64::MAX))
        .ok_or_else(|| Error::invalid(format!("{name}: {value} is not of type 'integer'")))?;
    if n < min || n > max {
        return Err(Error::invalid(format!(
            "{name} must be between {min} and {max}"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageId;

    fn image_with(properties: &[(&str, usize)]) -> Image {
        let mut image = Image::new(
            ImageId::new(),
            Some("p".into()),
            time::OffsetDateTime::now_utc(),
        );
        for (name, len) in properties {
            image.properties.insert((*name).into(), "x".repeat(*len));
        }
        image
    }

    #[test]
    fn where_the_data_came_from_cannot_be_forged_or_erased() {
        for mode in [Mode::Create, Mode::Update] {
            assert!(matches!(
                check_writable("__data_origin", mode),
                Err(Error::Forbidden(_))
            ));
        }
        let mut image = image_with(&[("__data_origin", 3)]);
        remove(&mut image, "__data_origin").unwrap();
        assert_eq!(image.properties["__data_origin"], "xxx");
    }

    #[test]
    fn property_values_and_the_image_budget_are_limited() {
        let limits = AttributeLimits::default();
        assert!(check_limits(&image_with(&[("a", 65_535)]), limits).is_ok());
        assert!(matches!(
            check_limits(&image_with(&[("a", 65_536)]), limits),
            Err(Error::InvalidField { .. })
        ));
        let five: Vec<(String, usize)> = (0..5).map(|n| (format!("p{n}"), 60_000)).collect();
        let five: Vec<(&str, usize)> = five.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        assert!(matches!(
            check_limits(&image_with(&five), limits),
            Err(Error::QuotaExceeded(_))
        ));
        let long_name = "n".repeat(MAX_PROPERTY_NAME + 1);
        assert!(check_limits(&image_with(&[(long_name.as_str(), 1)]), limits).is_err());
    }
}
