//! Encryption at rest over any blob store: a writer that seals what it is given (IMSE v1,
//! `ims-crypt`) before the store sees it, and a reader that opens a sealed blob, or the
//! part of it a range asks for (only the segments covering the range are read).

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use ims_crypt::{DataKey, HEADER_LEN, Header, Layout, Sealer};

use super::{BlobStore, BlobWriter, ByteRange, ByteStream};
use crate::error::{Error, Result};

fn crypt_err(e: ims_crypt::CryptError) -> Error {
    Error::internal(format!("encrypted blob: {e}"))
}

/// A blob writer that encrypts before `inner` writes.
pub struct SealingWriter {
    inner: Box<dyn BlobWriter>,
    sealer: Sealer,
    header_written: bool,
}

impl SealingWriter {
    /// Seals under `key` into `inner`; `blob_id` is bound into the segment keys.
    pub fn new(inner: Box<dyn BlobWriter>, key: &DataKey, blob_id: [u8; 16]) -> Result<Self> {
        // Only the random salt can fail; nothing has been written yet.
        let header = Header::new(blob_id).map_err(crypt_err)?;
        Ok(SealingWriter {
            inner,
            sealer: Sealer::new(key, &header),
            header_written: false,
        })
    }

    async fn write_header(&mut self) -> Result<()> {
        if !self.header_written {
            self.inner.write(self.sealer.header()).await?;
            self.header_written = true;
        }
        Ok(())
    }
}

#[async_trait]
impl BlobWriter for SealingWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.write_header().await?;
        let sealed = self.sealer.push(&chunk).map_err(crypt_err)?;
        if sealed.is_empty() {
            return Ok(());
        }
        self.inner.write(sealed).await
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        if let Err(e) = self.write_header().await {
            self.inner.abort().await;
            return Err(e);
        }
        let SealingWriter {
            mut inner, sealer, ..
        } = *self;
        match sealer.finish().map_err(crypt_err) {
            Ok(last) => match inner.write(last).await {
                Ok(()) => inner.commit().await,
                Err(e) => {
                    inner.abort().await;
                    Err(e)
                }
            },
            Err(e) => {
                inner.abort().await;
                Err(e)
            }
        }
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
}

/// The plaintext of the sealed blob `key` (of `plaintext_len` bytes), or of `range` of
/// it. A segment that does not authenticate ends the stream with an `InvalidData` error
/// before any of its bytes.
pub async fn read_sealed(
    blobs: &dyn BlobStore,
    key: &str,
    data_key: &DataKey,
    plaintext_len: u64,
    range: Option<ByteRange>,
) -> Result<ByteStream> {
    let Some(range) = range else {
        let object = blobs.read(key, None).await?;
        let plain = ims_crypt::decrypt_object_stream(data_key, plaintext_len, None, object)
            .map_err(crypt_err)?;
        return Ok(Box::pin(plain));
    };
    let header = read_header(blobs, key).await?;
    let layout = Layout::new(plaintext_len, header.seg_log2()).map_err(crypt_err)?;
    let plan = layout.range(range.start, range.end).map_err(crypt_err)?;
    let part = ByteRange {
        start: plan.ciphertext.start,
        end: plan.ciphertext.end - 1,
    };
    let object = blobs.read(key, Some(part)).await?;
    let plain = ims_crypt::decrypt_stream(
        data_key,
        &header,
        plaintext_len,
        Some(range.start..=range.end),
        object,
    )
    .map_err(crypt_err)?;
    Ok(Box::pin(plain))
}

async fn read_header(blobs: &dyn BlobStore, key: &str) -> Result<Header> {
    let head = ByteRange {
        start: 0,
        end: HEADER_LEN as u64 - 1,
    };
    let mut bytes = BytesMut::with_capacity(HEADER_LEN);
    let mut stream = blobs.read(key, Some(head)).await?;
    while let Some(chunk) = stream.try_next().await.map_err(Error::internal)? {
        bytes.extend_from_slice(&chunk);
    }
    Header::decode(&bytes).map_err(crypt_err)
}
