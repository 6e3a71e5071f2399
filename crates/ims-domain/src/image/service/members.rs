//! Sharing: members of `shared` images and their answers.

use super::metadata::{ImageService, now};
use crate::error::{Error, Result};
use crate::member::{Member, MemberStatus};
use crate::policy;
use crate::principal::Principal;
use crate::text;

impl ImageService {
    /// Shares an image with a project (owner only; the image must be `shared`).
    pub async fn add_member(&self, who: &Principal, id: &str, member_id: &str) -> Result<Member> {
        let image = self.get(who, id).await?;
        policy::check_member_owner(who, &image)?;
        super::encryption::check_shareable(&image)?;
        if member_id.is_empty() || member_id.len() > 255 {
            return Err(Error::invalid("member must be 1 to 255 characters"));
        }
        text::check("member", member_id)?;
        let members = self.repo.members(image.id).await?;
        if members.iter().any(|m| m.member_id == member_id) {
            return Err(Error::Conflict(format!(
                "Member {member_id} already exists for image {}",
                image.id
            )));
        }
        if members.len() >= self.settings.max_members {
            return Err(Error::QuotaExceeded(
                "Maximum number of image members exceeded".into(),
            ));
        }
        let t = now();
        let member = Member {
            image_id: image.id,
            member_id: member_id.to_string(),
            status: MemberStatus::Pending,
            created_at: t,
            updated_at: t,
        };
        self.repo.add_member(&member).await?;
        Ok(member)
    }

    /// Members of an image: all of them for the owner, only itself for a member.
    pub async fn members(&self, who: &Principal, id: &str) -> Result<Vec<Member>> {
        let image = self.get(who, id).await?;
        let all = self.repo.members(image.id).await?;
        if who.is_admin() || policy::is_owner(who, &image) {
            return Ok(all);
        }
        Ok(all
            .into_iter()
            .filter(|m| m.member_id == who.project_id)
            .collect())
    }

    /// One member, visible to the owner and to that member.
    pub async fn member(&self, who: &Principal, id: &str, member_id: &str) -> Result<Member> {
        text::check("member", member_id)?;
        self.members(who, id)
            .await?
            .into_iter()
            .find(|m| m.member_id == member_id)
            .ok_or_else(|| Error::NotFound {
                kind: crate::Entity::Member,
                id: member_id.to_string(),
            })
    }

    /// The member answers; only the member project itself may do so.
    pub async fn set_member_status(
        &self,
        who: &Principal,
        id: &str,
        member_id: &str,
        status: &str,
    ) -> Result<Member> {
        let status: MemberStatus = status.parse().map_err(|_| {
            Error::invalid(format!(
                "Invalid status '{status}': expected pending, accepted or rejected"
            ))
        })?;
        let mut member = self.member(who, id, member_id).await?;
        if who.project_id != member_id {
            return Err(Error::Forbidden(
                "Only the member may change its own status.".into(),
            ));
        }
        policy::check_writer(who)?;
        member.status = status;
        member.updated_at = now();
        self.repo.update_member(&member).await?;
        Ok(member)
    }

    /// Stops sharing with a project (owner only).
    pub async fn remove_member(&self, who: &Principal, id: &str, member_id: &str) -> Result<()> {
        text::check("member", member_id)?;
        let image = self.get(who, id).await?;
        policy::check_modify(who, &image)?;
        self.repo.remove_member(image.id, member_id).await
    }
}
