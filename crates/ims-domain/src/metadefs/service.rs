//! Metadefs use cases: each dialect request is one call here, with Glance's rules and
//! default policy applied in Glance's order (body checks, visibility, policy, protection).

use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use super::model::{
    Association, ContentKind, Contents, ListedNamespace, MetaObject, Namespace, NamespaceDetail,
    NamespaceListing, NamespacePage, NamespaceQuery, NsVisibility, Paging, Property, ResourceType,
    Tag,
};
use super::policy::{can_see, check_admin, check_reader};
use super::repo::MetadefRepo;
use super::rules::{self, NamespaceDoc, Schema, Strictness};
use crate::principal::Principal;
use crate::text;
use crate::{Error, Result};

/// How `load` treats a namespace that already exists (`glance-manage db_load_metadefs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Leave it as it is.
    Skip,
    /// Add what is missing; with `prefer_new`, also overwrite what exists.
    Merge {
        /// Overwrite existing fields and definitions with the file's.
        prefer_new: bool,
    },
    /// Replace it and everything in it.
    Overwrite,
}

/// What `load` did with one definition document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOutcome {
    /// A new namespace.
    Created,
    /// Existing; left alone.
    Skipped,
    /// Existing; missing (or, preferring new, all) definitions written.
    Merged,
    /// Existing; deleted and created again.
    Replaced,
}

/// The metadata definitions catalog.
#[derive(Clone)]
pub struct MetadefService {
    repo: Arc<dyn MetadefRepo>,
}

fn now() -> OffsetDateTime {
    crate::context::now()
}

fn missing(kind: crate::Entity, id: &str) -> Error {
    Error::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// Maps a repository conflict to Glance's message for it.
fn or_conflict(message: impl FnOnce() -> String) -> impl FnOnce(Error) -> Error {
    move |e| match e {
        Error::Conflict(_) => Error::Conflict(message()),
        other => other,
    }
}

/// Names from paths and query strings follow the project's text rule ([`text::check`]): a
/// control character can name nothing, and PostgreSQL refuses a NUL in text, so it is
/// `InvalidInput` before any lookup, on every backend.
fn plain_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    names.into_iter().try_for_each(|n| text::check("name", n))
}

fn protected(what: &str, name: &str) -> Error {
    Error::Forbidden(format!(
        "Metadata definition {what} {name} is protected and cannot be deleted."
    ))
}

fn first_duplicate<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::BTreeSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

/// Builds the contents a namespace document describes.
fn contents_of(doc: &NamespaceDoc, at: OffsetDateTime) -> Result<Contents> {
    let ns = &doc.name;
    if let Some(d) = first_duplicate(doc.objects.iter().map(|o| o.name.as_str())) {
        return Err(Error::Conflict(format!(
            "A metadata definition object with name={d} already exists in namespace={ns}."
        )));
    }
    if let Some(d) = first_duplicate(doc.tags.iter().map(String::as_str)) {
        return Err(tag_conflict(d, ns));
    }
    if let Some(d) = first_duplicate(doc.associations.iter().map(|a| a.name.as_str())) {
        return Err(association_conflict(d, ns));
    }
    Ok(Contents {
        associations: doc
            .associations
            .iter()
            .map(|a| Association {
                name: a.name.clone(),
                prefix: a.prefix.clone(),
                properties_target: a.properties_target.clone(),
                created_at: at,
                updated_at: at,
            })
            .collect(),
        properties: doc
            .properties
            .iter()
            .map(|(name, schema)| Property {
                name: name.clone(),
                schema: schema.clone(),
                created_at: at,
                updated_at: at,
            })
            .collect(),
        objects: doc
            .objects
            .iter()
            .map(|o| MetaObject {
                name: o.name.clone(),
                description: o.description.clone(),
                required: o.required.clone(),
                properties: o.properties.clone(),
                created_at: at,
                updated_at: at,
            })
            .collect(),
        tags: doc.tags.iter().map(|t| tag(t, at)).collect(),
    })
}

