//! The image pages: the list (the OpenStack list's filters, sorting and paging), a
//! detail page with every property, members and jobs, creation (then an upload from the
//! browser or a web-download import), edits, (de)activation and deletion. Each handler
//! calls one domain use case; what the domain refuses is shown with its message.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::Form;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use futures::TryStreamExt;
use ims_domain::image::service::bucket_jobs::{FileKind, ImageCopy, ImageExport};
use ims_domain::image::{ContainerFormat, DiskFormat, Image, ImageStatus, Visibility};
use ims_domain::service::{ImageChange, UploadSource};
use ims_http::Services;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::jobs::JobRow;
use crate::pages::{self, Nav, render, size, when};
use crate::session::Session;

/// The list's filters, as the query string gave them (empty: not filtered).
#[derive(Default)]
pub struct Filters {
    name: String,
    status: String,
    visibility: String,
    disk_format: String,
    limit: String,
    sort_key: String,
    sort_dir: String,
}

/// The parameters the list page passes on to the OpenStack list query.
const LIST_PARAMS: &[&str] = &[
    "name",
    "status",
    "visibility",
    "disk_format",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
];

impl Filters {
    fn of(pairs: &[(String, String)]) -> Self {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Filters {
            name: get("name"),
            status: get("status"),
            visibility: get("visibility"),
            disk_format: get("disk_format"),
            limit: get("limit"),
            sort_key: get("sort_key"),
            sort_dir: get("sort_dir"),
        }
    }
}

/// One row of the list.
pub struct ImageRow {
    id: String,
    name: String,
    status: String,
    disk_format: String,
    container_format: String,
    size: String,
    virtual_size: String,
    visibility: String,
    owner: String,
    created: String,
    origin: String,
}

impl From<&Image> for ImageRow {
    fn from(i: &Image) -> Self {
        ImageRow {
            id: i.id.to_string(),
            name: i.name.clone().unwrap_or_default(),
            status: i.status.to_string(),
            disk_format: i.disk_format.map(|f| f.to_string()).unwrap_or_default(),
            container_format: i
                .container_format
                .map(|f| f.to_string())
                .unwrap_or_default(),
            size: size(i.data.size),
            virtual_size: size(i.data.virtual_size),
            visibility: i.visibility.to_string(),
            owner: i.owner.clone().unwrap_or_default(),
            created: when(i.created_at),
            origin: i.origin.clone().unwrap_or_else(|| "–".to_string()),
        }
    }
}

/// A column heading; a sortable one links to the list sorted by it.
pub struct Column {
    label: &'static str,
    sortable: bool,
    href: String,
    arrow: &'static str,
}

#[derive(Template)]
#[template(path = "images.html")]
struct ListPage {
    nav: Option<Nav>,
    filters: Filters,
    statuses: Vec<&'static str>,
    visibilities: Vec<&'static str>,
    disk_formats: Vec<&'static str>,
    columns: Vec<Column>,
    images: Vec<ImageRow>,
    error: Option<String>,
    first_page: Option<String>,
    next_page: Option<String>,
}

/// The query string's pairs that the list uses, without empty ones (an empty form field
/// means "any").
fn list_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .filter(|(k, v)| LIST_PARAMS.contains(&k.as_str()) && !v.trim().is_empty())
        .collect()
}

/// `/console/images?…` with `pairs`, one replaced or dropped by `set`.
fn list_href(pairs: &[(String, String)], set: &[(&str, Option<&str>)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !set.iter().any(|(name, _)| name == k) {
            out.append_pair(k, v);
        }
    }
    for (k, v) in set {
        if let Some(v) = v {
            out.append_pair(k, v);
        }
    }
    format!("/console/images?{}", out.finish())
}

/// The headings; the sorted one shows its direction, and links to the other one.
fn columns(pairs: &[(String, String)], filters: &Filters) -> Vec<Column> {
    let heading = |label, key: Option<&'static str>| {
        let Some(key) = key else {
            return Column {
                label,
                sortable: false,
                href: String::new(),
                arrow: "",
            };
        };
        let current = filters.sort_key == key;
        let descending = filters.sort_dir != "asc";
        let dir = if current && descending { "asc" } else { "desc" };
        Column {
            label,
            sortable: true,
            href: list_href(
                pairs,
                &[
                    ("sort_key", Some(key)),
                    ("sort_dir", Some(dir)),
                    ("marker", None),
                ],
            ),
            arrow: match (current, descending) {
                (false, _) => "",
                (true, true) => " ▼",
                (true, false) => " ▲",
            },
        }
    };
    vec![
        heading("Name", Some("name")),
        heading("Status", Some("status")),
        heading("Disk format", Some("disk_format")),
        heading("Container format", Some("container_format")),
        heading("Size", Some("size")),
        heading("Virtual size", Some("virtual_size")),
        heading("Visibility", Some("visibility")),
        heading("Owner", Some("owner")),
        heading("Created", Some("created_at")),
        heading("API", None),
    ]
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|v| name(*v)).collect()
}

