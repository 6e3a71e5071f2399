//! `ImageRepo` on the catalog database.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use ims_domain::image::{Image, ImageData, ImageId, ImageStatus};
use ims_domain::job::Job;
use ims_domain::listing::{ListQuery, ListScope};
use ims_domain::member::{Member, MemberStatus};
use ims_domain::ports::{ImageRepo, Lease, SharingBatch, SizeClaim, Usage};
use ims_domain::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use crate::codec::{parse_ts, to_i64, to_u64, ts};
use crate::sql::{Run, col};
use crate::{Catalog, db_err};

pub(crate) const IMAGE_COLUMNS: &str = "i.id, i.name, i.status, i.visibility, i.protected, i.os_hidden, i.owner, \
     i.disk_format, i.container_format, i.min_disk, i.min_ram, i.location, i.size, i.virtual_size, \
     i.checksum, i.os_hash_algo, i.os_hash_value, i.created_at, i.updated_at, i.lease_owner, i.lease_until, \
     i.properties_json, i.tags_json, i.version, i.sealing, i.stores, i.origin";

/// Largest number of child rows in one multi-row INSERT (3 parameters each for properties;
/// both backends accept far more, this only keeps single statements reasonable).
const CHILD_ROWS_PER_INSERT: usize = 200;

fn parse_id(s: &str) -> Result<ImageId> {
    ImageId::parse(s).ok_or_else(|| Error::internal(format!("bad stored image id {s}")))
}

/// Decodes the `images` columns of a row, with tags and properties from their JSON copy.
/// The flag is false when the row has no copy yet (written before migration 0004): the
/// caller then reads the children from their tables (`Catalog::images_from_rows`).
pub(crate) fn image_from_row(row: &AnyRow) -> Result<(Image, bool)> {
    let get_s = |c: &str| col::<Option<String>>(row, c);
    let get_i = |c: &str| col::<Option<i64>>(row, c);
    let req = |c: &str| get_s(c)?.ok_or_else(|| Error::internal(format!("null {c}")));
    let lease = match (get_s("lease_owner")?, get_s("lease_until")?) {
        (Some(owner), Some(until)) => Some(Lease {
            owner,
            until: parse_ts(&until)?,
        }),
        _ => None,
    };
    let (properties, tags, complete) = match (get_s("properties_json")?, get_s("tags_json")?) {
        (Some(p), Some(t)) => (
            serde_json::from_str(&p).map_err(|e| bad_json(&p, e))?,
            serde_json::from_str(&t).map_err(|e| bad_json(&t, e))?,
            true,
        ),
        _ => (BTreeMap::new(), BTreeSet::new(), false),
    };
    let image = Image {
        id: parse_id(&req("id")?)?,
        name: get_s("name")?,
        status: req("status")?.parse()?,
        visibility: req("visibility")?.parse()?,
        protected: get_i("protected")?.unwrap_or(0) != 0,
        os_hidden: get_i("os_hidden")?.unwrap_or(0) != 0,
        owner: get_s("owner")?,
        disk_format: get_s("disk_format")?.map(|s| s.parse()).transpose()?,
        container_format: get_s("container_format")?.map(|s| s.parse()).transpose()?,
        min_disk: to_u64(get_i("min_disk")?.unwrap_or(0)),
        min_ram: to_u64(get_i("min_ram")?.unwrap_or(0)),
        data: ImageData {
            location: get_s("location")?,
            size: get_i("size")?.map(to_u64),
            virtual_size: get_i("virtual_size")?.map(to_u64),
            checksum: get_s("checksum")?,
            hash_algo: get_s("os_hash_algo")?,
            hash_value: get_s("os_hash_value")?,
            sealing: get_s("sealing")?
                .map(|text| {
                    serde_json::from_str(&text)
                        .map_err(|e| Error::internal(format!("bad images.sealing: {e}")))
                })
                .transpose()?,
            stores: stores_of(get_s("stores")?),
        },
        tags,
        properties,
        created_at: parse_ts(&req("created_at")?)?,
        updated_at: parse_ts(&req("updated_at")?)?,
        origin: get_s("origin")?,
        lease,
        version: to_u64(get_i("version")?.unwrap_or(0)),
    };
    Ok((image, complete))
}

