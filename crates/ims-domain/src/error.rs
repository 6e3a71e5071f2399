//! The domain error: named by meaning, mapped to statuses only by the dialects.

use thiserror::Error;

/// Every failure a use case can report. Dialects map each variant exhaustively.
#[derive(Debug, Error)]
pub enum Error {
    /// The entity does not exist, or the caller may not see it.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What kind of entity ("image", "member", …).
        kind: &'static str,
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
    /// A transient backend failure, or the service is saturated; the caller may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend failure. The message is never shown to users.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for a missing image.
    pub fn image_not_found(id: impl ToString) -> Self {
        Error::NotFound {
            kind: "image",
            id: id.to_string(),
        }
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
