//! The embedded volume store with the real qemu-img: blank volumes are sparse, overlays
//! copy nothing and read through to their backing blob, volumes grow in place, flattened
//! reads hold everything and refer to nothing, and a volume whose header names anything
//! ims did not put there is refused.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use futures::StreamExt;
use ims_domain::image::ImageId;
use ims_domain::volume::{Backing, VolumeFormat, VolumeId, VolumeStore};
use ims_qemu::{Limits, QemuImg};
use ims_volume::FsVolumeStore;

const MIB: u64 = 1 << 20;

struct Dirs {
    _tmp: tempfile::TempDir,
    store: FsVolumeStore,
    blobs: std::path::PathBuf,
}

fn store() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = tmp.path().join("images");
    std::fs::create_dir_all(&blobs).unwrap();
    let store = FsVolumeStore::open(
        tmp.path().join("volumes"),
        &blobs,
        tmp.path().join("scratch"),
        QemuImg::new("qemu-img", Limits::default(), 2),
    )
    .unwrap();
    Dirs {
        _tmp: tmp,
        store,
        blobs,
    }
}

fn qemu_io(file: &Path, format: &str, cmds: &[&str]) {
    let mut cmd = Command::new("qemu-io");
    cmd.args(["-f", format]);
    for c in cmds {
        cmd.args(["-c", c]);
    }
    let out = cmd.arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && !text.contains("failed"),
        "qemu-io {cmds:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn collect(mut s: ims_domain::ports::ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// A raw blob of 4 MiB whose first MiB is 0x11, as the image store would hold it.
fn raw_blob(d: &Dirs, key: &str) -> Backing {
    let path = d.blobs.join(key);
    qemu_img(&["create", "-q", "-f", "raw", path.to_str().unwrap(), "4M"]);
    qemu_io(&path, "raw", &["write -P 0x11 0 1M"]);
    Backing {
        image_id: ImageId::new(),
        blob_key: key.into(),
        format: VolumeFormat::Raw,
    }
}

#[tokio::test]
async fn blank_volumes_are_sparse_and_grow_in_place() {
    let d = store();
    let id = VolumeId::new();
    let loc = d
        .store
        .create_blank(id, VolumeFormat::Raw, 8 * MIB)
        .await
        .unwrap();
    assert_eq!(loc, format!("{id}.raw"));
    let path = d.store.path(&loc).unwrap();
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.len(), meta.mode() & 0o777), (8 * MIB, 0o600));
    assert!(meta.blocks() * 512 < MIB);
    assert!(
        d.store
            .create_blank(id, VolumeFormat::Raw, MIB)
            .await
            .is_err(),
        "an existing volume was replaced"
    );
    qemu_io(&path, "raw", &["write -P 0x42 7M 4k"]);
    d.store
        .resize(&loc, VolumeFormat::Raw, None, 16 * MIB)
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 16 * MIB);
    let flat = d
        .store
        .read_flat(&loc, VolumeFormat::Raw, None)
        .await
        .unwrap();
    assert_eq!(flat.size, 16 * MIB);
    let data = collect(flat.stream).await;
    assert_eq!(data.len() as u64, 16 * MIB);
    assert!(
        data[(7 * MIB) as usize..][..4096]
            .iter()
            .all(|&b| b == 0x42)
    );

    let q = d
        .store
        .create_blank(VolumeId::new(), VolumeFormat::Qcow2, 8 * MIB)
        .await
        .unwrap();
    d.store
        .resize(&q, VolumeFormat::Qcow2, None, 32 * MIB)
        .await
        .unwrap();
    let info = ims_format::inspect_file(&d.store.path(&q).unwrap()).unwrap();
    assert_eq!(
        (info.format, info.virtual_size),
        (ims_format::Format::Qcow2, Some(32 * MIB))
    );
    d.store.delete(&q).await.unwrap();
    d.store.delete(&q).await.unwrap();
    assert!(!d.store.path(&q).unwrap().exists());
}

#[tokio::test]
async fn an_overlay_copies_nothing_and_flattens_to_everything() {
    let d = store();
    let backing = raw_blob(&d, "img.data.1");
    let loc = d
        .store
        .create_overlay(VolumeId::new(), 8 * MIB, &backing)
        .await
        .unwrap();
    let path = d.store.path(&loc).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < MIB);
    qemu_io(
        &path,
        "qcow2",
        &["read -P 0x11 0 1M", "write -P 0xab 2M 64k"],
    );
    d.store
        .resize(&loc, VolumeFormat::Qcow2, Some(&backing), 16 * MIB)
        .await
        .unwrap();
    qemu_io(&path, "qcow2", &["write -P 0xcd 12M 4k"]);
    let out = flat_file(&d, &loc, &backing).await;
    let report = ims_format::inspect_file(out.path()).unwrap();
    assert!(report.safe, "{:?}", report.problems);
    assert_eq!(report.virtual_size, Some(16 * MIB));
    qemu_io(
        out.path(),
        "qcow2",
        &[
            "read -P 0x11 0 1M",
            "read -P 0xab 2M 64k",
            "read -P 0 3M 1M",
            "read -P 0xcd 12M 4k",
        ],
    );
    // The flattened stream was made as it was read: no copy in the scratch directory.
    assert_eq!(scratch_files(&d), 0);
    // An overlay on a blob that is gone is not made.
    std::fs::remove_file(d.blobs.join("img.data.1")).unwrap();
    assert!(
        d.store
            .create_overlay(VolumeId::new(), 8 * MIB, &backing)
            .await
            .is_err()
    );
}

