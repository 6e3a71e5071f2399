//! Tag rules and tag use cases.

use crate::error::{Error, Result};

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
    Ok(())
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
}

impl super::ImageService {
    /// An image's tags as key/value pairs.
    pub async fn key_value_tags(
        &self,
        who: &crate::principal::Principal,
        id: &str,
    ) -> Result<Vec<KeyValueTag>> {
        let image = self.get(who, id).await?;
        Ok(image.tags.iter().map(|t| KeyValueTag::read(t)).collect())
    }

    /// Sets tags (replacing any with the same key) and removes keys, in one save.
    /// Removing a key the image does not have is `NotFound` when `strict`.
    pub async fn change_key_value_tags(
        &self,
        who: &crate::principal::Principal,
        id: &str,
        set: Vec<KeyValueTag>,
        remove: Vec<String>,
        strict: bool,
    ) -> Result<()> {
        let mut image = self.get(who, id).await?;
        crate::policy::check_modify(who, &image)?;
        for key in remove.iter().chain(set.iter().map(|t| &t.key)) {
            let before = image.tags.len();
            image.tags.retain(|t| &KeyValueTag::read(t).key != key);
            if strict && remove.contains(key) && image.tags.len() == before {
                return Err(Error::NotFound {
                    kind: "tag",
                    id: key.clone(),
                });
            }
        }
        image.tags.extend(set.iter().map(KeyValueTag::stored));
        self.finish_edit(&mut image)?;
        self.repo.save(&image, image.status, None).await
    }

    /// Every key/value tag on the caller's project's images, values grouped by key.
    pub async fn project_key_value_tags(
        &self,
        who: &crate::principal::Principal,
    ) -> Result<std::collections::BTreeMap<String, std::collections::BTreeSet<String>>> {
        use crate::listing::{Column, Field, Filter, ListQuery, Op, Value};
        let mut out: std::collections::BTreeMap<_, std::collections::BTreeSet<_>> =
            Default::default();
        let mut query = ListQuery {
            limit: 1000,
            filters: vec![Filter::Compare(
                Field::Column(Column::Owner),
                Op::Eq,
                Value::Text(who.project_id.clone()),
            )],
            ..ListQuery::default()
        };
        loop {
            let page = self.list(who, &query).await?;
            for tag in page.iter().flat_map(|i| i.tags.iter()) {
                let t = KeyValueTag::read(tag);
                out.entry(t.key).or_default().insert(t.value);
            }
            match page.last() {
                Some(last) if page.len() == query.limit as usize => query.marker = Some(last.id),
                _ => return Ok(out),
            }
        }
    }
}