/// Decodes the `stores` column (or a comma-joined store list property).
fn stores_of(column: Option<String>) -> BTreeSet<String> {
    column.map_or_else(BTreeSet::new, |list| {
        list.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// The property listing the stores an import is copying an image's data into.
const IMPORTING_TO: &str = ims_domain::service::stores::IMPORTING_TO;

/// The `stores` column: comma-joined ids, NULL for none.
fn stores_column(stores: &BTreeSet<String>) -> Option<String> {
    (!stores.is_empty()).then(|| stores.iter().cloned().collect::<Vec<_>>().join(","))
}

fn bad_json(text: &str, e: serde_json::Error) -> Error {
    Error::internal(format!("bad stored image children {text}: {e}"))
}

impl Catalog {
    /// Decodes image rows; rows without a JSON copy of their children get them from the
    /// child tables, in two batched queries for all such rows.
    pub(crate) async fn images_from_rows(&self, rows: &[AnyRow]) -> Result<Vec<Image>> {
        let mut images = Vec::with_capacity(rows.len());
        let mut missing = Vec::new();
        for row in rows {
            let (image, complete) = image_from_row(row)?;
            if !complete {
                missing.push(images.len());
            }
            images.push(image);
        }
        if !missing.is_empty() {
            let mut subset: Vec<&mut Image> = images
                .iter_mut()
                .enumerate()
                .filter(|(n, _)| missing.binary_search(n).is_ok())
                .map(|(_, i)| i)
                .collect();
            self.load_children(&mut subset).await?;
        }
        Ok(images)
    }

    /// Fills tags and properties of `images` from the child tables, two batched queries.
    async fn load_children(&self, images: &mut [&mut Image]) -> Result<()> {
        let ids: Vec<String> = images.iter().map(|i| i.id.to_string()).collect();
        let placeholders = (1..=ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(",");
        let index: HashMap<String, usize> = ids
            .iter()
            .cloned()
            .enumerate()
            .map(|(n, id)| (id, n))
            .collect();
        for (table, is_tag) in [("image_properties", false), ("image_tags", true)] {
            let cols = if is_tag {
                "image_id, value"
            } else {
                "image_id, name, value"
            };
            let sql = format!("SELECT {cols} FROM {table} WHERE image_id IN ({placeholders})");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &ids {
                q = q.bind(id.clone());
            }
            for row in q.fetch_all(&self.pool).await.map_err(db_err)? {
                let id: String = col(&row, "image_id")?;
                let Some(&n) = index.get(&id) else { continue };
                let value: String = col(&row, "value")?;
                if is_tag {
                    images[n].tags.insert(value);
                } else {
                    images[n].properties.insert(col(&row, "name")?, value);
                }
            }
        }
        Ok(())
    }

    /// Replaces the child rows of `image` (the tables filters query), with multi-row
    /// INSERTs. A new image has none to delete.
    async fn write_children(
        tx: &mut Transaction<'_, Any>,
        image: &Image,
        is_new: bool,
    ) -> Result<()> {
        let id = image.id.to_string();
        if !is_new {
            for table in ["image_properties", "image_tags"] {
                let sql = format!("DELETE FROM {table} WHERE image_id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&id)
                    .affected(&mut **tx)
                    .await?;
            }
        }
        let properties: Vec<_> = image.properties.iter().collect();
        for chunk in properties.chunks(CHILD_ROWS_PER_INSERT) {
            let rows = (0..chunk.len())
                .map(|n| format!("(${}, ${}, ${})", 3 * n + 1, 3 * n + 2, 3 * n + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO image_properties (image_id, name, value) VALUES {rows}");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (name, value) in chunk {
                q = q
                    .bind(id.clone())
                    .bind((*name).clone())
                    .bind((*value).clone());
            }
            q.affected(&mut **tx).await?;
        }
        let tags: Vec<_> = image.tags.iter().collect();
        for chunk in tags.chunks(CHILD_ROWS_PER_INSERT) {
            let rows = (0..chunk.len())
                .map(|n| format!("(${}, ${})", 2 * n + 1, 2 * n + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO image_tags (image_id, value) VALUES {rows}");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for tag in chunk {
                q = q.bind(id.clone()).bind((*tag).clone());
            }
            q.affected(&mut **tx).await?;
        }
        Ok(())
    }
}

/// Binds the 24 non-key image columns in the order both INSERT and UPDATE use.
macro_rules! bind_image {
    ($q:expr, $img:expr) => {{
        let img = $img;
        let (lease_owner, lease_until) = match &img.lease {
            Some(l) => (Some(l.owner.clone()), Some(ts(l.until))),
            None => (None, None),
        };
        $q.bind(img.name.clone())
            .bind(img.status.as_str())
            .bind(img.visibility.as_str())
            .bind(i64::from(img.protected))
            .bind(i64::from(img.os_hidden))
            .bind(img.owner.clone())
            .bind(img.disk_format.map(|f| f.as_str()))
            .bind(img.container_format.map(|f| f.as_str()))
            .bind(to_i64(img.min_disk))
            .bind(to_i64(img.min_ram))
            .bind(img.data.location.clone())
            .bind(img.data.size.map(to_i64))
            .bind(img.data.virtual_size.map(to_i64))
            .bind(img.data.checksum.clone())
            .bind(img.data.hash_algo.clone())
            .bind(img.data.hash_value.clone())
            .bind(ts(img.created_at))
            .bind(ts(img.updated_at))
            .bind(lease_owner)
            .bind(lease_until)
            // Maps and sets of strings always serialize; NULL would only mean "read the tables".
            .bind(serde_json::to_string(&img.properties).ok())
            .bind(serde_json::to_string(&img.tags).ok())
            .bind(
                img.data
                    .sealing
                    .as_ref()
                    .and_then(|s| serde_json::to_string(s).ok()),
            )
            .bind(stores_column(&img.data.stores))
    }};
}

impl Catalog {
    /// Writes a new image (and its job) inside `tx`.
    async fn insert_in(
        tx: &mut Transaction<'_, Any>,
        image: &Image,
        job: Option<&Job>,
    ) -> Result<()> {
        let q = sqlx::query(
            "INSERT INTO images (name, status, visibility, protected, os_hidden, owner, disk_format, \
             container_format, min_disk, min_ram, location, size, virtual_size, checksum, os_hash_algo, \
             os_hash_value, created_at, updated_at, lease_owner, lease_until, properties_json, tags_json, sealing, \
             stores, id, version, origin) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27)",
        );
        bind_image!(q, image)
            .bind(image.id.to_string())
            .bind(to_i64(image.version))
            .bind(image.origin.clone())
            .execute(&mut **tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict(_) => Error::AlreadyExists {
                    kind: ims_domain::Entity::Image,
                    id: image.id.to_string(),
                },
                other => other,
            })?;
        Self::write_children(tx, image, true).await?;
        if let Some(job) = job {
            crate::jobs::insert_job(tx, job).await?;
        }
        Ok(())
    }
}

impl Catalog {
    /// The compare-and-set of [`ImageRepo::save`] inside `tx`: status and revision must
    /// be the ones read, and the revision moves on.
    async fn save_in(
        tx: &mut Transaction<'_, Any>,
        image: &Image,
        expected: ImageStatus,
    ) -> Result<()> {
        let q = sqlx::query(
            "UPDATE images SET name=$1, status=$2, visibility=$3, protected=$4, os_hidden=$5, owner=$6, \
             disk_format=$7, container_format=$8, min_disk=$9, min_ram=$10, location=$11, size=$12, \
             virtual_size=$13, checksum=$14, os_hash_algo=$15, os_hash_value=$16, created_at=$17, \
             updated_at=$18, lease_owner=$19, lease_until=$20, properties_json=$21, tags_json=$22, \
             sealing=$23, stores=$24, version = version + 1 WHERE id=$25 AND status=$26 AND version=$27",
        );
        let done = bind_image!(q, image)
            .bind(image.id.to_string())
            .bind(expected.as_str())
            .bind(to_i64(image.version))
            .affected(&mut **tx)
            .await?;
        if done == 0 {
            return Err(Error::Conflict(format!(
                "Image {} was changed by another request (or is no longer {expected}); \
                 the change was not applied",
                image.id
            )));
        }
        Self::write_children(tx, image, false).await
    }

    /// Serialises the creates of `owner` until `tx` ends, then counts its live images.
    /// The first statement writes, so SQLite takes its write lock before reading (no
    /// stale snapshot), and PostgreSQL holds the row lock, after which each statement
    /// sees what the previous holder committed.
    async fn locked_image_count(tx: &mut Transaction<'_, Any>, owner: &str) -> Result<u64> {
        sqlx::query(
            "INSERT INTO project_quota_locks (project_id, creates) VALUES ($1, 1) \
             ON CONFLICT (project_id) DO UPDATE SET creates = project_quota_locks.creates + 1",
        )
        .bind(owner)
        .affected(&mut **tx)
        .await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM images WHERE owner = $1 AND status NOT IN ('deleted', 'killed')",
        )
        .bind(owner)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
        Ok(to_u64(n))
    }
}

#[async_trait]
impl ImageRepo for Catalog {
    async fn ping(&self) -> Result<()> {
        Catalog::ping(self).await
    }

    async fn insert(&self, image: &Image, job: Option<&Job>) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::insert_in(&mut tx, image, job).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn insert_all(
        &self,
        batch: &[(Image, Option<Job>)],
        max_images: Option<u64>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        if let Some(limit) = max_images {
            let owners: BTreeSet<&str> = batch
                .iter()
                .filter_map(|(i, _)| i.owner.as_deref())
                .collect();
            for owner in owners {
                let adding = batch
                    .iter()
                    .filter(|(i, _)| i.owner.as_deref() == Some(owner))
                    .count() as u64;
                if Self::locked_image_count(&mut tx, owner).await? + adding > limit {
                    // Dropping `tx` rolls back (and releases the lock).
                    return Ok(false);
                }
            }
        }
        for (image, job) in batch {
            Self::insert_in(&mut tx, image, job.as_ref()).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn get(&self, id: ImageId) -> Result<Option<Image>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.images_from_rows(&[row]).await?.pop())
    }

    async fn save(&self, image: &Image, expected: ImageStatus, job: Option<&Job>) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::save_in(&mut tx, image, expected).await?;
        if let Some(job) = job {
            crate::jobs::insert_job(&mut tx, job).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn list(&self, query: &ListQuery, scope: &ListScope) -> Result<Vec<Image>> {
        let marker = match query.marker {
            Some(id) => Some(
                ImageRepo::get(self, id)
                    .await?
                    .ok_or_else(|| Error::invalid(format!("marker {id} could not be found.")))?,
            ),
            None => None,
        };
        let (sql, args) = crate::listing::build(self.backend, query, scope, marker.as_ref());
        let rows = crate::sql::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        self.images_from_rows(&rows).await
    }

    async fn search(
        &self,
        query: &ims_domain::query::Query,
        scope: &ListScope,
    ) -> Result<ims_domain::query::Found<Image>> {
        crate::image_search::search(self, query, scope).await
    }

    async fn usage(&self, owner: &str) -> Result<Usage> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS total, \
             CAST(COALESCE(SUM(CASE WHEN status IN ('uploading', 'importing') THEN 1 ELSE 0 END), 0) AS BIGINT) AS busy \
             FROM images WHERE owner = $1 AND status NOT IN ('deleted', 'killed')",
        )
        .bind(owner)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let get = |c: &str| col::<i64>(&row, c).map(to_u64);
        Ok(Usage {
            image_count: get("n")?,
            image_size: get("total")?,
            uploading_count: get("busy")?,
        })
    }

    async fn renew_lease(&self, id: ImageId, owner: &str, until: OffsetDateTime) -> Result<bool> {
        let done =
            sqlx::query("UPDATE images SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
                .bind(ts(until))
                .bind(id.to_string())
                .bind(owner)
                .affected(&self.pool)
                .await?;
        Ok(done == 1)
    }

    async fn abandoned(
        &self,
        statuses: &[ImageStatus],
        now: OffsetDateTime,
        restarted_owner: Option<&str>,
    ) -> Result<Vec<Image>> {
        let list = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.status IN ({list}) AND i.lease_owner IS NOT NULL \
             AND (i.lease_until < $1 OR i.lease_owner = $2)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ts(now))
            .bind(restarted_owner.unwrap_or("").to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        self.images_from_rows(&rows).await
    }

    async fn blob_holders(&self, key: &str) -> Result<Vec<(BTreeSet<String>, BTreeSet<String>)>> {
        sqlx::query(
            "SELECT stores, properties_json FROM images WHERE location = $1 AND status <> 'deleted'",
        )
        .bind(key)
        .fetch_each(&self.pool, |r| {
            let properties: BTreeMap<String, String> = col::<Option<String>>(r, "properties_json")?
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or_default();
            let importing = properties
                .get(IMPORTING_TO)
                .map(|list| stores_of(Some(list.clone())))
                .unwrap_or_default();
            Ok((stores_of(col(r, "stores")?), importing))
        })
        .await
    }

    async fn live_blobs(&self) -> Result<Vec<(String, BTreeSet<String>)>> {
        sqlx::query(
            "SELECT location, stores FROM images WHERE status <> 'deleted' AND location IS NOT NULL",
        )
        .fetch_each(&self.pool, |r| {
            Ok((col(r, "location")?, stores_of(col(r, "stores")?)))
        })
        .await
    }

    async fn place_unplaced(&self, store: &str) -> Result<u64> {
        sqlx::query(
            "UPDATE images SET stores = $1, version = version + 1 WHERE stores IS NULL \
             AND location IS NOT NULL AND status IN ('active', 'deactivated')",
        )
        .bind(store)
        .affected(&self.pool)
        .await
    }

    async fn membership(&self, id: ImageId, project: &str) -> Result<Option<MemberStatus>> {
        sqlx::query("SELECT status FROM image_members WHERE image_id = $1 AND member = $2")
            .bind(id.to_string())
            .bind(project)
            .fetch_opt(&self.pool, |r| col::<String>(r, "status")?.parse())
            .await
    }

    async fn members(&self, id: ImageId) -> Result<Vec<Member>> {
        sqlx::query("SELECT member, status, created_at, updated_at FROM image_members WHERE image_id = $1 ORDER BY created_at")
            .bind(id.to_string())
            .fetch_each(&self.pool, |r| {
                let s = |c: &str| col::<String>(r, c);
                Ok(Member {
                    image_id: id,
                    member_id: s("member")?,
                    status: s("status")?.parse()?,
                    created_at: parse_ts(&s("created_at")?)?,
                    updated_at: parse_ts(&s("updated_at")?)?,
                })
            })
            .await
    }

    async fn add_member(&self, m: &Member) -> Result<()> {
        sqlx::query("INSERT INTO image_members (image_id, member, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(m.image_id.to_string())
            .bind(&m.member_id)
            .bind(m.status.as_str())
            .bind(ts(m.created_at))
            .bind(ts(m.updated_at))
            .affected(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_member(&self, m: &Member) -> Result<()> {
        sqlx::query("UPDATE image_members SET status = $1, updated_at = $2 WHERE image_id = $3 AND member = $4")
            .bind(m.status.as_str())
            .bind(ts(m.updated_at))
            .bind(m.image_id.to_string())
            .bind(&m.member_id)
            .affected(&self.pool)
            .await?;
        Ok(())
    }

    async fn apply_sharing(&self, batch: &SharingBatch, job: &Job) -> Result<()> {
        let mut tx = self.begin().await?;
        for image in &batch.saves {
            Self::save_in(&mut tx, image, image.status).await?;
        }
        for m in &batch.add {
            sqlx::query(
                "INSERT INTO image_members (image_id, member, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (image_id, member) DO NOTHING",
            )
            .bind(m.image_id.to_string())
            .bind(&m.member_id)
            .bind(m.status.as_str())
            .bind(ts(m.created_at))
            .bind(ts(m.updated_at))
            .affected(&mut *tx)
            .await?;
        }
        for (id, project) in &batch.remove {
            sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member = $2")
                .bind(id.to_string())
                .bind(project)
                .affected(&mut *tx)
                .await?;
        }
        for m in &batch.update {
            sqlx::query(
                "UPDATE image_members SET status = $1, updated_at = $2 WHERE image_id = $3 AND member = $4",
            )
            .bind(m.status.as_str())
            .bind(ts(m.updated_at))
            .bind(m.image_id.to_string())
            .bind(&m.member_id)
            .affected(&mut *tx)
            .await?;
        }
        crate::jobs::insert_job(&mut tx, job).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn remove_member(&self, id: ImageId, project: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member = $2")
            .bind(id.to_string())
            .bind(project)
            .affected(&self.pool)
            .await?;
        if done == 0 {
            return Err(Error::NotFound {
                kind: ims_domain::Entity::Member,
                id: project.to_string(),
            });
        }
        Ok(())
    }

    async fn reserve_size(&self, claim: &SizeClaim<'_>) -> Result<Option<u64>> {
        self.claim_size(claim).await
    }
}
