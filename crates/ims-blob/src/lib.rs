//! Adapters for the domain's data ports: [`FsBlobStore`] (a local directory),
//! [`FsBuckets`] (directories standing in for object-storage buckets) and [`HttpSource`]
//! (web-download).

mod buckets;
mod fs;
mod http;

pub use buckets::FsBuckets;
pub use fs::FsBlobStore;
pub use http::HttpSource;
