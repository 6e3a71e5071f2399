//! Validation of metadefs documents, with the checks and messages of Glance's request
//! schemas (`additionalProperties: false`, types, enums, lengths). The same parsers read
//! the API's request bodies and the definition files `ims admin metadefs load` imports.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::model::{NsVisibility, PropertyDef};
use crate::{Error, text};

/// Longest name of a namespace, object, property, tag or resource type (Glance's column).
pub const MAX_NAME: usize = 80;
const MAX_DESCRIPTION: usize = 500;
const MAX_OWNER: usize = 255;

/// The property types a definition may declare (JSON schema's, plus `null`).
pub const PROPERTY_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

/// A value as Python's `repr` shows it, for jsonschema-style messages.
fn py(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => format!("'{s}'"),
        Value::Array(a) => format!("[{}]", a.iter().map(py).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// Checks one document against one of Glance's named schemas.
#[derive(Clone, Copy)]
pub(crate) struct Schema(pub &'static str);

impl Schema {
    fn fail(self, reason: impl std::fmt::Display) -> Error {
        Error::invalid(format!(
            "Provided object does not match schema '{}': {reason}",
            self.0
        ))
    }

    /// The project's text rule ([`text::check`]): no control characters, except that free
    /// text a person writes (descriptions, titles, display names) may hold line breaks
    /// and tabs ([`text::check_free_text`]).
    fn plain(self, key: &str, s: &str) -> Result<(), Error> {
        let checked = match key {
            "description" | "display_name" | "title" => text::check_free_text("text", s),
            _ => text::check("text", s),
        };
        checked.map_err(|_| self.fail(format!("'{key}' must not contain control characters")))
    }

    /// The document as an object.
    pub(crate) fn object(self, v: &Value) -> Result<&Map<String, Value>, Error> {
        v.as_object()
            .ok_or_else(|| self.fail(format!("{} is not of type 'object'", py(v))))
    }

    /// Refuses keys outside `allowed`.
    pub(crate) fn only(self, m: &Map<String, Value>, allowed: &[&str]) -> Result<(), Error> {
        let extra: Vec<String> = m
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| format!("'{k}'"))
            .collect();
        match extra.len() {
            0 => Ok(()),
            1 => Err(self.fail(format!(
                "Additional properties are not allowed ({} was unexpected)",
                extra[0]
            ))),
            _ => Err(self.fail(format!(
                "Additional properties are not allowed ({} were unexpected)",
                extra.join(", ")
            ))),
        }
    }

    /// A string member; absent is `None`.
    pub(crate) fn text(
        self,
        m: &Map<String, Value>,
        key: &str,
        max: Option<usize>,
    ) -> Result<Option<String>, Error> {
        let Some(v) = m.get(key) else {
            return Ok(None);
        };
        let s = v
            .as_str()
            .ok_or_else(|| self.fail(format!("{} is not of type 'string'", py(v))))?;
        self.plain(key, s)?;
        if max.is_some_and(|max| s.chars().count() > max) {
            return Err(self.fail(format!("{} is too long", py(v))));
        }
        Ok(Some(s.to_string()))
    }

    /// A required string member.
    pub(crate) fn required_text(
        self,
        m: &Map<String, Value>,
        key: &str,
        max: Option<usize>,
    ) -> Result<String, Error> {
        self.text(m, key, max)?
            .ok_or_else(|| self.fail(format!("'{key}' is a required property")))
    }

    /// A boolean member.
    pub(crate) fn flag(self, m: &Map<String, Value>, key: &str) -> Result<Option<bool>, Error> {
        match m.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.fail(format!("{} is not of type 'boolean'", py(v)))),
        }
    }

    /// An array member.
    fn array<'a>(
        self,
        m: &'a Map<String, Value>,
        key: &str,
    ) -> Result<Option<&'a Vec<Value>>, Error> {
        match m.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.fail(format!("{} is not of type 'array'", py(v)))),
        }
    }

    /// An array of distinct strings.
    fn strings(self, m: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, Error> {
        let Some(a) = self.array(m, key)? else {
            return Ok(None);
        };
        let mut out: Vec<String> = Vec::with_capacity(a.len());
        for v in a {
            let s = v
                .as_str()
                .ok_or_else(|| self.fail(format!("{} is not of type 'string'", py(v))))?;
            if out.iter().any(|o| o == s) {
                return Err(self.fail(format!("{} has non-unique elements", py(&m[key]))));
            }
            out.push(s.to_string());
        }
        Ok(Some(out))
    }

    fn number(self, v: &Value) -> Result<(), Error> {
        if v.is_number() {
            Ok(())
        } else {
            Err(self.fail(format!("{} is not of type 'number'", py(v))))
        }
    }

    fn non_negative_integer(self, v: &Value) -> Result<(), Error> {
        match v.as_i64() {
            Some(n) if n >= 0 => Ok(()),
            Some(_) => Err(self.fail(format!("{} is less than the minimum of 0", py(v)))),
            None => Err(self.fail(format!("{} is not of type 'integer'", py(v)))),
        }
    }

    fn property_type(self, v: &Value) -> Result<(), Error> {
        if v.is_null() || v.as_str().is_some_and(|t| PROPERTY_TYPES.contains(&t)) {
            return Ok(());
        }
        Err(self.fail(format!(
            "{} is not one of ['array', 'boolean', 'integer', 'number', 'object', 'string', None]",
            py(v)
        )))
    }

    /// Glance's read-only attributes are refused (`Forbidden`), before schema checks.
    pub(crate) fn read_only(m: &Map<String, Value>, keys: &[&str]) -> Result<(), Error> {
        match keys.iter().find(|k| m.contains_key(**k)) {
            Some(k) => Err(Error::Forbidden(format!("Attribute '{k}' is read-only."))),
            None => Ok(()),
        }
    }
}

