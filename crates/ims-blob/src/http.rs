//! `RemoteSource` over HTTP(S) for `web-download` and import tasks, with the domain's
//! address filter on every address a name resolves to and on every redirect.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use ims_domain::outbound::redact_url;
use ims_domain::ports::{ByteStream, RemoteSource};
use ims_domain::service::UrlFilter;
use ims_domain::{Error, Result};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The one message for a fetch that failed below HTTP (refused, reset, timed out, TLS):
/// which of them it was would tell a caller what listens where.
const FETCH_FAILED: &str = "Could not fetch the URI";

/// Fetches URLs with reqwest.
#[derive(Debug, Clone)]
pub struct HttpSource {
    settings: Arc<HttpSettings>,
}

/// Timeouts and name pinning of [`HttpSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connecting (TCP and TLS) must finish within this.
    pub connect_timeout: Duration,
    /// Each read (the response head, every part of the body) must finish within this.
    pub read_timeout: Duration,
    /// Names answered from this table instead of the system resolver, as curl's
    /// `--resolve` does; their addresses go through the filter like any other.
    pub resolve: HashMap<String, Vec<IpAddr>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            resolve: HashMap::new(),
        }
    }
}

impl Default for HttpSource {
    fn default() -> Self {
        HttpSource::new(HttpSettings::default())
    }
}

impl HttpSource {
    /// A source with these settings.
    pub fn new(settings: HttpSettings) -> Self {
        HttpSource {
            settings: Arc::new(settings),
        }
    }
}

/// Resolves a name (from the pinned table or the system), then refuses it if any of its
/// addresses is refused: connecting to whichever address happens to answer first must not
/// decide whether the filter held.
struct FilteringResolver {
    filter: UrlFilter,
    settings: Arc<HttpSettings>,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let filter = self.filter.clone();
        let pinned = self
            .settings
            .resolve
            .get(&name.as_str().to_ascii_lowercase())
            .cloned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match pinned {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((name.as_str(), 0)).await?.collect(),
            };
            for a in &addrs {
                if let Err(e) = filter.check_ip(a.ip()) {
                    let err: Box<dyn std::error::Error + Send + Sync> =
                        Box::new(std::io::Error::other(e.to_string()));
                    return Err(err);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn check_url(url: &url::Url, filter: &UrlFilter) -> Result<()> {
    filter.check(url.scheme(), url.port_or_known_default().unwrap_or(0))?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) => filter.check_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => filter.check_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(Error::invalid("URI has no host")),
    }
}

/// Whether an error chain holds the filter's refusal (from the resolver or a redirect).
fn refused_by_filter(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text == ims_domain::outbound::REFUSED_ADDRESS
            || text.starts_with(ims_domain::outbound::FILTERED)
            || text == "too many redirects"
        {
            return Some(text);
        }
        cur = err.source();
    }
    None
}

/// Whether a response frames its body (a length, or chunks whose end is explicit), so
/// that a connection cut short shows as an error instead of a shorter image. HTTP/2 and
/// later frame every body.
fn framed(resp: &reqwest::Response) -> bool {
    resp.version() >= reqwest::Version::HTTP_2
        || resp.content_length().is_some()
        || resp
            .headers()
            .get_all(reqwest::header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("chunked"))
}

#[async_trait]
impl RemoteSource for HttpSource {
    async fn open(&self, url: &str, filter: &UrlFilter) -> Result<(ByteStream, Option<u64>)> {
        let parsed = url::Url::parse(url).map_err(|e| Error::invalid(format!("bad URI: {e}")))?;
        check_url(&parsed, filter)?;
        let redirect_filter = filter.clone();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(FilteringResolver {
                filter: filter.clone(),
                settings: Arc::clone(&self.settings),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > 5 {
                    attempt.error("too many redirects")
                } else if let Err(e) = check_url(attempt.url(), &redirect_filter) {
                    attempt.error(e.to_string())
                } else {
                    attempt.follow()
                }
            }))
            .connect_timeout(self.settings.connect_timeout)
            .read_timeout(self.settings.read_timeout)
            // A proxy would resolve names itself, past the filtering resolver.
            .no_proxy()
            .build()
            .map_err(Error::internal)?;
        let shown = redact_url(url);
        let resp = client.get(parsed).send().await.map_err(|e| {
            let e = e.without_url();
            match refused_by_filter(&e) {
                Some(reason) => Error::invalid(reason),
                None => {
                    tracing::warn!(uri = %shown, error = %e, "web-download fetch failed");
                    Error::invalid(FETCH_FAILED)
                }
            }
        })?;
        if !resp.status().is_success() {
            return Err(Error::invalid(format!(
                "The URI answered {}",
                resp.status()
            )));
        }
        if !framed(&resp) {
            return Err(Error::invalid(
                "The URI's response has neither a Content-Length nor chunked framing, so a \
                 truncated transfer could not be told from a complete one",
            ));
        }
        let len = resp.content_length();
        let stream = resp
            .bytes_stream()
            .map_err(|e| std::io::Error::other(e.without_url()));
        Ok((Box::pin(stream), len))
    }
}
