//! Volumes in the ZStack dialect, and templates made from them: VolumeInventory, QueryVolume
//! conditions pushed to SQL ([`ims_domain::volume::search::FIELDS`]), one function per API
//! (shared by REST and RPC, like `ops`), the REST routes and the RPC dispatch.
//!
//! Every ims volume is a ZStack `Data` volume on the one primary storage, `Enabled`, never
//! attached (ims has no VMs yet), so `vmInstanceUuid`, `deviceId` and the attach dates are
//! absent, as Gson leaves out null fields. CreateRootVolumeTemplateFromRootVolume takes
//! the root volume of a Workspace image server (captured through the server) and refuses
//! any other volume with SYS.1007, as ZStack does for a data volume.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post, put};
use ims_domain::image::ImageStatus;
use ims_domain::principal::Principal;
use ims_domain::query::{Condition, Op};
use ims_domain::volume::{NewImageFromVolume, NewVolume, Volume, VolumePatch, VolumeStatus};
use serde_json::{Map, Value, json};

use crate::Zs;
use crate::auth::Caller;
use crate::calls;
use crate::error::{ZsError, ZsResult};
use crate::inventory::PRIMARY_STORAGE_UUID;
use crate::ops::{Api, Outcome, Params, check_backup_storage};
use crate::query::{self, Request, bad_op, cond, texts, uuids};
use crate::rest::{action, answer, body_object, job_header, ok, section};
use crate::wire::{date, ims_id, resource_id, resource_uuid, zs_uuid};

/// The volume APIs (package `org.zstack.header.volume`).
pub(crate) fn is_volume_api(a: Api) -> bool {
    matches!(
        a,
        Api::QueryVolume
            | Api::CreateDataVolume
            | Api::CreateDataVolumeFromVolumeTemplate
            | Api::UpdateVolume
            | Api::DeleteDataVolume
            | Api::RecoverDataVolume
            | Api::ExpungeDataVolume
            | Api::ResizeDataVolume
    )
}

/// The image APIs that make a template from a volume (answered through an ims job).
pub(crate) fn is_template_api(a: Api) -> bool {
    matches!(
        a,
        Api::CreateDataVolumeTemplateFromVolume | Api::CreateRootVolumeTemplateFromRootVolume
    )
}

// ---- inventory ----

/// ZStack's volume status of an ims status (an ims `error` volume holds nothing, which
/// ZStack calls NotInstantiated).
fn status(s: VolumeStatus) -> &'static str {
    match s {
        VolumeStatus::Creating => "Creating",
        VolumeStatus::Ready => "Ready",
        VolumeStatus::Deleted | VolumeStatus::Expunged => "Deleted",
        VolumeStatus::Error => "NotInstantiated",
    }
}

/// The ims statuses a ZStack volume status stands for; `None` for an unknown name.
fn ims_statuses(s: &str) -> Option<&'static [&'static str]> {
    Some(match s {
        "Creating" => &["creating"],
        "Ready" => &["ready"],
        "Deleted" => &["deleted"],
        "NotInstantiated" => &["error"],
        "Migrating" | "Expunging" => &[],
        _ => return None,
    })
}

/// A VolumeInventory.
async fn inventory(zs: &Zs, v: &Volume) -> ZsResult<Value> {
    let install_path = match (&v.location, v.status.holds_data()) {
        (Some(l), true) => zs.settings.volume_dir.join(l).display().to_string(),
        _ => String::new(),
    };
    let mut inv = json!({
        "uuid": v.id.simple(),
        "name": v.name,
        "description": v.description,
        "primaryStorageUuid": PRIMARY_STORAGE_UUID,
        "installPath": install_path,
        "type": "Data",
        "format": v.format.as_str(),
        "size": v.size,
        "actualSize": zs.services.volumes.actual_size(v).await?,
        "state": "Enabled",
        "status": status(v.status),
        "createDate": date(v.created_at),
        "lastOpDate": date(v.updated_at),
        "isShareable": false,
    });
    if let (Some(img), Some(obj)) = (v.source_image, inv.as_object_mut()) {
        obj.insert("rootImageUuid".into(), zs_uuid(&img.to_string()).into());
    }
    Ok(inv)
}

async fn inventory_body(zs: &Zs, v: &Volume) -> ZsResult<Outcome> {
    Ok(Outcome::Done(
        json!({ "inventory": inventory(zs, v).await? }),
    ))
}

