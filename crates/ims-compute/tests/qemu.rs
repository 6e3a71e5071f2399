//! The compute drivers against a real `qemu-system-x86_64` (KVM when usable, else TCG).
//! The guest has no operating system: its firmware finds nothing to boot and idles,
//! which is all a VM's life cycle and its disk need. Every test kills whatever QEMU it
//! started when it ends, failed or not.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ims_compute::{
    DriverChoice, NONE_DETAILS, NoneDriver, QemuConfig, QemuDriver, ROOT_DEVICE_PATH, SystemLimits,
    detect, kill_leftovers,
};
use ims_domain::image::ImageId;
use ims_domain::server::{ComputeDriver, ServerId, VmDisk, VmSpec, VmState};
use ims_domain::volume::{Backing, VolumeFormat, VolumeId, VolumeStore};
use ims_qemu::{Limits, QemuImg};
use ims_volume::FsVolumeStore;

const MIB: u64 = 1 << 20;

/// A data directory with a volume store and a run directory; dropping it kills every
/// QEMU recorded in the run directory (by pid, marker checked) before the files go.
struct Node {
    run_dir: PathBuf,
    blobs: PathBuf,
    volumes: Arc<FsVolumeStore>,
    _tmp: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        kill_leftovers(&self.run_dir);
    }
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(out.status.success(), "qemu-img {args:?}: {out:?}");
}

impl Node {
    fn new() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = tmp.path().join("images");
        std::fs::create_dir_all(&blobs).unwrap();
        let volumes = FsVolumeStore::open(
            tmp.path().join("volumes"),
            &blobs,
            tmp.path().join("scratch"),
            QemuImg::new("qemu-img", Limits::default(), 2),
        )
        .unwrap();
        Node {
            run_dir: tmp.path().join("servers"),
            blobs,
            volumes: Arc::new(volumes),
            _tmp: tmp,
        }
    }

    fn config() -> QemuConfig {
        QemuConfig {
            limits: SystemLimits {
                max_memory_mib: 512,
                max_vcpus: 2,
                ..SystemLimits::default()
            },
            // No guest answers the power button: do not wait long for it.
            powerdown_timeout: Duration::from_secs(1),
            ..QemuConfig::default()
        }
    }

    async fn driver(&self) -> QemuDriver {
        QemuDriver::new(Self::config(), &self.run_dir, self.volumes.clone())
            .await
            .unwrap()
    }

    /// A 16 MiB raw image blob and a qcow2 overlay volume on it: what a server from an
    /// image gets.
    async fn overlay_disk(&self) -> VmDisk {
        let key = format!("blob-{}", VolumeId::new());
        let blob = self.blobs.join(&key);
        qemu_img(&["create", "-q", "-f", "raw", blob.to_str().unwrap(), "16M"]);
        let backing = Backing {
            image_id: ImageId::new(),
            blob_key: key,
            format: VolumeFormat::Raw,
        };
        let location = self
            .volumes
            .create_overlay(VolumeId::new(), 16 * MIB, &backing)
            .await
            .unwrap();
        VmDisk {
            location,
            format: VolumeFormat::Qcow2,
            backing: Some(backing),
        }
    }

    /// Reads `len` bytes at `offset` of the disk with `qemu-io` (read-only, sharing the
    /// lock QEMU holds) and says whether every byte is `pattern`.
    fn disk_holds(&self, disk: &VmDisk, pattern: u8, offset: u64, len: u64) -> bool {
        let path = self.volumes.path(&disk.location).unwrap();
        let blob = self.blobs.join(&disk.backing.as_ref().unwrap().blob_key);
        let opts = format!(
            "driver=qcow2,file.driver=file,file.filename={},backing.driver=raw,\
             backing.file.driver=file,backing.file.filename={}",
            path.display(),
            blob.display()
        );
        let out = Command::new("qemu-io")
            .args(["-r", "-U", "--image-opts", &opts, "-c"])
            .arg(format!("read -P {pattern:#x} {offset} {len}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains(&format!("read {len}/{len} bytes")),
            "qemu-io: {text}"
        );
        !text.contains("Pattern verification failed")
    }
}

