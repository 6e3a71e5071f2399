//! The Huawei KMS dialect of the built-in key management service
//! (`/v1.0/{project_id}/kms/…`, as `huaweicloudsdkkms` calls it). It only translates:
//! signed requests become a `Principal`, KMS's string-typed JSON becomes `KeyService`
//! calls, and keys, hex data keys and errors are rendered in KMS's shapes.

mod error;
mod handlers;
mod wire;

use axum::Router;
use axum::routing::post;
use ims_http::Services;

pub use error::KmsError;

/// The KMS routes (state: [`Services`]).
pub fn router() -> Router<Services> {
    let op = |name: &str| format!("/v1.0/{{project_id}}/kms/{name}");
    Router::new()
        .route(&op("create-key"), post(handlers::create_key))
        .route(&op("list-keys"), post(handlers::list_keys))
        .route(&op("describe-key"), post(handlers::describe_key))
        .route(&op("enable-key"), post(handlers::enable_key))
        .route(&op("disable-key"), post(handlers::disable_key))
        .route(
            &op("schedule-key-deletion"),
            post(handlers::schedule_key_deletion),
        )
        .route(
            &op("cancel-key-deletion"),
            post(handlers::cancel_key_deletion),
        )
        .route(&op("create-datakey"), post(handlers::create_datakey))
        .route(
            &op("create-datakey-without-plaintext"),
            post(handlers::create_datakey_without_plaintext),
        )
        .route(&op("encrypt-datakey"), post(handlers::encrypt_datakey))
        .route(&op("decrypt-datakey"), post(handlers::decrypt_datakey))
}
