//! The image-server jobs (create, capture, delete), their failure steps, and the sweeper
//! that keeps the catalog and the compute driver's VMs in agreement.
//!
//! Each step is safe to run again after a crash: the root volume and the captured image
//! have ids chosen at the request, so a rerun finds what an earlier attempt made; the
//! driver adopts a VM it already runs; a failure for good leaves the server `ERROR` (or,
//! for a capture, as it was) with the reason, and removes what the step made.

use async_trait::async_trait;

use super::service::{Caller, Capture, Removal};
use super::{ImageServer, ServerId, ServerService, ServerStatus, VmDisk, VmSpec, VmState};
use crate::context::now;
use crate::error::{Error, Result};
use crate::image::{ImageId, ImageStatus};
use crate::job::{Job, JobHandler, JobKind, Sweeper, lease};
use crate::principal::Principal;
use crate::service::ImageService;
use crate::volume::{NewImageFromVolume, NewVolume, Volume, VolumeFormat, VolumeId, VolumeStatus};

const GIB: u64 = 1 << 30;

impl ServerService {
    /// A server still in `status`, or `Gone` (deleted or moved on meanwhile).
    async fn in_status(&self, id: ServerId, status: ServerStatus) -> Result<ImageServer> {
        self.repo
            .get(id)
            .await?
            .filter(|s| s.status == status)
            .ok_or_else(|| Error::Gone(format!("Image server {id} is no longer {status}")))
    }

    /// Saves `server` (moved on from `from`) under the job's lease.
    async fn settle(&self, server: &mut ImageServer, from: ServerStatus) -> Result<()> {
        lease::confirm().await?;
        server.updated_at = now();
        self.repo.save(server, from, None).await?;
        server.version += 1;
        Ok(())
    }

    /// The root volume: made from the image on the first run, found on a rerun.
    async fn root_volume(&self, who: &Principal, server: &ImageServer) -> Result<Volume> {
        let id = server
            .volume_id
            .ok_or_else(|| Error::internal("an image server without a root volume id"))?;
        match self.volumes.repo.get(id).await? {
            Some(v) if v.status == VolumeStatus::Ready => Ok(v),
            // An earlier attempt stopped between the volume's row and its overlay.
            Some(v) if v.status == VolumeStatus::Creating => {
                self.volumes.resume_from_image(v).await
            }
            Some(v) => Err(Error::Gone(format!("The root volume is {}", v.status))),
            None => {
                let req = NewVolume {
                    id: Some(id),
                    name: format!("root of image server {}", server.id),
                    description: Some(format!("Root volume of image server {}", server.name)),
                    size: Some(u64::from(server.root_volume.size) * GIB),
                    format: Some(VolumeFormat::Qcow2),
                };
                self.volumes
                    .create_from_image(who, &server.image_ref.id, req)
                    .await
            }
        }
    }

    fn spec(&self, server: &ImageServer, volume: &Volume) -> Result<VmSpec> {
        Ok(VmSpec {
            id: server.id,
            disk: VmDisk {
                location: volume
                    .location
                    .clone()
                    .ok_or_else(|| Error::Gone("The root volume has no data".into()))?,
                format: volume.format,
                backing: volume.backing.clone(),
            },
            vcpus: self.limits.vcpus,
            memory_mib: self.limits.memory_mib,
        })
    }

    /// `CREATE_SERVER`: the root volume from the image, then the VM; the server `ACTIVE`.
    async fn run_create(&self, job: &Job) -> Result<()> {
        let (caller, id): (Caller, ServerId) = job.decode()?;
        let mut server = self.in_status(id, ServerStatus::Creating).await?;
        let who = caller.principal(&server.project_id);
        let volume = self.root_volume(&who, &server).await?;
        let vm = self.compute.start(&self.spec(&server, &volume)?).await?;
        server.node_id = Some(self.node.id.clone());
        server.transition(ServerStatus::Active)?;
        server.status_details = format!("{}: {}", self.compute.name(), vm.details);
        self.settle(&mut server, ServerStatus::Creating).await
    }

    /// A create that failed for good: no VM, no volume, the server `ERROR` with why.
    async fn fail_create(&self, job: &Job) -> Result<()> {
        let (caller, id): (Caller, ServerId) = job.decode()?;
        let Ok(mut server) = self.in_status(id, ServerStatus::Creating).await else {
            return Ok(());
        };
        self.release(&caller.principal(&server.project_id), &server)
            .await;
        server.transition(ServerStatus::Error)?;
        server.status_details = job.fail_reason.clone().unwrap_or_default();
        self.settle(&mut server, ServerStatus::Creating).await
    }

