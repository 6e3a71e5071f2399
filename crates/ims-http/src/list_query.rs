//! The image-list query string of Glance, which Huawei IMS inherited (`name=`, `status=`,
//! `created_at=lt:…`, `tag=`, `__*` properties, `sort_key`/`sort_dir`, `limit`/`marker`)
//! → the domain's `ListQuery`. Each dialect passes its own [`ListSyntax`].

use ims_domain::image::{ContainerFormat, DiskFormat, ImageId, ImageStatus, Visibility};
use ims_domain::listing::{
    Column, Field, Filter, ListQuery, MemberStatusFilter, Op, SortDir, Value, VisibilityFilter,
};
use ims_domain::{Error, Result};
use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;

/// What differs between the dialects that share this syntax.
#[derive(Debug, Clone, Copy)]
pub struct ListSyntax {
    /// Page size when `limit` is absent.
    pub default_limit: u32,
    /// Parameters accepted and ignored (IMS's `enterprise_project_id`, say).
    pub ignored: &'static [&'static str],
}

/// Glance: `limit_param_default` 25.
pub const GLANCE: ListSyntax = ListSyntax {
    default_limit: DEFAULT_LIMIT,
    ignored: &[],
};

/// Huawei IMS `GET /v2/cloudimages`: 500 by default; enterprise projects and flavors are
/// not modelled, so those filters are accepted and ignored.
pub const IMS: ListSyntax = ListSyntax {
    default_limit: 500,
    ignored: &["enterprise_project_id", "flavor_id"],
};

/// Glance's page size when `limit` is absent (`limit_param_default`).
pub const DEFAULT_LIMIT: u32 = 25;

/// The largest page (Glance's `api_limit_max`).
pub const MAX_LIMIT: u32 = 1000;

const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "virtual_size",
    "min_disk",
    "min_ram",
    "owner",
    "visibility",
];

/// Columns that only take `eq`/`in`.
const EQ_ONLY: &[&str] = &["name", "id", "status", "container_format", "disk_format"];

/// Parses the raw query string.
pub fn parse(raw: &str, syntax: &ListSyntax) -> Result<ListQuery> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let mut q = ListQuery {
        limit: syntax.default_limit,
        ..ListQuery::default()
    };
    let (mut sort_keys, mut sort_dirs, mut sort) = (Vec::new(), Vec::new(), None);
    for (key, value) in pairs {
        // Every parameter, known or not, so no filter value reaches the catalog with a NUL.
        ims_domain::text::check("query parameter", &key)?;
        ims_domain::text::check("query parameter", &value)?;
        match key.as_str() {
            k if syntax.ignored.contains(&k) => {}
            "limit" => q.limit = parse_limit(&value)?,
            "marker" => {
                q.marker =
                    Some(ImageId::parse(&value).ok_or_else(|| {
                        Error::invalid(format!("marker {value} could not be found."))
                    })?)
            }
            "sort_key" => sort_keys.push(value),
            "sort_dir" => sort_dirs.push(value),
            "sort" => sort = Some(value),
            "tag" => q.tags.push(value),
            "changes-since" => {
                return Err(Error::invalid(
                    "The 'changes-since' filter is no longer available on v2.",
                ));
            }
            "visibility" => q.visibility = parse_visibility(&value)?,
            "member_status" => q.member_status = parse_member_status(&value)?,
            "os_hidden" => q.os_hidden = Some(parse_bool(&key, &value)?),
            "size_min" => q.filters.push(Filter::Compare(
                Field::Column(Column::Size),
                Op::Gte,
                int(&key, &value)?,
            )),
            "size_max" => q.filters.push(Filter::Compare(
                Field::Column(Column::Size),
                Op::Lte,
                int(&key, &value)?,
            )),
            _ => q.filters.push(filter(&key, &value)?),
        }
    }
    q.sort = match sort {
        Some(_) if !sort_keys.is_empty() || !sort_dirs.is_empty() => {
            return Err(Error::invalid(
                "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.",
            ));
        }
        Some(s) => parse_sort(&s)?,
        None => parse_sort_keys(&sort_keys, &sort_dirs)?,
    };
    Ok(q)
}

/// A `limit` value as Glance reads it, uncapped: an integer, not negative.
pub fn parse_count(v: &str) -> Result<u64> {
    let n: i64 = v
        .parse()
        .map_err(|_| Error::invalid("limit param must be an integer"))?;
    u64::try_from(n).map_err(|_| Error::invalid("limit param must be positive"))
}

/// A page size: [`parse_count`], capped at [`MAX_LIMIT`].
pub fn parse_limit(v: &str) -> Result<u32> {
    Ok(u32::try_from(parse_count(v)?).map_or(MAX_LIMIT, |n| n.min(MAX_LIMIT)))
}

fn parse_visibility(v: &str) -> Result<VisibilityFilter> {
    if v == "all" {
        return Ok(VisibilityFilter::All);
    }
    v.parse::<Visibility>()
        .map(VisibilityFilter::Only)
        .map_err(|_| Error::invalid(format!("Invalid visibility value: {v}")))
}

