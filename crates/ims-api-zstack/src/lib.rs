//! The ZStack dialect: REST under `/zstack/v1` and the legacy RPC envelope under
//! `/zstack/api`, both over the same operations.
//!
//! Layout:
//! - `error.rs`: ErrorCode (503) and plain-text REST errors;
//! - `wire.rs`: 32-hex uuids ↔ ims ids, ZStack's date format;
//! - `auth.rs`: sessions (`accounts/login`, logout, validation) and the `OAuth` caller;
//! - `query.rs`: `q=`/RPC conditions → [`ims_domain::query::Query`], `fields=`, with a
//!   field map per aggregate (images, volumes);
//! - `inventory.rs`: ImageInventory, BackupStorage/PrimaryStorage inventories;
//! - `ops.rs`: one function per image API, shared by both front ends;
//! - `volumes.rs`: the volume APIs and templates from volumes, their routes and RPC
//!   messages, VolumeInventory;
//! - `calls.rs`: the api-jobs protocol (wait, 202 + location, polling);
//! - `rest.rs`: REST routes; `rpc.rs`: the RPC front end.
//!
//! A new resource follows volumes: `Api` variants (with their Java package in
//! `Api::package`), operations returning `ops::Outcome` (`Job` for durable work;
//! `calls::settle` picks the finisher by `Api`), a field map over the domain's search
//! FIELDS and an `ims-db` column map, routes and RPC dispatch, and its `Entity` in
//! `error.rs`.

mod auth;
mod calls;
mod error;
mod inventory;
mod ops;
mod query;
mod rest;
mod rpc;
mod volumes;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ims_domain::api_call::ApiCallRepo;
use ims_domain::identity::session::SessionService;
use ims_http::Services;

pub use error::{ZsError, ZsResult};

/// Settings of the ZStack dialect.
#[derive(Debug, Clone)]
pub struct ZStackSettings {
    /// How long a mutating call waits for its durable work before answering 202.
    pub job_wait: Duration,
    /// How long a finished api-job stays pollable.
    pub job_retention: Duration,
    /// Where image data is (the one backup storage).
    pub image_store: ImageStoreView,
    /// The directory volumes live in (the one primary storage).
    pub volume_dir: PathBuf,
}

/// The image store as ZStack's backup storage shows it.
#[derive(Debug, Clone)]
pub enum ImageStoreView {
    /// A local directory: install paths are its files, capacity its filesystem's.
    Local(PathBuf),
    /// An object store: install paths are `s3://<bucket>/<prefix><key>` URLs (this
    /// prefix), and its capacity is not known (reported as 0).
    Remote(String),
}

/// What the dialect's handlers use.
pub struct ZStack {
    /// The shared services.
    pub services: Services,
    /// Session logins.
    pub sessions: SessionService,
    /// api-job records.
    pub calls: Arc<dyn ApiCallRepo>,
    /// Settings.
    pub settings: ZStackSettings,
}

/// The handlers' state.
#[derive(Clone)]
pub(crate) struct Zs(pub(crate) Arc<ZStack>);

impl std::ops::Deref for Zs {
    type Target = ZStack;
    fn deref(&self) -> &ZStack {
        &self.0
    }
}

/// Every ZStack route, with its own state; merge it into the application router.
pub fn router<S: Clone + Send + Sync + 'static>(zstack: ZStack) -> Router<S> {
    let state = Zs(Arc::new(zstack));
    rest::routes()
        .merge(rpc::routes())
        .merge(volumes::routes())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ZsError::api("SYS.1000", "An internal error happened in system").into_response()
        }))
        .with_state(state)
}

use axum::response::IntoResponse;
