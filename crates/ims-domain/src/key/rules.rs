//! The rules of key requests: alias and description, waiting periods, data-key lengths.
//! Each failure names its field, so the KMS dialect can give each its own code.

use crate::error::{Error, Result};

/// The only key spec images need, and the only one ims makes.
pub const AES_256: &str = "AES_256";
/// The only key usage ims makes.
pub const ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";
/// Aliases of the keys the service makes for itself end with this.
pub const DEFAULT_SUFFIX: &str = "/default";
/// Waiting period before a key scheduled for deletion is destroyed, in days.
pub const PENDING_DAYS: std::ops::RangeInclusive<u32> = 7..=1096;
/// Data-key lengths in bits.
pub const DATAKEY_BITS: std::ops::RangeInclusive<u32> = 8..=8192;
/// Largest additional authenticated data, in bytes.
pub const MAX_AAD: usize = 128;

/// Checks a user's alias: 1–255 of `[a-zA-Z0-9:/_-]`, not ending `/default`.
pub fn check_alias(alias: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-');
    if alias.is_empty() || alias.len() > 255 || !alias.chars().all(allowed) {
        return Err(Error::field(
            "key_alias",
            "The alias must be 1 to 255 letters, digits, ':', '/', '_' or '-'.",
        ));
    }
    if alias.ends_with(DEFAULT_SUFFIX) {
        return Err(Error::field(
            "key_alias",
            "Aliases ending with /default are reserved for the service's own keys.",
        ));
    }
    Ok(())
}

/// Checks a description: at most 255 characters.
pub fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > 255 {
        return Err(Error::field(
            "key_description",
            "The description is longer than 255 characters.",
        ));
    }
    Ok(())
}

/// Checks a waiting period in days.
pub fn check_pending_days(days: u32) -> Result<()> {
    if !PENDING_DAYS.contains(&days) {
        return Err(Error::field(
            "pending_days",
            "pending_days must be between 7 and 1096.",
        ));
    }
    Ok(())
}

/// The byte length of a data key asked for by `datakey_length` (bits, wins) or
/// `key_spec` (`AES_256`, `AES_128`); 32 bytes when neither is given.
pub fn datakey_bytes(bits: Option<u32>, spec: Option<&str>) -> Result<usize> {
    if let Some(bits) = bits {
        if !DATAKEY_BITS.contains(&bits) || bits % 8 != 0 {
            return Err(Error::field(
                "datakey_length",
                "datakey_length must be a multiple of 8 between 8 and 8192 bits.",
            ));
        }
        return Ok(bits as usize / 8);
    }
    match spec {
        None | Some("AES_256") => Ok(32),
        Some("AES_128") => Ok(16),
        Some(_) => Err(Error::field(
            "datakey_spec",
            "The data key spec must be AES_256 or AES_128.",
        )),
    }
}

/// Checks additional authenticated data: at most 128 bytes.
pub fn check_aad(aad: &[u8]) -> Result<()> {
    if aad.len() > MAX_AAD {
        return Err(Error::field(
            "additional_authenticated_data",
            "The additional authenticated data is longer than 128 bytes.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_descriptions_days_and_lengths() {
        assert!(check_alias("ims-test").is_ok());
        assert!(check_alias("a:b/c_d-e").is_ok());
        assert!(check_alias(&"a".repeat(255)).is_ok());
        for bad in ["", "has space", "ümlaut", "x/default", &"a".repeat(256)] {
            assert!(check_alias(bad).is_err(), "{bad}");
        }
        assert!(check_description(&"d".repeat(255)).is_ok());
        assert!(check_description(&"d".repeat(256)).is_err());
        assert!(check_pending_days(7).is_ok() && check_pending_days(1096).is_ok());
        assert!(check_pending_days(6).is_err() && check_pending_days(1097).is_err());
        assert_eq!(datakey_bytes(Some(512), Some("AES_128")).unwrap(), 64);
        assert_eq!(datakey_bytes(None, Some("AES_128")).unwrap(), 16);
        assert_eq!(datakey_bytes(None, None).unwrap(), 32);
        assert!(datakey_bytes(Some(7), None).is_err());
        assert!(datakey_bytes(Some(12), None).is_err());
        assert!(datakey_bytes(Some(8200), None).is_err());
        assert!(datakey_bytes(None, Some("SM4")).is_err());
        assert!(check_aad(&[0; 128]).is_ok() && check_aad(&[0; 129]).is_err());
    }
}