fn tag(name: &str, at: OffsetDateTime) -> Tag {
    Tag {
        name: name.to_string(),
        created_at: at,
        updated_at: at,
    }
}

fn tag_conflict(name: &str, ns: &str) -> Error {
    Error::Conflict(format!(
        "A metadata tag with name={name} already exists in namespace={ns}. (Please note that metadata tag names are case insensitive)."
    ))
}

fn association_conflict(name: &str, ns: &str) -> Error {
    Error::Conflict(format!(
        "The metadata definition resource-type association of resource-type={name} to namespace={ns} already exists."
    ))
}

/// Prefixes property names (and object `required` lists) as a resource type sees them.
fn apply_prefix(contents: &mut Contents, prefix: &str) {
    for p in &mut contents.properties {
        p.name = format!("{prefix}{}", p.name);
    }
    for o in &mut contents.objects {
        if let Some(props) = o.properties.take() {
            o.properties = Some(
                props
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v))
                    .collect(),
            );
        }
        if let Some(req) = &mut o.required {
            req.iter_mut().for_each(|r| *r = format!("{prefix}{r}"));
        }
    }
}

impl MetadefService {
    /// A service over a repository.
    pub fn new(repo: Arc<dyn MetadefRepo>) -> Self {
        MetadefService { repo }
    }

    /// The namespace if the caller may see it, else not found.
    async fn visible(&self, who: &Principal, name: &str) -> Result<Namespace> {
        plain_names([name])?;
        match self.repo.namespace(name).await? {
            Some(ns) if can_see(who, &ns) => Ok(ns),
            _ => Err(missing(crate::Entity::MetadefNamespace, name)),
        }
    }

    /// The namespace if the caller may see it and perform the write `action` on it.
    async fn writable(&self, who: &Principal, name: &str, action: &str) -> Result<Namespace> {
        let ns = self.visible(who, name).await?;
        check_admin(who, action)?;
        Ok(ns)
    }

    /// `GET /v2/metadefs/namespaces`.
    pub async fn list_namespaces(
        &self,
        who: &Principal,
        query: NamespaceQuery,
    ) -> Result<NamespacePage> {
        check_reader(who, "get_metadef_namespaces")?;
        plain_names(query.resource_types.iter().flatten().map(String::as_str))?;
        let after = match &query.paging.marker {
            Some(m) => Some(self.visible(who, m).await?),
            None => None,
        };
        let limit = query.paging.limit;
        let listing = NamespaceListing {
            owner_scope: (!who.is_admin()).then(|| who.project_id.clone()),
            query,
            after,
        };
        let rows = self.repo.namespaces(&listing).await?;
        let ids: Vec<String> = rows.iter().map(|n| n.id.clone()).collect();
        let mut assocs = self.repo.associations_of(&ids).await?;
        let next = match (limit, rows.last()) {
            (Some(n), Some(last)) if rows.len() as u64 == n => Some(last.name.clone()),
            _ => None,
        };
        let namespaces = rows
            .into_iter()
            .map(|namespace| {
                let (mine, rest) = assocs.drain(..).partition(|(id, _)| *id == namespace.id);
                assocs = rest;
                ListedNamespace {
                    namespace,
                    associations: mine.into_iter().map(|(_, a)| a).collect(),
                }
            })
            .collect();
        Ok(NamespacePage { namespaces, next })
    }

    /// `POST /v2/metadefs/namespaces`: the namespace and everything the document holds.
    pub async fn create_namespace(&self, who: &Principal, body: &Value) -> Result<NamespaceDetail> {
        let doc = rules::namespace_doc(body, true)?;
        check_admin(who, "add_metadef_namespace")?;
        let owner = doc.owner.clone().unwrap_or_else(|| who.project_id.clone());
        self.insert(doc, owner, false).await
    }

    async fn insert(
        &self,
        doc: NamespaceDoc,
        owner: String,
        loaded: bool,
    ) -> Result<NamespaceDetail> {
        self.write(None, doc, owner, loaded).await
    }

