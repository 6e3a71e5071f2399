//! `S3BlobStore` against a real S3 server (s3s-fs on loopback): single-request and
//! multipart blobs, ranged reads, listing and deletion, aborted and abandoned uploads, a
//! killed writer's upload recovered from the journal, a store answering 500s, and an
//! unreachable store.

#[path = "support/s3s.rs"]
mod s3s;

use bytes::Bytes;
use futures::StreamExt;
use ims_blob::{S3BlobSettings, S3BlobStore, Secret};
use ims_domain::Error;
use ims_domain::ports::{BlobStore, ByteRange};
use s3s::S3s;

const PART: usize = 5 << 20;

fn store_at(endpoint: &str, node: &str) -> S3BlobStore {
    S3BlobStore::new(S3BlobSettings {
        name: "test".into(),
        endpoint: endpoint.into(),
        region: s3s::REGION.into(),
        bucket: "images".into(),
        prefix: "blobs/".into(),
        access_key_id: s3s::ACCESS_KEY.into(),
        secret_access_key: Secret::new(s3s::SECRET_KEY),
        node: node.into(),
        part_size: PART,
        concurrency: 2,
    })
    .unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn write(
    store: &S3BlobStore,
    key: &str,
    bytes: &[u8],
) -> Box<dyn ims_domain::ports::BlobWriter> {
    let mut w = store.writer(key).await.unwrap();
    for chunk in bytes.chunks(1 << 20) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w
}

/// The keys the store lists, sorted.
async fn names(store: &S3BlobStore) -> Vec<String> {
    let mut keys: Vec<String> = store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.key)
        .collect();
    keys.sort();
    keys
}

