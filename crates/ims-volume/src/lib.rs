//! The embedded [`VolumeStore`]: each volume is one file under `<data-dir>/volumes/`,
//! written in place by whoever uses the disk. A blank volume is a sparse raw file or an
//! empty qcow2; a volume from an image is a qcow2 overlay whose backing file is the
//! image's blob in `<data-dir>/images/` (named here, from the blob's key, and passed with
//! its format on every qemu-img call), so nothing is copied.
//!
//! Locations are `<volume id>.<format>`, checked on every use, so a location read from the
//! catalog can never name a file outside the directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use ims_blob::private_dir;
use ims_domain::volume::{Backing, FlatData, StoreCapacity, VolumeFormat, VolumeId, VolumeStore};
use ims_domain::{Error, Result};
use ims_format::Format;
use ims_format::flatten::{FlattenError, Flattener, Layer};
use ims_qemu::{ConvertError, Disk, QemuImg};

/// Volume files are the service's alone (directories: `ims_blob::private_dir`).
const FILE_MODE: u32 = 0o600;

/// Volumes as files in one directory.
#[derive(Debug, Clone)]
pub struct FsVolumeStore {
    root: PathBuf,
    blobs: PathBuf,
    /// Whether `blobs` holds the images' data (false when the image store is remote).
    overlays: bool,
    scratch: PathBuf,
    qemu: QemuImg,
}

fn io_err(e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(28) {
        return Error::TooLarge("The volume store is full.".into());
    }
    Error::internal(e)
}

fn qemu_err(e: ConvertError) -> Error {
    match e {
        ConvertError::Failed(m) if m.contains("No space left") => {
            Error::TooLarge("The volume store is full.".into())
        }
        other => Error::internal(other),
    }
}

impl FsVolumeStore {
    /// Opens (creating, private) the store at `root`. Overlays are backed by blobs of the
    /// image store at `blobs`; flattened copies are made in `scratch`, which belongs to
    /// this process (its leftovers are removed with the rest of the scratch directory).
    pub fn open(
        root: impl Into<PathBuf>,
        blobs: impl Into<PathBuf>,
        scratch: impl Into<PathBuf>,
        qemu: QemuImg,
    ) -> Result<Self> {
        let root = root.into();
        private_dir(&root).map_err(io_err)?;
        Ok(FsVolumeStore {
            root,
            blobs: blobs.into(),
            overlays: true,
            scratch: scratch.into(),
            qemu,
        })
    }

    /// The image store is not a local directory: volumes from images are copies.
    pub fn without_overlays(mut self) -> Self {
        self.overlays = false;
        self
    }

    /// The file of `location`, which must be one this store made.
    pub fn path(&self, location: &str) -> Result<PathBuf> {
        let valid = location.split_once('.').is_some_and(|(id, ext)| {
            VolumeId::parse(id).is_some_and(|v| v.to_string() == id)
                && ext.parse::<VolumeFormat>().is_ok()
        });
        if !valid {
            return Err(Error::internal(format!("bad volume location {location:?}")));
        }
        Ok(self.root.join(location))
    }

    /// The image store's file of a blob key (slash-free, not hidden, as the blob store
    /// names them).
    fn blob_path(&self, key: &str) -> Result<PathBuf> {
        if !self.overlays {
            return Err(Error::internal("image blobs are not local: no overlays"));
        }
        if key.is_empty() || key.starts_with('.') || key.contains(['/', '\0']) {
            return Err(Error::internal(format!("bad blob key {key:?}")));
        }
        Ok(self.blobs.join(key))
    }

    /// The qemu description of a volume: its file, its format and the backing file ims
    /// recorded for it (resolved here from the blob key, never read from the header). A
    /// hypervisor attaches the volume with exactly this chain.
    pub fn disk(
        &self,
        location: &str,
        format: VolumeFormat,
        backing: Option<&Backing>,
    ) -> Result<Disk> {
        let backing = match backing {
            Some(b) => Some((self.blob_path(&b.blob_key)?, b.format.content())),
            None => None,
        };
        Ok(Disk {
            path: self.path(location)?,
            format: format.content(),
            backing,
        })
    }

