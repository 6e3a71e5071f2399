//! Encrypted images: data sealed at rest under a data key that a KMS key (the image's
//! `cmk_id`) wraps. Every byte of such an image goes into the store through
//! [`ImageService::blob_writer`] and comes out through [`ImageService::read_data`], so
//! no path writes or reads its blob in the clear, and each read checks that the key is
//! still enabled.

use crate::error::{Error, Result};
use crate::image::Image;
use crate::image::service::metadata::ImageService;
use crate::storage::sealed::{SealingWriter, read_sealed};
use crate::storage::{BlobWriter, ByteRange, ByteStream};

/// Huawei's attribute naming an encrypted image's KMS key.
pub const CMK_ATTRIBUTE: &str = "__system__cmkid";
/// Huawei's attribute marking an image encrypted (`"1"`).
pub const ENCRYPTED_ATTRIBUTE: &str = "__system_encrypted";

/// An encrypted image stays with its project, as in Huawei IMS: its data key opens only
/// under the owner's key, and ims has no KMS grants to let another project use that key.
/// So it can be neither shared with members nor made public or community.
pub(crate) fn check_shareable(image: &Image) -> Result<()> {
    if image.data.sealing.is_some() {
        return Err(Error::field(
            "encrypted_image",
            "An encrypted image cannot be shared.",
        ));
    }
    Ok(())
}

impl ImageService {
    pub(crate) fn key_service(&self) -> Result<&crate::key::KeyService> {
        self.keys
            .as_deref()
            .ok_or_else(|| Error::NotSupported("Encrypted images are not offered.".into()))
    }

    /// Makes `image` (not yet holding data) an encrypted image under its owner's KMS key
    /// `cmk_id`, which must exist and be enabled.
    pub(crate) async fn encrypt_under(&self, image: &mut Image, cmk_id: &str) -> Result<()> {
        let owner = image.owner.clone().unwrap_or_default();
        let (_, sealing) = self.key_service()?.new_image_key(&owner, cmk_id).await?;
        image
            .properties
            .insert(CMK_ATTRIBUTE.into(), sealing.key_id.clone());
        image
            .properties
            .insert(ENCRYPTED_ATTRIBUTE.into(), "1".into());
        image.data.sealing = Some(sealing);
        Ok(())
    }

    /// Checks that `image`'s data can be read now: for an encrypted image, that its
    /// key is enabled (`KeyUnusable` otherwise), before anything is made from it.
    pub(crate) async fn check_readable(&self, image: &Image) -> Result<()> {
        if let Some(sealing) = &image.data.sealing {
            let owner = image.owner.as_deref().unwrap_or_default();
            self.key_service()?
                .image_key(owner, &sealing.key_id)
                .await?;
        }
        Ok(())
    }

    /// A writer for `image`'s new blob `key` in `store`: sealing for an encrypted image.
    pub(crate) async fn blob_writer(
        &self,
        image: &Image,
        key: &str,
        store: &crate::storage::ImageStore,
    ) -> Result<Box<dyn BlobWriter>> {
        let Some(sealing) = &image.data.sealing else {
            return store.blobs.writer(key).await;
        };
        let owner = image.owner.as_deref().unwrap_or_default();
        let data_key = self.key_service()?.open_image_key(owner, sealing).await?;
        let writer = store.blobs.writer(key).await?;
        Ok(Box::new(SealingWriter::new(
            writer,
            &data_key,
            *image.id.0.as_bytes(),
        )?))
    }

    /// `image`'s data (or `range` of it) in the clear; for an encrypted image only while
    /// its key is enabled. Read from the heaviest store holding it that answers: a store
    /// that fails to open the blob is passed over for the next.
    pub(crate) async fn read_data(
        &self,
        image: &Image,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        let location = image
            .data
            .location
            .as_deref()
            .ok_or_else(|| Error::not_found(crate::Entity::ImageData, image.id.to_string()))?;
        let data_key = match &image.data.sealing {
            Some(sealing) => {
                let owner = image.owner.as_deref().unwrap_or_default();
                Some(self.key_service()?.open_image_key(owner, sealing).await?)
            }
            None => None,
        };
        let mut last = None;
        for store in self.stores.holding(&image.data.stores) {
            let read = match &data_key {
                None => store.blobs.read(location, range).await,
                Some(data_key) => {
                    let size = image.data.size.unwrap_or(0);
                    read_sealed(store.blobs.as_ref(), location, data_key, size, range).await
                }
            };
            match read {
                Err(e) => {
                    tracing::warn!(image.id = %image.id, store = %store.id, error = %e, "could not read from an image store; trying the next one holding the image");
                    last = Some(e);
                }
                done => return done,
            }
        }
        Err(last
            .unwrap_or_else(|| Error::not_found(crate::Entity::ImageData, image.id.to_string())))
    }
}