    /// Stops and removes the server's VM and root volume (best effort: what is left is
    /// logged, and the sweeper removes stray VMs).
    async fn release(&self, who: &Principal, server: &ImageServer) {
        if let Err(e) = self.compute.delete(server.id).await {
            tracing::warn!(server.id = %server.id, error = %e, "could not remove a server's VM");
        }
        if let Some(volume) = server.volume_id
            && let Err(e) = self.discard_volume(who, volume).await
        {
            tracing::warn!(server.id = %server.id, error = %e, "could not remove a server's root volume");
        }
    }

    async fn discard_volume(&self, who: &Principal, id: VolumeId) -> Result<()> {
        let Some(volume) = self.volumes.repo.get(id).await? else {
            return Ok(());
        };
        let id = id.to_string();
        if volume.status == VolumeStatus::Ready {
            self.volumes.delete(who, &id).await?;
        }
        if volume.status != VolumeStatus::Expunged {
            self.volumes.expunge(who, &id).await?;
        }
        Ok(())
    }

    /// `CREATE_SERVER_IMAGE`: the guest paused with its disk flushed, the disk streamed
    /// into the new image through the one pipeline, the guest resumed; the server
    /// `BUILT` with the image's id.
    async fn run_capture(&self, job: &Job) -> Result<()> {
        let (capture, id): (Capture, ServerId) = job.decode()?;
        let mut server = self.in_status(id, ServerStatus::Building).await?;
        let image_id = capture_image(&capture)?;
        let volume_id = server
            .volume_id
            .ok_or_else(|| Error::internal("an image server without a root volume id"))?;
        self.compute.quiesce(id).await?;
        let made = self
            .fill_capture(&server, &capture, image_id, volume_id)
            .await;
        let resumed = self.compute.resume(id).await;
        made?;
        resumed?;
        server.transition(ServerStatus::Built)?;
        server.image_id = Some(image_id);
        self.settle(&mut server, ServerStatus::Building).await
    }

    /// Writes the capture's image (once) and fills it from the volume.
    async fn fill_capture(
        &self,
        server: &ImageServer,
        capture: &Capture,
        image_id: ImageId,
        volume_id: VolumeId,
    ) -> Result<()> {
        match self.images.repo.get(image_id).await? {
            Some(i) if i.status == ImageStatus::Active => return Ok(()),
            Some(i) if i.status == ImageStatus::Importing => {}
            Some(i) => return Err(Error::Gone(format!("Image {image_id} is {}", i.status))),
            None => {
                let volume = self
                    .volumes
                    .repo
                    .get(volume_id)
                    .await?
                    .ok_or_else(|| Error::Gone("The root volume is gone".into()))?;
                let os_version = match ImageId::parse(&server.image_ref.id) {
                    Some(source) => self
                        .images
                        .repo
                        .get(source)
                        .await?
                        .and_then(|i| i.properties.get("__os_version").cloned()),
                    None => None,
                };
                let req = NewImageFromVolume {
                    image_id: Some(image_id),
                    name: capture.name.clone(),
                    description: capture.description.clone(),
                    os_version: Some(
                        os_version.unwrap_or_else(|| crate::huawei::DEFAULT_OS_VERSION.to_string()),
                    ),
                    ..NewImageFromVolume::default()
                };
                let origin = format!("instance,{}", server.id);
                let mut image = ImageService::image_from_volume(&volume, req, origin)?;
                image.transition(ImageStatus::Importing)?;
                lease::confirm().await?;
                self.images.insert_within_quota(&[(image, None)]).await?;
            }
        }
        self.volumes.fill_from_volume(volume_id, image_id).await
    }

    /// A capture that failed for good: its image removed, the guest running again, the
    /// server back where it was with why.
    async fn fail_capture(&self, job: &Job) -> Result<()> {
        let (capture, id): (Capture, ServerId) = job.decode()?;
        if let Ok(image) = capture_image(&capture) {
            self.images.discard_unfilled(image).await?;
        }
        let Ok(mut server) = self.in_status(id, ServerStatus::Building).await else {
            return Ok(());
        };
        if let Err(e) = self.compute.resume(id).await {
            tracing::warn!(server.id = %id, error = %e, "could not resume a server after a failed capture");
        }
        let from: ServerStatus = capture.from.parse()?;
        server.transition(from)?;
        server.status_details = format!(
            "The last capture failed: {}",
            job.fail_reason.as_deref().unwrap_or("unknown")
        );
        self.settle(&mut server, ServerStatus::Building).await
    }

