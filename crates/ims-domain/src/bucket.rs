//! Objects in buckets, named the way Huawei IMS names them: `bucket:object`.
//!
//! Every rule about what a name may be lives here, so no adapter (a directory per bucket,
//! or S3/OBS) ever sees a name that could leave its bucket.

use crate::error::{Error, Result};

/// The longest object key accepted (S3's and OBS's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// A validated reference to one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// The bucket: 3–63 of `a-z 0-9 . -`, starting and ending with a letter or digit.
    pub bucket: String,
    /// The key: relative, `/`-separated, without empty, `.` or `..` segments, NUL or `\`.
    pub key: String,
}

impl ObjectRef {
    /// Parses `bucket:object`, split on the first `:`.
    pub fn parse(url: &str) -> Result<Self> {
        let (bucket, key) = url
            .split_once(':')
            .ok_or_else(|| Error::invalid(format!("{url:?} is not of the form bucket:object")))?;
        Ok(ObjectRef {
            bucket: check_bucket(bucket)?.to_string(),
            key: check_key(key)?.to_string(),
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.bucket, self.key)
    }
}

/// Checks a bucket name.
pub fn check_bucket(name: &str) -> Result<&str> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && !name.contains("..");
    if ok {
        Ok(name)
    } else {
        Err(Error::invalid(format!(
            "{name:?} is not a valid bucket name"
        )))
    }
}

/// Checks an object key: it can never name anything outside its bucket.
pub fn check_key(key: &str) -> Result<&str> {
    let bad = key.is_empty()
        || key.len() > MAX_KEY_BYTES
        || key.starts_with('/')
        || key.contains('\0')
        || key.contains('\\')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        Err(Error::invalid(format!(
            "{key:?} is not a valid object name"
        )))
    } else {
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_the_first_colon() {
        let o = ObjectRef::parse("image-test:dir/centos:7.qcow2").unwrap();
        assert_eq!(
            (o.bucket.as_str(), o.key.as_str()),
            ("image-test", "dir/centos:7.qcow2")
        );
        assert_eq!(o.to_string(), "image-test:dir/centos:7.qcow2");
    }

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in [
            "b:../etc/passwd",
            "bkt:a/../../x",
            "bkt:/etc/passwd",
            "bkt:a\0b",
            "bkt:a\\..\\b",
            "bkt:a//b",
            "bkt:./a",
            "bkt:",
            "no-colon",
            "..:x",
            "Bucket:x",
            "ab:x",
            "-bkt:x",
            "b/kt:x",
        ] {
            assert!(ObjectRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ObjectRef::parse(&format!("bkt:{}", "a".repeat(1025))).is_err());
        assert!(ObjectRef::parse("my.bucket-1:a/b/c.qcow2").is_ok());
    }
}
