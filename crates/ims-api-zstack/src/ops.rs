//! One function per ZStack API, shared by the REST and RPC front ends: parameters in
//! (a JSON object), one domain call, a result body out (REST shape).

use std::collections::BTreeMap;

use ims_domain::image::service::bucket_jobs::FileKind;
use ims_domain::image::service::{ImageChange, NewImageFromUrl};
use ims_domain::principal::Principal;
use serde_json::{Map, Value, json};

use crate::Zs;
use crate::error::{ZsError, ZsResult};
use crate::inventory::{self, BACKUP_STORAGE_UUID};
use crate::query::Request;
use crate::wire::{date, resource_id, resource_uuid, zs_uuid};

/// The APIs served. Volumes add their variants here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    LogInByAccount,
    LogOut,
    ValidateSession,
    QueryImage,
    QueryBackupStorage,
    QueryPrimaryStorage,
    AddImage,
    UpdateImage,
    ChangeImageState,
    DeleteImage,
    RecoverImage,
    ExpungeImage,
    // Volumes and templates from volumes (`volumes.rs`).
    QueryVolume,
    CreateDataVolume,
    CreateDataVolumeFromVolumeTemplate,
    UpdateVolume,
    DeleteDataVolume,
    RecoverDataVolume,
    ExpungeDataVolume,
    ResizeDataVolume,
    CreateDataVolumeTemplateFromVolume,
    CreateRootVolumeTemplateFromRootVolume,
}

const ALL: &[Api] = &[
    Api::LogInByAccount,
    Api::LogOut,
    Api::ValidateSession,
    Api::QueryImage,
    Api::QueryBackupStorage,
    Api::QueryPrimaryStorage,
    Api::AddImage,
    Api::UpdateImage,
    Api::ChangeImageState,
    Api::DeleteImage,
    Api::RecoverImage,
    Api::ExpungeImage,
    Api::QueryVolume,
    Api::CreateDataVolume,
    Api::CreateDataVolumeFromVolumeTemplate,
    Api::UpdateVolume,
    Api::DeleteDataVolume,
    Api::RecoverDataVolume,
    Api::ExpungeDataVolume,
    Api::ResizeDataVolume,
    Api::CreateDataVolumeTemplateFromVolume,
    Api::CreateRootVolumeTemplateFromRootVolume,
];

impl Api {
    /// The API name (`APIAddImageMsg` without `API` and `Msg`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::LogInByAccount => "LogInByAccount",
            Api::LogOut => "LogOut",
            Api::ValidateSession => "ValidateSession",
            Api::QueryImage => "QueryImage",
            Api::QueryBackupStorage => "QueryBackupStorage",
            Api::QueryPrimaryStorage => "QueryPrimaryStorage",
            Api::AddImage => "AddImage",
            Api::UpdateImage => "UpdateImage",
            Api::ChangeImageState => "ChangeImageState",
            Api::DeleteImage => "DeleteImage",
            Api::RecoverImage => "RecoverImage",
            Api::ExpungeImage => "ExpungeImage",
            Api::QueryVolume => "QueryVolume",
            Api::CreateDataVolume => "CreateDataVolume",
            Api::CreateDataVolumeFromVolumeTemplate => "CreateDataVolumeFromVolumeTemplate",
            Api::UpdateVolume => "UpdateVolume",
            Api::DeleteDataVolume => "DeleteDataVolume",
            Api::RecoverDataVolume => "RecoverDataVolume",
            Api::ExpungeDataVolume => "ExpungeDataVolume",
            Api::ResizeDataVolume => "ResizeDataVolume",
            Api::CreateDataVolumeTemplateFromVolume => "CreateDataVolumeTemplateFromVolume",
            Api::CreateRootVolumeTemplateFromRootVolume => "CreateRootVolumeTemplateFromRootVolume",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Api::LogInByAccount | Api::LogOut | Api::ValidateSession => {
                "org.zstack.header.identity"
            }
            Api::QueryBackupStorage => "org.zstack.header.storage.backup",
            Api::QueryPrimaryStorage => "org.zstack.header.storage.primary",
            a if crate::volumes::is_volume_api(a) => "org.zstack.header.volume",
            _ => "org.zstack.header.image",
        }
    }

    /// The Java message class (the RPC envelope's key).
    pub(crate) fn message_class(self) -> String {
        format!("{}.API{}Msg", self.package(), self.name())
    }

    /// The Java reply (sync) or event (async) class.
    pub(crate) fn reply_class(self) -> String {
        let name = match self {
            Api::LogInByAccount => "LogIn",
            other => other.name(),
        };
        let suffix = if self.is_mutation() { "Event" } else { "Reply" };
        format!("{}.API{name}{suffix}", self.package())
    }

    /// The API of a message class.
    pub(crate) fn of_class(class: &str) -> Option<Api> {
        ALL.iter().copied().find(|a| a.message_class() == class)
    }

    /// The API of a stored name.
    pub(crate) fn of_name(name: &str) -> Option<Api> {
        ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Asynchronous in ZStack (answered through an api-job).
    pub(crate) fn is_mutation(self) -> bool {
        matches!(
            self,
            Api::AddImage
                | Api::UpdateImage
                | Api::ChangeImageState
                | Api::DeleteImage
                | Api::RecoverImage
                | Api::ExpungeImage
        ) || (self != Api::QueryVolume && crate::volumes::is_volume_api(self))
            || crate::volumes::is_template_api(self)
    }
}