fn spec(id: ServerId, disk: VmDisk) -> VmSpec {
    VmSpec {
        id,
        disk,
        vcpus: 1,
        memory_mib: 64,
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[tokio::test]
async fn a_vm_runs_is_adopted_quiesced_with_its_writes_on_disk_and_stopped() {
    let node = Node::new();
    let driver = node.driver().await;
    let id = ServerId::new();
    let disk = node.overlay_disk().await;
    let spec = spec(id, disk.clone());

    assert_eq!(driver.status(id).await.unwrap().state, VmState::Gone);
    let began = Instant::now();
    let status = driver.start(&spec).await.unwrap();
    eprintln!(
        "start to QMP answering: {:?} with {} ({})",
        began.elapsed(),
        driver.accel(),
        driver.version()
    );
    assert_eq!(status.state, VmState::Running, "{status:?}");
    assert!(status.details.contains(driver.accel().as_str()));
    let pid = driver.pid(id).expect("a live QEMU");
    let dir = driver.server_dir(id);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(dir.join("vnc.sock").exists() && dir.join("qmp.sock").exists());
    // Its own session: an ims exit or a terminal hang-up does not reach it.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(fields[3], pid.to_string(), "session id: {stat}");

    let rss = driver.rss(id).unwrap();
    eprintln!(
        "QEMU resident memory with a 64 MiB guest: {} MiB",
        rss >> 20
    );
    assert!(rss > MIB);
    // The log is bounded: past its limit a status call empties it.
    let log = dir.join(ims_compute::LOG_FILE);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .set_len(ims_compute::LOG_MAX + 1)
        .unwrap();
    driver.status(id).await.unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);

    // Started again (a job rerun): the same process.
    assert_eq!(driver.start(&spec).await.unwrap().state, VmState::Running);
    assert_eq!(driver.pid(id), Some(pid));

    // Write through the guest's own view of the disk, as the interop test does.
    {
        let mut qmp = driver.qmp(id).await.unwrap();
        let out = qmp
            .human(&format!(
                "qemu-io -d {ROOT_DEVICE_PATH} \"write -P 0xab 1M 64k\""
            ))
            .await
            .unwrap();
        // HMP answers an accepted qemu-io with nothing (its report goes to QEMU's
        // standard output, the log); a refusal comes back as text. The disk tells.
        assert!(out.trim().is_empty(), "{out}");
    }
    driver.quiesce(id).await.unwrap();
    let status = driver.status(id).await.unwrap();
    assert_eq!(status.state, VmState::Paused, "{status:?}");
    // Paused: the bytes are in the volume file (flushed by the stop), and the check can
    // fail (where nothing was written).
    assert!(node.disk_holds(&disk, 0xab, MIB, 64 << 10));
    assert!(!node.disk_holds(&disk, 0xab, 3 * MIB, 64 << 10));
    assert!(node.disk_holds(&disk, 0, 3 * MIB, 64 << 10));
    // Quiescing twice is fine.
    driver.quiesce(id).await.unwrap();
    driver.resume(id).await.unwrap();
    assert_eq!(driver.status(id).await.unwrap().state, VmState::Running);

    // ims restarts: a new driver on the same run directory finds and adopts the VM.
    drop(driver);
    let driver = node.driver().await;
    let listed = driver.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, id);
    assert_eq!(listed[0].1.state, VmState::Running);
    assert_eq!(driver.start(&spec).await.unwrap().state, VmState::Running);
    assert_eq!(driver.pid(id), Some(pid));

    // A start on another disk for the same server is refused, not a second VM.
    let mut other = spec.clone();
    other.disk = node.overlay_disk().await;
    assert!(driver.start(&other).await.is_err());
    assert_eq!(driver.pid(id), Some(pid));

    // Stop: the power button (ignored by a guest without an OS), then quit.
    let began = Instant::now();
    driver.stop(id).await.unwrap();
    eprintln!(
        "stop of a guest that ignores the power button: {:?}",
        began.elapsed()
    );
    assert!(!alive(pid));
    assert_eq!(driver.pid(id), None);
    let status = driver.status(id).await.unwrap();
    assert_eq!(status.state, VmState::Stopped, "{status:?}");
    driver.stop(id).await.unwrap();
    assert!(driver.resume(id).await.is_err());
    driver.quiesce(id).await.unwrap();
    // The written bytes outlive the VM.
    assert!(node.disk_holds(&disk, 0xab, MIB, 64 << 10));

    // Started again from stopped: a new process on the same disk.
    assert_eq!(driver.start(&spec).await.unwrap().state, VmState::Running);
    let second = driver.pid(id).unwrap();
    assert_ne!(second, pid);

    driver.delete(id).await.unwrap();
    assert!(!alive(second));
    assert!(!dir.exists());
    assert_eq!(driver.status(id).await.unwrap().state, VmState::Gone);
    assert!(driver.list().await.unwrap().is_empty());
    driver.delete(id).await.unwrap();
    // The volume is the domain's: still there.
    assert!(node.volumes.path(&disk.location).unwrap().is_file());
}