    async fn create(
        &self,
        id: VolumeId,
        format: VolumeFormat,
        size: u64,
        backing: Option<&Backing>,
    ) -> Result<String> {
        let location = self.location_of(id, format);
        let disk = self.disk(&location, format, backing)?;
        if backing.is_some_and(|_| disk.backing.as_ref().is_some_and(|(p, _)| !p.is_file())) {
            return Err(Error::Gone("The image's data is no longer there.".into()));
        }
        self.qemu.create(&disk, size).await.map_err(qemu_err)?;
        std::fs::set_permissions(&disk.path, std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(io_err)?;
        Ok(location)
    }
}

/// Removes a scratch file (or a volume file still being made) when dropped, unless kept.
struct Scratch(PathBuf);

impl Scratch {
    /// The file stays: it is done.
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A new private file at `path`, for writing.
async fn create_file(path: &Path) -> Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .await
        .map_err(io_err)
}

/// Writes `content` to `file`, leaving holes where it is zero (an image's unused space
/// stays unallocated), and syncs it. The stream must hold exactly the size it announced:
/// a short one is a damaged source, not a smaller volume.
async fn write_sparse(mut file: tokio::fs::File, mut content: FlatData) -> Result<std::fs::File> {
    use futures::TryStreamExt;
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let mut written = 0u64;
    while let Some(chunk) = content.stream.try_next().await.map_err(io_err)? {
        if chunk.iter().all(|&b| b == 0) {
            file.seek(std::io::SeekFrom::Current(chunk.len() as i64))
                .await
                .map_err(io_err)?;
        } else {
            file.write_all(&chunk).await.map_err(io_err)?;
        }
        written += chunk.len() as u64;
    }
    if written != content.size {
        return Err(Error::internal(format!(
            "the image's data ended after {written} of {} bytes",
            content.size
        )));
    }
    file.set_len(written).await.map_err(io_err)?;
    file.sync_all().await.map_err(io_err)?;
    Ok(file.into_std().await)
}

/// Writes `raw` (a raw disk) to a new qcow2 file at `path` with the format engine's
/// flattener: no qemu-img, no scratch copy.
async fn raw_to_qcow2(raw: std::fs::File, path: &Path) -> Result<()> {
    let out = create_file(path).await?.into_std().await;
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let flat = Flattener::new(vec![Layer::raw(raw)?])?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        let mut failed = None;
        flat.write(&mut |chunk| match out.write_all(&chunk) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        if let Some(e) = failed {
            return Err(FlattenError::Io(e));
        }
        let out = out
            .into_inner()
            .map_err(|e| FlattenError::Io(e.into_error()))?;
        out.sync_all()?;
        Ok(())
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| match e {
        FlattenError::Io(e) => io_err(e),
        other => Error::internal(other),
    })
}

fn stream_file(file: std::fs::File) -> ims_domain::ports::ByteStream {
    Box::pin(tokio_util::io::ReaderStream::with_capacity(
        tokio::fs::File::from_std(file),
        1 << 20,
    ))
}

/// One file of a chain, for the format engine's flattener.
fn layer(path: &Path, format: Format) -> std::result::Result<Layer, FlattenError> {
    let file = std::fs::File::open(path)?;
    match format {
        Format::Qcow2 => Layer::qcow2(file),
        Format::Raw => Layer::raw(file),
        other => Err(FlattenError::Unsupported(format!("a {other} layer"))),
    }
}

/// `disk` with its backing folded in, as a new qcow2 produced while it is read (no
/// scratch copy: each byte is read once and written once, by the image store). `None`
/// when the chain uses something only qemu-img handles (compressed clusters, say).
async fn stream_flat(disk: &Disk) -> Result<Option<FlatData>> {
    disk.check().await.map_err(qemu_err)?;
    let chain = disk.clone();
    let mapped = tokio::task::spawn_blocking(move || {
        let mut layers = vec![layer(&chain.path, chain.format)?];
        if let Some((path, format)) = &chain.backing {
            layers.push(layer(path, *format)?);
        }
        Flattener::new(layers)
    })
    .await
    .map_err(Error::internal)?;
    let flat = match mapped {
        Ok(flat) => flat,
        Err(FlattenError::Io(e)) => return Err(io_err(e)),
        Err(other) => {
            tracing::info!(disk = %disk.path.display(), "flattening with qemu-img: {other}");
            return Ok(None);
        }
    };
    let size = flat.len();
    // A blocking producer a few chunks ahead of the pipeline, stopped when it goes away.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let written = flat.write(&mut |chunk| tx.blocking_send(Ok(Bytes::from(chunk))).is_ok());
        if let Err(e) = written {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(Some(FlatData {
        stream: Box::pin(stream),
        size,
    }))
}

#[async_trait]
impl VolumeStore for FsVolumeStore {
    fn overlays_on_images(&self) -> bool {
        self.overlays
    }

    fn location_of(&self, id: VolumeId, format: VolumeFormat) -> String {
        format!("{id}.{format}")
    }

    async fn actual_size(&self, location: &str) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let meta = tokio::fs::metadata(self.path(location)?)
            .await
            .map_err(io_err)?;
        Ok(meta.blocks() * 512)
    }

    async fn capacity(&self) -> Result<StoreCapacity> {
        let root = self.root.clone();
        let stat = tokio::task::spawn_blocking(move || nix::sys::statvfs::statvfs(&root))
            .await
            .map_err(Error::internal)?
            .map_err(|e| Error::internal(format!("statvfs: {e}")))?;
        let unit = stat.fragment_size() as u64;
        Ok(StoreCapacity {
            total: stat.blocks() as u64 * unit,
            available: stat.blocks_available() as u64 * unit,
        })
    }

    async fn create_blank(&self, id: VolumeId, format: VolumeFormat, size: u64) -> Result<String> {
        self.create(id, format, size, None).await
    }

    async fn create_overlay(&self, id: VolumeId, size: u64, backing: &Backing) -> Result<String> {
        self.create(id, VolumeFormat::Qcow2, size, Some(backing))
            .await
    }

    async fn create_from_content(
        &self,
        id: VolumeId,
        size: u64,
        content: FlatData,
        format: VolumeFormat,
    ) -> Result<String> {
        let location = self.location_of(id, VolumeFormat::Qcow2);
        let disk = self.disk(&location, VolumeFormat::Qcow2, None)?;
        let made = Scratch(disk.path.clone());
        match format {
            // Already a volume's layout: written in place, then checked like any volume.
            VolumeFormat::Qcow2 => {
                write_sparse(create_file(&disk.path).await?, content).await?;
            }
            // Spooled to a file that has no name (unlinked at once), then laid out as
            // qcow2 by the flattener.
            VolumeFormat::Raw => {
                private_dir(&self.scratch).map_err(io_err)?;
                let spool = self
                    .scratch
                    .join(format!("content-{}", uuid::Uuid::new_v4().simple()));
                let file = create_file(&spool).await?;
                tokio::fs::remove_file(&spool).await.map_err(io_err)?;
                let raw = write_sparse(file, content).await?;
                raw_to_qcow2(raw, &disk.path).await?;
            }
        }
        let info = self.qemu.info(&disk).await.map_err(qemu_err)?;
        if info.virtual_size < size {
            self.qemu.resize(&disk, size).await.map_err(qemu_err)?;
        }
        made.keep();
        Ok(location)
    }

    async fn resize(
        &self,
        location: &str,
        format: VolumeFormat,
        backing: Option<&Backing>,
        size: u64,
    ) -> Result<()> {
        let disk = self.disk(location, format, backing)?;
        self.qemu.resize(&disk, size).await.map_err(qemu_err)
    }

    async fn delete(&self, location: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(location)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    async fn read_flat(
        &self,
        location: &str,
        format: VolumeFormat,
        backing: Option<&Backing>,
    ) -> Result<FlatData> {
        let disk = self.disk(location, format, backing)?;
        if format == VolumeFormat::Raw && backing.is_none() {
            // A raw file is its own content.
            let file = std::fs::File::open(&disk.path).map_err(io_err)?;
            let size = file.metadata().map_err(io_err)?.len();
            return Ok(FlatData {
                stream: stream_file(file),
                size,
            });
        }
        if let Some(flat) = stream_flat(&disk).await? {
            return Ok(flat);
        }
        private_dir(&self.scratch).map_err(io_err)?;
        let out = Scratch(
            self.scratch
                .join(format!("flat-{}", uuid::Uuid::new_v4().simple())),
        );
        self.qemu
            .flatten(&disk, &out.0, format.content(), |_| {})
            .await
            .map_err(qemu_err)?;
        // Open, then unlink: the copy stays readable until the stream is dropped.
        let file = std::fs::File::open(&out.0).map_err(io_err)?;
        drop(out);
        let size = file.metadata().map_err(io_err)?.len();
        Ok(FlatData {
            stream: stream_file(file),
            size,
        })
    }
}
