//! Glance's error bodies through the real binary: one HTML page without
//! `Accept: application/json` (what glanceclient and Tempest's image client send), JSON with it.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use common::{Api, Server};
use reqwest::Method;
use serde_json::Value;

/// Asserts `r` is Glance's HTML error page for `status` carrying `message` once, unescaped
/// markup only at the page's own level.
async fn assert_one_page(r: reqwest::Response, status: u16, message: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=UTF-8"
    );
    let body = r.text().await.unwrap();
    let line = format!(
        "{status} {}",
        reqwest::StatusCode::from_u16(status)
            .unwrap()
            .canonical_reason()
            .unwrap()
    );
    let expected = format!(
        "<html>\n <head>\n  <title>{line}</title>\n </head>\n <body>\n  <h1>{line}</h1>\n  {message}<br /><br />\n\n\n\n </body>\n</html>"
    );
    assert_eq!(body, expected, "one page with the message, nothing nested");
}

#[tokio::test]
async fn html_error_page_is_not_wrapped_twice() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let missing = "00000000-0000-0000-0000-000000000000";

    // A handler's error (domain 404).
    let r = api
        .req(Method::GET, &format!("/v2/images/{missing}"))
        .send()
        .await
        .unwrap();
    assert_one_page(r, 404, &format!("No image found with ID {missing}")).await;

    // A handler's 400 from a request body check.
    let image = api
        .create(serde_json::json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = image["id"].as_str().unwrap();
    let r = api
        .req(Method::POST, &format!("/v2/images/{id}/import"))
        .json(&serde_json::json!({"method": {"name": "no-such-method"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert_eq!(body.matches("<html>").count(), 1, "{body}");
    assert!(!body.contains("&lt;html"), "{body}");

    // A framework rejection (405 from the router) keeps its Allow header, one page.
    let r = api.req(Method::PUT, "/v2/images").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().contains_key("allow"));
    let body = r.text().await.unwrap();
    assert_eq!(body.matches("<html>").count(), 1, "{body}");
    assert!(!body.contains("&lt;"), "{body}");

    // A route no router knows (the application's fallback).
    let r = api
        .req(Method::GET, "/v2/nothing-here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert_eq!(body.matches("<html>").count(), 1, "{body}");

    // With Accept: application/json the same error is Glance's JSON body.
    let r = api
        .req(Method::GET, &format!("/v2/images/{missing}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], format!("No image found with ID {missing}"));
    assert_eq!(body["code"], "404 Not Found");
}
