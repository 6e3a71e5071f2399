//! Generic searches over images ([`crate::query`]): the fields an image can be searched
//! and sorted by, and the use case.

use crate::error::Result;
use crate::image::Image;
use crate::image::listing::ListScope;
use crate::image::service::ImageService;
use crate::principal::Principal;
use crate::query::{Fields, Found, Query};

/// The searchable image fields (Glance's attribute names), plus `properties.<name>`
/// for any extra property (Huawei `__` attributes included).
pub const FIELDS: Fields = Fields {
    names: &[
        "id",
        "name",
        "status",
        "visibility",
        "owner",
        "disk_format",
        "container_format",
        "size",
        "virtual_size",
        "checksum",
        "min_disk",
        "min_ram",
        "protected",
        "created_at",
        "updated_at",
    ],
    properties: true,
};

impl ImageService {
    /// The images the caller may see that match `query` (administrators see every
    /// project's), in one catalog query.
    pub async fn search(&self, who: &Principal, query: &Query) -> Result<Found<Image>> {
        FIELDS.check(query)?;
        let scope = if who.is_admin() {
            ListScope::Everything
        } else {
            ListScope::Project(who.project_id.clone())
        };
        self.repo.search(query, &scope).await
    }
}
