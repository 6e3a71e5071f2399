//! `JobRepo` on the catalog database: a lease-based queue.

use async_trait::async_trait;
use ims_domain::image::ImageId;
use ims_domain::job::{
    Job, JobErrorCode, JobQuery, JobSortKey, JobStatus, JobSubject, SubjectKind,
};
use ims_domain::ports::JobRepo;
use ims_domain::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use time::OffsetDateTime;

use crate::codec::{parse_ts, parse_ts_opt, ts, ts_opt};
use crate::sql::{self, Arg, SortDir, Sql};
use crate::{Backend, Catalog, db_err};

const JOB_COLUMNS: &str = "id, kind, status, project_id, subject_kind, subject_id, payload, progress, attempts, \
     error_code, fail_reason, lease_owner, lease_until, not_before, created_at, begin_time, end_time, pinned_node, taken_from";

fn subject_from_row(kind: Option<String>, id: Option<String>) -> Result<Option<JobSubject>> {
    match (kind, id) {
        (Some(kind), Some(id)) => Ok(Some(JobSubject {
            kind: kind.parse()?,
            id,
        })),
        _ => Ok(None),
    }
}

fn job_from_row(row: &AnyRow) -> Result<Job> {
    let s = |c: &str| row.try_get::<Option<String>, _>(c).map_err(db_err);
    let req = |c: &str| s(c)?.ok_or_else(|| Error::internal(format!("null job column {c}")));
    let n = |c: &str| row.try_get::<i64, _>(c).map_err(db_err);
    Ok(Job {
        id: req("id")?,
        kind: req("kind")?.parse()?,
        status: req("status")?.parse()?,
        project_id: req("project_id")?,
        subject: subject_from_row(s("subject_kind")?, s("subject_id")?)?,
        payload: serde_json::from_str(&req("payload")?).map_err(Error::internal)?,
        progress: n("progress")?.clamp(0, 100) as u8,
        attempts: n("attempts")?.clamp(0, i64::from(u32::MAX)) as u32,
        error_code: s("error_code")?.as_deref().map(JobErrorCode::from_stored),
        fail_reason: s("fail_reason")?,
        lease_owner: s("lease_owner")?,
        lease_until: parse_ts_opt(s("lease_until")?)?,
        not_before: parse_ts_opt(s("not_before")?)?,
        created_at: parse_ts(&req("created_at")?)?,
        begin_time: parse_ts_opt(s("begin_time")?)?,
        end_time: parse_ts_opt(s("end_time")?)?,
        pinned_node: s("pinned_node")?,
        taken_from: s("taken_from")?,
    })
}