const PROPERTY_KEYS: [&str; 22] = [
    "name",
    "title",
    "description",
    "operators",
    "type",
    "required",
    "minimum",
    "maximum",
    "maxLength",
    "minLength",
    "pattern",
    "enum",
    "readonly",
    "default",
    "items",
    "maxItems",
    "minItems",
    "uniqueItems",
    "additionalItems",
    "confidential",
    "created_at",
    "updated_at",
];

/// How strictly a property definition is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// A property sent on its own (`POST …/properties`) or inside a new object: unknown
    /// keys are refused and `name` is required for the former.
    Strict {
        /// `name` must be present.
        named: bool,
    },
    /// Inside a namespace document or a loaded file: unknown keys are dropped.
    Lenient,
}

/// Reads a property definition; returns its `name` member, if any, and the definition.
pub(crate) fn property(v: &Value, how: Strictness) -> Result<(Option<String>, PropertyDef), Error> {
    let s = Schema("property");
    let m = s.object(v)?;
    if let Strictness::Strict { .. } = how {
        Schema::read_only(m, &["created_at", "updated_at"])?;
        s.only(m, &PROPERTY_KEYS[..19])?;
    }
    let name = s.text(m, "name", Some(MAX_NAME))?;
    if how == (Strictness::Strict { named: true }) && name.is_none() {
        return Err(s.fail("'name' is a required property"));
    }
    s.required_text(m, "title", None)?;
    match m.get("type") {
        Some(t) => s.property_type(t)?,
        None => return Err(s.fail("'type' is a required property")),
    }
    s.text(m, "description", None)?;
    s.text(m, "pattern", None)?;
    s.strings(m, "operators")?;
    s.strings(m, "required")?;
    s.array(m, "enum")?;
    for key in ["minimum", "maximum"] {
        m.get(key).map(|v| s.number(v)).transpose()?;
    }
    for key in ["maxLength", "minLength", "maxItems", "minItems"] {
        m.get(key).map(|v| s.non_negative_integer(v)).transpose()?;
    }
    for key in ["readonly", "uniqueItems", "additionalItems", "confidential"] {
        s.flag(m, key)?;
    }
    let mut def = PropertyDef::new();
    for (k, v) in m {
        if k == "items" {
            def.insert(k.clone(), item_type(s, v)?);
        } else if PROPERTY_KEYS[1..20].contains(&k.as_str()) {
            def.insert(k.clone(), v.clone());
        }
    }
    Ok((name, def))
}

/// The `items` of an array property: its `type` and `enum`.
fn item_type(s: Schema, v: &Value) -> Result<Value, Error> {
    let m = s.object(v)?;
    let mut out = Map::new();
    if let Some(t) = m.get("type") {
        s.property_type(t)?;
        out.insert("type".into(), t.clone());
    }
    if let Some(e) = s.array(m, "enum")? {
        out.insert("enum".into(), Value::Array(e.clone()));
    }
    Ok(Value::Object(out))
}

