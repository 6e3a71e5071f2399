//! Keystone JSON shapes.

use ims_domain::identity::{Project, Role, TokenInfo, User};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Keystone's timestamp format: microseconds and `Z`.
pub fn keystone_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// A project.
pub fn project(base: &str, p: &Project) -> Value {
    json!({
        "id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
        "enabled": p.enabled, "is_domain": false, "parent_id": p.domain_id, "tags": [],
        "links": {"self": format!("{base}/v3/projects/{}", p.id)},
    })
}

/// A user (never with its password hash).
pub fn user(base: &str, u: &User) -> Value {
    json!({
        "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
        "default_project_id": u.default_project_id, "password_expires_at": null, "options": {},
        "links": {"self": format!("{base}/v3/users/{}", u.id)},
    })
}

/// A role.
pub fn role(base: &str, r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "domain_id": null, "description": null, "options": {},
           "links": {"self": format!("{base}/v3/roles/{}", r.id)}})
}

/// A token body with a service catalog pointing at this server.
pub fn token(base: &str, region: &str, t: &TokenInfo) -> Value {
    let endpoint = |kind: &str, url: String| json!({"id": format!("{kind}-public"), "interface": "public", "region": region, "region_id": region, "url": url});
    let service = |kind: &str, name: &str, url: String| {
        let eps: Vec<Value> = ["public", "internal", "admin"]
            .iter()
            .map(|i| {
                let mut e = endpoint(kind, url.clone());
                e["interface"] = json!(i);
                e["id"] = json!(format!("{kind}-{i}"));
                e
            })
            .collect();
        json!({"id": format!("{kind}-service"), "type": kind, "name": name, "endpoints": eps})
    };
    json!({"token": {
        "methods": ["password"],
        "user": {"id": t.user.id, "name": t.user.name, "password_expires_at": null,
                 "domain": {"id": t.user_domain.id, "name": t.user_domain.name}},
        "audit_ids": [t.record.audit_id],
        "expires_at": keystone_time(t.record.expires_at),
        "issued_at": keystone_time(t.record.issued_at),
        "project": {"id": t.project.id, "name": t.project.name,
                    "domain": {"id": t.project_domain.id, "name": t.project_domain.name}},
        "is_domain": false,
        "roles": t.roles.iter().map(|r| json!({"id": r.id, "name": r.name})).collect::<Vec<_>>(),
        "catalog": [service("image", "glance", base.to_string()), service("identity", "keystone", format!("{base}/v3"))],
    }})
}

/// The `/v3` version document.
pub fn version(base: &str) -> Value {
    json!({"version": {
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }})
}
