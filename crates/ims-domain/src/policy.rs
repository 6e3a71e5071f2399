//! Authorization rules every aggregate shares: who owns a thing, who may see it, who may
//! change it. An aggregate's own rules sit beside it (`image/policy.rs`: visibility and
//! membership) and build on these. Anything a caller may not see is reported exactly like
//! something that does not exist.

use crate::error::{Entity, Error, Result};
use crate::identity::principal::Principal;

pub use crate::image::policy::{
    Membership, can_see, check_download, check_member_owner, check_modify, check_visibility,
    is_owner,
};

/// Something that belongs to one project (an image, a job; volumes, servers and keys).
pub trait Owned {
    /// The owning project; `None` for things no project owns (an image whose owner was
    /// never set).
    fn owner_project(&self) -> Option<&str>;
}

/// Whether `who` acts in the project that owns `owned`.
pub fn owns(who: &Principal, owned: &impl Owned) -> bool {
    owned.owner_project() == Some(who.project_id.as_str())
}

/// `owned` if `who` may see it (its project, or an admin); otherwise not found, as if it
/// did not exist. For aggregates without sharing.
pub fn visible<T: Owned>(who: &Principal, owned: Option<T>, kind: Entity, id: &str) -> Result<T> {
    owned
        .filter(|o| who.is_admin() || owns(who, o))
        .ok_or_else(|| Error::not_found(kind, id))
}

/// Checks that `who` may change `owned`, which it can see: an admin, or a writer of the
/// owning project.
pub fn check_owner_writes(who: &Principal, owned: &impl Owned, kind: Entity) -> Result<()> {
    if who.is_admin() {
        return Ok(());
    }
    if !owns(who, owned) {
        return Err(Error::Forbidden(format!(
            "You are not permitted to modify this {kind}."
        )));
    }
    check_writer(who)
}

/// Checks that `who` holds a role that allows writes at all.
pub fn check_writer(who: &Principal) -> Result<()> {
    if who.can_write() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "The reader role does not allow this action.".into(),
        ))
    }
}

/// Checks that `who` is a cloud administrator.
pub fn require_admin(who: &Principal) -> Result<()> {
    if who.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "You are not authorized to perform the requested action.".into(),
        ))
    }
}

impl Owned for crate::job::Job {
    fn owner_project(&self) -> Option<&str> {
        Some(&self.project_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::principal::expand_roles;

    struct Thing(Option<&'static str>);
    impl Owned for Thing {
        fn owner_project(&self) -> Option<&str> {
            self.0
        }
    }

    fn who(project: &str, role: &str) -> Principal {
        Principal {
            user_id: "u".into(),
            user_name: "u".into(),
            project_id: project.into(),
            roles: expand_roles([role]),
        }
    }

    #[test]
    fn another_projects_thing_does_not_exist_for_you() {
        let err = visible(
            &who("b", "member"),
            Some(Thing(Some("a"))),
            Entity::Job,
            "j1",
        );
        assert!(matches!(err, Err(Error::NotFound { kind: Entity::Job, ref id }) if id == "j1"));
        assert!(
            visible(
                &who("a", "reader"),
                Some(Thing(Some("a"))),
                Entity::Job,
                "j1"
            )
            .is_ok()
        );
        assert!(
            visible(
                &who("b", "admin"),
                Some(Thing(Some("a"))),
                Entity::Job,
                "j1"
            )
            .is_ok()
        );
        assert!(visible(&who("a", "member"), Some(Thing(None)), Entity::Job, "j1").is_err());
    }

    #[test]
    fn only_writers_of_the_owner_or_admins_change_a_thing() {
        let thing = Thing(Some("a"));
        assert!(check_owner_writes(&who("a", "member"), &thing, Entity::Job).is_ok());
        assert!(check_owner_writes(&who("b", "admin"), &thing, Entity::Job).is_ok());
        assert!(matches!(
            check_owner_writes(&who("a", "reader"), &thing, Entity::Job),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            check_owner_writes(&who("b", "member"), &thing, Entity::Job),
            Err(Error::Forbidden(_))
        ));
        assert!(require_admin(&who("a", "member")).is_err());
        assert!(require_admin(&who("a", "admin")).is_ok());
    }
}
