//! `MetadefRepo` on the catalog database (`migrations/0003_metadefs.sql`). Definitions
//! and `required` lists are JSON text; namespace contents cascade with their namespace.

use std::collections::BTreeMap;

use async_trait::async_trait;
use ims_domain::metadefs::{
    Association, ContentKind, Contents, MetaObject, MetadefRepo, Namespace, NamespaceListing,
    NsVisibility, Paging, Property, PropertyDef, ResourceType, SortDir, SortKey, Tag,
};
use ims_domain::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::codec::{parse_ts, ts};
use crate::sql::{self, Arg, Run, Sql, bind, col, flag};
use crate::{Catalog, db_err};

const NS_COLUMNS: &str = "n.id, n.namespace, n.display_name, n.description, n.visibility, \
                          n.protected, n.owner, n.created_at, n.updated_at";

fn text(row: &AnyRow, c: &str) -> Result<String> {
    col(row, c)
}

fn opt_text(row: &AnyRow, c: &str) -> Result<Option<String>> {
    col(row, c)
}

fn time(row: &AnyRow, c: &str) -> Result<time::OffsetDateTime> {
    parse_ts(&text(row, c)?)
}

fn stored(e: serde_json::Error) -> Error {
    Error::internal(format!("stored metadef JSON: {e}"))
}

fn names_of(s: Option<String>) -> Result<Option<Vec<String>>> {
    s.map(|s| serde_json::from_str(&s).map_err(stored))
        .transpose()
}

fn defs_of(s: Option<String>) -> Result<Option<BTreeMap<String, PropertyDef>>> {
    s.map(|s| serde_json::from_str(&s).map_err(stored))
        .transpose()
}

fn def_of(s: &str) -> Result<PropertyDef> {
    serde_json::from_str(s).map_err(stored)
}

