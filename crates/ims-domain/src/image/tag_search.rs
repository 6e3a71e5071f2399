//! Searching images by their key/value tags, TMS style (IMS `ListImageByTags`), and the
//! windows that both tag listings page with. Pure: the use cases in `tags.rs` feed it the
//! caller's images one by one.
//!
//! A condition `{key, values}` holds for an image that has `key` with one of `values`, or
//! with any value when `values` is empty. Across the lists of a search:
//! - `tags`: every condition holds (AND across keys, OR across a key's values);
//! - `tags_any`: at least one holds;
//! - `not_tags`: not every condition holds;
//! - `not_tags_any`: none holds;
//! - `without_any_tag`: the image has no tag at all, and the four lists are ignored.
//!
//! An empty list places no constraint. `matches` narrow further: `resource_name` is a
//! substring of the image's name (case-sensitive, TMS's "fuzzy" match), `resource_id` is
//! the image's id exactly.

use crate::error::{Error, Result};
use crate::image::service::tags::KeyValueTag;

/// Most keys in one list of a search.
pub const MAX_KEYS: usize = 10;
/// Most values for one key of a search.
pub const MAX_VALUES: usize = 10;
/// Longest key in a condition, as long as a stored key can be.
const MAX_KEY_CHARS: usize = 128;
/// Longest value in a condition or a match.
const MAX_VALUE_CHARS: usize = 255;

/// `{key, values}`: the image has `key` with one of `values` (any value when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCondition {
    /// The tag key.
    pub key: String,
    /// Accepted values; empty accepts any.
    pub values: Vec<String>,
}

impl TagCondition {
    /// Whether an image with these tags satisfies the condition.
    pub fn holds(&self, tags: &[KeyValueTag]) -> bool {
        tags.iter().any(|t| {
            t.key == self.key && (self.values.is_empty() || self.values.contains(&t.value))
        })
    }
}

/// One `matches` entry: a condition on the image itself rather than its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceMatch {
    /// `resource_name`: the name contains this text.
    NameContains(String),
    /// `resource_id`: the id is exactly this.
    Id(String),
}

impl ResourceMatch {
    /// A checked `{key, value}` match: the key names `resource_name` or `resource_id`,
    /// the value is 1–255 characters.
    pub fn new(key: &str, value: &str) -> Result<Self> {
        let n = value.chars().count();
        if n == 0 || n > MAX_VALUE_CHARS {
            return Err(Error::invalid("A value in matches is 1 to 255 characters."));
        }
        match key {
            "resource_name" => Ok(ResourceMatch::NameContains(value.to_string())),
            "resource_id" => Ok(ResourceMatch::Id(value.to_string())),
            other => Err(Error::invalid(format!(
                "matches supports resource_name and resource_id, not {other}."
            ))),
        }
    }

    fn holds(&self, id: &str, name: &str) -> bool {
        match self {
            ResourceMatch::NameContains(text) => name.contains(text.as_str()),
            ResourceMatch::Id(wanted) => id == wanted,
        }
    }

    fn key(&self) -> &'static str {
        match self {
            ResourceMatch::NameContains(_) => "resource_name",
            ResourceMatch::Id(_) => "resource_id",
        }
    }
}

/// A whole search, built with a struct literal; the use case checks it with
/// [`TagSearch::validated`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSearch {
    /// Every one of these holds.
    pub tags: Vec<TagCondition>,
    /// At least one of these holds.
    pub tags_any: Vec<TagCondition>,
    /// Not every one of these holds.
    pub not_tags: Vec<TagCondition>,
    /// None of these holds.
    pub not_tags_any: Vec<TagCondition>,
    /// Only images without any tag; the four lists above are then ignored.
    pub without_any_tag: bool,
    /// Conditions on the image's name and id, all of which hold.
    pub matches: Vec<ResourceMatch>,
}

impl TagSearch {
    /// The search, if it keeps the limits: at most 10 distinct, non-empty keys of at most
    /// 128 characters per list, at most 10 distinct values of at most 255 characters per
    /// key (tag problems are `InvalidField("tags")`); each `matches` key at most once.
    pub fn validated(self) -> Result<Self> {
        for (name, list) in [
            ("tags", &self.tags),
            ("tags_any", &self.tags_any),
            ("not_tags", &self.not_tags),
            ("not_tags_any", &self.not_tags_any),
        ] {
            check_list(name, list)?;
        }
        for (n, m) in self.matches.iter().enumerate() {
            if self.matches[..n].iter().any(|o| o.key() == m.key()) {
                return Err(Error::invalid(format!(
                    "matches names {} more than once.",
                    m.key()
                )));
            }
        }
        Ok(self)
    }

