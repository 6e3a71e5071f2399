//! Every fixture is generated here with `qemu-img` (and `xorriso` for ISOs); the
//! detected format and virtual size must equal `qemu-img info`, the stream and file
//! drivers must agree, and the dangerous ones must be refused with a reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use ims_format::{Format, Report, StreamInspector, inspect_file};

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} could not start (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    /// A temp dir holding `data.raw`: 5 MiB with non-zero data in a few places.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![0u8; 5 << 20];
        for (i, b) in data
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| i % 7 == 0 && (i >> 16) % 3 == 0)
        {
            *b = (i % 251) as u8 + 1;
        }
        std::fs::write(dir.path().join("data.raw"), data).unwrap();
        Fixtures { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs qemu-img with paths relative to the fixture dir.
    fn qemu_img(&self, args: &[&str]) -> PathBuf {
        let run = || {
            Command::new("qemu-img")
                .current_dir(self.dir.path())
                .args(args)
                .output()
                .expect("qemu-img is installed by scripts/test")
        };
        let mut out = run();
        // QEMU 7.2 (Debian's, beside its qemu-system) times its first PBKDF round for a
        // LUKS key in whole milliseconds of thread CPU time and gives up when that reads
        // 0 ("Unable to get accurate CPU usage"); later versions retry. So do we.
        for _ in 0..50 {
            if out.status.success()
                || !String::from_utf8_lossy(&out.stderr).contains("accurate CPU usage")
            {
                break;
            }
            out = run();
        }
        assert!(
            out.status.success(),
            "qemu-img {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The output is the last argument that is a file name rather than a size.
        self.path(args.iter().rev().find(|a| a.contains('.')).unwrap())
    }

    fn convert(&self, fmt: &str, opts: &str, name: &str) -> PathBuf {
        let mut args = vec!["convert", "-f", "raw", "-O", fmt];
        if !opts.is_empty() {
            args.extend(["-o", opts]);
        }
        args.extend(["data.raw", name]);
        self.qemu_img(&args)
    }
}

/// `qemu-img info` of a file, with its format named explicitly where given.
fn qemu_info(path: &Path, format: Option<&str>) -> (String, u64) {
    let mut args = vec!["info", "--output=json"];
    if let Some(f) = format {
        args.extend(["-f", f]);
    }
    args.push(path.to_str().unwrap());
    let json = run("qemu-img", &args);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    (
        v["format"].as_str().unwrap().to_string(),
        v["virtual-size"].as_u64().unwrap(),
    )
}

/// Streams the file through a [`StreamInspector`] in odd-sized pieces.
fn stream_report(path: &Path) -> Report {
    let data = std::fs::read(path).unwrap();
    let mut inspector = StreamInspector::new();
    for piece in data.chunks(65_537) {
        inspector.feed(piece);
    }
    inspector.finish()
}

/// Inspects, checks both drivers agree, and returns the report.
fn inspect(path: &Path) -> Report {
    let report = inspect_file(path).unwrap();
    assert_eq!(
        report,
        stream_report(path),
        "stream and file drivers disagree on {path:?}"
    );
    report
}

/// A good fixture: safe, and the same format and virtual size as qemu-img reports.
fn assert_good(path: &Path, expected: Format) {
    let report = inspect(path);
    assert!(
        report.safe,
        "{path:?} should be safe: {:?}",
        report.problems
    );
    assert_eq!(report.format, expected, "{path:?}");
    // qemu's own probe only finds a VHD footer at offset 0, so it takes a fixed VHD for
    // raw; its size is then read with the format named.
    let fixed_vhd = report
        .details
        .get("subformat")
        .is_some_and(|s| s == "fixed")
        && expected == Format::Vhd;
    let (probed, _) = qemu_info(path, None);
    let (qemu_format, qemu_size) = qemu_info(path, fixed_vhd.then_some("vpc"));
    if fixed_vhd {
        assert_eq!(probed, "raw");
    }
    assert_eq!(expected.qemu_name(), Some(qemu_format.as_str()), "{path:?}");
    assert_eq!(
        report.virtual_size,
        Some(qemu_size),
        "{path:?} virtual size"
    );
    assert!(
        report.accept(Some(expected.as_str()), Some("bare")).is_ok()
            || expected.is_partition_table()
    );
}

/// A refused fixture: unsafe, with a problem from `check`.
fn assert_refused(path: &Path, check: &str) -> Report {
    let report = inspect(path);
    assert!(!report.safe, "{path:?} must be refused");
    assert!(
        report.problems.iter().any(|p| p.check == check),
        "{path:?}: expected a {check} problem, got {:?}",
        report.problems
    );
    let refusal = report
        .accept(Some(report.format.as_str()), Some("bare"))
        .unwrap_err();
    assert!(refusal.reason.starts_with("Image failed safety checks"));
    report
}

#[test]
fn raw_and_qcow2_variants_match_qemu() {
    let fx = Fixtures::new();
    assert_good(&fx.path("data.raw"), Format::Raw);
    assert_good(
        &fx.qemu_img(&["create", "-f", "raw", "odd.raw", "1234567"]),
        Format::Raw,
    );
    assert_good(
        &fx.convert("qcow2", "compat=0.10", "v2.qcow2"),
        Format::Qcow2,
    );
    assert_good(
        &fx.convert("qcow2", "compat=1.1", "v3.qcow2"),
        Format::Qcow2,
    );
    assert_good(
        &fx.qemu_img(&["create", "-f", "qcow2", "big.qcow2", "100G"]),
        Format::Qcow2,
    );
    assert_good(
        &fx.qemu_img(&[
            "create",
            "-f",
            "qcow2",
            "-o",
            "cluster_size=2M",
            "c2m.qcow2",
            "3G",
        ]),
        Format::Qcow2,
    );
    assert_good(
        &fx.qemu_img(&[
            "create",
            "-f",
            "qcow2",
            "-o",
            "extended_l2=on",
            "l2.qcow2",
            "1G",
        ]),
        Format::Qcow2,
    );
    for algo in ["zlib", "zstd"] {
        let name = format!("{algo}.qcow2");
        let p = fx.qemu_img(&[
            "convert",
            "-c",
            "-f",
            "raw",
            "-O",
            "qcow2",
            "-o",
            &format!("compression_type={algo}"),
            "data.raw",
            &name,
        ]);
        assert_good(&p, Format::Qcow2);
        assert_eq!(
            inspect(&p).details.get("compression").map(String::as_str),
            Some(algo)
        );
    }
}

#[test]
fn vmdk_vhd_vhdx_vdi_match_qemu() {
    let fx = Fixtures::new();
    assert_good(&fx.convert("vmdk", "", "sparse.vmdk"), Format::Vmdk);
    assert_good(
        &fx.convert("vmdk", "subformat=streamOptimized", "stream.vmdk"),
        Format::Vmdk,
    );
    assert_good(
        &fx.qemu_img(&[
            "create",
            "-f",
            "vmdk",
            "empty-stream.vmdk",
            "-o",
            "subformat=streamOptimized",
            "64M",
        ]),
        Format::Vmdk,
    );
    assert_good(&fx.convert("vpc", "", "dynamic.vhd"), Format::Vhd);
    assert_good(
        &fx.convert("vpc", "subformat=fixed", "fixed.vhd"),
        Format::Vhd,
    );
    assert_good(
        &fx.convert("vpc", "force_size=on", "forced.vhd"),
        Format::Vhd,
    );
    assert_good(
        &fx.qemu_img(&["create", "-f", "vpc", "odd.vhd", "1000M"]),
        Format::Vhd,
    );
    assert_good(&fx.convert("vhdx", "", "a.vhdx"), Format::Vhdx);
    assert_good(
        &fx.qemu_img(&["create", "-f", "vhdx", "big.vhdx", "100G"]),
        Format::Vhdx,
    );
    assert_good(&fx.convert("vdi", "", "dynamic.vdi"), Format::Vdi);
    assert_good(&fx.convert("vdi", "static=on", "fixed.vdi"), Format::Vdi);
}

#[test]
fn luks_matches_qemu_and_encrypted_qcow2_is_reported() {
    let fx = Fixtures::new();
    let secret = ["--object", "secret,id=s0,data=correct-horse"];
    let mut args = vec!["create", "-f", "luks"];
    args.extend(secret);
    args.extend(["-o", "key-secret=s0,iter-time=10", "a.luks", "16M"]);
    assert_good(&fx.qemu_img(&args), Format::Luks);
    let mut args = vec!["create", "-f", "qcow2"];
    args.extend(secret);
    args.extend([
        "-o",
        "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10",
        "enc.qcow2",
        "16M",
    ]);
    let p = fx.qemu_img(&args);
    assert_good(&p, Format::Qcow2);
    assert_eq!(
        inspect(&p).details.get("encryption").map(String::as_str),
        Some("luks")
    );
}

#[test]
fn iso_images_are_recognised() {
    let fx = Fixtures::new();
    std::fs::create_dir(fx.path("tree")).unwrap();
    std::fs::write(fx.path("tree/hello.txt"), "hello").unwrap();
    let iso = fx.path("a.iso");
    run(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-quiet",
            "-o",
            iso.to_str().unwrap(),
            fx.path("tree").to_str().unwrap(),
        ],
    );
    assert_good(&iso, Format::Iso);
    assert!(
        Report::accept(&inspect(&iso), Some("raw"), Some("bare")).is_err(),
        "an ISO is declared iso"
    );
}