// ---- QueryVolume ----

/// A condition every volume meets (`all`) or none does.
fn constant(all: bool) -> ZsResult<Condition> {
    cond("id", if all { Op::NotNull } else { Op::IsNull }, Vec::new())
}

/// A field whose one value every ims volume has (`type=Data`, `state=Enabled`, the one
/// primary storage): `=`/`!=`/`?=`/`!?=` become all or nothing.
fn fixed(field: &str, op: Op, value: &str, actual: &str) -> ZsResult<Condition> {
    let hit = value.split(',').any(|v| v == actual);
    match op {
        Op::Eq | Op::In => constant(hit),
        Op::Ne | Op::NotIn => constant(!hit),
        _ => Err(bad_op(field, op)),
    }
}

fn column(field: &str) -> Option<&'static str> {
    Some(match field {
        "uuid" => "id",
        "name" => "name",
        "description" => "description",
        "size" => "size",
        "format" => "format",
        "status" => "status",
        "rootImageUuid" => "source_image",
        "createDate" => "created_at",
        "lastOpDate" => "updated_at",
        _ => return None,
    })
}

/// One VolumeInventory condition as a domain condition.
fn volume_condition(field: &str, op: Op, value: &str) -> ZsResult<Condition> {
    match field {
        "uuid" | "rootImageUuid" => cond(column(field).unwrap_or("id"), op, uuids(op, value)),
        "status" => query::enumerated(field, "status", op, value, |v| {
            ims_statuses(v).map(|s| s.iter().map(|x| x.to_string()).collect())
        }),
        "type" => fixed(field, op, value, "Data"),
        "state" => fixed(field, op, value, "Enabled"),
        "primaryStorageUuid" => fixed(field, op, value, PRIMARY_STORAGE_UUID),
        "isShareable" => fixed(field, op, value, "false"),
        "createDate" | "lastOpDate" => {
            query::date_condition(field, column(field).unwrap_or_default(), op, value)
        }
        other => {
            let col = column(other).ok_or_else(|| {
                ZsError::invalid(format!(
                    "condition name[{other}] is not a field of VolumeInventory or not queryable"
                ))
            })?;
            cond(col, op, texts(op, value))
        }
    }
}

/// Sortable VolumeInventory fields.
fn volume_sort_field(field: &str) -> ZsResult<&'static str> {
    column(field)
        .filter(|c| *c != "source_image")
        .ok_or_else(|| {
            ZsError::invalid(format!(
                "sort field[{field}] is not a field of VolumeInventory"
            ))
        })
}

/// QueryVolume (and `GET /volumes/{uuid}`): conditions, order and page in one SQL query.
pub(crate) async fn query_volumes(zs: &Zs, who: &Principal, req: &Request) -> ZsResult<Value> {
    let found = zs
        .services
        .volumes
        .search(who, &req.query(volume_condition, volume_sort_field)?)
        .await?;
    let mut body = Map::new();
    if !req.count {
        let mut invs = Vec::with_capacity(found.items.len());
        for v in &found.items {
            invs.push(crate::inventory::project(
                inventory(zs, v).await?,
                &req.fields,
            ));
        }
        body.insert("inventories".into(), invs.into());
    }
    if let Some(total) = found.total {
        body.insert("total".into(), total.into());
    }
    Ok(Value::Object(body))
}

// ---- volume mutations ----

/// A volume uuid of a path or parameter as an ims id; anything else names no volume.
fn volume_id(s: &str) -> ZsResult<String> {
    ims_id(s).ok_or_else(|| {
        ZsError::api(
            "SYS.1003",
            format!("invalid field[uuid], resource[uuid:{s}, type:VolumeVO] not found"),
        )
    })
}

/// A size in bytes (a JSON number or a numeric string, as Gson reads a `long`).
fn bytes(p: &Params<'_>, key: &str) -> ZsResult<Option<u64>> {
    let bad = |v: &Value| {
        ZsError::invalid(format!(
            "field[{key}] must be a positive number of bytes, but {v} found"
        ))
    };
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| bad(v)),
        Some(v @ Value::String(s)) => s
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| bad(v)),
        Some(other) => Err(ZsError::bad_request(format!(
            "Invalid value for field[{key}]: {other} is not a number"
        ))),
    }
}

