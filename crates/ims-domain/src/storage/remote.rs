//! Remote sources: where `web-download` and Glance tasks fetch data from.

use async_trait::async_trait;

use super::ByteStream;
use crate::error::Result;
use crate::outbound::UrlFilter;

/// Fetches data from a URL for `web-download`.
#[async_trait]
pub trait RemoteSource: Send + Sync {
    /// Opens `url` after checking it, and every address it resolves to, against `filter`.
    /// Returns the body and its declared length.
    async fn open(&self, url: &str, filter: &UrlFilter) -> Result<(ByteStream, Option<u64>)>;
}
