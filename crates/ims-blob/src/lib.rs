//! Adapters for the domain's data ports: [`FsBlobStore`] (a local directory) and
//! [`HttpSource`] (web-download).

mod fs;
mod http;

pub use fs::FsBlobStore;
pub use http::HttpSource;
