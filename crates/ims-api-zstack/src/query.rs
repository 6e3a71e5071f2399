//! Query requests of both front ends → [`ims_domain::query::Query`] over image fields.
//!
//! REST: repeated `q=<field><op><value>` (operators matched by substring in ZStack's
//! order), `limit` (default 1000), `start`, `count`, `replyWithCount`, `sort=±field`,
//! `fields=a,b`. RPC: `conditions: [{name, op, value}]`, `limit`, `start`, `count`,
//! `replyWithCount`, `sortBy` + `sortDirection`, `fields`.

use ims_domain::query::{Condition, Op, Page, Query, Sort, SortDir, Value};

use crate::error::{ZsError, ZsResult};
use crate::inventory::{BACKUP_STORAGE_UUID, env_type, ims_statuses};
use crate::wire::{ims_id, parse_date};

/// A parsed query request, before its fields are mapped to an aggregate.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Request {
    /// (field, operator, raw value).
    pub(crate) conditions: Vec<(String, Op, String)>,
    /// (field, direction).
    pub(crate) sort: Option<(String, SortDir)>,
    pub(crate) start: u64,
    pub(crate) limit: u64,
    pub(crate) count: bool,
    pub(crate) reply_with_count: bool,
    /// `fields=`: keep only these inventory fields.
    pub(crate) fields: Vec<String>,
}

/// The default page size of ZStack queries.
const DEFAULT_LIMIT: u64 = 1000;

/// REST operators in ZStack's matching order (the first found in the text wins).
const REST_OPS: &[(&str, Op)] = &[
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("!?=", Op::NotIn),
    ("!~=", Op::NotLike),
    ("~=", Op::Like),
    ("?=", Op::In),
    ("=", Op::Eq),
    (">", Op::Gt),
    ("<", Op::Lt),
];

/// One `q=` condition.
pub(crate) fn rest_condition(q: &str) -> ZsResult<(String, Op, String)> {
    for (text, op) in REST_OPS {
        if let Some((field, value)) = q.split_once(text) {
            return Ok((field.to_string(), *op, value.to_string()));
        }
    }
    for (suffix, op) in [(" is null", Op::IsNull), (" not null", Op::NotNull)] {
        if let Some(field) = q.strip_suffix(suffix) {
            return Ok((field.trim().to_string(), op, String::new()));
        }
    }
    Err(ZsError::bad_request(format!(
        "invalid query condition[{q}]: no operator found"
    )))
}

fn number(name: &str, v: &str) -> ZsResult<u64> {
    v.parse::<u64>().map_err(|_| {
        ZsError::bad_request(format!(
            "Invalid query parameter[{name}]: {v} is not a non-negative integer"
        ))
    })
}

fn boolean(name: &str, v: &str) -> ZsResult<bool> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ZsError::bad_request(format!(
            "Invalid query parameter[{name}]: {v} is not true or false"
        ))),
    }
}

/// The request of `GET …/{uuid}`: the query string's, narrowed to `uuid`.
pub(crate) fn rest_one(raw: Option<&str>, uuid: String) -> ZsResult<Request> {
    let mut r = rest(raw)?;
    r.conditions.push(("uuid".into(), Op::Eq, uuid));
    Ok(r)
}

/// A REST query string.
pub(crate) fn rest(raw: Option<&str>) -> ZsResult<Request> {
    let mut r = Request {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "q" => r.conditions.push(rest_condition(&v)?),
            "limit" => r.limit = number("limit", &v)?,
            "start" => r.start = number("start", &v)?,
            "count" => r.count = boolean("count", &v)?,
            "replyWithCount" => r.reply_with_count = boolean("replyWithCount", &v)?,
            "sort" => {
                // A raw '+' decodes to a space: both mean ascending.
                let (dir, field) = match v.chars().next() {
                    Some('-') => (SortDir::Desc, &v[1..]),
                    Some('+') | Some(' ') => (SortDir::Asc, &v[1..]),
                    _ => (SortDir::Asc, v.as_ref()),
                };
                r.sort = Some((field.to_string(), dir));
            }
            "fields" => {
                r.fields = v
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            _ => {}
        }
    }
    Ok(r)
}

