//! Outbound fetches as an attacker uses them (issue 11: H1, M5, L7, L9, M6), through the
//! real binary against a scripted HTTP server on 127.0.0.1:
//! - every address form that reaches a non-global network, written literally, behind a
//!   DNS name, and behind a redirect from an allowed server, is refused (H1);
//! - a tarpit and an endless drip fail by the rate rule and the deadline while another
//!   project's import completes; jobs are claimed fairly and a project's queue is bounded
//!   (M5);
//! - a close-delimited body cut short fails the import (L7);
//! - import URIs lose their credentials and query strings in task views, failure reasons
//!   and logs, and only the image's owner sees its tasks (L9, M6).

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Api, Server};
use common::{ended_import, image_tasks, raw_image};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the internal service at 127.0.0.1 would hand out.
const SECRET: &[u8] = b"INTERNAL-ONLY metadata credentials";

/// The refusal every blocked address gets, whatever its range.
const REFUSED: &str = "The URI resolves to an address that is not allowed";

/// A scripted HTTP/1.1 server on 127.0.0.1; each path is one behaviour. Returns its port.
async fn scripted_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock, port));
        }
    });
    port
}

async fn serve(mut sock: TcpStream, port: u16) {
    let mut buf = vec![0u8; 8192];
    let n = sock.read(&mut buf).await.unwrap_or(0);
    let request = String::from_utf8_lossy(&buf[..n]).to_string();
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = path.split('?').next().unwrap_or("/").to_string();
    let ok = |len: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let redirect = |to: String| {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    };
    let _ = match path.as_str() {
        "/secret" => {
            let _ = sock.write_all(ok(SECRET.len()).as_bytes()).await;
            sock.write_all(SECRET).await
        }
        "/small" => {
            let body = vec![0x11u8; 64 * 1024];
            let _ = sock.write_all(ok(body.len()).as_bytes()).await;
            sock.write_all(&body).await
        }
        // 1 MiB in 8 parts, 150 ms apart: about 1.2 s per import.
        "/slow" => {
            let _ = sock.write_all(ok(1 << 20).as_bytes()).await;
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                if sock.write_all(&[0x22u8; 128 * 1024]).await.is_err() {
                    return;
                }
            }
            Ok(())
        }
        "/redirect-ok" => {
            sock.write_all(redirect(format!("http://127.0.0.1:{port}/secret")).as_bytes())
                .await
        }
        "/redirect-mapped" => {
            sock.write_all(redirect(format!("http://[::ffff:127.0.0.1]:{port}/secret")).as_bytes())
                .await
        }
        "/redirect-nat64" => {
            sock.write_all(redirect(format!("http://[64:ff9b::7f00:1]:{port}/secret")).as_bytes())
                .await
        }
        "/redirect-metadata" => {
            sock.write_all(redirect("http://169.254.169.254/latest/meta-data/".into()).as_bytes())
                .await
        }
        "/redirect-name" => {
            sock.write_all(redirect(format!("http://mapped.test:{port}/secret")).as_bytes())
                .await
        }
        // A byte a second of a declared megabyte: a tarpit.
        "/tarpit" => {
            let _ = sock.write_all(ok(1 << 20).as_bytes()).await;
            for _ in 0..120 {
                if sock.write_all(b"t").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(())
        }
        // 8 KiB/s, fast enough for the rate rule, of a declared 100 MiB: only the
        // deadline ends it.
        "/drip" => {
            let _ = sock.write_all(ok(100 << 20).as_bytes()).await;
            for _ in 0..240 {
                if sock.write_all(&[0x33u8; 4096]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(())
        }
        // No length, no chunks: the end of the connection ends the body, here early.
        "/truncated" => {
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await;
            sock.write_all(&[0x44u8; 3000]).await
        }
        "/chunked" => {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                )
                .await;
            let _ = sock.write_all(b"1000\r\n").await;
            let _ = sock.write_all(&[0x55u8; 4096]).await;
            sock.write_all(b"\r\n0\r\n\r\n").await
        }
        "/chunked-cut" => {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                )
                .await;
            let _ = sock.write_all(b"1000\r\n").await;
            sock.write_all(&[0x55u8; 4096]).await
        }
        "/length-cut" => {
            let _ = sock.write_all(ok(10_000).as_bytes()).await;
            sock.write_all(&[0x66u8; 100]).await
        }
        _ => {
            sock.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
        }
    };
    let _ = sock.shutdown().await;
}

