//! Glance's task API: `import` tasks, which create an image and fill it from a URL, and
//! the listing of every Glance import as a task. A task is a durable job; creating one
//! writes the new image and its job in one transaction.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::metadata::{ImageService, UrlFilter, now};
use crate::error::{Error, Result};
use crate::image::{ImageId, ImageStatus};
use crate::job::{Job, JobKind, JobQuery, JobSortKey, JobStatus};
use crate::principal::Principal;

/// The job kinds Glance shows as tasks: interoperable imports (`api_image_import`) and
/// import tasks (`import`).
pub const TASK_KINDS: &[JobKind] = &[JobKind::ImageImport, JobKind::TaskImport];

/// Where an import task's payload keeps the caller's `input`, shown back as the task's.
pub const TASK_INPUT: &str = "input";

/// One page of tasks as a caller asks for it (Glance's `GET /v2/tasks` parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskListing {
    /// Only import tasks (`type=import`), not interoperable imports.
    pub import_tasks_only: bool,
    /// Only tasks in this status.
    pub status: Option<JobStatus>,
    /// Only tasks of this owner.
    pub owner: Option<String>,
    /// Only tasks of this image.
    pub image_id: Option<ImageId>,
    /// Sort key; creation time, then id, break ties.
    pub sort: JobSortKey,
    /// Ascending rather than descending (Glance's default is descending).
    pub ascending: bool,
    /// Id of the last task of the previous page.
    pub marker: Option<String>,
    /// Tasks per page, as the dialect bounded it (Glance: 25 by default, at most 1000).
    pub limit: u32,
}

/// Glance gates the whole task API to administrators by default (`tasks_api_access`);
/// ims does the same, with no way to open it. Checked before anything else is looked at.
pub fn check_task_access(who: &Principal) -> Result<()> {
    if who.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "You are not authorized to complete tasks_api_access action.".into(),
        ))
    }
}

impl ImageService {
    /// Creates an `import` task from its `input`: `import_from` (a URL that must pass the
    /// web-download filter), `import_from_format` and `image_properties` (the new image's
    /// attributes, as for image create; none at all means `qcow2`/`bare`). The image
    /// (`importing`) and its job are written together.
    /// `request_id` is the creating request's, shown on the task as Glance does.
    pub async fn create_import_task(
        &self,
        who: &Principal,
        input: &Value,
        request_id: Option<&str>,
    ) -> Result<Job> {
        check_task_access(who)?;
        let empty = serde_json::Map::new();
        let fields = match input {
            Value::Object(fields) => fields,
            Value::Null => &empty,
            _ => return Err(Error::invalid("Task input must be an object")),
        };
        let uri = check_import_from(fields.get("import_from"), &self.settings.url_filter)?;
        if !fields
            .get("import_from_format")
            .is_some_and(Value::is_string)
        {
            return Err(missing_input("import_from_format"));
        }
        let Some(Value::Object(props)) = fields.get("image_properties") else {
            return Err(missing_input("image_properties"));
        };
        let mut attrs: BTreeMap<String, Value> = props.clone().into_iter().collect();
        if attrs.is_empty() {
            attrs.insert("disk_format".into(), json!("qcow2"));
            attrs.insert("container_format".into(), json!("bare"));
        }
        let mut image = Self::new_image(who, &attrs)?;
        image.require_formats()?;
        self.finish_edit(&mut image)?;
        self.data_cap(image.owner.as_deref()).await?;
        let payload = json!({
            TASK_INPUT: input,
            "uri": uri,
            "request_id": request_id,
            "user_id": who.user_id,
        });
        let mut job = Self::importing_job(&mut image, JobKind::TaskImport, payload)?;
        // The task belongs to the caller's project, whoever the image is made for.
        job.project_id = who.project_id.clone();
        let batch = [(image, Some(job.clone()))];
        self.queue
            .enqueue_with(self.insert_within_quota(&batch))
            .await?;
        Ok(job)
    }