/// An RPC operator name.
fn rpc_op(op: &str) -> ZsResult<Op> {
    Ok(match op {
        "=" => Op::Eq,
        "!=" => Op::Ne,
        ">" => Op::Gt,
        "<" => Op::Lt,
        ">=" => Op::Ge,
        "<=" => Op::Le,
        "in" => Op::In,
        "not in" => Op::NotIn,
        "like" => Op::Like,
        "not like" => Op::NotLike,
        "is null" => Op::IsNull,
        "is not null" | "not null" => Op::NotNull,
        other => return Err(ZsError::invalid(format!("invalid query operator[{other}]"))),
    })
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(","),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An RPC query message's parameters.
pub(crate) fn rpc(msg: &serde_json::Map<String, serde_json::Value>) -> ZsResult<Request> {
    let int = |k: &str, default: u64| -> ZsResult<u64> {
        match msg.get(k) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    ZsError::invalid(format!("field[{k}] must be a non-negative integer"))
                }),
        }
    };
    let flag = |k: &str| {
        msg.get(k)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    };
    let mut r = Request {
        limit: int("limit", DEFAULT_LIMIT)?,
        start: int("start", 0)?,
        count: flag("count"),
        reply_with_count: flag("replyWithCount"),
        ..Default::default()
    };
    if let Some(conds) = msg.get("conditions") {
        let list = conds
            .as_array()
            .ok_or_else(|| ZsError::invalid("field[conditions] must be a list"))?;
        for c in list {
            let name = c
                .get("name")
                .and_then(|n| n.as_str())
                .ok_or_else(|| ZsError::invalid("a query condition needs a name"))?;
            let op = rpc_op(c.get("op").and_then(|o| o.as_str()).unwrap_or(""))?;
            let value = c.get("value").map(text_of).unwrap_or_default();
            r.conditions.push((name.to_string(), op, value));
        }
    }
    if let Some(field) = msg.get("sortBy").and_then(|s| s.as_str()) {
        let dir = match msg.get("sortDirection").and_then(|d| d.as_str()) {
            Some("desc") => SortDir::Desc,
            _ => SortDir::Asc,
        };
        r.sort = Some((field.to_string(), dir));
    }
    if let Some(fields) = msg.get("fields").and_then(|f| f.as_array()) {
        r.fields = fields
            .iter()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
    }
    Ok(r)
}

fn unknown_field(field: &str) -> ZsError {
    ZsError::invalid(format!(
        "condition name[{field}] is not a field of ImageInventory or not queryable"
    ))
}

/// The error for an operator a field does not take.
pub(crate) fn bad_op(field: &str, op: Op) -> ZsError {
    ZsError::invalid(format!("operator {op:?} cannot be used on field[{field}]"))
}

/// The text values of a raw condition value: none for the null tests, the
/// comma-separated list for `?=`/`!?=`, else the value itself.
pub(crate) fn texts(op: Op, value: &str) -> Vec<Value> {
    match op {
        Op::IsNull | Op::NotNull => Vec::new(),
        Op::In | Op::NotIn => value
            .split(',')
            .map(|v| Value::Text(v.to_string()))
            .collect(),
        _ => vec![Value::Text(value.to_string())],
    }
}

/// A domain condition, its refusal as a ZStack invalid-argument error.
pub(crate) fn cond(field: &str, op: Op, values: Vec<Value>) -> ZsResult<Condition> {
    Condition::new(field, op, values).map_err(|e| ZsError::invalid(e.to_string()))
}

/// A condition that no image meets.
fn nothing() -> ZsResult<Condition> {
    cond("id", Op::IsNull, Vec::new())
}

/// Conditions on a field whose values are a closed set: `=`/`!=`/`?=`/`!?=` only,
/// each wire value expanded to the ims values it stands for.
pub(crate) fn enumerated(
    field: &str,
    ims_field: &str,
    op: Op,
    value: &str,
    map: impl Fn(&str) -> Option<Vec<String>>,
) -> ZsResult<Condition> {
    let positive = match op {
        Op::Eq | Op::In => true,
        Op::Ne | Op::NotIn => false,
        _ => return Err(bad_op(field, op)),
    };
    let mut values = Vec::new();
    for v in value.split(',') {
        let mapped = map(v)
            .ok_or_else(|| ZsError::invalid(format!("invalid value[{v}] of field[{field}]")))?;
        values.extend(mapped.into_iter().map(Value::Text));
    }
    if values.is_empty() {
        return if positive {
            nothing()
        } else {
            cond("id", Op::NotNull, Vec::new())
        };
    }
    cond(ims_field, if positive { Op::In } else { Op::NotIn }, values)
}

/// Uuid values as ims ids (a string that is no uuid names nothing and stays as it is).
pub(crate) fn uuids(op: Op, value: &str) -> Vec<Value> {
    match op {
        Op::Like | Op::NotLike => vec![Value::Text(value.to_string())],
        _ => texts(op, value)
            .into_iter()
            .map(|v| match v {
                Value::Text(t) => Value::Text(ims_id(&t).unwrap_or(t)),
                other => other,
            })
            .collect(),
    }
}

