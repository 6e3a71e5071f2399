//! A dialect-neutral image list query: filters, sorting and keyset pagination.

use crate::error::{Error, Result};
use crate::image::{ImageId, Visibility};
use crate::member::MemberStatus;

/// The base image attributes a list can filter or sort on directly (extra properties are
/// [`Field::Property`]). Each variant is the attribute of the same name in snake case
/// (`MinDisk` is `min_disk`), as [`Column::from_name`] reads it.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    Name,
    Status,
    Visibility,
    ContainerFormat,
    DiskFormat,
    Size,
    VirtualSize,
    MinDisk,
    MinRam,
    Owner,
    Protected,
    Checksum,
    OsHashAlgo,
    OsHashValue,
    CreatedAt,
    UpdatedAt,
}

impl Column {
    /// The column for a base attribute name, if it is one.
    pub fn from_name(name: &str) -> Option<Column> {
        Some(match name {
            "id" => Column::Id,
            "name" => Column::Name,
            "status" => Column::Status,
            "visibility" => Column::Visibility,
            "container_format" => Column::ContainerFormat,
            "disk_format" => Column::DiskFormat,
            "size" => Column::Size,
            "virtual_size" => Column::VirtualSize,
            "min_disk" => Column::MinDisk,
            "min_ram" => Column::MinRam,
            "owner" => Column::Owner,
            "protected" => Column::Protected,
            "checksum" => Column::Checksum,
            "os_hash_algo" => Column::OsHashAlgo,
            "os_hash_value" => Column::OsHashValue,
            "created_at" => Column::CreatedAt,
            "updated_at" => Column::UpdatedAt,
            _ => return None,
        })
    }

    /// Whether values of this column are integers.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Column::Size | Column::VirtualSize | Column::MinDisk | Column::MinRam
        )
    }

    /// Whether values of this column are timestamps.
    pub fn is_time(self) -> bool {
        matches!(self, Column::CreatedAt | Column::UpdatedAt)
    }
}

/// What a filter applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A base column.
    Column(Column),
    /// An extra property by key.
    Property(String),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<>`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

/// A typed filter value, already validated against its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A point in time.
    Time(time::OffsetDateTime),
}

/// One filter condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `field op value`.
    Compare(Field, Op, Value),
    /// `field IN (values)`.
    In(Field, Vec<Value>),
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// Which images the visibility part of the scope admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VisibilityFilter {
    /// Glance's default: public, own, and shared-with-me (community only if owned).
    #[default]
    Default,
    /// Exactly one visibility.
    Only(Visibility),
    /// Everything the caller may see, including community images.
    All,
}

/// Which member statuses admit a shared image (Glance's `member_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatusFilter {
    /// One status.
    Only(MemberStatus),
    /// Any status.
    All,
}

/// A whole list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Conditions, all of which must hold.
    pub filters: Vec<Filter>,
    /// Tags, all of which must be present.
    pub tags: Vec<String>,
    /// Sort keys in priority order; `created_at` and `id` are appended as tie-breakers.
    pub sort: Vec<(Column, SortDir)>,
    /// Page size: the request's, or its dialect's default (Glance 25, IMS 500); both
    /// dialects cap it at 1000.
    pub limit: u32,
    /// The last image of the previous page: the page starts after it in `full_sort` order.
    pub marker: Option<ImageId>,
    /// Visibility part of the scope.
    pub visibility: VisibilityFilter,
    /// Member-status part of the scope.
    pub member_status: MemberStatusFilter,
    /// `os_hidden` filter; `Some(false)` by default.
    pub os_hidden: Option<bool>,
    /// Whether deleted and killed images are excluded (always, for API callers).
    pub exclude_dead: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filters: Vec::new(),
            tags: Vec::new(),
            sort: Vec::new(),
            limit: 25,
            marker: None,
            visibility: VisibilityFilter::Default,
            member_status: MemberStatusFilter::Only(MemberStatus::Accepted),
            os_hidden: Some(false),
            exclude_dead: true,
        }
    }
}

