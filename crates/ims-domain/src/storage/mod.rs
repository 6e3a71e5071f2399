//! Where bytes live: the blob store for image data, buckets that files are imported from
//! and exported to, remote sources for web-download, and the format converter.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::error::Result;

pub mod bucket;
pub mod remote;
pub mod sealed;
pub mod stores;

pub use stores::{ImageStore, Stores};

/// A stream of data chunks from a blob or a request body.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// An inclusive byte range `[start, end]` within a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Converts image data between disk formats. Implementations keep their scratch files
/// to themselves: the result is a stream, and nothing is left once it is dropped.
#[async_trait]
pub trait Converter: Send + Sync {
    /// Converts `data`, which must be `from`, into `to`.
    async fn convert(
        &self,
        data: ByteStream,
        from: ims_format::Format,
        to: ims_format::Format,
    ) -> Result<ByteStream>;
}

/// A committed blob, as a listing of the store shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its key.
    pub key: String,
    /// When it was written (the store's clock).
    pub written: time::OffsetDateTime,
}

/// Image data storage. Keys are opaque, slash-free names chosen by the domain.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts writing a blob; nothing is visible under `key` until `commit`.
    async fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>>;
    /// Streams a blob, or part of it.
    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream>;
    /// Deletes a blob; a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Lists every committed blob with when it was written (for orphan collection).
    async fn keys(&self) -> Result<Vec<StoredBlob>>;
    /// Removes partial writes left by a crashed process of this node.
    async fn recover(&self) -> Result<u64>;
    /// Removes partial writes of any node begun before `before`: those of a node that
    /// died and never started again (its own [`BlobStore::recover`] never runs).
    async fn abort_stale_writes(&self, before: time::OffsetDateTime) -> Result<u64>;
    /// Whether the store answers now: one quick request, no retries (health checks).
    async fn check(&self) -> Result<()>;
}

/// A blob being written.
#[async_trait]
pub trait BlobWriter: Send {
    /// Appends a chunk.
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    /// Makes the data durable and visible under its key.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Discards everything written.
    async fn abort(self: Box<Self>);
}
