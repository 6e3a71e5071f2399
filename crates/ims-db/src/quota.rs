//! Size-quota reservations: parallel transfers of one project claim room one after
//! another, so they cannot each take the same headroom.

use ims_domain::ports::SizeClaim;
use ims_domain::{Error, Result};
use sqlx::{Any, Transaction};

use crate::codec::{to_i64, to_u64};
use crate::sql::Run;
use crate::{Catalog, db_err};

impl Catalog {
    /// See [`ims_domain::ports::ImageRepo::reserve_size`].
    pub(crate) async fn claim_size(&self, claim: &SizeClaim<'_>) -> Result<Option<u64>> {
        let mut tx = self.begin().await?;
        lock_owner(&mut tx, claim.owner).await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM images \
             WHERE owner = $1 AND id <> $2 AND status NOT IN ('deleted', 'killed')",
        )
        .bind(claim.owner)
        .bind(claim.image.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let room = claim.limit.saturating_sub(to_u64(used));
        if room < claim.need {
            // Dropping `tx` rolls back and releases the lock.
            return Ok(None);
        }
        let granted = claim.want.max(claim.need).min(room);
        let done = sqlx::query(
            "UPDATE images SET size = $1, version = version + 1 WHERE id = $2 AND status = $3",
        )
        .bind(to_i64(granted))
        .bind(claim.image.to_string())
        .bind(claim.status.as_str())
        .affected(&mut *tx)
        .await?;
        if done == 0 {
            return Err(Error::Conflict(format!(
                "Image {} is no longer {}",
                claim.image, claim.status
            )));
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(granted))
    }
}

/// Serialises the claims of `owner` until `tx` ends. The first statement writes, so
/// SQLite takes its write lock before anything is read (no stale snapshot), and
/// PostgreSQL holds the project's row lock, after which each statement of `tx` sees what
/// the previous holder committed. An owner that is no project (set by an admin) shares
/// the lock of the first project: rare, and still serialised.
async fn lock_owner(tx: &mut Transaction<'_, Any>, owner: &str) -> Result<()> {
    sqlx::query(
        "UPDATE projects SET enabled = enabled WHERE id = COALESCE(\
         (SELECT p.id FROM projects p WHERE p.id = $1), (SELECT MIN(q.id) FROM projects q))",
    )
    .bind(owner)
    .affected(&mut **tx)
    .await?;
    Ok(())
}

/// Serialises the quota-checked writes of `project` until `tx` ends (volumes, keys): the
/// first statement writes, so SQLite takes its write lock before anything is read, and
/// PostgreSQL holds the lock row until the transaction ends.
pub(crate) async fn lock_project(tx: &mut Transaction<'_, Any>, project: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO project_quota_locks (project_id, creates) VALUES ($1, 1) \
         ON CONFLICT (project_id) DO UPDATE SET creates = project_quota_locks.creates + 1",
    )
    .bind(project)
    .affected(&mut **tx)
    .await?;
    Ok(())
}