async fn import(api: &Api, id: &str, uri: &str) -> reqwest::Response {
    api.req(Method::POST, &format!("/v2/images/{id}/import"))
        .json(&json!({"method": {"name": "web-download", "uri": uri}}))
        .send()
        .await
        .unwrap()
}

/// Waits (at most `limit`) until the image leaves `importing`.
async fn settled(api: &Api, id: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let img = api.show(id).await;
        if img["status"] != "importing" {
            return img;
        }
        assert!(Instant::now() < deadline, "image {id} still importing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The failure message of the image's newest import, once that has ended.
async fn failure(api: &Api, id: &str) -> String {
    let task = ended_import(api, id).await;
    assert_eq!(task["status"], "failure", "{task}");
    task["message"].as_str().unwrap().to_string()
}

/// Imports `uri` into a new image, waits, and requires it refused by the address filter
/// with no data stored.
async fn assert_refused(api: &Api, uri: &str) {
    let id = raw_image(api, "ssrf").await;
    let r = import(api, &id, uri).await;
    assert_eq!(r.status(), 202, "{uri}");
    let img = settled(api, &id, Duration::from_secs(30)).await;
    assert_eq!(img["status"], "queued", "{uri} was fetched: {img}");
    assert!(img["checksum"].is_null(), "{uri}");
    assert_eq!(failure(api, &id).await, REFUSED, "{uri}");
}

/// A second project `p2` with member `bob`; returns bob's client.
async fn bob(server: &Server) -> Api {
    server.add_member("p2", "bob", "pw-bob");
    Api::new(server, server.token("bob", "pw-bob", "p2").await)
}

/// H1: literal addresses of every non-global range, IPv4 embedded in IPv6 (mapped,
/// compatible, NAT64, 6to4, Teredo) and names resolving to them are all refused, by web
/// download and by import tasks. Ports are open, so only the address can be the reason;
/// `[::ffff:127.0.0.1]` reached the internal secret before the fix.
#[tokio::test]
async fn every_non_global_address_form_is_refused() {
    let port = scripted_server().await;
    let resolve = r#"{ "mapped.test" = ["::ffff:127.0.0.1"], "metadata.test" = ["169.254.169.254"], "nat64.test" = ["64:ff9b::a9fe:a9fe"], "mixed.test" = ["8.8.8.8", "::ffff:127.0.0.1"] }"#;
    let server = Server::start(&[
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
        ("IMS_WEB_DOWNLOAD__RESOLVE", resolve),
    ])
    .await;
    let api = Api::new(&server, server.admin_token().await);
    let hosts = [
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::ffff:169.254.169.254]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b:1::a9fe:a9fe]",
        "[2002:7f00:1::1]",
        "[2001:0:7f00:1::1]",
        "[::1]",
        "[::]",
        "[fe80::1]",
        "[fd00::1]",
        "[fec0::1]",
        "[ff02::1]",
        "[100::1]",
        "127.0.0.1",
        "0.0.0.0",
        "10.0.0.1",
        "169.254.169.254",
        "100.100.100.200",
        "192.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "localhost",
        "mapped.test",
        "metadata.test",
        "nat64.test",
        "mixed.test",
    ];
    for host in hosts {
        assert_refused(&api, &format!("http://{host}:{port}/secret")).await;
    }
    // Import tasks check a literal address when they are created.
    for host in hosts
        .iter()
        .filter(|h| h.parse::<std::net::IpAddr>().is_ok() || h.starts_with('['))
    {
        let body = json!({"type": "import", "input": {
            "import_from": format!("http://{host}:{port}/secret"),
            "import_from_format": "raw",
            "image_properties": {"disk_format": "raw", "container_format": "bare"}}});
        let r = api
            .req(Method::POST, "/v2/tasks")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "task from {host}");
    }
}

/// H1: each redirect hop is checked: an allowed server's redirect to a mapped, NAT64,
/// metadata or pinned-name address is not followed, while a redirect to the allowed
/// address itself still is.
#[tokio::test]
async fn a_redirect_to_a_refused_address_is_not_followed() {
    let port = scripted_server().await;
    let server = Server::start(&[
        ("IMS_WEB_DOWNLOAD__ALLOW_ADDRESSES", "[\"127.0.0.1\"]"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
        (
            "IMS_WEB_DOWNLOAD__RESOLVE",
            r#"{ "mapped.test" = ["::ffff:127.0.0.1"] }"#,
        ),
    ])
    .await;
    let api = Api::new(&server, server.admin_token().await);
    for path in [
        "redirect-mapped",
        "redirect-nat64",
        "redirect-metadata",
        "redirect-name",
    ] {
        assert_refused(&api, &format!("http://127.0.0.1:{port}/{path}")).await;
    }
    let id = raw_image(&api, "followed").await;
    import(&api, &id, &format!("http://127.0.0.1:{port}/redirect-ok")).await;
    let img = settled(&api, &id, Duration::from_secs(30)).await;
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["size"], SECRET.len());
}