fn namespace_from(row: &AnyRow) -> Result<Namespace> {
    Ok(Namespace {
        id: text(row, "id")?,
        name: text(row, "namespace")?,
        display_name: opt_text(row, "display_name")?,
        description: opt_text(row, "description")?,
        visibility: NsVisibility::parse(&text(row, "visibility")?).unwrap_or(NsVisibility::Private),
        protected: flag(row, "protected")?,
        owner: text(row, "owner")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn association_from(row: &AnyRow) -> Result<Association> {
    Ok(Association {
        name: text(row, "resource_type")?,
        prefix: opt_text(row, "prefix")?,
        properties_target: opt_text(row, "properties_target")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn object_from(row: &AnyRow) -> Result<MetaObject> {
    Ok(MetaObject {
        name: text(row, "name")?,
        description: opt_text(row, "description")?,
        required: names_of(opt_text(row, "required")?)?,
        properties: defs_of(opt_text(row, "json_schema")?)?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn property_from(row: &AnyRow) -> Result<Property> {
    Ok(Property {
        name: text(row, "name")?,
        schema: def_of(&text(row, "json_schema")?)?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn tag_from(row: &AnyRow) -> Result<Tag> {
    Ok(Tag {
        name: text(row, "name")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

impl Sql {
    /// Adds a text argument and returns its placeholder.
    fn text_arg(&mut self, a: impl Into<String>) -> String {
        self.arg(Arg::Text(a.into()))
    }

    fn push_arg(&mut self, a: impl Into<String>) {
        let mark = self.text_arg(a);
        self.text += &mark;
    }

    async fn fetch(self, cat: &Catalog) -> Result<Vec<AnyRow>> {
        let q = sqlx::query(sqlx::AssertSqlSafe(self.text));
        bind(q, self.args)
            .fetch_all(&cat.pool)
            .await
            .map_err(db_err)
    }

    /// Appends `ORDER BY` over `keys` (the last ones break ties), the keyset condition
    /// after `after` (the marker's values of the same keys), and `LIMIT`.
    fn page(&mut self, keys: &[&str], after: Option<Vec<String>>, paging: &Paging) {
        let dir = match paging.sort_dir {
            SortDir::Asc => sql::SortDir::Asc,
            SortDir::Desc => sql::SortDir::Desc,
        };
        let keys: Vec<(&str, sql::SortDir)> = keys.iter().map(|k| (*k, dir)).collect();
        if let Some(values) = after {
            let values: Vec<Arg> = values.into_iter().map(Arg::Text).collect();
            let cond = self.keyset(&keys, &values);
            self.text += &format!(" AND ({cond})");
        }
        self.text += &format!(" ORDER BY {}", sql::order_by(&keys));
        if let Some(limit) = paging.limit {
            self.text += &format!(" LIMIT {limit}");
        }
    }
}

/// The sort columns, most significant first, without repeats.
fn sort_keys(key: SortKey, name_col: &'static str) -> Vec<&'static str> {
    let first = match key {
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::Name => name_col,
        SortKey::DisplayName => "COALESCE(display_name, '')",
        SortKey::Visibility => "visibility",
        SortKey::Owner => "owner",
    };
    let mut keys = vec![first];
    for k in ["created_at", name_col] {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// The marker row's values of `keys`.
async fn marker_values(
    cat: &Catalog,
    table: &str,
    ns: &str,
    keys: &[&str],
    marker: &Option<String>,
) -> Result<Option<Vec<String>>> {
    let Some(marker) = marker else {
        return Ok(None);
    };
    let cols: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} AS k{i}"))
        .collect();
    let mut sql = Sql::new(format!(
        "SELECT {} FROM {table} WHERE namespace_id = ",
        cols.join(", ")
    ));
    sql.push_arg(ns);
    sql.text += " AND name = ";
    sql.push_arg(marker.clone());
    let rows = sql.fetch(cat).await?;
    let Some(row) = rows.first() else {
        return Err(Error::NotFound {
            kind: ims_domain::Entity::MetadefMarker,
            id: marker.clone(),
        });
    };
    (0..keys.len())
        .map(|i| text(row, &format!("k{i}")))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

async fn exec(tx: &mut Transaction<'_, Any>, sql: &'static str, args: Vec<Arg>) -> Result<u64> {
    bind(sqlx::query(sql), args).affected(&mut **tx).await
}

fn t(s: &str) -> Arg {
    Arg::Text(s.to_string())
}

fn opt(s: &Option<String>) -> Arg {
    match s {
        Some(s) => Arg::Text(s.clone()),
        None => Arg::Null,
    }
}

async fn ensure_resource_type(
    tx: &mut Transaction<'_, Any>,
    name: &str,
    protected: bool,
    at: &str,
) -> Result<()> {
    // ON CONFLICT: two first associations of one new type must not fail each other.
    exec(
        tx,
        "INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING",
        vec![t(name), Arg::Int(i64::from(protected)), t(at)],
    )
    .await?;
    Ok(())
}

async fn insert_association_in(
    tx: &mut Transaction<'_, Any>,
    ns: &str,
    a: &Association,
    protected: bool,
) -> Result<()> {
    ensure_resource_type(tx, &a.name, protected, &ts(a.created_at)).await?;
    exec(
        tx,
        "INSERT INTO metadef_namespace_resource_types (namespace_id, resource_type, prefix, properties_target, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        vec![t(ns), t(&a.name), opt(&a.prefix), opt(&a.properties_target), t(&ts(a.created_at)), t(&ts(a.updated_at))],
    )
    .await?;
    Ok(())
}

fn object_args(ns: &str, o: &MetaObject) -> Result<Vec<Arg>> {
    Ok(vec![
        t(ns),
        t(&o.name),
        opt(&o.description),
        opt(&o
            .required
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(Error::internal)?),
        opt(&o
            .properties
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(Error::internal)?),
        t(&ts(o.created_at)),
        t(&ts(o.updated_at)),
    ])
}

async fn insert_object_in(tx: &mut Transaction<'_, Any>, ns: &str, o: &MetaObject) -> Result<()> {
    exec(
        tx,
        "INSERT INTO metadef_objects (namespace_id, name, description, required, json_schema, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        object_args(ns, o)?,
    )
    .await?;
    Ok(())
}

async fn insert_property_in(tx: &mut Transaction<'_, Any>, ns: &str, p: &Property) -> Result<()> {
    exec(
        tx,
        "INSERT INTO metadef_properties (namespace_id, name, json_schema, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        vec![t(ns), t(&p.name), t(&serde_json::to_string(&p.schema).map_err(Error::internal)?), t(&ts(p.created_at)), t(&ts(p.updated_at))],
    )
    .await?;
    Ok(())
}

async fn insert_tag_in(tx: &mut Transaction<'_, Any>, ns: &str, tag: &Tag) -> Result<()> {
    exec(
        tx,
        "INSERT INTO metadef_tags (namespace_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)",
        vec![t(ns), t(&tag.name), t(&ts(tag.created_at)), t(&ts(tag.updated_at))],
    )
    .await?;
    Ok(())
}

/// Writes a namespace row and its contents inside `tx`.
async fn insert_namespace_in(
    tx: &mut Transaction<'_, Any>,
    n: &Namespace,
    c: &Contents,
    protect_new_types: bool,
) -> Result<()> {
    exec(
        tx,
        "INSERT INTO metadef_namespaces (id, namespace, display_name, description, visibility, protected, owner, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![t(&n.id), t(&n.name), opt(&n.display_name), opt(&n.description), t(n.visibility.as_str()),
             Arg::Int(i64::from(n.protected)), t(&n.owner), t(&ts(n.created_at)), t(&ts(n.updated_at))],
    )
    .await?;
    for a in &c.associations {
        insert_association_in(tx, &n.id, a, protect_new_types).await?;
    }
    for p in &c.properties {
        insert_property_in(tx, &n.id, p).await?;
    }
    for o in &c.objects {
        insert_object_in(tx, &n.id, o).await?;
    }
    for tag in &c.tags {
        insert_tag_in(tx, &n.id, tag).await?;
    }
    Ok(())
}

/// Deletes a namespace and everything in it inside `tx`.
async fn delete_namespace_in(tx: &mut Transaction<'_, Any>, ns: &str) -> Result<()> {
    // The contents cascade; deleting them first keeps SQLite connections without
    // foreign-key enforcement consistent too.
    for sql in [
        "DELETE FROM metadef_objects WHERE namespace_id = $1",
        "DELETE FROM metadef_properties WHERE namespace_id = $1",
        "DELETE FROM metadef_tags WHERE namespace_id = $1",
        "DELETE FROM metadef_namespace_resource_types WHERE namespace_id = $1",
        "DELETE FROM metadef_namespaces WHERE id = $1",
    ] {
        exec(tx, sql, vec![t(ns)]).await?;
    }
    Ok(())
}

/// An update statement and its arguments, shared by one-shot updates and `merge_namespace`.
type Update = (&'static str, Vec<Arg>);

fn namespace_update(n: &Namespace) -> Update {
    (
        "UPDATE metadef_namespaces SET namespace = $1, display_name = $2, description = $3, visibility = $4, protected = $5, owner = $6, updated_at = $7 WHERE id = $8",
        vec![
            t(&n.name),
            opt(&n.display_name),
            opt(&n.description),
            t(n.visibility.as_str()),
            Arg::Int(i64::from(n.protected)),
            t(&n.owner),
            t(&ts(n.updated_at)),
            t(&n.id),
        ],
    )
}

fn object_update(ns: &str, old: &str, o: &MetaObject) -> Result<Update> {
    let mut args = object_args(ns, o)?;
    args.push(t(old));
    Ok((
        "UPDATE metadef_objects SET name = $2, description = $3, required = $4, json_schema = $5, created_at = $6, updated_at = $7 WHERE namespace_id = $1 AND name = $8",
        args,
    ))
}

fn property_update(ns: &str, old: &str, p: &Property) -> Result<Update> {
    Ok((
        "UPDATE metadef_properties SET name = $1, json_schema = $2, updated_at = $3 WHERE namespace_id = $4 AND name = $5",
        vec![
            t(&p.name),
            t(&serde_json::to_string(&p.schema).map_err(Error::internal)?),
            t(&ts(p.updated_at)),
            t(ns),
            t(old),
        ],
    ))
}

fn association_update(ns: &str, a: &Association) -> Update {
    (
        "UPDATE metadef_namespace_resource_types SET prefix = $1, properties_target = $2, updated_at = $3 WHERE namespace_id = $4 AND resource_type = $5",
        vec![
            opt(&a.prefix),
            opt(&a.properties_target),
            t(&ts(a.updated_at)),
            t(ns),
            t(&a.name),
        ],
    )
}

fn content_table(kind: ContentKind) -> &'static str {
    match kind {
        ContentKind::Objects => "DELETE FROM metadef_objects WHERE namespace_id = $1",
        ContentKind::Properties => "DELETE FROM metadef_properties WHERE namespace_id = $1",
        ContentKind::Tags => "DELETE FROM metadef_tags WHERE namespace_id = $1",
    }
}

impl Catalog {
    async fn one_shot(&self, sql: &'static str, args: Vec<Arg>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = exec(&mut tx, sql, args).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(n)
    }

    /// Fails with not found when an update matched no row.
    async fn updated(
        &self,
        sql: &'static str,
        args: Vec<Arg>,
        kind: ims_domain::Entity,
        id: &str,
    ) -> Result<()> {
        match self.one_shot(sql, args).await? {
            0 => Err(Error::NotFound {
                kind,
                id: id.to_string(),
            }),
            _ => Ok(()),
        }
    }

    async fn rows(&self, sql: &'static str, args: Vec<Arg>) -> Result<Vec<AnyRow>> {
        bind(sqlx::query(sql), args)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }
}

#[async_trait]
impl MetadefRepo for Catalog {
    async fn namespace(&self, name: &str) -> Result<Option<Namespace>> {
        let mut sql = Sql::new(format!(
            "SELECT {NS_COLUMNS} FROM metadef_namespaces n WHERE n.namespace = "
        ));
        sql.push_arg(name);
        sql.fetch(self)
            .await?
            .first()
            .map(namespace_from)
            .transpose()
    }

    async fn namespaces(&self, listing: &NamespaceListing) -> Result<Vec<Namespace>> {
        let q = &listing.query;
        let mut sql = Sql::new(format!(
            "SELECT {NS_COLUMNS} FROM metadef_namespaces n WHERE 1 = 1"
        ));
        if let Some(owner) = &listing.owner_scope {
            let owner = sql.text_arg(owner.clone());
            sql.text += &format!(" AND (n.owner = {owner} OR n.visibility = 'public')");
        }
        if let Some(v) = q.visibility {
            let v = sql.text_arg(v.as_str());
            sql.text += &format!(" AND n.visibility = {v}");
        }
        if let Some(types) = &q.resource_types {
            let marks: Vec<String> = types.iter().map(|rt| sql.text_arg(rt.clone())).collect();
            sql.text += &format!(
                " AND n.id IN (SELECT namespace_id FROM metadef_namespace_resource_types WHERE resource_type IN ({}))",
                if marks.is_empty() {
                    "NULL".to_string()
                } else {
                    marks.join(", ")
                }
            );
        }
        let columns = sort_keys(q.paging.sort_key, "namespace");
        let keys: Vec<String> = columns
            .iter()
            .map(|k| match k.strip_prefix("COALESCE(") {
                Some(rest) => format!("COALESCE(n.{rest}"),
                None => format!("n.{k}"),
            })
            .collect();
        let after = listing.after.as_ref().map(|m| {
            columns
                .iter()
                .map(|k| match *k {
                    "created_at" => ts(m.created_at),
                    "updated_at" => ts(m.updated_at),
                    "namespace" => m.name.clone(),
                    "visibility" => m.visibility.as_str().to_string(),
                    "owner" => m.owner.clone(),
                    _ => m.display_name.clone().unwrap_or_default(),
                })
                .collect()
        });
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        sql.page(&key_refs, after, &q.paging);
        sql.fetch(self).await?.iter().map(namespace_from).collect()
    }

    async fn associations_of(&self, ns: &[String]) -> Result<Vec<(String, Association)>> {
        if ns.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql =
            Sql::new("SELECT * FROM metadef_namespace_resource_types WHERE namespace_id IN (");
        let marks: Vec<String> = ns.iter().map(|id| sql.text_arg(id.clone())).collect();
        sql.text += &marks.join(", ");
        sql.text += ") ORDER BY created_at, resource_type";
        sql.fetch(self)
            .await?
            .iter()
            .map(|r| Ok((text(r, "namespace_id")?, association_from(r)?)))
            .collect()
    }

    async fn contents(&self, ns: &str) -> Result<Contents> {
        Ok(Contents {
            associations: self.associations(ns).await?,
            properties: self.properties(ns).await?,
            objects: self.objects(ns, &Paging::default()).await?,
            tags: self.tags(ns, &Paging::default()).await?,
        })
    }

    async fn insert_namespace(
        &self,
        n: &Namespace,
        c: &Contents,
        protect_new_types: bool,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_namespace_in(&mut tx, n, c, protect_new_types).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn replace_namespace(
        &self,
        old: &str,
        n: &Namespace,
        c: &Contents,
        protect_new_types: bool,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        delete_namespace_in(&mut tx, old).await?;
        insert_namespace_in(&mut tx, n, c, protect_new_types).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn merge_namespace(
        &self,
        ns: &str,
        updated: Option<&Namespace>,
        add: &Contents,
        replace: &Contents,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let mut updates: Vec<Update> = updated.map(namespace_update).into_iter().collect();
        for a in &add.associations {
            insert_association_in(&mut tx, ns, a, false).await?;
        }
        updates.extend(
            replace
                .associations
                .iter()
                .map(|a| association_update(ns, a)),
        );
        for p in &add.properties {
            insert_property_in(&mut tx, ns, p).await?;
        }
        for p in &replace.properties {
            updates.push(property_update(ns, &p.name, p)?);
        }
        for o in &add.objects {
            insert_object_in(&mut tx, ns, o).await?;
        }
        for o in &replace.objects {
            updates.push(object_update(ns, &o.name, o)?);
        }
        for tag in &add.tags {
            insert_tag_in(&mut tx, ns, tag).await?;
        }
        for (sql, args) in updates {
            exec(&mut tx, sql, args).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn update_namespace(&self, n: &Namespace) -> Result<()> {
        let (sql, args) = namespace_update(n);
        self.updated(sql, args, ims_domain::Entity::MetadefNamespace, &n.name)
            .await
    }

    async fn delete_namespace(&self, ns: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        delete_namespace_in(&mut tx, ns).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn clear(&self, ns: &str, kind: ContentKind) -> Result<()> {
        self.one_shot(content_table(kind), vec![t(ns)]).await?;
        Ok(())
    }

    async fn objects(&self, ns: &str, paging: &Paging) -> Result<Vec<MetaObject>> {
        let keys = sort_keys(paging.sort_key, "name");
        let after = marker_values(self, "metadef_objects", ns, &keys, &paging.marker).await?;
        let mut sql = Sql::new("SELECT * FROM metadef_objects WHERE namespace_id = ");
        sql.push_arg(ns);
        sql.page(&keys, after, paging);
        sql.fetch(self).await?.iter().map(object_from).collect()
    }

    async fn object(&self, ns: &str, name: &str) -> Result<Option<MetaObject>> {
        let rows = self
            .rows(
                "SELECT * FROM metadef_objects WHERE namespace_id = $1 AND name = $2",
                vec![t(ns), t(name)],
            )
            .await?;
        rows.first().map(object_from).transpose()
    }

    async fn insert_object(&self, ns: &str, object: &MetaObject) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_object_in(&mut tx, ns, object).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn update_object(&self, ns: &str, old: &str, o: &MetaObject) -> Result<()> {
        let (sql, args) = object_update(ns, old, o)?;
        self.updated(sql, args, ims_domain::Entity::MetadefObject, old)
            .await
    }

    async fn delete_object(&self, ns: &str, name: &str) -> Result<bool> {
        let n = self
            .one_shot(
                "DELETE FROM metadef_objects WHERE namespace_id = $1 AND name = $2",
                vec![t(ns), t(name)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn properties(&self, ns: &str) -> Result<Vec<Property>> {
        self.rows(
            "SELECT * FROM metadef_properties WHERE namespace_id = $1 ORDER BY name",
            vec![t(ns)],
        )
        .await?
        .iter()
        .map(property_from)
        .collect()
    }

    async fn property(&self, ns: &str, name: &str) -> Result<Option<Property>> {
        let rows = self
            .rows(
                "SELECT * FROM metadef_properties WHERE namespace_id = $1 AND name = $2",
                vec![t(ns), t(name)],
            )
            .await?;
        rows.first().map(property_from).transpose()
    }

    async fn insert_property(&self, ns: &str, property: &Property) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_property_in(&mut tx, ns, property).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn update_property(&self, ns: &str, old: &str, p: &Property) -> Result<()> {
        let (sql, args) = property_update(ns, old, p)?;
        self.updated(sql, args, ims_domain::Entity::MetadefProperty, old)
            .await
    }

    async fn delete_property(&self, ns: &str, name: &str) -> Result<bool> {
        let n = self
            .one_shot(
                "DELETE FROM metadef_properties WHERE namespace_id = $1 AND name = $2",
                vec![t(ns), t(name)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn tags(&self, ns: &str, paging: &Paging) -> Result<Vec<Tag>> {
        let keys = sort_keys(paging.sort_key, "name");
        let after = marker_values(self, "metadef_tags", ns, &keys, &paging.marker).await?;
        let mut sql = Sql::new("SELECT * FROM metadef_tags WHERE namespace_id = ");
        sql.push_arg(ns);
        sql.page(&keys, after, paging);
        sql.fetch(self).await?.iter().map(tag_from).collect()
    }

    async fn tag(&self, ns: &str, name: &str) -> Result<Option<Tag>> {
        let rows = self
            .rows(
                "SELECT * FROM metadef_tags WHERE namespace_id = $1 AND name = $2",
                vec![t(ns), t(name)],
            )
            .await?;
        rows.first().map(tag_from).transpose()
    }

    async fn insert_tags(&self, ns: &str, tags: &[Tag], append: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        if !append {
            exec(&mut tx, content_table(ContentKind::Tags), vec![t(ns)]).await?;
        }
        for tag in tags {
            insert_tag_in(&mut tx, ns, tag).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn update_tag(&self, ns: &str, old: &str, tag: &Tag) -> Result<()> {
        self.updated(
            "UPDATE metadef_tags SET name = $1, updated_at = $2 WHERE namespace_id = $3 AND name = $4",
            vec![t(&tag.name), t(&ts(tag.updated_at)), t(ns), t(old)],
            ims_domain::Entity::MetadefTag,
            old,
        )
        .await
    }

    async fn delete_tag(&self, ns: &str, name: &str) -> Result<bool> {
        let n = self
            .one_shot(
                "DELETE FROM metadef_tags WHERE namespace_id = $1 AND name = $2",
                vec![t(ns), t(name)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn resource_types(&self) -> Result<Vec<ResourceType>> {
        self.rows(
            "SELECT * FROM metadef_resource_types ORDER BY created_at, name",
            vec![],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(ResourceType {
                name: text(r, "name")?,
                protected: flag(r, "protected")?,
                created_at: time(r, "created_at")?,
                updated_at: time(r, "updated_at")?,
            })
        })
        .collect()
    }

    async fn associations(&self, ns: &str) -> Result<Vec<Association>> {
        self.rows(
            "SELECT * FROM metadef_namespace_resource_types WHERE namespace_id = $1 ORDER BY created_at, resource_type",
            vec![t(ns)],
        )
        .await?
        .iter()
        .map(association_from)
        .collect()
    }

    async fn insert_association(&self, ns: &str, association: &Association) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_association_in(&mut tx, ns, association, false).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn update_association(&self, ns: &str, a: &Association) -> Result<()> {
        let (sql, args) = association_update(ns, a);
        self.updated(sql, args, ims_domain::Entity::MetadefAssociation, &a.name)
            .await
    }

    async fn delete_association(&self, ns: &str, name: &str) -> Result<bool> {
        let n = self
            .one_shot(
                "DELETE FROM metadef_namespace_resource_types WHERE namespace_id = $1 AND resource_type = $2",
                vec![t(ns), t(name)],
            )
            .await?;
        Ok(n > 0)
    }
}
