//! The Keystone v3 dialect: just enough identity for `openstack`, openstacksdk and
//! glanceclient to log in against ims itself.

mod convert;
mod error;
mod handlers;

use axum::Router;
use axum::routing::{get, put};
use ims_http::Services;

pub use error::KeystoneError;

/// The Keystone routes, under `/v3`.
pub fn router() -> Router<Services> {
    use handlers::*;
    Router::new()
        .route("/v3", get(discovery))
        .route("/v3/", get(discovery))
        .route(
            "/v3/auth/tokens",
            get(validate_token)
                .head(check_token)
                .post(issue_token)
                .delete(revoke_token),
        )
        .route("/v3/projects", get(list_projects).post(create_project))
        .route("/v3/projects/{id}", get(get_project).delete(delete_project))
        .route("/v3/users", get(list_users).post(create_user))
        .route("/v3/users/{id}", get(get_user).delete(delete_user))
        .route("/v3/roles", get(list_roles).post(create_role))
        .route("/v3/roles/{id}", get(get_role).delete(delete_role))
        .route(
            "/v3/projects/{p}/users/{u}/roles/{r}",
            put(grant_role)
                .delete(revoke_role)
                .head(check_role)
                .get(check_role),
        )
}
