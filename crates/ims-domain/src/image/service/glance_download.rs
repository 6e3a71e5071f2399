//! `glance-download`: an image's data and boot metadata imported from an image of a
//! Glance catalog, named by region, interface and image id (Glance's
//! `glance_image_id`, `glance_region`, `glance_service_interface`).
//!
//! ims serves one region per deployment, and that region's image catalog is ims itself:
//! the job reads the source image in-process, as the importing caller would see it (the
//! caller's project and roles are recorded in the job and the visibility rules are
//! applied again when it runs), and streams its data through the one pipeline into the
//! target. No token is stored and no HTTP request is made. Any other region, or an
//! interface the catalog does not advertise, fails the task.
//!
//! On success the target takes the source's `disk_format` and `container_format` and the
//! extra properties whose names start with one of the configured prefixes (Glance's
//! `[glance_download_properties] extra_properties`), replacing its own values. The target
//! is changed only then: on any failure it goes back to `queued` as it was.

use serde_json::Value;

use super::import::ImportRequest;
use super::metadata::ImageService;
use crate::error::{Error, Result};
use crate::image::attributes::{self, Mode};
use crate::image::{Image, ImageStatus};
use crate::job::Job;
use crate::policy;
use crate::principal::{Principal, expand_roles};

/// Glance's default `extra_properties`: what an instance needs to boot the image.
pub const DEFAULT_EXTRA_PROPERTIES: &[&str] =
    &["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"];

/// The interfaces ims's service catalog advertises for its image endpoint (the Keystone
/// dialect lists one `public` endpoint per service).
const CATALOG_INTERFACES: &[&str] = &["public"];

/// The interface used when the request names none (as in Glance).
pub const DEFAULT_INTERFACE: &str = "public";

/// What glance-download may read from and what it copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlanceDownloadSettings {
    /// The region this deployment serves, as its service catalog names it.
    pub region: String,
    /// Prefixes of the extra properties copied from the source image; a trailing `*` is
    /// allowed and means the same prefix.
    pub extra_properties: Vec<String>,
}

impl Default for GlanceDownloadSettings {
    fn default() -> Self {
        GlanceDownloadSettings {
            region: "RegionOne".into(),
            extra_properties: DEFAULT_EXTRA_PROPERTIES
                .iter()
                .map(|p| p.to_string())
                .collect(),
        }
    }
}

impl GlanceDownloadSettings {
    /// Checks that `region` and `interface` name this deployment's image endpoint
    /// (regions compare without case, as Glance's catalog look-up does).
    pub fn check_endpoint(&self, region: &str, interface: &str) -> Result<()> {
        if region.eq_ignore_ascii_case(&self.region) && CATALOG_INTERFACES.contains(&interface) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "No glance endpoint for interface '{interface}' in region '{region}': this \
             deployment serves region '{}', interface 'public'",
            self.region
        )))
    }

    /// Whether an extra property of the source is copied to the target.
    pub fn copies(&self, name: &str) -> bool {
        self.extra_properties
            .iter()
            .any(|p| name.starts_with(p.strip_suffix('*').unwrap_or(p)))
    }
}

/// Checks a glance-download request when it is made (Glance's synchronous checks):
/// region and image id present, the id UUID-like; the interface defaults to `public`.
/// Records the caller's roles, with which the job looks at the source image.
pub(crate) fn check_request(who: &Principal, req: &mut ImportRequest) -> Result<()> {
    if req.glance_region.is_none() {
        return Err(Error::invalid(
            "'glance_region' needs to be set for glance-download import method",
        ));
    }
    let id = req.glance_image_id.as_deref().ok_or_else(|| {
        Error::invalid("'glance_image_id' needs to be set for glance-download import method")
    })?;
    source_id(id)?;
    req.glance_service_interface
        .get_or_insert_with(|| DEFAULT_INTERFACE.to_string());
    req.roles = who.roles.iter().cloned().collect();
    Ok(())
}

/// The source id in ims's canonical form; any UUID spelling is accepted (hyphenated,
/// plain hex, braced, `urn:uuid:`), as Glance accepts what Python's `uuid.UUID` does.
fn source_id(raw: &str) -> Result<String> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| Error::invalid(format!("Remote image id does not look like a UUID: {raw}")))
}