/// Reads a map of property definitions (`properties` of a namespace or an object).
pub(crate) fn properties(
    v: &Value,
    schema: Schema,
    how: Strictness,
) -> Result<BTreeMap<String, PropertyDef>, Error> {
    let m = schema.object(v)?;
    let mut out = BTreeMap::new();
    for (name, def) in m {
        check_name(schema, name)?;
        out.insert(name.clone(), property(def, how)?.1);
    }
    Ok(out)
}

/// A name: non-empty, at most [`MAX_NAME`] characters, no control characters.
pub(crate) fn check_name(schema: Schema, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(schema.fail("'' is too short"));
    }
    schema.plain("name", name)?;
    if name.chars().count() > MAX_NAME {
        return Err(schema.fail(format!("'{name}' is too long")));
    }
    Ok(())
}

/// The fields of a namespace document (a request body or a definition file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceDoc {
    /// `namespace`.
    pub name: String,
    /// `display_name`.
    pub display_name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `visibility`.
    pub visibility: Option<NsVisibility>,
    /// `protected`.
    pub protected: Option<bool>,
    /// `owner`.
    pub owner: Option<String>,
    /// `resource_type_associations`.
    pub associations: Vec<AssociationDoc>,
    /// `properties`.
    pub properties: BTreeMap<String, PropertyDef>,
    /// `objects`.
    pub objects: Vec<ObjectDoc>,
    /// `tags` (names).
    pub tags: Vec<String>,
}

/// A resource type association as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct AssociationDoc {
    /// Resource type name.
    pub name: String,
    /// `prefix`.
    pub prefix: Option<String>,
    /// `properties_target`.
    pub properties_target: Option<String>,
}

/// An object as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDoc {
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `required`.
    pub required: Option<Vec<String>>,
    /// `properties`.
    pub properties: Option<BTreeMap<String, PropertyDef>>,
}

const NAMESPACE_KEYS: [&str; 14] = [
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "resource_type_associations",
    "properties",
    "objects",
    "tags",
    "created_at",
    "updated_at",
    "schema",
    "self",
];

/// Reads a namespace document. `api` applies the request rules (read-only and unknown
/// attributes refused); definition files may carry other keys, which are ignored.
pub fn namespace_doc(v: &Value, api: bool) -> Result<NamespaceDoc, Error> {
    let s = Schema("namespace");
    let m = s.object(v)?;
    if api {
        Schema::read_only(m, &["self", "schema", "created_at", "updated_at"])?;
        s.only(m, &NAMESPACE_KEYS[..10])?;
    }
    let name = s.required_text(m, "namespace", Some(MAX_NAME))?;
    check_name(s, &name)?;
    let visibility = match s.text(m, "visibility", None)? {
        None => None,
        Some(v) => Some(
            NsVisibility::parse(&v)
                .ok_or_else(|| s.fail(format!("'{v}' is not one of ['public', 'private']")))?,
        ),
    };
    let mut doc = NamespaceDoc {
        name,
        display_name: s.text(m, "display_name", Some(MAX_NAME))?,
        description: s.text(m, "description", Some(MAX_DESCRIPTION))?,
        visibility,
        protected: s.flag(m, "protected")?,
        owner: s.text(m, "owner", Some(MAX_OWNER))?,
        ..NamespaceDoc::default()
    };
    for a in s
        .array(m, "resource_type_associations")?
        .into_iter()
        .flatten()
    {
        doc.associations.push(association_in(s, a, false)?);
    }
    if let Some(p) = m.get("properties") {
        doc.properties = properties(p, s, Strictness::Lenient)?;
    }
    for o in s.array(m, "objects")?.into_iter().flatten() {
        doc.objects.push(object_in(s, o, Strictness::Lenient)?);
    }
    for t in s.array(m, "tags")?.into_iter().flatten() {
        let tm = s.object(t)?;
        let name = s.required_text(tm, "name", None)?;
        check_name(s, &name)?;
        doc.tags.push(name);
    }
    Ok(doc)
}

/// Reads a resource type association (`POST …/resource_types`, or inside a namespace).
pub(crate) fn association_in(s: Schema, v: &Value, strict: bool) -> Result<AssociationDoc, Error> {
    let m = s.object(v)?;
    if strict {
        Schema::read_only(m, &["created_at", "updated_at"])?;
        s.only(m, &["name", "prefix", "properties_target"])?;
    }
    let name = s.required_text(m, "name", Some(MAX_NAME))?;
    check_name(s, &name)?;
    Ok(AssociationDoc {
        name,
        prefix: s.text(m, "prefix", Some(MAX_NAME))?,
        properties_target: s.text(m, "properties_target", Some(MAX_NAME))?,
    })
}

