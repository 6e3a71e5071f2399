//! Flattening a disk chain by hand must give what qemu sees: every chain here is made
//! with `qemu-img` and written with `qemu-io`, flattened, and then checked by qemu itself
//! (`qemu-img check` finds no error or leak, `qemu-img compare` finds the guest content
//! identical) and by the format engine (a clean qcow2 of the disk's virtual size).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use ims_format::flatten::{FlattenError, Flattener, Layer};
use ims_format::{Format, inspect_file};

fn run(dir: &Path, cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} could not start (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Chain {
    dir: tempfile::TempDir,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A raw file of `len` bytes of a repeating, position-dependent pattern.
    fn raw(&self, name: &str, len: usize) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8 + 1).collect();
        std::fs::write(self.path(name), data).unwrap();
    }

    fn qemu_img(&self, args: &[&str]) -> String {
        run(self.dir.path(), "qemu-img", args)
    }

    /// A qcow2 overlay `name` of `size` on `backing` (of `format`).
    fn overlay(&self, backing: &str, format: &str, name: &str, size: &str) {
        self.qemu_img(&[
            "create", "-q", "-f", "qcow2", "-b", backing, "-F", format, name, size,
        ]);
    }

    /// `qemu-io` commands on a qcow2 file (its backing, if any, as its header names it).
    fn write(&self, name: &str, commands: &[&str]) {
        let mut args = vec!["-f", "qcow2"];
        for c in commands {
            args.extend(["-c", c]);
        }
        args.push(name);
        run(self.dir.path(), "qemu-io", &args);
    }

    /// Flattens `top` (qcow2) over `backing` (name, format), writes the output to
    /// `out.qcow2`, and checks it against the chain with qemu and the format engine.
    fn flatten_and_check(&self, top: &str, backing: Option<(&str, &str)>) -> Flattener {
        let flat = self.flattener(top, backing).expect("flattened");
        let expected_len = flat.len();
        let mut out = Vec::new();
        let mut chunks = 0;
        self.flattener(top, backing)
            .unwrap()
            .write(&mut |chunk| {
                assert!(chunk.len() <= 1 << 20, "chunks stay bounded");
                chunks += 1;
                out.extend_from_slice(&chunk);
                true
            })
            .unwrap();
        assert_eq!(
            out.len() as u64,
            expected_len,
            "the announced length is exact"
        );
        assert!(chunks > 1);
        let output = self.path("out.qcow2");
        std::fs::write(&output, &out).unwrap();
        let check = self.qemu_img(&["check", "--output=json", "-f", "qcow2", "out.qcow2"]);
        let check: serde_json::Value = serde_json::from_str(&check).unwrap();
        assert_eq!(check["check-errors"], 0, "{check}");
        assert!(
            check.get("leaks").is_none() && check.get("corruptions").is_none(),
            "{check}"
        );
        self.qemu_img(&["compare", "-f", "qcow2", "-F", "qcow2", top, "out.qcow2"]);
        let report = inspect_file(&output).unwrap();
        assert_eq!(report.format, Format::Qcow2);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let top_size = inspect_file(&self.path(top)).unwrap().virtual_size;
        assert_eq!(report.virtual_size, top_size);
        flat
    }

    fn flattener(
        &self,
        top: &str,
        backing: Option<(&str, &str)>,
    ) -> Result<Flattener, FlattenError> {
        let mut layers = vec![Layer::qcow2(File::open(self.path(top)).unwrap())?];
        if let Some((name, format)) = backing {
            let file = File::open(self.path(name)).unwrap();
            layers.push(match format {
                "raw" => Layer::raw(file)?,
                _ => Layer::qcow2(file)?,
            });
        }
        Flattener::new(layers)
    }
}

