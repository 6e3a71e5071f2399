//! `ims bucket`: staging files in the embedded buckets from the command line.

mod common;

use std::path::Path;
use std::process::Output;

fn ims(data: &Path, args: &[&str]) -> Output {
    common::ims_bucket(None, data, args)
}

#[test]
fn put_ls_get_round_trip_and_names_stay_in_their_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("disk.img");
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let f = file.to_str().unwrap();

    let missing = ims(&data, &["put", f, "images:dir/disk.img"]);
    assert!(!missing.status.success(), "no such bucket yet");
    assert!(ims(&data, &["create", "images"]).status.success());
    assert!(
        ims(&data, &["put", f, "images:dir/disk.img"])
            .status
            .success()
    );
    let again = ims(&data, &["put", f, "images:dir/disk.img"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let ls = ims(&data, &["ls", "images:dir/"]);
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout).trim(),
        "3000000 dir/disk.img"
    );
    let out = dir.path().join("back.img");
    assert!(
        ims(
            &data,
            &["get", "images:dir/disk.img", out.to_str().unwrap()]
        )
        .status
        .success()
    );
    assert_eq!(std::fs::read(&out).unwrap(), bytes);

    for bad in [
        "images:../escape",
        "images:/etc/passwd",
        "images:a/../../x",
        "../x:y",
    ] {
        let r = ims(&data, &["put", f, bad]);
        assert!(!r.status.success(), "{bad} accepted");
    }
    assert!(!data.join("escape").exists() && !data.join("buckets/escape").exists());
}