/// A condition on a date field (`createDate`, `lastOpDate`) over the ims column `ims`:
/// comparisons and null tests only.
pub(crate) fn date_condition(field: &str, ims: &str, op: Op, value: &str) -> ZsResult<Condition> {
    let values = match op {
        Op::IsNull | Op::NotNull => Vec::new(),
        Op::Like | Op::NotLike | Op::In | Op::NotIn => return Err(bad_op(field, op)),
        _ => vec![Value::Time(parse_date(value).ok_or_else(|| {
            ZsError::invalid(format!("invalid date[{value}] of field[{field}]"))
        })?)],
    };
    cond(ims, op, values)
}

/// Fields that map one to one.
fn plain_field(field: &str) -> Option<&'static str> {
    Some(match field {
        "name" => "name",
        "description" => "properties.__description",
        "size" => "virtual_size",
        "actualSize" => "size",
        "md5Sum" => "checksum",
        "format" => "disk_format",
        "platform" => "properties.__os_type",
        "guestOsType" => "properties.__os_version",
        "architecture" => "properties.architecture",
        "url" => "properties.zstack_url",
        "createDate" => "created_at",
        "lastOpDate" => "updated_at",
        _ => return None,
    })
}

/// One ImageInventory condition as domain conditions.
fn image_condition(field: &str, op: Op, value: &str) -> ZsResult<Condition> {
    match field {
        "uuid" => cond("id", op, uuids(op, value)),
        "status" => enumerated(field, "status", op, value, |v| {
            ims_statuses(v).map(|s| s.iter().map(|x| x.to_string()).collect())
        }),
        "state" => enumerated(field, "status", op, value, |v| match v {
            "Disabled" => Some(vec!["deactivated".into()]),
            // Enabled is every live status but deactivated.
            "Enabled" => Some(
                [
                    "queued",
                    "saving",
                    "uploading",
                    "importing",
                    "active",
                    "pending_delete",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ),
            _ => None,
        }),
        "mediaType" => match (op, value) {
            (Op::Eq, "RootVolumeTemplate") => cond(
                "properties.virtual_env_type",
                Op::NotIn,
                vec![
                    Value::Text("DataImage".into()),
                    Value::Text("IsoImage".into()),
                ],
            ),
            (Op::Ne, "RootVolumeTemplate") => cond(
                "properties.virtual_env_type",
                Op::In,
                vec![
                    Value::Text("DataImage".into()),
                    Value::Text("IsoImage".into()),
                ],
            ),
            (Op::Eq | Op::Ne, m) => {
                let env = env_type(m).ok_or_else(|| {
                    ZsError::invalid(format!("invalid value[{m}] of field[mediaType]"))
                })?;
                cond(
                    "properties.virtual_env_type",
                    op,
                    vec![Value::Text(env.into())],
                )
            }
            _ => Err(bad_op(field, op)),
        },
        "type" => match op {
            Op::Eq if value == "zstack" => cond("id", Op::NotNull, Vec::new()),
            Op::Ne if value != "zstack" => cond("id", Op::NotNull, Vec::new()),
            Op::Eq | Op::Ne => nothing(),
            _ => Err(bad_op(field, op)),
        },
        "backupStorageRefs.backupStorageUuid" | "backupStorage.uuid" => match op {
            Op::Eq if value == BACKUP_STORAGE_UUID => cond("id", Op::NotNull, Vec::new()),
            Op::Eq => nothing(),
            _ => Err(bad_op(field, op)),
        },
        "createDate" | "lastOpDate" => {
            date_condition(field, plain_field(field).unwrap_or_default(), op, value)
        }
        other => {
            let ims = plain_field(other).ok_or_else(|| unknown_field(other))?;
            cond(ims, op, texts(op, value))
        }
    }
}

/// Sortable ImageInventory fields.
fn image_sort_field(field: &str) -> ZsResult<&'static str> {
    match field {
        "uuid" => Ok("id"),
        "status" => Ok("status"),
        f => plain_field(f)
            .filter(|ims| !ims.starts_with("properties."))
            .ok_or_else(|| {
                ZsError::invalid(format!("sort field[{f}] is not a field of ImageInventory"))
            }),
    }
}

impl Request {
    /// The domain query over images.
    pub(crate) fn images(&self) -> ZsResult<Query> {
        self.query(image_condition, image_sort_field)
    }