#[test]
fn an_overlay_on_a_raw_image_with_writes_zeroes_and_a_larger_size() {
    let c = Chain::new();
    c.raw("base.raw", (3 << 20) + 4096 + 17);
    c.overlay("base.raw", "raw", "vol.qcow2", "9M");
    c.write(
        "vol.qcow2",
        &[
            "write -P 0xab 1M 64k",
            "write -P 0xcd 100000 3000",
            "write -z 2M 128k",
            "write -P 0x11 7M 4096",
        ],
    );
    let flat = c.flatten_and_check("vol.qcow2", Some(("base.raw", "raw")));
    // The backing's data and the written clusters, not the untouched tail past it.
    assert!(flat.data_len() < 5 << 20, "{}", flat.data_len());
}

#[test]
fn an_untouched_overlay_reads_all_of_its_backing() {
    let c = Chain::new();
    c.raw("base.raw", 5 << 20);
    c.overlay("base.raw", "raw", "vol.qcow2", "5M");
    let flat = c.flatten_and_check("vol.qcow2", Some(("base.raw", "raw")));
    assert_eq!(flat.data_len(), 5 << 20);
}

#[test]
fn an_overlay_on_a_qcow2_image_of_another_cluster_size() {
    let c = Chain::new();
    c.raw("data.raw", 2 << 20);
    c.qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "-o",
        "cluster_size=4096",
        "data.raw",
        "base.qcow2",
    ]);
    c.qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "cluster_size=2M",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        "vol.qcow2",
        "6M",
    ]);
    c.write("vol.qcow2", &["write -P 0x5a 4M 512", "write -z 0 4096"]);
    c.flatten_and_check("vol.qcow2", Some(("base.qcow2", "qcow2")));
}

#[test]
fn a_qcow2_disk_without_backing_keeps_only_what_was_written() {
    let c = Chain::new();
    c.qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "compat=0.10",
        "disk.qcow2",
        "1G",
    ]);
    c.write(
        "disk.qcow2",
        &["write -P 0x42 0 1M", "write -P 0x43 700M 65537"],
    );
    let flat = c.flatten_and_check("disk.qcow2", None);
    assert_eq!(flat.data_len(), (1 << 20) + 2 * 65536);
    assert!(flat.len() < 2 << 20, "sparse stays sparse: {}", flat.len());
}

#[test]
fn compressed_clusters_are_left_to_qemu_img() {
    let c = Chain::new();
    c.raw("data.raw", 1 << 20);
    c.qemu_img(&[
        "convert",
        "-q",
        "-c",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "data.raw",
        "base.qcow2",
    ]);
    c.overlay("base.qcow2", "qcow2", "vol.qcow2", "1M");
    assert!(matches!(
        c.flattener("vol.qcow2", Some(("base.qcow2", "qcow2"))),
        Err(FlattenError::Unsupported(_))
    ));
}

#[test]
fn a_file_that_is_not_qcow2_or_lies_about_its_tables_is_refused() {
    let c = Chain::new();
    c.raw("data.raw", 1 << 20);
    assert!(matches!(
        Layer::qcow2(File::open(c.path("data.raw")).unwrap()),
        Err(FlattenError::Malformed(_))
    ));
    c.qemu_img(&["create", "-q", "-f", "qcow2", "disk.qcow2", "1G"]);
    // An L1 table claimed far past the end of the file.
    let mut bytes = std::fs::read(c.path("disk.qcow2")).unwrap();
    bytes[40..48].copy_from_slice(&(1u64 << 40).to_be_bytes());
    std::fs::write(c.path("disk.qcow2"), bytes).unwrap();
    assert!(matches!(
        Layer::qcow2(File::open(c.path("disk.qcow2")).unwrap()),
        Err(FlattenError::Malformed(_))
    ));
}

#[test]
fn writing_stops_when_the_reader_goes_away() {
    let c = Chain::new();
    c.raw("base.raw", 4 << 20);
    c.overlay("base.raw", "raw", "vol.qcow2", "4M");
    let mut calls = 0;
    c.flattener("vol.qcow2", Some(("base.raw", "raw")))
        .unwrap()
        .write(&mut |_| {
            calls += 1;
            calls < 2
        })
        .unwrap();
    assert_eq!(calls, 2);
}
