//! Data transfers under attack, through the real binary: stalled uploads (H5), parallel
//! uploads against the size quota (M7), and the modes of the data on disk (L3).

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::raw_image;
use common::{Api, Server};
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STALLED: usize = 300;
const PER_PROJECT: usize = 280;
const IDLE_SECS: u64 = 5;
/// What "still answers" means while the attack runs.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Threads the server may have while the attack runs (main reached about 1,000 with
/// 260 stalled uploads).
const MAX_THREADS: usize = 100;

async fn member(server: &Server, project: &str, user: &str) -> Api {
    server.add_member(project, user, "pw-member");
    Api::new(server, server.token(user, "pw-member", project).await)
}

/// Opens `PUT /v2/images/{id}/file` on a raw connection and sends the headers and
/// `first` bytes of the body.
async fn open_upload(
    server: &Server,
    token: &str,
    id: &str,
    length: usize,
    declared: bool,
    first: &[u8],
) -> TcpStream {
    let mut conn = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let declared = if declared {
        format!("x-openstack-image-size: {length}\r\n")
    } else {
        String::new()
    };
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nx-auth-token: {token}\r\n\
         accept: application/json\r\ncontent-type: application/octet-stream\r\n\
         content-length: {length}\r\n{declared}\r\n",
        server.port
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(first).await.unwrap();
    conn
}

/// The status and body of the response on `conn`, if one arrives within `wait`.
async fn response(conn: &mut TcpStream, wait: Duration) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut chunk = [0u8; 4096];
        let n = match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                return Some((status, body.to_string()));
            }
        }
        if n == 0 {
            return None;
        }
    }
}

