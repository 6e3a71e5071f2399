//! Interoperable import (glance-direct, web-download, glance-download) as a durable job.

use serde::{Deserialize, Serialize};

use super::bucket_jobs::image_jobs::Arrival;
use super::glance_download;
use super::metadata::{ImageService, ImportMethod, now};
use crate::error::{Error, Result};
use crate::image::{ImageId, ImageStatus};
use crate::job::{Job, JobKind};
use crate::policy;
use crate::principal::Principal;

/// A request to import data into an image; also the job's payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    /// The method.
    pub method: String,
    /// The URL, for `web-download`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The source image, for `glance-download`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glance_image_id: Option<String>,
    /// The source region, for `glance-download`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glance_region: Option<String>,
    /// The source endpoint's interface, for `glance-download` (default `public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glance_service_interface: Option<String>,
    /// The id of the request that started it (Glance shows it on the import's task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who started it; set by [`ImageService::import`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The caller's roles when it asked (`glance-download` reads the source image as
    /// the caller could see it); set by [`ImageService::import`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// See [`crate::job::DISCARD_IMAGE_ON_FAILURE`]; never set by a Glance request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discard_image_on_failure: bool,
    /// The stores asked for (`stores`, or `X-Image-Meta-Store`); `None`: the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stores: Option<Vec<String>>,
    /// Every store (`all_stores`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_stores: bool,
    /// A store may fail without failing the import (`all_stores_must_succeed: false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_store_failures: bool,
    /// The stores the job writes to, in order; set by [`ImageService::import`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// `copy-image`: the stores that held the image before (never rolled back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior_stores: Vec<String>,
}

impl ImageService {
    /// Starts an import: the image moves to `importing` and a job is queued with it,
    /// in one transaction (`copy-image` leaves it `active`). Returns the job id, `None`
    /// when a `copy-image` found nothing left to copy.
    pub async fn import(
        &self,
        who: &Principal,
        id: &str,
        mut req: ImportRequest,
    ) -> Result<Option<String>> {
        req.user_id = Some(who.user_id.clone());
        let method: ImportMethod = req.method.parse().map_err(|_| {
            Error::invalid(format!("Import method {} is not supported", req.method))
        })?;
        if !self.settings.import_methods.contains(&method) {
            return Err(Error::invalid(format!(
                "Import method {method} is not enabled"
            )));
        }
        let mut image = self.get(who, id).await?;
        if method == ImportMethod::CopyImage {
            return self.start_copy_to_stores(who, image, req).await;
        }
        policy::check_modify(who, &image)?;
        image.require_formats()?;
        let expected = image.status;
        match method {
            ImportMethod::GlanceDirect
                if image.status != ImageStatus::Uploading || image.lease.is_some() =>
            {
                return Err(Error::Conflict(
                    "Image needs to be staged before 'glance-direct' method can be used".into(),
                ));
            }
            ImportMethod::WebDownload => {
                let uri = req
                    .uri
                    .as_deref()
                    .ok_or_else(|| Error::invalid("web-download needs method.uri"))?;
                check_uri(uri, &self.settings.url_filter)?;
                if image.status != ImageStatus::Queued {
                    return Err(Error::Conflict(format!(
                        "Image status transition from {} to importing is not allowed",
                        image.status
                    )));
                }
            }
            ImportMethod::GlanceDownload => {
                if image.status != ImageStatus::Queued {
                    return Err(Error::Conflict(format!(
                        "Image needs to be in 'queued' state to use '{method}' method"
                    )));
                }
                glance_download::check_request(who, &mut req)?;
            }
            ImportMethod::GlanceDirect | ImportMethod::CopyImage => {}
        }
        self.data_cap(image.owner.as_deref()).await?;
        req.targets = self.import_targets(&req)?;
        self.check_job_slots(&who.project_id, 1).await?;
        image.transition(ImageStatus::Importing)?;
        self.begin_store_progress(&mut image, &req.targets);
        image.updated_at = now();
        let job = self
            .enqueue(
                &who.project_id,
                &image,
                expected,
                JobKind::ImageImport,
                &req,
            )
            .await?;
        Ok(Some(job.id))
    }

    /// Runs an import job (called by the job runner under the job's lease): the data
    /// lands in the default store (glance-direct staged it there already), then goes to
    /// the stores asked for. Safe to run again after a crash: data that landed is not
    /// fetched again, stores written are skipped, and a lost attempt's blob is an orphan
    /// that collection removes.
    pub(crate) async fn run_import(&self, job: &Job) -> Result<()> {
        let (req, id): (ImportRequest, ImageId) = job.decode()?;
        let method: ImportMethod = req.method.parse()?;
        if method != ImportMethod::CopyImage {
            self.land_import(job, &req, method, id).await?;
        }
        self.place_in_stores(id, &req).await
    }

