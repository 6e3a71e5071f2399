//! Tag rules and tag use cases.

use crate::error::{Error, Result};

/// A tag is 1–255 characters. When it is written as `key=value` (the Huawei seed's
/// convention) the key must not be empty.
pub fn validate_tag(tag: &str) -> Result<()> {
    let n = tag.chars().count();
    if n == 0 || n > 255 {
        return Err(Error::invalid("Tags must be 1 to 255 characters"));
    }
    if tag.starts_with('=') {
        return Err(Error::invalid("A key=value tag needs a non-empty key"));
    }
    Ok(())
}
