//! `KeyRepo` on the catalog database (`migrations/0013_kms_keys.sql`).

use async_trait::async_trait;
use ims_domain::key::{Key, KeyId, KeyPage, KeyQuery, KeyRepo, KeyState};
use ims_domain::{Entity, Error, Result};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::codec::{parse_ts, parse_ts_opt, to_i64, to_u64, ts, ts_opt};
use crate::sql::{Arg, Run, col};
use crate::{Catalog, db_err};

const COLUMNS: &str = "id, project_id, alias, description, spec, usage, origin, state, \
     default_key, backend, material, created_at, updated_at, deletion_at, version";
/// The single row of `kms_master`.
const MASTER_ROW: &str = "master";

fn from_row(row: &AnyRow) -> Result<Key> {
    let s = |c: &str| col::<Option<String>>(row, c);
    let req = |c: &str| s(c)?.ok_or_else(|| Error::internal(format!("null kms_keys.{c}")));
    let id = req("id")?;
    Ok(Key {
        id: KeyId::parse(&id).ok_or_else(|| Error::internal(format!("bad key id {id}")))?,
        project_id: req("project_id")?,
        alias: req("alias")?,
        description: req("description")?,
        spec: req("spec")?,
        usage: req("usage")?,
        origin: req("origin")?,
        state: req("state")?.parse()?,
        default_key: col::<i64>(row, "default_key")? != 0,
        backend: req("backend")?,
        material: req("material")?,
        created_at: parse_ts(&req("created_at")?)?,
        updated_at: parse_ts(&req("updated_at")?)?,
        deletion_at: parse_ts_opt(s("deletion_at")?)?,
        version: to_u64(col(row, "version")?),
    })
}

/// The columns after `id` in [`COLUMNS`] order, up to `deletion_at`.
fn values(k: &Key) -> Vec<Arg> {
    let text = |v: &str| Arg::Text(v.to_string());
    vec![
        text(&k.project_id),
        text(&k.alias),
        text(&k.description),
        text(&k.spec),
        text(&k.usage),
        text(&k.origin),
        text(k.state.as_str()),
        Arg::Int(i64::from(k.default_key)),
        text(&k.backend),
        text(&k.material),
        Arg::Text(ts(k.created_at)),
        Arg::Text(ts(k.updated_at)),
        ts_opt(k.deletion_at).map_or(Arg::Null, Arg::Text),
    ]
}

#[async_trait]
impl KeyRepo for Catalog {
    async fn insert(&self, key: &Key, max_keys: u64) -> Result<()> {
        let mut tx = self.begin().await?;
        crate::quota::lock_project(&mut tx, &key.project_id).await?;
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kms_keys WHERE project_id = $1")
            .bind(&key.project_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if to_u64(held) >= max_keys {
            return Err(Error::QuotaExceeded(format!(
                "The project holds {held} keys, as many as it may."
            )));
        }
        let taken: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM kms_keys WHERE project_id = $1 AND alias = $2",
        )
        .bind(&key.project_id)
        .bind(&key.alias)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if taken > 0 {
            return Err(Error::AlreadyExists {
                kind: Entity::Key,
                id: key.alias.clone(),
            });
        }
        let mut args = values(key);
        args.extend([Arg::Text(key.id.to_string()), Arg::Int(to_i64(key.version))]);
        let sql = "INSERT INTO kms_keys (project_id, alias, description, spec, usage, origin, \
             state, default_key, backend, material, created_at, updated_at, deletion_at, id, \
             version) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)";
        crate::sql::bind(sqlx::query(sql), args)
            .affected(&mut *tx)
            .await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get(&self, id: KeyId) -> Result<Option<Key>> {
        let sql = format!("SELECT {COLUMNS} FROM kms_keys WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_opt(&self.pool, from_row)
            .await
    }

    async fn save(&self, key: &Key) -> Result<()> {
        let mut args = values(key);
        args.extend([Arg::Text(key.id.to_string()), Arg::Int(to_i64(key.version))]);
        let sql = "UPDATE kms_keys SET project_id=$1, alias=$2, description=$3, spec=$4, \
             usage=$5, origin=$6, state=$7, default_key=$8, backend=$9, material=$10, \
             created_at=$11, updated_at=$12, deletion_at=$13, version = version + 1 \
             WHERE id=$14 AND version=$15";
        let done = crate::sql::bind(sqlx::query(sql), args)
            .affected(&self.pool)
            .await?;
        if done == 0 {
            return Err(Error::Conflict(format!(
                "Key {} was changed by another request; the change was not applied",
                key.id
            )));
        }
        Ok(())
    }

    async fn list(&self, query: &KeyQuery) -> Result<KeyPage> {
        let state = query.state.map(KeyState::as_str);
        let filter = "project_id = $1 AND ($2 = '' OR state = $2)";
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM kms_keys WHERE {filter}"
        )))
        .bind(&query.project_id)
        .bind(state.unwrap_or(""))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let sql = format!(
            "SELECT {COLUMNS} FROM kms_keys WHERE {filter} \
             ORDER BY created_at, id LIMIT {} OFFSET {}",
            query.limit.clamp(1, 1000),
            query.offset.min(i64::MAX as u64)
        );
        let keys = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&query.project_id)
            .bind(state.unwrap_or(""))
            .fetch_each(&self.pool, from_row)
            .await?;
        Ok(KeyPage {
            keys,
            total: to_u64(total),
        })
    }

    async fn due_for_deletion(&self, before: OffsetDateTime) -> Result<Vec<Key>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM kms_keys WHERE state = $1 AND deletion_at < $2 \
             ORDER BY deletion_at LIMIT 100"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(KeyState::PendingDeletion.as_str())
            .bind(ts(before))
            .fetch_each(&self.pool, from_row)
            .await
    }

    async fn remove(&self, key: &Key) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM kms_keys WHERE id = $1 AND version = $2 AND state = $3")
                .bind(key.id.to_string())
                .bind(to_i64(key.version))
                .bind(KeyState::PendingDeletion.as_str())
                .affected(&self.pool)
                .await?;
        if done == 0 {
            return Err(Error::Conflict(format!(
                "Key {} is no longer pending deletion",
                key.id
            )));
        }
        Ok(())
    }

    async fn master_check(&self) -> Result<Option<String>> {
        self.check_value(MASTER_ROW).await
    }

    async fn record_master_check(&self, check: &str) -> Result<String> {
        self.record_check_value(MASTER_ROW, check).await
    }
}

impl Catalog {
    /// The check value of the sealing key `row` names (`kms_master` holds one value
    /// sealed under each key that seals catalog data), if recorded.
    pub(crate) async fn check_value(&self, row: &str) -> Result<Option<String>> {
        sqlx::query("SELECT check_value FROM kms_master WHERE id = $1")
            .bind(row)
            .fetch_opt(&self.pool, |r| col::<String>(r, "check_value"))
            .await
    }

    /// Records `check` for `row` unless one is recorded; the recorded value (two nodes
    /// starting together: the first value written is the one kept).
    pub(crate) async fn record_check_value(&self, row: &str, check: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO kms_master (id, check_value) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(row)
        .bind(check)
        .affected(&self.pool)
        .await?;
        self.check_value(row)
            .await?
            .ok_or_else(|| Error::internal(format!("the {row} check was not recorded")))
    }
}
