//! Identity entities: domains, projects, users, roles and tokens (a Keystone v3 subset).

pub mod credentials;
pub mod principal;
pub mod repo;
pub mod sealing;
pub mod service;

use time::OffsetDateTime;

/// The id of the one domain ims creates on first start.
pub const DEFAULT_DOMAIN_ID: &str = "default";
/// Its name, as clients send it in `user_domain_name`.
pub const DEFAULT_DOMAIN_NAME: &str = "Default";

/// A Keystone domain: a namespace for projects and users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A project (tenant): owns images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Id (32 hex digits, as Keystone makes them).
    pub id: String,
    /// Name, unique within its domain.
    pub name: String,
    /// Owning domain id.
    pub domain_id: String,
    /// Free text.
    pub description: String,
    /// Disabled projects cannot be scoped to.
    pub enabled: bool,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: String,
    /// Name, unique within its domain.
    pub name: String,
    /// Owning domain id.
    pub domain_id: String,
    /// Default project, if any.
    pub default_project_id: Option<String>,
    /// Disabled users cannot authenticate.
    pub enabled: bool,
    /// The argon2 PHC string of the password; never leaves the domain.
    pub password_hash: String,
}

/// A role name with an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Id.
    pub id: String,
    /// Name (lower case).
    pub name: String,
}

/// The first identity of an empty catalog, stored all at once (or not at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySeed {
    /// The default domain; its existence marks a bootstrapped catalog.
    pub domain: Domain,
    /// The built-in roles.
    pub roles: Vec<Role>,
    /// The admin project.
    pub project: Project,
    /// The admin user, in `project`.
    pub user: User,
    /// The role `user` holds on `project` (one of `roles`).
    pub admin_role_id: String,
}

/// A stored token: only the digest of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Hex SHA-256 of the token secret.
    pub digest: String,
    /// The authenticated user.
    pub user_id: String,
    /// The project the token is scoped to.
    pub project_id: String,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// Expiry time.
    pub expires_at: OffsetDateTime,
    /// An audit id shown to clients.
    pub audit_id: String,
    /// Set when revoked.
    pub revoked: bool,
}

/// A validated token with everything a token body shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The stored token.
    pub record: TokenRecord,
    /// The user.
    pub user: User,
    /// The user's domain.
    pub user_domain: Domain,
    /// The scoped project.
    pub project: Project,
    /// The project's domain.
    pub project_domain: Domain,
    /// Roles with implied ones expanded, as (id, name).
    pub roles: Vec<Role>,
}

/// An access-key credential (Huawei AK/SK) belonging to a user. Requests signed with
/// it act as that user, in `project_id` unless they name another project of the user's.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The access key (AK): public, 20 upper-case letters and digits.
    pub access: String,
    /// The secret key (SK), sealed with the node's credential key. HMAC verification
    /// needs the secret itself, so it cannot be a one-way hash.
    pub sealed_secret: String,
    /// The owner.
    pub user_id: String,
    /// The default project of signed requests.
    pub project_id: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access", &self.access)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}
