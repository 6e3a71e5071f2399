//! `RemoteSource` over HTTP(S) for `web-download`, with SSRF filtering on every address
//! the name resolves to and on every redirect.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use ims_domain::ports::{ByteStream, RemoteSource};
use ims_domain::service::UrlFilter;
use ims_domain::{Error, Result};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Fetches URLs with reqwest.
#[derive(Debug, Clone, Default)]
pub struct HttpSource;

struct FilteringResolver(UrlFilter);

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let filter = self.0.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
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

#[async_trait]
impl RemoteSource for HttpSource {
    async fn open(&self, url: &str, filter: &UrlFilter) -> Result<(ByteStream, Option<u64>)> {
        let parsed = url::Url::parse(url).map_err(|e| Error::invalid(format!("bad URI: {e}")))?;
        check_url(&parsed, filter)?;
        let redirect_filter = filter.clone();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(FilteringResolver(filter.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > 5 {
                    attempt.error("too many redirects")
                } else if let Err(e) = check_url(attempt.url(), &redirect_filter) {
                    attempt.error(e.to_string())
                } else {
                    attempt.follow()
                }
            }))
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            // A proxy would resolve names itself, past the filtering resolver.
            .no_proxy()
            .build()
            .map_err(Error::internal)?;
        let resp = client
            .get(parsed)
            .send()
            .await
            .map_err(|e| Error::invalid(format!("could not fetch the URI: {e}")))?;
        if !resp.status().is_success() {
            return Err(Error::invalid(format!(
                "the URI answered {}",
                resp.status()
            )));
        }
        let len = resp.content_length();
        let stream = resp.bytes_stream().map_err(std::io::Error::other);
        Ok((Box::pin(stream), len))
    }
}