    /// Whether an image with this id, name and tags is found by the search.
    pub fn finds(&self, id: &str, name: &str, tags: &[KeyValueTag]) -> bool {
        self.matches.iter().all(|m| m.holds(id, name)) && self.tags_hold(tags)
    }

    fn tags_hold(&self, tags: &[KeyValueTag]) -> bool {
        if self.without_any_tag {
            return tags.is_empty();
        }
        let holds = |c: &TagCondition| c.holds(tags);
        self.tags.iter().all(holds)
            && (self.tags_any.is_empty() || self.tags_any.iter().any(holds))
            && (self.not_tags.is_empty() || !self.not_tags.iter().all(holds))
            && !self.not_tags_any.iter().any(holds)
    }
}

fn check_list(name: &str, list: &[TagCondition]) -> Result<()> {
    let bad = |message: String| Err(Error::field("tags", message));
    if list.len() > MAX_KEYS {
        return bad(format!("{name} has more than {MAX_KEYS} keys."));
    }
    for (n, c) in list.iter().enumerate() {
        let k = c.key.chars().count();
        if k == 0 || k > MAX_KEY_CHARS {
            return bad(format!(
                "A key in {name} is 1 to {MAX_KEY_CHARS} characters."
            ));
        }
        if list[..n].iter().any(|o| o.key == c.key) {
            return bad(format!("{name} names the key {} more than once.", c.key));
        }
        if c.values.len() > MAX_VALUES {
            return bad(format!(
                "The key {} in {name} has more than {MAX_VALUES} values.",
                c.key
            ));
        }
        for (m, v) in c.values.iter().enumerate() {
            if v.chars().count() > MAX_VALUE_CHARS {
                return bad(format!(
                    "A value in {name} is at most {MAX_VALUE_CHARS} characters."
                ));
            }
            if c.values[..m].contains(v) {
                return bad(format!(
                    "The key {} in {name} lists the value {v} more than once.",
                    c.key
                ));
            }
        }
    }
    Ok(())
}

/// One page of a result: at most `limit` items, starting at index `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Index of the first item.
    pub offset: u64,
    /// Most items.
    pub limit: u64,
}

impl Window {
    /// The largest page.
    pub const MAX_LIMIT: i64 = 1000;

    /// TMS paging (`ListImageByTags`): `limit` 1–1000, 10 when absent; `offset` ≥ 0, 0
    /// when absent.
    pub fn by_offset(limit: Option<i64>, offset: Option<i64>) -> Result<Self> {
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(Error::invalid("offset must not be negative."));
        }
        Ok(Window {
            offset: offset.unsigned_abs(),
            limit: checked_limit(limit.unwrap_or(10))?,
        })
    }

    /// Page-number paging (`ListTags`): `limit` ≥ 1, everything when absent; `page` ≥ 1,
    /// 1 when absent.
    pub fn by_page(limit: Option<i64>, page: Option<i64>) -> Result<Self> {
        let limit = match limit {
            Some(n) if n < 1 => return Err(Error::invalid("limit must be at least 1.")),
            Some(n) => n.unsigned_abs(),
            None => u64::MAX,
        };
        let page = page.unwrap_or(1);
        if page < 1 {
            return Err(Error::invalid("page must be at least 1."));
        }
        Ok(Window {
            offset: (page.unsigned_abs() - 1).saturating_mul(limit),
            limit,
        })
    }

    /// Whether the item at `index` falls in the window.
    pub fn contains(&self, index: u64) -> bool {
        index >= self.offset && index - self.offset < self.limit
    }

    /// The items in the window.
    pub fn slice<T>(&self, items: impl IntoIterator<Item = T>) -> Vec<T> {
        let skip = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(self.limit).unwrap_or(usize::MAX);
        items.into_iter().skip(skip).take(take).collect()
    }
}