/// `primaryStorageUuid`, if given, must be ims's one primary storage.
fn check_primary_storage(p: &Params<'_>) -> ZsResult<()> {
    match p.text("primaryStorageUuid", 32)? {
        Some(ps) if ps != PRIMARY_STORAGE_UUID => Err(ZsError::api(
            "SYS.1003",
            format!(
                "invalid field[primaryStorageUuid], resource[uuid:{ps}, type:PrimaryStorageVO] not found"
            ),
        )),
        _ => Ok(()),
    }
}

/// The `resourceUuid` a caller chose for a new resource, as an ims id.
fn resource<T>(p: &Params<'_>, parse: impl Fn(&str) -> Option<T>) -> ZsResult<Option<T>> {
    match p.text("resourceUuid", 255)? {
        Some(r) => Ok(Some(parse(&resource_uuid(&r)?).ok_or_else(|| {
            ZsError::invalid(format!("resourceUuid[{r}] is not a uuid"))
        })?)),
        None => Ok(None),
    }
}

/// The name, description and `resourceUuid` of a new volume.
fn new_volume(p: &Params<'_>) -> ZsResult<NewVolume> {
    let id = resource(p, ims_domain::volume::VolumeId::parse)?;
    Ok(NewVolume {
        id,
        name: p.required("name", 255)?,
        description: p.text("description", 2048)?,
        size: None,
        format: None,
    })
}

/// CreateDataVolume: a blank qcow2 volume of `diskSize` bytes, Ready at once.
async fn create_data_volume(zs: &Zs, who: &Principal, p: &Params<'_>) -> ZsResult<Outcome> {
    let mut req = new_volume(p)?;
    if p.text("diskOfferingUuid", 255)?.is_some() {
        return Err(ZsError::api(
            "SYS.1014",
            "disk offerings are not supported; give diskSize",
        ));
    }
    req.size = Some(bytes(p, "diskSize")?.ok_or_else(|| p.mandatory("diskSize"))?);
    check_primary_storage(p)?;
    let v = zs.services.volumes.create_blank(who, req).await?;
    inventory_body(zs, &v).await
}

/// CreateDataVolumeFromVolumeTemplate: an overlay on a Ready, Enabled DataVolumeTemplate.
async fn create_from_template(
    zs: &Zs,
    who: &Principal,
    image_uuid: &str,
    p: &Params<'_>,
) -> ZsResult<Outcome> {
    let req = new_volume(p)?;
    check_primary_storage(p)?;
    let image_id = resource_id(image_uuid)?;
    let img = zs.services.images.get(who, &image_id).await?;
    let media = crate::inventory::media_type(&img);
    if media != "DataVolumeTemplate" {
        return Err(ZsError::invalid(format!(
            "image[uuid:{}] is not a DataVolumeTemplate, it's {media}",
            zs_uuid(&image_id)
        )));
    }
    if img.status != ImageStatus::Active {
        return Err(ZsError::api(
            "SYS.1006",
            format!(
                "image[uuid:{}] is not Enabled and Ready: it is {} and {}",
                zs_uuid(&image_id),
                if img.status == ImageStatus::Deactivated {
                    "Disabled"
                } else {
                    "Enabled"
                },
                crate::inventory::status(img.status)
            ),
        ));
    }
    let v = zs
        .services
        .volumes
        .create_from_image(who, &image_id, req)
        .await?;
    inventory_body(zs, &v).await
}

/// UpdateVolume.
async fn update_volume(zs: &Zs, who: &Principal, uuid: &str, p: &Params<'_>) -> ZsResult<Outcome> {
    let patch = VolumePatch {
        name: p.text("name", 255)?,
        description: p.text("description", 2048)?,
    };
    let v = zs
        .services
        .volumes
        .update(who, &volume_id(uuid)?, patch)
        .await?;
    inventory_body(zs, &v).await
}

/// DeleteDataVolume (delay policy): `Deleted`, recoverable. A missing uuid succeeds (as in
/// ZStack); an already deleted volume is SYS.1006.
async fn delete_volume(zs: &Zs, who: &Principal, uuid: &str) -> ZsResult<Outcome> {
    let Some(id) = ims_id(uuid) else {
        return Ok(Outcome::Done(json!({})));
    };
    let volumes = &zs.services.volumes;
    match volumes.get(who, &id).await {
        Err(ims_domain::Error::NotFound { .. }) => return Ok(Outcome::Done(json!({}))),
        Err(e) => return Err(e.into()),
        Ok(v) if v.status == VolumeStatus::Deleted => {
            return Err(ZsError::api(
                "SYS.1006",
                format!("volume[uuid:{}] is already Deleted", v.id.simple()),
            ));
        }
        Ok(_) => {}
    }
    volumes.delete(who, &id).await?;
    Ok(Outcome::Done(json!({})))
}

