//! IMS handlers: authenticate, make one domain call, render (`update_image` and the job
//! views make more than one; see the crate doc).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ims_domain::image::ImageStatus;
use ims_domain::service::{
    DataImageFromFile, ImageCopy, ImageExport, SystemImageFromFile, SystemImageType,
};
use ims_domain::volume::NewImageFromVolume;
use ims_http::{Services, list_query};
use serde::Deserialize;
use serde_json::Value;

use crate::convert;
use crate::error::ImsError;
use crate::extract::Signed;

type Res<T> = Result<T, ImsError>;

/// The body of `POST /v1/cloudimages/dataimages/action` (seed 000). Other fields, such
/// as `enterprise_project_id` (ims has no enterprise projects), are accepted and ignored.
#[derive(Deserialize)]
pub struct DataImageBody {
    name: String,
    description: Option<String>,
    os_type: Option<String>,
    image_url: String,
    min_disk: u64,
    cmk_id: Option<String>,
    tags: Option<Vec<String>>,
    image_tags: Option<Vec<convert::ImageTag>>,
}

/// `POST /v1/cloudimages/dataimages/action`: a data-disk image from a bucket file; the
/// answer is the job to poll.
pub async fn create_data_image(State(svc): State<Services>, caller: Signed) -> Res<Json<Value>> {
    let body: DataImageBody = caller.json()?;
    let tags = convert::tags(body.tags, body.image_tags)?;
    let req = DataImageFromFile {
        name: body.name,
        description: body.description,
        os_type: body.os_type,
        image_url: body.image_url,
        min_disk: body.min_disk,
        tags,
        cmk_id: body.cmk_id,
        quick: false,
    };
    let job = svc.images.create_data_image(&caller.who, req).await?;
    Ok(convert::job_started(&job))
}

/// The body of `POST /v2/cloudimages/action` (CreateImage). The file and volume modes
/// are served; the ECS and data-disk modes need compute this deployment lacks.
#[derive(Deserialize)]
pub struct CreateImageBody {
    name: Option<String>,
    description: Option<String>,
    image_url: Option<String>,
    min_disk: Option<u64>,
    min_ram: Option<u64>,
    os_version: Option<String>,
    cmk_id: Option<String>,
    #[serde(rename = "type")]
    image_type: Option<String>,
    architecture: Option<String>,
    hw_firmware_type: Option<String>,
    tags: Option<Vec<String>>,
    image_tags: Option<Vec<convert::ImageTag>>,
    #[serde(default)]
    is_quick_import: bool,
    instance_id: Option<String>,
    volume_id: Option<String>,
    data_images: Option<Vec<convert::DataImageEntry>>,
}

/// `POST /v2/cloudimages/action`: a system-disk or ISO image from a bucket file, or an
/// image from a volume (`volume_id`: a data-disk image, or a system-disk image when
/// `os_version` is given).
pub async fn create_image(State(svc): State<Services>, caller: Signed) -> Res<Json<Value>> {
    let body: CreateImageBody = caller.json()?;
    if body.instance_id.is_some() {
        return Err(ims_domain::Error::NotSupported(
            "Creating images from servers is not supported here.".into(),
        )
        .into());
    }
    if let Some(volume_id) = body.volume_id {
        if body.image_url.is_some() || body.data_images.is_some() {
            return Err(ImsError::bad_request(
                "volume_id cannot be combined with image_url or data_images.",
            ));
        }
        let req = NewImageFromVolume {
            image_id: None,
            name: body.name.unwrap_or_default(),
            description: body.description,
            os_version: body.os_version,
            min_disk: body.min_disk,
            tags: convert::tags(body.tags, body.image_tags)?,
            properties: Default::default(),
            cmk_id: body.cmk_id,
            discard_on_failure: false,
        };
        let (_, job) = svc
            .volumes
            .create_image(&caller.who, &volume_id, req)
            .await?;
        return Ok(convert::job_started(&job));
    }
    let (Some(image_url), Some(min_disk)) = (body.image_url, body.min_disk) else {
        return Err(ImsError::bad_request(
            "image_url and min_disk are required.",
        ));
    };
    let tags = convert::tags(body.tags, body.image_tags)?;
    let req = SystemImageFromFile {
        name: body.name.unwrap_or_default(),
        description: body.description,
        os_version: body.os_version,
        image_url,
        min_disk,
        min_ram: body.min_ram.unwrap_or(0),
        tags,
        cmk_id: body.cmk_id,
        image_type: SystemImageType::parse(body.image_type.as_deref())?,
        architecture: body.architecture,
        firmware: body.hw_firmware_type,
        quick: body.is_quick_import,
        data_images: convert::data_images(body.data_images.unwrap_or_default())?,
    };
    let job = svc.images.create_system_image(&caller.who, req).await?;
    Ok(convert::job_started(&job))
}

