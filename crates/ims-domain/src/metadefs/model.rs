//! Metadata definitions: namespaces and what they hold (objects, properties, tags,
//! resource type associations), as Glance's metadefs catalog defines them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Who may see a namespace besides admins and its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsVisibility {
    /// Everyone with a reader role.
    Public,
    /// The owner project only.
    Private,
}

impl NsVisibility {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NsVisibility::Public => "public",
            NsVisibility::Private => "private",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(NsVisibility::Public),
            "private" => Some(NsVisibility::Private),
            _ => None,
        }
    }
}

/// A namespace's own fields (its contents are loaded separately).
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// Internal id; stays when the namespace is renamed.
    pub id: String,
    /// The unique name clients address it by (`namespace` on the wire).
    pub name: String,
    /// Name for UIs.
    pub display_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Public or private.
    pub visibility: NsVisibility,
    /// A protected namespace, and what it holds, cannot be deleted.
    pub protected: bool,
    /// Owning project id (`admin` for definitions loaded from files, as Glance does).
    pub owner: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A property definition: the JSON-schema-like document Glance keeps per property,
/// reduced to the keys Glance knows (`title`, `type`, `enum`, `minimum`, …), without
/// the name.
pub type PropertyDef = Map<String, Value>;

/// A named property definition of a namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Unique within the namespace.
    pub name: String,
    /// The definition.
    pub schema: PropertyDef,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A named group of property definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaObject {
    /// Unique within the namespace.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Names of the properties an instance must set.
    pub required: Option<Vec<String>>,
    /// The object's property definitions by name.
    pub properties: Option<BTreeMap<String, PropertyDef>>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A tag definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// Unique within the namespace.
    pub name: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A kind of resource definitions apply to (`OS::Glance::Image`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// Unique name.
    pub name: String,
    /// Seeded or loaded from files.
    pub protected: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A namespace applying to a resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct Association {
    /// The resource type's name.
    pub name: String,
    /// Prefix of the property names when applied to this resource type (`hw_`).
    pub prefix: Option<String>,
    /// Which of the resource's key/value sets the properties go to (`image`).
    pub properties_target: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Everything a namespace holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    /// Resource type associations.
    pub associations: Vec<Association>,
    /// Namespace-level property definitions.
    pub properties: Vec<Property>,
    /// Objects.
    pub objects: Vec<MetaObject>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// A namespace with its contents.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceDetail {
    /// The namespace.
    pub namespace: Namespace,
    /// What it holds.
    pub contents: Contents,
}

/// A namespace as listed: with its resource type associations.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedNamespace {
    /// The namespace.
    pub namespace: Namespace,
    /// Its associations.
    pub associations: Vec<Association>,
}

/// One page of namespaces.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespacePage {
    /// The namespaces.
    pub namespaces: Vec<ListedNamespace>,
    /// Marker of the next page (the last name) when the page is full.
    pub next: Option<String>,
}

/// Which contents of a namespace a bulk delete removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// Objects.
    Objects,
    /// Properties.
    Properties,
    /// Tags.
    Tags,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// The namespace attribute lists sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `created_at` (Glance's default).
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// The name.
    Name,
    /// `display_name` (namespaces only).
    DisplayName,
    /// `visibility` (namespaces only).
    Visibility,
    /// `owner` (namespaces only).
    Owner,
}

/// Paging and ordering of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// Sort attribute; ties break on `created_at`, then the name.
    pub sort_key: SortKey,
    /// Direction of all sort keys.
    pub sort_dir: SortDir,
    /// Name of the last entry of the previous page.
    pub marker: Option<String>,
    /// Page size; none = all.
    pub limit: Option<u64>,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            sort_key: SortKey::CreatedAt,
            sort_dir: SortDir::Desc,
            marker: None,
            limit: None,
        }
    }
}

/// A namespace list request, after validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceQuery {
    /// Paging and order.
    pub paging: Paging,
    /// Only this visibility.
    pub visibility: Option<NsVisibility>,
    /// Only namespaces associated with one of these resource types.
    pub resource_types: Option<Vec<String>>,
}

/// What the repository needs to list namespaces for one caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceListing {
    /// The query.
    pub query: NamespaceQuery,
    /// `None`: every namespace (admins); `Some(p)`: public ones and those owned by `p`.
    pub owner_scope: Option<String>,
    /// The marker namespace, resolved (visible to the caller).
    pub after: Option<Namespace>,
}
