//! The transport and authentication findings of the security review (H4, M1, M2, L1,
//! L2, L4, L8), each replayed as the attack against the real binary on loopback.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::Server;
use ims_http::sdk_signing::{self, Authorization, Received};
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's resident memory, KiB.
fn rss_kib(server: &Server) -> u64 {
    let pid = server.child.as_ref().unwrap().id();
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn sdk_date(at: time::OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap()
}

/// Reads whatever the server sends until it closes or `within` passes; `None` if it
/// neither answered nor closed in time.
async fn read_until_close(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// Reads until the end of one response's headers (or `within` passes).
async fn read_head(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// An AK/SK of the admin, and the admin project's id.
struct Key {
    ak: String,
    sk: String,
    project: String,
}

fn admin_key(server: &Server) -> Key {
    let out = server.admin(&["credential", "create", "--user", "admin"]);
    let (ak, sk) = out.split_once(' ').unwrap();
    let project = server.project_id("admin");
    Key {
        ak: ak.into(),
        sk: sk.into(),
        project,
    }
}

/// A request signed the SDK's way over `signed` headers (lower-case names; `host` and
/// `x-sdk-date` are added). `sign_path`/`sign_query` are what the signature covers,
/// `body_for_hash` the body it covers (`None`: `UNSIGNED-PAYLOAD` when the header is
/// among `signed`).
struct Signed<'a> {
    method: &'a str,
    sign_path: &'a str,
    sign_query: Option<&'a str>,
    signed: Vec<(&'a str, String)>,
    body_for_hash: &'a [u8],
}

impl Signed<'_> {
    fn authorization(&self, server: &Server, key: &Key) -> (Vec<(String, String)>, String) {
        let mut headers: Vec<(String, String)> = self
            .signed
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        headers.push(("host".into(), format!("127.0.0.1:{}", server.port)));
        headers.push((
            "x-sdk-date".into(),
            sdk_date(time::OffsetDateTime::now_utc()),
        ));
        headers.sort();
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let unsigned = lookup("x-sdk-content-sha256").is_some();
        let hash = if unsigned {
            // The body goes unhashed; the server sees a non-empty one.
            Some("UNSIGNED-PAYLOAD".to_string())
        } else {
            (!self.body_for_hash.is_empty())
                .then(|| hex::encode(sha2::Sha256::digest(self.body_for_hash)))
        };
        let auth = Authorization {
            access: key.ak.clone(),
            signed_headers: headers.iter().map(|(k, _)| k.clone()).collect(),
            signature: String::new(),
        };
        let req = Received {
            method: self.method,
            path: self.sign_path,
            query: self.sign_query,
            header: &lookup,
            body_sha256: hash.as_deref(),
        };
        let canonical = sdk_signing::canonical_request(&req, &auth).unwrap();
        let date = lookup("x-sdk-date").unwrap();
        let signature = sdk_signing::sign(&key.sk, &sdk_signing::string_to_sign(&date, &canonical));
        let value = format!(
            "SDK-HMAC-SHA256 Access={}, SignedHeaders={}, Signature={signature}",
            key.ak,
            auth.signed_headers.join(";")
        );
        (headers, value)
    }

    /// Sends it to `path_and_query` (what the wire carries) with `body`.
    async fn send(
        &self,
        server: &Server,
        key: &Key,
        path_and_query: &str,
        body: Vec<u8>,
        unsigned_headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let (headers, authorization) = self.authorization(server, key);
        let mut b = reqwest::Client::new().request(
            self.method.parse().unwrap(),
            format!("{}{path_and_query}", server.url),
        );
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            b = b.header(k, v);
        }
        for (k, v) in unsigned_headers {
            b = b.header(*k, *v);
        }
        let r = b
            .header("authorization", authorization)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn json_ct() -> (&'static str, String) {
    ("content-type", "application/json".to_string())
}

async fn create_ims_image(server: &Server, token: &str, name: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{}/v2/images", server.url))
        .header("x-auth-token", token)
        .json(&json!({"name": name, "disk_format": "raw", "container_format": "bare"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------
// H4: a made-up signature makes the server read nothing.

#[tokio::test]
async fn h4_fake_signatures_with_big_bodies_are_refused_unread_and_memory_stays_flat() {
    let server = Server::start(&[]).await;
    let token = server.admin_token().await;
    let before = rss_kib(&server);
    let date = sdk_date(time::OffsetDateTime::now_utc());
    // 48 connections, each announcing 12 MB that never comes, with no account at all.
    let mut conns = Vec::new();
    for i in 0..48 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let path = if i % 2 == 0 {
            "/v2/cloudimages/action".to_string()
        } else {
            "/v2/images".to_string()
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             X-Sdk-Date: {date}\r\nAuthorization: SDK-HMAC-SHA256 Access=NOSUCHKEY{i}, \
             SignedHeaders=content-type;host;x-sdk-date, Signature=00\r\nContent-Length: 12000000\r\n\r\n{{\"name\"",
            server.port
        );
        s.write_all(head.as_bytes()).await.unwrap();
        conns.push(s);
    }
    let started = Instant::now();
    for s in &mut conns {
        let head = read_head(s, Duration::from_secs(5))
            .await
            .expect("a made-up signature is answered without waiting for the body");
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // A normal user is served meanwhile.
    let r = reqwest::Client::new()
        .get(format!("{}/v2/images", server.url))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let grown = rss_kib(&server).saturating_sub(before);
    eprintln!("server memory grew by {grown} KiB during the attack");
    assert!(
        grown < 64 * 1024,
        "48 fake 12 MB requests grew the server by {grown} KiB"
    );
}

#[tokio::test]
async fn h4_a_real_key_with_a_body_over_the_limit_is_refused_before_reading() {
    let server = Server::start(&[("IMS_HTTP__JSON_BODY_MAX", "65536")]).await;
    let key = admin_key(&server);
    let date = sdk_date(time::OffsetDateTime::now_utc());
    let mut s = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let head = format!(
        "POST /v2/cloudimages/action HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         X-Project-Id: {}\r\nX-Sdk-Date: {date}\r\nAuthorization: SDK-HMAC-SHA256 Access={}, \
         SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=00\r\nContent-Length: 70000\r\n\r\n",
        server.port, key.project, key.ak
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let head = read_head(&mut s, Duration::from_secs(5))
        .await
        .expect("answered without the body");
    // IMS answers a client's oversized body with its own 400 code (IMG.0059).
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let rest = read_until_close(&mut s, Duration::from_secs(5)).await;
    assert!(
        format!("{head}{}", rest.unwrap_or_default()).contains("may not exceed 65536 bytes"),
        "{head}"
    );
}

// ---------------------------------------------------------------------------------
// M2: slow clients lose their connection; the number of connections is capped.

#[tokio::test]
async fn m2_half_sent_headers_and_idle_connections_are_closed_after_the_timeout() {
    let server = Server::start(&[("IMS_HTTP__HEADER_READ_TIMEOUT_SECS", "2")]).await;
    let mut half = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    half.write_all(b"GET /v2/images HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    idle.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut idle, Duration::from_secs(5)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let started = Instant::now();
    assert!(
        read_until_close(&mut half, Duration::from_secs(6))
            .await
            .is_some(),
        "half-sent headers still open after 6 s"
    );
    assert!(
        read_until_close(&mut idle, Duration::from_secs(6))
            .await
            .is_some(),
        "an idle kept-alive connection still open after 6 s"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(
        reqwest::get(format!("{}/healthcheck", server.url))
            .await
            .unwrap()
            .status()
            .is_success()
    );
}

#[tokio::test]
async fn m2_connections_over_the_cap_are_closed_at_once() {
    let server = Server::start(&[
        ("IMS_HTTP__MAX_CONNECTIONS", "8"),
        ("IMS_HTTP__HEADER_READ_TIMEOUT_SECS", "30"),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Eight silent connections hold every slot.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(
            TcpStream::connect(("127.0.0.1", server.port))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let _ = extra
        .write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = read_until_close(&mut extra, Duration::from_secs(3))
        .await
        .expect("a connection over the cap is closed at once");
    assert!(got.is_empty(), "served over the cap: {got}");
    // Freed slots serve again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/healthcheck", server.url)).await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no service after the slots freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn m2_a_stalled_or_trickled_json_body_is_cut_off() {
    let server = Server::start(&[("IMS_HTTP__BODY_TIMEOUT_SECS", "2")]).await;
    let mut s = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    s.write_all(
        b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"auth\": ",
    )
    .await
    .unwrap();
    let head = read_head(&mut s, Duration::from_secs(6))
        .await
        .expect("a stalled body is answered within the body timeout");
    assert!(head.starts_with("HTTP/1.1 4"), "{head}");
    // A byte every half second never stalls for long, and is still cut off.
    let mut s = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    s.write_all(
        b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut answered = false;
    while started.elapsed() < Duration::from_secs(8) {
        if s.write_all(b" ").await.is_err() {
            answered = true;
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                assert!(
                    buf.starts_with(b"HTTP/1.1 4"),
                    "{:?}",
                    String::from_utf8_lossy(&buf)
                );
                answered = true;
                break;
            }
            Ok(_) => {
                answered = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(answered, "a trickled body was still being read after 8 s");
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------
// M1: password checks.

async fn login(server: &Server, user: &str, password: &str) -> (u16, Value) {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}}}});
    let r = reqwest::Client::new()
        .post(format!("{}/v3/auth/tokens", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn m1_concurrent_wrong_passwords_keep_memory_bounded_and_logins_working() {
    let server = Server::start(&[("IMS_AUTH__PASSWORD_CHECKS", "2")]).await;
    let password = server.admin_password();
    let before = rss_kib(&server);
    let attack: Vec<_> = (0..48)
        .map(|i| {
            let url = server.url.clone();
            tokio::spawn(async move {
                let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": format!("nobody{i}"), "domain": {"name": "Default"}, "password": "wrong"}}}}});
                reqwest::Client::new()
                    .post(format!("{url}/v3/auth/tokens"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let (status, _) = login(&server, "admin", &password).await;
    assert_eq!(status, 201, "a real login during the attack");
    for a in attack {
        let s = a.await.unwrap();
        assert!(s == 401 || s == 503, "{s}");
    }
    let grown = rss_kib(&server).saturating_sub(before);
    eprintln!("server memory grew by {grown} KiB during the attack");
    // Unbounded, 48 argon2 checks take about 20 MiB each (~1 GiB).
    assert!(grown < 160 * 1024, "grew by {grown} KiB");
}

#[tokio::test]
async fn m1_a_full_password_check_queue_answers_503_in_keystone_shape() {
    let server = Server::start(&[
        ("IMS_AUTH__PASSWORD_CHECKS", "1"),
        ("IMS_AUTH__PASSWORD_CHECK_WAIT_MS", "1"),
    ])
    .await;
    let tries: Vec<_> = (0..24)
        .map(|i| {
            let url = server.url.clone();
            tokio::spawn(async move {
                let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": format!("u{i}"), "domain": {"name": "Default"}, "password": "x"}}}}});
                let r = reqwest::Client::new()
                    .post(format!("{url}/v3/auth/tokens"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut busy = 0;
    for t in tries {
        let (status, body) = t.await.unwrap();
        match status {
            503 => {
                busy += 1;
                assert_eq!(body["error"]["code"], 503, "{body}");
            }
            401 => {}
            other => panic!("{other}: {body}"),
        }
    }
    assert!(busy > 0, "24 checks through one slot without a single 503");
}

#[tokio::test]
async fn m1_unknown_users_take_as_long_as_known_ones() {
    let server = Server::start(&[("IMS_AUTH__FAILURES_BEFORE_BACKOFF", "0")]).await;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..9 {
        let t = Instant::now();
        assert_eq!(login(&server, "admin", "wrong").await.0, 401);
        known.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(login(&server, &format!("ghost{i}"), "wrong").await.0, 401);
        unknown.push(t.elapsed());
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown * 2 > known && known * 2 > unknown,
        "known {known:?}, unknown {unknown:?}"
    );
}

#[tokio::test]
async fn m1_repeated_failures_make_an_account_back_off() {
    let server = Server::start(&[("IMS_AUTH__FAILURES_BEFORE_BACKOFF", "3")]).await;
    let password = server.admin_password();
    for _ in 0..3 {
        assert_eq!(login(&server, "admin", "wrong").await.0, 401);
        assert_eq!(login(&server, "ghost", "wrong").await.0, 401);
    }
    // Even the right password waits out the back-off, and a known and an unknown
    // account answer alike.
    let (status, body) = login(&server, "admin", &password).await;
    assert_eq!(status, 401);
    let message = body["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("Too many failed attempts"), "{message}");
    let (status, body) = login(&server, "ghost", "wrong").await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Too many failed attempts")
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(login(&server, "admin", &password).await.0, 201);
}

// ---------------------------------------------------------------------------------
// L1: the signature scheme.

#[tokio::test]
async fn l1_a_replayed_state_changing_request_is_refused() {
    let server = Server::start(&[("IMS_HTTP__REPLAY_GRACE_SECS", "1")]).await;
    let key = admin_key(&server);
    let token = server.admin_token().await;
    let id = create_ims_image(&server, &token, "replay").await;
    let body = json!([{"op": "replace", "path": "/name", "value": "renamed"}]).to_string();
    let path = format!("/v2/images/{id}");
    let req = Signed {
        method: "PATCH",
        sign_path: &path,
        sign_query: None,
        signed: vec![
            (
                "content-type",
                "application/openstack-images-v2.1-json-patch".into(),
            ),
            ("x-project-id", key.project.clone()),
        ],
        body_for_hash: body.as_bytes(),
    };
    let (headers, authorization) = req.authorization(&server, &key);
    let send = || {
        let mut b = reqwest::Client::new().patch(format!("{}{path}", server.url));
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            b = b.header(k, v);
        }
        b.header("authorization", &authorization)
            .body(body.clone())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    // Within the grace (one second's worth of identical SDK requests) it still counts
    // as the client's own repeat; after it, a verbatim copy is a replay.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = send().await.unwrap();
    assert_eq!(again.status(), 401, "a verbatim replay was accepted");
}

#[tokio::test]
async fn l1_unsigned_payload_is_refused_for_json_bodies() {
    let server = Server::start(&[]).await;
    let key = admin_key(&server);
    let token = server.admin_token().await;
    // Signed without a body hash; whoever is in the path swaps the body.
    let signed_over = Signed {
        method: "POST",
        sign_path: "/v2/images",
        sign_query: None,
        signed: vec![
            json_ct(),
            ("x-project-id", key.project.clone()),
            ("x-sdk-content-sha256", "UNSIGNED-PAYLOAD".into()),
        ],
        body_for_hash: b"",
    };
    let swapped =
        json!({"name": "SWAPPED", "disk_format": "raw", "container_format": "bare"}).to_string();
    let (status, _) = signed_over
        .send(&server, &key, "/v2/images", swapped.into_bytes(), &[])
        .await;
    assert_eq!(status, 401);
    let listed: Value = reqwest::Client::new()
        .get(format!("{}/v2/images?name=SWAPPED", server.url))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["images"], json!([]));
}

#[tokio::test]
async fn l1_glance_json_patch_keeps_the_sdks_unsigned_payload_unless_turned_off() {
    for (allowed, expected) in [("true", 200), ("false", 401)] {
        let server = Server::start(&[("IMS_HTTP__UNSIGNED_JSON_PATCH", allowed)]).await;
        let key = admin_key(&server);
        let token = server.admin_token().await;
        let id = create_ims_image(&server, &token, "n1").await;
        let path = format!("/v2/images/{id}");
        let req = Signed {
            method: "PATCH",
            sign_path: &path,
            sign_query: None,
            signed: vec![
                (
                    "content-type",
                    "application/openstack-images-v2.1-json-patch".into(),
                ),
                ("x-project-id", key.project.clone()),
                ("x-sdk-content-sha256", "UNSIGNED-PAYLOAD".into()),
            ],
            body_for_hash: b"",
        };
        let body = json!([{"op": "replace", "path": "/name", "value": "n2"}]).to_string();
        let (status, _) = req.send(&server, &key, &path, body.into_bytes(), &[]).await;
        assert_eq!(status, expected, "unsigned_json_patch = {allowed}");
    }
}

#[tokio::test]
async fn l1_an_unsigned_project_id_is_refused() {
    let server = Server::start(&[]).await;
    let key = admin_key(&server);
    let req = Signed {
        method: "GET",
        sign_path: "/v2/cloudimages",
        sign_query: None,
        signed: vec![json_ct()],
        body_for_hash: b"",
    };
    let (status, _) = req
        .send(
            &server,
            &key,
            "/v2/cloudimages",
            Vec::new(),
            &[("x-project-id", key.project.as_str())],
        )
        .await;
    assert_eq!(status, 401);
    // Signed, the same request is fine.
    let req = Signed {
        signed: vec![json_ct(), ("x-project-id", key.project.clone())],
        ..req
    };
    assert_eq!(
        req.send(&server, &key, "/v2/cloudimages", Vec::new(), &[])
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn l1_plus_and_invalid_utf8_do_not_reuse_a_signature() {
    let server = Server::start(&[]).await;
    let key = admin_key(&server);
    let get = |query: &'static str| Signed {
        method: "GET",
        sign_path: "/v2/cloudimages",
        sign_query: Some(query),
        signed: vec![json_ct(), ("x-project-id", key.project.clone())],
        body_for_hash: b"",
    };
    // Honest requests still verify.
    assert_eq!(
        get("name=a%2Bb")
            .send(&server, &key, "/v2/cloudimages?name=a%2Bb", Vec::new(), &[])
            .await
            .0,
        200
    );
    // Signed for `a+b` (a plus), sent as `a+b` (read by the handlers as `a b`).
    let (status, _) = get("name=a%2Bb")
        .send(&server, &key, "/v2/cloudimages?name=a+b", Vec::new(), &[])
        .await;
    assert_eq!(status, 401, "a %2B signature validated a literal +");
    // Signed over the replacement character that lossy decoding makes of any invalid
    // byte, sent with one such byte.
    let (status, _) = get("name=%EF%BF%BD")
        .send(&server, &key, "/v2/cloudimages?name=%FF", Vec::new(), &[])
        .await;
    assert_eq!(status, 401, "two invalid UTF-8 bytes shared a signature");
}

// ---------------------------------------------------------------------------------
// L2: credential.key.

#[tokio::test]
async fn l2_an_unreadable_credential_key_stops_the_start_and_stays_untouched() {
    let mut server = Server::start(&[]).await;
    let key = admin_key(&server);
    assert!(!key.ak.is_empty());
    server.kill();
    let path = server.dir.join("credential.key");
    // Not UTF-8: reading it fails with something other than "not found".
    let garbage: Vec<u8> = vec![0xff, 0xfe, 0x00, 0x41, 0x42];
    std::fs::write(&path, &garbage).unwrap();
    let out = server.refused_start(&[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("credential.key"), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the key was rewritten"
    );
}

// ---------------------------------------------------------------------------------
// L4: a password change ends the old tokens.

#[tokio::test]
async fn l4_a_password_change_revokes_the_users_tokens() {
    let server = Server::start(&[]).await;
    let token = server.admin_token().await;
    let images = |t: String| {
        let url = server.url.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{url}/v2/images"))
                .header("x-auth-token", t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(images(token.clone()).await, 200);
    server.admin(&[
        "user",
        "password",
        "admin",
        "--password",
        "a new password 1",
    ]);
    // Another process changed it: this node's validation cache lets the token live at
    // most 10 s more.
    let deadline = Instant::now() + Duration::from_secs(15);
    while images(token.clone()).await != 401 {
        assert!(
            Instant::now() < deadline,
            "the old token still works after the password change"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fresh = server.token("admin", "a new password 1", "admin").await;
    assert_eq!(images(fresh).await, 200);
}

// ---------------------------------------------------------------------------------
// L8: links never come from the client's Host or X-Forwarded-Proto.

#[tokio::test]
async fn l8_client_host_headers_do_not_reach_links_or_the_catalog() {
    let server = Server::start(&[]).await;
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": server.admin_password()}}},
                      "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = reqwest::Client::new()
        .post(format!("{}/v3/auth/tokens", server.url))
        .header("host", "evil.example")
        .header("x-forwarded-proto", "https")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = r.text().await.unwrap();
    assert!(!text.contains("evil.example"), "{text}");
    assert!(!text.contains("https://"), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{}", server.port)));
}

/// `--listen 127.0.0.1:0` takes a port the system picks (as `Server::start` asks);
/// `--addr-file` names it once ims serves, and clouds.yaml and the token's catalog name
/// that port, never `:0`.
#[tokio::test]
async fn a_listener_on_port_0_reports_the_port_it_got() {
    let server = Server::start(&[]).await;
    assert_ne!(server.port, 0);
    let written = std::fs::read_to_string(server.dir.join("serve.addr")).unwrap();
    assert_eq!(written, format!("127.0.0.1:{}\n", server.port));
    let clouds = std::fs::read_to_string(server.dir.join("clouds.yaml")).unwrap();
    assert!(
        clouds.contains(&format!("auth_url: {}/v3\n", server.url)),
        "{clouds}"
    );
    let r = server
        .issue_token("admin", &server.admin_password(), "admin")
        .await;
    assert_eq!(r.status(), 201);
    let token: Value = r.json().await.unwrap();
    let urls: Vec<&str> = token["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["endpoints"].as_array().unwrap())
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert!(!urls.is_empty());
    for url in urls {
        assert!(url.starts_with(&server.url), "{url}");
    }
}

#[tokio::test]
async fn l8_a_non_loopback_listener_without_public_url_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    // A documentation address: nothing is bound whatever happens.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ims"))
            .kill_on_drop(true)
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", "192.0.2.1:9292"])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("public_url"), "{stderr}");
    assert!(
        !dir.path().join("catalog.sqlite").exists(),
        "it opened the catalog before refusing"
    );
}
