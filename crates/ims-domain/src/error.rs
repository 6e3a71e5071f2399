//! The domain error: named by meaning, mapped to statuses only by the dialects.

use thiserror::Error;

/// Every failure a use case can report. Dialects map each variant exhaustively.
#[derive(Debug, Error)]
pub enum Error {
    /// The entity does not exist, or the caller may not see it.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What kind of entity.
        kind: Entity,
        /// The id that was looked up.
        id: String,
    },
    /// The request is malformed or violates a validation rule.
    #[error("{0}")]
    InvalidInput(String),
    /// One named request field is invalid (dialects with per-field codes use the name).
    #[error("{message}")]
    InvalidField {
        /// The field, in the domain's vocabulary (`name`, `description`, `min_disk`, …).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The caller may see the entity but may not perform the action.
    #[error("{0}")]
    Forbidden(String),
    /// The caller could not be authenticated.
    #[error("{0}")]
    Unauthenticated(String),
    /// An entity with this id or name exists already.
    #[error("{kind} {id} already exists")]
    AlreadyExists {
        /// What kind of entity.
        kind: Entity,
        /// The id or name that is taken.
        id: String,
    },
    /// The entity is in a state that does not allow the action.
    #[error("{0}")]
    Conflict(String),
    /// A per-project quota would be exceeded.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The data is larger than allowed, or the disk of the image store or of an embedded
    /// bucket is full (`ENOSPC`, mapped in `ims-blob`).
    #[error("{0}")]
    TooLarge(String),
    /// The data is of a kind the service refuses (format mismatch, unsafe image).
    #[error("{0}")]
    UnsupportedMedia(String),
    /// A byte range that lies outside the data.
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable {
        /// The size of the data.
        size: u64,
    },
    /// The entity went away while the request ran (deleted during upload).
    #[error("{0}")]
    Gone(String),
    /// A feature that this deployment does not offer.
    #[error("{0}")]
    NotSupported(String),
    /// The caller has as much work in progress as it may (concurrent uploads of its
    /// project); it may retry once some finishes.
    #[error("{0}")]
    Throttled(String),
    /// A KMS key's state forbids the use (disabled, pending deletion; for an image's
    /// own key also destroyed).
    #[error("{message}")]
    KeyUnusable {
        /// The key's id.
        id: String,
        /// Its state (`disabled`, `pending_deletion`, or `deleted` for an image's key
        /// that no longer exists).
        state: &'static str,
        /// Which key of the operation it is.
        role: KeyRole,
        /// What to tell the caller.
        message: String,
    },
    /// A transient backend failure, or the service is saturated; the caller may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend failure. The message is never shown to users.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Every kind of entity a lookup can miss. Dialects match on it without a wildcard, so a
/// new kind does not compile until each dialect says how it reports it missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    /// An image.
    Image,
    /// An image's data (an image without data, or data that is gone).
    ImageData,
    /// An import method this deployment does not offer.
    ImportMethod,
    /// A project's membership of an image.
    Member,
    /// A tag of an image.
    Tag,
    /// A job (IMS jobs, or any job by id).
    Job,
    /// A Glance task (a job of one of the task kinds).
    Task,
    /// A JSON schema.
    Schema,
    /// A bucket, or one the caller may not use.
    Bucket,
    /// An object in a bucket.
    Object,
    /// A Keystone project.
    Project,
    /// A Keystone user.
    User,
    /// A Keystone role.
    Role,
    /// A role granted to a user on a project.
    RoleAssignment,
    /// A token.
    Token,
    /// An AK/SK credential.
    Credential,
    /// A metadata-definition namespace.
    MetadefNamespace,
    /// A metadata-definition object.
    MetadefObject,
    /// A metadata-definition property.
    MetadefProperty,
    /// A metadata-definition tag.
    MetadefTag,
    /// A metadata-definition resource type.
    MetadefResourceType,
    /// A resource type's association with a namespace.
    MetadefAssociation,
    /// The marker of a metadata-definition listing.
    MetadefMarker,
    /// A volume.
    Volume,
    /// An image server.
    Server,
    /// A KMS key.
    Key,
    /// An image store (Glance's multi-store), or an image's copy in one: the id is then
    /// `<store>/<image id>`.
    Store,
}

impl Entity {
    /// The entity's name in plain words (`"image"`, `"metadef namespace"`), for logs and
    /// for dialects whose messages name the kind.
    pub fn noun(self) -> &'static str {
        match self {
            Entity::Image => "image",
            Entity::ImageData => "image data",
            Entity::ImportMethod => "import method",
            Entity::Member => "member",
            Entity::Tag => "tag",
            Entity::Job => "job",
            Entity::Task => "task",
            Entity::Schema => "schema",
            Entity::Bucket => "bucket",
            Entity::Object => "object",
            Entity::Project => "project",
            Entity::User => "user",
            Entity::Role => "role",
            Entity::RoleAssignment => "role assignment",
            Entity::Token => "token",
            Entity::Credential => "credential",
            Entity::MetadefNamespace => "metadef namespace",
            Entity::MetadefObject => "metadef object",
            Entity::MetadefProperty => "metadef property",
            Entity::MetadefTag => "metadef tag",
            Entity::MetadefResourceType => "metadef resource type",
            Entity::MetadefAssociation => "metadef association",
            Entity::MetadefMarker => "metadef marker",
            Entity::Volume => "volume",
            Entity::Server => "image server",
            Entity::Key => "key",
            Entity::Store => "image store",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}

impl Error {
    /// A missing (or invisible) entity.
    pub fn not_found(kind: Entity, id: impl ToString) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// Shorthand for a missing image.
    pub fn image_not_found(id: impl ToString) -> Self {
        Self::not_found(Entity::Image, id)
    }

    /// Shorthand for an invalid-input error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    /// Shorthand for an invalid field.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidField {
            field,
            message: message.into(),
        }
    }

    /// Wraps an unexpected failure of an adapter.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Error::Internal(err.to_string())
    }
}

/// Result alias used throughout the domain.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which key of an operation a [`Error::KeyUnusable`] is about: Huawei IMS tells the key a
/// caller names (IMG.0097) from the key an existing image is encrypted under (IMG.0101,
/// IMG.0102).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The key the caller named (`cmk_id`).
    Named,
    /// The key an existing image's data is encrypted under.
    Image,
}
