//! `BucketRepo` on the catalog database (`migrations/0005_buckets.sql`): bucket owners and
//! read-only shares.

use async_trait::async_trait;
use ims_domain::Result;
use ims_domain::bucket::{BucketGrants, bucket_not_found};
use ims_domain::ports::BucketRepo;
use sqlx::Row;

use crate::codec::ts;
use crate::{Catalog, db_err};

fn now() -> String {
    ts(time::OffsetDateTime::now_utc())
}

impl Catalog {
    async fn readers_of(&self, bucket: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT project_id FROM bucket_shares WHERE bucket = $1")
            .bind(bucket)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("project_id").map_err(db_err))
            .collect()
    }
}

#[async_trait]
impl BucketRepo for Catalog {
    async fn bucket_grants(&self, bucket: &str) -> Result<Option<BucketGrants>> {
        // One round trip whether or not the bucket is known, shared or not: the time an
        // answer takes should not tell a stranger's bucket from a missing one.
        let rows = sqlx::query(
            "SELECT b.project_id AS owner, s.project_id AS reader FROM buckets b \
             LEFT JOIN bucket_shares s ON s.bucket = b.name WHERE b.name = $1",
        )
        .bind(bucket)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut readers = std::collections::BTreeSet::new();
        for row in &rows {
            if let Some(r) = row.try_get::<Option<String>, _>("reader").map_err(db_err)? {
                readers.insert(r);
            }
        }
        Ok(Some(BucketGrants {
            name: bucket.to_string(),
            owner: first
                .try_get::<Option<String>, _>("owner")
                .map_err(db_err)?,
            readers,
        }))
    }

    async fn insert_bucket(&self, bucket: &str, owner: Option<&str>) -> Result<()> {
        sqlx::query("INSERT INTO buckets (name, project_id, created_at) VALUES ($1, $2, $3)")
            .bind(bucket)
            .bind(owner.map(str::to_string))
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn adopt_buckets(&self, buckets: &[String], owner: &str) -> Result<Vec<String>> {
        let mut adopted = Vec::new();
        for bucket in buckets {
            let done = sqlx::query(
                "INSERT INTO buckets (name, project_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(bucket)
            .bind(owner)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
            if done.rows_affected() > 0 {
                adopted.push(bucket.clone());
            }
        }
        Ok(adopted)
    }

    async fn set_bucket_owner(&self, bucket: &str, owner: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO buckets (name, project_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET project_id = excluded.project_id",
        )
        .bind(bucket)
        .bind(owner.map(str::to_string))
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn share_bucket(&self, bucket: &str, project_id: &str) -> Result<()> {
        if self.bucket_grants(bucket).await?.is_none() {
            return Err(bucket_not_found(bucket));
        }
        sqlx::query(
            "INSERT INTO bucket_shares (bucket, project_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(bucket)
        .bind(project_id)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn unshare_bucket(&self, bucket: &str, project_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM bucket_shares WHERE bucket = $1 AND project_id = $2")
            .bind(bucket)
            .bind(project_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_buckets(&self) -> Result<Vec<BucketGrants>> {
        let rows = sqlx::query("SELECT name, project_id FROM buckets ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get("name").map_err(db_err)?;
            out.push(BucketGrants {
                owner: row
                    .try_get::<Option<String>, _>("project_id")
                    .map_err(db_err)?,
                readers: self.readers_of(&name).await?.into_iter().collect(),
                name,
            });
        }
        Ok(out)
    }
}