fn parse_member_status(v: &str) -> Result<MemberStatusFilter> {
    if v == "all" {
        return Ok(MemberStatusFilter::All);
    }
    v.parse()
        .map(MemberStatusFilter::Only)
        .map_err(|_| Error::invalid(format!("Invalid status value: {v}")))
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::invalid(format!(
            "Invalid value '{v}' for '{key}': expected true or false"
        ))),
    }
}

fn int(key: &str, v: &str) -> Result<Value> {
    v.parse::<i64>().map(Value::Int).map_err(|_| {
        Error::invalid(format!(
            "Invalid value '{v}' for '{key}': expected an integer"
        ))
    })
}

/// A `sort_dir` value: `asc` or `desc`.
pub fn parse_sort_dir(d: &str) -> Result<SortDir> {
    match d {
        "asc" => Ok(SortDir::Asc),
        "desc" => Ok(SortDir::Desc),
        _ => Err(Error::invalid(format!("Invalid sort direction: {d}"))),
    }
}

fn sort_column(k: &str) -> Result<Column> {
    if !SORT_KEYS.contains(&k) {
        return Err(Error::invalid(format!(
            "Invalid sort key: {k}. It should be one of the following: {}.",
            SORT_KEYS.join(", ")
        )));
    }
    Column::from_name(k).ok_or_else(|| Error::invalid(format!("Invalid sort key: {k}")))
}

fn parse_sort(s: &str) -> Result<Vec<(Column, SortDir)>> {
    s.split(',')
        .map(|part| {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            Ok((sort_column(k.trim())?, parse_sort_dir(d.trim())?))
        })
        .collect()
}

fn parse_sort_keys(keys: &[String], dirs: &[String]) -> Result<Vec<(Column, SortDir)>> {
    if dirs.len() > 1 && dirs.len() != keys.len() {
        return Err(Error::invalid(
            "Number of sort dirs does not match the number of sort keys",
        ));
    }
    if keys.is_empty() && dirs.len() == 1 {
        return Ok(vec![(Column::CreatedAt, parse_sort_dir(&dirs[0])?)]);
    }
    keys.iter()
        .enumerate()
        .map(|(n, k)| {
            let dir = dirs
                .get(n)
                .or(dirs.first())
                .map(|d| parse_sort_dir(d))
                .transpose()?
                .unwrap_or(SortDir::Desc);
            Ok((sort_column(k)?, dir))
        })
        .collect()
}

/// `key=[op:]value` for a base column or an extra property.
fn filter(key: &str, raw: &str) -> Result<Filter> {
    let (op, value) = split_op(raw);
    let field = match Column::from_name(key) {
        Some(c) => Field::Column(c),
        None => Field::Property(key.to_string()),
    };
    if EQ_ONLY.contains(&key) && !matches!(op, Some("eq" | "in") | None) {
        return Err(Error::invalid(format!(
            "Unable to filter on '{key}' with operator '{}'",
            op.unwrap_or_default()
        )));
    }
    if op == Some("in") {
        let values = split_in(value)?
            .iter()
            .map(|v| typed(&field, key, v))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Filter::In(field, values));
    }
    let op = match op {
        None | Some("eq") => Op::Eq,
        Some("neq") => Op::Neq,
        Some("gt") => Op::Gt,
        Some("gte") => Op::Gte,
        Some("lt") => Op::Lt,
        Some("lte") => Op::Lte,
        Some(other) => return Err(Error::invalid(format!("Invalid operator: {other}"))),
    };
    Ok(Filter::Compare(
        field.clone(),
        op,
        typed(&field, key, value)?,
    ))
}

fn split_op(raw: &str) -> (Option<&str>, &str) {
    match raw.split_once(':') {
        Some((op, rest)) if matches!(op, "eq" | "neq" | "gt" | "gte" | "lt" | "lte" | "in") => {
            (Some(op), rest)
        }
        _ => (None, raw),
    }
}

/// Splits an `in:` list; values with commas are double-quoted.
fn split_in(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err(Error::invalid("Unbalanced quotes in an 'in:' filter"));
    }
    out.push(cur);
    Ok(out)
}

/// Types and validates a filter value for its column.
fn typed(field: &Field, key: &str, v: &str) -> Result<Value> {
    let Field::Column(c) = field else {
        return Ok(Value::Text(v.to_string()));
    };
    if c.is_numeric() {
        return int(key, v);
    }
    if c.is_time() {
        let t = OffsetDateTime::parse(v, &Iso8601::DEFAULT)
            .map_err(|_| Error::invalid(format!("Invalid time format for {key}: {v}")))?;
        return Ok(Value::Time(t));
    }
    match c {
        Column::Protected => parse_bool(key, v).map(Value::Bool),
        Column::Status => v
            .parse::<ImageStatus>()
            .map(|s| Value::Text(s.as_str().into()))
            .map_err(|_| Error::invalid(format!("Invalid status: {v}"))),
        Column::DiskFormat => v.parse::<DiskFormat>().map(|_| Value::Text(v.into())),
        Column::ContainerFormat => v.parse::<ContainerFormat>().map(|_| Value::Text(v.into())),
        Column::Visibility => v.parse::<Visibility>().map(|_| Value::Text(v.into())),
        _ => Ok(Value::Text(v.to_string())),
    }
}