    /// Writes the namespace `doc` describes: new, or replacing the namespace with id
    /// `replacing` in the same transaction. The document is checked before any write.
    async fn write(
        &self,
        replacing: Option<&str>,
        doc: NamespaceDoc,
        owner: String,
        loaded: bool,
    ) -> Result<NamespaceDetail> {
        let at = now();
        let contents = contents_of(&doc, at)?;
        let namespace = Namespace {
            id: uuid::Uuid::new_v4().to_string(),
            name: doc.name.clone(),
            display_name: doc.display_name,
            description: doc.description,
            visibility: doc.visibility.unwrap_or(NsVisibility::Private),
            protected: doc.protected.unwrap_or(false),
            owner,
            created_at: at,
            updated_at: at,
        };
        let written = match replacing {
            None => {
                self.repo
                    .insert_namespace(&namespace, &contents, loaded)
                    .await
            }
            Some(old) => {
                self.repo
                    .replace_namespace(old, &namespace, &contents, loaded)
                    .await
            }
        };
        written.map_err(or_conflict(|| {
            format!(
                "The metadata definition namespace={} already exists.",
                doc.name
            )
        }))?;
        Ok(NamespaceDetail {
            namespace,
            contents,
        })
    }

    /// `GET /v2/metadefs/namespaces/{ns}`, property names prefixed as `resource_type` sees them.
    pub async fn show_namespace(
        &self,
        who: &Principal,
        name: &str,
        resource_type: Option<&str>,
    ) -> Result<NamespaceDetail> {
        plain_names(resource_type)?;
        let namespace = self.visible(who, name).await?;
        let mut contents = self.repo.contents(&namespace.id).await?;
        let prefix = resource_type.and_then(|rt| {
            contents
                .associations
                .iter()
                .find(|a| a.name == rt)
                .and_then(|a| a.prefix.clone())
        });
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            apply_prefix(&mut contents, &prefix);
        }
        Ok(NamespaceDetail {
            namespace,
            contents,
        })
    }

    /// `PUT /v2/metadefs/namespaces/{ns}`: every field is replaced; absent optional
    /// ones fall back to their creation defaults, as in Glance.
    pub async fn update_namespace(
        &self,
        who: &Principal,
        name: &str,
        body: &Value,
    ) -> Result<Namespace> {
        let doc = rules::namespace_doc(body, true)?;
        let old = self.writable(who, name, "modify_metadef_namespace").await?;
        let updated = Namespace {
            name: doc.name.clone(),
            display_name: doc.display_name,
            description: doc.description,
            visibility: doc.visibility.unwrap_or(NsVisibility::Private),
            protected: doc.protected.unwrap_or(false),
            owner: doc.owner.unwrap_or_else(|| who.project_id.clone()),
            updated_at: now(),
            ..old
        };
        self.repo
            .update_namespace(&updated)
            .await
            .map_err(or_conflict(|| format!("Invalid update. It would result in a duplicate metadata definition namespace with the same name of {}", doc.name)))?;
        Ok(updated)
    }

    /// `DELETE /v2/metadefs/namespaces/{ns}`.
    pub async fn delete_namespace(&self, who: &Principal, name: &str) -> Result<()> {
        let ns = self.writable(who, name, "delete_metadef_namespace").await?;
        if ns.protected {
            return Err(protected("namespace", &ns.name));
        }
        self.repo.delete_namespace(&ns.id).await
    }

    /// `DELETE /v2/metadefs/namespaces/{ns}/{objects,properties,tags}`: allowed only
    /// where deleting the namespace would be.
    pub async fn delete_contents(
        &self,
        who: &Principal,
        name: &str,
        kind: ContentKind,
    ) -> Result<()> {
        let ns = self.writable(who, name, "delete_metadef_namespace").await?;
        if kind == ContentKind::Tags {
            check_admin(who, "delete_metadef_tags")?;
        }
        if ns.protected {
            return Err(protected("namespace", &ns.name));
        }
        self.repo.clear(&ns.id, kind).await
    }

    // Objects.

    /// `GET …/objects`.
    pub async fn list_objects(
        &self,
        who: &Principal,
        ns: &str,
        paging: Paging,
    ) -> Result<Vec<MetaObject>> {
        plain_names([paging.marker.as_deref().unwrap_or("")])?;
        let ns = self.visible(who, ns).await?;
        if let Some(m) = &paging.marker
            && self.repo.object(&ns.id, m).await?.is_none()
        {
            return Err(missing(crate::Entity::MetadefObject, m));
        }
        self.repo.objects(&ns.id, &paging).await
    }

    /// `POST …/objects`.
    pub async fn create_object(
        &self,
        who: &Principal,
        ns: &str,
        body: &Value,
    ) -> Result<MetaObject> {
        let doc = rules::object_in(Schema("object"), body, Strictness::Strict { named: false })?;
        let ns = self.writable(who, ns, "add_metadef_object").await?;
        let at = now();
        let object = MetaObject {
            name: doc.name,
            description: doc.description,
            required: doc.required,
            properties: doc.properties,
            created_at: at,
            updated_at: at,
        };
        self.repo
            .insert_object(&ns.id, &object)
            .await
            .map_err(or_conflict(|| object_conflict(&object.name, &ns.name)))?;
        Ok(object)
    }

    /// `GET …/objects/{name}`.
    pub async fn show_object(&self, who: &Principal, ns: &str, name: &str) -> Result<MetaObject> {
        plain_names([name])?;
        let ns = self.visible(who, ns).await?;
        self.repo
            .object(&ns.id, name)
            .await?
            .ok_or_else(|| missing(crate::Entity::MetadefObject, name))
    }

    /// `PUT …/objects/{name}`: a full replacement (the name may change).
    pub async fn update_object(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        body: &Value,
    ) -> Result<MetaObject> {
        plain_names([name])?;
        let doc = rules::object_in(Schema("object"), body, Strictness::Lenient)?;
        let ns = self.writable(who, ns, "modify_metadef_object").await?;
        let old = self
            .repo
            .object(&ns.id, name)
            .await?
            .ok_or_else(|| missing(crate::Entity::MetadefObject, name))?;
        let object = MetaObject {
            name: doc.name,
            description: doc.description,
            required: doc.required,
            properties: doc.properties,
            created_at: old.created_at,
            updated_at: now(),
        };
        self.repo
            .update_object(&ns.id, name, &object)
            .await
            .map_err(or_conflict(|| object_conflict(&object.name, &ns.name)))?;
        Ok(object)
    }

    /// `DELETE …/objects/{name}`.
    pub async fn delete_object(&self, who: &Principal, ns: &str, name: &str) -> Result<()> {
        plain_names([name])?;
        let ns = self.writable(who, ns, "delete_metadef_object").await?;
        if self.repo.object(&ns.id, name).await?.is_none() {
            return Err(missing(crate::Entity::MetadefObject, name));
        }
        if ns.protected {
            return Err(protected("object", name));
        }
        self.repo.delete_object(&ns.id, name).await?;
        Ok(())
    }

    // Properties.

    /// `GET …/properties`.
    pub async fn list_properties(&self, who: &Principal, ns: &str) -> Result<Vec<Property>> {
        let ns = self.visible(who, ns).await?;
        self.repo.properties(&ns.id).await
    }

    /// `GET …/properties/{name}`; with `resource_type`, `name` carries that association's
    /// prefix, which must be there.
    pub async fn show_property(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        resource_type: Option<&str>,
    ) -> Result<Property> {
        plain_names([name])?;
        let ns = self.visible(who, ns).await?;
        plain_names(resource_type)?;
        let mut bare = name;
        if let Some(rt) = resource_type {
            let assoc = self
                .repo
                .associations(&ns.id)
                .await?
                .into_iter()
                .find(|a| a.name == rt)
                .ok_or_else(|| missing(crate::Entity::MetadefAssociation, rt))?;
            let prefix = assoc.prefix.unwrap_or_default();
            bare = name
                .strip_prefix(prefix.as_str())
                .filter(|_| !prefix.is_empty())
                .ok_or_else(|| missing(crate::Entity::MetadefProperty, name))?;
        }
        let mut found = self
            .repo
            .property(&ns.id, bare)
            .await?
            .ok_or_else(|| missing(crate::Entity::MetadefProperty, name))?;
        found.name = name.to_string();
        Ok(found)
    }

    /// `POST …/properties`.
    pub async fn create_property(
        &self,
        who: &Principal,
        ns: &str,
        body: &Value,
    ) -> Result<Property> {
        let (name, schema) = rules::property(body, Strictness::Strict { named: true })?;
        let ns = self.writable(who, ns, "add_metadef_property").await?;
        let at = now();
        let property = Property {
            name: name.unwrap_or_default(),
            schema,
            created_at: at,
            updated_at: at,
        };
        self.repo
            .insert_property(&ns.id, &property)
            .await
            .map_err(or_conflict(|| property_conflict(&property.name, &ns.name)))?;
        Ok(property)
    }

    /// `PUT …/properties/{name}`: a full replacement (the name may change).
    pub async fn update_property(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        body: &Value,
    ) -> Result<Property> {
        plain_names([name])?;
        let (new_name, schema) = rules::property(body, Strictness::Strict { named: true })?;
        let ns = self.writable(who, ns, "modify_metadef_property").await?;
        let old = self
            .repo
            .property(&ns.id, name)
            .await?
            .ok_or_else(|| missing(crate::Entity::MetadefProperty, name))?;
        let property = Property {
            name: new_name.unwrap_or_default(),
            schema,
            created_at: old.created_at,
            updated_at: now(),
        };
        self.repo
            .update_property(&ns.id, name, &property)
            .await
            .map_err(or_conflict(|| property_conflict(&property.name, &ns.name)))?;
        Ok(property)
    }

    /// `DELETE …/properties/{name}`.
    pub async fn delete_property(&self, who: &Principal, ns: &str, name: &str) -> Result<()> {
        plain_names([name])?;
        let ns = self.writable(who, ns, "remove_metadef_property").await?;
        if self.repo.property(&ns.id, name).await?.is_none() {
            return Err(missing(crate::Entity::MetadefProperty, name));
        }
        if ns.protected {
            return Err(protected("property", name));
        }
        self.repo.delete_property(&ns.id, name).await?;
        Ok(())
    }

    // Tags.

    /// `GET …/tags`.
    pub async fn list_tags(&self, who: &Principal, ns: &str, paging: Paging) -> Result<Vec<Tag>> {
        plain_names([paging.marker.as_deref().unwrap_or("")])?;
        let ns = self.visible(who, ns).await?;
        if let Some(m) = &paging.marker
            && self.repo.tag(&ns.id, m).await?.is_none()
        {
            return Err(missing(crate::Entity::MetadefTag, m));
        }
        self.repo.tags(&ns.id, &paging).await
    }

    /// `POST …/tags/{name}`.
    pub async fn create_tag(&self, who: &Principal, ns: &str, name: &str) -> Result<Tag> {
        plain_names([name])?;
        let ns = self.visible(who, ns).await?;
        rules::check_name(Schema("tag"), name)?;
        check_admin(who, "add_metadef_tag")?;
        let t = tag(name, now());
        self.repo
            .insert_tags(&ns.id, std::slice::from_ref(&t), true)
            .await
            .map_err(or_conflict(|| tag_conflict(name, &ns.name).to_string()))?;
        Ok(t)
    }

    /// `POST …/tags`: the tags replace all others unless `append`. An empty list changes
    /// nothing (Glance's behaviour).
    pub async fn create_tags(
        &self,
        who: &Principal,
        ns: &str,
        body: &Value,
        append: bool,
    ) -> Result<Vec<Tag>> {
        let names = rules::tags_in(body)?;
        let ns = self.writable(who, ns, "add_metadef_tags").await?;
        if let Some(d) = first_duplicate(names.iter().map(String::as_str)) {
            return Err(tag_conflict(d, &ns.name));
        }
        let at = now();
        let tags: Vec<Tag> = names.iter().map(|n| tag(n, at)).collect();
        if !tags.is_empty() {
            self.repo
                .insert_tags(&ns.id, &tags, append)
                .await
                .map_err(or_conflict(|| {
                    format!("A metadata tag of the list already exists in namespace={}. (Please note that metadata tag names are case insensitive).", ns.name)
                }))?;
        }
        Ok(tags)
    }

    /// `GET …/tags/{name}`.
    pub async fn show_tag(&self, who: &Principal, ns: &str, name: &str) -> Result<Tag> {
        plain_names([name])?;
        let ns = self.visible(who, ns).await?;
        self.repo
            .tag(&ns.id, name)
            .await?
            .ok_or_else(|| missing(crate::Entity::MetadefTag, name))
    }

    /// `PUT …/tags/{name}`: renames.
    pub async fn update_tag(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        body: &Value,
    ) -> Result<Tag> {
        plain_names([name])?;
        let new_name = rules::tag_in(body)?;
        let ns = self.writable(who, ns, "modify_metadef_tag").await?;
        let old = self
            .repo
            .tag(&ns.id, name)
            .await?
            .ok_or_else(|| missing(crate::Entity::MetadefTag, name))?;
        let t = Tag {
            name: new_name,
            created_at: old.created_at,
            updated_at: now(),
        };
        self.repo
            .update_tag(&ns.id, name, &t)
            .await
            .map_err(or_conflict(|| tag_conflict(&t.name, &ns.name).to_string()))?;
        Ok(t)
    }

    /// `DELETE …/tags/{name}`.
    pub async fn delete_tag(&self, who: &Principal, ns: &str, name: &str) -> Result<()> {
        plain_names([name])?;
        let ns = self.writable(who, ns, "delete_metadef_tag").await?;
        if self.repo.tag(&ns.id, name).await?.is_none() {
            return Err(missing(crate::Entity::MetadefTag, name));
        }
        if ns.protected {
            return Err(protected("tag", name));
        }
        self.repo.delete_tag(&ns.id, name).await?;
        Ok(())
    }

    // Resource types.

    /// `GET /v2/metadefs/resource_types`.
    pub async fn list_resource_types(&self, who: &Principal) -> Result<Vec<ResourceType>> {
        check_reader(who, "list_metadef_resource_types")?;
        self.repo.resource_types().await
    }

    /// `GET …/namespaces/{ns}/resource_types`.
    pub async fn list_associations(&self, who: &Principal, ns: &str) -> Result<Vec<Association>> {
        let ns = self.visible(who, ns).await?;
        self.repo.associations(&ns.id).await
    }

    /// `POST …/namespaces/{ns}/resource_types`: the resource type is created when new.
    pub async fn create_association(
        &self,
        who: &Principal,
        ns: &str,
        body: &Value,
    ) -> Result<Association> {
        let doc = rules::association_in(Schema("resource_type_association"), body, true)?;
        let ns = self
            .writable(who, ns, "add_metadef_resource_type_association")
            .await?;
        let at = now();
        let association = Association {
            name: doc.name,
            prefix: doc.prefix,
            properties_target: doc.properties_target,
            created_at: at,
            updated_at: at,
        };
        self.repo
            .insert_association(&ns.id, &association)
            .await
            .map_err(or_conflict(|| {
                association_conflict(&association.name, &ns.name).to_string()
            }))?;
        Ok(association)
    }

    /// `DELETE …/namespaces/{ns}/resource_types/{name}`.
    pub async fn delete_association(&self, who: &Principal, ns: &str, name: &str) -> Result<()> {
        plain_names([name])?;
        let ns = self
            .writable(who, ns, "remove_metadef_resource_type_association")
            .await?;
        let known = self.repo.associations(&ns.id).await?;
        if !known.iter().any(|a| a.name == name) {
            return Err(missing(crate::Entity::MetadefResourceType, name));
        }
        if ns.protected {
            return Err(Error::Forbidden(format!(
                "Metadata definition resource-type-association {name} is protected and cannot be deleted."
            )));
        }
        self.repo.delete_association(&ns.id, name).await?;
        Ok(())
    }

    // Loading definition files.

    /// Loads one definition document in Glance's file format (a namespace with
    /// `resource_type_associations`, `properties`, `objects`, `tags`). New namespaces
    /// are owned by `admin` unless the document names an owner, as in Glance.
    pub async fn load(&self, doc: &Value, mode: LoadMode) -> Result<(String, LoadOutcome)> {
        let doc = rules::namespace_doc(doc, false)?;
        let name = doc.name.clone();
        let owner = doc.owner.clone().unwrap_or_else(|| "admin".to_string());
        let Some(existing) = self.repo.namespace(&name).await? else {
            self.insert(doc, owner, true).await?;
            return Ok((name, LoadOutcome::Created));
        };
        let outcome = match mode {
            LoadMode::Skip => LoadOutcome::Skipped,
            LoadMode::Overwrite => {
                self.write(Some(&existing.id), doc, owner, true).await?;
                LoadOutcome::Replaced
            }
            LoadMode::Merge { prefer_new } => {
                self.merge(existing, doc, owner, prefer_new).await?;
                LoadOutcome::Merged
            }
        };
        Ok((name, outcome))
    }

    async fn merge(
        &self,
        old: Namespace,
        doc: NamespaceDoc,
        owner: String,
        prefer_new: bool,
    ) -> Result<()> {
        let at = now();
        let ns = old.id.clone();
        let new = contents_of(&doc, at)?;
        let have = self.repo.contents(&ns).await?;
        let updated = prefer_new.then(|| Namespace {
            display_name: doc.display_name,
            description: doc.description,
            visibility: doc.visibility.unwrap_or(old.visibility),
            protected: doc.protected.unwrap_or(old.protected),
            owner,
            updated_at: at,
            ..old
        });
        let mut add = Contents::default();
        let mut replace = Contents::default();
        let (a, p, o) = (&have.associations, &have.properties, &have.objects);
        split(
            new.associations,
            |x| a.iter().any(|h| h.name == x.name),
            prefer_new,
            &mut add.associations,
            &mut replace.associations,
        );
        split(
            new.properties,
            |x| p.iter().any(|h| h.name == x.name),
            prefer_new,
            &mut add.properties,
            &mut replace.properties,
        );
        split(
            new.objects,
            |x| o.iter().any(|h| h.name == x.name),
            prefer_new,
            &mut add.objects,
            &mut replace.objects,
        );
        // Tags have nothing to rewrite: they are only ever added.
        add.tags = new
            .tags
            .into_iter()
            .filter(|t| !have.tags.iter().any(|h| h.name == t.name))
            .collect();
        self.repo
            .merge_namespace(&ns, updated.as_ref(), &add, &replace)
            .await
    }
}

/// Sorts a file's definitions for a merge: new ones are added; existing ones replace the
/// stored ones when `prefer_new`, else they are left out.
fn split<T>(
    items: Vec<T>,
    exists: impl Fn(&T) -> bool,
    prefer_new: bool,
    add: &mut Vec<T>,
    replace: &mut Vec<T>,
) {
    for item in items {
        match exists(&item) {
            false => add.push(item),
            true if prefer_new => replace.push(item),
            true => {}
        }
    }
}

fn object_conflict(name: &str, ns: &str) -> String {
    format!("A metadata definition object with name={name} already exists in namespace={ns}.")
}

fn property_conflict(name: &str, ns: &str) -> String {
    format!("A metadata definition property with name={name} already exists in namespace={ns}.")
}
