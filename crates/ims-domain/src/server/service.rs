//! The image-server use cases: create (a durable job makes the root volume from the image
//! and starts the VM), show, list, rename, capture into a new image, and delete.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::rules;
use super::{
    AuthorizedAccount, ComputeDriver, ImageRef, ImageServer, RootVolumeSpec, ServerId, ServerQuery,
    ServerRepo, ServerSettings, ServerStatus, ServerTag,
};
use crate::context::{Node, now};
use crate::error::{Entity, Error, Result};
use crate::identity::repo::IdentityRepo;
use crate::image::service::bucket_jobs::check_naming;
use crate::image::{DiskFormat, Image, ImageId, ImageStatus};
use crate::job::{Job, JobKind, JobQueue, JobSubject};
use crate::policy;
use crate::principal::Principal;
use crate::service::ImageService;
use crate::volume::{VolumeId, VolumeService};

const GIB: u64 = 1 << 30;

/// A new image server, as a dialect read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewServer {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// The image to start from.
    pub image_ref: ImageRef,
    /// The root volume to make.
    pub root_volume: RootVolumeSpec,
    /// Exactly one user of the project.
    pub authorize_accounts: Vec<AuthorizedAccount>,
    /// Tags.
    pub tags: Vec<ServerTag>,
    /// What is recorded without effect.
    pub settings: ServerSettings,
}

/// A change of name or description; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
}

/// What a capture makes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewCapture {
    /// The new image's name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Whether the guest is to be generalised first (recorded: ims cannot run sysprep
    /// inside a guest).
    pub execute_sysprep: bool,
    /// The new image's id, when the caller chose it (ZStack's `resourceUuid`).
    pub image_id: Option<ImageId>,
}

/// The size of every server's VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Virtual CPUs per server.
    pub vcpus: u32,
    /// Guest memory per server, in MiB.
    pub memory_mib: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            vcpus: 1,
            memory_mib: 512,
        }
    }
}

/// Who asked for a job, as the job replays it (user, roles; the project is the job's).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub(crate) struct Caller {
    pub(crate) user_id: String,
    #[serde(default)]
    pub(crate) roles: Vec<String>,
}

impl Caller {
    pub(crate) fn of(who: &Principal) -> Self {
        Caller {
            user_id: who.user_id.clone(),
            roles: who.roles.iter().cloned().collect(),
        }
    }

    pub(crate) fn principal(&self, project_id: &str) -> Principal {
        Principal {
            user_id: self.user_id.clone(),
            user_name: String::new(),
            project_id: project_id.to_string(),
            roles: self.roles.iter().cloned().collect(),
        }
    }
}

/// The image-server use cases.
#[derive(Clone)]
pub struct ServerService {
    pub(crate) repo: Arc<dyn ServerRepo>,
    pub(crate) identity: Arc<dyn IdentityRepo>,
    pub(crate) images: ImageService,
    pub(crate) volumes: VolumeService,
    pub(crate) compute: Arc<dyn ComputeDriver>,
    pub(crate) queue: JobQueue,
    pub(crate) limits: ServerLimits,
    /// This node: VMs started here run here, and their servers say so.
    pub(crate) node: Node,
}

impl ServerService {
    /// Wires the use cases to their ports, on `node`.
    pub fn new(
        repo: Arc<dyn ServerRepo>,
        identity: Arc<dyn IdentityRepo>,
        volumes: VolumeService,
        compute: Arc<dyn ComputeDriver>,
        queue: JobQueue,
        limits: ServerLimits,
        node: Node,
    ) -> Self {
        ServerService {
            repo,
            identity,
            images: volumes.images.clone(),
            volumes,
            compute,
            queue,
            limits,
            node,
        }
    }

