//! Digest verifiers, sessions (`identity::session`) and API call records
//! (`api_call`), migration `0010_sessions_api_calls.sql`.

use async_trait::async_trait;
use ims_domain::Result;
use ims_domain::api_call::{ApiCall, ApiCallRepo, CallState};
use ims_domain::identity::session::{SessionRecord, SessionRepo};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::Catalog;
use crate::codec::{parse_ts, parse_ts_opt, ts};
use crate::sql::{Run, col};

fn session(row: &AnyRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        digest: col(row, "digest")?,
        user_id: col(row, "user_id")?,
        project_id: col(row, "project_id")?,
        created_at: parse_ts(&col::<String>(row, "created_at")?)?,
        expires_at: parse_ts(&col::<String>(row, "expires_at")?)?,
    })
}

#[async_trait]
impl SessionRepo for Catalog {
    async fn set_verifier(&self, user_id: &str, verifier: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM password_verifiers WHERE user_id = $1")
            .bind(user_id)
            .affected(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO password_verifiers (user_id, sha512_verifier) VALUES ($1, $2)")
            .bind(user_id)
            .bind(verifier)
            .affected(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .affected(&mut *tx)
            .await?;
        tx.commit().await.map_err(crate::db_err)
    }

    async fn verifier(&self, user_id: &str) -> Result<Option<String>> {
        sqlx::query("SELECT sha512_verifier FROM password_verifiers WHERE user_id = $1")
            .bind(user_id)
            .fetch_opt(&self.pool, |r| col(r, "sha512_verifier"))
            .await
    }

    async fn insert_session(&self, s: &SessionRecord) -> Result<()> {
        sqlx::query("INSERT INTO sessions (digest, user_id, project_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.digest)
            .bind(&s.user_id)
            .bind(&s.project_id)
            .bind(ts(s.created_at))
            .bind(ts(s.expires_at))
            .affected(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_session(&self, digest: &str) -> Result<Option<SessionRecord>> {
        sqlx::query("SELECT digest, user_id, project_id, created_at, expires_at FROM sessions WHERE digest = $1")
            .bind(digest)
            .fetch_opt(&self.pool, session)
            .await
    }

    async fn extend_session(&self, digest: &str, until: OffsetDateTime) -> Result<bool> {
        // Never moves an expiry backwards (a slower node's older "now").
        let n = sqlx::query(
            "UPDATE sessions SET expires_at = $1 WHERE digest = $2 AND expires_at < $1",
        )
        .bind(ts(until))
        .bind(digest)
        .affected(&self.pool)
        .await?;
        if n > 0 {
            return Ok(true);
        }
        Ok(self.get_session(digest).await?.is_some())
    }

    async fn delete_session(&self, digest: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM sessions WHERE digest = $1")
            .bind(digest)
            .affected(&self.pool)
            .await?
            > 0)
    }

    async fn count_sessions(&self, user_id: &str, now: OffsetDateTime) -> Result<u64> {
        let n = sqlx::query(
            "SELECT COUNT(*) AS n FROM sessions WHERE user_id = $1 AND expires_at > $2",
        )
        .bind(user_id)
        .bind(ts(now))
        .fetch_opt(&self.pool, |r| col::<i64>(r, "n"))
        .await?
        .unwrap_or(0);
        Ok(crate::codec::to_u64(n))
    }

    async fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(ts(now))
            .affected(&self.pool)
            .await
    }
}

fn call(row: &AnyRow) -> Result<ApiCall> {
    let caller: String = col(row, "caller")?;
    let result: Option<String> = col(row, "result")?;
    let state: String = col(row, "state")?;
    Ok(ApiCall {
        id: col(row, "id")?,
        api: col(row, "api")?,
        caller: serde_json::from_str(&caller).map_err(ims_domain::Error::internal)?,
        job_id: col(row, "job_id")?,
        subject_id: col(row, "subject_id")?,
        state: state.parse()?,
        result: result
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(ims_domain::Error::internal)?,
        created_at: parse_ts(&col::<String>(row, "created_at")?)?,
        expires_at: parse_ts_opt(col(row, "expires_at")?)?,
    })
}

#[async_trait]
impl ApiCallRepo for Catalog {
    async fn insert_call(&self, c: &ApiCall) -> Result<()> {
        let caller = serde_json::to_string(&c.caller).map_err(ims_domain::Error::internal)?;
        let result = c
            .result
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(ims_domain::Error::internal)?;
        sqlx::query("INSERT INTO api_calls (id, api, caller, project_id, job_id, subject_id, state, result, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&c.id)
            .bind(&c.api)
            .bind(caller)
            .bind(&c.caller.project_id)
            .bind(c.job_id.clone())
            .bind(c.subject_id.clone())
            .bind(c.state.as_str())
            .bind(result)
            .bind(ts(c.created_at))
            .bind(c.expires_at.map(ts))
            .affected(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_call(&self, id: &str) -> Result<Option<ApiCall>> {
        sqlx::query("SELECT id, api, caller, job_id, subject_id, state, result, created_at, expires_at FROM api_calls WHERE id = $1")
            .bind(id)
            .fetch_opt(&self.pool, call)
            .await
    }

    async fn link_call(
        &self,
        id: &str,
        job_id: Option<&str>,
        subject_id: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE api_calls SET job_id = $1, subject_id = $2 WHERE id = $3")
            .bind(job_id.map(str::to_string))
            .bind(subject_id.map(str::to_string))
            .bind(id)
            .affected(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_call(
        &self,
        id: &str,
        state: CallState,
        result: &serde_json::Value,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let result = serde_json::to_string(result).map_err(ims_domain::Error::internal)?;
        sqlx::query("UPDATE api_calls SET state = $1, result = $2, expires_at = $3 WHERE id = $4 AND state = 'running'")
            .bind(state.as_str())
            .bind(result)
            .bind(ts(expires_at))
            .bind(id)
            .affected(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_calls(&self, now: OffsetDateTime) -> Result<u64> {
        sqlx::query("DELETE FROM api_calls WHERE expires_at < $1")
            .bind(ts(now))
            .affected(&self.pool)
            .await
    }
}