async fn read(store: &S3BlobStore, key: &str, range: Option<ByteRange>) -> Vec<u8> {
    let mut s = store.read(key, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Objects and s3s-fs's own upload bookkeeping under the bucket.
fn leftovers(server: &S3s) -> Vec<String> {
    server
        .files()
        .into_iter()
        .filter(|f| f.contains(".upload"))
        .collect()
}

#[tokio::test]
async fn blobs_of_every_size_round_trip_and_leave_no_upload_behind() {
    let server = S3s::start();
    server.bucket("images");
    let store = store_at(&server.endpoint, "node-a");

    let small = data(1000);
    write(&store, "small", &small).await.commit().await.unwrap();
    let big = data(3 * PART + 12345);
    write(&store, "big", &big).await.commit().await.unwrap();
    assert!(read(&store, "small", None).await == small);
    assert!(read(&store, "big", None).await == big);
    let (a, b) = (PART as u64 - 3, 2 * PART as u64 + 7);
    assert!(
        read(&store, "big", Some(ByteRange { start: a, end: b })).await
            == big[a as usize..=b as usize]
    );
    let last = big.len() as u64 - 1;
    assert_eq!(
        read(
            &store,
            "big",
            Some(ByteRange {
                start: last,
                end: last
            })
        )
        .await,
        vec![big[last as usize]]
    );
    let listed = store.keys().await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(
        listed
            .iter()
            .all(|b| (now - b.written).abs() < time::Duration::minutes(1)),
        "{listed:?}"
    );
    assert_eq!(names(&store).await, ["big", "small"]);
    assert!(server.root.join("images/blobs/big").is_file());
    assert!(leftovers(&server).is_empty(), "{:?}", leftovers(&server));

    store.delete("small").await.unwrap();
    store.delete("small").await.unwrap();
    assert!(matches!(
        store.read("small", None).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(names(&store).await, ["big"]);
}

#[tokio::test]
async fn aborted_dropped_and_killed_uploads_are_cleaned_up() {
    let server = S3s::start();
    server.bucket("images");
    let store = store_at(&server.endpoint, "node-a");

    // Aborted after two parts.
    write(&store, "aborted", &data(2 * PART + 1))
        .await
        .abort()
        .await;
    // Dropped unfinished: aborted in the background.
    drop(write(&store, "dropped", &data(2 * PART + 1)).await);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !leftovers(&server).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            leftovers(&server)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(store.keys().await.unwrap().is_empty());

    // A writer whose process died: neither committed nor aborted. Its upload and journal
    // entry stay until this node's next start recovers them; another node's do not go.
    let killed = write(&store, "killed", &data(2 * PART + 1)).await;
    std::mem::forget(killed);
    let other = store_at(&server.endpoint, "node-b");
    std::mem::forget(write(&other, "elsewhere", &data(PART + 1)).await);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let left = leftovers(&server);
    assert!(
        !left.is_empty(),
        "the killed upload left nothing to recover"
    );
    let restarted = store_at(&server.endpoint, "node-a");
    assert_eq!(restarted.recover().await.unwrap(), 1);
    assert_eq!(
        restarted.recover().await.unwrap(),
        0,
        "recovery is idempotent"
    );
    assert!(
        server
            .files()
            .iter()
            .any(|f| f.contains(".uploads/node-b/")),
        "another node's journal was touched"
    );
    // Node b never starts again: after the stale-write age, any node removes its upload
    // (and nothing younger).
    let now = time::OffsetDateTime::now_utc();
    let hour = time::Duration::hours(1);
    assert_eq!(restarted.abort_stale_writes(now - hour).await.unwrap(), 0);
    assert!(!leftovers(&server).is_empty());
    assert_eq!(restarted.abort_stale_writes(now + hour).await.unwrap(), 1);
    assert!(leftovers(&server).is_empty(), "{:?}", leftovers(&server));
    assert!(store.keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_after_its_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = store_at(&format!("http://127.0.0.1:{port}"), "node-a");
    let started = std::time::Instant::now();
    assert!(matches!(
        store.read("x", None).await,
        Err(Error::Unavailable(_))
    ));
    let mut w = store.writer("x").await.unwrap();
    w.write(Bytes::from_static(b"abc")).await.unwrap();
    assert!(matches!(w.commit().await, Err(Error::Unavailable(_))));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// A loopback proxy in front of `upstream` that answers the first `fail` connections with
/// a 500 (as an overloaded store does), and pipes every later one through. Returns its
/// endpoint and the count of connections it failed.
async fn flaky_proxy(
    upstream: &str,
    fail: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = failed.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                if counter.fetch_add(1, Ordering::SeqCst) < fail {
                    let mut head = [0u8; 1024];
                    let _ = client.read(&mut head).await;
                    let _ = client
                        .write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
                counter.fetch_sub(1, Ordering::SeqCst);
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (endpoint, failed)
}

#[tokio::test]
async fn a_store_answering_500s_is_retried_and_then_unavailable() {
    let server = S3s::start();
    server.bucket("images");
    // A few 500s: every request is retried until the store answers; the blob is whole.
    let (endpoint, failed) = flaky_proxy(&server.endpoint, 2).await;
    let store = store_at(&endpoint, "node-a");
    let bytes = data(2 * PART + 7);
    write(&store, "flaky", &bytes).await.commit().await.unwrap();
    assert_eq!(failed.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(read(&store, "flaky", None).await, bytes);

    // Nothing but 500s: the write fails as Unavailable (503 to clients, a retry for
    // jobs) after its attempts, quickly, and leaves no object behind.
    let (endpoint, _) = flaky_proxy(&server.endpoint, usize::MAX).await;
    let down = store_at(&endpoint, "node-a");
    let started = std::time::Instant::now();
    let mut w = down.writer("never").await.unwrap();
    w.write(Bytes::from_static(b"abc")).await.unwrap();
    assert!(matches!(w.commit().await, Err(Error::Unavailable(_))));
    assert!(matches!(
        down.read("flaky", None).await,
        Err(Error::Unavailable(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert_eq!(names(&store).await, ["flaky"]);
    assert!(leftovers(&server).is_empty(), "{:?}", leftovers(&server));
}