/// Reads an object (`POST`/`PUT …/objects`, or inside a namespace).
pub(crate) fn object_in(s: Schema, v: &Value, how: Strictness) -> Result<ObjectDoc, Error> {
    let m = s.object(v)?;
    if s.0 == "object" {
        Schema::read_only(m, &["self", "schema", "created_at", "updated_at"])?;
        s.only(m, &["name", "description", "required", "properties"])?;
    }
    let name = s.required_text(m, "name", Some(MAX_NAME))?;
    check_name(s, &name)?;
    Ok(ObjectDoc {
        name,
        description: s.text(m, "description", None)?,
        required: s.strings(m, "required")?,
        properties: m
            .get("properties")
            .map(|p| properties(p, s, how))
            .transpose()?,
    })
}

/// Reads a tag document (`PUT …/tags/{name}`): `{"name": …}`.
pub(crate) fn tag_in(v: &Value) -> Result<String, Error> {
    let s = Schema("tag");
    let m = s.object(v)?;
    Schema::read_only(m, &["created_at", "updated_at"])?;
    s.only(m, &["name"])?;
    let name = s.required_text(m, "name", Some(MAX_NAME))?;
    check_name(s, &name)?;
    Ok(name)
}

/// Reads a bulk tag document (`POST …/tags`): `{"tags": [{"name": …}, …]}`.
pub(crate) fn tags_in(v: &Value) -> Result<Vec<String>, Error> {
    let s = Schema("tags");
    let m = s.object(v)?;
    Schema::read_only(m, &["created_at", "updated_at"])?;
    s.only(m, &["tags"])?;
    let mut out = Vec::new();
    for t in s.array(m, "tags")?.into_iter().flatten() {
        let tm = s.object(t)?;
        s.only(tm, &["name"])?;
        let name = s.required_text(tm, "name", None)?;
        check_name(s, &name)?;
        out.push(name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn property_type_must_be_a_json_schema_type() {
        let ok = json!({"name": "p", "title": "P", "type": "string", "enum": ["a"]});
        let (name, def) = property(&ok, Strictness::Strict { named: true }).unwrap();
        assert_eq!(name.as_deref(), Some("p"));
        assert!(!def.contains_key("name"));
        let bad = json!({"name": "p", "title": "P", "type": "strin"});
        let e = property(&bad, Strictness::Strict { named: true }).unwrap_err();
        assert!(e.to_string().contains("'strin' is not one of"), "{e}");
        let untyped = json!({"name": "p", "title": "P"});
        assert!(property(&untyped, Strictness::Lenient).is_err());
    }

    #[test]
    fn strict_properties_refuse_unknown_keys_lenient_ones_drop_them() {
        let doc = json!({"name": "p", "title": "P", "type": "string", "colour": "red"});
        assert!(property(&doc, Strictness::Strict { named: true }).is_err());
        let (_, def) = property(&doc, Strictness::Lenient).unwrap();
        assert!(!def.contains_key("colour"));
    }

    #[test]
    fn namespace_documents_follow_glances_schema() {
        let doc = namespace_doc(
            &json!({"namespace": "OS::X", "visibility": "public", "tags": [{"name": "t"}],
                    "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "x_"}]}),
            true,
        )
        .unwrap();
        assert_eq!(doc.tags, ["t"]);
        assert_eq!(doc.associations[0].prefix.as_deref(), Some("x_"));
        for bad in [
            json!({"namespace": "n", "visibility": "shared"}),
            json!({"namespace": "n", "colour": 1}),
            json!({"display_name": "n"}),
            json!({"namespace": "x".repeat(81)}),
        ] {
            assert!(
                matches!(namespace_doc(&bad, true), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
        let ro = namespace_doc(&json!({"namespace": "n", "created_at": "x"}), true);
        assert!(matches!(ro, Err(Error::Forbidden(_))));
        // Definition files may carry keys the API refuses.
        assert!(namespace_doc(&json!({"namespace": "n", "colour": 1}), false).is_ok());
    }

    #[test]
    fn tags_longer_than_a_name_are_refused() {
        assert!(tag_in(&json!({"name": "t".repeat(80)})).is_ok());
        assert!(tag_in(&json!({"name": "t".repeat(81)})).is_err());
        assert!(tags_in(&json!({"tags": [{"name": "t".repeat(256)}]})).is_err());
        assert_eq!(
            tags_in(&json!({"tags": [{"name": "a"}, {"name": "b"}]})).unwrap(),
            ["a", "b"]
        );
    }
}