impl ListQuery {
    /// Checks the query against `limits` and drops repeated sort keys (the first
    /// occurrence of a column decides its direction; later ones could never change the
    /// order). Every list of images passes here before it reaches the catalog: the size of
    /// the SQL a query builds grows with the square of its sort keys, and linearly with its
    /// filters, tags and `in:` values.
    pub fn bounded(mut self, limits: &ListLimits) -> Result<Self> {
        at_most("sort keys", self.sort.len(), limits.sort_keys)?;
        at_most("filters", self.filters.len(), limits.filters)?;
        at_most("tag filters", self.tags.len(), limits.tags)?;
        let in_values = self
            .filters
            .iter()
            .map(|f| match f {
                Filter::In(_, values) => values.len(),
                Filter::Compare(..) => 0,
            })
            .max()
            .unwrap_or(0);
        at_most("values in one 'in:' filter", in_values, limits.in_values)?;
        self.sort = dedup_sort(self.sort);
        Ok(self)
    }

    /// The full ordering: requested keys (each column once), then `created_at` and `id`
    /// as tie-breakers. At most one key per [`Column`], whatever the query holds, so the
    /// keyset condition built from it stays small.
    pub fn full_sort(&self) -> Vec<(Column, SortDir)> {
        let mut sort = dedup_sort(self.sort.clone());
        if sort.is_empty() {
            sort.push((Column::CreatedAt, SortDir::Desc));
        }
        let last_dir = sort.last().map(|s| s.1).unwrap_or(SortDir::Desc);
        for col in [Column::CreatedAt, Column::Id] {
            if !sort.iter().any(|(c, _)| *c == col) {
                sort.push((col, last_dir));
            }
        }
        sort
    }
}

/// Each column once, in order of first appearance.
fn dedup_sort(sort: Vec<(Column, SortDir)>) -> Vec<(Column, SortDir)> {
    let mut out: Vec<(Column, SortDir)> = Vec::with_capacity(sort.len());
    for (c, d) in sort {
        if !out.iter().any(|(seen, _)| *seen == c) {
            out.push((c, d));
        }
    }
    out
}

/// How big one list request may be (`[images] list_max_*` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimits {
    /// Sort keys per request, repeats included (Glance sorts on 13 columns; clients send
    /// one or two).
    pub sort_keys: usize,
    /// Attribute and property filters per request.
    pub filters: usize,
    /// `tag=` filters per request.
    pub tags: usize,
    /// Values in one `in:` filter.
    pub in_values: usize,
}

impl Default for ListLimits {
    fn default() -> Self {
        ListLimits {
            sort_keys: 5,
            filters: 20,
            tags: 20,
            in_values: 100,
        }
    }
}

fn at_most(what: &str, given: usize, max: usize) -> Result<()> {
    if given > max {
        return Err(Error::invalid(format!(
            "Too many {what} in one request: {given}, at most {max} are allowed"
        )));
    }
    Ok(())
}

/// Who is listing: the repo applies this on top of the query's own scope fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// An administrator: every image, unless the query narrows it.
    Everything,
    /// A project: what Glance's default scoping lets it see.
    Project(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_refuses_oversized_queries_and_drops_repeated_sort_keys() {
        let limits = ListLimits::default();
        let many = ListQuery {
            sort: vec![(Column::Name, SortDir::Asc); limits.sort_keys + 1],
            ..ListQuery::default()
        };
        assert!(many.bounded(&limits).is_err());
        let repeated = ListQuery {
            sort: vec![
                (Column::Name, SortDir::Asc),
                (Column::Name, SortDir::Desc),
                (Column::Id, SortDir::Asc),
            ],
            ..ListQuery::default()
        }
        .bounded(&limits)
        .unwrap();
        assert_eq!(
            repeated.sort,
            vec![(Column::Name, SortDir::Asc), (Column::Id, SortDir::Asc)]
        );
        let wide_in = ListQuery {
            filters: vec![Filter::In(
                Field::Column(Column::Name),
                vec![Value::Text("x".into()); limits.in_values + 1],
            )],
            ..ListQuery::default()
        };
        assert!(wide_in.bounded(&limits).is_err());
        let tags = ListQuery {
            tags: vec!["t".into(); limits.tags + 1],
            ..ListQuery::default()
        };
        assert!(tags.bounded(&limits).is_err());
    }

    #[test]
    fn full_sort_names_each_column_once_whatever_the_query_holds() {
        let q = ListQuery {
            sort: vec![(Column::Name, SortDir::Asc); 3000],
            ..ListQuery::default()
        };
        assert_eq!(
            q.full_sort(),
            vec![
                (Column::Name, SortDir::Asc),
                (Column::CreatedAt, SortDir::Asc),
                (Column::Id, SortDir::Asc)
            ]
        );
    }
}