    /// The domain query over one aggregate: each condition mapped by `condition`, the
    /// sort field by `sort_field` (both refusing what the inventory cannot be queried by).
    pub(crate) fn query(
        &self,
        condition: impl Fn(&str, Op, &str) -> ZsResult<Condition>,
        sort_field: impl Fn(&str) -> ZsResult<&'static str>,
    ) -> ZsResult<Query> {
        let conditions = self
            .conditions
            .iter()
            .map(|(field, op, value)| condition(field, *op, value))
            .collect::<ZsResult<Vec<_>>>()?;
        let sort = match &self.sort {
            Some((field, dir)) => Some(Sort {
                field: sort_field(field)?.to_string(),
                dir: *dir,
            }),
            None => None,
        };
        Ok(Query {
            conditions,
            sort,
            page: Page {
                start: self.start,
                limit: self.limit,
            },
            count_only: self.count,
            with_total: self.reply_with_count,
        })
    }

    /// Whether one inventory (of a storage, which ims has one of) meets every condition;
    /// only `=`, `!=`, `?=` and `!?=` are understood there.
    pub(crate) fn matches(&self, inv: &serde_json::Value) -> ZsResult<bool> {
        for (field, op, value) in &self.conditions {
            let actual = inv.get(field).map(text_of).ok_or_else(|| {
                ZsError::invalid(format!("condition name[{field}] is not a queryable field"))
            })?;
            let ok = match op {
                Op::Eq => actual == *value,
                Op::Ne => actual != *value,
                Op::In => value.split(',').any(|v| v == actual),
                Op::NotIn => !value.split(',').any(|v| v == actual),
                Op::NotNull => true,
                Op::IsNull => false,
                other => return Err(bad_op(field, *other)),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_operators_match_in_zstacks_order() {
        let c = |q: &str| rest_condition(q).unwrap();
        assert_eq!(c("name!=a"), ("name".into(), Op::Ne, "a".into()));
        assert_eq!(c("size>=10"), ("size".into(), Op::Ge, "10".into()));
        assert_eq!(
            c("status!?=Ready,Deleted"),
            ("status".into(), Op::NotIn, "Ready,Deleted".into())
        );
        assert_eq!(c("name!~=a%"), ("name".into(), Op::NotLike, "a%".into()));
        assert_eq!(c("name~=a%"), ("name".into(), Op::Like, "a%".into()));
        assert_eq!(c("name?=a,b"), ("name".into(), Op::In, "a,b".into()));
        assert_eq!(c("name=a=b"), ("name".into(), Op::Eq, "a=b".into()));
        assert_eq!(c("size>1"), ("size".into(), Op::Gt, "1".into()));
        assert_eq!(c("size<1"), ("size".into(), Op::Lt, "1".into()));
        assert_eq!(
            c("description is null"),
            ("description".into(), Op::IsNull, "".into())
        );
        assert_eq!(
            c("md5Sum not null"),
            ("md5Sum".into(), Op::NotNull, "".into())
        );
        assert!(rest_condition("name").is_err());
    }

    #[test]
    fn limits_must_be_non_negative_integers() {
        assert_eq!(rest(None).unwrap().limit, 1000);
        assert!(matches!(rest(Some("limit=-1")), Err(ZsError::Rest { .. })));
        assert!(matches!(rest(Some("limit=x")), Err(ZsError::Rest { .. })));
        assert!(matches!(rest(Some("start=-2")), Err(ZsError::Rest { .. })));
        let r = rest(Some(
            "limit=5&start=2&sort=-createDate&replyWithCount=true&fields=uuid,name",
        ))
        .unwrap();
        assert_eq!((r.limit, r.start, r.reply_with_count), (5, 2, true));
        assert_eq!(r.sort, Some(("createDate".into(), SortDir::Desc)));
        assert_eq!(r.fields, vec!["uuid".to_string(), "name".to_string()]);
    }

    #[test]
    fn image_fields_map_to_domain_fields() {
        let r = rest(Some(
            "q=status=Ready&q=uuid=7247cf569e2b4104832071822cf845c5&q=mediaType=DataVolumeTemplate",
        ))
        .unwrap();
        let q = r.images().unwrap();
        assert_eq!(q.conditions[0].field, "status");
        assert_eq!(q.conditions[0].op, Op::In);
        assert_eq!(
            q.conditions[1].values,
            vec![Value::Text("7247cf56-9e2b-4104-8320-71822cf845c5".into())]
        );
        assert_eq!(q.conditions[2].field, "properties.virtual_env_type");
        let bad = rest(Some("q=nosuchfield=1")).unwrap().images();
        assert!(matches!(
            bad,
            Err(ZsError::Api {
                code: "SYS.1007",
                ..
            })
        ));
        let bad = rest(Some("q=status>Ready")).unwrap().images();
        assert!(matches!(
            bad,
            Err(ZsError::Api {
                code: "SYS.1007",
                ..
            })
        ));
    }
}
