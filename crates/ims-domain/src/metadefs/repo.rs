//! The storage port of the metadefs catalog.

use async_trait::async_trait;

use super::model::{
    Association, ContentKind, Contents, MetaObject, Namespace, NamespaceListing, Paging, Property,
    ResourceType, Tag,
};
use crate::error::Result;

/// Where namespaces and their contents are kept. Names are unique per namespace (and
/// namespace names globally): inserting a duplicate, or renaming onto an existing name,
/// is `Error::Conflict`. Every `ns` argument is a namespace's internal id.
#[async_trait]
pub trait MetadefRepo: Send + Sync {
    /// A namespace by name.
    async fn namespace(&self, name: &str) -> Result<Option<Namespace>>;
    /// One page of namespaces (scope, filters, keyset paging after `listing.after`).
    async fn namespaces(&self, listing: &NamespaceListing) -> Result<Vec<Namespace>>;
    /// The associations of several namespaces at once, as `(namespace id, association)`.
    async fn associations_of(&self, ns: &[String]) -> Result<Vec<(String, Association)>>;
    /// Everything a namespace holds.
    async fn contents(&self, ns: &str) -> Result<Contents>;
    /// Writes a namespace and its contents in one transaction. Resource types named by
    /// associations are created when missing (`protected` as given).
    async fn insert_namespace(
        &self,
        namespace: &Namespace,
        contents: &Contents,
        protect_new_types: bool,
    ) -> Result<()>;
    /// Deletes the namespace with id `old` and everything in it, then writes `namespace`
    /// and its contents as [`Self::insert_namespace`] does, all in one transaction: on any
    /// failure the old namespace is left as it was.
    async fn replace_namespace(
        &self,
        old: &str,
        namespace: &Namespace,
        contents: &Contents,
        protect_new_types: bool,
    ) -> Result<()>;
    /// Merges into the namespace with id `ns`, in one transaction: rewrites its own fields
    /// when `updated` is given, inserts `add` and rewrites the existing entries named in
    /// `replace` (tags are only added). On any failure nothing is changed.
    async fn merge_namespace(
        &self,
        ns: &str,
        updated: Option<&Namespace>,
        add: &Contents,
        replace: &Contents,
    ) -> Result<()>;
    /// Rewrites a namespace's own fields (by id; the name may change).
    async fn update_namespace(&self, namespace: &Namespace) -> Result<()>;
    /// Deletes a namespace and everything in it.
    async fn delete_namespace(&self, ns: &str) -> Result<()>;
    /// Deletes all contents of one kind.
    async fn clear(&self, ns: &str, kind: ContentKind) -> Result<()>;

    /// Objects, paged.
    async fn objects(&self, ns: &str, paging: &Paging) -> Result<Vec<MetaObject>>;
    /// One object.
    async fn object(&self, ns: &str, name: &str) -> Result<Option<MetaObject>>;
    /// Adds an object.
    async fn insert_object(&self, ns: &str, object: &MetaObject) -> Result<()>;
    /// Replaces the object named `old` (the name may change).
    async fn update_object(&self, ns: &str, old: &str, object: &MetaObject) -> Result<()>;
    /// Removes an object; false when there was none.
    async fn delete_object(&self, ns: &str, name: &str) -> Result<bool>;

    /// All properties, by name.
    async fn properties(&self, ns: &str) -> Result<Vec<Property>>;
    /// One property.
    async fn property(&self, ns: &str, name: &str) -> Result<Option<Property>>;
    /// Adds a property.
    async fn insert_property(&self, ns: &str, property: &Property) -> Result<()>;
    /// Replaces the property named `old`.
    async fn update_property(&self, ns: &str, old: &str, property: &Property) -> Result<()>;
    /// Removes a property; false when there was none.
    async fn delete_property(&self, ns: &str, name: &str) -> Result<bool>;

    /// Tags, paged.
    async fn tags(&self, ns: &str, paging: &Paging) -> Result<Vec<Tag>>;
    /// One tag.
    async fn tag(&self, ns: &str, name: &str) -> Result<Option<Tag>>;
    /// Adds tags in one transaction, after removing all others unless `append`.
    async fn insert_tags(&self, ns: &str, tags: &[Tag], append: bool) -> Result<()>;
    /// Renames the tag named `old`.
    async fn update_tag(&self, ns: &str, old: &str, tag: &Tag) -> Result<()>;
    /// Removes a tag; false when there was none.
    async fn delete_tag(&self, ns: &str, name: &str) -> Result<bool>;

    /// Every resource type.
    async fn resource_types(&self) -> Result<Vec<ResourceType>>;
    /// A namespace's associations.
    async fn associations(&self, ns: &str) -> Result<Vec<Association>>;
    /// Adds an association, creating the resource type when missing.
    async fn insert_association(&self, ns: &str, association: &Association) -> Result<()>;
    /// Rewrites an association's prefix and target.
    async fn update_association(&self, ns: &str, association: &Association) -> Result<()>;
    /// Removes an association; false when there was none.
    async fn delete_association(&self, ns: &str, name: &str) -> Result<bool>;
}