    /// The compute driver's name (`qemu`, `none`).
    pub fn driver(&self) -> &'static str {
        self.compute.name()
    }

    /// Checks the request, the source image and the authorised account, then writes the
    /// server (`CREATING`) and its `CREATE_SERVER` job together. Returns both.
    pub async fn create(&self, who: &Principal, req: NewServer) -> Result<(ImageServer, Job)> {
        policy::check_writer(who)?;
        rules::check_new(&req)?;
        self.check_source(who, &req).await?;
        self.check_account(who, &req.authorize_accounts[0]).await?;
        let now = now();
        let server = ImageServer {
            node_id: None,
            id: ServerId::new(),
            project_id: who.project_id.clone(),
            name: req.name,
            description: req.description.unwrap_or_default(),
            image_ref: req.image_ref,
            root_volume: req.root_volume,
            // Chosen now, made by the job: a rerun finds the volume it made.
            volume_id: Some(VolumeId::new()),
            authorize_accounts: req.authorize_accounts,
            tags: req.tags,
            settings: req.settings,
            image_id: None,
            status: ServerStatus::Creating,
            status_details: String::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let job = Self::new_job(
            JobKind::ServerCreate,
            &server.project_id,
            Some(server.id),
            &Caller::of(who),
        )?;
        self.queue
            .enqueue_with(self.repo.insert(&server, &job))
            .await?;
        Ok((server, job))
    }

    /// The source must be an active system-disk image the caller can see, no ISO and no
    /// data image, that fits the root volume.
    async fn check_source(&self, who: &Principal, req: &NewServer) -> Result<()> {
        let field = "image_ref.id";
        let image = self.images.get(who, &req.image_ref.id).await?;
        if image.status != ImageStatus::Active {
            return Err(Error::field(
                field,
                format!("Image {} is {}, not active.", image.id, image.status),
            ));
        }
        if image.disk_format == Some(DiskFormat::Iso) || is_data_image(&image) {
            return Err(Error::field(
                field,
                format!("Image {} is not a system-disk image.", image.id),
            ));
        }
        // An encrypted image's root volume is a decrypted copy, made only while its key
        // is enabled.
        self.images.check_readable(&image).await?;
        let root = u64::from(req.root_volume.size) * GIB;
        let least = image.data.virtual_size.or(image.data.size).unwrap_or(0);
        if u64::from(req.root_volume.size) < image.min_disk || root < least {
            return Err(Error::field(
                "root_volume.size",
                format!(
                    "The root volume ({} GB) is smaller than image {} needs ({} GB).",
                    req.root_volume.size,
                    image.id,
                    image.min_disk.max(least.div_ceil(GIB))
                ),
            ));
        }
        Ok(())
    }

    /// The authorised account must be a user with a role in the caller's project.
    async fn check_account(&self, who: &Principal, account: &AuthorizedAccount) -> Result<()> {
        for user in self.identity.list_users(Some(&account.account)).await? {
            if !self
                .identity
                .roles_of(&who.project_id, &user.id)
                .await?
                .is_empty()
            {
                return Ok(());
            }
        }
        Err(Error::field(
            "authorize_accounts.account",
            format!("User {} is not a user of this project.", account.account),
        ))
    }

    /// A new job of `kind` in `project`, on server `subject` if any.
    fn new_job(
        kind: JobKind,
        project: &str,
        subject: Option<ServerId>,
        payload: &impl Serialize,
    ) -> Result<Job> {
        let payload = serde_json::to_value(payload).map_err(Error::internal)?;
        Ok(Job::new(
            kind,
            project,
            subject.map(JobSubject::server),
            payload,
            now(),
        ))
    }

    /// A server the caller may see (its project's; any for an administrator); deleted
    /// ones and other projects' do not exist.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<ImageServer> {
        let Some(parsed) = ServerId::parse(id) else {
            return Err(Error::not_found(Entity::Server, id));
        };
        let stored = self
            .repo
            .get(parsed)
            .await?
            .filter(|s| s.status != ServerStatus::Deleted);
        policy::visible(who, stored, Entity::Server, id)
    }

    /// One page of the caller's project's servers, and how many match in all.
    pub async fn list(
        &self,
        who: &Principal,
        mut query: ServerQuery,
    ) -> Result<(Vec<ImageServer>, u64)> {
        query.project_id = who.project_id.clone();
        self.repo.list(&query).await
    }

    /// Renames a server or changes its description.
    pub async fn update(
        &self,
        who: &Principal,
        id: &str,
        patch: ServerPatch,
    ) -> Result<ImageServer> {
        let mut server = self.get(who, id).await?;
        policy::check_owner_writes(who, &server, Entity::Server)?;
        if let Some(name) = patch.name {
            rules::check_name(&name)?;
            server.name = name;
        }
        if let Some(description) = patch.description {
            rules::check_description(&description)?;
            server.description = description;
        }
        server.updated_at = now();
        let status = server.status;
        self.repo.save(&server, status, None).await?;
        server.version += 1;
        Ok(server)
    }

    /// Captures the server's disk into a new image: only from `ACTIVE` or `BUILT`; the
    /// server becomes `BUILDING` and a `CREATE_SERVER_IMAGE` job is written with it.
    pub async fn capture(
        &self,
        who: &Principal,
        id: &str,
        req: NewCapture,
    ) -> Result<(ImageServer, Job)> {
        let mut server = self.get(who, id).await?;
        policy::check_owner_writes(who, &server, Entity::Server)?;
        check_naming(&req.name, req.description.as_deref())?;
        let from = server.status;
        if !matches!(from, ServerStatus::Active | ServerStatus::Built) {
            return Err(Error::Conflict(format!(
                "Image server {} is {from}; images are made from ACTIVE or BUILT servers only.",
                server.id
            )));
        }
        let image_id = match req.image_id {
            Some(id) if self.images.repo.get(id).await?.is_some() => {
                return Err(Error::AlreadyExists {
                    kind: Entity::Image,
                    id: id.to_string(),
                });
            }
            Some(id) => id,
            None => ImageId::new(),
        };
        server.transition(ServerStatus::Building)?;
        server.updated_at = now();
        let capture = Capture {
            caller: Caller::of(who),
            image_id: image_id.to_string(),
            name: req.name,
            description: req.description,
            execute_sysprep: req.execute_sysprep,
            from: from.as_str().to_string(),
        };
        let mut job = Self::new_job(
            JobKind::ServerCapture,
            &server.project_id,
            Some(server.id),
            &capture,
        )?;
        // The guest is paused and its disk read where its VM runs.
        job.pinned_node = server.node_id.clone();
        self.queue
            .enqueue_with(self.repo.save(&server, from, Some(&job)))
            .await?;
        server.version += 1;
        Ok((server, job))
    }

    /// Captures the server whose root volume is `volume_id` (ZStack's root-volume
    /// template): the same capture as [`ServerService::capture`]. A volume no server
    /// holds is not a root volume (`InvalidInput`).
    pub async fn capture_root_volume(
        &self,
        who: &Principal,
        volume_id: &str,
        req: NewCapture,
    ) -> Result<(ImageServer, Job)> {
        let volume = self.volumes.get(who, volume_id).await?;
        let Some(server) = self.volumes.holders.holder(volume.id).await? else {
            return Err(Error::field(
                "rootVolumeUuid",
                format!(
                    "Volume {} is not the root volume of an image server.",
                    volume.id
                ),
            ));
        };
        self.capture(who, &server, req).await
    }

    /// Deletes up to 20 servers of the caller's project (unknown ids are ignored): all
    /// become `DELETING` together with one `DELETE_SERVER` job, or, if any is busy
    /// (`CREATING`, `BUILDING`, `DELETING`), none does. `recursive` is recorded: ims has
    /// no server groups to remove, and the images servers made are always kept.
    pub async fn delete(
        &self,
        who: &Principal,
        ids: &[String],
        recursive: bool,
    ) -> Result<Option<Job>> {
        if ids.is_empty() || ids.len() > 20 {
            return Err(Error::field("items", "Name 1 to 20 image servers."));
        }
        let mut servers = Vec::new();
        for id in ids {
            match self.get(who, id).await {
                Ok(s) => servers.push(s),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        servers.dedup_by_key(|s| s.id);
        for s in &servers {
            policy::check_owner_writes(who, s, Entity::Server)?;
            if s.status.is_busy() {
                return Err(Error::Conflict(format!(
                    "Image server {} is {}; it cannot be deleted now.",
                    s.id, s.status
                )));
            }
        }
        if servers.is_empty() {
            return Ok(None);
        }
        let removal = Removal {
            caller: Caller::of(who),
            servers: servers.iter().map(|s| s.id.to_string()).collect(),
            recursive,
        };
        let payload = serde_json::to_value(&removal).map_err(Error::internal)?;
        let mut job = Job::new(JobKind::ServerDelete, &who.project_id, None, payload, now());
        // Where the (first) VM runs; a VM elsewhere is removed by its own node's sweep
        // once its server is gone.
        job.pinned_node = servers.iter().find_map(|s| s.node_id.clone());
        let batch: Vec<(ImageServer, ServerStatus)> = servers
            .into_iter()
            .map(|mut s| {
                let from = s.status;
                s.transition(ServerStatus::Deleting)?;
                s.updated_at = now();
                Ok((s, from))
            })
            .collect::<Result<_>>()?;
        self.queue
            .enqueue_with(self.repo.save_all(&batch, &job))
            .await?;
        Ok(Some(job))
    }
}

/// Whether an image holds a data disk rather than a system disk.
fn is_data_image(image: &Image) -> bool {
    image
        .properties
        .get("virtual_env_type")
        .is_some_and(|v| v == "DataImage")
}

/// A capture job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Capture {
    pub(crate) caller: Caller,
    /// The image it makes (chosen at the request: a rerun finds it).
    pub(crate) image_id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) execute_sysprep: bool,
    /// The status the server returns to if the capture fails.
    pub(crate) from: String,
}

/// A delete job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Removal {
    pub(crate) caller: Caller,
    pub(crate) servers: Vec<String>,
    #[serde(default)]
    pub(crate) recursive: bool,
}
