//! IMS batch sharing (`/v1/cloudimages/members`): several images with several projects
//! in one request. The batch is bounded ([`SharingLimits`]), its lists deduplicated,
//! every pair checked first, and then everything, the finished job included, is written
//! in one transaction ([`crate::ports::SharingBatch`]): a batch applies completely or
//! not at all. The job exists because IMS clients expect a job id to poll, and the job
//! they poll tells the truth, with one result per image and project.

use super::metadata::{ImageService, now};
use crate::error::{Error, Result};
use crate::image::{Image, ImageStatus, Visibility};
use crate::job::{Job, JobKind, JobStatus};
use crate::member::{Member, MemberStatus};
use crate::policy;
use crate::ports::SharingBatch;
use crate::principal::Principal;
use crate::text;

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

/// What a sharing batch applied, as its job records it: every image and project pair. Each
/// dialect renders it in its own shape (IMS: `entities.results`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharingRecord {
    /// The pairs, in request order. Rows written before the record had a shape of its
    /// own kept IMS's `results` list here, whose entries decode the same way.
    #[serde(alias = "results")]
    pub pairs: Vec<SharedPair>,
}

/// One image and one project of a sharing batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedPair {
    /// The image id, as the caller named it.
    pub image_id: String,
    /// The project.
    pub project_id: String,
}

impl SharingRecord {
    /// The record of a sharing job; `None` for jobs of other kinds.
    pub fn of(job: &Job) -> Option<SharingRecord> {
        matches!(
            job.kind,
            JobKind::AddMembers | JobKind::RemoveMembers | JobKind::UpdateMembers
        )
        .then(|| serde_json::from_value(job.payload.clone()).ok())
        .flatten()
    }
}

/// How big one sharing batch may be (`[images] sharing_max_*` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharingLimits {
    /// Distinct images per batch.
    pub images: usize,
    /// Distinct projects per batch.
    pub projects: usize,
}

impl Default for SharingLimits {
    fn default() -> Self {
        SharingLimits {
            images: 100,
            projects: 100,
        }
    }
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
        let limits = self.settings.sharing_limits;
        let images = distinct("images", images, limits.images)?;
        let projects = match change {
            SharingChange::Answer(_) => vec![who.project_id.clone()],
            _ => distinct("projects", projects, limits.projects)?,
        };
        for project in &projects {
            check_project_id(project)?;
        }
        let mut batch = SharingBatch::default();
        let mut record = SharingRecord::default();
        for id in &images {
            let image = self.get(who, id).await?;
            if matches!(change, SharingChange::Add) {
                super::encryption::check_shareable(&image)?;
            }
            self.plan_sharing(who, image, &projects, change, &mut batch)
                .await?;
            record
                .pairs
                .extend(projects.iter().map(|project| SharedPair {
                    image_id: id.clone(),
                    project_id: project.clone(),
                }));
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
            serde_json::to_value(&record).map_err(Error::internal)?,
            t,
        );
        job.status = JobStatus::Success;
        job.progress = 100;
        job.begin_time = Some(t);
        job.end_time = Some(t);
        self.repo.apply_sharing(&batch, &job).await?;
        Ok(job)
    }

    /// Checks one image's part of a batch and adds its writes to `batch`.
    async fn plan_sharing(
        &self,
        who: &Principal,
        mut image: Image,
        projects: &[String],
        change: SharingChange,
        batch: &mut SharingBatch,
    ) -> Result<()> {
        let t = now();
        match change {
            SharingChange::Add => {
                policy::check_modify(who, &image)?;
                let was_private = image.visibility == Visibility::Private;
                if was_private {
                    if image.status != ImageStatus::Active {
                        return Err(Error::Conflict(format!(
                            "Image {} is {} and cannot be shared",
                            image.id, image.status
                        )));
                    }
                    image.visibility = Visibility::Shared;
                    self.finish_edit(&mut image)?;
                }
                policy::check_member_owner(who, &image)?;
                let members = self.repo.members(image.id).await?;
                let new: Vec<&String> = projects
                    .iter()
                    .filter(|p| !members.iter().any(|m| &m.member_id == *p))
                    .collect();
                if members.len() + new.len() > self.settings.max_members {
                    return Err(Error::QuotaExceeded(
                        "Maximum number of image members exceeded".into(),
                    ));
                }
                batch.add.extend(new.into_iter().map(|p| Member {
                    image_id: image.id,
                    member_id: p.clone(),
                    status: MemberStatus::Pending,
                    created_at: t,
                    updated_at: t,
                }));
                if was_private {
                    batch.saves.push(image);
                }
            }
            SharingChange::Remove => {
                policy::check_modify(who, &image)?;
                batch
                    .remove
                    .extend(projects.iter().map(|p| (image.id, p.clone())));
            }
            SharingChange::Answer(status) => {
                policy::check_writer(who)?;
                let mut member = self
                    .repo
                    .members(image.id)
                    .await?
                    .into_iter()
                    .find(|m| m.member_id == who.project_id)
                    .ok_or_else(|| Error::NotFound {
                        kind: crate::Entity::Member,
                        id: who.project_id.clone(),
                    })?;
                member.status = status;
                member.updated_at = t;
                batch.update.push(member);
            }
        }
        Ok(())
    }
}

/// `values` without repeats, in order of first appearance; 1 to `max` of them.
fn distinct(what: &str, values: &[String], max: usize) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(v) {
            if out.len() == max {
                return Err(Error::invalid(format!(
                    "{what} may name at most {max} distinct entries"
                )));
            }
            out.push(v.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(format!(
            "{what} must name at least one entry"
        )));
    }
    Ok(out)
}

/// A project id as a member id: what `add_member` accepts.
fn check_project_id(project: &str) -> Result<()> {
    if project.is_empty() || project.len() > 255 {
        return Err(Error::invalid("member must be 1 to 255 characters"));
    }
    text::check("member", project)
}
