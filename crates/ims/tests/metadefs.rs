//! Glance's metadata definitions API (`/v2/metadefs/…`) through the real binary: the
//! calls Tempest and glanceclient make, Glance's status codes and error body for bad
//! input, admin-only writes, project isolation, and `ims admin metadefs load`.

mod common;

use common::call;
use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

struct World {
    server: Server,
    admin: Api,
    /// A member of project `beta`.
    member: Api,
}

async fn world() -> World {
    let server = Server::start(&[]).await;
    server.add_member("beta", "bob", "bob-secret");
    let admin = Api::new(&server, server.admin_token().await);
    let member = Api::new(&server, server.token("bob", "bob-secret", "beta").await);
    World {
        server,
        admin,
        member,
    }
}

/// Asserts Glance's error body for `status`.
fn glance_error(status: u16, body: &Value, expected: u16, words: &str) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["code"]
            .as_str()
            .unwrap()
            .starts_with(&expected.to_string()),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    assert!(body["message"].as_str().unwrap().contains(words), "{body}");
}

const NS: &str = "/v2/metadefs/namespaces";

#[tokio::test]
async fn namespaces_are_created_listed_paged_updated_and_deleted() {
    let w = world().await;
    let (s, rts) = call(&w.admin, Method::GET, "/v2/metadefs/resource_types", None).await;
    assert_eq!(s, 200);
    let first_rt = rts["resource_types"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first_rt, "OS::Glance::Image");

    // Tempest's create call, with a resource type association and protection.
    let r = w
        .admin
        .req(Method::POST, NS)
        .json(
            &json!({"namespace": "tempest-ns", "visibility": "public", "description": "Tempest",
                      "display_name": "tempest-ns", "protected": true,
                      "resource_type_associations": [{"name": first_rt}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/v2/metadefs/namespaces/tempest-ns")
    );
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["namespace"], "tempest-ns");
    assert_eq!(created["protected"], true);
    assert_eq!(created["self"], "/v2/metadefs/namespaces/tempest-ns");
    assert_eq!(created["schema"], "/v2/schemas/metadefs/namespace");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        created["resource_type_associations"][0]["name"],
        "OS::Glance::Image"
    );

    // The same name again is a conflict.
    let (s, body) = call(
        &w.admin,
        Method::POST,
        NS,
        Some(json!({"namespace": "tempest-ns"})),
    )
    .await;
    glance_error(s, &body, 409, "namespace=tempest-ns already exists");

    for i in 0..3 {
        let (s, _) = call(
            &w.admin,
            Method::POST,
            NS,
            Some(json!({"namespace": format!("page-{i}")})),
        )
        .await;
        assert_eq!(s, 201);
    }
    let (s, list) = call(&w.admin, Method::GET, NS, None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["page-2", "page-1", "page-0", "tempest-ns"],
        "newest first"
    );
    assert_eq!(list["first"], "/v2/metadefs/namespaces");
    assert_eq!(list["schema"], "/v2/schemas/metadefs/namespaces");
    assert!(list.get("next").is_none());
    assert_eq!(
        list["namespaces"][3]["resource_type_associations"][0]["name"],
        "OS::Glance::Image"
    );

    // Paging by name, ascending: `next` carries the marker and the request's parameters.
    let (_, p1) = call(
        &w.admin,
        Method::GET,
        &format!("{NS}?limit=2&sort_key=namespace&sort_dir=asc"),
        None,
    )
    .await;
    let names: Vec<&str> = p1["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["page-0", "page-1"]);
    let next = p1["next"].as_str().unwrap();
    assert!(
        next.contains("marker=page-1") && next.contains("limit=2"),
        "{next}"
    );
    let (_, p2) = call(&w.admin, Method::GET, next, None).await;
    let names: Vec<&str> = p2["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["page-2", "tempest-ns"]);
    let (_, filtered) = call(
        &w.admin,
        Method::GET,
        &format!("{NS}?resource_types=OS::Glance::Image,OS::Nova::Flavor"),
        None,
    )
    .await;
    assert_eq!(filtered["namespaces"].as_array().unwrap().len(), 1);
    for bad in [
        "limit=-1",
        "limit=x",
        "sort_dir=sideways",
        "visibility=shared",
        "sort_key=colour",
    ] {
        let (s, body) = call(&w.admin, Method::GET, &format!("{NS}?{bad}"), None).await;
        glance_error(s, &body, 400, "");
    }
    let (s, body) = call(&w.admin, Method::GET, &format!("{NS}?marker=nope"), None).await;
    glance_error(s, &body, 404, "nope");
    // A control character (NUL included) names nothing; it is a 400 on every backend
    // (PostgreSQL refuses a NUL in text), before any lookup.
    for bad in ["%00", "%01", "%1B", "%7F"] {
        for path in [
            format!("{NS}/a{bad}b"),
            format!("{NS}/page-0/tags/a{bad}b"),
            format!("{NS}/page-0/objects/a{bad}b"),
            format!("{NS}/page-0/properties/a{bad}b"),
            format!("{NS}?resource_types=a{bad}b"),
            format!("{NS}?marker=a{bad}b"),
            format!("{NS}/page-0?resource_type=a{bad}b"),
        ] {
            let (s, body) = call(&w.admin, Method::GET, &path, None).await;
            glance_error(s, &body, 400, "control characters");
        }
    }
    for bad in ["a\u{0}b", "a\u{1}b", "a\u{7f}"] {
        let (s, body) = call(&w.admin, Method::POST, NS, Some(json!({"namespace": bad}))).await;
        glance_error(
            s,
            &body,
            400,
            "'namespace' must not contain control characters",
        );
    }
    let (s, body) = call(
        &w.admin,
        Method::POST,
        NS,
        Some(json!({"namespace": "ok-name", "description": "line\u{1}"})),
    )
    .await;
    glance_error(
        s,
        &body,
        400,
        "'description' must not contain control characters",
    );
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{NS}/page-0/objects"),
        Some(json!({"name": "o\u{1}"})),
    )
    .await;
    glance_error(
        s,
        &body,
        400,
        "Provided object does not match schema 'object'",
    );
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{NS}/page-0/tags/t%01"),
        None,
    )
    .await;
    glance_error(s, &body, 400, "control characters");

    // Protected: no delete; Tempest then unprotects it with a PUT.
    let (s, body) = call(&w.admin, Method::DELETE, &format!("{NS}/tempest-ns"), None).await;
    glance_error(s, &body, 403, "is protected and cannot be deleted");
    let (s, body) = call(
        &w.admin,
        Method::DELETE,
        &format!("{NS}/tempest-ns/tags"),
        None,
    )
    .await;
    glance_error(s, &body, 403, "is protected");
    let (s, updated) = call(
        &w.admin,
        Method::PUT,
        &format!("{NS}/tempest-ns"),
        Some(
            json!({"namespace": "tempest-ns", "description": "Tempest", "visibility": "private",
                    "display_name": "tempest-ns", "protected": false}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["visibility"], "private");
    assert_eq!(updated["protected"], false);
    // Renaming onto another namespace is a conflict; the body must name the namespace.
    let (s, body) = call(
        &w.admin,
        Method::PUT,
        &format!("{NS}/tempest-ns"),
        Some(json!({"namespace": "page-0"})),
    )
    .await;
    glance_error(s, &body, 409, "duplicate");
    let (s, body) = call(
        &w.admin,
        Method::PUT,
        &format!("{NS}/tempest-ns"),
        Some(json!({"display_name": "x"})),
    )
    .await;
    glance_error(s, &body, 400, "'namespace' is a required property");
    let (s, body) = call(
        &w.admin,
        Method::PUT,
        &format!("{NS}/tempest-ns"),
        Some(json!({"namespace": "tempest-ns", "created_at": "x"})),
    )
    .await;
    glance_error(s, &body, 403, "read-only");
    let (s, _) = call(&w.admin, Method::DELETE, &format!("{NS}/tempest-ns"), None).await;
    assert_eq!(s, 204);
    let (s, body) = call(&w.admin, Method::GET, &format!("{NS}/tempest-ns"), None).await;
    glance_error(s, &body, 404, "tempest-ns");
    let (s, _) = call(&w.admin, Method::PATCH, &format!("{NS}/page-0"), None).await;
    assert_eq!(s, 405);
}

#[tokio::test]
async fn objects_properties_tags_and_associations() {
    let w = world().await;
    let (s, _) = call(
        &w.admin,
        Method::POST,
        NS,
        Some(json!({"namespace": "hw", "visibility": "public"})),
    )
    .await;
    assert_eq!(s, 201);
    let hw = format!("{NS}/hw");

    // Associations, with prefix and target; to an unknown namespace: 404.
    let (s, a) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/resource_types"),
        Some(json!({"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"})),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["prefix"], "hw_");
    assert_eq!(a["properties_target"], "image");
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/resource_types"),
        Some(json!({"name": "OS::Cinder::Volume"})),
    )
    .await;
    glance_error(s, &body, 409, "already exists");
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{NS}/no-such-ns/resource_types"),
        Some(json!({"name": "OS::Glance::Image"})),
    )
    .await;
    glance_error(s, &body, 404, "no-such-ns");
    // A new resource type name is created on first use and then listed.
    let (s, _) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/resource_types"),
        Some(json!({"name": "My::Thing"})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, rts) = call(&w.member, Method::GET, "/v2/metadefs/resource_types", None).await;
    assert!(
        rts["resource_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "My::Thing")
    );
    let (_, assocs) = call(&w.admin, Method::GET, &format!("{hw}/resource_types"), None).await;
    assert_eq!(
        assocs["resource_type_associations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (s, _) = call(
        &w.admin,
        Method::DELETE,
        &format!("{hw}/resource_types/My::Thing"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, body) = call(
        &w.admin,
        Method::DELETE,
        &format!("{hw}/resource_types/My::Thing"),
        None,
    )
    .await;
    glance_error(s, &body, 404, "My::Thing");

    // Properties: Tempest's calls, and an invalid JSON schema type.
    let enum_ = json!(["xen", "qemu", "kvm"]);
    let (s, p) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/properties"),
        Some(json!({"name": "disk_bus", "title": "Disk Bus", "type": "string", "enum": enum_})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["name"], "disk_bus");
    assert_eq!(p["enum"], enum_);
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/properties"),
        Some(json!({"name": "bad", "title": "Bad", "type": "strnig"})),
    )
    .await;
    glance_error(s, &body, 400, "'strnig' is not one of");
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/properties"),
        Some(json!({"name": "disk_bus", "title": "Disk Bus", "type": "string"})),
    )
    .await;
    glance_error(s, &body, 409, "name=disk_bus already exists");
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/properties"),
        Some(json!({"name": "p", "type": "string"})),
    )
    .await;
    glance_error(s, &body, 400, "'title' is a required property");
    let (s, p) = call(
        &w.admin,
        Method::PUT,
        &format!("{hw}/properties/disk_bus"),
        Some(json!({"name": "disk_bus", "title": "Bus", "type": "string", "enum": enum_})),
    )
    .await;
    assert_eq!((s, p["title"].as_str()), (200, Some("Bus")));
    let (s, p) = call(
        &w.admin,
        Method::GET,
        &format!("{hw}/properties/hw_disk_bus?resource_type=OS::Cinder::Volume"),
        None,
    )
    .await;
    assert_eq!((s, p["name"].as_str()), (200, Some("hw_disk_bus")), "{p}");
    let (_, props) = call(&w.admin, Method::GET, &format!("{hw}/properties"), None).await;
    assert_eq!(props["properties"]["disk_bus"]["title"], "Bus");
    assert!(props["properties"]["disk_bus"].get("name").is_none());

    // Objects.
    let (s, o) = call(&w.admin, Method::POST, &format!("{hw}/objects"),
        Some(json!({"name": "CPU Limits", "required": ["period"],
                    "properties": {"period": {"title": "Period", "type": "integer", "minimum": 1000}}}))).await;
    assert_eq!(s, 201, "{o}");
    assert_eq!(o["self"], "/v2/metadefs/namespaces/hw/objects/CPU Limits");
    // A PUT replaces the whole object: `required` is not sent, so it goes.
    let (s, o) = call(&w.admin, Method::PUT, &format!("{hw}/objects/CPU%20Limits"),
        Some(json!({"name": "CPU", "properties": {"period": {"title": "Period", "type": "integer"}}}))).await;
    assert_eq!((s, o["name"].as_str()), (200, Some("CPU")), "{o}");
    let (s, _) = call(
        &w.admin,
        Method::GET,
        &format!("{hw}/objects/CPU Limits"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/objects"),
        Some(json!({"name": "o2", "properties": {"x": {"title": "X", "type": "bogus"}}})),
    )
    .await;
    glance_error(s, &body, 400, "'bogus' is not one of");
    let (_, objs) = call(&w.admin, Method::GET, &format!("{hw}/objects"), None).await;
    assert_eq!(objs["objects"][0]["name"], "CPU");

    // Tags: bulk create replaces, the append header keeps; names over the limit are 400s.
    let tags = json!({"tags": [{"name": "sample-tag1"}, {"name": "sample-tag2"}, {"name": "sample-tag3"}]});
    let (s, t) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/tags"),
        Some(tags.clone()),
    )
    .await;
    assert_eq!((s, t["tags"].as_array().unwrap().len()), (201, 3));
    let r = w
        .admin
        .req(Method::POST, &format!("{hw}/tags"))
        .header("x-openstack-append", "True")
        .json(&json!({"tags": [{"name": "extra"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, listed) = call(&w.admin, Method::GET, &format!("{hw}/tags"), None).await;
    assert_eq!(listed["tags"].as_array().unwrap().len(), 4);
    let (s, _) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/tags"),
        Some(json!({"tags": [{"name": "only"}]})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, listed) = call(&w.admin, Method::GET, &format!("{hw}/tags"), None).await;
    assert_eq!(listed["tags"], json!([{"name": "only"}]));
    let long = "t".repeat(256);
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/tags"),
        Some(json!({"tags": [{"name": long}]})),
    )
    .await;
    glance_error(s, &body, 400, "is too long");
    let (s, body) = call(&w.admin, Method::POST, &format!("{hw}/tags/{long}"), None).await;
    glance_error(s, &body, 400, "is too long");
    let (s, body) = call(
        &w.admin,
        Method::POST,
        &format!("{hw}/tags/{}", "t".repeat(81)),
        None,
    )
    .await;
    glance_error(s, &body, 400, "is too long");
    let (s, t) = call(&w.admin, Method::POST, &format!("{hw}/tags/single"), None).await;
    assert_eq!((s, t["name"].as_str()), (201, Some("single")));
    let (s, body) = call(&w.admin, Method::POST, &format!("{hw}/tags/single"), None).await;
    glance_error(s, &body, 409, "already exists");
    let (s, t) = call(
        &w.admin,
        Method::PUT,
        &format!("{hw}/tags/single"),
        Some(json!({"name": "renamed"})),
    )
    .await;
    assert_eq!((s, t["name"].as_str()), (200, Some("renamed")));
    let (s, _) = call(&w.admin, Method::GET, &format!("{hw}/tags/renamed"), None).await;
    assert_eq!(s, 200);

    // The namespace shows what it holds, prefixed for a resource type on request.
    let (_, shown) = call(
        &w.admin,
        Method::GET,
        &format!("{hw}?resource_type=OS::Cinder::Volume"),
        None,
    )
    .await;
    assert!(shown["properties"].get("hw_disk_bus").is_some(), "{shown}");
    assert!(
        shown["objects"][0]["properties"].get("hw_period").is_some(),
        "{shown}"
    );
    assert!(
        shown["objects"][0].get("required").is_none(),
        "the update dropped it"
    );
    assert_eq!(shown["tags"].as_array().unwrap().len(), 2);
    assert_eq!(
        shown["resource_type_associations"][0]["name"],
        "OS::Cinder::Volume"
    );

    // Deleting all of a kind.
    for kind in ["tags", "objects", "properties"] {
        let (s, _) = call(&w.admin, Method::DELETE, &format!("{hw}/{kind}"), None).await;
        assert_eq!(s, 204, "{kind}");
    }
    let (_, shown) = call(&w.admin, Method::GET, &hw, None).await;
    for kind in ["tags", "objects", "properties"] {
        assert!(shown.get(kind).is_none(), "{kind}: {shown}");
    }
    let (s, _) = call(&w.admin, Method::DELETE, &hw, None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&w.admin, Method::GET, &format!("{hw}/tags"), None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn writes_are_admin_only_and_private_namespaces_stay_in_their_project() {
    let w = world().await;
    let (s, _) = call(
        &w.admin,
        Method::POST,
        NS,
        Some(json!({"namespace": "secret"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = call(
        &w.admin,
        Method::POST,
        NS,
        Some(json!({"namespace": "shared", "visibility": "public"})),
    )
    .await;
    assert_eq!(s, 201);

    // A member may not create, even in its own project.
    let (s, body) = call(
        &w.member,
        Method::POST,
        NS,
        Some(json!({"namespace": "mine"})),
    )
    .await;
    glance_error(s, &body, 403, "add_metadef_namespace");
    // Another project's private namespace does not exist for it, whatever the call.
    for (method, path) in [
        (Method::GET, format!("{NS}/secret")),
        (Method::GET, format!("{NS}/secret/objects")),
        (Method::GET, format!("{NS}/secret/tags")),
        (Method::DELETE, format!("{NS}/secret")),
        (Method::POST, format!("{NS}/secret/tags/t")),
    ] {
        let (s, body) = call(&w.member, method, &path, None).await;
        glance_error(s, &body, 404, "");
    }
    let (_, list) = call(&w.member, Method::GET, NS, None).await;
    let names: Vec<&str> = list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shared"]);
    // A public one is readable, but writing to it is forbidden.
    let (s, _) = call(&w.member, Method::GET, &format!("{NS}/shared"), None).await;
    assert_eq!(s, 200);
    for (method, path, body) in [
        (
            Method::PUT,
            format!("{NS}/shared"),
            Some(json!({"namespace": "shared"})),
        ),
        (Method::DELETE, format!("{NS}/shared"), None),
        (Method::POST, format!("{NS}/shared/tags/t"), None),
        (
            Method::POST,
            format!("{NS}/shared/objects"),
            Some(json!({"name": "o"})),
        ),
        (
            Method::POST,
            format!("{NS}/shared/resource_types"),
            Some(json!({"name": "OS::Glance::Image"})),
        ),
    ] {
        let (s, b) = call(&w.member, method, &path, body).await;
        glance_error(s, &b, 403, "not authorized");
    }
    // Without a token: 401.
    let r = reqwest::get(format!("{}{NS}", w.server.url)).await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn metadef_schemas_carry_glances_names() {
    let w = world().await;
    for (url, name) in [
        ("namespace", "namespace"),
        ("namespaces", "namespaces"),
        ("resource_type", "resource_type_association"),
        ("resource_types", "resource_type_associations"),
        ("property", "property"),
        ("properties", "properties"),
        ("object", "object"),
        ("objects", "objects"),
        ("tag", "tag"),
        ("tags", "tags"),
    ] {
        let (s, body) = call(
            &w.member,
            Method::GET,
            &format!("/v2/schemas/metadefs/{url}"),
            None,
        )
        .await;
        assert_eq!((s, body["name"].as_str()), (200, Some(name)), "{url}");
    }
    let (s, _) = call(&w.member, Method::GET, "/v2/schemas/metadefs/nothing", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn definition_files_load_into_the_catalog() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let doc = json!({
        "namespace": "OS::Test::Loaded", "display_name": "Loaded", "description": "From a file",
        "visibility": "public", "protected": true,
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "t_"}, {"name": "OS::Test::Kind"}],
        "properties": {"mode": {"title": "Mode", "type": "string", "enum": ["a", "b"], "extra": "dropped"}},
        "objects": [{"name": "Obj", "description": "d", "properties": {"n": {"title": "N", "type": "integer"}}}],
        "tags": [{"name": "loaded-tag"}]
    });
    std::fs::write(dir.path().join("loaded.json"), doc.to_string()).unwrap();
    std::fs::write(
        dir.path().join("other.json"),
        json!({"namespace": "OS::Test::Other"}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a definition").unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let out = w.server.admin(&["metadefs", "load", dir_arg]);
    assert_eq!(out, "OS::Test::Loaded created\nOS::Test::Other created");

    let (s, ns) = call(
        &w.member,
        Method::GET,
        &format!("{NS}/OS::Test::Loaded"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{ns}");
    assert_eq!(ns["owner"], "admin");
    assert_eq!(ns["protected"], true);
    assert_eq!(
        ns["properties"]["mode"],
        json!({"title": "Mode", "type": "string", "enum": ["a", "b"]})
    );
    assert_eq!(ns["objects"][0]["properties"]["n"]["type"], "integer");
    assert_eq!(ns["tags"], json!([{"name": "loaded-tag"}]));
    assert_eq!(
        ns["resource_type_associations"].as_array().unwrap().len(),
        2
    );
    let (_, rts) = call(&w.member, Method::GET, "/v2/metadefs/resource_types", None).await;
    assert!(
        rts["resource_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "OS::Test::Kind")
    );

    // Loading again leaves existing namespaces alone unless asked to merge.
    let mut changed = doc.clone();
    changed["description"] = json!("Changed");
    changed["tags"] = json!([{"name": "loaded-tag"}, {"name": "new-tag"}]);
    changed["objects"][0]["description"] = json!("rewritten");
    changed["properties"]["extra"] = json!({"title": "Extra", "type": "string"});
    std::fs::write(dir.path().join("loaded.json"), changed.to_string()).unwrap();
    let out = w.server.admin(&["metadefs", "load", dir_arg]);
    assert_eq!(out, "OS::Test::Loaded skipped\nOS::Test::Other skipped");
    let out = w.server.admin(&[
        "metadefs",
        "load",
        "--merge",
        "--prefer-new",
        dir.path().join("loaded.json").to_str().unwrap(),
    ]);
    assert_eq!(out, "OS::Test::Loaded merged");
    let (_, ns) = call(
        &w.admin,
        Method::GET,
        &format!("{NS}/OS::Test::Loaded"),
        None,
    )
    .await;
    assert_eq!(ns["description"], "Changed");
    assert_eq!(ns["tags"].as_array().unwrap().len(), 2);
    assert_eq!(ns["objects"][0]["description"], "rewritten");
    assert_eq!(ns["properties"]["extra"]["title"], "Extra");
    assert_eq!(ns["properties"]["mode"]["title"], "Mode");
    let out = w
        .server
        .admin(&["metadefs", "load", "--overwrite", dir_arg]);
    assert_eq!(out, "OS::Test::Loaded replaced\nOS::Test::Other replaced");

    // An overwrite with a file that fails its checks (two objects of one name) changes
    // nothing: the file is checked before the old namespace is deleted.
    let bad_dir = tempfile::tempdir().unwrap();
    let mut twice = doc.clone();
    twice["objects"] = json!([{"name": "Same"}, {"name": "Same"}]);
    let bad_file = bad_dir.path().join("loaded.json");
    std::fs::write(&bad_file, twice.to_string()).unwrap();
    let out = w.server.admin_output(&[
        "metadefs",
        "load",
        "--overwrite",
        bad_file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name=Same already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, ns) = call(
        &w.admin,
        Method::GET,
        &format!("{NS}/OS::Test::Loaded"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{ns}");
    assert_eq!(ns["description"], "Changed");
    assert_eq!(ns["objects"][0]["name"], "Obj");
    assert_eq!(ns["objects"].as_array().unwrap().len(), 1);

    // A file that is not a namespace document fails the command but not the others.
    std::fs::write(
        dir.path().join("bad.json"),
        json!({"display_name": "no namespace"}).to_string(),
    )
    .unwrap();
    // Through the server's environment, so on its catalog (PostgreSQL too).
    let status = w.server.admin_output(&["metadefs", "load", dir_arg]);
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("'namespace' is a required property"));
    assert!(String::from_utf8_lossy(&status.stdout).contains("OS::Test::Loaded skipped"));
}