    /// A task (an import job) the caller may see.
    pub async fn task(&self, who: &Principal, id: &str) -> Result<Job> {
        check_task_access(who)?;
        let not_found = || Error::NotFound {
            kind: crate::Entity::Task,
            id: id.to_string(),
        };
        // Only "no such job" is a missing task: a catalog failure stays what it is.
        match self.job(who, id).await {
            Ok(job) if TASK_KINDS.contains(&job.kind) => Ok(job),
            Ok(_) | Err(Error::NotFound { .. }) => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    /// One page of tasks: an administrator sees every project's.
    pub async fn tasks(&self, who: &Principal, listing: TaskListing) -> Result<Vec<Job>> {
        check_task_access(who)?;
        crate::text::check_opt("owner", listing.owner.as_deref())?;
        crate::text::check_opt("marker", listing.marker.as_deref())?;
        let marker = match &listing.marker {
            Some(id) => Some(self.task(who, id).await.map_err(|e| match e {
                Error::NotFound { .. } => {
                    Error::invalid(format!("Task with the given ID {id} was not found"))
                }
                other => other,
            })?),
            None => None,
        };
        let kinds = if listing.import_tasks_only {
            vec![JobKind::TaskImport]
        } else {
            TASK_KINDS.to_vec()
        };
        let project_id = if who.is_admin() {
            listing.owner
        } else if listing.owner.as_ref().is_some_and(|o| *o != who.project_id) {
            return Ok(Vec::new());
        } else {
            Some(who.project_id.clone())
        };
        self.jobs
            .list(&JobQuery {
                kinds,
                project_id,
                status: listing.status,
                image_id: listing.image_id,
                sort: listing.sort,
                ascending: listing.ascending,
                marker,
                limit: listing.limit,
            })
            .await
    }

    /// Runs an import task (under the job's lease): fetches the URL through the filter
    /// and fills the image with it, as web-download does.
    pub(crate) async fn run_import_task(&self, job: &Job) -> Result<()> {
        let (payload, id): (Value, ImageId) = job.decode()?;
        let uri = payload
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::internal("import task without a URI"))?;
        self.importing(id).await?;
        let (stream, expected) = self.fetch(uri).await?;
        self.fill_image(id, stream, expected, |_, _| Ok(())).await
    }

    /// A failed import task deletes the image it made, as Glance's does: nothing is left
    /// `importing`, and no data remains.
    pub(crate) async fn fail_import_task(&self, id: ImageId) -> Result<()> {
        let Ok(mut image) = self.importing(id).await else {
            return Ok(());
        };
        let held = image.data.take_blob();
        image.status = ImageStatus::Deleted;
        image.lease = None;
        image.updated_at = now();
        self.repo.save(&image, ImageStatus::Importing, None).await?;
        if let Some(held) = held {
            self.release_blob(&held).await;
        }
        Ok(())
    }
}

fn missing_input(key: &str) -> Error {
    Error::invalid(format!("Input does not contain '{key}' field"))
}

/// Glance's checks of a task's `import_from`, with its messages: an `http(s)` URL
/// (never a local file) that passes the web-download filter. A host that is an address
/// is checked here too; names are checked on every address they resolve to when the
/// task runs.
fn check_import_from(uri: Option<&Value>, filter: &UrlFilter) -> Result<String> {
    let uri = match uri {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(Value::String(_)) => return Err(Error::invalid("Invalid location: ")),
        None | Some(Value::Null) => return Err(Error::invalid("Invalid location: None")),
        Some(other) => return Err(Error::invalid(format!("Invalid location: {other}"))),
    };
    if uri.starts_with("file:///") || uri.starts_with("filesystem:///") {
        return Err(Error::invalid(
            "File based imports are not allowed. Please use a non-local source of image data.",
        ));
    }
    if !uri.starts_with("http://") && !uri.starts_with("https://") {
        return Err(Error::invalid(
            "The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']",
        ));
    }
    let passes = super::import::check_uri(uri, filter).is_ok()
        && match super::import::uri_host(uri) {
            Some(host) => match host.parse::<IpAddr>() {
                Ok(ip) => filter.check_ip(ip).is_ok(),
                // Numeric shorthands ("127.1", "2130706433") resolve to addresses
                // without looking like them.
                Err(_) => !host.chars().all(|c| c.is_ascii_digit() || c == '.'),
            },
            None => false,
        };
    if !passes {
        return Err(Error::invalid(format!(
            "URI for legacy import task does not pass filtering: {uri}"
        )));
    }
    Ok(uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: Value, filter: &UrlFilter) -> std::result::Result<String, String> {
        check_import_from(Some(&uri), filter).map_err(|e| e.to_string())
    }

    #[test]
    fn import_from_is_checked_like_glance() {
        let default = UrlFilter::default();
        assert!(check(json!("http://example.com/a.qcow2"), &default).is_ok());
        assert!(check(json!("https://example.com:443/a"), &default).is_ok());
        for (uri, why) in [
            (json!(null), "Invalid location: None"),
            (json!(""), "Invalid location"),
            (json!(7), "Invalid location: 7"),
            (json!("file:///etc/passwd"), "File based imports"),
            (json!("ftp://example.com/a"), "The given uri is not valid"),
            (
                json!("http://example.com:8080/a"),
                "does not pass filtering",
            ),
            (json!("http://127.0.0.1/a"), "does not pass filtering"),
            (json!("http://[::1]/a"), "does not pass filtering"),
            (
                json!("http://[::ffff:10.0.0.1]/a"),
                "does not pass filtering",
            ),
            (json!("http://[fe80::1]/a"), "does not pass filtering"),
            (json!("http://169.254.169.254/a"), "does not pass filtering"),
            (json!("http://100.64.0.1/a"), "does not pass filtering"),
            (json!("http://127.1/a"), "does not pass filtering"),
            (json!("http://2130706433/a"), "does not pass filtering"),
            (json!("http:///a"), "does not pass filtering"),
        ] {
            let err = check(uri.clone(), &default).unwrap_err();
            assert!(err.contains(why), "{uri}: {err}");
        }
        assert!(check_import_from(None, &default).is_err());
    }

    #[test]
    fn an_allowed_address_is_exempt_but_its_port_is_still_checked() {
        let filter = UrlFilter {
            allow_addresses: vec!["127.0.0.1".parse().unwrap()],
            ..UrlFilter::default()
        };
        assert!(check(json!("http://127.0.0.1/a"), &filter).is_ok());
        assert!(check(json!("http://127.0.0.1:8080/a"), &filter).is_err());
        assert!(check(json!("http://127.0.0.2/a"), &filter).is_err());
        let any_port = UrlFilter {
            ports: Vec::new(),
            ..filter
        };
        assert!(check(json!("http://127.0.0.1:8080/a"), &any_port).is_ok());
    }

    fn who(role: &str) -> Principal {
        Principal {
            user_id: "u".into(),
            user_name: "u".into(),
            project_id: "p".into(),
            roles: [role.to_string()].into(),
        }
    }

    #[test]
    fn only_administrators_reach_tasks() {
        let (admin, member) = (who("admin"), who("member"));
        assert!(check_task_access(&admin).is_ok());
        assert!(matches!(
            check_task_access(&member),
            Err(Error::Forbidden(_))
        ));
    }
}
