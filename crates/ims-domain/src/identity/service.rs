//! Identity use cases: bootstrap, password authentication, tokens, and admin CRUD.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::identity::{
    DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Domain, IdentitySeed, Project, Role, TokenInfo,
    TokenRecord, User,
};
use crate::image::service::metadata::now;
use crate::policy::require_admin;
use crate::ports::IdentityRepo;
use crate::principal::{Principal, expand_roles, roles};
use crate::text;

mod password_checks;
use password_checks::PasswordChecks;
pub use password_checks::PasswordLimits;

/// A reference by id, or by name within a domain (by id or name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedRef {
    /// Id, if given.
    pub id: Option<String>,
    /// Name, if given.
    pub name: Option<String>,
    /// Domain id, if given.
    pub domain_id: Option<String>,
    /// Domain name, if given.
    pub domain_name: Option<String>,
}

/// What `ims serve` prints and writes on first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// The admin user's generated password.
    pub admin_password: String,
}

/// How long a validated token is trusted without asking the catalog again. Revocation
/// on this node is immediate; on other nodes it takes effect within this time.
const VALIDATION_CACHE: Duration = Duration::from_secs(10);
const VALIDATION_CACHE_MAX: usize = 10_000;

type TokenCache =
    std::sync::Mutex<std::collections::HashMap<String, (Principal, time::OffsetDateTime)>>;

/// The identity service: authentication (passwords, tokens, AK/SK), bootstrap and the
/// administration of projects, users, roles and credentials.
///
/// Administration methods take `who: Option<&Principal>`. `Some` is an API caller and is
/// checked (admin, or where a method says so the caller's own project or user). `None`
/// is the host operator (`ims admin`) and **skips every check**: only the CLI may pass it.
#[derive(Clone)]
pub struct IdentityService {
    pub(crate) repo: Arc<dyn IdentityRepo>,
    token_ttl: Duration,
    cache: Arc<TokenCache>,
    pub(crate) sealer: Option<crate::sealing::Sealer>,
    pub(crate) checks: Arc<PasswordChecks>,
    /// Where SHA-512 password verifiers and sessions live (see `identity::session`);
    /// `None` in processes that do not serve session logins.
    pub(crate) sessions: Option<Arc<dyn crate::identity::session::SessionRepo>>,
}

/// Random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    hex::encode(buf)
}