#[tokio::test]
async fn a_killed_qemu_is_gone_and_its_leftovers_cleaned() {
    let node = Node::new();
    let driver = node.driver().await;
    let id = ServerId::new();
    let spec = spec(id, node.overlay_disk().await);
    driver.start(&spec).await.unwrap();
    let pid = driver.pid(id).unwrap();
    let dir = driver.server_dir(id);
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = driver.status(id).await.unwrap();
    assert_eq!(status.state, VmState::Gone, "{status:?}");
    assert!(
        status.details.contains("ended without being stopped"),
        "{status:?}"
    );
    assert!(!dir.exists(), "leftovers remain");
    assert!(driver.list().await.unwrap().is_empty());
    assert!(driver.quiesce(id).await.is_err());
    // And it can be started again, once the kernel has dropped the dead QEMU's image
    // locks (their release can trail the process's exit by a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = loop {
        match driver.start(&spec).await {
            Err(e) if e.to_string().contains("lock") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(started.state, VmState::Running);
    driver.delete(id).await.unwrap();
}

#[tokio::test]
async fn a_dead_vm_found_by_a_new_driver_is_reported_once_and_removed() {
    let node = Node::new();
    let id = ServerId::new();
    {
        let driver = node.driver().await;
        driver
            .start(&spec(id, node.overlay_disk().await))
            .await
            .unwrap();
    }
    // ims is down while its VM dies.
    assert_eq!(kill_leftovers(&node.run_dir), 1);
    let driver = node.driver().await;
    let listed = driver.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.state, VmState::Gone);
    assert!(driver.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_header_naming_another_backing_file_is_refused_before_qemu_starts() {
    let node = Node::new();
    let driver = node.driver().await;
    let id = ServerId::new();
    // A volume file whose header names a file ims did not give it.
    let secret = node.blobs.join("not-this-volumes");
    qemu_img(&["create", "-q", "-f", "raw", secret.to_str().unwrap(), "1M"]);
    let location = node
        .volumes
        .location_of(VolumeId::new(), VolumeFormat::Qcow2);
    let path = node.volumes.path(&location).unwrap();
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
    let disk = VmDisk {
        location,
        format: VolumeFormat::Qcow2,
        backing: None,
    };
    let err = driver.start(&spec(id, disk)).await.unwrap_err();
    assert!(err.to_string().contains("backing"), "{err}");
    assert!(!driver.server_dir(id).exists());
    assert_eq!(driver.pid(id), None);
    assert_eq!(driver.status(id).await.unwrap().state, VmState::Gone);

    // A disk that is not the format ims recorded is refused too.
    let raw_location = node
        .volumes
        .location_of(VolumeId::new(), VolumeFormat::Qcow2);
    let raw_path = node.volumes.path(&raw_location).unwrap();
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "raw",
        raw_path.to_str().unwrap(),
        "1M",
    ]);
    let disk = VmDisk {
        location: raw_location,
        format: VolumeFormat::Qcow2,
        backing: None,
    };
    assert!(driver.start(&spec(id, disk)).await.is_err());
    assert!(!driver.server_dir(id).exists());
}

#[tokio::test]
async fn limits_are_checked_before_anything_starts() {
    let node = Node::new();
    let driver = node.driver().await;
    let disk = node.overlay_disk().await;
    for (vcpus, memory_mib) in [(0, 64), (3, 64), (1, 8), (1, 1024)] {
        let id = ServerId::new();
        let spec = VmSpec {
            id,
            disk: disk.clone(),
            vcpus,
            memory_mib,
        };
        let err = driver.start(&spec).await.unwrap_err();
        assert!(
            matches!(err, ims_domain::Error::InvalidInput(_)),
            "{vcpus} {memory_mib}: {err}"
        );
        assert!(!driver.server_dir(id).exists());
    }
    // A missing volume file: QEMU fails, its error is reported, nothing stays.
    let id = ServerId::new();
    let missing = VmDisk {
        location: node.volumes.location_of(VolumeId::new(), VolumeFormat::Raw),
        format: VolumeFormat::Raw,
        backing: None,
    };
    let err = driver.start(&spec(id, missing)).await.unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    assert!(!driver.server_dir(id).exists());
}

