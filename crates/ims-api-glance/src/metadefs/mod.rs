//! Glance's metadata definitions API (`/v2/metadefs/…`) and its schemas.

mod handlers;
mod query;
mod render;
mod schemas;

use axum::Router;
use axum::routing::{get, post};
use ims_http::Services;

/// The metadefs routes, merged into the image API router.
pub fn router() -> Router<Services> {
    use handlers as h;
    const NS: &str = "/v2/metadefs/namespaces/{ns}";
    Router::new()
        .route("/v2/schemas/metadefs/{name}", get(h::schema))
        .route("/v2/metadefs/resource_types", get(h::list_resource_types))
        .route(
            "/v2/metadefs/namespaces",
            get(h::list_namespaces).post(h::create_namespace),
        )
        .route(
            NS,
            get(h::show_namespace)
                .put(h::update_namespace)
                .delete(h::delete_namespace),
        )
        .route(
            &format!("{NS}/objects"),
            get(h::list_objects)
                .post(h::create_object)
                .delete(h::delete_objects),
        )
        .route(
            &format!("{NS}/objects/{{name}}"),
            get(h::show_object)
                .put(h::update_object)
                .delete(h::delete_object),
        )
        .route(
            &format!("{NS}/properties"),
            get(h::list_properties)
                .post(h::create_property)
                .delete(h::delete_properties),
        )
        .route(
            &format!("{NS}/properties/{{name}}"),
            get(h::show_property)
                .put(h::update_property)
                .delete(h::delete_property),
        )
        .route(
            &format!("{NS}/tags"),
            get(h::list_tags)
                .post(h::create_tags)
                .delete(h::delete_tags),
        )
        .route(
            &format!("{NS}/tags/{{name}}"),
            post(h::create_tag)
                .get(h::show_tag)
                .put(h::update_tag)
                .delete(h::delete_tag),
        )
        .route(
            &format!("{NS}/resource_types"),
            get(h::list_associations).post(h::create_association),
        )
        .route(
            &format!("{NS}/resource_types/{{name}}"),
            axum::routing::delete(h::delete_association),
        )
}

/// Glance's messages for a missing metadef (`kind` starts with `metadef `).
pub(crate) fn not_found_message(kind: ims_domain::Entity, id: &str) -> String {
    use ims_domain::Entity as E;
    match kind {
        E::MetadefNamespace => format!("Metadata definition namespace={id} was not found."),
        E::MetadefResourceType => format!("Failed to find resource type {id} to delete"),
        E::MetadefAssociation => format!(
            "The metadata definition resource-type association of resource-type={id} was not found."
        ),
        other => {
            let what = other.noun().trim_start_matches("metadef ");
            format!("The metadata definition {what} with name={id} was not found.")
        }
    }
}
