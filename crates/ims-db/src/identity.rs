//! `IdentityRepo` on the catalog database.

use async_trait::async_trait;
use ims_domain::identity::{Credential, Domain, IdentitySeed, Project, Role, TokenRecord, User};
use ims_domain::ports::IdentityRepo;
use ims_domain::{Entity, Error, Result};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::codec::{parse_ts, ts};
use crate::sql::{Run, col, flag};
use crate::{Catalog, db_err};

/// The `kms_master` row (the table of check values of the keys that seal catalog data)
/// holding a value sealed under the credential key.
const SEALER_ROW: &str = "credential_key";

fn s(row: &AnyRow, c: &str) -> Result<String> {
    col(row, c)
}

fn project(row: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: s(row, "id")?,
        name: s(row, "name")?,
        domain_id: s(row, "domain_id")?,
        description: s(row, "description")?,
        enabled: flag(row, "enabled")?,
    })
}

fn user(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: s(row, "id")?,
        name: s(row, "name")?,
        domain_id: s(row, "domain_id")?,
        default_project_id: col(row, "default_project_id")?,
        enabled: flag(row, "enabled")?,
        password_hash: s(row, "password_hash")?,
    })
}

fn role(row: &AnyRow) -> Result<Role> {
    Ok(Role {
        id: s(row, "id")?,
        name: s(row, "name")?,
    })
}

fn token(row: &AnyRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        digest: s(row, "digest")?,
        user_id: s(row, "user_id")?,
        project_id: s(row, "project_id")?,
        issued_at: parse_ts(&s(row, "issued_at")?)?,
        expires_at: parse_ts(&s(row, "expires_at")?)?,
        audit_id: s(row, "audit_id")?,
        revoked: flag(row, "revoked")?,
    })
}

fn conflict(kind: Entity, name: &str) -> impl Fn(sqlx::Error) -> Error {
    move |e| match db_err(e) {
        Error::Conflict(_) => Error::AlreadyExists {
            kind,
            id: name.to_string(),
        },
        other => other,
    }
}

fn credential(row: &AnyRow) -> Result<Credential> {
    Ok(Credential {
        access: s(row, "access")?,
        sealed_secret: s(row, "sealed_secret")?,
        user_id: s(row, "user_id")?,
        project_id: s(row, "project_id")?,
        created_at: parse_ts(&s(row, "created_at")?)?,
    })
}

const CREDENTIAL_COLS: &str =
    "SELECT access, sealed_secret, user_id, project_id, created_at FROM credentials";

async fn insert_project(conn: &mut AnyConnection, p: &Project) -> Result<()> {
    sqlx::query("INSERT INTO projects (id, name, domain_id, description, enabled) VALUES ($1, $2, $3, $4, $5)")
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.domain_id)
        .bind(&p.description)
        .bind(i64::from(p.enabled))
        .execute(conn)
        .await
        .map_err(conflict(Entity::Project, &p.name))?;
    Ok(())
}

async fn insert_user(conn: &mut AnyConnection, u: &User) -> Result<()> {
    sqlx::query("INSERT INTO users (id, name, domain_id, default_project_id, enabled, password_hash) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&u.id)
        .bind(&u.name)
        .bind(&u.domain_id)
        .bind(u.default_project_id.clone())
        .bind(i64::from(u.enabled))
        .bind(&u.password_hash)
        .execute(conn)
        .await
        .map_err(conflict(Entity::User, &u.name))?;
    Ok(())
}

/// Idempotent, also when two callers grant the same role at once.
async fn grant(
    conn: &mut AnyConnection,
    project_id: &str,
    user_id: &str,
    role_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO role_assignments (project_id, user_id, role_id) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(role_id)
    .affected(conn)
    .await?;
    Ok(())
}

const PROJECT_COLS: &str = "SELECT id, name, domain_id, description, enabled FROM projects";
const USER_COLS: &str =
    "SELECT id, name, domain_id, default_project_id, enabled, password_hash FROM users";

impl Catalog {
    async fn one_domain(&self, column: &'static str, value: &str) -> Result<Option<Domain>> {
        let sql = format!("SELECT id, name FROM domains WHERE {column} = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .fetch_opt(&self.pool, |r| {
                Ok(Domain {
                    id: s(r, "id")?,
                    name: s(r, "name")?,
                })
            })
            .await
    }
}

#[async_trait]
impl IdentityRepo for Catalog {
    async fn domain_by_id(&self, id: &str) -> Result<Option<Domain>> {
        self.one_domain("id", id).await
    }

    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>> {
        self.one_domain("name", name).await
    }

