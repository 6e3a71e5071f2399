//! IMS batch sharing (`/v1/cloudimages/members`): several images with several projects
//! in one request. The work is a handful of catalog writes, so it is done at once, and
//! recorded as a job that is already finished, with one result per image and project:
//! IMS clients expect a job id to poll, and the job they poll tells the truth.

use super::images::{ImageService, now};
use crate::error::{Error, Result};
use crate::image::{ImageStatus, Visibility};
use crate::job::{Job, JobKind, JobStatus};
use crate::policy;
use crate::principal::Principal;

/// What a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharingChange {
    /// Share each image with each project (a private image becomes `shared`).
    Add,
    /// Stop sharing each image with each project.
    Remove,
    /// Answer, as the caller's project, the shares of each image.
    Answer(crate::member::MemberStatus),
}

impl ImageService {
    /// Applies a batch and returns the finished job recording it.
    pub async fn change_sharing(
        &self,
        who: &Principal,
        images: &[String],
        projects: &[String],
        change: SharingChange,
    ) -> Result<Job> {
        if images.is_empty() {
            return Err(Error::invalid("images must name at least one image"));
        }
        let mut results = Vec::new();
        for image in images {
            let targets: Vec<&String> = match change {
                SharingChange::Answer(_) => vec![&who.project_id],
                _ => projects.iter().collect(),
            };
            if targets.is_empty() {
                return Err(Error::invalid("projects must name at least one project"));
            }
            for project in targets {
                self.apply_sharing(who, image, project, change).await?;
                results.push(serde_json::json!({"image_id": image, "project_id": project, "status": "success"}));
            }
        }
        let kind = match change {
            SharingChange::Add => JobKind::AddMembers,
            SharingChange::Remove => JobKind::RemoveMembers,
            SharingChange::Answer(_) => JobKind::UpdateMembers,
        };
        let t = now();
        let mut job = Job::new(
            kind,
            &who.project_id,
            None,
            serde_json::json!({ "results": results }),
            t,
        );
        job.status = JobStatus::Success;
        job.progress = 100;
        job.begin_time = Some(t);
        job.end_time = Some(t);
        self.jobs.record(&job).await?;
        Ok(job)
    }

    async fn apply_sharing(
        &self,
        who: &Principal,
        id: &str,
        project: &str,
        change: SharingChange,
    ) -> Result<()> {
        match change {
            SharingChange::Add => {
                let mut image = self.get(who, id).await?;
                policy::check_modify(who, &image)?;
                if image.visibility == Visibility::Private {
                    if image.status != ImageStatus::Active {
                        return Err(Error::Conflict(format!(
                            "Image {} is {} and cannot be shared",
                            image.id, image.status
                        )));
                    }
                    image.visibility = Visibility::Shared;
                    self.finish_edit(&mut image)?;
                    self.repo.save(&image, image.status, None).await?;
                }
                match self.add_member(who, id, project).await {
                    Ok(_) | Err(Error::Conflict(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            SharingChange::Remove => match self.remove_member(who, id, project).await {
                Ok(()) | Err(Error::NotFound { kind: "member", .. }) => Ok(()),
                Err(e) => Err(e),
            },
            SharingChange::Answer(status) => self
                .set_member_status(who, id, project, status.as_str())
                .await
                .map(|_| ()),
        }
    }
}
