//! `BucketRepo` on the catalog database (`migrations/0005_buckets.sql`): bucket owners and
//! read-only shares.

use async_trait::async_trait;
use ims_domain::Result;
use ims_domain::bucket::{BucketGrants, bucket_not_found};
use ims_domain::ports::BucketRepo;

use crate::Catalog;
use crate::codec::ts;
use crate::sql::{Run, col};

fn now() -> String {
    ts(ims_domain::context::now())
}

impl Catalog {
    async fn readers_of(&self, bucket: &str) -> Result<Vec<String>> {
        sqlx::query("SELECT project_id FROM bucket_shares WHERE bucket = $1")
            .bind(bucket)
            .fetch_each(&self.pool, |r| col(r, "project_id"))
            .await
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
        .fetch_each(&self.pool, |r| {
            Ok((
                col::<Option<String>>(r, "owner")?,
                col::<Option<String>>(r, "reader")?,
            ))
        })
        .await?;
        let Some((owner, _)) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(BucketGrants {
            name: bucket.to_string(),
            owner: owner.clone(),
            readers: rows.iter().filter_map(|(_, r)| r.clone()).collect(),
        }))
    }

    async fn insert_bucket(&self, bucket: &str, owner: Option<&str>) -> Result<()> {
        sqlx::query("INSERT INTO buckets (name, project_id, created_at) VALUES ($1, $2, $3)")
            .bind(bucket)
            .bind(owner.map(str::to_string))
            .bind(now())
            .affected(&self.pool)
            .await?;
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
            .affected(&self.pool)
            .await?;
            if done > 0 {
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
        .affected(&self.pool)
        .await?;
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
        .affected(&self.pool)
        .await?;
        Ok(())
    }

    async fn unshare_bucket(&self, bucket: &str, project_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM bucket_shares WHERE bucket = $1 AND project_id = $2")
            .bind(bucket)
            .bind(project_id)
            .affected(&self.pool)
            .await?;
        Ok(done > 0)
    }

    async fn list_buckets(&self) -> Result<Vec<BucketGrants>> {
        let buckets = sqlx::query("SELECT name, project_id FROM buckets ORDER BY name")
            .fetch_each(&self.pool, |r| {
                Ok((
                    col::<String>(r, "name")?,
                    col::<Option<String>>(r, "project_id")?,
                ))
            })
            .await?;
        let mut out = Vec::with_capacity(buckets.len());
        for (name, owner) in buckets {
            out.push(BucketGrants {
                owner,
                readers: self.readers_of(&name).await?.into_iter().collect(),
                name,
            });
        }
        Ok(out)
    }
}