#[tokio::test]
async fn the_none_driver_boots_nothing_and_says_so() {
    let driver = NoneDriver;
    let id = ServerId::new();
    let disk = VmDisk {
        location: "x.raw".into(),
        format: VolumeFormat::Raw,
        backing: None,
    };
    assert_eq!(driver.name(), "none");
    let status = driver.start(&spec(id, disk)).await.unwrap();
    assert_eq!(status.state, VmState::Stopped);
    assert_eq!(status.details, NONE_DETAILS);
    let status = driver.status(id).await.unwrap();
    assert_eq!(status.state, VmState::Stopped);
    assert_eq!(
        status.details,
        "no hypervisor: the none driver boots nothing"
    );
    driver.quiesce(id).await.unwrap();
    driver.resume(id).await.unwrap();
    driver.stop(id).await.unwrap();
    driver.delete(id).await.unwrap();
    assert!(driver.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn detection_prefers_qemu_and_falls_back_to_none_with_a_reason() {
    let node = Node::new();
    let run = |choice, binary: Option<&'static str>| {
        let (run_dir, volumes) = (node.run_dir.clone(), node.volumes.clone());
        let mut config = Node::config();
        if let Some(binary) = binary {
            config.binary = binary.into();
        }
        async move { detect(choice, config, run_dir, volumes).await }
    };
    let found = run(DriverChoice::Auto, None).await.unwrap();
    assert_eq!(found.driver.name(), "qemu");
    assert!(
        found.reason.contains("QEMU emulator version"),
        "{}",
        found.reason
    );
    let missing = run(DriverChoice::Auto, Some("/nonexistent/qemu-system-x86_64"))
        .await
        .unwrap();
    assert_eq!(missing.driver.name(), "none");
    assert!(missing.reason.contains("not found"), "{}", missing.reason);
    assert!(
        run(DriverChoice::Qemu, Some("/nonexistent/qemu"))
            .await
            .is_err()
    );
    let not_qemu = run(DriverChoice::Auto, Some("/bin/false")).await.unwrap();
    assert_eq!(not_qemu.driver.name(), "none");
    assert!(
        not_qemu.reason.contains("does not run"),
        "{}",
        not_qemu.reason
    );
    let none = run(DriverChoice::None, None).await.unwrap();
    assert_eq!(none.driver.name(), "none");
}

#[tokio::test]
async fn tcg_runs_the_same_vm_when_kvm_is_not_used() {
    let node = Node::new();
    let config = QemuConfig {
        accel: Some(ims_compute::Accel::Tcg),
        ..Node::config()
    };
    let driver = QemuDriver::new(config, &node.run_dir, node.volumes.clone())
        .await
        .unwrap();
    let id = ServerId::new();
    let began = Instant::now();
    let status = driver
        .start(&spec(id, node.overlay_disk().await))
        .await
        .unwrap();
    eprintln!("TCG start to QMP answering: {:?}", began.elapsed());
    assert_eq!(status.state, VmState::Running);
    assert!(status.details.contains("tcg"), "{status:?}");
    let pid = driver.pid(id).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("tcg,tb-size="));
    driver.quiesce(id).await.unwrap();
    assert_eq!(driver.status(id).await.unwrap().state, VmState::Paused);
    // A paused guest cannot answer the power button: stop ends it without waiting.
    let began = Instant::now();
    driver.stop(id).await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    assert!(!alive(pid));
    assert_eq!(driver.status(id).await.unwrap().state, VmState::Stopped);
    driver.delete(id).await.unwrap();
}

#[tokio::test]
async fn a_process_without_the_marker_is_never_signalled() {
    let node = Node::new();
    let driver = node.driver().await;
    let id = ServerId::new();
    // A stranger's pid in the server's pidfile (a reused pid, say).
    let mut stranger = Command::new("sleep").arg("30").spawn().unwrap();
    let dir = driver.server_dir(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("qemu.pid"), stranger.id().to_string()).unwrap();
    assert_eq!(driver.pid(id), None);
    assert_eq!(kill_leftovers(&node.run_dir), 0);
    driver.delete(id).await.unwrap();
    assert!(!dir.exists());
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger was killed"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[tokio::test]
async fn a_vm_started_but_never_recorded_is_replaced() {
    let node = Node::new();
    let driver = node.driver().await;
    let id = ServerId::new();
    let spec = spec(id, node.overlay_disk().await);
    driver.start(&spec).await.unwrap();
    let first = driver.pid(id).unwrap();
    // As if ims died between starting QEMU and writing its state.
    std::fs::remove_file(driver.server_dir(id).join("state.json")).unwrap();
    let driver = node.driver().await;
    assert_eq!(driver.start(&spec).await.unwrap().state, VmState::Running);
    let second = driver.pid(id).unwrap();
    assert_ne!(first, second);
    assert!(!alive(first));
    driver.delete(id).await.unwrap();
    assert!(!alive(second));
}
