//! Requests racing for one image, through the real binary: two uploads (one wins, the
//! other gets 409, the data is the winner's), a delete during an upload (the upload ends
//! 410 and nothing stays in the store), concurrent edits (each answered success is kept:
//! no lost write) and a PATCH racing a DELETE (the image never comes back). Each race
//! runs many rounds so that both orders are met.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Api, Server};
use md5::Digest as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Rounds of each race.
const ROUNDS: usize = 12;

const JSON_PATCH: &str = "application/openstack-images-v2.1-json-patch";

type Chunk = Result<bytes::Bytes, std::io::Error>;

/// An upload whose body the test feeds chunk by chunk; the body ends when `feed` drops.
struct OpenUpload {
    feed: mpsc::Sender<Chunk>,
    answer: tokio::task::JoinHandle<reqwest::Response>,
}

impl OpenUpload {
    fn start(api: &Api, id: &str) -> OpenUpload {
        let (feed, chunks) = mpsc::channel::<Chunk>(4);
        let body =
            futures::stream::unfold(
                chunks,
                |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
            );
        let send = api
            .req(Method::PUT, &format!("/v2/images/{id}/file"))
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(body))
            .send();
        let answer = tokio::spawn(async move { send.await.unwrap() });
        OpenUpload { feed, answer }
    }

    async fn send(&self, data: &[u8]) {
        self.feed
            .send(Ok(bytes::Bytes::copy_from_slice(data)))
            .await
            .unwrap();
    }

    /// Ends the body and returns the answer.
    async fn finish(self) -> reqwest::Response {
        drop(self.feed);
        self.answer.await.unwrap()
    }
}

/// A client for uploads the server may answer before their body ends: such a connection
/// is closed by the server, so it must not go back to a pool the next request draws from.
fn uploader(api: &Api) -> Api {
    Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        url: api.url.clone(),
        token: api.token.clone(),
    }
}

async fn raw_image(api: &Api, name: &str) -> String {
    let img = api
        .create(json!({"name": name, "disk_format": "raw", "container_format": "bare"}))
        .await;
    img["id"].as_str().unwrap().to_string()
}

/// The image's status, or `None` when it is gone (404).
async fn status_of(api: &Api, id: &str) -> Option<String> {
    let r = api
        .req(Method::GET, &format!("/v2/images/{id}"))
        .send()
        .await
        .unwrap();
    match r.status() {
        StatusCode::NOT_FOUND => None,
        StatusCode::OK => Some(
            r.json::<Value>().await.unwrap()["status"]
                .as_str()
                .unwrap()
                .into(),
        ),
        other => panic!("GET image {id}: {other}"),
    }
}

async fn delete(api: &Api, id: &str) -> StatusCode {
    api.req(Method::DELETE, &format!("/v2/images/{id}"))
        .send()
        .await
        .unwrap()
        .status()
}