/// RecoverDataVolume.
async fn recover_volume(zs: &Zs, who: &Principal, uuid: &str) -> ZsResult<Outcome> {
    let v = zs.services.volumes.recover(who, &volume_id(uuid)?).await?;
    inventory_body(zs, &v).await
}

/// ExpungeDataVolume.
async fn expunge_volume(zs: &Zs, who: &Principal, uuid: &str) -> ZsResult<Outcome> {
    zs.services.volumes.expunge(who, &volume_id(uuid)?).await?;
    Ok(Outcome::Done(json!({})))
}

/// ResizeDataVolume: grows only.
async fn resize_volume(zs: &Zs, who: &Principal, uuid: &str, p: &Params<'_>) -> ZsResult<Outcome> {
    let size = bytes(p, "size")?.ok_or_else(|| p.mandatory("size"))?;
    let v = zs
        .services
        .volumes
        .resize(who, &volume_id(uuid)?, size)
        .await?;
    inventory_body(zs, &v).await
}

// ---- templates from volumes ----

/// CreateRootVolumeTemplateFromRootVolume: the root volume of an image server is captured
/// through the server (its guest paused while the disk is read), the same durable job as
/// Workspace's recreate-image; any other volume is a data volume (SYS.1007).
async fn capture_root_volume(
    zs: &Zs,
    who: &Principal,
    volume: &str,
    name: String,
    description: Option<String>,
    image_id: Option<ims_domain::image::ImageId>,
) -> ZsResult<Outcome> {
    let image_id = image_id.unwrap_or_default();
    let req = ims_domain::server::NewCapture {
        name,
        description,
        execute_sysprep: false,
        image_id: Some(image_id),
    };
    let (_, job) = zs
        .services
        .servers
        .capture_root_volume(who, volume, req)
        .await?;
    Ok(Outcome::Job {
        job_id: job.id,
        image_id: image_id.to_string(),
    })
}

/// CreateDataVolumeTemplateFromVolume (the root variant goes to [`capture_root_volume`]):
/// the image (`url` `volume://<volume uuid>`, DataVolumeTemplate) and the
/// durable job streaming the volume's flattened content into it.
async fn create_template(
    zs: &Zs,
    who: &Principal,
    api: Api,
    volume_uuid: &str,
    p: &Params<'_>,
    user_tags: Vec<String>,
) -> ZsResult<Outcome> {
    let name = p.required("name", 255)?;
    let description = p.text("description", 2048)?;
    let image_id = resource(p, ims_domain::image::ImageId::parse)?;
    check_backup_storage(&p.strings("backupStorageUuids")?.unwrap_or_default())?;
    p.strings("tagUuids")?;
    let vid = volume_id(volume_uuid)?;
    if api == Api::CreateRootVolumeTemplateFromRootVolume {
        return capture_root_volume(zs, who, &vid, name, description, image_id).await;
    }
    let volume = zs.services.volumes.get(who, &vid).await?;
    if volume.status != VolumeStatus::Ready {
        return Err(ZsError::api(
            "SYS.1006",
            format!(
                "volume[uuid:{}] is not Ready, it's {}",
                volume.id.simple(),
                status(volume.status)
            ),
        ));
    }
    let mut req = NewImageFromVolume {
        image_id,
        name,
        description,
        tags: user_tags,
        discard_on_failure: true,
        ..NewImageFromVolume::default()
    };
    req.properties.insert(
        "zstack_url".into(),
        format!("volume://{}", volume.id.simple()),
    );
    let (image, job) = zs.services.volumes.create_image(who, &vid, req).await?;
    Ok(Outcome::Job {
        job_id: job.id,
        image_id: image.id.to_string(),
    })
}

