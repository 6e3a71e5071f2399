//! The qemu-img wrapper against the real qemu-img: round trips between formats with
//! identical content, inspection before and after, timeouts, limits and progress.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ims_format::Format;
use ims_qemu::{Conversion, ConvertError, Limits, QemuImg};

fn qemu_img(dir: &Path, args: &[&str]) {
    let out = Command::new("qemu-img")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 24 MiB raw disk with data scattered through it.
fn source(dir: &Path) -> std::path::PathBuf {
    let mut data = vec![0u8; 24 << 20];
    for (i, chunk) in data
        .chunks_mut(1 << 20)
        .enumerate()
        .filter(|(i, _)| i % 3 != 1)
    {
        chunk
            .iter_mut()
            .enumerate()
            .for_each(|(j, b)| *b = ((i * 31 + j) % 253) as u8);
    }
    data[510] = 0;
    let path = dir.join("src.raw");
    std::fs::write(&path, data).unwrap();
    path
}

fn same_content(a: &Path, fa: &str, b: &Path, fb: &str) -> bool {
    Command::new("qemu-img")
        .args(["compare", "-q", "-f", fa, "-F", fb])
        .arg(a)
        .arg(b)
        .status()
        .unwrap()
        .success()
}

fn job(input: &Path, input_format: Format, output: &Path, output_format: Format) -> Conversion {
    Conversion {
        input: input.to_path_buf(),
        input_format,
        output: output.to_path_buf(),
        output_format,
    }
}

#[tokio::test]
async fn converts_between_every_writable_format_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let qemu = QemuImg::new("qemu-img", Limits::default(), 2);
    for format in [
        Format::Qcow2,
        Format::Vmdk,
        Format::Vhd,
        Format::Vhdx,
        Format::Vdi,
    ] {
        let out = dir.path().join(format!("out.{format}"));
        let mut seen = Vec::new();
        let report = qemu
            .convert(&job(&src, Format::Raw, &out, format), |p| seen.push(p))
            .await
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(report.format, format);
        assert!(report.virtual_size.unwrap() >= 24 << 20);
        assert_eq!(seen.last(), Some(&100.0), "{format}: progress {seen:?}");
        assert!(
            same_content(&src, "raw", &out, format.qemu_name().unwrap()),
            "{format}"
        );
        let back = dir.path().join(format!("back-{format}.raw"));
        qemu.convert(&job(&out, format, &back, Format::Raw), |_| {})
            .await
            .unwrap();
        assert!(
            same_content(&src, "raw", &back, "raw"),
            "{format} back to raw"
        );
    }
}

#[tokio::test]
async fn refuses_unsafe_or_misnamed_input_without_running_qemu() {
    let dir = tempfile::tempdir().unwrap();
    qemu_img(dir.path(), &["create", "-f", "qcow2", "base.qcow2", "16M"]);
    qemu_img(
        dir.path(),
        &[
            "create",
            "-f",
            "qcow2",
            "-b",
            "base.qcow2",
            "-F",
            "qcow2",
            "over.qcow2",
        ],
    );
    let qemu = QemuImg::new("qemu-img", Limits::default(), 1);
    let out = dir.path().join("out.raw");
    let err = qemu
        .convert(
            &job(
                &dir.path().join("over.qcow2"),
                Format::Qcow2,
                &out,
                Format::Raw,
            ),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConvertError::Refused(ref r) if r.contains("backing file")),
        "{err}"
    );
    let err = qemu
        .convert(
            &job(
                &dir.path().join("base.qcow2"),
                Format::Raw,
                &out,
                Format::Qcow2,
            ),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConvertError::Refused(ref r) if r.contains("does not match")),
        "{err}"
    );
    assert!(!out.exists());
    let err = qemu
        .convert(
            &job(
                &dir.path().join("base.qcow2"),
                Format::Qcow2,
                &out,
                Format::Zvhd2,
            ),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConvertError::Unsupported(Format::Zvhd2)));
}

#[tokio::test]
async fn a_conversion_past_its_time_limit_is_killed_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let limits = Limits {
        timeout: Duration::from_millis(1),
        ..Limits::default()
    };
    let qemu = QemuImg::new("qemu-img", limits, 1);
    let out = dir.path().join("out.qcow2");
    let err = qemu
        .convert(&job(&src, Format::Raw, &out, Format::Qcow2), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ConvertError::Timeout(_)), "{err}");
    assert!(!out.exists());
    assert_eq!(qemu.free_slots(), 1, "the slot is released");
}

#[tokio::test]
async fn an_address_space_limit_stops_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let limits = Limits {
        address_space: 8 << 20,
        ..Limits::default()
    };
    let qemu = QemuImg::new("qemu-img", limits, 1);
    let out = dir.path().join("out.qcow2");
    let err = qemu
        .convert(&job(&src, Format::Raw, &out, Format::Qcow2), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ConvertError::Failed(_)), "{err}");
}

#[tokio::test]
async fn conversions_wait_for_a_free_slot() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let qemu = QemuImg::new("qemu-img", Limits::default(), 1);
    let (a, b) = (dir.path().join("a.qcow2"), dir.path().join("b.qcow2"));
    let (ja, jb) = (
        job(&src, Format::Raw, &a, Format::Qcow2),
        job(&src, Format::Raw, &b, Format::Qcow2),
    );
    let log = std::sync::Mutex::new(Vec::new());
    let run = |j: &'static str, conv: &Conversion| {
        let (qemu, log) = (&qemu, &log);
        let conv = conv.clone();
        async move {
            qemu.convert(&conv, |p| log.lock().unwrap().push((j, p)))
                .await
                .unwrap();
        }
    };
    tokio::join!(run("a", &ja), run("b", &jb));
    let log = log.into_inner().unwrap();
    // With one slot, one conversion reports 100% before the other reports anything.
    let first = log[0].0;
    let first_done = log
        .iter()
        .position(|&(j, p)| j == first && p == 100.0)
        .unwrap();
    assert!(
        log[..first_done].iter().all(|&(j, _)| j == first),
        "{log:?}"
    );
}

/// The converter spools and converts through files that have no name: while it reads its
/// input, and after it answered, the scratch directory is empty; the output it streams
/// holds the input's content.
#[tokio::test]
async fn the_converter_leaves_no_named_scratch_file() {
    use futures::StreamExt;
    use ims_domain::ports::Converter;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let scratch = dir.path().join("scratch");
    let converter =
        ims_qemu::QemuConverter::new(QemuImg::new("qemu-img", Limits::default(), 2), &scratch);
    let named = |d: &Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    for format in [Format::Qcow2, Format::Vmdk, Format::Vhdx] {
        let data = std::fs::read(&src).unwrap();
        let seen_named = Arc::new(AtomicUsize::new(0));
        let (check, at) = (Arc::clone(&seen_named), scratch.clone());
        let chunks: Vec<std::io::Result<bytes::Bytes>> = data
            .chunks(1 << 20)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let input = futures::stream::iter(chunks).inspect(move |_| {
            check.fetch_add(named(&at), Ordering::Relaxed);
        });
        let mut out = converter
            .convert(Box::pin(input), Format::Raw, format)
            .await
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(
            seen_named.load(Ordering::Relaxed),
            0,
            "{format}: a named input"
        );
        assert_eq!(named(&scratch), 0, "{format}: a named output");
        let path = dir.path().join(format!("streamed.{format}"));
        let mut bytes = Vec::new();
        while let Some(chunk) = out.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        std::fs::write(&path, bytes).unwrap();
        assert!(
            same_content(&src, "raw", &path, format.qemu_name().unwrap()),
            "{format}"
        );
    }
}
