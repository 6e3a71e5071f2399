//! Who is calling: the one identity every dialect's credentials turn into.

use std::collections::BTreeSet;

/// The role names the policy understands; others are carried but grant nothing.
pub mod roles {
    /// Full control over every project.
    pub const ADMIN: &str = "admin";
    /// Read and write within the caller's project.
    pub const MEMBER: &str = "member";
    /// Read-only within the caller's project.
    pub const READER: &str = "reader";
}

/// An authenticated caller: a user acting within one project, with expanded roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id.
    pub user_id: String,
    /// The user name, for logs and token bodies.
    pub user_name: String,
    /// The project the caller acts in.
    pub project_id: String,
    /// Role names, with implied roles expanded (admin ⇒ member ⇒ reader).
    pub roles: BTreeSet<String>,
}

impl Principal {
    /// Whether the caller holds `role` (after expansion).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// Cloud administrator.
    pub fn is_admin(&self) -> bool {
        self.has_role(roles::ADMIN)
    }

    /// May change things in its own project.
    pub fn can_write(&self) -> bool {
        self.is_admin() || self.has_role(roles::MEMBER)
    }
}

/// Expands implied roles: admin ⇒ member ⇒ reader.
pub fn expand_roles<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in names {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            roles::ADMIN => {
                out.insert(roles::MEMBER.to_string());
                out.insert(roles::READER.to_string());
            }
            roles::MEMBER => {
                out.insert(roles::READER.to_string());
            }
            _ => {}
        }
        out.insert(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_member_and_reader() {
        let r = expand_roles(["Admin"]);
        assert!(r.contains("admin") && r.contains("member") && r.contains("reader"));
        let r = expand_roles(["member"]);
        assert!(!r.contains("admin") && r.contains("reader"));
    }
}
