//! Tag rules and tag use cases.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::image::Image;
use crate::image::tag_search::{TagSearch, Window};
use crate::listing::{Column, Field, Filter, ListQuery, ListScope, Op, Value};
use crate::principal::Principal;

/// A tag is 1–255 characters. When it is written as `key=value` (the Huawei seed's
/// convention) the key must not be empty.
pub fn validate_tag(tag: &str) -> Result<()> {
    let n = tag.chars().count();
    if n == 0 || n > 255 {
        return Err(Error::invalid("Tags must be 1 to 255 characters"));
    }
    if tag.starts_with('=') {
        return Err(Error::invalid("A key=value tag needs a non-empty key"));
    }
    crate::text::check("tags", tag)
}

/// A tag as an image keeps it, from any dialect: a plain tag ([`validate_tag`]), or the
/// stored form `key=value` of a valid [`KeyValueTag`] (whose key and value together may
/// be longer than a plain tag).
pub fn validate_stored_tag(tag: &str) -> Result<()> {
    let Err(plain) = validate_tag(tag) else {
        return Ok(());
    };
    match tag.split_once('=') {
        Some((key, value)) if !key.is_empty() => KeyValueTag::new(key, value).map(|_| ()),
        _ => Err(Error::field("tags", plain.to_string())),
    }
}

/// A key/value tag (Huawei IMS), kept on the image as the Glance tag `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyValueTag {
    /// 1–128 characters, no `=`.
    pub key: String,
    /// 0–255 characters.
    pub value: String,
}

impl KeyValueTag {
    /// A checked key/value tag.
    pub fn new(key: &str, value: &str) -> Result<Self> {
        let k = key.chars().count();
        if k == 0 || k > 128 || key.contains('=') {
            return Err(Error::field(
                "tags",
                "A tag key is 1 to 128 characters without '='.",
            ));
        }
        if value.chars().count() > 255 {
            return Err(Error::field(
                "tags",
                "A tag value is at most 255 characters.",
            ));
        }
        crate::text::check("tags", key)?;
        crate::text::check("tags", value)?;
        Ok(KeyValueTag {
            key: key.to_string(),
            value: value.to_string(),
        })
    }

