//! Generic searches over volumes ([`crate::query`]): the fields a volume can be searched
//! and sorted by, and the use case (ZStack's QueryVolume pushes its conditions here).

use super::Volume;
use super::service::VolumeService;
use crate::error::Result;
use crate::principal::Principal;
use crate::query::{Fields, Found, Query};

/// The searchable volume fields (the domain's names; no free-form properties).
pub const FIELDS: Fields = Fields {
    names: &[
        "id",
        "name",
        "description",
        "status",
        "size",
        "format",
        "source_image",
        "created_at",
        "updated_at",
    ],
    properties: false,
};

impl VolumeService {
    /// The volumes the caller may see that match `query` (administrators see every
    /// project's), expunged ones never, in one catalog query.
    pub async fn search(&self, who: &Principal, query: &Query) -> Result<Found<Volume>> {
        FIELDS.check(query)?;
        let project = (!who.is_admin()).then_some(who.project_id.as_str());
        self.repo.search(project, query).await
    }
}
