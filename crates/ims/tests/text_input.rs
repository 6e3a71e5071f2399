//! NUL and other control characters in text input are refused with a 400 in each dialect's
//! own error shape, on SQLite and PostgreSQL alike (PostgreSQL cannot store a NUL, SQLite
//! would). Free-text property values keep tabs and line breaks.

mod common;

use common::call;
use common::signed::Signer;
use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

async fn patch(api: &Api, id: &str, ops: Value) -> (u16, Value) {
    let r = common::patch(api, id, ops).await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn assert_glance_400(what: &str, (status, body): (u16, Value)) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["code"], "400 Bad Request", "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("control characters"), "{what}: {body}");
}

#[tokio::test]
async fn glance_refuses_control_characters_everywhere_text_enters() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let base = json!({"disk_format": "raw", "container_format": "bare"});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Some(b)
    };

    for (what, body) in [
        ("NUL in name", with(json!({"name": "a\u{0}b"}))),
        ("ESC in name", with(json!({"name": "\u{1b}[31mred"}))),
        (
            "NUL in a property value",
            with(json!({"os_distro": "x\u{0}"})),
        ),
        (
            "control char in a property name",
            with(json!({"k\u{1}": "v"})),
        ),
        ("NUL in a tag", with(json!({"tags": ["ok", "b\u{0}d"]}))),
    ] {
        assert_glance_400(what, call(&api, Method::POST, "/v2/images", body).await);
    }

    // Tabs and line breaks are fine in a free-text property value, and round-trip.
    let image = api
        .create(
            json!({"name": "ok", "disk_format": "raw", "container_format": "bare",
                       "notes": "line 1\nline\t2\r\n"}),
        )
        .await;
    let id = image["id"].as_str().unwrap();
    assert_eq!(api.show(id).await["notes"], "line 1\nline\t2\r\n");

    assert_glance_400(
        "PATCH name",
        patch(
            &api,
            id,
            json!([{"op": "replace", "path": "/name", "value": "n\u{7}"}]),
        )
        .await,
    );
    assert_glance_400(
        "PATCH property",
        patch(
            &api,
            id,
            json!([{"op": "add", "path": "/hw_x", "value": "\u{0}"}]),
        )
        .await,
    );
    assert_glance_400(
        "tag via PUT",
        call(
            &api,
            Method::PUT,
            &format!("/v2/images/{id}/tags/a%00b"),
            None,
        )
        .await,
    );
    for query in ["name=%00", "os_distro=x%01", "tag=%7F", "sort_key=name%00"] {
        assert_glance_400(
            query,
            call(&api, Method::GET, &format!("/v2/images?{query}"), None).await,
        );
    }

    // Members: add, show and delete with a NUL in the member id.
    let shared = api
        .create(
            json!({"name": "s", "disk_format": "raw", "container_format": "bare",
                       "visibility": "shared"}),
        )
        .await;
    let sid = shared["id"].as_str().unwrap();
    assert_glance_400(
        "member add",
        call(
            &api,
            Method::POST,
            &format!("/v2/images/{sid}/members"),
            Some(json!({"member": "p\u{0}"})),
        )
        .await,
    );
    for method in [Method::GET, Method::DELETE] {
        assert_glance_400(
            "member path",
            call(
                &api,
                method,
                &format!("/v2/images/{sid}/members/p%00"),
                None,
            )
            .await,
        );
    }

    // Nothing of the refused requests was stored.
    let (status, list) = call(&api, Method::GET, "/v2/images", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"ok") && names.contains(&"s"), "{names:?}");
}

fn assert_keystone_400(what: &str, (status, body): (u16, Value)) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["error"]["code"], 400, "{what}: {body}");
    assert_eq!(body["error"]["title"], "Bad Request", "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("control characters"), "{what}: {body}");
}

#[tokio::test]
async fn keystone_refuses_control_characters_in_names_passwords_and_filters() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let password = server.admin_password();
    let auth = |user: &str, domain: &str, pw: &str| {
        Some(
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
            {"name": user, "domain": {"name": domain}, "password": pw}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}),
        )
    };
    for (what, body) in [
        ("user name", auth("ad\u{0}min", "Default", &password)),
        ("domain name", auth("admin", "Default\u{0}", &password)),
        (
            "password",
            auth("admin", "Default", &format!("{password}\u{0}")),
        ),
    ] {
        assert_keystone_400(
            what,
            call(&api, Method::POST, "/v3/auth/tokens", body).await,
        );
    }
    let new_user = |name: &str, pw: &str| Some(json!({"user": {"name": name, "password": pw}}));
    assert_keystone_400(
        "new user name",
        call(&api, Method::POST, "/v3/users", new_user("bo\u{8}b", "pw")).await,
    );
    assert_keystone_400(
        "new user password",
        call(&api, Method::POST, "/v3/users", new_user("bob", "p\u{0}w")).await,
    );
    assert_keystone_400(
        "project name",
        call(
            &api,
            Method::POST,
            "/v3/projects",
            Some(json!({"project": {"name": "p\u{1f}"}})),
        )
        .await,
    );
    for path in [
        "/v3/users?name=%00",
        "/v3/projects?name=a%0Ab",
        "/v3/users/x%00",
    ] {
        assert_keystone_400(path, call(&api, Method::GET, path, None).await);
    }

    // A project description is free text: line breaks are kept.
    let (status, body) = call(
        &api,
        Method::POST,
        "/v3/projects",
        Some(json!({"project": {"name": "multi", "description": "two\nlines"}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["project"]["description"], "two\nlines");
    // And the admin still logs in: nothing above broke the catalog.
    server.admin_token().await;
}

#[tokio::test]
async fn ims_refuses_control_characters_with_its_own_codes() {
    let server = Server::start(&[]).await;
    let api = Api::new(&server, server.admin_token().await);
    let signer = Signer::new(&server, "admin", "admin");
    let image = api
        .create(json!({"name": "t", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let id = image["id"].as_str().unwrap();

    let (status, body) = signer
        .send(
            Method::PUT,
            "/v1/cloudimages/tags",
            Some(json!({"image_id": id, "image_tag": {"key": "k\u{0}", "value": "v"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "IMG.0115", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("control characters"),
        "{body}"
    );

    let (status, body) = signer
        .send(Method::GET, "/v2/cloudimages?name=%00", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["code"].as_str().unwrap().starts_with("IMG."),
        "{body}"
    );

    // The image is untouched and a clean tag still works.
    let (status, body) = signer
        .send(
            Method::PUT,
            "/v1/cloudimages/tags",
            Some(json!({"image_id": id, "image_tag": {"key": "k", "value": "v"}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(api.show(id).await["tags"], json!(["k=v"]));
}