    /// Reads a stored tag: `key=value`, or a plain Glance tag as a key with no value.
    pub fn read(tag: &str) -> Self {
        let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
        KeyValueTag {
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    /// The stored form.
    pub fn stored(&self) -> String {
        format!("{}={}", self.key, self.value)
    }

    /// An image's tags, each read as a key/value tag.
    pub fn all_of(image: &Image) -> Vec<Self> {
        image.tags.iter().map(|t| KeyValueTag::read(t)).collect()
    }
}

impl super::ImageService {
    /// An image's tags as key/value pairs.
    pub async fn key_value_tags(&self, who: &Principal, id: &str) -> Result<Vec<KeyValueTag>> {
        Ok(KeyValueTag::all_of(&self.get(who, id).await?))
    }

    /// Sets tags (replacing any with the same key) and removes keys, in one save.
    /// Removing a key the image does not have is `NotFound` when `strict`.
    pub async fn change_key_value_tags(
        &self,
        who: &Principal,
        id: &str,
        set: Vec<KeyValueTag>,
        remove: Vec<String>,
        strict: bool,
    ) -> Result<()> {
        self.edit(who, id, |image| {
            for key in remove.iter().chain(set.iter().map(|t| &t.key)) {
                let before = image.tags.len();
                image.tags.retain(|t| &KeyValueTag::read(t).key != key);
                if strict && remove.contains(key) && image.tags.len() == before {
                    return Err(Error::NotFound {
                        kind: crate::Entity::Tag,
                        id: key.clone(),
                    });
                }
            }
            image.tags.extend(set.iter().map(KeyValueTag::stored));
            Ok(true)
        })
        .await
        .map(|_| ())
    }

    /// Every key/value tag on the caller's project's images, values grouped by key.
    pub async fn project_key_value_tags(
        &self,
        who: &Principal,
    ) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let mut out: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
        self.scan_own(who, ListQuery::default(), |image| {
            for t in KeyValueTag::all_of(&image) {
                out.entry(t.key).or_default().insert(t.value);
            }
        })
        .await?;
        Ok(out)
    }

    /// The distinct key/value tags on the caller's project's images that `query` selects
    /// (its filters; its paging is ignored), sorted by key then value, one window of them.
    pub async fn tenant_tags(
        &self,
        who: &Principal,
        query: ListQuery,
        window: Window,
    ) -> Result<Vec<KeyValueTag>> {
        let mut all = BTreeSet::new();
        self.scan_own(who, query, |image| all.extend(KeyValueTag::all_of(&image)))
            .await?;
        Ok(window.slice(all))
    }

    /// The caller's project's images that `search` finds, newest first: how many, and
    /// those in `window` (none without one, for a count). The search must keep its
    /// limits ([`TagSearch::validated`]).
    pub async fn search_by_tags(
        &self,
        who: &Principal,
        search: TagSearch,
        window: Option<Window>,
    ) -> Result<TagSearchResult> {
        let search = search.validated()?;
        let mut found = TagSearchResult {
            total: 0,
            images: Vec::new(),
        };
        let every = ListQuery {
            os_hidden: None,
            ..ListQuery::default()
        };
        self.scan_own(who, every, |image| {
            let name = image.name.as_deref().unwrap_or("");
            if search.finds(&image.id.to_string(), name, &KeyValueTag::all_of(&image)) {
                if window.is_some_and(|w| w.contains(found.total)) {
                    found.images.push(image);
                }
                found.total += 1;
            }
        })
        .await?;
        Ok(found)
    }

    /// Visits every image of the caller's project that `query`'s filters select (admins
    /// included: only their own project's), a catalog page at a time.
    async fn scan_own(
        &self,
        who: &Principal,
        query: ListQuery,
        mut visit: impl FnMut(Image),
    ) -> Result<()> {
        let mut query = query.bounded(&self.settings.list_limits)?;
        query.filters.push(Filter::Compare(
            Field::Column(Column::Owner),
            Op::Eq,
            Value::Text(who.project_id.clone()),
        ));
        query.limit = SCAN_PAGE;
        query.marker = None;
        let scope = ListScope::Project(who.project_id.clone());
        loop {
            let page = self.repo.list(&query, &scope).await?;
            let next = match page.last() {
                Some(last) if page.len() == SCAN_PAGE as usize => Some(last.id),
                _ => None,
            };
            page.into_iter().for_each(&mut visit);
            match next {
                Some(id) => query.marker = Some(id),
                None => return Ok(()),
            }
        }
    }
}

/// What a tag search found.
#[derive(Debug)]
pub struct TagSearchResult {
    /// How many images match.
    pub total: u64,
    /// The matching images in the requested window.
    pub images: Vec<Image>,
}

/// Catalog rows fetched at a time when scanning a project's images.
const SCAN_PAGE: u32 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tags_are_plain_tags_or_key_value_pairs() {
        assert!(validate_stored_tag("plain").is_ok());
        let long_pair = format!("{}={}", "k".repeat(128), "v".repeat(255));
        assert!(validate_stored_tag(&long_pair).is_ok());
        for bad in [
            String::new(),
            "=x".into(),
            "a\0b".into(),
            "b".repeat(256),
            format!("={}", "a".repeat(100_000)),
            format!("{}={}", "k".repeat(129), "v".repeat(200)),
            format!("k={}", "v".repeat(256)),
        ] {
            assert!(
                matches!(
                    validate_stored_tag(&bad),
                    Err(Error::InvalidField { field: "tags", .. })
                ),
                "{bad:.20} should be refused"
            );
        }
    }
}
