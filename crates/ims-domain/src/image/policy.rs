//! Who may see, change, publicise or download an image, and who manages its members:
//! visibility and membership on top of the rules every aggregate shares
//! (`crate::policy`). Some image checks still sit in their use case (owner-or-admin in
//! `image/service/members.rs` and `image/service/import.rs`, attribute rules in
//! `image/attributes.rs`) and one in the IMS dialect (only `active` images are updated).

use crate::error::{Error, Result};
use crate::image::{Image, Visibility};
use crate::member::MemberStatus;
use crate::principal::Principal;

/// The membership of the caller's project in an image, when it has one.
pub type Membership = Option<MemberStatus>;

/// Whether `who` may see `image` at all. Invisible images are reported as not found.
pub fn can_see(who: &Principal, image: &Image, membership: Membership) -> bool {
    if who.is_admin() || is_owner(who, image) {
        return true;
    }
    match image.visibility {
        Visibility::Public | Visibility::Community => true,
        // A member sees a shared image whatever its member status, as in Glance.
        Visibility::Shared => membership.is_some(),
        Visibility::Private => false,
    }
}

/// Whether `who` owns `image` (its project is the owner).
pub fn is_owner(who: &Principal, image: &Image) -> bool {
    crate::policy::owns(who, image)
}

impl crate::policy::Owned for Image {
    fn owner_project(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

/// Checks that `who` may modify `image` (metadata, data, tags, members, deletion).
pub fn check_modify(who: &Principal, image: &Image) -> Result<()> {
    crate::policy::check_owner_writes(who, image, crate::Entity::Image)
}

/// Checks that `who` may set `visibility` on an image it owns.
pub fn check_visibility(who: &Principal, visibility: Visibility) -> Result<()> {
    if visibility == Visibility::Public && !who.is_admin() {
        return Err(Error::Forbidden(
            "You are not authorized to publicize images.".into(),
        ));
    }
    Ok(())
}

/// Checks that `who` may download the data of a visible `image`.
pub fn check_download(who: &Principal, image: &Image) -> Result<()> {
    if image.status == crate::image::ImageStatus::Deactivated && !who.is_admin() {
        return Err(Error::Forbidden(
            "The requested image has been deactivated. Image data download is forbidden.".into(),
        ));
    }
    Ok(())
}

/// Checks that `who` may list the members of a visible image or act on one.
pub fn check_member_owner(who: &Principal, image: &Image) -> Result<()> {
    check_modify(who, image)?;
    if image.visibility != Visibility::Shared {
        return Err(Error::Forbidden(format!(
            "Only shared images have members; this image's visibility is {}.",
            image.visibility
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageId;
    use crate::principal::expand_roles;
    use time::OffsetDateTime;

    fn who(project: &str, role: &str) -> Principal {
        Principal {
            user_id: "u".into(),
            user_name: "u".into(),
            project_id: project.into(),
            roles: expand_roles([role]),
        }
    }

    fn image(owner: &str, vis: Visibility) -> Image {
        let mut i = Image::new(
            ImageId::new(),
            Some(owner.into()),
            OffsetDateTime::now_utc(),
        );
        i.visibility = vis;
        i
    }

    #[test]
    fn visibility_matrix() {
        let other = who("p2", "member");
        assert!(!can_see(&other, &image("p1", Visibility::Private), None));
        assert!(!can_see(&other, &image("p1", Visibility::Shared), None));
        assert!(can_see(
            &other,
            &image("p1", Visibility::Shared),
            Some(MemberStatus::Pending)
        ));
        assert!(can_see(&other, &image("p1", Visibility::Public), None));
        assert!(can_see(
            &who("p9", "admin"),
            &image("p1", Visibility::Private),
            None
        ));
    }

    #[test]
    fn readers_and_strangers_cannot_modify() {
        let img = image("p1", Visibility::Private);
        assert!(check_modify(&who("p1", "member"), &img).is_ok());
        assert!(check_modify(&who("p1", "reader"), &img).is_err());
        assert!(check_modify(&who("p2", "member"), &img).is_err());
        assert!(check_modify(&who("p2", "admin"), &img).is_ok());
    }
}
