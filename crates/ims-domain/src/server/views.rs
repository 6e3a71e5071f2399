//! The server jobs as a caller sees them: each job and its sub-jobs, one per resource it
//! works on (the server it creates or deletes, the image a capture makes). Sub-jobs are
//! derived from the job, not stored: a job's outcome is its sub-jobs' outcome.

use super::service::{Capture, Removal};
use super::{ServerId, ServerService};
use crate::error::{Entity, Error, Result};
use crate::job::{Job, JobKind, JobQuery, JobSortKey, JobStatus};
use crate::principal::Principal;

/// The kinds of job image servers have.
pub const SERVER_JOB_KINDS: &[JobKind] = &[
    JobKind::ServerCreate,
    JobKind::ServerCapture,
    JobKind::ServerDelete,
];

/// At most this many of a project's server jobs are looked at by a listing.
const LISTING_CAP: u32 = 10_000;

/// One resource a job works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubJob {
    /// `<job id>-<n>`, n from 1.
    pub id: String,
    /// The server (create, delete) or the image (capture).
    pub resource_id: String,
    /// Its name.
    pub resource_name: String,
}

/// A server job and what it works on.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerJob {
    /// The job.
    pub job: Job,
    /// Its sub-jobs.
    pub sub_jobs: Vec<SubJob>,
}

/// Which server jobs to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerJobFilter {
    /// Only jobs of these kinds (all server kinds when empty).
    pub kinds: Vec<JobKind>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only this job (the sub-job listing's `job_id`).
    pub job_id: Option<String>,
}

impl ServerService {
    /// One server job of the caller's project, with its sub-jobs; any other job (or
    /// another project's) does not exist.
    pub async fn job(&self, who: &Principal, id: &str) -> Result<ServerJob> {
        let job = self
            .queue
            .repo()
            .get(id)
            .await?
            .filter(|j| SERVER_JOB_KINDS.contains(&j.kind))
            .filter(|j| who.is_admin() || j.project_id == who.project_id)
            .ok_or_else(|| Error::not_found(Entity::Job, id))?;
        self.view(job).await
    }

    /// The caller's project's server jobs matching `filter`, newest first, from
    /// `offset`, at most `limit`; and how many match in all.
    pub async fn jobs(
        &self,
        who: &Principal,
        filter: &ServerJobFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<ServerJob>, u64)> {
        let kinds = if filter.kinds.is_empty() {
            SERVER_JOB_KINDS.to_vec()
        } else {
            filter.kinds.clone()
        };
        let query = JobQuery {
            kinds,
            project_id: Some(who.project_id.clone()),
            status: filter.status,
            image_id: None,
            sort: JobSortKey::CreatedAt,
            ascending: false,
            marker: None,
            limit: LISTING_CAP,
        };
        let all: Vec<Job> = self
            .queue
            .repo()
            .list(&query)
            .await?
            .into_iter()
            .filter(|j| filter.job_id.as_ref().is_none_or(|id| *id == j.id))
            .collect();
        let total = all.len() as u64;
        let mut page = Vec::new();
        for job in all
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
        {
            page.push(self.view(job).await?);
        }
        Ok((page, total))
    }

    async fn view(&self, job: Job) -> Result<ServerJob> {
        let resources = match job.kind {
            JobKind::ServerCapture => {
                let capture: Capture = decode(&job)?;
                vec![(capture.image_id, capture.name)]
            }
            JobKind::ServerDelete => {
                let removal: Removal = decode(&job)?;
                let mut named = Vec::new();
                for id in removal.servers {
                    named.push((id.clone(), self.server_name(&id).await?));
                }
                named
            }
            _ => match job.subject_id::<ServerId>() {
                Some(id) => vec![(id.to_string(), self.server_name(&id.to_string()).await?)],
                None => Vec::new(),
            },
        };
        let sub_jobs = resources
            .into_iter()
            .enumerate()
            .map(|(n, (resource_id, resource_name))| SubJob {
                id: format!("{}-{}", job.id, n + 1),
                resource_id,
                resource_name,
            })
            .collect();
        Ok(ServerJob { job, sub_jobs })
    }

    /// A server's name, deleted ones included ("" if unknown).
    async fn server_name(&self, id: &str) -> Result<String> {
        Ok(match ServerId::parse(id) {
            Some(id) => self.repo.get(id).await?.map(|s| s.name).unwrap_or_default(),
            None => String::new(),
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(job: &Job) -> Result<T> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| Error::internal(format!("job {}: bad payload: {e}", job.id)))
}