/// Takes the parameters in `names` out of a raw query string, for a route that pages
/// its own way but filters like a list: their last values by name, and the rest of the
/// string for [`parse`].
pub fn split_off(raw: &str, names: &[&str]) -> (Vec<(String, String)>, String) {
    let (mut taken, mut rest) = (Vec::new(), Vec::new());
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()).into_owned() {
        if names.contains(&k.as_str()) {
            taken.retain(|(t, _): &(String, String)| *t != k);
            taken.push((k, v));
        } else {
            rest.push((k, v));
        }
    }
    let rest = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(rest)
        .finish();
    (taken, rest)
}

/// The `first` and `next` links of a Glance list page at `base_path`: the request's own
/// parameters, in order, without `marker` (then with `next_marker`, when there is a next
/// page), all form-encoded.
pub fn page_links(
    base_path: &str,
    raw_query: &str,
    next_marker: Option<&str>,
) -> (String, Option<String>) {
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "marker")
        .collect();
    let encode = |marker: Option<&str>| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.extend_pairs(&kept);
        if let Some(m) = marker {
            s.append_pair("marker", m);
        }
        s.finish()
    };
    let query = encode(None);
    let first = if query.is_empty() {
        base_path.to_string()
    } else {
        format!("{base_path}?{query}")
    };
    let next = next_marker.map(|m| format!("{base_path}?{}", encode(Some(m))));
    (first, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_glance_list_syntax() {
        let q = parse(
            "limit=2&sort=name:asc,status&tag=a&tag=b&name=in:x,\"y,z\"&size_min=5",
            &GLANCE,
        )
        .unwrap();
        assert_eq!(q.limit, 2);
        assert_eq!(
            q.sort,
            vec![
                (Column::Name, SortDir::Asc),
                (Column::Status, SortDir::Desc)
            ]
        );
        assert_eq!(q.tags, vec!["a", "b"]);
        assert!(q.filters.contains(&Filter::In(
            Field::Column(Column::Name),
            vec![Value::Text("x".into()), Value::Text("y,z".into())]
        )));
    }

    #[test]
    fn refuses_what_glance_refuses() {
        for bad in [
            "sort_key=bogus",
            "changes-since=2020-01-01",
            "limit=-1",
            "limit=x",
            "name=gt:a",
            "sort=name&sort_key=id",
            "created_at=gt:notatime",
            "size_min=big",
            "os_hidden=maybe",
            "visibility=everyone",
            "member_status=x",
            "sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc",
            "marker=nope",
            "name=%00",
            "name=in:a,b%01",
            "tag=x%7F",
            "os_distro=%1Bx",
            "bogus%00=1",
        ] {
            assert!(parse(bad, &GLANCE).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn split_off_takes_named_parameters_and_keeps_the_rest() {
        let (taken, rest) = split_off(
            "limit=2&name=a%20b&page=3&limit=5&tag=x",
            &["limit", "page"],
        );
        assert_eq!(
            taken,
            vec![("page".into(), "3".into()), ("limit".into(), "5".into())]
        );
        let q = parse(&rest, &IMS).unwrap();
        assert_eq!(q.limit, IMS.default_limit);
        assert_eq!(q.tags, vec!["x"]);
        assert!(q.filters.contains(&Filter::Compare(
            Field::Column(Column::Name),
            Op::Eq,
            Value::Text("a b".into())
        )));
    }

    #[test]
    fn limits_and_sort_dirs_read_like_glance() {
        assert_eq!(parse_limit("5000").unwrap(), MAX_LIMIT);
        assert_eq!(parse_limit("0").unwrap(), 0);
        assert_eq!(parse_count("5000").unwrap(), 5000);
        assert_eq!(parse_sort_dir("asc").unwrap(), SortDir::Asc);
        for (bad, why) in [("x", "must be an integer"), ("-1", "must be positive")] {
            match parse_limit(bad) {
                Err(Error::InvalidInput(m)) => assert!(m.contains(why), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(parse_sort_dir("up").is_err());
    }

    #[test]
    fn links_keep_the_request_parameters_but_the_marker() {
        let base = "/v2/metadefs/namespaces";
        let (first, next) = page_links(base, "limit=1&marker=a&sort_dir=asc", Some("b c"));
        assert_eq!(first, "/v2/metadefs/namespaces?limit=1&sort_dir=asc");
        assert_eq!(
            next.unwrap(),
            "/v2/metadefs/namespaces?limit=1&sort_dir=asc&marker=b+c"
        );
        assert_eq!(page_links(base, "", None), (base.to_string(), None));
        assert_eq!(
            page_links("/v2/images", "marker=a", Some("b")).1.unwrap(),
            "/v2/images?marker=b"
        );
    }

    #[test]
    fn created_at_takes_operators() {
        let q = parse("created_at=gte:2020-01-01T00:00:00Z", &GLANCE).unwrap();
        assert!(matches!(
            q.filters[0],
            Filter::Compare(Field::Column(Column::CreatedAt), Op::Gte, Value::Time(_))
        ));
    }
}
