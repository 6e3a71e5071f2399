//! The Keystone v3 admin API over HTTP against the real binary: projects, users and
//! roles created, read and deleted; role grants; token validation and revocation (a
//! revoked or expired token stops working on the image API too); 403 for non-admins on
//! every admin call, with nothing changed; Keystone's error body.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Api, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// One Keystone call: status, `X-Subject-Token` (if any) and the JSON body (`Null` when
/// there is none).
async fn call(
    server: &Server,
    token: Option<&str>,
    method: Method,
    path: &str,
    subject: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", server.url));
    if let Some(token) = token {
        req = req.header("x-auth-token", token);
    }
    if let Some(subject) = subject {
        req = req.header("x-subject-token", subject);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let subject = r
        .headers()
        .get("x-subject-token")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    };
    (status, subject, body)
}

/// A [`call`] with neither subject nor body: status and body.
async fn plain(
    server: &Server,
    token: Option<&str>,
    method: Method,
    path: &str,
) -> (StatusCode, Value) {
    let (status, _, body) = call(server, token, method, path, None, None).await;
    (status, body)
}

/// Asserts Keystone's error envelope with `status`.
fn assert_keystone_error(status: StatusCode, body: &Value, want: u16, what: &str) {
    assert_eq!(status.as_u16(), want, "{what}: {body}");
    let error = &body["error"];
    assert_eq!(error["code"], want, "{what}: {body}");
    assert_eq!(
        error["title"],
        status.canonical_reason().unwrap(),
        "{what}: {body}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only `error`, {what}: {body}"
    );
}

/// The id of the only entity `GET /v3/{kind}?name=` finds, or `None`.
async fn id_by_name(server: &Server, token: &str, kind: &str, name: &str) -> Option<String> {
    let (status, _, body) = call(
        server,
        Some(token),
        Method::GET,
        &format!("/v3/{kind}?name={name}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let found = body[kind].as_array().unwrap();
    assert!(found.len() <= 1, "{body}");
    found.first().map(|e| e["id"].as_str().unwrap().to_string())
}

/// A password login scoped to `project`: the token or the refusal.
async fn login(server: &Server, user: &str, password: &str, project: &str) -> (StatusCode, Value) {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}},
                      "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let (status, subject, body) = call(
        server,
        None,
        Method::POST,
        "/v3/auth/tokens",
        None,
        Some(body),
    )
    .await;
    match subject {
        Some(token) if status == 201 => (status, json!(token)),
        _ => (status, body),
    }
}

/// The image API's answer to a list with `token`.
async fn glance_list(server: &Server, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/v2/images", server.url))
        .header("x-auth-token", token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
}

/// Asserts the image API's 401: Glance's body and the Keystone challenge.
async fn assert_glance_unauthorized(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 401, "{what}");
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Keystone uri="),
        "{what}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "401 Unauthorized", "{what}: {body}");
    assert_eq!(body["title"], "Unauthorized", "{what}: {body}");
}

