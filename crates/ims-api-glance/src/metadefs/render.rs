//! Glance's metadefs response shapes. Timestamps are `YYYY-MM-DDTHH:MM:SSZ`; links are
//! paths, with names as they are (Glance does not escape them).

use crate::convert::glance_time;
use ims_domain::metadefs::{
    Association, ListedNamespace, MetaObject, Namespace, NamespaceDetail, PropertyDef, Tag,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// The namespace schema link every namespace carries.
pub const NAMESPACE_SCHEMA: &str = "/v2/schemas/metadefs/namespace";
const OBJECT_SCHEMA: &str = "/v2/schemas/metadefs/object";

fn put_opt(m: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), json!(v));
    }
}

fn stamps(m: &mut Map<String, Value>, created: OffsetDateTime, updated: OffsetDateTime) {
    m.insert("created_at".into(), json!(glance_time(created)));
    m.insert("updated_at".into(), json!(glance_time(updated)));
}

/// The path of a namespace.
pub fn namespace_href(name: &str) -> String {
    format!("/v2/metadefs/namespaces/{name}")
}

/// A namespace's own fields with its links.
pub fn namespace(n: &Namespace) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("namespace".into(), json!(n.name));
    put_opt(&mut m, "display_name", &n.display_name);
    put_opt(&mut m, "description", &n.description);
    m.insert("visibility".into(), json!(n.visibility.as_str()));
    m.insert("protected".into(), json!(n.protected));
    m.insert("owner".into(), json!(n.owner));
    stamps(&mut m, n.created_at, n.updated_at);
    m.insert("self".into(), json!(namespace_href(&n.name)));
    m.insert("schema".into(), json!(NAMESPACE_SCHEMA));
    m
}

/// A namespace as listed: with its associations, if any.
pub fn listed(n: &ListedNamespace) -> Value {
    let mut m = namespace(&n.namespace);
    if !n.associations.is_empty() {
        m.insert(
            "resource_type_associations".into(),
            n.associations.iter().map(association).collect(),
        );
    }
    Value::Object(m)
}

/// A namespace with whatever it holds (each kind only when there is some).
pub fn detail(d: &NamespaceDetail) -> Value {
    let mut m = namespace(&d.namespace);
    let c = &d.contents;
    let name = &d.namespace.name;
    if !c.associations.is_empty() {
        m.insert(
            "resource_type_associations".into(),
            c.associations.iter().map(association).collect(),
        );
    }
    if !c.properties.is_empty() {
        let props: Map<String, Value> = c
            .properties
            .iter()
            .map(|p| (p.name.clone(), Value::Object(p.schema.clone())))
            .collect();
        m.insert("properties".into(), Value::Object(props));
    }
    if !c.objects.is_empty() {
        m.insert(
            "objects".into(),
            c.objects.iter().map(|o| object(name, o)).collect(),
        );
    }
    if !c.tags.is_empty() {
        m.insert("tags".into(), c.tags.iter().map(tag_name).collect());
    }
    Value::Object(m)
}

/// A resource type association.
pub fn association(a: &Association) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(a.name));
    put_opt(&mut m, "prefix", &a.prefix);
    put_opt(&mut m, "properties_target", &a.properties_target);
    stamps(&mut m, a.created_at, a.updated_at);
    Value::Object(m)
}

/// An object with its links.
pub fn object(ns: &str, o: &MetaObject) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(o.name));
    put_opt(&mut m, "description", &o.description);
    if let Some(r) = &o.required {
        m.insert("required".into(), json!(r));
    }
    if let Some(p) = &o.properties {
        m.insert("properties".into(), json!(p));
    }
    stamps(&mut m, o.created_at, o.updated_at);
    m.insert(
        "self".into(),
        json!(format!("{}/objects/{}", namespace_href(ns), o.name)),
    );
    m.insert("schema".into(), json!(OBJECT_SCHEMA));
    Value::Object(m)
}

/// A property definition, named.
pub fn property(name: &str, def: &PropertyDef) -> Value {
    let mut m = def.clone();
    m.insert("name".into(), json!(name));
    Value::Object(m)
}

/// A tag with its times.
pub fn tag(t: &Tag) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(t.name));
    stamps(&mut m, t.created_at, t.updated_at);
    Value::Object(m)
}

/// A tag as lists show it: its name only.
pub fn tag_name(t: &Tag) -> Value {
    json!({"name": t.name})
}