/// The result of a template's job: `{"inventory", "success": true}` (the seed's shape), or
/// SYS.1006 (the failed job removed the image: ZStack rolls the row back).
pub(crate) async fn finish_template(
    zs: &Zs,
    who: &Principal,
    image_id: &str,
    job: &ims_domain::job::Job,
) -> ZsResult<Value> {
    let reason = job.fail_reason.as_deref().unwrap_or("the copy failed");
    let done = |img: &ims_domain::image::Image| {
        json!({
            "inventory": crate::inventory::image(img, &zs.settings),
            "success": true,
        })
    };
    crate::ops::finish_image_job(zs, who, image_id, job, done, || {
        ZsError::api(
            "SYS.1006",
            format!(
                "failed to create data volume template[uuid:{}] on all backup storage: {reason}",
                zs_uuid(image_id),
            ),
        )
    })
    .await
}

/// The operation of a mutating volume or template API; `uuid` is the resource the path
/// (or the RPC message) names.
async fn operate(
    zs: &Zs,
    who: &Principal,
    api: Api,
    uuid: &str,
    p: &Params<'_>,
    user_tags: Vec<String>,
) -> ZsResult<Outcome> {
    match api {
        Api::CreateDataVolume => create_data_volume(zs, who, p).await,
        Api::CreateDataVolumeFromVolumeTemplate => create_from_template(zs, who, uuid, p).await,
        Api::UpdateVolume => update_volume(zs, who, uuid, p).await,
        Api::DeleteDataVolume => delete_volume(zs, who, uuid).await,
        Api::RecoverDataVolume => recover_volume(zs, who, uuid).await,
        Api::ExpungeDataVolume => expunge_volume(zs, who, uuid).await,
        Api::ResizeDataVolume => resize_volume(zs, who, uuid, p).await,
        _ => create_template(zs, who, api, uuid, p, user_tags).await,
    }
}

/// `userTags` of a body: a list of strings (absent is none).
fn user_tags(body: &Map<String, Value>) -> ZsResult<Vec<String>> {
    match body.get("userTags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ZsError::bad_request("userTags must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(ZsError::bad_request("userTags must be a list of strings")),
    }
}

// ---- REST ----

pub(crate) fn routes() -> Router<Zs> {
    let m = |r: MethodRouter<Zs>| r.fallback(crate::rest::method_not_allowed);
    Router::new()
        .route("/zstack/v1/volumes", m(get(rest_query)))
        .route("/zstack/v1/volumes/data", m(post(rest_create_blank)))
        .route(
            "/zstack/v1/volumes/data/from/data-volume-templates/{uuid}",
            m(post_params(Api::CreateDataVolumeFromVolumeTemplate)),
        )
        .route(
            "/zstack/v1/volumes/{uuid}",
            m(get(rest_get).delete(rest_delete)),
        )
        .route(
            "/zstack/v1/volumes/{uuid}/actions",
            m(put_actions(&[
                (Api::UpdateVolume, "updateVolume"),
                (Api::RecoverDataVolume, "recoverDataVolume"),
                (Api::ExpungeDataVolume, "expungeDataVolume"),
            ])),
        )
        .route(
            "/zstack/v1/volumes/data/resize/{uuid}/actions",
            m(put_actions(&[(Api::ResizeDataVolume, "resizeDataVolume")])),
        )
        .route(
            "/zstack/v1/images/data-volume-templates/from/volumes/{uuid}",
            m(post_params(Api::CreateDataVolumeTemplateFromVolume)),
        )
        .route(
            "/zstack/v1/images/root-volume-templates/from/volumes/{uuid}",
            m(post_params(Api::CreateRootVolumeTemplateFromRootVolume)),
        )
}

/// `POST …/{uuid}` running `api` on the body's `params` and the path's resource.
fn post_params(api: Api) -> MethodRouter<Zs> {
    post(
        move |State(zs): State<Zs>,
              Caller(who): Caller,
              headers: HeaderMap,
              Path(uuid): Path<String>,
              body: Bytes| async move {
            let body = body_object(&body)?;
            run(&zs, &who, &headers, api, &uuid, &body, "params").await
        },
    )
}

/// `PUT …/{uuid}/actions` running the one of `actions` whose key the body has, on that
/// section of the body.
fn put_actions(actions: &'static [(Api, &'static str)]) -> MethodRouter<Zs> {
    put(
        move |State(zs): State<Zs>,
              Caller(who): Caller,
              headers: HeaderMap,
              OriginalUri(uri): OriginalUri,
              Path(uuid): Path<String>,
              body: Bytes| async move {
            let body = body_object(&body)?;
            let (api, key) = action(&body, &uri, actions)?;
            run(&zs, &who, &headers, api, &uuid, &body, key).await
        },
    )
}