    async fn bootstrap(&self, seed: &IdentitySeed) -> Result<bool> {
        let mut tx = self.begin().await?;
        // The domain row is the gate: a second node's insert waits for the first one's
        // transaction and then inserts nothing.
        let created =
            sqlx::query("INSERT INTO domains (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(&seed.domain.id)
                .bind(&seed.domain.name)
                .affected(&mut *tx)
                .await?;
        if created == 0 {
            tx.rollback().await.map_err(db_err)?;
            return Ok(false);
        }
        for r in &seed.roles {
            sqlx::query("INSERT INTO roles (id, name) VALUES ($1, $2)")
                .bind(&r.id)
                .bind(&r.name)
                .execute(&mut *tx)
                .await
                .map_err(conflict(Entity::Role, &r.name))?;
        }
        insert_project(&mut tx, &seed.project).await?;
        insert_user(&mut tx, &seed.user).await?;
        grant(
            &mut tx,
            &seed.project.id,
            &seed.user.id,
            &seed.admin_role_id,
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn insert_project(&self, p: &Project) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        insert_project(&mut conn, p).await
    }

    async fn get_project(&self, id: &str) -> Result<Option<Project>> {
        let sql = format!("{PROJECT_COLS} WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_opt(&self.pool, project)
            .await
    }

    async fn list_projects(&self, name: Option<&str>) -> Result<Vec<Project>> {
        let sql = format!("{PROJECT_COLS} WHERE ($1 = '' OR name = $1) ORDER BY name");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.unwrap_or(""))
            .fetch_each(&self.pool, project)
            .await
    }

    async fn delete_project(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .affected(&self.pool)
            .await?;
        Ok(done > 0)
    }

    async fn insert_user(&self, u: &User) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        insert_user(&mut conn, u).await
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        let sql = format!("{USER_COLS} WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_opt(&self.pool, user)
            .await
    }

    async fn find_user(&self, domain_id: &str, name: &str) -> Result<Option<User>> {
        let sql = format!("{USER_COLS} WHERE domain_id = $1 AND name = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(domain_id)
            .bind(name)
            .fetch_opt(&self.pool, user)
            .await
    }

    async fn list_users(&self, name: Option<&str>) -> Result<Vec<User>> {
        let sql = format!("{USER_COLS} WHERE ($1 = '' OR name = $1) ORDER BY name");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.unwrap_or(""))
            .fetch_each(&self.pool, user)
            .await
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .affected(&mut *tx)
            .await?;
        // Whoever knew the old password may hold tokens: they go with it.
        sqlx::query("UPDATE tokens SET revoked = 1 WHERE user_id = $1 AND revoked = 0")
            .bind(user_id)
            .affected(&mut *tx)
            .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(done > 0)
    }

    async fn delete_user(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .affected(&self.pool)
            .await?;
        Ok(done > 0)
    }

    async fn insert_role(&self, r: &Role) -> Result<()> {
        sqlx::query("INSERT INTO roles (id, name) VALUES ($1, $2)")
            .bind(&r.id)
            .bind(&r.name)
            .execute(&self.pool)
            .await
            .map_err(conflict(Entity::Role, &r.name))?;
        Ok(())
    }

    async fn get_role(&self, id: &str) -> Result<Option<Role>> {
        sqlx::query("SELECT id, name FROM roles WHERE id = $1")
            .bind(id)
            .fetch_opt(&self.pool, role)
            .await
    }

    async fn list_roles(&self, name: Option<&str>) -> Result<Vec<Role>> {
        sqlx::query("SELECT id, name FROM roles WHERE ($1 = '' OR name = $1) ORDER BY name")
            .bind(name.unwrap_or("").to_ascii_lowercase())
            .fetch_each(&self.pool, role)
            .await
    }

    async fn delete_role(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM roles WHERE id = $1")
            .bind(id)
            .affected(&self.pool)
            .await?;
        Ok(done > 0)
    }

    async fn grant(&self, project_id: &str, user_id: &str, role_id: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        grant(&mut conn, project_id, user_id, role_id).await
    }

    async fn revoke(&self, project_id: &str, user_id: &str, role_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM role_assignments WHERE project_id = $1 AND user_id = $2 AND role_id = $3",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role_id)
        .affected(&self.pool)
        .await?;
        Ok(done > 0)
    }

    async fn roles_of(&self, project_id: &str, user_id: &str) -> Result<Vec<Role>> {
        sqlx::query(
            "SELECT r.id, r.name FROM roles r JOIN role_assignments a ON a.role_id = r.id \
             WHERE a.project_id = $1 AND a.user_id = $2 ORDER BY r.name",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_each(&self.pool, role)
        .await
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<()> {
        sqlx::query("INSERT INTO tokens (digest, user_id, project_id, issued_at, expires_at, audit_id, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&t.digest)
            .bind(&t.user_id)
            .bind(&t.project_id)
            .bind(ts(t.issued_at))
            .bind(ts(t.expires_at))
            .bind(&t.audit_id)
            .bind(i64::from(t.revoked))
            .affected(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_token(&self, digest: &str) -> Result<Option<TokenRecord>> {
        sqlx::query("SELECT digest, user_id, project_id, issued_at, expires_at, audit_id, revoked FROM tokens WHERE digest = $1")
            .bind(digest)
            .fetch_opt(&self.pool, token)
            .await
    }

    async fn revoke_token(&self, digest: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE tokens SET revoked = 1 WHERE digest = $1 AND revoked = 0")
            .bind(digest)
            .affected(&self.pool)
            .await?;
        Ok(done > 0)
    }

    async fn purge_tokens(
        &self,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<u64> {
        let mut purged = 0;
        for (sql, at) in [
            ("DELETE FROM tokens WHERE expires_at < $1", now),
            ("DELETE FROM signature_uses WHERE expires_at < $1", now),
            (
                "DELETE FROM login_failures WHERE last_at < $1",
                forget_before,
            ),
        ] {
            purged += sqlx::query(sql).bind(ts(at)).affected(&self.pool).await?;
        }
        Ok(purged)
    }

    async fn signature_first_used(
        &self,
        digest: &str,
        now: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> Result<OffsetDateTime> {
        // A row whose window closed (not yet purged) is taken over as a new first use.
        let new = sqlx::query(
            "INSERT INTO signature_uses (digest, first_used_at, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO UPDATE SET first_used_at = $2, expires_at = $3 \
             WHERE signature_uses.expires_at < $2",
        )
        .bind(digest)
        .bind(ts(now))
        .bind(ts(expires))
        .affected(&self.pool)
        .await?;
        if new > 0 {
            return Ok(now);
        }
        let first = sqlx::query("SELECT first_used_at FROM signature_uses WHERE digest = $1")
            .bind(digest)
            .fetch_opt(&self.pool, |r| col::<String>(r, "first_used_at"))
            .await?;
        first.map_or(Ok(now), |t| parse_ts(&t))
    }

    async fn login_failures(&self, digest: &str) -> Result<Option<(u32, OffsetDateTime)>> {
        sqlx::query("SELECT failures, last_at FROM login_failures WHERE digest = $1")
            .bind(digest)
            .fetch_opt(&self.pool, |r| {
                let n = col::<i64>(r, "failures")?;
                Ok((
                    u32::try_from(n).unwrap_or(u32::MAX),
                    parse_ts(&col::<String>(r, "last_at")?)?,
                ))
            })
            .await
    }

    async fn add_login_failure(
        &self,
        digest: &str,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_failures (digest, failures, last_at) VALUES ($1, 1, $2) \
             ON CONFLICT (digest) DO UPDATE SET last_at = $2, failures = CASE \
             WHEN login_failures.last_at < $3 THEN 1 ELSE login_failures.failures + 1 END",
        )
        .bind(digest)
        .bind(ts(now))
        .bind(ts(forget_before))
        .affected(&self.pool)
        .await?;
        Ok(())
    }

    async fn clear_login_failures(&self, digest: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE digest = $1")
            .bind(digest)
            .affected(&self.pool)
            .await?;
        Ok(())
    }

    async fn sealer_check(&self) -> Result<Option<String>> {
        self.check_value(SEALER_ROW).await
    }

    async fn record_sealer_check(&self, check: &str) -> Result<String> {
        self.record_check_value(SEALER_ROW, check).await
    }

    async fn insert_credential(&self, c: &Credential) -> Result<()> {
        sqlx::query("INSERT INTO credentials (access, sealed_secret, user_id, project_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&c.access)
            .bind(&c.sealed_secret)
            .bind(&c.user_id)
            .bind(&c.project_id)
            .bind(ts(c.created_at))
            .execute(&self.pool)
            .await
            .map_err(conflict(Entity::Credential, &c.access))?;
        Ok(())
    }

    async fn get_credential(&self, access: &str) -> Result<Option<Credential>> {
        let sql = format!("{CREDENTIAL_COLS} WHERE access = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(access)
            .fetch_opt(&self.pool, credential)
            .await
    }

    async fn list_credentials(&self, user_id: &str) -> Result<Vec<Credential>> {
        let sql = format!("{CREDENTIAL_COLS} WHERE user_id = $1 ORDER BY created_at, access");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_each(&self.pool, credential)
            .await
    }

    async fn delete_credential(&self, access: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM credentials WHERE access = $1")
            .bind(access)
            .affected(&self.pool)
            .await?;
        Ok(done == 1)
    }
}