/// Inserts a job inside the caller's transaction (with the state change that needs it).
pub(crate) async fn insert_job(tx: &mut Transaction<'_, Any>, job: &Job) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, status, project_id, subject_kind, subject_id, image_id, payload, progress, \
         attempts, error_code, fail_reason, lease_owner, lease_until, not_before, created_at, begin_time, end_time, \
         pinned_node) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)",
    )
    .bind(&job.id)
    .bind(job.kind.as_str())
    .bind(job.status.as_str())
    .bind(&job.project_id)
    .bind(job.subject.as_ref().map(|s| s.kind.as_str()))
    .bind(job.subject.as_ref().map(|s| s.id.clone()))
    // `image_id` is still written while readers of the old column may remain.
    .bind(job.image_id().map(|i| i.to_string()))
    .bind(job.payload.to_string())
    .bind(i64::from(job.progress))
    .bind(i64::from(job.attempts))
    .bind(job.error_code.map(|c| c.as_str()))
    .bind(job.fail_reason.clone())
    .bind(job.lease_owner.clone())
    .bind(ts_opt(job.lease_until))
    .bind(ts_opt(job.not_before))
    .bind(ts(job.created_at))
    .bind(ts_opt(job.begin_time))
    .bind(ts_opt(job.end_time))
    .bind(job.pinned_node.clone())
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl JobRepo for Catalog {
    async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        skip: &[ims_domain::job::JobKind],
        alive_since: OffsetDateTime,
    ) -> Result<Option<Job>> {
        // One statement on both engines; PostgreSQL also skips rows other nodes hold.
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        // Kind names come from the domain's closed vocabulary, so they are inlined.
        let skipped = if skip.is_empty() {
            String::new()
        } else {
            let kinds: Vec<String> = skip.iter().map(|k| format!("'{}'", k.as_str())).collect();
            format!(" AND j.kind NOT IN ({})", kinds.join(", "))
        };
        // Fair between projects: first the project with the fewest jobs running (under a
        // live lease), then the one that started a job longest ago (never: '' sorts
        // first on both engines, where NULL would not), then the oldest job.
        let sql = format!(
            "UPDATE jobs SET status = 'RUNNING', lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
             begin_time = COALESCE(begin_time, $3), \
             taken_from = CASE WHEN status = 'RUNNING' THEN lease_owner END WHERE id = (SELECT j.id FROM jobs j WHERE \
             ((j.status = 'INIT' AND (j.not_before IS NULL OR j.not_before < $3)) \
             OR (j.status = 'RUNNING' AND j.lease_until < $3)){skipped} \
             AND (j.pinned_node IS NULL OR j.pinned_node = $1 OR NOT EXISTS \
             (SELECT 1 FROM nodes n WHERE n.id = j.pinned_node AND n.last_seen >= $4)) ORDER BY \
             (SELECT COUNT(*) FROM jobs r WHERE r.project_id = j.project_id AND r.status = 'RUNNING' \
             AND r.lease_until >= $3), \
             (SELECT COALESCE(MAX(s.begin_time), '') FROM jobs s WHERE s.project_id = j.project_id), \
             j.created_at LIMIT 1{lock}) \
             RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(ts(until))
            .bind(ts(now))
            .bind(ts(alive_since))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn node_seen(&self, node: &str, at: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, last_seen) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET last_seen = $2",
        )
        .bind(node)
        .bind(ts(at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn nodes_seen_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<std::collections::HashSet<String>> {
        let rows = sqlx::query("SELECT id FROM nodes WHERE last_seen >= $1")
            .bind(ts(since))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(db_err))
            .collect()
    }

    async fn heartbeat(
        &self,
        id: &str,
        owner: &str,
        until: OffsetDateTime,
        progress: u8,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $1, progress = CASE WHEN $2 > progress THEN $2 ELSE progress END \
             WHERE id = $3 AND lease_owner = $4 AND status = 'RUNNING'",
        )
        .bind(ts(until))
        .bind(i64::from(progress))
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record(&self, job: &Job) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_job(&mut tx, job).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn finish(&self, job: &Job, owner: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET status = $1, progress = $2, error_code = $3, fail_reason = $4, lease_owner = NULL, \
             lease_until = NULL, not_before = $5, end_time = $6 WHERE id = $7 AND lease_owner = $8",
        )
        .bind(job.status.as_str())
        .bind(i64::from(job.progress))
        .bind(job.error_code.map(|c| c.as_str()))
        .bind(job.fail_reason.clone())
        .bind(ts_opt(job.not_before))
        .bind(ts_opt(job.end_time))
        .bind(&job.id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn expire_leases(&self, owner: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $1 WHERE lease_owner = $2 AND status = 'RUNNING'",
        )
        .bind(ts(OffsetDateTime::UNIX_EPOCH))
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn get(&self, id: &str) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn for_image(&self, image_id: ImageId) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE subject_kind = $1 AND subject_id = $2 \
             ORDER BY created_at DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(SubjectKind::Image.as_str())
            .bind(image_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn in_status(&self, status: JobStatus) -> Result<Vec<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE status = $1 ORDER BY created_at");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn list(&self, q: &JobQuery) -> Result<Vec<Job>> {
        // Kind and column names come from the domain's closed vocabularies, so they are
        // inlined; every value is bound.
        let kinds: Vec<String> = q
            .kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        let mut sql = Sql::new(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE kind IN ({})",
            kinds.join(", ")
        ));
        let equals = |sql: &mut Sql, column: &str, value: String| {
            let p = sql.arg(Arg::Text(value));
            sql.text.push_str(&format!(" AND {column} = {p}"));
        };
        if let Some(project) = &q.project_id {
            equals(&mut sql, "project_id", project.clone());
        }
        if let Some(status) = q.status {
            equals(&mut sql, "status", status.as_str().to_string());
        }
        if let Some(image) = q.image_id {
            equals(&mut sql, "subject_kind", SubjectKind::Image.to_string());
            equals(&mut sql, "subject_id", image.to_string());
        }
        let mut columns = vec![q.sort.as_str(), "created_at", "id"];
        columns.dedup();
        if q.sort == JobSortKey::Id {
            columns.truncate(1);
        }
        let dir = if q.ascending {
            SortDir::Asc
        } else {
            SortDir::Desc
        };
        let keys: Vec<(&str, SortDir)> = columns.iter().map(|c| (*c, dir)).collect();
        if let Some(marker) = &q.marker {
            // Keyset paging: rows strictly after the marker in (sort key, created_at, id).
            let values: Vec<Arg> = columns
                .iter()
                .map(|c| Arg::Text(sort_value(marker, c)))
                .collect();
            let cond = sql.keyset(&keys, &values);
            sql.text.push_str(&format!(" AND ({cond})"));
        }
        sql.text.push_str(&format!(
            " ORDER BY {} LIMIT {}",
            sql::order_by(&keys),
            q.limit
        ));
        let rows = sql::bind(sqlx::query(sqlx::AssertSqlSafe(sql.text)), sql.args)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn count_active(&self, project_id: Option<&str>) -> Result<u64> {
        count_active(self, project_id).await
    }
}

impl Catalog {
    /// Waiting and running jobs of every project, by kind and status (for `/metrics`;
    /// finished jobs are counted by the nodes that finish them).
    pub async fn unfinished_jobs(&self) -> Result<Vec<(String, String, u64)>> {
        let rows = sqlx::query(
            "SELECT kind, status, COUNT(*) AS n FROM jobs WHERE status IN ('INIT', 'RUNNING') \
             GROUP BY kind, status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n").map_err(db_err)?;
                Ok((
                    r.try_get("kind").map_err(db_err)?,
                    r.try_get("status").map_err(db_err)?,
                    n.max(0) as u64,
                ))
            })
            .collect()
    }
}

/// Counts waiting and running jobs, of one project or of all.
pub(crate) async fn count_active(catalog: &Catalog, project_id: Option<&str>) -> Result<u64> {
    let active = "SELECT COUNT(*) FROM jobs WHERE status IN ('INIT', 'RUNNING')";
    let query = match project_id {
        Some(project) => sqlx::query(sqlx::AssertSqlSafe(format!("{active} AND project_id = $1")))
            .bind(project.to_string()),
        None => sqlx::query(sqlx::AssertSqlSafe(active.to_string())),
    };
    let row = query.fetch_one(&catalog.pool).await.map_err(db_err)?;
    let n: i64 = row.try_get(0).map_err(db_err)?;
    Ok(n.max(0) as u64)
}

/// A job's stored value in one of the sortable columns.
fn sort_value(job: &Job, column: &str) -> String {
    match column {
        "created_at" => ts(job.created_at),
        "status" => job.status.as_str().to_string(),
        "kind" => job.kind.as_str().to_string(),
        "project_id" => job.project_id.clone(),
        _ => job.id.clone(),
    }
}
