//! What keeps data transfers from taking the service or a quota over: a cap on client
//! uploads at once (per node and per project), an idle timeout on their bodies, and the
//! size-quota reservation every transfer makes before it accepts bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metadata::ImageService;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::ports::{ByteStream, SizeClaim};

/// How far ahead an upload of undeclared size reserves quota as its bytes arrive: one
/// catalog write per this many bytes.
pub const RESERVE_STEP: u64 = 64 << 20;

/// Limits on client uploads (`PUT …/file` and `…/stage`) on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLimits {
    /// Uploads at once on this node; 0 = no limit. Over it: `Unavailable`.
    pub max_uploads: usize,
    /// Uploads at once by one project on this node; 0 = no limit. Over it: `Throttled`.
    pub max_uploads_per_project: usize,
    /// The longest an upload body may send nothing before the upload fails
    /// (`InvalidInput`) and
    /// its image is queued again.
    pub body_idle_timeout: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_uploads: 64,
            max_uploads_per_project: 16,
            body_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Counts uploads in progress, in total and per project.
pub(crate) struct TransferGate {
    limits: UploadLimits,
    total: Option<Arc<Semaphore>>,
    per_project: Arc<Mutex<HashMap<String, usize>>>,
}

/// One upload's place under the caps; dropping it frees the place.
pub(crate) struct TransferPermit {
    _total: Option<OwnedSemaphorePermit>,
    project: String,
    per_project: Arc<Mutex<HashMap<String, usize>>>,
}

impl TransferGate {
    pub(crate) fn new(limits: UploadLimits) -> Self {
        let total = (limits.max_uploads > 0).then(|| Arc::new(Semaphore::new(limits.max_uploads)));
        TransferGate {
            limits,
            total,
            per_project: Arc::default(),
        }
    }

    /// A place for one more upload by `project`, or `Throttled` (the project's own cap)
    /// or `Unavailable` (the node's) without waiting. The project's cap is checked first,
    /// so a project at its cap hears so even when the node is full too.
    pub(crate) fn enter(&self, project: &str) -> Result<TransferPermit> {
        let cap = self.limits.max_uploads_per_project;
        let mut counts = lock(&self.per_project);
        if cap > 0 && counts.get(project).copied().unwrap_or(0) >= cap {
            return Err(Error::Throttled(format!(
                "Too many uploads in progress for this project (at most {cap}); \
                 retry when one has finished"
            )));
        }
        let total = match &self.total {
            Some(total) => Some(Arc::clone(total).try_acquire_owned().map_err(|_| {
                Error::Unavailable("The service has too many uploads in progress".into())
            })?),
            None => None,
        };
        *counts.entry(project.to_string()).or_default() += 1;
        Ok(TransferPermit {
            _total: total,
            project: project.to_string(),
            per_project: Arc::clone(&self.per_project),
        })
    }

    /// The body idle timeout.
    pub(crate) fn idle(&self) -> Duration {
        self.limits.body_idle_timeout
    }
}

impl Drop for TransferPermit {
    fn drop(&mut self) {
        let mut counts = lock(&self.per_project);
        if let Some(count) = counts.get_mut(&self.project) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.project);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The counts stay consistent even if a holder panicked: every change is one step.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A transfer's room under its owner's `image_size_total`, recorded on the image in
/// the catalog: the declared size up front, or, for a stream of unknown size, the bytes
/// received so far plus [`RESERVE_STEP`], claimed again as the data goes past it.
pub(crate) struct SizeReservation {
    svc: ImageService,
    image: Image,
    owner: String,
    limit: u64,
    declared: Option<u64>,
    reserved: u64,
}

impl SizeReservation {
    /// Reserves the declared size, if any, for `image` (already in its transfer status);
    /// `None` when the image's owner has no size quota.
    pub(crate) async fn start(
        svc: &ImageService,
        image: &Image,
        declared: Option<u64>,
    ) -> Result<Option<SizeReservation>> {
        let (Some(limit), Some(owner)) = (svc.settings.quotas.image_size_total, &image.owner)
        else {
            return Ok(None);
        };
        let mut reservation = SizeReservation {
            svc: svc.clone(),
            image: image.clone(),
            owner: owner.clone(),
            limit,
            declared,
            reserved: 0,
        };
        if let Some(size) = declared {
            reservation.claim(size, size).await?;
        }
        Ok(Some(reservation))
    }

    /// Makes sure `received` bytes are covered.
    async fn cover(&mut self, received: u64) -> Result<()> {
        // A declared size was reserved whole; the pipeline refuses any byte past it.
        if received <= self.reserved || self.declared.is_some() {
            return Ok(());
        }
        self.claim(received, received.saturating_add(RESERVE_STEP))
            .await
    }

    async fn claim(&mut self, need: u64, want: u64) -> Result<()> {
        let claim = SizeClaim {
            image: self.image.id,
            status: self.image.status,
            owner: &self.owner,
            need,
            want,
            limit: self.limit,
        };
        match self.svc.repo.reserve_size(&claim).await? {
            Some(granted) => {
                self.reserved = granted;
                Ok(())
            }
            None => Err(Error::QuotaExceeded(format!(
                "You are over your image storage quota of {} bytes: uploads and imports in \
                 progress count with their size",
                self.limit
            ))),
        }
    }

    /// `source`, failing with `QuotaExceeded` before it yields a byte beyond the room
    /// this reservation can get.
    pub(crate) fn meter(self, source: ByteStream) -> ByteStream {
        Box::pin(futures::stream::unfold(
            Some((source, self, 0u64)),
            |state| async move {
                let (mut source, mut reservation, mut received) = state?;
                let item = source.next().await?;
                let Ok(frame) = item else {
                    return Some((item, Some((source, reservation, received))));
                };
                received += frame.len() as u64;
                match reservation.cover(received).await {
                    Ok(()) => Some((Ok(frame), Some((source, reservation, received)))),
                    Err(e) => Some((Err(std::io::Error::other(e)), None)),
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_counts_per_project_and_in_total_and_frees_on_drop() {
        let gate = TransferGate::new(UploadLimits {
            max_uploads: 3,
            max_uploads_per_project: 2,
            body_idle_timeout: Duration::from_secs(1),
        });
        let a1 = gate.enter("a").unwrap();
        let _a2 = gate.enter("a").unwrap();
        assert!(matches!(gate.enter("a"), Err(Error::Throttled(_))));
        let _b1 = gate.enter("b").unwrap();
        // The node is full: another project is `Unavailable`, and its refusal leaves no
        // count.
        assert!(matches!(gate.enter("c"), Err(Error::Unavailable(_))));
        assert!(!lock(&gate.per_project).contains_key("c"));
        drop(a1);
        let _c1 = gate.enter("c").unwrap();
        assert_eq!(lock(&gate.per_project).get("a"), Some(&1));
    }

    #[test]
    fn zero_means_no_cap() {
        let gate = TransferGate::new(UploadLimits {
            max_uploads: 0,
            max_uploads_per_project: 0,
            body_idle_timeout: Duration::from_secs(1),
        });
        let permits: Vec<_> = (0..1000).map(|_| gate.enter("a").unwrap()).collect();
        assert_eq!(permits.len(), 1000);
    }
}