fn checked_limit(limit: i64) -> Result<u64> {
    if !(1..=Window::MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(format!(
            "limit must be 1 to {}.",
            Window::MAX_LIMIT
        )));
    }
    Ok(limit.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<KeyValueTag> {
        pairs
            .iter()
            .map(|(k, v)| KeyValueTag {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    fn cond(key: &str, values: &[&str]) -> TagCondition {
        TagCondition {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn finds(search: &TagSearch, t: &[(&str, &str)]) -> bool {
        search.finds("id-1", "web-server", &tags(t))
    }

    #[test]
    fn a_condition_wants_the_key_with_one_of_its_values_or_any_value() {
        let t = tags(&[("env", "prod"), ("team", "")]);
        assert!(cond("env", &["dev", "prod"]).holds(&t));
        assert!(!cond("env", &["dev"]).holds(&t));
        assert!(cond("env", &[]).holds(&t), "no values: any value");
        assert!(cond("team", &[""]).holds(&t), "the empty value is a value");
        assert!(!cond("owner", &[]).holds(&t));
    }

    #[test]
    fn tags_is_and_across_keys() {
        let s = TagSearch {
            tags: vec![cond("env", &["prod", "dev"]), cond("team", &[])],
            ..TagSearch::default()
        };
        assert!(finds(&s, &[("env", "dev"), ("team", "a")]));
        assert!(!finds(&s, &[("env", "dev")]), "team missing");
        assert!(!finds(&s, &[("env", "test"), ("team", "a")]), "wrong env");
    }

    #[test]
    fn tags_any_is_or_across_keys() {
        let s = TagSearch {
            tags_any: vec![cond("env", &["prod"]), cond("team", &["a"])],
            ..TagSearch::default()
        };
        assert!(finds(&s, &[("team", "a")]));
        assert!(finds(&s, &[("env", "prod"), ("team", "b")]));
        assert!(!finds(&s, &[("env", "dev"), ("team", "b")]));
        assert!(!finds(&s, &[]));
    }

    #[test]
    fn not_tags_excludes_only_images_with_all_of_them() {
        let s = TagSearch {
            not_tags: vec![cond("env", &["prod"]), cond("team", &[])],
            ..TagSearch::default()
        };
        assert!(!finds(&s, &[("env", "prod"), ("team", "a")]));
        assert!(finds(&s, &[("env", "prod")]), "only one of the two");
        assert!(finds(&s, &[]));
    }

    #[test]
    fn not_tags_any_excludes_images_with_any_of_them() {
        let s = TagSearch {
            not_tags_any: vec![cond("env", &["prod"]), cond("team", &[])],
            ..TagSearch::default()
        };
        assert!(!finds(&s, &[("team", "x")]));
        assert!(!finds(&s, &[("env", "prod")]));
        assert!(finds(&s, &[("env", "dev")]));
        assert!(finds(&s, &[]));
    }

    #[test]
    fn the_lists_combine_with_and() {
        let s = TagSearch {
            tags: vec![cond("env", &[])],
            tags_any: vec![cond("tier", &["web"]), cond("tier", &["db"])],
            not_tags: vec![cond("env", &["test"])],
            not_tags_any: vec![cond("retired", &[])],
            ..TagSearch::default()
        };
        assert!(finds(&s, &[("env", "prod"), ("tier", "db")]));
        assert!(!finds(&s, &[("env", "test"), ("tier", "db")]));
        assert!(!finds(
            &s,
            &[("env", "prod"), ("tier", "db"), ("retired", "")]
        ));
        assert!(!finds(&s, &[("env", "prod")]));
    }

    #[test]
    fn without_any_tag_ignores_the_lists() {
        let s = TagSearch {
            without_any_tag: true,
            tags: vec![cond("env", &[])],
            ..TagSearch::default()
        };
        assert!(finds(&s, &[]));
        assert!(!finds(&s, &[("env", "prod")]));
    }

    #[test]
    fn an_empty_search_finds_everything() {
        assert!(finds(&TagSearch::default(), &[]));
        assert!(finds(&TagSearch::default(), &[("a", "b")]));
    }

    #[test]
    fn matches_take_a_name_substring_and_an_exact_id() {
        let by_name = |text: &str| TagSearch {
            matches: vec![ResourceMatch::new("resource_name", text).unwrap()],
            ..TagSearch::default()
        };
        assert!(finds(&by_name("server"), &[]));
        assert!(finds(&by_name("web-server"), &[]));
        assert!(!finds(&by_name("Server"), &[]), "case-sensitive");
        assert!(!finds(&by_name("web-server-2"), &[]));
        let by_id = |id: &str| TagSearch {
            matches: vec![ResourceMatch::new("resource_id", id).unwrap()],
            ..TagSearch::default()
        };
        assert!(finds(&by_id("id-1"), &[]));
        assert!(!finds(&by_id("id"), &[]), "ids match exactly");
    }

    #[test]
    fn bad_matches_are_refused() {
        assert!(ResourceMatch::new("resource_type", "x").is_err());
        assert!(ResourceMatch::new("resource_name", "").is_err());
        assert!(ResourceMatch::new("resource_name", &"x".repeat(256)).is_err());
        let twice = TagSearch {
            matches: vec![
                ResourceMatch::new("resource_name", "a").unwrap(),
                ResourceMatch::new("resource_name", "b").unwrap(),
            ],
            ..TagSearch::default()
        };
        assert!(matches!(twice.validated(), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn bad_conditions_are_tag_errors() {
        let ten: Vec<String> = (0..10).map(|n| n.to_string()).collect();
        let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
        let with = |list: Vec<TagCondition>| TagSearch {
            not_tags_any: list,
            ..TagSearch::default()
        };
        let ok = with((0..10).map(|n| cond(&format!("k{n}"), &ten)).collect());
        assert!(ok.validated().is_ok(), "10 keys of 10 values");
        let long_key = "k".repeat(128);
        assert!(
            with(vec![cond(&long_key, &[&"v".repeat(255)])])
                .validated()
                .is_ok()
        );
        for bad in [
            with((0..11).map(|n| cond(&format!("k{n}"), &[])).collect()),
            with(vec![cond("k", &[ten.as_slice(), &["10"][..]].concat())]),
            with(vec![cond("", &[])]),
            with(vec![cond(&"k".repeat(129), &[])]),
            with(vec![cond("k", &[&"v".repeat(256)])]),
            with(vec![cond("k", &[]), cond("k", &["v"])]),
            with(vec![cond("k", &["v", "v"])]),
        ] {
            assert!(
                matches!(
                    bad.clone().validated(),
                    Err(Error::InvalidField { field: "tags", .. })
                ),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn offset_windows() {
        assert_eq!(
            Window::by_offset(None, None).unwrap(),
            Window {
                offset: 0,
                limit: 10
            }
        );
        let w = Window::by_offset(Some(2), Some(3)).unwrap();
        assert_eq!(w.slice(0..10), vec![3, 4]);
        assert!(!w.contains(2) && w.contains(3) && w.contains(4) && !w.contains(5));
        assert_eq!(w.slice(0..4), vec![3], "a short last page");
        assert!(w.slice(0..2).is_empty(), "past the end");
        assert!(Window::by_offset(Some(1000), None).is_ok());
        for (limit, offset) in [(Some(0), None), (Some(1001), None), (None, Some(-1))] {
            assert!(
                Window::by_offset(limit, offset).is_err(),
                "{limit:?} {offset:?}"
            );
        }
    }

    #[test]
    fn page_windows() {
        let all = Window::by_page(None, None).unwrap();
        assert_eq!(all.slice(0..2000).len(), 2000, "no limit: everything");
        assert!(
            Window::by_page(None, Some(2))
                .unwrap()
                .slice(0..9)
                .is_empty()
        );
        let w = Window::by_page(Some(3), Some(2)).unwrap();
        assert_eq!(
            w.slice(["a", "b", "c", "d", "e", "f", "g"]),
            ["d", "e", "f"]
        );
        assert!(
            Window::by_page(Some(3), Some(4))
                .unwrap()
                .slice(0..9)
                .is_empty()
        );
        assert!(
            Window::by_page(Some(1000), Some(i64::MAX))
                .unwrap()
                .slice(0..3)
                .is_empty(),
            "no overflow"
        );
        for (limit, page) in [(Some(0), None), (Some(-1), None), (None, Some(0))] {
            assert!(Window::by_page(limit, page).is_err(), "{limit:?} {page:?}");
        }
    }
}
