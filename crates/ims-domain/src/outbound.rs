//! Rules for every fetch ims makes on a caller's behalf (web-download, import tasks, and
//! any later "import from a URL"): which addresses may be reached, how long and how slowly
//! a transfer may run, and how URLs are shown in messages and logs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, Result};
use crate::ports::ByteStream;

/// How a refusal of a URI's scheme or port begins (Glance's words).
pub const FILTERED: &str = "The URI does not pass filtering";

/// The one message for an address the filter refuses, whatever the range: it names no
/// address class, so failures cannot map the internal network.
pub const REFUSED_ADDRESS: &str = "The URI resolves to an address that is not allowed";

/// Which URLs an outbound fetch may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFilter {
    /// Allowed schemes.
    pub schemes: Vec<String>,
    /// Allowed ports; empty means any.
    pub ports: Vec<u16>,
    /// Whether addresses that are not globally reachable may be fetched (tests only).
    pub allow_private: bool,
    /// Exact addresses exempt from the refusal (e.g. a test harness's own loopback
    /// server); ports are still checked. Compared as written: allowing `127.0.0.1` does
    /// not allow `::ffff:127.0.0.1`.
    pub allow_addresses: Vec<IpAddr>,
}

impl Default for UrlFilter {
    fn default() -> Self {
        UrlFilter {
            schemes: vec!["http".into(), "https".into()],
            ports: vec![80, 443],
            allow_private: false,
            allow_addresses: Vec::new(),
        }
    }
}

impl UrlFilter {
    /// Checks the parts of a URL that can be known without resolving it. The refusal
    /// says "does not pass filtering", as Glance's does (Tempest looks for it).
    pub fn check(&self, scheme: &str, port: u16) -> Result<()> {
        if !self.schemes.iter().any(|s| s == scheme) {
            return Err(Error::invalid(format!(
                "{FILTERED}: URI scheme '{scheme}' is not allowed"
            )));
        }
        if !self.ports.is_empty() && !self.ports.contains(&port) {
            return Err(Error::invalid(format!(
                "{FILTERED}: URI port {port} is not allowed"
            )));
        }
        Ok(())
    }

    /// Checks an address: a literal host, every address a name resolves to, and every
    /// redirect's.
    pub fn check_ip(&self, ip: IpAddr) -> Result<()> {
        if self.allow_private || self.allow_addresses.contains(&ip) || is_global(ip) {
            Ok(())
        } else {
            Err(Error::invalid(REFUSED_ADDRESS))
        }
    }
}

/// Whether a fetch may reach `ip`: IPv4 embedded in IPv6 (mapped, compatible, NAT64's
/// well-known prefix, 6to4) is judged as the IPv4 address it reaches, then every range
/// that the IANA special-purpose registries do not mark globally reachable is refused,
/// as are multicast, broadcast and the tunnelling prefixes that hide an address.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms a dual-stack
/// host, a NAT64 gateway or a 6to4 relay turns into IPv4 traffic.
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff || (bits >> 32 == 0 && bits > 1) {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible; `::` and `::1` excepted).
        Some(low32)
    } else if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        // 64:ff9b::/96, NAT64's well-known prefix.
        Some(low32)
    } else if bits >> 112 == 0x2002 {
        // 2002::/16, 6to4: the next 32 bits are the IPv4 address.
        Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32))
    } else {
        None
    }
}

/// IPv4 ranges that are not globally reachable (IANA IPv4 special-purpose registry),
/// plus multicast and the reserved block (which holds the limited broadcast address).
const NON_GLOBAL_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8), // "this network", 0.0.0.0 reaches the host
    (Ipv4Addr::new(10, 0, 0, 0), 8), // private
    (Ipv4Addr::new(100, 64, 0, 0), 10), // shared address space (CGNAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12), // private
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24), // documentation
    (Ipv4Addr::new(192, 88, 99, 0), 24), // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24), // documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, and 255.255.255.255
];

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let addr = u32::from(ip);
    !NON_GLOBAL_V4.iter().any(|(net, len)| {
        let mask = u32::MAX << (32 - u32::from(*len));
        addr & mask == u32::from(*net)
    })
}

/// IPv6 ranges inside global unicast (2000::/3) that are not globally reachable or that
/// hide another address.
const NON_GLOBAL_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, Teredo
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4 (judged by its IPv4 first)
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

