//! What identity needs from the catalog: domains, projects, users, roles, tokens and
//! AK/SK credentials.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;
use crate::identity::{Credential, Domain, IdentitySeed, Project, Role, TokenRecord, User};

/// Identity storage.
#[async_trait]
pub trait IdentityRepo: Send + Sync {
    /// Loads a domain by id.
    async fn domain_by_id(&self, id: &str) -> Result<Option<Domain>>;
    /// Finds a domain by name.
    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>>;
    /// Stores `seed` in one transaction; `false`, with nothing written, when its domain
    /// exists already (bootstrapped before, or by another node at the same moment).
    async fn bootstrap(&self, seed: &IdentitySeed) -> Result<bool>;
    /// Creates a project; `AlreadyExists` on a duplicate name in its domain.
    async fn insert_project(&self, project: &Project) -> Result<()>;
    /// Loads a project by id.
    async fn get_project(&self, id: &str) -> Result<Option<Project>>;
    /// Lists projects, optionally by exact name.
    async fn list_projects(&self, name: Option<&str>) -> Result<Vec<Project>>;
    /// Deletes a project and its role assignments.
    async fn delete_project(&self, id: &str) -> Result<bool>;
    /// Creates a user; `AlreadyExists` on a duplicate name in its domain.
    async fn insert_user(&self, user: &User) -> Result<()>;
    /// Loads a user by id.
    async fn get_user(&self, id: &str) -> Result<Option<User>>;
    /// Finds a user by name within a domain.
    async fn find_user(&self, domain_id: &str, name: &str) -> Result<Option<User>>;
    /// Lists users, optionally by exact name.
    async fn list_users(&self, name: Option<&str>) -> Result<Vec<User>>;
    /// Replaces a user's password hash and revokes every token the user holds.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<bool>;
    /// Deletes a user, its assignments and its tokens.
    async fn delete_user(&self, id: &str) -> Result<bool>;
    /// Creates a role; `AlreadyExists` on a duplicate name.
    async fn insert_role(&self, role: &Role) -> Result<()>;
    /// Loads a role by id.
    async fn get_role(&self, id: &str) -> Result<Option<Role>>;
    /// Lists roles, optionally by exact name.
    async fn list_roles(&self, name: Option<&str>) -> Result<Vec<Role>>;
    /// Deletes a role and its assignments.
    async fn delete_role(&self, id: &str) -> Result<bool>;
    /// Grants a role (idempotent).
    async fn grant(&self, project_id: &str, user_id: &str, role_id: &str) -> Result<()>;
    /// Revokes a role; `false` if it was not granted.
    async fn revoke(&self, project_id: &str, user_id: &str, role_id: &str) -> Result<bool>;
    /// Roles granted to a user on a project.
    async fn roles_of(&self, project_id: &str, user_id: &str) -> Result<Vec<Role>>;
    /// Stores a token.
    async fn insert_token(&self, token: &TokenRecord) -> Result<()>;
    /// Loads a token by digest.
    async fn get_token(&self, digest: &str) -> Result<Option<TokenRecord>>;
    /// Revokes a token; `false` if unknown.
    async fn revoke_token(&self, digest: &str) -> Result<bool>;
    /// Deletes tokens that expired before `now`, signature uses whose window closed
    /// and password failures last counted before `forget_before`.
    async fn purge_tokens(&self, now: OffsetDateTime, forget_before: OffsetDateTime)
    -> Result<u64>;
    /// Records the first use of signature `digest` (valid until `expires`) at `now`, or
    /// returns when it was first used if that was earlier, on any node.
    async fn signature_first_used(
        &self,
        digest: &str,
        now: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> Result<OffsetDateTime>;
    /// The consecutive failed password checks of account `digest`, and the last one's
    /// time.
    async fn login_failures(&self, digest: &str) -> Result<Option<(u32, OffsetDateTime)>>;
    /// Counts one more failure of account `digest` at `now`, starting again from one
    /// when the last was before `forget_before`.
    async fn add_login_failure(
        &self,
        digest: &str,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<()>;
    /// Forgets account `digest`'s failures (a successful check).
    async fn clear_login_failures(&self, digest: &str) -> Result<()>;
    /// The check value sealed under the credential key, if one was recorded.
    async fn sealer_check(&self) -> Result<Option<String>>;
    /// Records `check` unless a value is recorded already; returns the recorded one (the
    /// first of two nodes starting together wins).
    async fn record_sealer_check(&self, check: &str) -> Result<String>;
    /// Stores a new AK/SK credential.
    async fn insert_credential(&self, credential: &Credential) -> Result<()>;
    /// A credential by access key.
    async fn get_credential(&self, access: &str) -> Result<Option<Credential>>;
    /// A user's credentials.
    async fn list_credentials(&self, user_id: &str) -> Result<Vec<Credential>>;
    /// Deletes a credential; false if absent.
    async fn delete_credential(&self, access: &str) -> Result<bool>;
}