async fn rest_query(
    State(zs): State<Zs>,
    Caller(who): Caller,
    RawQuery(raw): RawQuery,
) -> ZsResult<Response> {
    let req = query::rest(raw.as_deref())?;
    Ok(ok(query_volumes(&zs, &who, &req).await?))
}

async fn rest_get(
    State(zs): State<Zs>,
    Caller(who): Caller,
    Path(uuid): Path<String>,
    RawQuery(raw): RawQuery,
) -> ZsResult<Response> {
    let req = query::rest_one(raw.as_deref(), uuid)?;
    Ok(ok(query_volumes(&zs, &who, &req).await?))
}

/// Runs `api` as an api-job on the `params` (or action) section `key` of `body`.
async fn run(
    zs: &Zs,
    who: &Principal,
    headers: &HeaderMap,
    api: Api,
    uuid: &str,
    body: &Map<String, Value>,
    key: &str,
) -> ZsResult<Response> {
    let params = section(body, key)?;
    let p = Params::new(api, &params);
    let tags = user_tags(body)?;
    let a = calls::mutate(
        zs,
        who,
        api,
        job_header(headers)?,
        operate(zs, who, api, uuid, &p, tags),
    )
    .await?;
    Ok(answer(zs, headers, a))
}

async fn rest_create_blank(
    State(zs): State<Zs>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ZsResult<Response> {
    let body = body_object(&body)?;
    run(
        &zs,
        &who,
        &headers,
        Api::CreateDataVolume,
        "",
        &body,
        "params",
    )
    .await
}

async fn rest_delete(
    State(zs): State<Zs>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> ZsResult<Response> {
    let body = Map::new();
    run(
        &zs,
        &who,
        &headers,
        Api::DeleteDataVolume,
        &uuid,
        &body,
        "params",
    )
    .await
}

// ---- RPC ----

/// A volume or template API through the RPC envelope (the session already checked).
pub(crate) async fn rpc(zs: &Zs, who: &Principal, api: Api, msg: &Map<String, Value>) -> Response {
    use crate::rpc::sync;
    if api == Api::QueryVolume {
        return sync(
            api,
            async { query_volumes(zs, who, &query::rpc(msg)?).await }.await,
        );
    }
    let p = Params::new(api, msg);
    let key = match api {
        Api::CreateDataVolumeFromVolumeTemplate => "imageUuid",
        Api::CreateDataVolumeTemplateFromVolume => "volumeUuid",
        Api::CreateRootVolumeTemplateFromRootVolume => "rootVolumeUuid",
        _ => "uuid",
    };
    let uuid = p.text(key, 64).ok().flatten().unwrap_or_default();
    let tags = match user_tags(msg) {
        Ok(t) => t,
        Err(e) => return sync(api, Err(e)),
    };
    crate::rpc::mutate(zs, who, api, operate(zs, who, api, &uuid, &p, tags)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_domain::query::Value as QValue;

    #[test]
    fn statuses_map_both_ways() {
        for s in VolumeStatus::ALL {
            if *s == VolumeStatus::Expunged {
                continue;
            }
            let zs = status(*s);
            assert!(
                ims_statuses(zs).unwrap().contains(&s.as_str()),
                "{s} -> {zs}"
            );
        }
        assert!(ims_statuses("Bogus").is_none());
    }

    #[test]
    fn conditions_map_fields_and_refuse_unknown_ones() {
        let c = volume_condition("uuid", Op::Eq, "0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(c.field, "id");
        assert_eq!(
            c.values,
            vec![QValue::Text("01234567-89ab-cdef-0123-456789abcdef".into())]
        );
        let c = volume_condition("status", Op::Ne, "Ready").unwrap();
        assert_eq!((c.field.as_str(), c.op), ("status", Op::NotIn));
        let c = volume_condition("type", Op::Eq, "Root").unwrap();
        assert_eq!(c.op, Op::IsNull);
        let c = volume_condition("primaryStorageUuid", Op::Eq, PRIMARY_STORAGE_UUID).unwrap();
        assert_eq!(c.op, Op::NotNull);
        assert!(volume_condition("nosuch", Op::Eq, "1").is_err());
        assert!(volume_condition("status", Op::Like, "R%").is_err());
        assert!(volume_condition("createDate", Op::Gt, "yesterday").is_err());
    }
}