/// The body of `POST /v2/cloudimages/quickimport/action` (ImportImageQuick).
#[derive(Deserialize)]
pub struct QuickImportBody {
    name: String,
    description: Option<String>,
    os_version: Option<String>,
    image_url: String,
    min_disk: u64,
    license_type: Option<String>,
    #[serde(rename = "type")]
    image_type: Option<String>,
    os_type: Option<String>,
    architecture: Option<String>,
    hw_firmware_type: Option<String>,
    tags: Option<Vec<String>>,
    image_tags: Option<Vec<convert::ImageTag>>,
}

/// `POST /v2/cloudimages/quickimport/action`: a system (`type` ECS/BMS) or data
/// (`DataImage`) image from a RAW or ZVHD2 file of up to 1 TB.
pub async fn quick_import(State(svc): State<Services>, caller: Signed) -> Res<Json<Value>> {
    let body: QuickImportBody = caller.json()?;
    convert::check_license_type(body.license_type.as_deref())?;
    let tags = convert::tags(body.tags, body.image_tags)?;
    let job = if body.image_type.as_deref() == Some("DataImage") {
        let req = DataImageFromFile {
            name: body.name,
            description: body.description,
            os_type: body.os_type,
            image_url: body.image_url,
            min_disk: body.min_disk,
            tags,
            cmk_id: None,
            quick: true,
        };
        svc.images.create_data_image(&caller.who, req).await?
    } else {
        let req = SystemImageFromFile {
            name: body.name,
            description: body.description,
            os_version: body.os_version,
            image_url: body.image_url,
            min_disk: body.min_disk,
            min_ram: 0,
            tags,
            cmk_id: None,
            image_type: SystemImageType::parse(body.image_type.as_deref())?,
            architecture: body.architecture,
            firmware: body.hw_firmware_type,
            quick: true,
            data_images: Vec::new(),
        };
        svc.images.create_system_image(&caller.who, req).await?
    };
    Ok(convert::job_started(&job))
}

/// The body of `POST /v1/cloudimages/{image_id}/copy` (seed 003).
#[derive(Deserialize)]
pub struct CopyBody {
    name: String,
    description: Option<String>,
    cmk_id: Option<String>,
}

