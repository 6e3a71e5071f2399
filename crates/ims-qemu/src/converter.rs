//! The domain's `Converter` port on top of [`QemuImg`]: the input is spooled to a
//! scratch file, converted, and the output streamed back from a file that is already
//! unlinked, so no scratch data outlives the stream, whatever happens to it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use ims_domain::ports::{ByteStream, Converter};
use ims_domain::{Error, Result};
use ims_format::Format;
use tokio::io::AsyncWriteExt;

use crate::{Conversion, ConvertError, QemuImg};

/// Conversions through qemu-img, with scratch files under one directory.
#[derive(Debug, Clone)]
pub struct QemuConverter {
    qemu: QemuImg,
    scratch: PathBuf,
}

impl QemuConverter {
    /// A converter putting its scratch files in `scratch`, which must be this process's
    /// alone. Nothing is created or removed until a conversion runs: leftovers of a
    /// previous run are for its owner to remove, with [`empty_scratch`].
    pub fn new(qemu: QemuImg, scratch: impl Into<PathBuf>) -> Self {
        QemuConverter {
            qemu,
            scratch: scratch.into(),
        }
    }

    /// A new scratch file's path (its directory created if missing).
    fn scratch_file(&self, what: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.scratch).map_err(Error::internal)?;
        Ok(self
            .scratch
            .join(format!("{what}-{}", uuid::Uuid::new_v4().simple())))
    }
}

/// Removes everything in `scratch` (a previous run's leftovers) and creates it empty. Only
/// the process that owns the directory may call this, before it converts anything: any
/// other caller would cut the owner's running conversions short.
pub fn empty_scratch(scratch: &Path) -> Result<()> {
    match std::fs::remove_dir_all(scratch) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::internal(e)),
    }
    std::fs::create_dir_all(scratch).map_err(Error::internal)
}

/// Removes a scratch file when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn domain_error(e: ConvertError) -> Error {
    match e {
        ConvertError::Refused(reason) => Error::UnsupportedMedia(reason),
        ConvertError::Unsupported(f) => {
            Error::NotSupported(format!("Conversion to {f} is not supported."))
        }
        other => Error::internal(other),
    }
}

#[async_trait]
impl Converter for QemuConverter {
    async fn convert(&self, mut data: ByteStream, from: Format, to: Format) -> Result<ByteStream> {
        let input = Scratch(self.scratch_file("in")?);
        let mut file = tokio::fs::File::create(&input.0)
            .await
            .map_err(Error::internal)?;
        while let Some(chunk) = data.next().await {
            let chunk =
                chunk.map_err(|e| Error::Unavailable(format!("reading the image data: {e}")))?;
            file.write_all(&chunk).await.map_err(Error::internal)?;
        }
        file.flush().await.map_err(Error::internal)?;
        drop(file);
        let output = Scratch(self.scratch_file("out")?);
        let job = Conversion {
            input: input.0.clone(),
            input_format: from,
            output: output.0.clone(),
            output_format: to,
        };
        self.qemu
            .convert(&job, |_| {})
            .await
            .map_err(domain_error)?;
        drop(input);
        // Open, then unlink: the data stays readable until the stream is dropped.
        let file = std::fs::File::open(&output.0).map_err(Error::internal)?;
        drop(output);
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            tokio::fs::File::from_std(file),
            1 << 20,
        )))
    }
}