    /// `DELETE_SERVER`: each server's VM and root volume removed, the server gone. The
    /// images servers made are kept.
    async fn run_delete(&self, job: &Job) -> Result<()> {
        let removal: Removal = decode_removal(job)?;
        for id in removal.servers.iter().filter_map(|s| ServerId::parse(s)) {
            let Ok(mut server) = self.in_status(id, ServerStatus::Deleting).await else {
                continue;
            };
            let who = removal.caller.principal(&server.project_id);
            self.compute.delete(id).await?;
            if let Some(volume) = server.volume_id {
                self.discard_volume(&who, volume).await?;
            }
            server.transition(ServerStatus::Deleted)?;
            self.settle(&mut server, ServerStatus::Deleting).await?;
        }
        Ok(())
    }

    /// A delete that failed for good: the servers it did not finish are `ERROR`.
    async fn fail_delete(&self, job: &Job) -> Result<()> {
        let removal: Removal = decode_removal(job)?;
        for id in removal.servers.iter().filter_map(|s| ServerId::parse(s)) {
            if let Ok(mut server) = self.in_status(id, ServerStatus::Deleting).await {
                server.transition(ServerStatus::Error)?;
                server.status_details = job.fail_reason.clone().unwrap_or_default();
                self.settle(&mut server, ServerStatus::Deleting).await?;
            }
        }
        Ok(())
    }

    /// Puts the catalog and the driver in agreement: a VM no live server owns is removed;
    /// a running server whose VM is gone (QEMU died, the host rebooted) becomes `ERROR`.
    /// Servers with work under way are left to their jobs. Returns (strays removed,
    /// servers failed).
    pub async fn reconcile(&self) -> Result<(usize, usize)> {
        let servers = self.repo.live().await?;
        let vms = self.compute.list().await?;
        let mut strays = 0;
        for (id, _) in &vms {
            if !servers.iter().any(|s| s.id == *id) {
                self.compute.delete(*id).await?;
                strays += 1;
            }
        }
        let alive = self
            .queue
            .repo()
            .nodes_seen_since(self.node.alive_since())
            .await?;
        let mut failed = 0;
        for mut server in servers {
            let from = server.status;
            if !matches!(from, ServerStatus::Active | ServerStatus::Built) {
                continue;
            }
            // Another live node's VM is that node's to check.
            let details = match server.node_id.as_deref() {
                Some(node) if node != self.node.id && alive.contains(node) => continue,
                Some(node) if node != self.node.id => {
                    format!("The node running its VM ({node}) stopped answering")
                }
                _ => {
                    let vm = self.compute.status(server.id).await?;
                    if vm.state != VmState::Gone {
                        continue;
                    }
                    format!("The VM is gone: {}", vm.details)
                }
            };
            server.transition(ServerStatus::Error)?;
            server.status_details = details;
            server.updated_at = now();
            match self.repo.save(&server, from, None).await {
                Ok(()) => failed += 1,
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((strays, failed))
    }
}

fn capture_image(capture: &Capture) -> Result<ImageId> {
    ImageId::parse(&capture.image_id)
        .ok_or_else(|| Error::internal("bad image id in a capture job"))
}

fn decode_removal(job: &Job) -> Result<Removal> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| Error::internal(format!("job {}: bad payload: {e}", job.id)))
}

/// Runs the image-server jobs.
pub struct ServerJobs(pub ServerService);

const SERVER_KINDS: &[JobKind] = &[
    JobKind::ServerCreate,
    JobKind::ServerCapture,
    JobKind::ServerDelete,
];

#[async_trait]
impl JobHandler for ServerJobs {
    fn kinds(&self) -> &[JobKind] {
        SERVER_KINDS
    }

    async fn run(&self, job: &Job) -> Result<()> {
        match job.kind {
            JobKind::ServerCreate => self.0.run_create(job).await,
            JobKind::ServerCapture => self.0.run_capture(job).await,
            JobKind::ServerDelete => self.0.run_delete(job).await,
            other => Err(Error::internal(format!("not a server job kind: {other}"))),
        }
    }

    async fn on_failure(&self, job: &Job) -> Result<()> {
        match job.kind {
            JobKind::ServerCreate => self.0.fail_create(job).await,
            JobKind::ServerCapture => self.0.fail_capture(job).await,
            JobKind::ServerDelete => self.0.fail_delete(job).await,
            _ => Ok(()),
        }
    }
}

/// Keeps VMs and servers in agreement, at start-up and on every sweep.
pub struct ServerSweeper(pub ServerService);

#[async_trait]
impl Sweeper for ServerSweeper {
    fn name(&self) -> &'static str {
        "image servers"
    }

    async fn recover(&self) -> Result<()> {
        let (strays, failed) = self.0.reconcile().await?;
        tracing::info!(
            vms.removed = strays,
            servers.failed = failed,
            "image server recovery done"
        );
        Ok(())
    }

    async fn sweep(&self) -> Result<()> {
        self.0.reconcile().await.map(|_| ())
    }
}