/// What a mutation did.
pub(crate) enum Outcome {
    /// Finished: the result body.
    Done(Value),
    /// A durable job is doing the work on an image.
    Job {
        /// The ims job.
        job_id: String,
        /// The image it fills.
        image_id: String,
    },
}

/// An API's parameters, read with ZStack's type rules.
pub(crate) struct Params<'a> {
    api: Api,
    map: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    pub(crate) fn new(api: Api, map: &'a Map<String, Value>) -> Self {
        Params { api, map }
    }

    pub(crate) fn mandatory(&self, key: &str) -> ZsError {
        ZsError::invalid(format!(
            "field[{key}] of message[{}] is mandatory, can not be null",
            self.api.message_class()
        ))
    }

    /// A text parameter of at most `max` characters.
    pub(crate) fn text(&self, key: &str, max: usize) -> ZsResult<Option<String>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > max {
                    return Err(ZsError::invalid(format!(
                        "field[{key}] of message[{}] exceeds max length of string. expected was <= {max}, actual was {}",
                        self.api.message_class(),
                        s.chars().count()
                    )));
                }
                Ok(Some(s.clone()))
            }
            Some(other) => Err(ZsError::bad_request(format!(
                "Invalid value for field[{key}]: {other} is not a string"
            ))),
        }
    }

    /// The raw value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    pub(crate) fn required(&self, key: &str, max: usize) -> ZsResult<String> {
        self.text(key, max)?.ok_or_else(|| self.mandatory(key))
    }

    /// One of `allowed`.
    fn choice(&self, key: &str, allowed: &[&str]) -> ZsResult<Option<String>> {
        let Some(v) = self.text(key, 255)? else {
            return Ok(None);
        };
        if !allowed.contains(&v.as_str()) {
            return Err(ZsError::invalid(format!(
                "valid value for field[{key}] of message[{}] are {allowed:?}, but {v} found",
                self.api.message_class()
            )));
        }
        Ok(Some(v))
    }

    pub(crate) fn boolean(&self, key: &str) -> ZsResult<Option<bool>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(other) => Err(ZsError::bad_request(format!(
                "Invalid value for boolean field[{key}], [{other}] is not a valid boolean string[true, false]."
            ))),
        }
    }

    pub(crate) fn strings(&self, key: &str) -> ZsResult<Option<Vec<String>>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ZsError::bad_request(format!(
                        "Invalid value in list field[{key}]: {other} is not a string"
                    ))),
                })
                .collect::<ZsResult<Vec<_>>>()
                .map(Some),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(other) => Err(ZsError::bad_request(format!(
                "Invalid value for list field[{key}]: {other}"
            ))),
        }
    }
}

const PLATFORMS: &[&str] = &[
    "Linux",
    "Windows",
    "Other",
    "Paravirtualization",
    "WindowsVirtio",
];
const MEDIA_TYPES: &[&str] = &["RootVolumeTemplate", "DataVolumeTemplate", "ISO"];
const ARCHITECTURES: &[&str] = &["x86_64", "aarch64", "mips64el", "loongarch64"];
const FORMATS: &[&str] = &["qcow2", "raw", "vmdk", "iso", "vhd", "vhdx", "vdi"];

/// The `__os_version` for a platform and guest OS type: the guest OS type when it is an
/// OS of that platform, else a generic one of the platform.
fn os_version(platform: &str, guest: Option<&str>) -> String {
    let platform = match platform {
        "Paravirtualization" => "Other",
        "WindowsVirtio" => "Windows",
        p => p,
    };
    if let Some(g) = guest.filter(|g| ims_domain::huawei::describe_os(g).os_type == platform) {
        return g.to_string();
    }
    match platform {
        "Windows" => "Windows Server 2019 Datacenter 64bit".into(),
        "Other" => "Other(64 bit)".into(),
        _ => ims_domain::huawei::DEFAULT_OS_VERSION.into(),
    }
}