/// M5: a tarpit (a byte a second) fails by the rate rule within its window and an endless
/// drip by the deadline, and meanwhile another project's import completes.
#[tokio::test]
async fn slow_sources_fail_by_rate_and_deadline_while_another_project_imports() {
    let port = scripted_server().await;
    let server = Server::start(&[
        ("IMS_WEB_DOWNLOAD__ALLOW_ADDRESSES", "[\"127.0.0.1\"]"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
        ("IMS_WEB_DOWNLOAD__MIN_BYTES_PER_SEC", "1024"),
        ("IMS_WEB_DOWNLOAD__RATE_WINDOW_SECS", "3"),
        ("IMS_WEB_DOWNLOAD__DEADLINE_SECS", "8"),
        ("IMS_JOBS__CONCURRENCY", "3"),
    ])
    .await;
    let admin = Api::new(&server, server.admin_token().await);
    let bob = bob(&server).await;
    let started = Instant::now();
    let tarpit = raw_image(&admin, "tarpit").await;
    let drip = raw_image(&admin, "drip").await;
    import(&admin, &tarpit, &format!("http://127.0.0.1:{port}/tarpit")).await;
    import(&admin, &drip, &format!("http://127.0.0.1:{port}/drip")).await;
    common::wait_for(
        "both slow imports to run",
        Duration::from_secs(10),
        async || {
            for id in [&tarpit, &drip] {
                if image_tasks(&admin, id).await["tasks"][0]["status"] != "processing" {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let small = raw_image(&bob, "small").await;
    assert_eq!(
        import(&bob, &small, &format!("http://127.0.0.1:{port}/small"))
            .await
            .status(),
        202
    );
    let done = settled(&bob, &small, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "active", "{done}");
    assert_eq!(
        admin.show(&drip).await["status"],
        "importing",
        "the drip still runs"
    );

    let img = settled(&admin, &tarpit, Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert_eq!(img["status"], "queued");
    assert!(
        took < Duration::from_secs(7),
        "tarpit held its slot {took:?}"
    );
    let why = failure(&admin, &tarpit).await;
    assert!(why.contains("bytes/s"), "{why}");

    let img = settled(&admin, &drip, Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert_eq!(img["status"], "queued");
    assert!(
        took >= Duration::from_secs(7) && took < Duration::from_secs(14),
        "drip ran {took:?}"
    );
    let why = failure(&admin, &drip).await;
    assert!(why.contains("within 8 s"), "{why}");
}

/// M5: with one job slot, a project that queued four imports does not keep a second
/// project waiting behind all of them, and a fifth import of the first project is
/// refused with Glance's quota status while the second project may still queue.
#[tokio::test]
async fn jobs_are_claimed_fairly_and_a_project_queue_is_bounded() {
    let port = scripted_server().await;
    let server = Server::start(&[
        ("IMS_WEB_DOWNLOAD__ALLOW_ADDRESSES", "[\"127.0.0.1\"]"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
        ("IMS_JOBS__CONCURRENCY", "1"),
        ("IMS_JOBS__MAX_PER_PROJECT", "4"),
    ])
    .await;
    let admin = Api::new(&server, server.admin_token().await);
    let bob = bob(&server).await;
    let uri = format!("http://127.0.0.1:{port}/slow");
    let mut mine = Vec::new();
    for i in 0..4 {
        let id = raw_image(&admin, &format!("a{i}")).await;
        assert_eq!(import(&admin, &id, &uri).await.status(), 202);
        mine.push(id);
    }
    let over = raw_image(&admin, "a4").await;
    let r = import(&admin, &over, &uri).await;
    assert_eq!(r.status(), 413, "a fifth job of one project");
    assert_eq!(admin.show(&over).await["status"], "queued");

    let theirs = raw_image(&bob, "b0").await;
    assert_eq!(import(&bob, &theirs, &uri).await.status(), 202);
    let done = settled(&bob, &theirs, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "active");
    let mut finished = 0;
    for id in &mine {
        if admin.show(id).await["status"] == "active" {
            finished += 1;
        }
    }
    assert!(
        finished <= 2,
        "the other project waited for {finished} of the first project's 4 jobs"
    );
    for id in &mine {
        assert_eq!(
            settled(&admin, id, Duration::from_secs(30)).await["status"],
            "active"
        );
    }
}

/// L7: a body that ends with the connection, without a length or chunks, is refused
/// (it could have been cut short); cut-short chunked and length-delimited bodies fail;
/// a complete chunked body is accepted.
#[tokio::test]
async fn a_truncated_body_fails_the_import() {
    let port = scripted_server().await;
    let server = Server::start(&[
        ("IMS_WEB_DOWNLOAD__ALLOW_ADDRESSES", "[\"127.0.0.1\"]"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
    ])
    .await;
    let api = Api::new(&server, server.admin_token().await);
    for path in ["truncated", "chunked-cut", "length-cut"] {
        let id = raw_image(&api, path).await;
        import(&api, &id, &format!("http://127.0.0.1:{port}/{path}")).await;
        let img = settled(&api, &id, Duration::from_secs(30)).await;
        assert_eq!(img["status"], "queued", "{path}: {img}");
        assert!(img["checksum"].is_null());
    }
    let id = raw_image(&api, "chunked").await;
    import(&api, &id, &format!("http://127.0.0.1:{port}/chunked")).await;
    let img = settled(&api, &id, Duration::from_secs(30)).await;
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["size"], 4096);
    assert!(
        server.stored_files().len() == 1,
        "{:?}",
        server.stored_files()
    );
}

/// M6 and L9: an import URI's user information and query string reach neither another
/// project (which sees no tasks of the image at all), nor the owner's task view, nor a
/// failure reason, nor the log.
#[tokio::test]
async fn import_uris_keep_their_credentials_to_themselves() {
    let port = scripted_server().await;
    let server = Server::start(&[
        ("IMS_WEB_DOWNLOAD__ALLOW_ADDRESSES", "[\"127.0.0.1\"]"),
        ("IMS_WEB_DOWNLOAD__PORTS", "[]"),
    ])
    .await;
    let admin = Api::new(&server, server.admin_token().await);
    let bob = bob(&server).await;
    let leaks = |text: &str| text.contains("TopSecretPw") || text.contains("SIGSECRET");

    let id = raw_image(&admin, "community").await;
    let r = admin
        .req(Method::PATCH, &format!("/v2/images/{id}"))
        .header(
            "content-type",
            "application/openstack-images-v2.1-json-patch",
        )
        .json(&json!([{"op": "replace", "path": "/visibility", "value": "community"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let uri =
        format!("http://deploy:TopSecretPw@127.0.0.1:{port}/secret?X-Amz-Signature=SIGSECRET");
    import(&admin, &id, &uri).await;
    assert_eq!(
        settled(&admin, &id, Duration::from_secs(30)).await["status"],
        "active"
    );
    assert_eq!(
        bob.show(&id).await["status"],
        "active",
        "bob sees the image"
    );
    let theirs = image_tasks(&bob, &id).await;
    assert_eq!(theirs["tasks"], json!([]), "{theirs}");
    let own = image_tasks(&admin, &id).await;
    assert_eq!(own["tasks"].as_array().unwrap().len(), 1);
    let shown = own["tasks"][0]["input"]["import_req"]["method"]["uri"]
        .as_str()
        .unwrap();
    assert_eq!(shown, format!("http://***@127.0.0.1:{port}/secret?***"));

    // Failures: nothing listens on a fresh port; a body cut short mid-transfer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for uri in [
        format!("http://deploy:TopSecretPw@127.0.0.1:{closed}/x?token=SIGSECRET"),
        format!("http://127.0.0.1:{port}/length-cut?token=SIGSECRET"),
    ] {
        let id = raw_image(&admin, "fails").await;
        import(&admin, &id, &uri).await;
        assert_eq!(
            settled(&admin, &id, Duration::from_secs(30)).await["status"],
            "queued"
        );
        let why = failure(&admin, &id).await;
        assert!(!leaks(&why), "{why}");
        let t = image_tasks(&admin, &id).await;
        assert!(!leaks(&t.to_string()), "{t}");
    }
    let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap();
    assert!(log.contains("job failed"), "the failures were logged");
    assert!(!leaks(&log), "the log holds a credential or token");
}
