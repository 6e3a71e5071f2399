//! The data path's own bounded thread pools: one for hashing, one for disk I/O.
//!
//! Transfers never use tokio's shared blocking pool, and never hold a thread while they
//! wait for the network: every chunk is one short job (hash it, write it, read it), and a
//! stalled client holds no thread at all. So however many uploads and downloads stall,
//! the blocking pool stays free for password checks, file opens and catalog work, and the
//! number of threads stays fixed.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Disk I/O threads when not configured: enough that a slow `fdatasync` of one upload
/// does not hold up the reads of every download.
pub const DEFAULT_DISK_THREADS: usize = 8;

/// A fixed set of threads running short jobs in submission order.
pub struct Pool {
    threads: rayon::ThreadPool,
}

/// The result of a job submitted to a [`Pool`]. The job runs whether or not this is
/// awaited; awaiting it only collects the result.
pub struct Job<T>(oneshot::Receiver<T>);

impl<T> Future for Job<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map_err(|_| Error::internal("a data-path worker job panicked"))
    }
}

impl Pool {
    /// A pool of `threads` threads (at least one) named `name-N`.
    pub fn new(name: &'static str, threads: usize) -> Result<Pool> {
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(move |i| format!("{name}-{i}"))
            // A panicking job drops its result sender, which its `Job` reports as an
            // internal error; without a handler rayon would abort the process.
            .panic_handler(|_| tracing::error!("a data-path worker job panicked"))
            .build()
            .map_err(Error::internal)?;
        Ok(Pool { threads })
    }

    /// Starts `f` on the pool now and returns its result's future.
    pub fn submit<T, F>(&self, f: F) -> Job<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.threads.spawn(move || {
            let _ = tx.send(f());
        });
        Job(rx)
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.threads.current_num_threads()
    }
}

static HASHING: OnceLock<Pool> = OnceLock::new();
static DISK: OnceLock<Pool> = OnceLock::new();

/// Sizes the two pools; 0 hashing threads means one per core. Call once at start-up,
/// before any transfer: a pool that is already running keeps its size.
pub fn configure(hash_threads: usize, disk_threads: usize) -> Result<()> {
    let hash_threads = match hash_threads {
        0 => cores(),
        n => n,
    };
    let _ = HASHING.set(Pool::new("ims-hash", hash_threads)?);
    let _ = DISK.set(Pool::new("ims-disk", disk_threads)?);
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

fn default_pool(name: &'static str, threads: usize) -> Pool {
    // Building a pool fails only when the OS refuses threads; nothing works then anyway.
    Pool::new(name, threads).unwrap_or_else(|e| panic!("starting the {name} pool: {e}"))
}

/// The hashing pool (one thread per core unless configured).
pub fn hashing() -> &'static Pool {
    HASHING.get_or_init(|| default_pool("ims-hash", cores()))
}

/// The disk I/O pool (blob and bucket reads, writes, syncs and renames).
pub fn disk() -> &'static Pool {
    DISK.get_or_init(|| default_pool("ims-disk", DEFAULT_DISK_THREADS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_parallel_and_a_panic_is_an_error() {
        let pool = Pool::new("test-pool", 2).unwrap();
        assert_eq!(pool.threads(), 2);
        let (a, b) = (pool.submit(|| 1 + 1), pool.submit(|| 40));
        assert_eq!(a.await.unwrap() + b.await.unwrap(), 42);
        let failed = pool.submit(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(failed, Err(Error::Internal(_))));
        assert_eq!(
            pool.submit(|| "still serving").await.unwrap(),
            "still serving"
        );
    }
}
