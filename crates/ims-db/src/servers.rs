//! `ServerRepo` on the catalog database (`migrations/0012_image_servers.sql`).

use async_trait::async_trait;
use ims_domain::image::ImageId;
use ims_domain::job::Job;
use ims_domain::server::{ImageServer, ServerId, ServerQuery, ServerRepo, ServerStatus};
use ims_domain::volume::{VolumeHolders, VolumeId};
use ims_domain::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::codec::{parse_ts, to_i64, to_u64, ts};
use crate::sql::{Arg, Run, Sql, col};
use crate::{Catalog, db_err};

const COLUMNS: &str = "id, project_id, name, description, image_ref, root_volume, volume_id, \
     accounts, tags, settings, image_id, status, status_details, created_at, updated_at, version, \
     node_id";

fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(Error::internal)
}

fn from_json<T: DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("bad image_servers.{column}: {e}")))
}

fn from_row(row: &AnyRow) -> Result<ImageServer> {
    let s = |c: &str| col::<Option<String>>(row, c);
    let req = |c: &str| s(c)?.ok_or_else(|| Error::internal(format!("null image_servers.{c}")));
    let id = req("id")?;
    let volume_id = s("volume_id")?
        .map(|v| VolumeId::parse(&v).ok_or_else(|| Error::internal(format!("bad volume id {v}"))))
        .transpose()?;
    let image_id = s("image_id")?
        .map(|v| ImageId::parse(&v).ok_or_else(|| Error::internal(format!("bad image id {v}"))))
        .transpose()?;
    Ok(ImageServer {
        id: ServerId::parse(&id).ok_or_else(|| Error::internal(format!("bad server id {id}")))?,
        project_id: req("project_id")?,
        name: req("name")?,
        description: req("description")?,
        image_ref: from_json(&req("image_ref")?, "image_ref")?,
        root_volume: from_json(&req("root_volume")?, "root_volume")?,
        volume_id,
        authorize_accounts: from_json(&req("accounts")?, "accounts")?,
        tags: from_json(&req("tags")?, "tags")?,
        settings: from_json(&req("settings")?, "settings")?,
        image_id,
        status: req("status")?.parse()?,
        status_details: req("status_details")?,
        created_at: parse_ts(&req("created_at")?)?,
        updated_at: parse_ts(&req("updated_at")?)?,
        version: to_u64(col(row, "version")?),
        node_id: s("node_id")?,
    })
}

/// The columns after `id` in [`COLUMNS`] order, up to `updated_at`, then `node_id`, as
/// arguments.
fn values(s: &ImageServer) -> Result<Vec<Arg>> {
    let text = |v: &str| Arg::Text(v.to_string());
    let opt = |v: Option<String>| v.map_or(Arg::Null, Arg::Text);
    Ok(vec![
        text(&s.project_id),
        text(&s.name),
        text(&s.description),
        Arg::Text(json(&s.image_ref)?),
        Arg::Text(json(&s.root_volume)?),
        opt(s.volume_id.map(|v| v.to_string())),
        Arg::Text(json(&s.authorize_accounts)?),
        Arg::Text(json(&s.tags)?),
        Arg::Text(json(&s.settings)?),
        opt(s.image_id.map(|i| i.to_string())),
        text(s.status.as_str()),
        text(&s.status_details),
        Arg::Text(ts(s.created_at)),
        Arg::Text(ts(s.updated_at)),
        opt(s.node_id.clone()),
    ])
}

/// `value` as a case-insensitive `LIKE` pattern matching it anywhere, `!` escaping the
/// wildcards it may contain.
fn contains_pattern(value: &str) -> String {
    let mut out = String::from("%");
    for c in value.to_lowercase().chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out.push('%');
    out
}

async fn save_in(
    tx: &mut Transaction<'_, Any>,
    server: &ImageServer,
    expected: ServerStatus,
) -> Result<()> {
    let mut args = values(server)?;
    args.extend([
        Arg::Text(server.id.to_string()),
        Arg::Text(expected.as_str().into()),
        Arg::Int(to_i64(server.version)),
    ]);
    let sql = "UPDATE image_servers SET project_id=$1, name=$2, description=$3, image_ref=$4, \
         root_volume=$5, volume_id=$6, accounts=$7, tags=$8, settings=$9, image_id=$10, \
         status=$11, status_details=$12, created_at=$13, updated_at=$14, node_id=$15, \
         version = version + 1 WHERE id=$16 AND status=$17 AND version=$18";
    let done = crate::sql::bind(sqlx::query(sql), args)
        .affected(&mut **tx)
        .await?;
    if done == 0 {
        return Err(Error::Conflict(format!(
            "Image server {} was changed by another request (or is no longer {expected}); \
             the change was not applied",
            server.id
        )));
    }
    Ok(())
}