/// The URL as stored for display: without the password of its user-info part.
fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

pub(crate) fn check_backup_storage(uuids: &[String]) -> ZsResult<()> {
    if let Some(bad) = uuids.iter().find(|u| u.as_str() != BACKUP_STORAGE_UUID) {
        return Err(ZsError::api(
            "SYS.1003",
            format!(
                "invalid field[backupStorageUuids], resource[uuid:{bad}, type:BackupStorageVO] not found"
            ),
        ));
    }
    Ok(())
}

/// `{"inventory": …}` of an image.
fn inventory(zs: &Zs, img: &ims_domain::image::Image) -> Value {
    json!({ "inventory": inventory::image(img, &zs.settings) })
}

// ---- sessions ----

/// LogInByAccount.
pub(crate) async fn login(zs: &Zs, p: &Params<'_>) -> ZsResult<Value> {
    let account = p.required("accountName", 255)?;
    let password = p.required("password", 255)?;
    let session = zs
        .sessions
        .login(&account, &password)
        .await
        .map_err(|e| match e {
            ims_domain::Error::Unauthenticated(m) | ims_domain::Error::Throttled(m) => {
                ZsError::api("ID.1000", m)
            }
            ims_domain::Error::QuotaExceeded(m) => ZsError::api("ID.1006", m),
            other => other.into(),
        })?;
    let r = &session.record;
    Ok(json!({"inventory": {
        "uuid": session.id,
        "accountUuid": zs_uuid(&r.project_id),
        "userUuid": zs_uuid(&r.user_id),
        "userType": "AccountVO",
        "expiredDate": date(r.expires_at),
        "createDate": date(r.created_at),
    }}))
}

/// LogOut.
pub(crate) async fn logout(zs: &Zs, session: &str) -> ZsResult<Value> {
    zs.sessions.logout(session).await?;
    Ok(json!({}))
}

/// ValidateSession.
pub(crate) async fn validate(zs: &Zs, session: &str) -> ZsResult<bool> {
    Ok(zs.sessions.is_valid(session).await.unwrap_or(false))
}

// ---- queries ----

/// QueryImage (and `GET /images/{uuid}`).
pub(crate) async fn query_images(zs: &Zs, who: &Principal, req: &Request) -> ZsResult<Value> {
    let query = req.images()?;
    let found = zs.services.images.search(who, &query).await?;
    let mut body = Map::new();
    if !req.count {
        let invs: Vec<Value> = found
            .items
            .iter()
            .map(|i| inventory::project(inventory::image(i, &zs.settings), &req.fields))
            .collect();
        body.insert("inventories".into(), invs.into());
    }
    if let Some(total) = found.total {
        body.insert("total".into(), total.into());
    }
    Ok(Value::Object(body))
}

/// QueryBackupStorage / QueryPrimaryStorage: the one storage, if it meets the
/// conditions.
pub(crate) fn query_storage(zs: &Zs, primary: bool, req: &Request) -> ZsResult<Value> {
    let inv = if primary {
        inventory::primary_storage(&zs.settings)
    } else {
        inventory::backup_storage(&zs.settings)
    };
    let matched = req.matches(&inv)? && req.start == 0 && req.limit > 0;
    let mut body = Map::new();
    if !req.count {
        let list: Vec<Value> = if matched {
            vec![inventory::project(inv, &req.fields)]
        } else {
            Vec::new()
        };
        body.insert("inventories".into(), list.into());
    }
    if req.count || req.reply_with_count {
        body.insert("total".into(), u64::from(matched).into());
    }
    Ok(Value::Object(body))
}

// ---- image mutations ----

