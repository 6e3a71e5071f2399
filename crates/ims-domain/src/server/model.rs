//! An image server, its life and the settings it was created with.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ServerId;
use crate::error::{Error, Result};
use crate::image::ImageId;
use crate::volume::VolumeId;

crate::string_enum! {
    /// Where an image server is in its life (Workspace's statuses, plus `deleted` for the
    /// row kept after a delete so the id is never reused). Persisted: never rename one.
    ServerStatus {
        /// Its root volume and VM are being made.
        Creating = "CREATING",
        /// Its VM runs: the user customises it.
        Active = "ACTIVE",
        /// Its disk is being captured into a new image.
        Building = "BUILDING",
        /// A capture finished; the image is made (the VM still runs and may be captured
        /// again).
        Built = "BUILT",
        /// Something failed; `status_details` says what. Only deletion leaves it.
        Error = "ERROR",
        /// Its VM and volume are being removed.
        Deleting = "DELETING",
        /// Gone (never shown).
        Deleted = "DELETED",
    }
}

impl ServerStatus {
    /// Whether the state machine allows `self → to`:
    /// creating → active | error | deleting; active → building | deleting | error;
    /// building → built | active (a failed capture leaves the server as it was) | error;
    /// built → building | deleting | error; error → deleting; deleting → deleted | error.
    pub fn can_become(self, to: ServerStatus) -> bool {
        use ServerStatus::*;
        matches!(
            (self, to),
            (Creating, Active | Error | Deleting)
                | (Active, Building | Deleting | Error)
                | (Building, Built | Active | Error)
                | (Built, Building | Deleting | Error)
                | (Error, Deleting)
                | (Deleting, Deleted | Error)
        )
    }

    /// Whether work on the server is under way (it cannot be deleted or captured then).
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            ServerStatus::Creating | ServerStatus::Building | ServerStatus::Deleting
        )
    }
}

/// The image a server starts from, as the caller named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageRef {
    /// The image id.
    pub id: String,
    /// `gold`, `public`, `private`, `shared` or `other` (recorded; any image the caller
    /// may see is accepted whatever its type).
    pub image_type: String,
    /// The marketplace specification code (`gold` only; Workspace's `spce_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spce_code: Option<String>,
    /// The marketplace product id (`gold` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

/// The root volume asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RootVolumeSpec {
    /// The disk type (`ESSD`, `SSD`, `GPSSD`, `SAS`, `SATA`): recorded, every type is the
    /// same volume store here.
    #[serde(rename = "type")]
    pub volume_type: String,
    /// Size in GB (a multiple of 10, at least the image's `min_disk`).
    pub size: u32,
    /// The storage pool asked for (recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

/// A user allowed to use what the server makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuthorizedAccount {
    /// The user's name (an ims user of the project).
    pub account: String,
    /// `USER` (user groups are not supported).
    pub account_type: String,
    /// The user's domain, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// A key/value tag of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServerTag {
    /// The key.
    pub key: String,
    /// The value (may be absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What the server was created with beyond its core: placement and session settings
/// ims records and shows but does not act on (it has no network or session service), so
/// that a client reads back what it sent. Stored as one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServerSettings {
    /// VPC id (recorded, not wired).
    pub vpc_id: String,
    /// Subnet id (recorded, not wired).
    pub subnet_id: String,
    /// Workspace product (instance package) id.
    pub product_id: String,
    /// Flavor id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor_id: Option<String>,
    /// Availability zone ("" = any).
    #[serde(default)]
    pub availability_zone: String,
    /// App-warehouse software to install (recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attach_apps: Vec<String>,
    /// Organisation unit name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ou_name: Option<String>,
    /// Single-session VDI mode.
    #[serde(default)]
    pub is_vdi: bool,
    /// Session routing policy, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_policy: Option<serde_json::Value>,
    /// Dedicated-host hints, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_hints: Option<serde_json::Value>,
    /// Paid session type (`GPU`, `CPU`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_session_type: Option<String>,
    /// Paid sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_session_size: Option<u32>,
    /// Enterprise project (reserved by Workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
}

/// One image server.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageServer {
    /// Its id.
    pub id: ServerId,
    /// The owning project.
    pub project_id: String,
    /// Its name.
    pub name: String,
    /// Free text (≤ 255 characters).
    pub description: String,
    /// The image it starts from.
    pub image_ref: ImageRef,
    /// The root volume asked for.
    pub root_volume: RootVolumeSpec,
    /// The root volume once made.
    pub volume_id: Option<VolumeId>,
    /// Who may use what it makes (exactly one user).
    pub authorize_accounts: Vec<AuthorizedAccount>,
    /// Its tags (≤ 20, unique keys).
    pub tags: Vec<ServerTag>,
    /// Recorded settings.
    pub settings: ServerSettings,
    /// The image its last capture made.
    pub image_id: Option<ImageId>,
    /// Where it is in its life.
    pub status: ServerStatus,
    /// Why it is in `ERROR`, or what the compute driver says (e.g. that nothing boots).
    pub status_details: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// The stored revision: every save compares it and moves it on.
    pub version: u64,
    /// The node its VM runs on, once its create job started it there; `None` before
    /// (and for servers made before nodes were recorded).
    pub node_id: Option<String>,
}

impl ImageServer {
    /// Moves to `to` if the state machine allows it; otherwise a conflict naming both.
    pub fn transition(&mut self, to: ServerStatus) -> Result<()> {
        if !self.status.can_become(to) {
            return Err(Error::Conflict(format!(
                "Image server {} is {} and cannot become {to}",
                self.id, self.status
            )));
        }
        self.status = to;
        Ok(())
    }
}

impl crate::policy::Owned for ImageServer {
    fn owner_project(&self) -> Option<&str> {
        Some(&self.project_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_allows_only_its_edges() {
        use ServerStatus::*;
        let allowed = [
            (Creating, Active),
            (Creating, Error),
            (Creating, Deleting),
            (Active, Building),
            (Active, Deleting),
            (Active, Error),
            (Building, Built),
            (Building, Active),
            (Building, Error),
            (Built, Building),
            (Built, Deleting),
            (Built, Error),
            (Error, Deleting),
            (Deleting, Deleted),
            (Deleting, Error),
        ];
        for from in ServerStatus::ALL {
            for to in ServerStatus::ALL {
                assert_eq!(
                    from.can_become(*to),
                    allowed.contains(&(*from, *to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn settings_round_trip_through_json_with_workspace_names() {
        let spec = RootVolumeSpec {
            volume_type: "SATA".into(),
            size: 60,
            cluster_id: None,
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json, serde_json::json!({"type": "SATA", "size": 60}));
        let settings = ServerSettings {
            vpc_id: "v".into(),
            subnet_id: "s".into(),
            product_id: "p".into(),
            is_vdi: true,
            ..ServerSettings::default()
        };
        let text = serde_json::to_string(&settings).unwrap();
        assert_eq!(
            serde_json::from_str::<ServerSettings>(&text).unwrap(),
            settings
        );
    }
}
