//! The ims domain core: images, principals, jobs, their state machines and policy,
//! the ports that storage adapters implement, the streaming data pipeline, and the
//! use cases every API dialect calls. Nothing here knows HTTP or SQL.

#[macro_use]
mod vocab;

pub mod api_call;
pub mod context;
pub mod error;
pub mod identity;
pub mod image;
pub mod job;
pub mod key;
pub mod metadefs;
pub mod outbound;
pub mod pipeline;
pub mod policy;
pub mod ports;
pub mod query;
pub mod server;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod text;
pub mod volume;
pub mod workers;

// The modules' old paths, kept while the dialects move to the new ones.
pub use identity::{principal, sealing};
pub use image::{huawei, listing, member};
pub use storage::bucket;

pub use error::{Entity, Error, KeyRole, Result};
