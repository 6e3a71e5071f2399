//! `VolumeRepo` on the catalog database (`migrations/0009_volumes.sql`).

use std::collections::HashSet;

use async_trait::async_trait;
use ims_domain::image::ImageId;
use ims_domain::volume::repo::VolumeQuotas;
use ims_domain::volume::{
    Admission, Backing, Volume, VolumeId, VolumeQuery, VolumeRepo, VolumeStatus, VolumeUsage,
};
use ims_domain::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::codec::{parse_ts, parse_ts_opt, to_i64, to_u64, ts, ts_opt};
use crate::sql::{Arg, Run, SortDir, Sql, col};
use crate::{Catalog, db_err};

pub(crate) const COLUMNS: &str = "id, project_id, name, description, size, format, status, source_image, \
     backing_image, backing_key, backing_format, location, created_at, updated_at, deleted_at, version";

/// The statuses of volumes that hold data (and count against quotas, and pin blobs).
const HOLDING: &str = "('creating', 'ready', 'deleted')";

pub(crate) fn from_row(row: &AnyRow) -> Result<Volume> {
    let s = |c: &str| col::<Option<String>>(row, c);
    let req = |c: &str| s(c)?.ok_or_else(|| Error::internal(format!("null volumes.{c}")));
    let image = |c: &str| -> Result<Option<ImageId>> {
        s(c)?
            .map(|v| ImageId::parse(&v).ok_or_else(|| Error::internal(format!("bad image id {v}"))))
            .transpose()
    };
    let id = req("id")?;
    let backing = match (
        image("backing_image")?,
        s("backing_key")?,
        s("backing_format")?,
    ) {
        (Some(image_id), Some(blob_key), Some(format)) => Some(Backing {
            image_id,
            blob_key,
            format: format.parse()?,
        }),
        _ => None,
    };
    Ok(Volume {
        id: VolumeId::parse(&id).ok_or_else(|| Error::internal(format!("bad volume id {id}")))?,
        project_id: req("project_id")?,
        name: req("name")?,
        description: req("description")?,
        size: to_u64(col(row, "size")?),
        format: req("format")?.parse()?,
        status: req("status")?.parse()?,
        source_image: image("source_image")?,
        backing,
        location: s("location")?,
        created_at: parse_ts(&req("created_at")?)?,
        updated_at: parse_ts(&req("updated_at")?)?,
        deleted_at: parse_ts_opt(s("deleted_at")?)?,
        version: to_u64(col(row, "version")?),
    })
}

/// Binds the columns after `id` in [`COLUMNS`] order, up to `deleted_at`.
macro_rules! bind_volume {
    ($q:expr, $v:expr) => {{
        let v: &Volume = $v;
        let b = v.backing.as_ref();
        $q.bind(v.project_id.clone())
            .bind(v.name.clone())
            .bind(v.description.clone())
            .bind(to_i64(v.size))
            .bind(v.format.as_str())
            .bind(v.status.as_str())
            .bind(v.source_image.map(|i| i.to_string()))
            .bind(b.map(|b| b.image_id.to_string()))
            .bind(b.map(|b| b.blob_key.clone()))
            .bind(b.map(|b| b.format.as_str()))
            .bind(v.location.clone())
            .bind(ts(v.created_at))
            .bind(ts(v.updated_at))
            .bind(ts_opt(v.deleted_at))
    }};
}

