//! Metadata definitions (Glance's "metadefs"): a catalog of namespaces that describe the
//! properties, objects and tags operators may set on images, volumes, flavors and other
//! resource types. Model, validation rules, policy, the `MetadefRepo` port and the use
//! cases live here; the Glance dialect only translates.

pub mod model;
pub mod policy;
pub mod repo;
pub mod rules;
mod service;

pub use model::*;
pub use repo::MetadefRepo;
pub use service::{LoadMode, LoadOutcome, MetadefService};