/// `GET /console/images`.
pub async fn list(
    State(svc): State<Services>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = list_pairs(raw.as_deref());
    let filters = Filters::of(&pairs);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter())
        .finish();
    let listed = match ims_http::list_query::parse(&query, &ims_http::list_query::GLANCE) {
        Ok(q) => svc
            .images
            .list(&session.who, &q)
            .await
            .map(|images| (q.limit, images)),
        Err(e) => Err(e),
    };
    let (images, error, next_page) = match listed {
        Ok((limit, images)) => {
            let next = (images.len() == limit as usize)
                .then(|| images.last().map(|i| i.id.to_string()))
                .flatten()
                .map(|last| list_href(&pairs, &[("marker", Some(&last))]));
            (images, None, next)
        }
        Err(e) => (Vec::new(), Some(pages::message(&e)), None),
    };
    let paged = pairs.iter().any(|(k, _)| k == "marker");
    render(&ListPage {
        nav: Nav::of(&session, "images"),
        columns: columns(&pairs, &filters),
        filters,
        statuses: names(ImageStatus::ALL, ImageStatus::as_str),
        visibilities: names(Visibility::ALL, Visibility::as_str),
        disk_formats: names(DiskFormat::ALL, DiskFormat::as_str),
        images: images.iter().map(ImageRow::from).collect(),
        error,
        first_page: paged.then(|| list_href(&pairs, &[("marker", None)])),
        next_page,
    })
}

/// Everything the detail page shows of an image: its list row and the rest.
pub struct ImageView {
    row: ImageRow,
    /// The name, or the id when it has none (the page's title).
    title: String,
    updated: String,
    protected: bool,
    checksum: String,
    hash_algo: String,
    hash: String,
    stores: String,
    tags: Vec<String>,
    tags_joined: String,
    properties: Vec<(String, String)>,
    properties_text: String,
}

impl From<&Image> for ImageView {
    fn from(i: &Image) -> Self {
        let row = ImageRow::from(i);
        let properties: Vec<(String, String)> = i
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let tags: Vec<String> = i.tags.iter().cloned().collect();
        ImageView {
            title: if row.name.is_empty() {
                row.id.clone()
            } else {
                row.name.clone()
            },
            row,
            updated: when(i.updated_at),
            protected: i.protected,
            checksum: i.data.checksum.clone().unwrap_or_default(),
            hash_algo: i.data.hash_algo.clone().unwrap_or_default(),
            hash: i.data.hash_value.clone().unwrap_or_default(),
            stores: i.data.stores.iter().cloned().collect::<Vec<_>>().join(", "),
            tags_joined: tags.join(", "),
            tags,
            properties_text: properties
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
            properties,
        }
    }
}

#[derive(Template)]
#[template(path = "image.html")]
struct DetailPage {
    nav: Option<Nav>,
    csrf: String,
    image: ImageView,
    can_write: bool,
    error: Option<String>,
    members: Vec<(String, String)>,
    jobs: Vec<JobRow>,
    live: bool,
}

/// `GET /console/images/{id}`.
pub async fn detail(
    State(svc): State<Services>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    detail_page(&svc, &session, &id, None).await
}

async fn detail_page(
    svc: &Services,
    session: &Session,
    id: &str,
    error: Option<String>,
) -> Response {
    let image = match svc.images.get(&session.who, id).await {
        Ok(image) => image,
        Err(e) => return pages::error_page(&e),
    };
    // Members and jobs are the owner's (and an admin's) to see; others get none.
    let members = svc
        .images
        .members(&session.who, id)
        .await
        .unwrap_or_default();
    let jobs = svc
        .images
        .image_job_history(&session.who, id)
        .await
        .unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = DetailPage {
        nav: Nav::of(session, "images"),
        csrf: session.csrf.clone(),
        can_write: pages::can_write(&session.who)
            && (session.who.is_admin() || image.owner.as_deref() == Some(&session.who.project_id)),
        image: ImageView::from(&image),
        error,
        members: members
            .iter()
            .map(|m| (m.member_id.clone(), m.status.to_string()))
            .collect(),
        jobs: jobs.iter().map(JobRow::from).collect(),
        live: true,
    };
    (status, render(&page)).into_response()
}

/// The creation form's fields.
#[derive(Deserialize, Default)]
pub struct NewImage {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    disk_format: String,
    #[serde(default)]
    container_format: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    object: String,
}

#[derive(Template)]
#[template(path = "image_new.html")]
struct NewPage {
    nav: Option<Nav>,
    csrf: String,
    form: NewImage,
    error: Option<String>,
    disk_formats: Vec<&'static str>,
    container_formats: Vec<&'static str>,
    visibilities: Vec<&'static str>,
}

