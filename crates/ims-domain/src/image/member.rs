//! Image members: projects an owner shares a `shared` image with.

use time::OffsetDateTime;

use crate::image::ImageId;

crate::string_enum! {
    /// A member's answer to a share.
    MemberStatus {
        /// Not answered yet.
        Pending = "pending",
        /// The member sees the image in its default listing.
        Accepted = "accepted",
        /// The member declined.
        Rejected = "rejected",
    }
}

/// One project's membership in one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The shared image.
    pub image_id: ImageId,
    /// The member project id.
    pub member_id: String,
    /// The member's answer.
    pub status: MemberStatus,
    /// When the share was created.
    pub created_at: OffsetDateTime,
    /// When the status last changed.
    pub updated_at: OffsetDateTime,
}
