//! Who may read and write metadefs: Glance's default policy. Reading needs the reader
//! role and a public namespace or one of the caller's project (admins see all); every
//! write is admin-only. A namespace the caller may not see is "not found".

use super::model::{Namespace, NsVisibility};
use crate::Error;
use crate::principal::{Principal, roles};

/// Whether `who` may see `ns` (and what it holds).
pub fn can_see(who: &Principal, ns: &Namespace) -> bool {
    who.is_admin()
        || (who.has_role(roles::READER)
            && (ns.visibility == NsVisibility::Public || ns.owner == who.project_id))
}

fn denied(action: &str) -> Error {
    Error::Forbidden(format!(
        "You are not authorized to complete {action} action."
    ))
}

/// Reads that are not about one namespace (lists): admin or any reader.
pub fn check_reader(who: &Principal, action: &str) -> Result<(), Error> {
    if who.is_admin() || who.has_role(roles::READER) {
        Ok(())
    } else {
        Err(denied(action))
    }
}

/// Writes: admin only (`metadef_admin` in Glance's policy).
pub fn check_admin(who: &Principal, action: &str) -> Result<(), Error> {
    if who.is_admin() {
        Ok(())
    } else {
        Err(denied(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn ns(owner: &str, visibility: NsVisibility) -> Namespace {
        Namespace {
            id: "i".into(),
            name: "n".into(),
            display_name: None,
            description: None,
            visibility,
            protected: false,
            owner: owner.into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn private_namespaces_are_for_their_project_and_admins() {
        let private = ns("p1", NsVisibility::Private);
        assert!(can_see(&who("p1", "reader"), &private));
        assert!(!can_see(&who("p2", "member"), &private));
        assert!(can_see(&who("p2", "admin"), &private));
        assert!(can_see(
            &who("p2", "reader"),
            &ns("p1", NsVisibility::Public)
        ));
        assert!(!can_see(&who("p1", "other"), &private));
    }

    #[test]
    fn writes_are_admin_only() {
        assert!(check_admin(&who("p1", "member"), "add_metadef_namespace").is_err());
        assert!(check_admin(&who("p1", "admin"), "add_metadef_namespace").is_ok());
        assert!(check_reader(&who("p1", "reader"), "get_metadef_namespaces").is_ok());
        assert!(check_reader(&who("p1", "other"), "get_metadef_namespaces").is_err());
    }
}