    /// Brings an import's data into the default store, unless it is there.
    async fn land_import(
        &self,
        job: &Job,
        req: &ImportRequest,
        method: ImportMethod,
        id: ImageId,
    ) -> Result<()> {
        let image = self
            .importing(id)
            .await
            .map_err(|_| Error::Gone("The image is no longer importing".into()))?;
        if image.data.location.is_some() && image.data.checksum.is_some() {
            return Ok(());
        }
        let landed = match method {
            ImportMethod::WebDownload => {
                let uri = req.uri.as_deref().unwrap_or_default();
                let (stream, expected) = self.fetch(uri).await?;
                let (adopt, complete) = (|_: &mut _| Ok(()), |_: &mut _, _: &_| Ok(()));
                self.receive_into(id, stream, expected, adopt, complete, Arrival::Land)
                    .await
            }
            ImportMethod::GlanceDownload => self.run_glance_download(job, req).await,
            ImportMethod::GlanceDirect | ImportMethod::CopyImage => {
                Err(Error::Gone("The staged data is missing".into()))
            }
        };
        landed.map_err(|e| match e {
            Error::Gone(_) => Error::Gone("The image was deleted during the import".into()),
            other => other,
        })
    }

    /// Cleans up after an import that failed for good: the image is queued again, its
    /// data released, and the stores it was importing to are no longer "importing".
    pub(crate) async fn fail_import(&self, image_id: ImageId, req: &ImportRequest) -> Result<()> {
        let Some(mut image) = self
            .repo
            .get(image_id)
            .await?
            .filter(|i| i.status == ImageStatus::Importing)
        else {
            return Ok(());
        };
        let mut landed = image.data.take_blob();
        if let Some(held) = &mut landed {
            // The landed copy is in the default store, whether or not it was placed there.
            held.stores.insert(self.stores.default_store().id.clone());
        }
        image.transition(ImageStatus::Queued)?;
        image.lease = None;
        self.end_store_progress(&mut image, &req.targets);
        self.finish_edit(&mut image)?;
        self.repo.save(&image, ImageStatus::Importing, None).await?;
        if let Some(held) = landed {
            self.release_blob(&held).await;
        }
        Ok(())
    }

    /// Interoperable-import jobs of an image the caller may see (Glance's
    /// `GET /v2/images/{id}/tasks`). Jobs of legacy `import` tasks are left out: their
    /// input (the source URL, which may carry credentials, the user and request ids) is
    /// for administrators only, through `/v2/tasks`, and Glance never lists them here.
    /// Only the image's owner and administrators see its jobs (Glance's `get_task`
    /// rule): a project the image is shared with, or that finds it public or community,
    /// gets an empty list rather than the import's URI and failure text.
    pub async fn image_jobs(&self, who: &Principal, id: &str) -> Result<Vec<Job>> {
        let image = self.get(who, id).await?;
        if !(who.is_admin() || policy::is_owner(who, &image)) {
            return Ok(Vec::new());
        }
        let mut jobs = self.jobs.for_image(image.id).await?;
        jobs.retain(|j| j.kind == JobKind::ImageImport);
        Ok(jobs)
    }
}

/// Checks a URL's scheme and port against the filter (its addresses are checked when
/// the job connects).
pub(crate) fn check_uri(uri: &str, filter: &super::UrlFilter) -> Result<()> {
    let (scheme, _) = uri
        .split_once("://")
        .ok_or_else(|| Error::invalid("method.uri is not a URL"))?;
    let host_port = authority(uri);
    let port = match host_port.rsplit_once(':') {
        Some((_, p)) if !host_port.ends_with(']') => p
            .parse()
            .map_err(|_| Error::invalid("method.uri has a bad port"))?,
        _ => match scheme {
            "https" => 443,
            _ => 80,
        },
    };
    filter.check(&scheme.to_ascii_lowercase(), port)
}

/// `host[:port]` of a URL, without user information.
fn authority(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or_default()
}

/// The host of a URL (an IPv6 address without its brackets); `None` when empty.
pub(crate) fn uri_host(uri: &str) -> Option<&str> {
    let host_port = authority(uri);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    (!host.is_empty()).then_some(host)
}