fn digest(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Hashes a password with argon2 (slow on purpose; run off the async threads).
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(random_hex(16).as_bytes()).map_err(Error::internal)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

fn bad_credentials() -> Error {
    Error::Unauthenticated("The request you have made requires authentication.".into())
}

impl IdentityService {
    /// A service over `repo` whose tokens live `token_ttl`, with the default password
    /// limits and no credential sealer (AK/SK unavailable until `with_sealer`).
    pub fn new(repo: Arc<dyn IdentityRepo>, token_ttl: Duration) -> Self {
        IdentityService {
            repo,
            token_ttl,
            cache: Arc::default(),
            sealer: None,
            checks: Arc::new(PasswordChecks::new(PasswordLimits::default())),
            sessions: None,
        }
    }

    /// Sets how password checks are limited.
    pub fn with_password_limits(mut self, limits: PasswordLimits) -> Self {
        self.checks = Arc::new(PasswordChecks::new(limits));
        self
    }

    /// Forgets cached validations of `user_id`'s tokens, so a change to the user takes
    /// effect on this node at once (other nodes: within the validation cache's lifetime).
    fn forget_cached(&self, user_id: &str) {
        self.forget_cached_where(|p| p.user_id == user_id);
    }

    /// Forgets the cached validations of the principals `stale` selects.
    fn forget_cached_where(&self, stale: impl Fn(&Principal) -> bool) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (p, _)| !stale(p));
        }
    }

    /// Adds the key that seals stored AK/SK secrets.
    pub fn with_sealer(mut self, sealer: crate::sealing::Sealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The principal of `user_id` acting in `project_id`: both enabled, and the user
    /// holding at least one role there (expanded).
    pub(crate) async fn principal_in(&self, user_id: &str, project_id: &str) -> Result<Principal> {
        let (user, project, granted) = self.active_grant(user_id, project_id).await?;
        Ok(Principal {
            user_id: user.id,
            user_name: user.name,
            project_id: project.id,
            roles: expand_roles(granted.iter().map(|r| r.name.as_str())),
        })
    }

    /// On an empty catalog: creates domain `Default`, roles, project `admin` and user
    /// `admin` with role `admin` and a random password. `None` if already done.
    ///
    /// Everything is written in one transaction, so a failure half-way leaves an empty
    /// catalog (the next start tries again), and of two nodes starting together on one
    /// catalog exactly one bootstraps.
    pub async fn bootstrap(&self) -> Result<Option<Bootstrap>> {
        if self.repo.domain_by_id(DEFAULT_DOMAIN_ID).await?.is_some() {
            return Ok(None);
        }
        let roles: Vec<Role> = [roles::ADMIN, roles::MEMBER, roles::READER]
            .into_iter()
            .map(|name| Role {
                id: random_hex(16),
                name: name.into(),
            })
            .collect();
        let project = Project {
            id: random_hex(16),
            name: "admin".into(),
            domain_id: DEFAULT_DOMAIN_ID.into(),
            description: "Bootstrap project".into(),
            enabled: true,
        };
        let password = random_hex(12);
        let user = User {
            id: random_hex(16),
            name: "admin".into(),
            domain_id: DEFAULT_DOMAIN_ID.into(),
            default_project_id: Some(project.id.clone()),
            enabled: true,
            password_hash: hash_password(password.clone()).await?,
        };
        let admin_id = user.id.clone();
        let seed = IdentitySeed {
            domain: Domain {
                id: DEFAULT_DOMAIN_ID.into(),
                name: DEFAULT_DOMAIN_NAME.into(),
            },
            admin_role_id: roles[0].id.clone(),
            roles,
            project,
            user,
        };
        if !self.repo.bootstrap(&seed).await? {
            return Ok(None);
        }
        // The catalog is bootstrapped now: failing here would lose the only copy of the
        // admin password. Without a verifier the admin logs in everywhere but ZStack,
        // until the password is set again.
        if let Err(e) = self.store_verifier(&admin_id, &password).await {
            tracing::warn!(error = %e, "could not store the admin's digest verifier; set the admin password again for ZStack logins");
        }
        Ok(Some(Bootstrap {
            admin_password: password,
        }))
    }

    /// Password authentication. Returns the token secret and what it grants.
    pub async fn authenticate(
        &self,
        user: &NamedRef,
        password: &str,
        scope: Option<&NamedRef>,
    ) -> Result<(String, TokenInfo)> {
        check_named_ref(user)?;
        scope.map(check_named_ref).transpose()?;
        text::check("password", password)?;
        let user = self.check_password(user, password).await?;
        let project_id = match scope {
            Some(p) => self.resolve_project(p).await?.map(|p| p.id),
            None => user.default_project_id.clone(),
        }
        .ok_or_else(|| {
            Error::Unauthenticated("A project scope is required and could not be found.".into())
        })?;
        if self.repo.roles_of(&project_id, &user.id).await?.is_empty() {
            return Err(Error::Unauthenticated(format!(
                "User {} has no access to project {project_id}",
                user.id
            )));
        }
        let secret = random_hex(32);
        let issued = now();
        let record = TokenRecord {
            digest: digest(&secret),
            user_id: user.id.clone(),
            project_id,
            issued_at: issued,
            expires_at: issued + self.token_ttl,
            audit_id: random_hex(8),
            revoked: false,
        };
        self.repo.insert_token(&record).await?;
        let info = self.token_info(record).await?;
        Ok((secret, info))
    }

    /// The user `r` names if `password` is theirs. Unknown users cost one argon2 check
    /// like known ones, and an account (known or not) that keeps failing backs off.
    async fn check_password(&self, r: &NamedRef, password: &str) -> Result<User> {
        let user = self.resolve_user(r).await?;
        let account = match &user {
            Some(u) => u.id.clone(),
            None => format!(
                "unknown:{}@{}",
                r.name.as_deref().or(r.id.as_deref()).unwrap_or(""),
                r.domain_id
                    .as_deref()
                    .or(r.domain_name.as_deref())
                    .unwrap_or("")
            ),
        };
        self.checks.check_backoff(&*self.repo, &account).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matched = self.checks.verify(password.to_string(), hash).await?;
        let user = user.filter(|u| matched && u.enabled);
        self.checks
            .record(&*self.repo, &account, user.is_some())
            .await?;
        user.ok_or_else(bad_credentials)
    }

    /// Validates a token secret: unknown, expired, revoked or orphaned tokens fail.
    pub async fn validate(&self, token: &str) -> Result<TokenInfo> {
        let record = self
            .repo
            .get_token(&digest(token))
            .await?
            .ok_or_else(bad_credentials)?;
        if record.revoked || record.expires_at <= now() {
            return Err(bad_credentials());
        }
        self.token_info(record).await
    }

    /// The principal a token stands for (validated at most every few seconds).
    pub async fn principal(&self, token: &str) -> Result<Principal> {
        let key = digest(token);
        let t = now();
        if let Ok(cache) = self.cache.lock()
            && let Some((p, until)) = cache.get(&key)
            && *until > t
        {
            return Ok(p.clone());
        }
        let info = self.validate(token).await?;
        let principal = principal_of(&info);
        let until = info.record.expires_at.min(t + VALIDATION_CACHE);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= VALIDATION_CACHE_MAX {
                cache.retain(|_, (_, u)| *u > t);
                if cache.len() >= VALIDATION_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, (principal.clone(), until));
        }
        Ok(principal)
    }

    /// Deletes expired tokens from the catalog.
    pub async fn purge_expired_tokens(&self) -> Result<u64> {
        let t = now();
        self.repo
            .purge_tokens(t, t - password_checks::FORGET_AFTER)
            .await
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&digest(token));
        }
        if self.repo.revoke_token(&digest(token)).await? {
            Ok(())
        } else {
            Err(Error::NotFound {
                kind: crate::Entity::Token,
                id: "subject".into(),
            })
        }
    }

    /// An enabled user, an enabled project, and the roles the user holds there (at
    /// least one): what every way of authenticating must find.
    async fn active_grant(
        &self,
        user_id: &str,
        project_id: &str,
    ) -> Result<(User, Project, Vec<Role>)> {
        let user = self
            .repo
            .get_user(user_id)
            .await?
            .filter(|u| u.enabled)
            .ok_or_else(bad_credentials)?;
        let project = self
            .repo
            .get_project(project_id)
            .await?
            .filter(|p| p.enabled)
            .ok_or_else(bad_credentials)?;
        let granted = self.repo.roles_of(&project.id, &user.id).await?;
        if granted.is_empty() {
            return Err(bad_credentials());
        }
        Ok((user, project, granted))
    }

    async fn token_info(&self, record: TokenRecord) -> Result<TokenInfo> {
        let (user, project, granted) = self
            .active_grant(&record.user_id, &record.project_id)
            .await?;
        let all_roles = self.repo.list_roles(None).await?;
        let names = expand_roles(granted.iter().map(|r| r.name.as_str()));
        let roles = all_roles
            .into_iter()
            .filter(|r| names.contains(&r.name))
            .collect();
        let user_domain = self.domain(&user.domain_id).await?;
        let project_domain = self.domain(&project.domain_id).await?;
        Ok(TokenInfo {
            record,
            user,
            user_domain,
            project,
            project_domain,
            roles,
        })
    }

    async fn domain(&self, id: &str) -> Result<Domain> {
        self.repo
            .domain_by_id(id)
            .await?
            .ok_or_else(|| Error::internal(format!("domain {id} missing")))
    }

    async fn resolve_domain_id(&self, r: &NamedRef) -> Result<Option<String>> {
        if r.domain_id.is_none() && r.domain_name.is_none() {
            return Ok(Some(DEFAULT_DOMAIN_ID.into()));
        }
        // Keystone: an id, when given, wins over a name.
        let domain = match (&r.domain_id, &r.domain_name) {
            (Some(id), _) => self.repo.domain_by_id(id).await?,
            (None, Some(name)) => self.repo.domain_by_name(name).await?,
            (None, None) => None,
        };
        Ok(domain.map(|d| d.id))
    }

    async fn resolve_user(&self, r: &NamedRef) -> Result<Option<User>> {
        if let Some(id) = &r.id {
            return self.repo.get_user(id).await;
        }
        let (Some(name), Some(domain)) = (&r.name, self.resolve_domain_id(r).await?) else {
            return Ok(None);
        };
        self.repo.find_user(&domain, name).await
    }

    async fn resolve_project(&self, r: &NamedRef) -> Result<Option<Project>> {
        if let Some(id) = &r.id {
            return self.repo.get_project(id).await;
        }
        let (Some(name), Some(domain)) = (&r.name, self.resolve_domain_id(r).await?) else {
            return Ok(None);
        };
        Ok(self
            .repo
            .list_projects(Some(name))
            .await?
            .into_iter()
            .find(|p| p.domain_id == domain))
    }

    // ---- administration (API callers must be admins; the CLI acts as the operator) ----

    /// Lists projects, optionally by name.
    pub async fn list_projects(
        &self,
        who: Option<&Principal>,
        name: Option<&str>,
    ) -> Result<Vec<Project>> {
        text::check_opt("name", name)?;
        if let Some(who) = who.filter(|w| !w.is_admin()) {
            let own = self.repo.get_project(&who.project_id).await?;
            return Ok(own
                .into_iter()
                .filter(|p| name.is_none_or(|n| p.name == n))
                .collect());
        }
        self.repo.list_projects(name).await
    }

    /// Loads a project.
    pub async fn get_project(&self, who: Option<&Principal>, id: &str) -> Result<Project> {
        check_refs([id])?;
        if let Some(who) = who.filter(|w| !w.is_admin() && w.project_id != id) {
            require_admin(who)?;
        }
        self.repo
            .get_project(id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: crate::Entity::Project,
                id: id.into(),
            })
    }

    /// Creates a project.
    pub async fn create_project(
        &self,
        who: Option<&Principal>,
        name: &str,
        domain_id: Option<&str>,
        description: &str,
    ) -> Result<Project> {
        who.map(require_admin).transpose()?;
        text::check_opt("domain_id", domain_id)?;
        let domain_id = domain_id.unwrap_or(DEFAULT_DOMAIN_ID);
        self.domain(domain_id)
            .await
            .map_err(|_| Error::invalid(format!("Domain {domain_id} does not exist")))?;
        self.create_project_unchecked(name, domain_id, description)
            .await
    }

    async fn create_project_unchecked(
        &self,
        name: &str,
        domain_id: &str,
        description: &str,
    ) -> Result<Project> {
        check_name(name)?;
        text::check_free_text("description", description)?;
        let project = Project {
            id: random_hex(16),
            name: name.into(),
            domain_id: domain_id.into(),
            description: description.into(),
            enabled: true,
        };
        self.repo.insert_project(&project).await?;
        Ok(project)
    }

    /// Deletes a project.
    pub async fn delete_project(&self, who: Option<&Principal>, id: &str) -> Result<()> {
        who.map(require_admin).transpose()?;
        check_refs([id])?;
        found(
            self.repo.delete_project(id).await?,
            crate::Entity::Project,
            id,
        )?;
        // Its tokens stop working on this node at once, as a deleted user's do.
        self.forget_cached_where(|p| p.project_id == id);
        Ok(())
    }

    /// Lists users.
    pub async fn list_users(
        &self,
        who: Option<&Principal>,
        name: Option<&str>,
    ) -> Result<Vec<User>> {
        who.map(require_admin).transpose()?;
        text::check_opt("name", name)?;
        self.repo.list_users(name).await
    }

    /// Loads a user (admins, or the user itself).
    pub async fn get_user(&self, who: Option<&Principal>, id: &str) -> Result<User> {
        check_refs([id])?;
        if let Some(who) = who.filter(|w| w.user_id != id) {
            require_admin(who)?;
        }
        self.repo
            .get_user(id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: crate::Entity::User,
                id: id.into(),
            })
    }

    /// Creates a user with a password.
    pub async fn create_user(
        &self,
        who: Option<&Principal>,
        name: &str,
        password: &str,
        domain_id: Option<&str>,
        default_project: Option<&str>,
    ) -> Result<User> {
        who.map(require_admin).transpose()?;
        text::check_opt("domain_id", domain_id)?;
        text::check_opt("default_project_id", default_project)?;
        self.create_user_unchecked(
            name,
            password,
            domain_id.unwrap_or(DEFAULT_DOMAIN_ID),
            default_project,
        )
        .await
    }

    async fn create_user_unchecked(
        &self,
        name: &str,
        password: &str,
        domain_id: &str,
        default_project: Option<&str>,
    ) -> Result<User> {
        check_name(name)?;
        if password.is_empty() {
            return Err(Error::invalid("A password is required"));
        }
        text::check("password", password)?;
        let user = User {
            id: random_hex(16),
            name: name.into(),
            domain_id: domain_id.into(),
            default_project_id: default_project.map(str::to_string),
            enabled: true,
            password_hash: hash_password(password.to_string()).await?,
        };
        self.repo.insert_user(&user).await?;
        self.store_verifier(&user.id, password).await?;
        Ok(user)
    }

    /// Replaces a user's password.
    pub async fn set_password(
        &self,
        who: Option<&Principal>,
        id: &str,
        password: &str,
    ) -> Result<()> {
        who.map(require_admin).transpose()?;
        check_refs([id])?;
        text::check("password", password)?;
        let hash = hash_password(password.to_string()).await?;
        // The catalog revokes the user's tokens with the change (Keystone does too).
        found(
            self.repo.set_password(id, &hash).await?,
            crate::Entity::User,
            id,
        )?;
        self.store_verifier(id, password).await?;
        self.forget_cached(id);
        Ok(())
    }

    /// Deletes a user.
    pub async fn delete_user(&self, who: Option<&Principal>, id: &str) -> Result<()> {
        who.map(require_admin).transpose()?;
        check_refs([id])?;
        found(self.repo.delete_user(id).await?, crate::Entity::User, id)?;
        // Its tokens fail validation now; drop the cached ones so this node agrees at once.
        self.forget_cached(id);
        Ok(())
    }

    /// Lists roles.
    pub async fn list_roles(&self, name: Option<&str>) -> Result<Vec<Role>> {
        text::check_opt("name", name)?;
        self.repo.list_roles(name).await
    }

    /// Creates a role.
    pub async fn create_role(&self, who: Option<&Principal>, name: &str) -> Result<Role> {
        who.map(require_admin).transpose()?;
        check_name(name)?;
        let role = Role {
            id: random_hex(16),
            name: name.to_ascii_lowercase(),
        };
        self.repo.insert_role(&role).await?;
        Ok(role)
    }

    /// Deletes a role.
    pub async fn delete_role(&self, who: Option<&Principal>, id: &str) -> Result<()> {
        who.map(require_admin).transpose()?;
        check_refs([id])?;
        found(self.repo.delete_role(id).await?, crate::Entity::Role, id)
    }

    /// Grants a role on a project to a user (all by id).
    pub async fn grant(
        &self,
        who: Option<&Principal>,
        project_id: &str,
        user_id: &str,
        role_id: &str,
    ) -> Result<()> {
        who.map(require_admin).transpose()?;
        check_refs([project_id, user_id, role_id])?;
        self.get_project(None, project_id).await?;
        self.get_user(None, user_id).await?;
        self.repo
            .get_role(role_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: crate::Entity::Role,
                id: role_id.into(),
            })?;
        self.repo.grant(project_id, user_id, role_id).await
    }

    /// Grants a role by role name.
    pub async fn grant_by_name(&self, project_id: &str, user_id: &str, role: &str) -> Result<()> {
        let role = self
            .repo
            .list_roles(Some(role))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFound {
                kind: crate::Entity::Role,
                id: role.into(),
            })?;
        self.repo.grant(project_id, user_id, &role.id).await
    }

    /// Revokes a role.
    pub async fn revoke(
        &self,
        who: Option<&Principal>,
        project_id: &str,
        user_id: &str,
        role_id: &str,
    ) -> Result<()> {
        who.map(require_admin).transpose()?;
        check_refs([project_id, user_id, role_id])?;
        found(
            self.repo.revoke(project_id, user_id, role_id).await?,
            crate::Entity::RoleAssignment,
            role_id,
        )?;
        // Tokens carry no roles: each validation rebuilds them from the grants, so
        // dropping the cached ones is all a role removal needs.
        self.forget_cached(user_id);
        Ok(())
    }

    /// Roles granted directly to a user on a project.
    pub async fn roles_of(&self, project_id: &str, user_id: &str) -> Result<Vec<Role>> {
        check_refs([project_id, user_id])?;
        self.repo.roles_of(project_id, user_id).await
    }

    /// Finds a project id by id or name (for the CLI).
    pub async fn project_id(&self, id_or_name: &str) -> Result<String> {
        self.find_id(Named::Project, id_or_name).await
    }

    /// Finds a user id by id or name (for the CLI).
    pub async fn user_id(&self, id_or_name: &str) -> Result<String> {
        self.find_id(Named::User, id_or_name).await
    }

    /// Finds a role id by id or name (for the CLI).
    pub async fn role_id(&self, id_or_name: &str) -> Result<String> {
        self.find_id(Named::Role, id_or_name).await
    }

    /// The id of the entity of `kind` whose id is `id_or_name`, else of the one so named.
    async fn find_id(&self, kind: Named, id_or_name: &str) -> Result<String> {
        check_refs([id_or_name])?;
        let by_name = NamedRef {
            name: Some(id_or_name.into()),
            ..Default::default()
        };
        let found = match kind {
            Named::Project => match self.repo.get_project(id_or_name).await? {
                Some(p) => Some(p),
                None => self.resolve_project(&by_name).await?,
            }
            .map(|p| p.id),
            Named::User => match self.repo.get_user(id_or_name).await? {
                Some(u) => Some(u),
                None => self.resolve_user(&by_name).await?,
            }
            .map(|u| u.id),
            Named::Role => match self.repo.get_role(id_or_name).await? {
                Some(r) => Some(r),
                None => self
                    .repo
                    .list_roles(Some(id_or_name))
                    .await?
                    .into_iter()
                    .next(),
            }
            .map(|r| r.id),
        };
        found.ok_or_else(|| Error::NotFound {
            kind: kind.entity(),
            id: id_or_name.into(),
        })
    }
}

