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

    /// Loads a job the caller's project owns (or any job, for an admin).
    pub async fn job(&self, who: &crate::principal::Principal, id: &str) -> Result<Job> {
        let job = self.jobs.get(id).await?;
        crate::policy::visible(who, job, crate::Entity::Job, id)
    }
}
