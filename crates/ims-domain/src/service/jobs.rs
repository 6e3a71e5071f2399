//! The job views dialects read through `ImageService`. The engine itself (runner,
//! registry, queue, maintenance) is [`crate::job`]; its old paths stay here.

pub use crate::job::{JobRunner, MAX_ATTEMPTS, retry_delay};

use super::images::ImageService;
use crate::error::Result;
use crate::job::Job;

impl ImageService {
    /// A job and the jobs it spawned, their outcome folded into its status (see
    /// [`Job::fold_sub_jobs`]).
    pub async fn job_report(
        &self,
        who: &crate::principal::Principal,
        id: &str,
    ) -> Result<(Job, Vec<Job>)> {
        let mut job = self.job(who, id).await?;
        let mut subs = Vec::new();
        for sub in job.sub_job_ids() {
            subs.extend(self.jobs.get(&sub).await?);
        }
        job.fold_sub_jobs(&subs);
        Ok((job, subs))
    }

    /// Every job that touched an image, newest first: for its owner's project and
    /// admins; nobody else sees another project's jobs (an empty list).
    pub async fn image_job_history(
        &self,
        who: &crate::principal::Principal,
        id: &str,
    ) -> Result<Vec<Job>> {
        let image = self.get(who, id).await?;
        if !(who.is_admin() || crate::image::policy::is_owner(who, &image)) {
            return Ok(Vec::new());
        }
        self.jobs.for_image(image.id).await
    }

    /// The newest `limit` jobs of every kind, of the caller's project (every project's,
    /// for an admin): what a console's job page shows.
    pub async fn recent_jobs(
        &self,
        who: &crate::principal::Principal,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let query = crate::job::JobQuery {
            kinds: crate::job::JobKind::ALL.to_vec(),
            project_id: (!who.is_admin()).then(|| who.project_id.clone()),
            status: None,
            image_id: None,
            sort: crate::job::JobSortKey::CreatedAt,
            ascending: false,
            marker: None,
            limit,
        };
        self.jobs.list(&query).await
    }

    /// Loads a job the caller's project owns (or any job, for an admin).
    pub async fn job(&self, who: &crate::principal::Principal, id: &str) -> Result<Job> {
        let job = self.jobs.get(id).await?;
        crate::policy::visible(who, job, crate::Entity::Job, id)
    }
}