fn new_page(session: &Session, form: NewImage, error: Option<String>) -> NewPage {
    NewPage {
        nav: Nav::of(session, "images"),
        csrf: session.csrf.clone(),
        form,
        error,
        disk_formats: names(DiskFormat::ALL, DiskFormat::as_str),
        container_formats: names(ContainerFormat::ALL, ContainerFormat::as_str),
        visibilities: vec!["private", "shared", "community", "public"],
    }
}

/// `GET /console/images/new`.
pub async fn new_form(session: Session) -> Response {
    let form = NewImage {
        disk_format: "qcow2".into(),
        container_format: "bare".into(),
        visibility: "private".into(),
        ..NewImage::default()
    };
    render(&new_page(&session, form, None))
}

/// Whether a page script asked (it wants JSON, not a page).
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("application/json"))
}

/// `POST /console/images`: creates the image (and starts a web-download when a URL is
/// given). The page's script asks for JSON, then uploads the chosen file into it.
pub async fn create(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<NewImage>,
) -> Response {
    if let Err(refused) = session.check(&headers, form.csrf.as_deref()) {
        return refused.into_response();
    }
    let mut attrs = BTreeMap::new();
    for (key, value) in [
        ("name", &form.name),
        ("disk_format", &form.disk_format),
        ("container_format", &form.container_format),
        ("visibility", &form.visibility),
    ] {
        attrs.insert(key.to_string(), Value::String(value.clone()));
    }
    let object = form.object.trim();
    let made = if object.is_empty() {
        svc.images.create(&session.who, attrs).await
    } else {
        // IMS's import from a bucket object: the image and its job are made together.
        let kind = if form.disk_format == "iso" {
            FileKind::Iso
        } else {
            FileKind::System
        };
        let made = svc
            .images
            .create_from_object(&session.who, attrs, object, kind)
            .await;
        made.map(|(image, _job)| image)
    };
    let made = match made {
        Ok(image) => image,
        Err(e) => return refused_form(&session, &headers, form, &e),
    };
    let id = made.id.to_string();
    let url = form.url.trim();
    if !url.is_empty() {
        let req = serde_json::from_value(json!({"method": "web-download", "uri": url}));
        let started = match req {
            Ok(req) => svc.images.import(&session.who, &id, req).await.map(|_| ()),
            Err(e) => Err(ims_domain::Error::invalid(e.to_string())),
        };
        if let Err(e) = started {
            // The image stays (queued), as a Glance client's would; the page says why.
            return detail_page(&svc, &session, &id, Some(pages::message(&e))).await;
        }
    }
    if wants_json(&headers) {
        return (StatusCode::CREATED, Json(json!({"id": id}))).into_response();
    }
    Redirect::to(&format!("/console/images/{id}")).into_response()
}

/// The form again, with the domain's refusal next to it (or, for the script, as JSON).
fn refused_form(
    session: &Session,
    headers: &HeaderMap,
    form: NewImage,
    e: &ims_domain::Error,
) -> Response {
    let status = ims_http::openstack_status(e);
    if wants_json(headers) {
        return (status, Json(json!({"error": pages::message(e)}))).into_response();
    }
    (
        status,
        render(&new_page(session, form, Some(pages::message(e)))),
    )
        .into_response()
}

/// `PUT /console/images/{id}/file`: the browser's upload, streamed into the image through
/// the one pipeline (nothing is held whole). A cancelled upload leaves the image queued.
pub async fn upload(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    if let Err(refused) = session.check(&headers, None) {
        return refused.into_response();
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let source = UploadSource {
        stream: Box::pin(body.into_data_stream().map_err(std::io::Error::other)),
        declared_size: declared,
        store: None,
    };
    match svc.images.upload(&session.who, &id, source).await {
        Ok(image) => Json(json!({"status": image.status.as_str()})).into_response(),
        Err(e) => (
            ims_http::openstack_status(&e),
            Json(json!({"error": pages::message(&e)})),
        )
            .into_response(),
    }
}

/// The edit form.
#[derive(Deserialize)]
pub struct Edit {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    properties: String,
}

/// The changes that turn `image` into what the form says: a new name, the tag set, and
/// the extra properties (added, changed, or removed when a line is gone).
fn changes(image: &Image, form: &Edit) -> Result<Vec<ImageChange>, ims_domain::Error> {
    let mut out = Vec::new();
    if image.name.as_deref().unwrap_or("") != form.name {
        out.push(ImageChange::Replace(
            "name".into(),
            Value::String(form.name.clone()),
        ));
    }
    let tags: BTreeSet<String> = form
        .tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tags != image.tags {
        out.push(ImageChange::Replace("tags".into(), json!(tags)));
    }
    let mut wanted = BTreeMap::new();
    for line in form
        .properties
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let (k, v) = line.split_once('=').ok_or_else(|| {
            ims_domain::Error::invalid(format!("Property line '{line}' is not key=value"))
        })?;
        wanted.insert(k.trim().to_string(), v.trim().to_string());
    }
    for (k, v) in &wanted {
        if image.properties.get(k) != Some(v) {
            out.push(ImageChange::Add(k.clone(), Value::String(v.clone())));
        }
    }
    for k in image.properties.keys().filter(|k| !wanted.contains_key(*k)) {
        out.push(ImageChange::Remove(k.clone()));
    }
    Ok(out)
}