/// `POST /v1/cloudimages/{image_id}/copy`: a copy within the region; the answer is the job.
pub async fn copy_image(
    State(svc): State<Services>,
    Path(image_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    let body: CopyBody = caller.json()?;
    let req = ImageCopy {
        name: body.name,
        description: body.description,
        cmk_id: body.cmk_id,
    };
    let job = svc.images.copy_image(&caller.who, &image_id, req).await?;
    Ok(convert::job_started(&job))
}

/// `POST /v1/cloudimages/wholeimages/action` (CreateWholeImage): a full-server image
/// needs a server or a backup, neither of which exists here.
pub async fn whole_image(_caller: Signed) -> Res<Json<Value>> {
    Err(ims_domain::Error::NotSupported(
        "Full-server images (from an instance or a backup) are not supported here.".into(),
    )
    .into())
}

/// `POST /v1/cloudimages/{image_id}/cross_region_copy`: this deployment is one region.
pub async fn cross_region_copy(_caller: Signed) -> Res<Json<Value>> {
    Err(ims_domain::Error::NotSupported(
        "Cross-region copy is not supported: this deployment has one region.".into(),
    )
    .into())
}

/// The body of `POST /v1/cloudimages/{image_id}/file`.
#[derive(Deserialize)]
pub struct ExportBody {
    bucket_url: String,
    file_format: Option<String>,
    #[serde(default)]
    is_quick_export: bool,
}

/// `POST /v1/cloudimages/{image_id}/file`: export to a bucket object; the answer is the job.
pub async fn export_image(
    State(svc): State<Services>,
    Path(image_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    let body: ExportBody = caller.json()?;
    if body.is_quick_export {
        return Err(ims_domain::Error::NotSupported(
            "Quick export (ZVHD2) is not supported.".into(),
        )
        .into());
    }
    let req = ImageExport {
        bucket_url: body.bucket_url,
        file_format: body.file_format.unwrap_or_default(),
    };
    let job = svc.images.export_image(&caller.who, &image_id, req).await?;
    Ok(convert::job_started(&job))
}

/// `GET /v2/cloudimages`: Glance's filter syntax plus `__*` attributes, 500 per page by
/// default, `page_info.next_marker` when the page is full.
pub async fn list_images(
    State(svc): State<Services>,
    RawQuery(raw): RawQuery,
    caller: Signed,
) -> Res<Json<Value>> {
    let q = list_query::parse(raw.as_deref().unwrap_or(""), &list_query::IMS)?;
    let images = svc.images.list(&caller.who, &q).await?;
    let mut page_info = serde_json::json!({});
    if images.len() == q.limit as usize
        && let Some(last) = images.last()
    {
        page_info["next_marker"] = serde_json::json!(last.id.to_string());
    }
    Ok(Json(serde_json::json!({
        "images": images.iter().map(convert::image).collect::<Vec<_>>(),
        "page_info": page_info,
    })))
}

/// The body of `PUT /v1/cloudimages/{image_id}/upload`.
#[derive(Deserialize)]
pub struct RegisterBody {
    image_url: String,
}

/// `PUT /v1/cloudimages/{image_id}/upload` (RegisterImage): a bucket file becomes the data
/// of a queued image; the answer is the job.
pub async fn register_image(
    State(svc): State<Services>,
    Path(image_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    let body: RegisterBody = caller.json()?;
    let job = svc
        .images
        .register_image(&caller.who, &image_id, &body.image_url)
        .await?;
    Ok(convert::job_started(&job))
}

/// One operation of an UpdateImage body.
#[derive(Deserialize)]
pub struct PatchOp {
    op: String,
    path: String,
    value: Option<Value>,
}

/// `PATCH /v2/cloudimages/{image_id}` (UpdateImage): a JSON array of `add`/`replace`/
/// `remove` operations on an active image; the answer is the updated image. IMS's own
/// codes: `replace` of an attribute the image lacks is IMG.0035 (clients then retry with
/// `add`), an image that is not active IMG.0046.
pub async fn update_image(
    State(svc): State<Services>,
    Path(image_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    let ops: Vec<PatchOp> = caller.json()?;
    let image = svc.images.get(&caller.who, &image_id).await?;
    if image.status != ImageStatus::Active {
        return Err(ImsError::new(
            StatusCode::BAD_REQUEST,
            "IMG.0046",
            "Only active images can be updated.",
        ));
    }
    let changes = ops
        .into_iter()
        .map(|op| convert::patch_op(&image, op.op, op.path, op.value))
        .collect::<Res<Vec<_>>>()?;
    let updated = svc.images.update(&caller.who, &image_id, changes).await?;
    Ok(Json(convert::image(&updated)))
}

/// `GET /v1/cloudimages/quota`: the image quota of the caller's project.
pub async fn quota(State(svc): State<Services>, caller: Signed) -> Res<Json<Value>> {
    let (usage, quotas) = svc.images.usage(&caller.who).await?;
    Ok(Json(convert::quota(&usage, &quotas)))
}

/// `GET /v1/cloudimages/os_version`: the OS versions images may declare, by platform.
/// `?tag=` is accepted and does not narrow the list: every version suits every tag here.
pub async fn os_versions(_caller: Signed) -> Res<Json<Value>> {
    Ok(Json(
        convert::os_versions(ims_domain::huawei::os_versions()),
    ))
}

/// `GET /v1/cloudimages/job/{job_id}` (ShowJobProgress).
pub async fn job_progress(
    State(svc): State<Services>,
    Path(job_id): Path<String>,
    caller: Signed,
) -> Res<Json<Value>> {
    render_job(&svc, &caller, &job_id).await
}

/// `GET /v1/{project_id}/jobs/{job_id}` (ShowJob). The project must be the caller's; the
/// SDK's unsubstituted `{project_id}` placeholder means the caller's own.
pub async fn show_job(
    State(svc): State<Services>,
    Path((project_id, job_id)): Path<(String, String)>,
    caller: Signed,
) -> Res<Json<Value>> {
    check_project(&caller, &project_id)?;
    render_job(&svc, &caller, &job_id).await
}

/// A `{project_id}` path segment must be the caller's project; the SDK's unsubstituted
/// placeholder stands for it.
pub(crate) fn check_project(caller: &Signed, project_id: &str) -> Res<()> {
    if project_id != caller.who.project_id && project_id != "{project_id}" {
        return Err(ImsError::new(
            StatusCode::BAD_REQUEST,
            "IMG.0067",
            "The project ID in the path is not the caller's project.",
        ));
    }
    Ok(())
}

async fn render_job(svc: &Services, caller: &Signed, job_id: &str) -> Res<Json<Value>> {
    let (job, subs) = svc.images.job_report(&caller.who, job_id).await?;
    let image_of = async |job: &ims_domain::job::Job| match job.image_id() {
        Some(id) => svc.images.get(&caller.who, &id.to_string()).await.ok(),
        None => None,
    };
    let mut rendered = convert::job(&job, image_of(&job).await.as_ref());
    if !subs.is_empty() {
        let mut results = Vec::new();
        for sub in &subs {
            results.push(convert::job(sub, image_of(sub).await.as_ref()));
        }
        convert::attach_sub_jobs(&mut rendered, results);
    }
    Ok(Json(rendered))
}
