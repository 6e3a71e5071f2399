//! `GET /metrics`: Prometheus text for operators.
//!
//! The domain and the qemu wrapper record through the `metrics` facade (names in
//! `ims_domain::telemetry` and `ims_qemu`); this module installs the Prometheus recorder
//! behind it, counts every HTTP request by dialect and route template, and at each scrape
//! adds what only a look around can tell: the catalog's unfinished jobs, its connection
//! pool, and this process's memory and open files. Recording is an atomic add on a
//! handle; nothing is rendered unless someone scrapes.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ims_db::Catalog;
use ims_http::Services;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Which API answered a request: set on its response by the dialect's router.
#[derive(Debug, Clone, Copy)]
pub struct Dialect(pub &'static str);

/// Runs a dialect's handler as that dialect (`from_fn_with_state(name, dialect)` on its
/// router): inside [`ims_domain::context::CALLER_API`], so images it creates record
/// their origin, and with its response marked for [`track`].
pub async fn dialect(State(name): State<&'static str>, req: Request, next: Next) -> Response {
    let mut resp = ims_domain::context::CALLER_API
        .scope(name, next.run(req))
        .await;
    resp.extensions_mut().insert(Dialect(name));
    resp
}

/// Request latency buckets, seconds: a cached list answers in about a millisecond, an
/// upload of gigabytes in minutes.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 1800.0,
];

/// Pipeline throughput buckets, bytes per second: 1 MB/s to 4 GB/s.
const RATE_BUCKETS: &[f64] = &[
    1e6, 4e6, 16e6, 32e6, 64e6, 128e6, 256e6, 512e6, 1e9, 2e9, 4e9,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (one per process: the facade is global).
fn recorder() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = RECORDER.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(ims_domain::telemetry::PIPELINE_PASS_RATE.into()),
            RATE_BUCKETS,
        )?
        .install_recorder()?;
    let handle = RECORDER.get_or_init(|| handle).clone();
    let upkeep = handle.clone();
    // Histograms are drained into their buckets here too, not only at scrapes.
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// What `/metrics` renders from.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    catalog: Catalog,
}

impl Metrics {
    /// Installs the recorder (once per process) and reads the catalog at scrapes.
    pub fn install(catalog: Catalog) -> anyhow::Result<Self> {
        Ok(Metrics {
            handle: recorder()?,
            catalog,
        })
    }

    /// The Prometheus text of everything recorded, with the scrape-time gauges.
    pub async fn render(&self) -> String {
        self.refresh_jobs().await;
        let pool = self.catalog.pool_usage();
        metrics::gauge!("ims_catalog_pool_connections", "state" => "idle").set(pool.idle as f64);
        metrics::gauge!("ims_catalog_pool_connections", "state" => "busy")
            .set(pool.open.saturating_sub(pool.idle as u32) as f64);
        metrics::gauge!("ims_catalog_pool_max_connections").set(f64::from(pool.max));
        if let Some(rss) = resident_bytes() {
            metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
        }
        if let Some(fds) = open_files() {
            metrics::gauge!("process_open_fds").set(fds as f64);
        }
        self.handle.render()
    }

    /// `ims_jobs{kind,status}` for waiting and running jobs of the whole catalog (every
    /// node reports the same), and `ims_job_queue_depth`, the jobs waiting for a worker.
    async fn refresh_jobs(&self) {
        let counts = match self.catalog.unfinished_jobs().await {
            Ok(counts) => counts,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: counting jobs failed");
                return;
            }
        };
        let mut waiting = 0;
        // Every kind and status is set, so a count that fell to zero reads zero.
        for kind in ims_domain::job::JobKind::ALL {
            for status in ["INIT", "RUNNING"] {
                let n = counts
                    .iter()
                    .find(|(k, s, _)| k == kind.as_str() && s == status)
                    .map_or(0, |(_, _, n)| *n);
                if status == "INIT" {
                    waiting += n;
                }
                metrics::gauge!("ims_jobs", "kind" => kind.as_str(), "status" => status)
                    .set(n as f64);
            }
        }
        metrics::gauge!("ims_job_queue_depth").set(waiting as f64);
    }
}

/// This process's resident memory, from the `VmRSS` line of `/proc/self/status` (kB).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Descriptors this process holds open.
fn open_files() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Counts each request: `ims_http_requests_total{dialect,route,method,status}` and
/// `ims_http_request_duration_seconds{dialect,route,method}`, by route template (never
/// the raw path: ids would make a series per image). The same fields go on the request's
/// log span. Runs after routing, so the template is known.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    // A client may send any method name: only the standard ones become label values, so
    // nobody can grow the series without bound.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let resp = next.run(req).await;
    let dialect = resp.extensions().get::<Dialect>().map_or("ims", |d| d.0);
    let status = resp.status().as_u16();
    let span = tracing::Span::current();
    span.record("dialect", dialect);
    span.record("route", route.as_str());
    metrics::counter!("ims_http_requests_total", "dialect" => dialect, "route" => route.clone(),
        "method" => method, "status" => status.to_string())
    .increment(1);
    metrics::histogram!("ims_http_request_duration_seconds", "dialect" => dialect,
        "route" => route, "method" => method)
    .record(started.elapsed().as_secs_f64());
    resp
}

/// State of the `/metrics` route on the API listener.
#[derive(Clone)]
pub struct Scrape {
    /// To check the caller.
    pub services: Services,
    /// What is rendered.
    pub metrics: Arc<Metrics>,
}

/// `GET /metrics` on the API listener: for administrators only (a Keystone token with
/// the admin role), since it describes the whole service. The separate listener
/// (`[metrics] listen`) serves it without a token.
pub async fn scrape(State(s): State<Scrape>, headers: HeaderMap) -> Response {
    match ims_http::authenticate(&s.services, &headers).await {
        Ok(who) if who.is_admin() => text(&s.metrics).await,
        Ok(_) => (
            StatusCode::FORBIDDEN,
            "The metrics are for administrators.\n",
        )
            .into_response(),
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.\n",
        )
            .into_response(),
    }
}

async fn text(metrics: &Metrics) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render().await,
    )
        .into_response()
}

/// The separate metrics listener's app: `/metrics` without authentication, nothing else.
pub fn listener_app(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            async move { text(&metrics).await }
        }),
    )
}