/// Only global unicast (2000::/3) is reachable; that excludes loopback, unspecified,
/// discard-only, NAT64's local-use prefix (64:ff9b:1::/48), SRv6, unique-local,
/// link-local, site-local and multicast at once.
fn is_global_v6(ip: Ipv6Addr) -> bool {
    let addr = u128::from(ip);
    let in_net = |net: Ipv6Addr, len: u8| {
        let mask = u128::MAX << (128 - u32::from(len));
        addr & mask == u128::from(net)
    };
    in_net(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
        && !NON_GLOBAL_V6.iter().any(|(net, len)| in_net(*net, *len))
}

/// A URL as it may be shown to other people and written to logs: user information and
/// the query string (credentials, presigned signatures) are replaced by `***`. Text that
/// is not a URL is returned unchanged.
pub fn redact_url(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, _)) => (r, true),
        None => (rest, false),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = format!("{scheme}://");
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            out.push_str("***@");
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if query {
        out.push_str("?***");
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Redacts every URL found in free text (an error message, a log line).
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The URL starts after the last separator before "://".
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |s| s + 1);
        // IPv6 literals keep their brackets: whitespace, quotes, angle brackets and
        // parentheses end a URL.
        let len = rest[i..]
            .find(|c: char| c.is_whitespace() || "\"'<>()".contains(c))
            .unwrap_or(rest.len() - i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..i + len]));
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    out
}

/// Limits on one outbound transfer, from the first connection to the last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// The whole transfer must end within this.
    pub deadline: Duration,
    /// At least this many bytes per second …
    pub min_bytes_per_sec: u64,
    /// … averaged over each window of this length (a slow start is allowed within it).
    pub rate_window: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            deadline: Duration::from_secs(6 * 3600),
            min_bytes_per_sec: 16 * 1024,
            rate_window: Duration::from_secs(60),
        }
    }
}

impl FetchLimits {
    /// When a transfer starting now must end.
    pub fn deadline_from(&self, start: Instant) -> Instant {
        start + self.deadline
    }

    /// Wraps a body so that it fails (with `TimedOut`) past the deadline, or when a whole
    /// window brings fewer bytes than the minimum rate asks. The error names neither the
    /// URL nor the peer.
    pub fn guard(&self, body: ByteStream, deadline: Instant) -> ByteStream {
        let window = self.rate_window.max(Duration::from_millis(100));
        let now = Instant::now();
        Box::pin(Guarded {
            body,
            deadline,
            window,
            min_in_window: self
                .min_bytes_per_sec
                .saturating_mul(window.as_millis() as u64)
                / 1000,
            window_end: now + window,
            in_window: 0,
            handed_out: None,
            timer: Box::pin(tokio::time::sleep_until((now + window).min(deadline))),
            limits: *self,
        })
    }
}

/// A body under [`FetchLimits`].
struct Guarded {
    body: ByteStream,
    deadline: Instant,
    window: Duration,
    min_in_window: u64,
    window_end: Instant,
    in_window: u64,
    /// When the last chunk went to the consumer: the time until it asks again is its
    /// own (hashing, disk), not the source's, so the window is extended by it.
    handed_out: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    limits: FetchLimits,
}

impl Guarded {
    /// Checks the clock: an error once the deadline passed or a window ended too slow;
    /// otherwise starts the next window when one ended, and re-arms the timer.
    fn check(&mut self, now: Instant) -> std::result::Result<(), std::io::Error> {
        if now >= self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the transfer did not finish within {} s",
                    self.limits.deadline.as_secs()
                ),
            ));
        }
        if now >= self.window_end {
            if self.in_window < self.min_in_window {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the source sent less than {} bytes/s over {} s",
                        self.limits.min_bytes_per_sec,
                        self.window.as_secs()
                    ),
                ));
            }
            self.in_window = 0;
            self.window_end = now + self.window;
            let wake = self.window_end.min(self.deadline);
            self.timer.as_mut().reset(wake);
        }
        Ok(())
    }
}

