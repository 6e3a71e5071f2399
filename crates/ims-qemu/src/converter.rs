//! The domain's `Converter` port on top of [`QemuImg`]: the input is spooled to a
//! scratch file, converted, and the output streamed back. Both files are unlinked the
//! moment they are made (qemu-img reaches them through inherited descriptors), so the data
//! of a conversion, the plaintext of an encrypted image included, never has a name on
//! disk and nothing of it outlives the stream or a crash.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use ims_domain::ports::{ByteStream, Converter};
use ims_domain::{Error, Result};
use ims_format::Format;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::{ConvertError, QemuImg};

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

    /// A new, empty scratch file that has no name: made (0600) in the scratch directory
    /// and unlinked at once, so it lives only as long as its descriptors.
    fn anonymous_file(&self, what: &str) -> Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.scratch).map_err(Error::internal)?;
        let path = self
            .scratch
            .join(format!("{what}-{}", uuid::Uuid::new_v4().simple()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(Error::internal)?;
        std::fs::remove_file(&path).map_err(Error::internal)?;
        Ok(file)
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
        let input = self.anonymous_file("in")?;
        let mut writer = tokio::fs::File::from_std(input.try_clone().map_err(Error::internal)?);
        while let Some(chunk) = data.next().await {
            let chunk =
                chunk.map_err(|e| Error::Unavailable(format!("reading the image data: {e}")))?;
            writer.write_all(&chunk).await.map_err(Error::internal)?;
        }
        writer.flush().await.map_err(Error::internal)?;
        drop(writer);
        let output = self.anonymous_file("out")?;
        self.qemu
            .convert_files(&input, from, &output, to)
            .await
            .map_err(domain_error)?;
        drop(input);
        let mut output = tokio::fs::File::from_std(output);
        output
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(Error::internal)?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            output,
            1 << 20,
        )))
    }
}
