//! Identity entities: domains, projects, users, roles and tokens (a Keystone v3 subset).

pub mod credentials;
pub mod principal;
pub mod repo;
pub mod sealing;
pub mod service;
pub mod session;

use time::OffsetDateTime;

/// The id of the one domain ims creates on first start.
pub const DEFAULT_DOMAIN_ID: &str = "default";
/// Its name, as clients send it in `user_domain_name`.
pub const DEFAULT_DOMAIN_NAME: &str = "Default";

/// A Keystone domain: a namespace for projects and users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// `default` for the one domain ims creates ([`DEFAULT_DOMAIN_ID`]); ims makes no
    /// other.
    pub id: String,
    /// Unique; `Default` for the default domain.
    pub name: String,
}

/// A project (tenant): owns images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// 32 random lower-case hex digits, as Keystone makes them.
    pub id: String,
    /// Unique within its domain.
    pub name: String,
    /// The domain it belongs to (`default`: ims has only that one).
    pub domain_id: String,
    /// Free text (tab and line breaks allowed; other control characters refused).
    pub description: String,
    /// Disabled projects cannot be scoped to.
    pub enabled: bool,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// 32 random lower-case hex digits.
    pub id: String,
    /// Unique within its domain; what a password login names.
    pub name: String,
    /// The domain it belongs to (`default`: ims has only that one).
    pub domain_id: String,
    /// The project an unscoped token is scoped to; without one an unscoped login fails.
    pub default_project_id: Option<String>,
    /// Disabled users cannot authenticate.
    pub enabled: bool,
    /// The argon2 PHC string of the password; never leaves the domain.
    pub password_hash: String,
}

/// A role name with an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// 32 random lower-case hex digits.
    pub id: String,
    /// Lower case (lowered on create); `admin`, `member` and `reader` exist from the
    /// first start and imply each other in that order.
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
    /// When it was issued (UTC).
    pub issued_at: OffsetDateTime,
    /// `issued_at` plus `token_ttl_secs`; from then on the token is refused.
    pub expires_at: OffsetDateTime,
    /// 16 random hex digits, shown to clients in `audit_ids`; not a secret.
    pub audit_id: String,
    /// Set by `DELETE /v3/auth/tokens` or a password change; a revoked token is refused.
    pub revoked: bool,
}

/// A validated token with everything a token body shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The stored token.
    pub record: TokenRecord,
    /// The user it authenticates, as stored now.
    pub user: User,
    /// The user's domain.
    pub user_domain: Domain,
    /// The project it is scoped to, as stored now.
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
    /// The user whose rights a signed request has.
    pub user_id: String,
    /// The project of signed requests that send no `X-Project-Id`.
    pub project_id: String,
    /// When it was created (UTC).
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