#[test]
fn dangerous_and_unsupported_images_are_refused() {
    let fx = Fixtures::new();
    fx.qemu_img(&["create", "-f", "qcow2", "base.qcow2", "64M"]);
    assert_refused(
        &fx.qemu_img(&[
            "create",
            "-f",
            "qcow2",
            "-b",
            "base.qcow2",
            "-F",
            "qcow2",
            "over.qcow2",
        ]),
        "backing_file",
    );
    assert_refused(
        &fx.qemu_img(&[
            "create",
            "-f",
            "qcow2",
            "-o",
            "data_file=ext.raw",
            "df.qcow2",
            "64M",
        ]),
        "data_file",
    );
    assert_refused(
        &fx.qemu_img(&["create", "-f", "qed", "a.qed", "64M"]),
        "unsupported_format",
    );
    assert_refused(
        &fx.qemu_img(&["create", "-f", "qcow", "a.qcow", "64M"]),
        "unsupported_format",
    );
    let flat = assert_refused(
        &fx.qemu_img(&[
            "create",
            "-f",
            "vmdk",
            "-o",
            "subformat=monolithicFlat",
            "flat.vmdk",
            "64M",
        ]),
        "vmdk_create_type",
    );
    assert!(flat.problems.iter().any(|p| p.check == "extent"));
    fx.qemu_img(&["create", "-f", "vpc", "parent.vhd", "64M"]);
    let twogb = fx.qemu_img(&[
        "create",
        "-f",
        "vmdk",
        "-o",
        "subformat=twoGbMaxExtentSparse",
        "split.vmdk",
        "64M",
    ]);
    assert_refused(&twogb, "vmdk_create_type");
}

