//! Query strings of the metadefs lists: paging, order and filters, with Glance's 400s.

use ims_domain::Error;
use ims_domain::listing;
use ims_domain::metadefs::{NamespaceQuery, NsVisibility, Paging, SortDir, SortKey};
use ims_http::list_query::{DEFAULT_LIMIT, MAX_LIMIT, parse_count, parse_sort_dir};

/// The decoded `key=value` pairs, in order.
pub fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn limit(pairs: &[(String, String)], zero_ok: bool) -> Result<Option<u64>, Error> {
    let Some(raw) = get(pairs, "limit") else {
        return Ok(None);
    };
    let n = parse_count(raw.trim())?;
    if n == 0 && !zero_ok {
        return Err(Error::invalid("limit param must be positive"));
    }
    Ok(Some(n))
}

/// Paging of a list whose entries sort by `created_at`, `updated_at` or `name_key`.
fn paging(
    pairs: &[(String, String)],
    zero_ok: bool,
    extra: &[(&str, SortKey)],
    name_key: &str,
) -> Result<Paging, Error> {
    let sort_dir = match parse_sort_dir(get(pairs, "sort_dir").unwrap_or("desc"))? {
        listing::SortDir::Asc => SortDir::Asc,
        listing::SortDir::Desc => SortDir::Desc,
    };
    let sort_key = match get(pairs, "sort_key").unwrap_or("created_at") {
        "created_at" => SortKey::CreatedAt,
        "updated_at" => SortKey::UpdatedAt,
        k if k == name_key => SortKey::Name,
        k => extra
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, key)| *key)
            .ok_or_else(|| Error::invalid(format!("Invalid sort key: {k}")))?,
    };
    Ok(Paging {
        sort_key,
        sort_dir,
        marker: get(pairs, "marker")
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        limit: limit(pairs, zero_ok)?,
    })
}

/// `GET /v2/metadefs/namespaces`: 25 a page by default, at most 1000.
pub fn namespaces(pairs: &[(String, String)]) -> Result<NamespaceQuery, Error> {
    let mut paging = paging(
        pairs,
        true,
        &[
            ("display_name", SortKey::DisplayName),
            ("visibility", SortKey::Visibility),
            ("owner", SortKey::Owner),
        ],
        "namespace",
    )?;
    let limit = paging.limit.unwrap_or(u64::from(DEFAULT_LIMIT));
    paging.limit = Some(limit.min(u64::from(MAX_LIMIT)));
    let visibility = match get(pairs, "visibility").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            NsVisibility::parse(v)
                .ok_or_else(|| Error::invalid(format!("Invalid visibility value: {v}")))?,
        ),
    };
    let resource_types = get(pairs, "resource_types").map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    Ok(NamespaceQuery {
        paging,
        visibility,
        resource_types,
    })
}

/// `GET …/objects` and `GET …/tags`: all entries unless `limit` is given.
pub fn children(pairs: &[(String, String)], zero_ok: bool) -> Result<Paging, Error> {
    paging(pairs, zero_ok, &[], "name")
}

/// `X-Openstack-Append`, read like oslo's `bool_from_string`.
pub fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "t" | "true" | "on" | "y" | "yes"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_queries_follow_glance() {
        let q = namespaces(&pairs(Some("limit=2&sort_dir=asc&visibility=public"))).unwrap();
        assert_eq!(q.paging.limit, Some(2));
        assert_eq!(q.paging.sort_dir, SortDir::Asc);
        assert_eq!(q.visibility, Some(NsVisibility::Public));
        assert_eq!(namespaces(&pairs(None)).unwrap().paging.limit, Some(25));
        assert_eq!(
            namespaces(&pairs(Some("limit=5000"))).unwrap().paging.limit,
            Some(1000)
        );
        for bad in [
            "limit=x",
            "limit=-1",
            "sort_dir=up",
            "visibility=shared",
            "sort_key=colour",
        ] {
            assert!(namespaces(&pairs(Some(bad))).is_err(), "{bad}");
        }
    }

    #[test]
    fn append_reads_like_oslo() {
        assert!(truthy(Some("True")) && truthy(Some("yes")) && truthy(Some("1")));
        assert!(!truthy(Some("false")) && !truthy(None) && !truthy(Some("maybe")));
    }
}