/// The entities the CLI names by id or name.
#[derive(Debug, Clone, Copy)]
enum Named {
    Project,
    User,
    Role,
}

impl Named {
    fn entity(self) -> crate::Entity {
        match self {
            Named::Project => crate::Entity::Project,
            Named::User => crate::Entity::User,
            Named::Role => crate::Entity::Role,
        }
    }
}

/// The principal a validated token stands for.
pub fn principal_of(info: &TokenInfo) -> Principal {
    Principal {
        user_id: info.user.id.clone(),
        user_name: info.user.name.clone(),
        project_id: info.project.id.clone(),
        roles: info.roles.iter().map(|r| r.name.clone()).collect(),
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(Error::invalid("Names must be 1 to 255 characters"));
    }
    text::check("name", name)
}

/// Ids and names that callers send to look things up (paths, filters, auth bodies).
fn check_refs<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<()> {
    values.into_iter().try_for_each(|v| text::check("id", v))
}

fn check_named_ref(r: &NamedRef) -> Result<()> {
    [&r.id, &r.name, &r.domain_id, &r.domain_name]
        .into_iter()
        .try_for_each(|v| text::check_opt("name", v.as_deref()))
}

fn found(ok: bool, kind: crate::Entity, id: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::NotFound {
            kind,
            id: id.into(),
        })
    }
}