/// AddImage: creates the image and starts its download (a durable job).
pub(crate) async fn add_image(zs: &Zs, who: &Principal, p: &Params<'_>) -> ZsResult<Outcome> {
    let name = p.required("name", 255)?;
    let url = p.required("url", 1024)?;
    let media = p
        .choice("mediaType", MEDIA_TYPES)?
        .unwrap_or_else(|| "RootVolumeTemplate".into());
    let format = match (media.as_str(), p.text("format", 255)?) {
        ("ISO", _) => "iso".to_string(),
        (_, Some(f)) if FORMATS.contains(&f.as_str()) => f,
        (_, Some(f)) => return Err(ZsError::invalid(format!("unknown format[{f}]"))),
        (_, None) => return Err(p.mandatory("format")),
    };
    let source = image_source(&url)?;
    let bs = p.strings("backupStorageUuids")?.unwrap_or_default();
    if bs.is_empty() {
        return Err(ZsError::invalid(
            "field[backupStorageUuids] must be a nonempty list",
        ));
    }
    check_backup_storage(&bs)?;
    let platform = p
        .choice("platform", PLATFORMS)?
        .unwrap_or_else(|| "Linux".into());
    let guest = p.text("guestOsType", 255)?;
    let mut attrs: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(id) = p.text("resourceUuid", 255)? {
        attrs.insert("id".into(), resource_uuid(&id)?.into());
    }
    attrs.insert("name".into(), name.into());
    attrs.insert("disk_format".into(), format.into());
    attrs.insert("container_format".into(), "bare".into());
    attrs.insert(
        "__os_version".into(),
        os_version(&platform, guest.as_deref()).into(),
    );
    if let Some(env) = inventory::env_type(&media) {
        attrs.insert("virtual_env_type".into(), env.into());
    }
    if let Some(d) = p.text("description", 2048)? {
        attrs.insert("__description".into(), d.into());
    }
    if let Some(a) = p.choice("architecture", ARCHITECTURES)? {
        attrs.insert("architecture".into(), a.into());
    }
    if let Some(s) = p.boolean("system")? {
        if s && media == "ISO" {
            return Err(ZsError::invalid("an ISO cannot be a system image"));
        }
        attrs.insert("zstack_system".into(), s.to_string().into());
    }
    if let Some(v) = p.boolean("virtio")? {
        attrs.insert("zstack_virtio".into(), v.to_string().into());
    }
    attrs.insert("zstack_url".into(), display_url(&url).into());
    let images = &zs.services.images;
    let (image, job_id) = match source {
        ImageSource::Web => {
            let req = NewImageFromUrl {
                attributes: attrs,
                url,
                request_id: None,
            };
            images.create_from_url(who, req).await?
        }
        ImageSource::Bucket => {
            let kind = match media.as_str() {
                "ISO" => FileKind::Iso,
                "DataVolumeTemplate" => FileKind::Data,
                _ => FileKind::System,
            };
            images.create_from_object(who, attrs, &url, kind).await?
        }
    };
    Ok(Outcome::Job {
        job_id,
        image_id: image.id.to_string(),
    })
}

/// Where AddImage reads an image from.
enum ImageSource {
    /// An http(s) URL, fetched like every web-download (the outbound address filter).
    Web,
    /// `bucket:object` in one of ims's buckets the caller may read (as IMS's imports).
    Bucket,
}

/// Which source `url` names: http(s), or a bucket object (`bucket:object`, no scheme);
/// any other scheme (ZStack's `file://`, `ftp://`, `sftp://`, `upload://`, bare paths)
/// is refused, since ims never reads host paths named by a caller.
fn image_source(url: &str) -> ZsResult<ImageSource> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(ImageSource::Web)
    } else if !url.contains("://") && !url.starts_with('/') && url.contains(':') {
        Ok(ImageSource::Bucket)
    } else {
        Err(ZsError::invalid(format!(
            "url must start with 'http://' or 'https://' or name a bucket object as \
             'bucket:object', but got [{url}]"
        )))
    }
}

/// The result of AddImage's job: the image's inventory, or SYS.1002 (the failed job
/// removed the image: ZStack's AddImage is all-or-nothing).
pub(crate) async fn finish_add_image(
    zs: &Zs,
    who: &Principal,
    image_id: &str,
    job: &ims_domain::job::Job,
) -> ZsResult<Value> {
    let reason = job.fail_reason.as_deref().unwrap_or("the download failed");
    finish_image_job(zs, who, image_id, job, |img| inventory(zs, img), || {
        ZsError::api(
            "SYS.1002",
            format!(
                "Failed to download image[uuid:{}] on all backup storage[{BACKUP_STORAGE_UUID}]: {reason}",
                zs_uuid(image_id),
            ),
        )
    })
    .await
}

/// The result of a job that fills a new image: `done` of the image on success, else
/// `failed()`. The job was started all or nothing, so its failure removed the image
/// (ZStack rolls the row back when the copy fails), polled or not.
pub(crate) async fn finish_image_job(
    zs: &Zs,
    who: &Principal,
    image_id: &str,
    job: &ims_domain::job::Job,
    done: impl FnOnce(&ims_domain::image::Image) -> Value,
    failed: impl FnOnce() -> ZsError,
) -> ZsResult<Value> {
    if job.status == ims_domain::job::JobStatus::Success {
        let img = zs.services.images.get(who, image_id).await?;
        return Ok(done(&img));
    }
    Err(failed())
}

