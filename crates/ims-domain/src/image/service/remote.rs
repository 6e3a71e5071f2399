//! The one way a job fetches a URL, and the one admission check for new jobs.

use super::metadata::ImageService;
use crate::error::{Error, Result};
use crate::outbound::redact_url;
use crate::ports::ByteStream;

impl ImageService {
    /// Opens `uri` through the address filter, under the transfer limits: the deadline
    /// covers connecting, the response head and the body, and the body must keep the
    /// minimum rate. Returns the body and its declared length.
    pub(crate) async fn fetch(&self, uri: &str) -> Result<(ByteStream, Option<u64>)> {
        let limits = self.settings.fetch_limits;
        let deadline = limits.deadline_from(tokio::time::Instant::now());
        let opened =
            tokio::time::timeout_at(deadline, self.remote.open(uri, &self.settings.url_filter))
                .await;
        let (body, len) = match opened {
            Ok(result) => result?,
            Err(_) => {
                tracing::warn!(uri = %redact_url(uri), "outbound fetch hit its deadline before the body");
                return Err(Error::invalid(format!(
                    "The URI did not answer within {} s",
                    limits.deadline.as_secs()
                )));
            }
        };
        Ok((limits.guard(body, deadline), len))
    }

    /// Refuses a new job when the project already has its share of waiting and running
    /// jobs (`QuotaExceeded`), or when the whole queue is full (`Unavailable`: server-side
    /// saturation). `adding` jobs are
    /// about to be queued together.
    pub(crate) async fn check_job_slots(&self, project_id: &str, adding: u64) -> Result<()> {
        let limits = self.settings.job_limits;
        let mine = self.jobs.count_active(Some(project_id)).await?;
        if mine + adding > limits.per_project {
            return Err(Error::QuotaExceeded(format!(
                "Too many jobs queued or running for this project: {mine} of at most {}; \
                 retry when some have finished",
                limits.per_project
            )));
        }
        let all = self.jobs.count_active(None).await?;
        if all + adding > limits.total {
            return Err(Error::Unavailable("the job queue is full".into()));
        }
        Ok(())
    }
}
