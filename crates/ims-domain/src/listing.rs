//! A dialect-neutral image list query: filters, sorting and keyset pagination.

use crate::image::{ImageId, Visibility};
use crate::member::MemberStatus;

/// The columns of the image table that can be filtered or sorted on directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `id`
    Id,
    /// `name`
    Name,
    /// `status`
    Status,
    /// `visibility`
    Visibility,
    /// `container_format`
    ContainerFormat,
    /// `disk_format`
    DiskFormat,
    /// `size`
    Size,
    /// `virtual_size`
    VirtualSize,
    /// `min_disk`
    MinDisk,
    /// `min_ram`
    MinRam,
    /// `owner`
    Owner,
    /// `protected`
    Protected,
    /// `checksum`
    Checksum,
    /// `os_hash_algo`
    OsHashAlgo,
    /// `os_hash_value`
    OsHashValue,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
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
    /// Page size.
    pub limit: u32,
    /// Last id of the previous page.
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
    /// The full ordering: requested keys, then `created_at` and `id` as tie-breakers.
    pub fn full_sort(&self) -> Vec<(Column, SortDir)> {
        let mut sort = self.sort.clone();
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

/// Who is listing: the repo applies this on top of the query's own scope fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// An administrator: every image, unless the query narrows it.
    Everything,
    /// A project: what Glance's default scoping lets it see.
    Project(String),
}