/// The importing caller as the job sees it: the user, the project that asked (the job's)
/// and the roles it held then.
fn caller(job: &Job, req: &ImportRequest) -> Principal {
    Principal {
        user_id: req.user_id.clone().unwrap_or_default(),
        user_name: String::new(),
        project_id: job.project_id.clone(),
        roles: expand_roles(req.roles.iter().map(String::as_str)),
    }
}

impl ImageService {
    /// The worker's part of a glance-download: resolve the endpoint, load the source as
    /// the caller may see it, stream its data into the target, then give the target the
    /// source's formats and boot properties.
    pub(crate) async fn run_glance_download(&self, job: &Job, req: &ImportRequest) -> Result<()> {
        let target = job
            .image_id()
            .ok_or_else(|| Error::internal("import job without an image"))?;
        let settings = &self.settings.glance_download;
        settings.check_endpoint(
            req.glance_region.as_deref().unwrap_or_default(),
            req.glance_service_interface
                .as_deref()
                .unwrap_or(DEFAULT_INTERFACE),
        )?;
        let who = caller(job, req);
        let source = self
            .get(
                &who,
                &source_id(req.glance_image_id.as_deref().unwrap_or_default())?,
            )
            .await?;
        policy::check_download(&who, &source)?;
        if source.status != ImageStatus::Active {
            return Err(Error::Conflict(format!(
                "Source image status should be active instead of {}",
                source.status
            )));
        }
        if source.data.location.is_none() {
            return Err(Error::Gone("The source image has no data".into()));
        }
        let data = self.read_data(&source, None).await?;
        self.receive_into(
            target,
            data,
            source.data.size,
            |image| adopt_source(&who, image, &source, settings),
            |_, _| Ok(()),
            super::bucket_jobs::image_jobs::Arrival::Land,
        )
        .await
    }
}

/// Gives `target` the source's formats and the extra properties the settings copy.
/// Names a caller could never write (`os_glance*`, read-only, reserved) are skipped, as
/// Glance skips its reserved prefix.
fn adopt_source(
    who: &Principal,
    target: &mut Image,
    source: &Image,
    settings: &GlanceDownloadSettings,
) -> Result<()> {
    let format = |f: Option<&str>| f.map_or(Value::Null, |s| Value::String(s.into()));
    let disk = format(source.disk_format.map(|f| f.as_str()));
    let container = format(source.container_format.map(|f| f.as_str()));
    attributes::set(who, target, "disk_format", &disk, Mode::Update)?;
    attributes::set(who, target, "container_format", &container, Mode::Update)?;
    for (name, value) in &source.properties {
        if settings.copies(name) && attributes::check_writable(name, Mode::Update).is_ok() {
            attributes::set(
                who,
                target,
                name,
                &Value::String(value.clone()),
                Mode::Update,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_as_in_glance() {
        let s = GlanceDownloadSettings::default();
        for name in [
            "hw_cpu_cores",
            "trait:STORAGE_DISK_SSD",
            "os_distro",
            "os_type",
        ] {
            assert!(s.copies(name), "{name}");
        }
        for name in ["speed", "hw", "os_version", "architecture"] {
            assert!(!s.copies(name), "{name}");
        }
        let starred = GlanceDownloadSettings {
            extra_properties: vec!["hw_*".into()],
            ..s
        };
        assert!(starred.copies("hw_rng_model") && !starred.copies("hwx"));
    }

    #[test]
    fn endpoint_is_this_region_public_only() {
        let s = GlanceDownloadSettings::default();
        assert!(s.check_endpoint("regionone", "public").is_ok());
        assert!(s.check_endpoint("RegionTwo", "public").is_err());
        assert!(s.check_endpoint("RegionOne", "internal").is_err());
        assert!(
            s.check_endpoint("not a region", "not an interface")
                .is_err()
        );
    }

    #[test]
    fn source_ids_are_uuid_like() {
        let canonical = "36d4b546-64a2-4bb9-bdd0-ba676aa48f2c";
        assert_eq!(source_id(canonical).unwrap(), canonical);
        assert_eq!(
            source_id("36D4B54664A24BB9BDD0BA676AA48F2C").unwrap(),
            canonical
        );
        let err = source_id("foo").unwrap_err().to_string();
        assert!(err.contains("image id does not look like a UUID"), "{err}");
    }
}