#[async_trait]
impl ServerRepo for Catalog {
    async fn insert(&self, server: &ImageServer, job: &Job) -> Result<()> {
        let mut tx = self.begin().await?;
        let mut args = values(server)?;
        args.extend([
            Arg::Text(server.id.to_string()),
            Arg::Int(to_i64(server.version)),
        ]);
        let sql = "INSERT INTO image_servers (project_id, name, description, image_ref, \
             root_volume, volume_id, accounts, tags, settings, image_id, status, status_details, \
             created_at, updated_at, node_id, id, version) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)";
        crate::sql::bind(sqlx::query(sql), args)
            .affected(&mut *tx)
            .await?;
        crate::jobs::insert_job(&mut tx, job).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get(&self, id: ServerId) -> Result<Option<ImageServer>> {
        let sql = format!("SELECT {COLUMNS} FROM image_servers WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_opt(&self.pool, from_row)
            .await
    }

    async fn save(
        &self,
        server: &ImageServer,
        expected: ServerStatus,
        job: Option<&Job>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        save_in(&mut tx, server, expected).await?;
        if let Some(job) = job {
            crate::jobs::insert_job(&mut tx, job).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn save_all(&self, batch: &[(ImageServer, ServerStatus)], job: &Job) -> Result<()> {
        let mut tx = self.begin().await?;
        for (server, expected) in batch {
            save_in(&mut tx, server, *expected).await?;
        }
        crate::jobs::insert_job(&mut tx, job).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list(&self, query: &ServerQuery) -> Result<(Vec<ImageServer>, u64)> {
        let mut sql = Sql::new(String::new());
        let project = sql.arg(Arg::Text(query.project_id.clone()));
        let mut conds = vec![
            format!("project_id = {project}"),
            "status <> 'DELETED'".into(),
        ];
        if let Some(name) = &query.name_contains {
            let p = sql.arg(Arg::Text(contains_pattern(name)));
            conds.push(format!("LOWER(name) LIKE {p} ESCAPE '!'"));
        }
        if let Some(id) = query.id {
            let p = sql.arg(Arg::Text(id.to_string()));
            conds.push(format!("id = {p}"));
        }
        let filter = conds.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) AS n FROM image_servers WHERE {filter}");
        let count = crate::sql::bind(
            sqlx::query(sqlx::AssertSqlSafe(count_sql)),
            sql.args.clone(),
        )
        .fetch_opt(&self.pool, |row| col::<i64>(row, "n"))
        .await?
        .map_or(0, to_u64);
        let page = format!(
            "SELECT {COLUMNS} FROM image_servers WHERE {filter} \
             ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
            query.limit.clamp(1, 1000),
            query.offset.min(i64::MAX as u64)
        );
        let servers = crate::sql::bind(sqlx::query(sqlx::AssertSqlSafe(page)), sql.args)
            .fetch_each(&self.pool, from_row)
            .await?;
        Ok((servers, count))
    }

    async fn live(&self) -> Result<Vec<ImageServer>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM image_servers WHERE status <> 'DELETED' ORDER BY created_at"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_each(&self.pool, from_row)
            .await
    }
}

/// Running and capturing servers hold their root volumes.
#[async_trait]
impl VolumeHolders for Catalog {
    async fn holder(&self, id: VolumeId) -> Result<Option<String>> {
        sqlx::query(
            "SELECT id FROM image_servers WHERE volume_id = $1 \
             AND status IN ('ACTIVE', 'BUILT', 'BUILDING')",
        )
        .bind(id.to_string())
        .fetch_opt(&self.pool, |row| col::<String>(row, "id"))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_a_name_match_themselves() {
        assert_eq!(contains_pattern("A_b%c!"), "%a!_b!%c!!%");
    }
}
