//! The metadefs JSON schemas (`/v2/schemas/metadefs/…`), shaped like Glance's: the
//! request rules of `ims_domain::metadefs::rules` described for clients such as
//! glanceclient, which builds its `md-*` commands and validates responses from them.

use serde_json::{Value, json};

fn time(what: &str) -> Value {
    json!({"type": "string", "readOnly": true, "format": "date-time", "description": what})
}

fn read_only_text() -> Value {
    json!({"type": "string", "readOnly": true})
}

fn property_types() -> Value {
    json!([
        "array", "boolean", "integer", "number", "object", "string", null
    ])
}

/// What a property definition may hold.
fn property_fields() -> Value {
    json!({
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": property_types()},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {"type": "object", "properties": {
            "type": {"type": "string", "enum": property_types()},
            "enum": {"type": "array"}
        }},
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": false},
        "additionalItems": {"type": "boolean"}
    })
}

/// Shared definitions; a property map is `#/definitions/property`.
fn definitions(string_array_min: bool) -> Value {
    let mut string_array =
        json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true});
    if string_array_min {
        string_array["minItems"] = json!(1);
    }
    let mut defs = json!({
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": string_array,
    });
    if !string_array_min {
        defs["property"] = json!({"type": "object", "additionalProperties": {
            "type": "object", "required": ["title", "type"], "properties": property_fields()
        }});
    }
    defs
}

fn single(name: &str, properties: Value, required: &[&str], defs: Option<Value>) -> Value {
    let mut s = json!({"name": name, "properties": properties, "additionalProperties": false});
    if !required.is_empty() {
        s["required"] = json!(required);
    }
    if let Some(d) = defs {
        s["definitions"] = d;
    }
    s
}

/// A list schema: the item schema without its definitions, which move up.
fn collection(name: &str, mut item: Value, as_map: bool) -> Value {
    let defs = item.as_object_mut().and_then(|m| m.remove("definitions"));
    let list = if as_map {
        json!({"type": "object", "additionalProperties": item})
    } else {
        json!({"type": "array", "items": item})
    };
    let mut s = json!({
        "name": name,
        "properties": {name: list, "first": {"type": "string"}, "next": {"type": "string"}, "schema": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}, {"rel": "describedby", "href": "{schema}"}],
    });
    if let Some(d) = defs {
        s["definitions"] = d;
    }
    s
}

fn namespace() -> Value {
    let named = |extra: Value| {
        let mut p = json!({"name": {"type": "string"}});
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        json!({"type": "array", "items": {"type": "object", "properties": p}})
    };
    single(
        "namespace",
        json!({
            "namespace": {"type": "string", "description": "The unique namespace text.", "maxLength": 80},
            "display_name": {"type": "string", "description": "The user friendly name for the namespace. Used by UI if available.", "maxLength": 80},
            "description": {"type": "string", "description": "Provides a user friendly description of the namespace.", "maxLength": 500},
            "visibility": {"type": "string", "description": "Scope of namespace accessibility.", "enum": ["public", "private"]},
            "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
            "owner": {"type": "string", "description": "Owner of the namespace.", "maxLength": 255},
            "created_at": time("Date and time of namespace creation"),
            "updated_at": time("Date and time of the last namespace modification"),
            "schema": read_only_text(),
            "self": read_only_text(),
            "resource_type_associations": named(json!({"prefix": {"type": "string"}, "properties_target": {"type": "string"}})),
            "properties": {"$ref": "#/definitions/property"},
            "objects": named(json!({"description": {"type": "string"}, "required": {"$ref": "#/definitions/stringArray"}, "properties": {"$ref": "#/definitions/property"}})),
            "tags": named(json!({})),
        }),
        &["namespace"],
        Some(definitions(false)),
    )
}

fn resource_type() -> Value {
    single(
        "resource_type_association",
        json!({
            "name": {"type": "string", "maxLength": 80, "description": "Resource type names should be aligned with Heat resource types whenever possible."},
            "prefix": {"type": "string", "maxLength": 80, "description": "Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type. Must include prefix separator (e.g. a colon :)."},
            "properties_target": {"type": "string", "maxLength": 80, "description": "Some resource types allow more than one key / value pair per instance. This names the one the namespace's properties go to."},
            "created_at": time("Date and time of resource type association"),
            "updated_at": time("Date and time of the last resource type association modification"),
        }),
        &["name"],
        None,
    )
}

fn property(named: bool) -> Value {
    let required: &[&str] = if named {
        &["title", "type", "name"]
    } else {
        &["title", "type"]
    };
    single(
        "property",
        property_fields(),
        required,
        Some(definitions(true)),
    )
}

fn object() -> Value {
    single(
        "object",
        json!({
            "name": {"type": "string", "maxLength": 80},
            "description": {"type": "string"},
            "required": {"$ref": "#/definitions/stringArray"},
            "properties": {"$ref": "#/definitions/property"},
            "schema": read_only_text(),
            "self": read_only_text(),
            "created_at": time("Date and time of object creation"),
            "updated_at": time("Date and time of the last object modification"),
        }),
        &["name"],
        Some(definitions(false)),
    )
}

fn tag() -> Value {
    single(
        "tag",
        json!({
            "name": {"type": "string", "maxLength": 80},
            "created_at": time("Date and time of tag creation"),
            "updated_at": time("Date and time of the last tag modification"),
        }),
        &["name"],
        None,
    )
}

/// The schema served at `/v2/schemas/metadefs/{name}`.
pub fn named(name: &str) -> Option<Value> {
    Some(match name {
        "namespace" => namespace(),
        "namespaces" => collection("namespaces", namespace(), false),
        "resource_type" => resource_type(),
        "resource_types" => collection("resource_type_associations", resource_type(), false),
        "property" => property(true),
        "properties" => collection("properties", property(false), true),
        "object" => object(),
        "objects" => collection("objects", object(), false),
        "tag" => tag(),
        "tags" => collection("tags", tag(), false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_glances() {
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
            assert_eq!(named(url).unwrap()["name"], name, "{url}");
        }
        assert!(named("image").is_none());
        // Collections keep the definitions their items refer to at the top.
        let ns = named("namespaces").unwrap();
        assert!(ns["definitions"]["property"].is_object());
        assert!(
            ns["properties"]["namespaces"]["items"]
                .get("definitions")
                .is_none()
        );
    }
}