/// `POST /console/images/{id}/edit`.
pub async fn edit(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Edit>,
) -> Response {
    if let Err(refused) = session.check(&headers, form.csrf.as_deref()) {
        return refused.into_response();
    }
    let edited = match svc.images.get(&session.who, &id).await {
        Ok(image) => match changes(&image, &form) {
            Ok(changes) => svc
                .images
                .update(&session.who, &id, changes)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    after_action(&svc, &session, &id, edited).await
}

/// Back to the image's page, or the page again with the domain's refusal.
async fn after_action(
    svc: &Services,
    session: &Session,
    id: &str,
    done: Result<(), ims_domain::Error>,
) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/console/images/{id}")).into_response(),
        // The page again with the refusal (a key or project not found included); if the
        // image itself is gone, detail_page answers with the error page.
        Err(e) => detail_page(svc, session, id, Some(pages::message(&e))).await,
    }
}

/// The forms of the detail page's actions; each uses the fields it needs.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    /// Share and unshare: the member project's id.
    #[serde(default)]
    project: String,
    /// Copy: the new image's name and, optionally, the KMS key to encrypt it under.
    #[serde(default)]
    name: String,
    #[serde(default)]
    cmk_id: String,
    /// Export: `bucket:object` and the file format.
    #[serde(default)]
    bucket_url: String,
    #[serde(default)]
    file_format: String,
}

/// `POST /console/images/{id}/{action}`: deactivate, reactivate, share, unshare, copy
/// (IMS's copy, optionally under a KMS key) and export (into a bucket). Copies and
/// exports are jobs: their progress is on the jobs page, where the browser goes.
pub async fn act(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Err(refused) = session.check(&headers, f.csrf.as_deref()) {
        return refused.into_response();
    }
    let (images, who) = (&svc.images, &session.who);
    let to_jobs = |job: Result<ims_domain::job::Job, _>| job.map(|_| Some("/console/jobs"));
    let done = match action.as_str() {
        "deactivate" => images.deactivate(who, &id).await.map(|()| None),
        "reactivate" => images.reactivate(who, &id).await.map(|()| None),
        "share" => images
            .add_member(who, &id, f.project.trim())
            .await
            .map(|_| None),
        "unshare" => images
            .remove_member(who, &id, f.project.trim())
            .await
            .map(|()| None),
        "copy" => {
            let cmk_id = Some(f.cmk_id.trim().to_string()).filter(|k| !k.is_empty());
            let req = ImageCopy {
                name: f.name,
                description: None,
                cmk_id,
            };
            to_jobs(images.copy_image(who, &id, req).await)
        }
        "export" => {
            let req = ImageExport {
                bucket_url: f.bucket_url,
                file_format: f.file_format,
            };
            to_jobs(images.export_image(who, &id, req).await)
        }
        _ => Err(ims_domain::Error::not_found(
            ims_domain::Entity::Image,
            &action,
        )),
    };
    match done {
        Ok(Some(page)) => Redirect::to(page).into_response(),
        Ok(None) => after_action(&svc, &session, &id, Ok(())).await,
        Err(e) => after_action(&svc, &session, &id, Err(e)).await,
    }
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
pub struct Confirm {
    csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "image_delete.html")]
struct DeletePage {
    nav: Option<Nav>,
    csrf: String,
    id: String,
    name: String,
}

/// `GET /console/images/{id}/delete`: the confirmation.
pub async fn confirm_delete(
    State(svc): State<Services>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    match svc.images.get(&session.who, &id).await {
        Ok(image) => render(&DeletePage {
            nav: Nav::of(&session, "images"),
            csrf: session.csrf.clone(),
            name: image.name.clone().unwrap_or_else(|| id.clone()),
            id,
        }),
        Err(e) => pages::error_page(&e),
    }
}

/// `POST /console/images/{id}/delete`.
pub async fn delete(
    State(svc): State<Services>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<Confirm>,
) -> Response {
    if let Err(refused) = session.check(&headers, f.csrf.as_deref()) {
        return refused.into_response();
    }
    match svc.images.delete(&session.who, &id).await {
        Ok(()) => Redirect::to("/console/images").into_response(),
        Err(e) => after_action(&svc, &session, &id, Err(e)).await,
    }
}