/// UpdateImage.
pub(crate) async fn update_image(
    zs: &Zs,
    who: &Principal,
    uuid: &str,
    p: &Params<'_>,
) -> ZsResult<Outcome> {
    let id = resource_id(uuid)?;
    let mut changes = Vec::new();
    let mut set = |k: &str, v: Value| changes.push(ImageChange::Add(k.into(), v));
    if let Some(n) = p.text("name", 255)? {
        set("name", n.into());
    }
    if let Some(d) = p.text("description", 2048)? {
        set("__description", d.into());
    }
    let guest = p.text("guestOsType", 255)?;
    let platform = p.choice("platform", PLATFORMS)?;
    if platform.is_some() || guest.is_some() {
        let current = zs.services.images.get(who, &id).await?;
        let platform = platform
            .or_else(|| current.properties.get("__os_type").cloned())
            .unwrap_or_else(|| "Linux".into());
        set(
            "__os_version",
            os_version(&platform, guest.as_deref()).into(),
        );
    }
    if let Some(m) = p.choice("mediaType", MEDIA_TYPES)? {
        let env = inventory::env_type(&m).unwrap_or("FusionCompute");
        set("virtual_env_type", env.into());
    }
    if let Some(f) = p.choice("format", &["raw", "qcow2", "iso"])? {
        set("disk_format", f.into());
    }
    if let Some(a) = p.choice("architecture", ARCHITECTURES)? {
        set("architecture", a.into());
    }
    if let Some(s) = p.boolean("system")? {
        set("zstack_system", s.to_string().into());
    }
    if let Some(v) = p.boolean("virtio")? {
        set("zstack_virtio", v.to_string().into());
    }
    let img = zs.services.images.update(who, &id, changes).await?;
    Ok(Outcome::Done(inventory(zs, &img)))
}

/// ChangeImageState: enable ↔ ims `active`, disable ↔ ims `deactivated`.
pub(crate) async fn change_image_state(
    zs: &Zs,
    who: &Principal,
    uuid: &str,
    p: &Params<'_>,
) -> ZsResult<Outcome> {
    let id = resource_id(uuid)?;
    let event = p
        .choice("stateEvent", &["enable", "disable"])?
        .ok_or_else(|| p.mandatory("stateEvent"))?;
    let images = &zs.services.images;
    if event == "enable" {
        images.reactivate(who, &id).await?;
    } else {
        images.deactivate(who, &id).await?;
    }
    Ok(Outcome::Done(inventory(zs, &images.get(who, &id).await?)))
}

/// Whether a 32-hex string looks like an RFC 4122 UUID (version 1–5, variant 8–b):
/// ZStack deletes such a missing uuid successfully.
fn rfc4122(hex: &str) -> bool {
    let b = hex.as_bytes();
    hex.len() == 32
        && (b'1'..=b'5').contains(&b[12])
        && matches!(b[16].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b')
}

/// DeleteImage (delay policy): the image becomes `Deleted` (ims `pending_delete`).
pub(crate) async fn delete_image(zs: &Zs, who: &Principal, uuid: &str) -> ZsResult<Outcome> {
    let id = resource_id(uuid)?;
    match zs.services.images.soft_delete(who, &id).await {
        Ok(()) => Ok(Outcome::Done(json!({}))),
        Err(ims_domain::Error::NotFound { .. }) if rfc4122(&zs_uuid(&id)) => {
            Ok(Outcome::Done(json!({})))
        }
        Err(e) => Err(e.into()),
    }
}

/// RecoverImage.
pub(crate) async fn recover_image(
    zs: &Zs,
    who: &Principal,
    uuid: &str,
    p: &Params<'_>,
) -> ZsResult<Outcome> {
    let id = resource_id(uuid)?;
    check_backup_storage(&p.strings("backupStorageUuids")?.unwrap_or_default())?;
    let img = zs.services.images.recover(who, &id).await?;
    Ok(Outcome::Done(inventory(zs, &img)))
}

/// ExpungeImage.
pub(crate) async fn expunge_image(
    zs: &Zs,
    who: &Principal,
    uuid: &str,
    p: &Params<'_>,
) -> ZsResult<Outcome> {
    let id = resource_id(uuid)?;
    check_backup_storage(&p.strings("backupStorageUuids")?.unwrap_or_default())?;
    zs.services.images.expunge(who, &id).await?;
    Ok(Outcome::Done(json!({})))
}