/// The volume at `loc` flattened, in a temporary file; its announced size checked.
async fn flat_file(d: &Dirs, loc: &str, backing: &Backing) -> tempfile::NamedTempFile {
    let flat = d
        .store
        .read_flat(loc, VolumeFormat::Qcow2, Some(backing))
        .await
        .unwrap();
    let data = collect(flat.stream).await;
    assert_eq!(data.len() as u64, flat.size);
    let out = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(out.path(), &data).unwrap();
    out
}

fn scratch_files(d: &Dirs) -> usize {
    std::fs::read_dir(d._tmp.path().join("scratch")).map_or(0, |dir| dir.count())
}

#[tokio::test]
async fn a_compressed_backing_is_flattened_by_qemu_img_and_leaves_no_copy() {
    let d = store();
    let raw = d._tmp.path().join("source.raw");
    qemu_img(&["create", "-q", "-f", "raw", raw.to_str().unwrap(), "4M"]);
    qemu_io(&raw, "raw", &["write -P 0x22 1M 1M"]);
    let blob = d.blobs.join("img.data.c");
    qemu_img(&[
        "convert",
        "-q",
        "-c",
        "-f",
        "raw",
        "-O",
        "qcow2",
        raw.to_str().unwrap(),
        blob.to_str().unwrap(),
    ]);
    let backing = Backing {
        image_id: ImageId::new(),
        blob_key: "img.data.c".into(),
        format: VolumeFormat::Qcow2,
    };
    let loc = d
        .store
        .create_overlay(VolumeId::new(), 4 * MIB, &backing)
        .await
        .unwrap();
    qemu_io(
        &d.store.path(&loc).unwrap(),
        "qcow2",
        &["write -P 0x33 3M 4k"],
    );
    let out = flat_file(&d, &loc, &backing).await;
    qemu_io(
        out.path(),
        "qcow2",
        &["read -P 0 0 1M", "read -P 0x22 1M 1M", "read -P 0x33 3M 4k"],
    );
    assert_eq!(scratch_files(&d), 0);
}

#[tokio::test]
async fn a_volume_header_naming_other_files_is_refused() {
    let d = store();
    // A "blank" qcow2 volume whose header names a backing file ims never gave it.
    let secret = d.blobs.join("secret");
    std::fs::write(&secret, b"top secret").unwrap();
    let id = VolumeId::new();
    let loc = format!("{id}.qcow2");
    let path = d.store.path(&loc).unwrap();
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        secret.to_str().unwrap(),
        "-F",
        "raw",
        path.to_str().unwrap(),
        "1M",
    ]);
    assert!(
        d.store
            .read_flat(&loc, VolumeFormat::Qcow2, None)
            .await
            .is_err()
    );
    assert!(
        d.store
            .resize(&loc, VolumeFormat::Qcow2, None, 2 * MIB)
            .await
            .is_err()
    );
    // An overlay with an external data file, even with the backing ims names.
    let backing = raw_blob(&d, "img.data.2");
    let id = VolumeId::new();
    let loc = format!("{id}.qcow2");
    let path = d.store.path(&loc).unwrap();
    let data_file = d._tmp.path().join("data.raw");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={}", data_file.display()),
        path.to_str().unwrap(),
        "4M",
    ]);
    assert!(
        d.store
            .read_flat(&loc, VolumeFormat::Qcow2, Some(&backing))
            .await
            .is_err()
    );
    // Locations and keys that name anything outside the store.
    for bad in [
        "../x.raw",
        "x.raw",
        "",
        &format!("{id}.vmdk"),
        &format!("{}.raw", id.simple()),
    ] {
        assert!(d.store.path(bad).is_err(), "{bad}");
    }
    let escaping = Backing {
        blob_key: "../volumes/x".into(),
        ..backing
    };
    assert!(
        d.store
            .create_overlay(VolumeId::new(), MIB, &escaping)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sizes_and_capacity_are_real() {
    let d = store();
    let loc = d
        .store
        .create_blank(VolumeId::new(), VolumeFormat::Raw, 64 * MIB)
        .await
        .unwrap();
    let before = d.store.actual_size(&loc).await.unwrap();
    assert!(before < MIB, "{before}");
    qemu_io(&d.store.path(&loc).unwrap(), "raw", &["write -P 1 0 4M"]);
    let after = d.store.actual_size(&loc).await.unwrap();
    assert!((4 * MIB..5 * MIB).contains(&after), "{after}");
    let cap = d.store.capacity().await.unwrap();
    assert!(cap.total > 0 && cap.available <= cap.total, "{cap:?}");
}
