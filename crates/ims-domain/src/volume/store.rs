//! The port volume data lives behind. Volumes are block devices, not blobs: they are
//! created, grown and read in place. Locations are the adapter's opaque names; a backing
//! blob is named by its image-store key, and the adapter alone turns it into a file.

use async_trait::async_trait;

use super::{Backing, VolumeFormat, VolumeId};
use crate::error::Result;
use crate::storage::ByteStream;

/// A volume's whole content as one stream.
pub struct FlatData {
    /// The bytes, in the volume's format, with nothing referring elsewhere.
    pub stream: ByteStream,
    /// How many bytes the stream holds.
    pub size: u64,
}

/// How much room the store has, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCapacity {
    /// The size of the filesystem (or backend) volumes live on.
    pub total: u64,
    /// What is still free for volumes.
    pub available: u64,
}

/// Where volumes' data lives.
#[async_trait]
pub trait VolumeStore: Send + Sync {
    /// The location the volume `id` in `format` gets: fixed in advance, so a volume
    /// whose create was cut short can still have its data removed.
    fn location_of(&self, id: VolumeId, format: VolumeFormat) -> String;
    /// Makes an empty (sparse) volume of `size` bytes; returns its location.
    async fn create_blank(&self, id: VolumeId, format: VolumeFormat, size: u64) -> Result<String>;
    /// Whether volumes can be overlays on image blobs here (the image store is a local
    /// directory). When not, a volume from an image is a copy of its data.
    fn overlays_on_images(&self) -> bool;
    /// Makes a qcow2 overlay of `size` bytes on `backing`, without copying it; returns
    /// its location. The backing file is named by the adapter and passed with its format.
    async fn create_overlay(&self, id: VolumeId, size: u64, backing: &Backing) -> Result<String>;
    /// Makes a qcow2 volume of `size` bytes holding a copy of `content` (an image's data,
    /// in the clear, laid out as `format`); returns its location. For an image a volume
    /// cannot be an overlay on (an encrypted one, whose blob qemu cannot read, or any
    /// image when [`VolumeStore::overlays_on_images`] is false). Nothing
    /// of a copy that fails is left.
    async fn create_from_content(
        &self,
        id: VolumeId,
        size: u64,
        content: FlatData,
        format: VolumeFormat,
    ) -> Result<String>;
    /// Grows the volume at `location` to `size` bytes (never shrinks).
    async fn resize(
        &self,
        location: &str,
        format: VolumeFormat,
        backing: Option<&Backing>,
        size: u64,
    ) -> Result<()>;
    /// Removes the volume's data; a missing one is not an error.
    async fn delete(&self, location: &str) -> Result<()>;
    /// Bytes the volume's data occupies (its own, without its backing).
    async fn actual_size(&self, location: &str) -> Result<u64>;
    /// The room of the store.
    async fn capacity(&self) -> Result<StoreCapacity>;
    /// The volume's content with its backing folded in, in `format`: what a new image
    /// made from it holds. Nothing the stream reads from outlives it.
    async fn read_flat(
        &self,
        location: &str,
        format: VolumeFormat,
        backing: Option<&Backing>,
    ) -> Result<FlatData>;
}
