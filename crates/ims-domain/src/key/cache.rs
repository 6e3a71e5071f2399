//! A short-lived cache of image data keys already unwrapped, so that reading an encrypted
//! image again (a download, then its ranges) does not ask an external KMS each time.
//!
//! It caches only the unwrapping, never the decision: every use still loads the key from
//! the catalog and checks that it is enabled first, so disabling or destroying a key takes
//! effect at once on every node. Entries are keyed by the wrapped key (ciphertext, bound to
//! its key and project), held zeroized, and dropped after their time to live.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ims_crypt::DataKey;
use zeroize::Zeroizing;

/// How long an unwrapped key is kept.
const TTL: Duration = Duration::from_secs(300);
/// The most keys kept; past it, expired ones go, then all.
const CAPACITY: usize = 4096;

/// An unwrapped key and when it was unwrapped.
type Entry = (Instant, Zeroizing<Vec<u8>>);

/// Data keys by their wrapped form.
#[derive(Default)]
pub(crate) struct DataKeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl DataKeyCache {
    /// The data key wrapped as `wrapped`, if it was unwrapped less than the TTL ago.
    pub(crate) fn get(&self, wrapped: &str) -> Option<DataKey> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(wrapped)
            .filter(|(at, _)| at.elapsed() < TTL)
            .and_then(|(_, key)| DataKey::from_slice(key))
    }

    /// Remembers `key`, the unwrapping of `wrapped`.
    pub(crate) fn put(&self, wrapped: &str, key: &DataKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            wrapped.to_string(),
            (Instant::now(), Zeroizing::new(key.expose_secret().to_vec())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_by_their_wrapping_and_stays_bounded() {
        let cache = DataKeyCache::default();
        let key = DataKey::generate().unwrap();
        assert!(cache.get("w1").is_none());
        cache.put("w1", &key);
        let got = cache.get("w1").unwrap();
        assert_eq!(got.expose_secret(), key.expose_secret());
        assert!(cache.get("w2").is_none());
        for i in 0..CAPACITY + 10 {
            cache.put(&format!("k{i}"), &key);
        }
        assert!(cache.entries.lock().unwrap().len() <= CAPACITY);
    }
}