impl Stream for Guarded {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(at) = this.handed_out.take() {
            this.window_end += at.elapsed();
            let wake = this.window_end.min(this.deadline);
            this.timer.as_mut().reset(wake);
        }
        match this.body.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.in_window += chunk.len() as u64;
                let checked = this.check(Instant::now()).map(|()| chunk);
                this.handed_out = Some(Instant::now());
                Poll::Ready(Some(checked))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                // Nothing arrived: the timer wakes us at the window's end or the deadline.
                while this.timer.as_mut().poll(cx).is_ready() {
                    if let Err(e) = this.check(Instant::now()) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn refused(s: &str) -> bool {
        !is_global(s.parse().unwrap())
    }

    #[test]
    fn every_non_global_form_is_refused() {
        for a in [
            "127.0.0.1",
            "0.0.0.0",
            "10.1.2.3",
            "100.100.100.200",
            "169.254.169.254",
            "172.16.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "5f00::1",
        ] {
            assert!(refused(a), "{a} must be refused");
        }
        for a in [
            "8.8.8.8",
            "93.184.216.34",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!refused(a), "{a} is global");
        }
    }

    #[test]
    fn the_allow_list_is_exact_and_the_message_fixed() {
        let filter = UrlFilter {
            allow_addresses: vec!["127.0.0.1".parse().unwrap()],
            ..UrlFilter::default()
        };
        assert!(filter.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        let err = filter
            .check_ip("::ffff:127.0.0.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(err.to_string(), REFUSED_ADDRESS);
        assert_eq!(
            filter
                .check_ip("10.0.0.1".parse().unwrap())
                .unwrap_err()
                .to_string(),
            REFUSED_ADDRESS
        );
    }

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("https://deploy:TopSecretPw@host:8080/a/b?X-Amz-Signature=abc#f"),
            "https://***@host:8080/a/b?***#f"
        );
        assert_eq!(redact_url("http://host/x"), "http://host/x");
        assert_eq!(redact_url("http://[::1]:80?t=1"), "http://[::1]:80?***");
        let text = "error sending request for url (http://u:p@[::1]:9/x?token=s3cret): refused";
        let red = redact_urls_in(text);
        assert!(!red.contains("s3cret") && !red.contains("u:p"), "{red}");
        assert!(red.starts_with("error sending request for url (http://***@[::1]:9/x?***)"));
        assert_eq!(redact_urls_in("no url here"), "no url here");
    }

    #[tokio::test]
    async fn a_trickle_fails_within_its_window_and_a_stall_by_the_deadline() {
        let ms = Duration::from_millis;
        let limits = FetchLimits {
            deadline: ms(1500),
            min_bytes_per_sec: 10_000,
            rate_window: ms(300),
        };
        // A byte every 20 ms: far below 10 kB/s, refused when the first window ends.
        let trickle = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok(Bytes::from_static(b"x")), ()))
        });
        let start = Instant::now();
        let mut body = limits.guard(Box::pin(trickle), limits.deadline_from(start));
        let err = loop {
            match body.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => break e,
                None => panic!("ended"),
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(start.elapsed() < ms(1000), "{:?}", start.elapsed());
        // Nothing at all: the timer alone ends it.
        let silent = futures::stream::pending::<std::io::Result<Bytes>>();
        let start = Instant::now();
        let mut body = limits.guard(Box::pin(silent), limits.deadline_from(start));
        assert!(matches!(body.next().await, Some(Err(_))));
        assert!(start.elapsed() < ms(1000));
        // Fast enough (100 kB/s), but never ending: the deadline stops it.
        let fast = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Some((Ok(Bytes::from(vec![0u8; 1000])), ()))
        });
        let start = Instant::now();
        let mut body = limits.guard(Box::pin(fast), limits.deadline_from(start));
        let mut got = 0;
        let err = loop {
            match body.next().await {
                Some(Ok(b)) => got += b.len(),
                Some(Err(e)) => break e,
                None => panic!("ended"),
            }
        };
        assert!(err.to_string().contains("within 1 s"), "{err}");
        assert!(got >= 10_000, "{got}");
        let took = start.elapsed();
        assert!(took >= ms(1500) && took < ms(3000), "{took:?}");
        // A consumer that takes its time over each chunk is not the source's fault.
        let ready = futures::stream::iter((0..4).map(|_| Ok(Bytes::from_static(b"x"))));
        let start = Instant::now();
        let mut body = limits.guard(Box::pin(ready), limits.deadline_from(start));
        let mut got = 0;
        while let Some(chunk) = body.next().await {
            got += chunk.unwrap().len();
            tokio::time::sleep(ms(200)).await;
        }
        assert_eq!(got, 4);
    }
}
