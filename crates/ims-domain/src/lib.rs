//! The ims domain core: images, principals, jobs, their state machines and policy,
//! the ports that storage adapters implement, the streaming data pipeline, and the
//! use cases every API dialect calls. Nothing here knows HTTP or SQL.

#[macro_use]
mod vocab;

pub mod bucket;
pub mod context;
pub mod error;
pub mod huawei;
pub mod identity;
pub mod image;
pub mod job;
pub mod listing;
pub mod member;
pub mod metadefs;
pub mod outbound;
pub mod pipeline;
pub mod policy;
pub mod ports;
pub mod principal;
pub mod sealing;
pub mod service;
pub mod text;
pub mod workers;

pub use error::{Error, Result};