/// Serialises the quota-checked writes of `project` until `tx` ends (the lock row images
/// use: the first statement writes, so SQLite takes its write lock before reading and
/// PostgreSQL holds the row lock), then reads its usage.
async fn locked_usage(
    tx: &mut Transaction<'_, Any>,
    project: &str,
    except: Option<VolumeId>,
) -> Result<VolumeUsage> {
    crate::quota::lock_project(tx, project).await?;
    let sql = format!(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS total FROM volumes \
         WHERE project_id = $1 AND id <> $2 AND status IN {HOLDING}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .bind(except.map(|id| id.to_string()).unwrap_or_default())
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(VolumeUsage {
        count: to_u64(col(&row, "n")?),
        size_total: to_u64(col(&row, "total")?),
    })
}

async fn save_in(
    tx: &mut Transaction<'_, Any>,
    volume: &Volume,
    expected: VolumeStatus,
) -> Result<()> {
    let q = sqlx::query(
        "UPDATE volumes SET project_id=$1, name=$2, description=$3, size=$4, format=$5, status=$6, \
         source_image=$7, backing_image=$8, backing_key=$9, backing_format=$10, location=$11, \
         created_at=$12, updated_at=$13, deleted_at=$14, version = version + 1 \
         WHERE id=$15 AND status=$16 AND version=$17",
    );
    let done = bind_volume!(q, volume)
        .bind(volume.id.to_string())
        .bind(expected.as_str())
        .bind(to_i64(volume.version))
        .affected(&mut **tx)
        .await?;
    if done == 0 {
        return Err(Error::Conflict(format!(
            "Volume {} was changed by another request (or is no longer {expected}); \
             the change was not applied",
            volume.id
        )));
    }
    Ok(())
}

#[async_trait]
impl VolumeRepo for Catalog {
    async fn search(
        &self,
        project: Option<&str>,
        query: &ims_domain::query::Query,
    ) -> Result<ims_domain::query::Found<Volume>> {
        crate::volume_search::search(self, project, query).await
    }

    async fn insert_within_quota(
        &self,
        volume: &Volume,
        quotas: VolumeQuotas,
    ) -> Result<Admission> {
        let mut tx = self.begin().await?;
        if quotas.count.is_some() || quotas.size_total.is_some() {
            let used = locked_usage(&mut tx, &volume.project_id, None).await?;
            if quotas.count.is_some_and(|n| used.count + 1 > n) {
                return Ok(Admission::OverCount);
            }
            if quotas
                .size_total
                .is_some_and(|n| used.size_total.saturating_add(volume.size) > n)
            {
                return Ok(Admission::OverSize);
            }
        }
        let q = sqlx::query(
            "INSERT INTO volumes (project_id, name, description, size, format, status, source_image, \
             backing_image, backing_key, backing_format, location, created_at, updated_at, deleted_at, \
             id, version) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
        );
        bind_volume!(q, volume)
            .bind(volume.id.to_string())
            .bind(to_i64(volume.version))
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict(_) => Error::AlreadyExists {
                    kind: ims_domain::Entity::Volume,
                    id: volume.id.to_string(),
                },
                other => other,
            })?;
        tx.commit().await.map_err(db_err)?;
        Ok(Admission::Admitted)
    }

    async fn get(&self, id: VolumeId) -> Result<Option<Volume>> {
        let sql = format!("SELECT {COLUMNS} FROM volumes WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_opt(&self.pool, from_row)
            .await
    }

    async fn save(&self, volume: &Volume, expected: VolumeStatus) -> Result<()> {
        let mut tx = self.begin().await?;
        save_in(&mut tx, volume, expected).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn save_within_quota(
        &self,
        volume: &Volume,
        expected: VolumeStatus,
        size_total: Option<u64>,
    ) -> Result<Admission> {
        let mut tx = self.begin().await?;
        if let Some(limit) = size_total {
            let used = locked_usage(&mut tx, &volume.project_id, Some(volume.id)).await?;
            if used.size_total.saturating_add(volume.size) > limit {
                return Ok(Admission::OverSize);
            }
        }
        save_in(&mut tx, volume, expected).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Admission::Admitted)
    }

    async fn list(&self, query: &VolumeQuery) -> Result<Vec<Volume>> {
        let mut sql = Sql::new(format!("SELECT {COLUMNS} FROM volumes WHERE "));
        let mut conds = Vec::new();
        match query.status {
            Some(status) => {
                let p = sql.arg(Arg::Text(status.as_str().into()));
                conds.push(format!("status = {p}"));
            }
            None => conds.push("status <> 'expunged'".to_string()),
        }
        if let Some(project) = &query.project_id {
            let p = sql.arg(Arg::Text(project.clone()));
            conds.push(format!("project_id = {p}"));
        }
        if let Some(name) = &query.name {
            let p = sql.arg(Arg::Text(name.clone()));
            conds.push(format!("name = {p}"));
        }
        let keys = [("created_at", SortDir::Desc), ("id", SortDir::Desc)];
        if let Some(marker) = query.marker {
            let m = VolumeRepo::get(self, marker)
                .await?
                .ok_or_else(|| Error::invalid(format!("marker {marker} could not be found.")))?;
            let values = [Arg::Text(ts(m.created_at)), Arg::Text(m.id.to_string())];
            let after = sql.keyset(&keys, &values);
            conds.push(format!("({after})"));
        }
        sql.text.push_str(&conds.join(" AND "));
        let limit = sql.arg(Arg::Int(i64::from(query.limit.max(1))));
        sql.text.push_str(&format!(
            " ORDER BY {} LIMIT {limit}",
            crate::sql::order_by(&keys)
        ));
        let Sql { text, args } = sql;
        crate::sql::bind(sqlx::query(sqlx::AssertSqlSafe(text)), args)
            .fetch_each(&self.pool, from_row)
            .await
    }

    async fn usage(&self, project_id: &str) -> Result<VolumeUsage> {
        let sql = format!(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS total FROM volumes \
             WHERE project_id = $1 AND status IN {HOLDING}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(VolumeUsage {
            count: to_u64(col(&row, "n")?),
            size_total: to_u64(col(&row, "total")?),
        })
    }

    async fn backs(&self, key: &str) -> Result<bool> {
        let sql = format!(
            "SELECT id FROM volumes WHERE backing_key = $1 AND status IN {HOLDING} LIMIT 1"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .fetch_opt(&self.pool, |_| Ok(()))
            .await?
            .is_some())
    }

    async fn creating_since(&self, before: time::OffsetDateTime) -> Result<Vec<Volume>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM volumes WHERE status = 'creating' AND updated_at < $1 \
             ORDER BY updated_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ts(before))
            .fetch_each(&self.pool, from_row)
            .await
    }

    async fn backing_keys(&self) -> Result<HashSet<String>> {
        let sql = format!(
            "SELECT DISTINCT backing_key FROM volumes WHERE backing_key IS NOT NULL AND status IN {HOLDING}"
        );
        let keys = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_each(&self.pool, |r| col::<String>(r, "backing_key"))
            .await?;
        Ok(keys.into_iter().collect())
    }
}