#[test]
fn declared_format_must_match_content() {
    let fx = Fixtures::new();
    let qcow2 = inspect(&fx.convert("qcow2", "", "x.qcow2"));
    let refusal = qcow2.accept(Some("raw"), Some("bare")).unwrap_err();
    assert_eq!(
        refusal.reason,
        "Image disk_format raw does not match stream data qcow2"
    );
    assert!(
        qcow2.accept(Some("vmdk"), Some("ovf")).is_err(),
        "a wrapping container does not excuse a mismatch"
    );
    let raw = inspect(&fx.path("data.raw"));
    assert!(raw.accept(Some("qcow2"), Some("bare")).is_err());
    assert_eq!(raw.accept(Some("ami"), Some("ami")), Ok(None));
    assert_eq!(raw.accept(Some("vmdk"), Some("ova")), Ok(None));
}

#[test]
fn luks2_from_cryptsetup_is_recognised() {
    // qemu has no LUKS2 probe (it reads such a file as raw), so the payload size is
    // checked against the data segment cryptsetup wrote: 16 MiB in a 32 MiB file.
    let fx = Fixtures::new();
    let path = fx.path("l2.img");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let mut child = Command::new("cryptsetup")
        .args([
            "luksFormat",
            "--type",
            "luks2",
            "--batch-mode",
            "--pbkdf",
            "pbkdf2",
        ])
        .args(["--pbkdf-force-iterations", "1000", "--key-file", "-"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("cryptsetup is installed by scripts/test");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct-horse")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let report = inspect(&path);
    assert!(report.safe, "{:?}", report.problems);
    assert_eq!(report.format, Format::Luks);
    assert_eq!(report.details.get("version").map(String::as_str), Some("2"));
    assert_eq!(report.virtual_size, Some(16 << 20));
}
