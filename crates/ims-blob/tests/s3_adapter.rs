//! `S3Buckets` against a real S3 server (s3s-fs on loopback): the `BucketSource`
//! contract as `FsBuckets` keeps it, with multipart uploads.

#[path = "support/s3s.rs"]
mod s3s;

use bytes::Bytes;
use futures::StreamExt;
use ims_blob::{Flavor, PART_SIZE, S3Buckets, S3Settings, Secret};
use ims_domain::Error;
use ims_domain::bucket::ObjectRef;
use ims_domain::ports::{BlobWriter, BucketSource};
use s3s::S3s;

fn store(server: &S3s, secret: &str) -> S3Buckets {
    S3Buckets::new(S3Settings {
        name: "test".into(),
        flavor: Flavor::S3,
        endpoint: server.endpoint.clone(),
        region: s3s::REGION.into(),
        access_key_id: s3s::ACCESS_KEY.into(),
        secret_access_key: Secret::new(secret),
    })
    .unwrap()
}

fn obj(s: &str) -> ObjectRef {
    ObjectRef::parse(s).unwrap()
}

/// Deterministic bytes that differ from part to part.
fn data(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn put(b: &S3Buckets, target: &str, bytes: &[u8]) -> Box<dyn BlobWriter> {
    let mut w = b.create(&obj(target)).await.unwrap();
    for chunk in bytes.chunks(1 << 20) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w
}

async fn read(b: &S3Buckets, source: &str) -> Vec<u8> {
    let mut s = b.open(&obj(source)).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

fn pending_uploads(server: &S3s) -> Vec<String> {
    server
        .files()
        .into_iter()
        .filter(|f| f.starts_with(".upload"))
        .collect()
}

/// Waits up to 10 s for `cond`, letting background tasks run.
async fn eventually(cond: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn head_open_create_list_like_the_embedded_buckets() {
    let server = S3s::start();
    let b = store(&server, s3s::SECRET_KEY);

    // A missing bucket and a missing object are told apart on every operation.
    for r in [
        b.head(&obj("nobucket:a")).await.map(|_| ()),
        b.open(&obj("nobucket:a")).await.map(|_| ()),
        b.create(&obj("nobucket:a")).await.map(|_| ()),
        b.list("nobucket", "").await.map(|_| ()),
    ] {
        assert!(
            matches!(
                r,
                Err(Error::NotFound {
                    kind: ims_domain::Entity::Bucket,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    server.bucket("images");
    for r in [
        b.head(&obj("images:dir/a.qcow2")).await.map(|_| ()),
        b.open(&obj("images:dir/a.qcow2")).await.map(|_| ()),
    ] {
        assert!(
            matches!(
                r,
                Err(Error::NotFound {
                    kind: ims_domain::Entity::Object,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert!(b.list("images", "").await.unwrap().is_empty());

    // Three parts: 2.5 × the part size, written in 1 MiB chunks.
    let big = data(PART_SIZE * 5 / 2);
    let w = put(&b, "images:dir/big.raw", &big).await;
    assert!(
        b.head(&obj("images:dir/big.raw")).await.is_err(),
        "invisible before commit"
    );
    w.commit().await.unwrap();
    let info = b.head(&obj("images:dir/big.raw")).await.unwrap();
    assert_eq!(info.size, big.len() as u64);
    assert_eq!(
        info.storage_class, "STANDARD",
        "s3s-fs sends no class header"
    );
    assert_eq!(read(&b, "images:dir/big.raw").await, big);

    // A small object (one PutObject), a key with a colon and spaces, an empty object.
    put(&b, "images:dir/centos:7 x.qcow2", b"small")
        .await
        .commit()
        .await
        .unwrap();
    assert_eq!(read(&b, "images:dir/centos:7 x.qcow2").await, b"small");
    b.create(&obj("images:other/empty"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(b.head(&obj("images:other/empty")).await.unwrap().size, 0);

    let listed = b.list("images", "dir/").await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|o| (o.key.as_str(), o.size))
            .collect::<Vec<_>>(),
        [
            ("dir/big.raw", big.len() as u64),
            ("dir/centos:7 x.qcow2", 5)
        ]
    );
    assert_eq!(b.list("images", "").await.unwrap().len(), 3);
    assert!(b.list("images", "nothing-here/").await.unwrap().is_empty());

    // Never overwritten.
    assert!(matches!(
        b.create(&obj("images:dir/big.raw")).await,
        Err(Error::Conflict(_))
    ));
    assert!(pending_uploads(&server).is_empty());
    // And the data landed where s3s-fs keeps bucket objects.
    assert_eq!(
        std::fs::read(server.root.join("images/dir/centos:7 x.qcow2")).unwrap(),
        b"small"
    );
}

#[tokio::test]
async fn abort_and_drop_leave_nothing_behind() {
    let server = S3s::start();
    server.bucket("images");
    let b = store(&server, s3s::SECRET_KEY);

    // opendal holds back one part (to choose a one-shot PUT for small objects) and buffers
    // the next, so parts go up from the third on; they go up in background tasks.
    let w = put(&b, "images:aborted", &data(PART_SIZE * 3)).await;
    eventually(|| !pending_uploads(&server).is_empty(), "no upload started").await;
    w.abort().await;
    assert!(matches!(
        b.head(&obj("images:aborted")).await,
        Err(Error::NotFound {
            kind: ims_domain::Entity::Object,
            ..
        })
    ));
    assert_eq!(pending_uploads(&server), Vec::<String>::new());

    // A writer dropped mid-way (a cancelled job) aborts its upload in the background.
    let w = put(&b, "images:dropped", &data(PART_SIZE * 3)).await;
    eventually(|| !pending_uploads(&server).is_empty(), "no upload started").await;
    drop(w);
    eventually(|| pending_uploads(&server).is_empty(), "upload not aborted").await;
    assert!(b.head(&obj("images:dropped")).await.is_err());
}

#[tokio::test]
async fn an_object_that_appears_during_the_upload_is_not_overwritten() {
    let server = S3s::start();
    server.bucket("images");
    let b = store(&server, s3s::SECRET_KEY);

    // Both writers pass the existence check; the conditional completion stops the second.
    for (first_len, second_len) in [(PART_SIZE * 2, PART_SIZE * 2), (10, 20)] {
        let key = format!("images:race-{first_len}");
        let first = data(first_len);
        let w1 = put(&b, &key, &first).await;
        let w2 = put(&b, &key, &data(second_len)).await;
        w1.commit().await.unwrap();
        let second = w2.commit().await;
        assert!(matches!(second, Err(Error::Conflict(_))), "{second:?}");
        assert_eq!(read(&b, &key).await, first, "the first object stays");
    }
    assert!(pending_uploads(&server).is_empty());
}

#[tokio::test]
async fn wrong_keys_are_not_taken_for_a_missing_object() {
    let server = S3s::start();
    server.bucket("images");
    let good = store(&server, s3s::SECRET_KEY);
    good.create(&obj("images:a"))
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    let bad = store(&server, "not-the-secret");
    // 403 from every request: the bucket is "not accessible" (IMS's IMG.0069).
    let r = bad.head(&obj("images:a")).await;
    assert!(
        matches!(&r, Err(Error::NotFound { kind: ims_domain::Entity::Bucket, id }) if id.contains("not accessible")),
        "{r:?}"
    );
    assert!(bad.create(&obj("images:b")).await.is_err());
    assert!(good.head(&obj("images:b")).await.is_err());
}