async fn patch(api: &Api, id: &str, ops: Value) -> StatusCode {
    api.req(Method::PATCH, &format!("/v2/images/{id}"))
        .header("content-type", JSON_PATCH)
        .body(ops.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

/// Two different bodies of `len` bytes.
fn two_bodies(len: usize) -> (Vec<u8>, Vec<u8>) {
    let a: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let b: Vec<u8> = (0..len).map(|i| (i % 241) as u8 ^ 0x5a).collect();
    (a, b)
}

#[tokio::test]
async fn a_second_upload_to_one_image_gets_409_and_the_data_is_the_winners() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let (a, b) = two_bodies(2 << 20);
    let uploads = uploader(&api);

    // The second upload arrives while the first is under way.
    let id = raw_image(&api, "held").await;
    let first = OpenUpload::start(&uploads, &id);
    first.send(&a[..1 << 20]).await;
    common::wait_for(
        "the first upload to start",
        Duration::from_secs(20),
        async || (status_of(&api, &id).await.as_deref() == Some("saving")).then_some(()),
    )
    .await;
    // Its body is held back: the answer comes before any of it.
    let second = OpenUpload::start(&uploads, &id);
    let refused = tokio::time::timeout(Duration::from_secs(10), second.answer)
        .await
        .expect("the second upload was answered before its body")
        .unwrap();
    assert_eq!(refused.status(), 409, "an upload into a saving image");
    first.send(&a[1 << 20..]).await;
    assert_eq!(first.finish().await.status(), 204);
    let shown = api.show(&id).await;
    assert_eq!(shown["checksum"], md5_hex(&a));
    assert_eq!(shown["size"], a.len());

    // Both at once, many times: exactly one wins, and the image holds its bytes.
    for round in 0..ROUNDS {
        let id = raw_image(&api, &format!("race-{round}")).await;
        let put = |data: &Vec<u8>| {
            uploads
                .req(Method::PUT, &format!("/v2/images/{id}/file"))
                .header("content-type", "application/octet-stream")
                .body(data.clone())
                .send()
        };
        let (ra, rb) = tokio::join!(put(&a), put(&b));
        // The loser is refused before its body is read, and the server then closes the
        // connection: the client can meet the close instead of the 409.
        let outcome = |r: reqwest::Result<reqwest::Response>| match r {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(e.to_string()),
        };
        let winner = match (outcome(ra), outcome(rb)) {
            (Ok(204), Ok(409) | Err(_)) => &a,
            (Ok(409) | Err(_), Ok(204)) => &b,
            other => panic!("round {round}: {other:?}"),
        };
        let shown = api.show(&id).await;
        assert_eq!(shown["status"], "active", "round {round}");
        assert_eq!(shown["checksum"], md5_hex(winner), "round {round}");
        let got = api
            .req(Method::GET, &format!("/v2/images/{id}/file"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            got.as_ref() == winner.as_slice(),
            "round {round}: served bytes"
        );
    }
    let files = server.stored_files();
    assert_eq!(files.len(), ROUNDS + 1, "one blob per image: {files:?}");
}

#[tokio::test]
async fn deleting_an_image_during_its_upload_ends_the_upload_and_leaves_nothing() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    // More than one part of an S3 image store (5 MiB in the tests) goes first, so that
    // bytes are in the store there too.
    let (data, _) = two_bodies(12 << 20);
    let uploads = uploader(&api);

    // A delete while bytes are on disk: the upload answers 410 Gone, as Glance does.
    let id = raw_image(&api, "doomed").await;
    let upload = OpenUpload::start(&uploads, &id);
    upload.send(&data[..6 << 20]).await;
    common::wait_for(
        "uploaded bytes on disk",
        Duration::from_secs(20),
        async || {
            (status_of(&api, &id).await.as_deref() == Some("saving")
                && server.bytes_being_written() > 0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(delete(&api, &id).await, 204);
    assert_eq!(status_of(&api, &id).await, None);
    // The server may end the upload as soon as it notices; the rest may not be taken.
    let _ = upload
        .feed
        .send(Ok(bytes::Bytes::from(data[6 << 20..].to_vec())))
        .await;
    let answer = upload.finish().await;
    assert_eq!(answer.status(), 410, "{:?}", answer.text().await);
    assert_eq!(status_of(&api, &id).await, None);
    let files = server.stored_files();
    assert!(files.is_empty(), "nothing stays in the store: {files:?}");

    // Both at once, many times: whatever the order, the image is gone and so is its data.
    for round in 0..ROUNDS {
        let id = raw_image(&api, &format!("race-{round}")).await;
        let upload = uploads
            .req(Method::PUT, &format!("/v2/images/{id}/file"))
            .header("content-type", "application/octet-stream")
            .body(data.clone())
            .send();
        let (uploaded, deleted) = tokio::join!(upload, delete(&api, &id));
        // A refusal may come before the body is sent, and the server then closes the
        // connection: the client can meet the close instead of the answer.
        let uploaded = uploaded
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string());
        assert!(
            uploaded
                .as_ref()
                .map_or(true, |s| [204, 404, 409, 410].contains(s)),
            "round {round}: upload {uploaded:?}"
        );
        assert_eq!(deleted, 204, "round {round} (upload {uploaded:?})");
        assert_eq!(status_of(&api, &id).await, None, "round {round}");
    }
    let files = server.stored_files();
    assert!(files.is_empty(), "nothing stays in the store: {files:?}");
}

#[tokio::test]
async fn concurrent_edits_of_one_image_lose_no_answered_change() {
    let server = Server::start(&[]).await;
    let api = std::sync::Arc::new(Api::new(&server, server.admin_token().await));
    const WRITERS: usize = 16;
    for round in 0..ROUNDS / 2 {
        let id = raw_image(&api, &format!("edited-{round}")).await;
        // Half add a property by PATCH, half add a tag by PUT: both are edits of the row.
        let writers: Vec<_> = (0..WRITERS)
            .map(|n| {
                let (api, id) = (std::sync::Arc::clone(&api), id.clone());
                tokio::spawn(async move {
                    let status = if n % 2 == 0 {
                        patch(
                            &api,
                            &id,
                            json!([{"op": "add", "path": format!("/p{n}"), "value": format!("v{n}")}]),
                        )
                        .await
                    } else {
                        api.req(Method::PUT, &format!("/v2/images/{id}/tags/t{n}"))
                            .send()
                            .await
                            .unwrap()
                            .status()
                    };
                    (n, status)
                })
            })
            .collect();
        let mut answers = Vec::new();
        for writer in writers {
            answers.push(writer.await.unwrap());
        }
        // Read after every writer was answered: each success must be there.
        let image = api.show(&id).await;
        let tags = image["tags"].as_array().unwrap();
        let mut kept = 0;
        for (n, status) in answers {
            match (n % 2, status.as_u16()) {
                (0, 200) => {
                    kept += 1;
                    assert_eq!(
                        image[format!("p{n}")],
                        format!("v{n}"),
                        "round {round}: {image}"
                    );
                }
                (1, 204) => {
                    kept += 1;
                    assert!(
                        tags.contains(&json!(format!("t{n}"))),
                        "round {round}: tag t{n} lost: {image}"
                    );
                }
                (_, 409) => {}
                other => panic!("round {round}, writer {n}: {other:?}"),
            }
        }
        assert!(kept > 0, "round {round}: every edit conflicted");
    }
}

#[tokio::test]
async fn a_patch_racing_a_delete_never_brings_the_image_back() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let mut patched_first = 0;
    for round in 0..ROUNDS * 2 {
        let id = raw_image(&api, &format!("gone-{round}")).await;
        let ops = json!([{"op": "add", "path": "/late", "value": "x"},
                         {"op": "replace", "path": "/name", "value": "renamed"}]);
        let (patched, deleted) = tokio::join!(patch(&api, &id, ops), delete(&api, &id));
        assert!(
            [200, 404, 409].contains(&patched.as_u16()),
            "round {round}: PATCH {patched}"
        );
        assert_eq!(deleted, 204, "round {round} (PATCH {patched})");
        patched_first += usize::from(patched == 200);
        assert_eq!(status_of(&api, &id).await, None, "round {round}");
        // Later edits find nothing either.
        assert_eq!(
            patch(
                &api,
                &id,
                json!([{"op": "add", "path": "/after", "value": "y"}])
            )
            .await,
            404,
            "round {round}"
        );
    }
    let listed = api.get_json("/v2/images").await;
    assert_eq!(listed["images"], json!([]), "no image came back");
    eprintln!(
        "PATCH answered 200 in {patched_first} of {} rounds",
        ROUNDS * 2
    );
}