fn threads_of(server: &Server) -> usize {
    let pid = server.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn count_status(api: &Api, status: &str) -> usize {
    let r = api
        .req(
            Method::GET,
            &format!("/v2/images?status={status}&limit=1000"),
        )
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    page["images"].as_array().unwrap().len()
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(ANSWER_WITHIN, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within {ANSWER_WITHIN:?}"));
    eprintln!("{what}: {:?}", started.elapsed());
    out
}

/// H5: 300 uploads opened by one member that send (almost) nothing. Logins, downloads
/// and another project's upload still answer; the project's uploads over its cap get
/// 429; the server's threads stay bounded; the stalled ones fail after the idle timeout
/// and their images are queued again.
#[tokio::test]
async fn stalled_uploads_leave_logins_and_data_working() {
    let server = Server::start(&[
        (
            "IMS_TRANSFERS__MAX_UPLOADS_PER_PROJECT",
            &PER_PROJECT.to_string(),
        ),
        (
            "IMS_TRANSFERS__MAX_UPLOADS",
            &(PER_PROJECT + 10).to_string(),
        ),
        (
            "IMS_TRANSFERS__BODY_IDLE_TIMEOUT_SECS",
            &IDLE_SECS.to_string(),
        ),
        // The 300 creates below leave up to 300 kept-alive client connections besides
        // the 300 uploads: room for both over `[http] max_connections` (512), which is
        // not what this test is about (transport.rs tests the cap).
        ("IMS_HTTP__MAX_CONNECTIONS", "1024"),
    ])
    .await;
    let admin = Api::new(&server, server.admin_token().await);
    let small = raw_image(&admin, "small").await;
    let small_data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(admin.upload(&small, small_data.clone()).await.status(), 204);

    let bob = member(&server, "p2", "bob").await;
    let ids = futures::future::join_all((0..STALLED).map(|i| {
        let bob = &bob;
        async move { raw_image(bob, &format!("stall-{i}")).await }
    }))
    .await;
    let mut conns = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // Half send nothing at all, half a few bytes: neither may hold a thread.
        let first = if i % 2 == 0 {
            &[][..]
        } else {
            &[7u8; 1000][..]
        };
        conns.push(open_upload(&server, &bob.token, id, 1 << 20, false, first).await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while count_status(&bob, "saving").await < PER_PROJECT && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attack_started = Instant::now();

    // While they stall: a password login, a small download, another project's upload.
    timed("password login", server.token("bob", "pw-member", "p2")).await;
    let got = timed("4 KiB download", async {
        let r = admin
            .req(Method::GET, &format!("/v2/images/{small}/file"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap()
    })
    .await;
    assert_eq!(got.as_ref(), small_data.as_slice());
    let other = raw_image(&admin, "during-attack").await;
    let r = timed(
        "1 MiB upload of another project",
        admin.upload(&other, vec![1; 1 << 20]),
    )
    .await;
    assert_eq!(r.status(), 204);
    let threads = threads_of(&server);
    eprintln!("server threads during the attack: {threads}");
    assert!(threads <= MAX_THREADS, "{threads} threads");
    // The checks ran while every admitted upload still stalled.
    assert_eq!(count_status(&bob, "saving").await, PER_PROJECT);
    eprintln!("checks done {:?} into the attack", attack_started.elapsed());

    // The uploads over the project's cap were refused at once, the rest time out.
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for conn in &mut conns {
        let (status, body) = response(conn, Duration::from_secs(IDLE_SECS + 10))
            .await
            .expect("every stalled upload gets an answer");
        match status {
            429 => assert!(body.contains("Too many uploads"), "{body}"),
            400 => assert!(body.contains("No image data arrived"), "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
        *statuses.entry(status).or_default() += 1;
    }
    assert_eq!(
        statuses,
        [(400, PER_PROJECT), (429, STALLED - PER_PROJECT)].into()
    );
    assert_eq!(count_status(&bob, "saving").await, 0);
    assert_eq!(count_status(&bob, "queued").await, STALLED);
    // Nothing of theirs is left in the store: the one temp file per upload came only
    // with a first full chunk, which none of them sent.
    assert_eq!(
        server.stored_files().len(),
        2,
        "{:?}",
        server.stored_files()
    );
}

fn rss_kib(server: &Server) -> usize {
    let pid = server.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// H5: 100 downloads of a 32 MiB image whose clients never read. They take no thread
/// each and buffer at most about a MiB each in the server (main: a thread and up to
/// 5 MiB per download), and a login and another download still answer.
#[tokio::test]
async fn downloads_whose_clients_do_not_read_hold_no_thread_and_little_memory() {
    const READERS: usize = 100;
    let server = Server::start(&[]).await;
    let admin = Api::new(&server, server.admin_token().await);
    let big = raw_image(&admin, "big").await;
    assert_eq!(admin.upload(&big, vec![9; 32 << 20]).await.status(), 204);
    let small = raw_image(&admin, "small").await;
    assert_eq!(admin.upload(&small, vec![3; 4096]).await.status(), 204);
    let (threads_before, rss_before) = (threads_of(&server), rss_kib(&server));
    let mut conns = Vec::new();
    for _ in 0..READERS {
        let mut conn = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let head = format!(
            "GET /v2/images/{big}/file HTTP/1.1\r\nhost: 127.0.0.1\r\nx-auth-token: {}\r\n\r\n",
            admin.token
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conns.push(conn);
    }
    // Let the server fill the sockets until every one pushes back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (threads, rss) = (threads_of(&server), rss_kib(&server));
    let growth_mib = rss.saturating_sub(rss_before) / 1024;
    eprintln!(
        "threads {threads_before} -> {threads}, RSS +{growth_mib} MiB for {READERS} stalled downloads"
    );
    assert!(threads <= MAX_THREADS, "{threads} threads");
    assert!(growth_mib <= 2 * READERS, "RSS grew by {growth_mib} MiB");
    timed("password login", server.admin_token()).await;
    let got = timed("4 KiB download", async {
        let r = admin
            .req(Method::GET, &format!("/v2/images/{small}/file"))
            .send()
            .await
            .unwrap();
        r.bytes().await.unwrap()
    })
    .await;
    assert_eq!(got.len(), 4096);
    drop(conns);
}

/// H5: over the node's cap, another project's upload is refused with 503 (server-side
/// saturation), and works again once a place is free.
#[tokio::test]
async fn the_node_cap_answers_503_until_a_place_is_free() {
    let server = Server::start(&[
        ("IMS_TRANSFERS__MAX_UPLOADS", "2"),
        ("IMS_TRANSFERS__BODY_IDLE_TIMEOUT_SECS", "30"),
    ])
    .await;
    let admin = Api::new(&server, server.admin_token().await);
    let bob = member(&server, "p2", "bob").await;
    let mut conns = Vec::new();
    for i in 0..2 {
        let id = raw_image(&bob, &format!("hold-{i}")).await;
        conns.push(open_upload(&server, &bob.token, &id, 10, false, b"12345").await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_status(&bob, "saving").await < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = raw_image(&admin, "third").await;
    let r = admin.upload(&id, vec![1; 10]).await;
    assert_eq!(r.status(), 503);
    assert_eq!(admin.show(&id).await["status"], "queued");
    // One of bob's uploads completes; its place is free again.
    conns[0].write_all(b"67890").await.unwrap();
    let (status, _) = response(&mut conns[0], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, 204);
    assert_eq!(admin.upload(&id, vec![1; 10]).await.status(), 204);
}

/// M7: three overlapping 900,000-byte uploads of one project with a 1,000,000-byte quota:
/// one succeeds, the other two get the quota error and their images are queued again.
/// Once with the size declared up front, once without (reserved as bytes arrive).
#[tokio::test]
async fn parallel_uploads_cannot_share_the_size_quota() {
    let server = Server::start(&[("IMS_IMAGES__QUOTA_IMAGE_SIZE_TOTAL", "1000000")]).await;
    let bob = member(&server, "p2", "bob").await;
    let data: Vec<u8> = (0..900_000u32).map(|i| (i % 253) as u8).collect();
    for declared in [true, false] {
        let mut started = Vec::new();
        for i in 0..3 {
            let id = raw_image(&bob, &format!("q-{declared}-{i}")).await;
            let conn = open_upload(
                &server,
                &bob.token,
                &id,
                data.len(),
                declared,
                &data[..100_000],
            )
            .await;
            started.push((id, conn));
        }
        // All three are under way; two must be refused before they send the rest.
        let mut refused = 0;
        let mut winner = None;
        for (id, conn) in &mut started {
            match response(conn, Duration::from_secs(3)).await {
                Some((status, body)) => {
                    assert_eq!(status, 413, "{body}");
                    assert!(body.contains("quota"), "{body}");
                    refused += 1;
                    assert_eq!(bob.show(id).await["status"], "queued");
                }
                None => winner = Some((id.clone(), conn)),
            }
        }
        assert_eq!(refused, 2, "declared size: {declared}");
        let (id, conn) = winner.unwrap();
        conn.write_all(&data[100_000..]).await.unwrap();
        let (status, body) = response(conn, Duration::from_secs(10)).await.unwrap();
        assert_eq!(status, 204, "{body}");
        let shown = bob.show(&id).await;
        assert_eq!(
            (shown["status"].as_str(), shown["size"].as_u64()),
            (Some("active"), Some(900_000))
        );
        // The quota is full now; clear it for the next round.
        let r = bob
            .req(Method::DELETE, &format!("/v2/images/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// L3: image data, the data directory and the catalog are private to ims's user, when
/// created and after a start on data an older version left readable.
#[tokio::test]
async fn data_and_catalog_are_private() {
    let mut server = Server::start(&[]).await;
    if !server.local_images() {
        // The modes of files in <data-dir>/images/; an object store has none.
        return;
    }
    let admin = Api::new(&server, server.admin_token().await);
    let id = raw_image(&admin, "private").await;
    assert_eq!(admin.upload(&id, vec![5; 3 << 20]).await.status(), 204);
    let dir = server.dir.clone();
    let blobs = server.stored_files();
    assert_eq!(blobs.len(), 1);
    let sqlite = server.database.is_none();
    let catalog_files: Vec<_> = ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| sqlite && p.exists())
        .collect();
    assert_eq!(catalog_files.is_empty(), !sqlite);
    let check = |when: &str| {
        for d in [dir.clone(), dir.join("images"), dir.join("images/.tmp")] {
            assert_eq!(mode(&d), 0o700, "{when}: {}", d.display());
        }
        for f in catalog_files.iter() {
            assert_eq!(mode(f), 0o600, "{when}: {}", f.display());
        }
    };
    check("created");
    assert_eq!(mode(std::path::Path::new(&blobs[0])), 0o600, "blob");

    // Loosen everything as an older version would have left it, and restart.
    server.kill();
    for d in [dir.clone(), dir.join("images"), dir.join("images/.tmp")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in &catalog_files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    server.spawn().await;
    check("after a restart");
}