#[tokio::test]
async fn projects_users_roles_and_grants_over_http() {
    let server = Server::start(&[]).await;
    let admin = server.admin_token().await;
    let post = async |path: &str, body: Value| {
        call(&server, Some(&admin), Method::POST, path, None, Some(body)).await
    };

    // Create, list by name, read.
    let (status, _, created) = post("/v3/projects", json!({"project": {"name": "ks-p"}})).await;
    assert_eq!(status, 201, "{created}");
    let project = created["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["project"]["domain_id"], "default");
    assert_eq!(
        id_by_name(&server, &admin, "projects", "ks-p").await,
        Some(project.clone())
    );
    let (status, shown) = plain(
        &server,
        Some(&admin),
        Method::GET,
        &format!("/v3/projects/{project}"),
    )
    .await;
    assert_eq!(
        (status, &shown["project"]["name"]),
        (StatusCode::OK, &json!("ks-p"))
    );

    let (status, _, created) = post(
        "/v3/users",
        json!({"user": {"name": "ks-u", "password": "pw-ks-u", "default_project_id": project}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let user = created["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["user"]["default_project_id"], project.as_str());
    assert!(
        !created.to_string().contains("pw-ks-u") && created["user"].get("password").is_none(),
        "no password in {created}"
    );
    assert_eq!(
        id_by_name(&server, &admin, "users", "ks-u").await,
        Some(user.clone())
    );

    let (status, _, created) = post("/v3/roles", json!({"role": {"name": "Auditor"}})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["role"]["name"], "auditor", "names are lower-cased");
    let auditor = created["role"]["id"].as_str().unwrap().to_string();
    let (status, shown) = plain(
        &server,
        Some(&admin),
        Method::GET,
        &format!("/v3/roles/{auditor}"),
    )
    .await;
    assert_eq!(
        (status, &shown["role"]["name"]),
        (StatusCode::OK, &json!("auditor"))
    );
    let member = id_by_name(&server, &admin, "roles", "member")
        .await
        .unwrap();
    let reader = id_by_name(&server, &admin, "roles", "reader")
        .await
        .unwrap();

    // Grants: none yet, so the user cannot log in to the project.
    let grant = |role: &str| format!("/v3/projects/{project}/users/{user}/roles/{role}");
    let check = async |method: Method, role: &str| {
        call(&server, Some(&admin), method, &grant(role), None, None)
            .await
            .0
    };
    assert_eq!(check(Method::HEAD, &member).await, 404);
    let (status, body) = plain(&server, Some(&admin), Method::GET, &grant(&member)).await;
    assert_keystone_error(status, &body, 404, "GET of a missing grant");
    assert_eq!(login(&server, "ks-u", "pw-ks-u", "ks-p").await.0, 401);
    for _ in 0..2 {
        assert_eq!(check(Method::PUT, &member).await, 204, "PUT is idempotent");
    }
    assert_eq!(check(Method::PUT, &reader).await, 204);
    assert_eq!(check(Method::HEAD, &member).await, 204);
    assert_eq!(check(Method::GET, &member).await, 204);
    let (status, token) = login(&server, "ks-u", "pw-ks-u", "ks-p").await;
    assert_eq!(status, 201, "{token}");
    let token = token.as_str().unwrap().to_string();
    let own = Api::new(&server, token.clone());
    let r = own
        .req(Method::POST, "/v2/images")
        .json(&json!({"name": "by-member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "a member creates images");
    // The user may check its own grants, not another user's.
    let (status, _) = plain(&server, Some(&token), Method::HEAD, &grant(&reader)).await;
    assert_eq!(status, 204);
    let admin_user = id_by_name(&server, &admin, "users", "admin").await.unwrap();
    let (status, body) = plain(
        &server,
        Some(&token),
        Method::GET,
        &format!("/v3/projects/{project}/users/{admin_user}/roles/{member}"),
    )
    .await;
    assert_keystone_error(status, &body, 403, "another user's grant");

    // Revoking `member` takes effect on the token already issued: a reader cannot create.
    assert_eq!(check(Method::DELETE, &member).await, 204);
    assert_eq!(check(Method::HEAD, &member).await, 404);
    let (status, body) = plain(&server, Some(&admin), Method::DELETE, &grant(&member)).await;
    assert_keystone_error(status, &body, 404, "revoking a missing grant");
    let r = own
        .req(Method::POST, "/v2/images")
        .json(&json!({"name": "by-reader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the revoked role no longer counts");
    assert_eq!(
        glance_list(&server, &token).await.status(),
        200,
        "a reader reads"
    );

    // A second user of the project, to see its token end with the project.
    let (status, _, created) = post(
        "/v3/users",
        json!({"user": {"name": "ks-v", "password": "pw-ks-v"}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let second = created["user"]["id"].as_str().unwrap().to_string();
    let (status, _) = plain(
        &server,
        Some(&admin),
        Method::PUT,
        &format!("/v3/projects/{project}/users/{second}/roles/{member}"),
    )
    .await;
    assert_eq!(status, 204);
    let (status, second_token) = login(&server, "ks-v", "pw-ks-v", "ks-p").await;
    assert_eq!(status, 201);
    let second_token = second_token.as_str().unwrap().to_string();
    assert_eq!(glance_list(&server, &second_token).await.status(), 200);

    // Deletes, each then 404 in Keystone's shape.
    for (path, what) in [
        (format!("/v3/roles/{auditor}"), "role"),
        (format!("/v3/users/{user}"), "user"),
        (format!("/v3/projects/{project}"), "project"),
    ] {
        let (status, _) = plain(&server, Some(&admin), Method::DELETE, &path).await;
        assert_eq!(status, 204, "deleting the {what}");
        let (status, body) = plain(&server, Some(&admin), Method::GET, &path).await;
        assert_keystone_error(status, &body, 404, what);
        let (status, body) = plain(&server, Some(&admin), Method::DELETE, &path).await;
        assert_keystone_error(status, &body, 404, what);
    }
    assert_eq!(id_by_name(&server, &admin, "users", "ks-u").await, None);
    assert_glance_unauthorized(
        glance_list(&server, &token).await,
        "the token of a deleted user",
    )
    .await;
    assert_glance_unauthorized(
        glance_list(&server, &second_token).await,
        "a token scoped to a deleted project",
    )
    .await;
}

#[tokio::test]
async fn non_admins_are_refused_every_admin_call_and_nothing_changes() {
    let server = Server::start(&[]).await;
    server.add_member("p2", "bob", "pw-bob");
    let admin = server.admin_token().await;
    let bob = server.token("bob", "pw-bob", "p2").await;
    let admin_project = id_by_name(&server, &admin, "projects", "admin")
        .await
        .unwrap();
    let p2 = id_by_name(&server, &admin, "projects", "p2").await.unwrap();
    let admin_user = id_by_name(&server, &admin, "users", "admin").await.unwrap();
    let bob_id = id_by_name(&server, &admin, "users", "bob").await.unwrap();
    let member = id_by_name(&server, &admin, "roles", "member")
        .await
        .unwrap();
    let reader = id_by_name(&server, &admin, "roles", "reader")
        .await
        .unwrap();
    let admin_role = id_by_name(&server, &admin, "roles", "admin").await.unwrap();
    let bob_admin_grant = format!("/v3/projects/{p2}/users/{bob_id}/roles/{admin_role}");
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/v3/projects".into(),
            Some(json!({"project": {"name": "bobs"}})),
        ),
        (
            Method::DELETE,
            format!("/v3/projects/{admin_project}"),
            None,
        ),
        (Method::GET, format!("/v3/projects/{admin_project}"), None),
        (Method::GET, "/v3/users".into(), None),
        (
            Method::POST,
            "/v3/users".into(),
            Some(json!({"user": {"name": "mallory", "password": "pw"}})),
        ),
        (Method::GET, format!("/v3/users/{admin_user}"), None),
        (Method::DELETE, format!("/v3/users/{admin_user}"), None),
        (
            Method::POST,
            "/v3/roles".into(),
            Some(json!({"role": {"name": "superuser"}})),
        ),
        (Method::DELETE, format!("/v3/roles/{reader}"), None),
        (Method::PUT, bob_admin_grant.clone(), None),
        (
            Method::DELETE,
            format!("/v3/projects/{admin_project}/users/{admin_user}/roles/{admin_role}"),
            None,
        ),
    ];
    for (method, path, body) in calls {
        let (status, _, answer) =
            call(&server, Some(&bob), method.clone(), &path, None, body).await;
        assert_keystone_error(status, &answer, 403, &format!("{method} {path}"));
    }
    // Nothing changed.
    assert_eq!(id_by_name(&server, &admin, "projects", "bobs").await, None);
    assert_eq!(
        id_by_name(&server, &admin, "projects", "admin").await,
        Some(admin_project.clone())
    );
    assert_eq!(id_by_name(&server, &admin, "users", "mallory").await, None);
    assert_eq!(
        id_by_name(&server, &admin, "users", "admin").await,
        Some(admin_user.clone())
    );
    assert_eq!(
        id_by_name(&server, &admin, "roles", "superuser").await,
        None
    );
    assert_eq!(
        id_by_name(&server, &admin, "roles", "reader").await,
        Some(reader)
    );
    let (status, _) = plain(&server, Some(&admin), Method::HEAD, &bob_admin_grant).await;
    assert_eq!(status, 404, "bob did not make himself admin");
    assert_eq!(
        login(&server, "admin", &server.admin_password(), "admin")
            .await
            .0,
        201
    );

    // What a non-admin may do: its own project, itself, its own grants, the role list.
    let (status, listed) = plain(&server, Some(&bob), Method::GET, "/v3/projects").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p2"], "only its own project");
    for path in [
        format!("/v3/projects/{p2}"),
        format!("/v3/users/{bob_id}"),
        "/v3/roles".to_string(),
    ] {
        let (status, body) = plain(&server, Some(&bob), Method::GET, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _) = plain(
        &server,
        Some(&bob),
        Method::HEAD,
        &format!("/v3/projects/{p2}/users/{bob_id}/roles/{member}"),
    )
    .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn tokens_are_validated_and_revoked() {
    let server = Server::start(&[]).await;
    server.add_member("p2", "bob", "pw-bob");
    let admin = server.admin_token().await;
    let bob = server.token("bob", "pw-bob", "p2").await;

    let (status, subject, body) = call(
        &server,
        Some(&admin),
        Method::GET,
        "/v3/auth/tokens",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(subject.as_deref(), Some(bob.as_str()));
    assert_eq!(body["token"]["user"]["name"], "bob");
    assert_eq!(body["token"]["project"]["name"], "p2");
    let (status, _, _) = call(
        &server,
        Some(&admin),
        Method::HEAD,
        "/v3/auth/tokens",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Unknown subjects are 404; a missing subject is 400; no caller token is 401.
    let bogus = "gAAAA-not-a-token";
    let (status, _, body) = call(
        &server,
        Some(&admin),
        Method::GET,
        "/v3/auth/tokens",
        Some(bogus),
        None,
    )
    .await;
    assert_keystone_error(status, &body, 404, "an unknown subject");
    let (status, _, _) = call(
        &server,
        Some(&admin),
        Method::HEAD,
        "/v3/auth/tokens",
        Some(bogus),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = plain(&server, Some(&admin), Method::GET, "/v3/auth/tokens").await;
    assert_keystone_error(status, &body, 400, "no X-Subject-Token");
    let r = reqwest::Client::new()
        .get(format!("{}/v3/auth/tokens", server.url))
        .header("x-subject-token", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Keystone uri=\"/v3\"");
    let body: Value = r.json().await.unwrap();
    assert_keystone_error(StatusCode::UNAUTHORIZED, &body, 401, "no caller token");

    // Revoked: gone from Keystone and refused by the image API at once.
    assert_eq!(glance_list(&server, &bob).await.status(), 200);
    let (status, _, _) = call(
        &server,
        Some(&admin),
        Method::DELETE,
        "/v3/auth/tokens",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_glance_unauthorized(glance_list(&server, &bob).await, "a revoked token").await;
    let (status, _, body) = call(
        &server,
        Some(&admin),
        Method::GET,
        "/v3/auth/tokens",
        Some(&bob),
        None,
    )
    .await;
    assert_keystone_error(status, &body, 404, "a revoked subject");
    let (status, _, body) = call(
        &server,
        Some(&admin),
        Method::DELETE,
        "/v3/auth/tokens",
        Some(&bob),
        None,
    )
    .await;
    assert_keystone_error(status, &body, 404, "revoking twice");
    // A token can revoke itself; the admin's other token is untouched.
    let own = server.token("bob", "pw-bob", "p2").await;
    let (status, _, _) = call(
        &server,
        Some(&own),
        Method::DELETE,
        "/v3/auth/tokens",
        Some(&own),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_glance_unauthorized(glance_list(&server, &own).await, "a self-revoked token").await;
    assert_eq!(glance_list(&server, &admin).await.status(), 200);
}

#[tokio::test]
async fn an_expired_token_is_refused_by_both_apis() {
    const TTL_SECS: i64 = 2;
    let server = Server::start(&[("IMS_TOKEN_TTL_SECS", "2")]).await;
    let admin_password = server.admin_password();
    let (status, token) = login(&server, "admin", &admin_password, "admin").await;
    assert_eq!(status, 201);
    let token = token.as_str().unwrap().to_string();
    let (status, _, body) = call(
        &server,
        Some(&token),
        Method::GET,
        "/v3/auth/tokens",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let parse = |field: &str| {
        time::OffsetDateTime::parse(
            body["token"][field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let (issued, expires) = (parse("issued_at"), parse("expires_at"));
    assert_eq!((expires - issued).whole_seconds(), TTL_SECS, "{body}");
    // Used (and so cached by the validation cache) while valid...
    assert_eq!(glance_list(&server, &token).await.status(), 200);
    // ...and refused once past its expiry, within a second of it.
    let wait = expires - time::OffsetDateTime::now_utc();
    tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
    let refused = common::wait_for("the token to expire", Duration::from_secs(1), async || {
        let r = glance_list(&server, &token).await;
        (r.status() != 200).then_some(r)
    })
    .await;
    assert_glance_unauthorized(refused, "an expired token").await;
    let (status, body) = plain(&server, Some(&token), Method::GET, "/v3/projects").await;
    assert_keystone_error(status, &body, 401, "an expired caller token");
    let fresh = login(&server, "admin", &admin_password, "admin").await.1;
    let (status, _, body) = call(
        &server,
        Some(fresh.as_str().unwrap()),
        Method::GET,
        "/v3/auth/tokens",
        Some(&token),
        None,
    )
    .await;
    assert_keystone_error(status, &body, 404, "an expired subject");
}
