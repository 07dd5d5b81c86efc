//! The web's defences, each in one place: the response headers every page carries, the
//! same-origin check on every state-changing request, the browser-facing TLS configuration,
//! and the rate limit on sign-in attempts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::Shared;
use crate::pages::Failure;

/// No script but our own files, no inline script or style, no third party, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// No referrer to any other origin. Not `no-referrer`: under it a browser sends
/// `Origin: null` with a form post to its own origin, so [`same_origin_writes`] would refuse
/// every form of the console.
pub const REFERRER_POLICY: &str = "same-origin";

/// Adds the security headers to every response, and `Cache-Control: no-store` to every
/// response but the version-pinned assets (which say `immutable` themselves).
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, REFERRER_POLICY),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Refuses a state-changing request (anything but GET and HEAD) that does not come from a
/// page of this console: its `Origin` must be the public origin. Browsers send `Origin` on
/// every POST; a request without one is refused too. The CSRF token is checked by each
/// handler against the session ([`crate::session::Session::check_csrf`]).
pub async fn same_origin_writes(
    State(console): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    if origin != Some(console.public_origin.as_str()) {
        tracing::warn!(
            origin = origin.unwrap_or("(none)"),
            path = %request.uri().path(),
            "refused a cross-origin write"
        );
        return Failure::Forged.into_response();
    }
    next.run(request).await
}

/// The browser-facing TLS configuration: the console's certificate, TLS 1.3 and 1.2 (for
/// browsers), ALPN h2 and http/1.1, no client certificate.
pub fn server_tls(
    cert_chain_pem: &str,
    key_pem: &str,
) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    let chain = tryggdel_tls::parse_certificates(cert_chain_pem, "console certificate")
        .context("the console's certificate")?;
    let key = tryggdel_tls::parse_private_key(key_pem, "console private key")
        .context("the console's private key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the console's TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the console's certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
}

/// Sign-in attempts per client address: a burst of [`BURST`], then one every [`REFILL`];
/// and across all addresses [`GLOBAL_PER_MINUTE`] a minute.
pub struct SignInLimiter {
    buckets: Mutex<Buckets>,
}

/// Attempts a client may make at once.
pub const BURST: f64 = 10.0;
/// One more attempt per client this often.
pub const REFILL: Duration = Duration::from_secs(6);
/// Attempts from all clients together, per minute.
pub const GLOBAL_PER_MINUTE: f64 = 600.0;

struct Buckets {
    per_client: HashMap<IpAddr, (f64, Instant)>,
    global: (f64, Instant),
}

impl Default for SignInLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl SignInLimiter {
    pub fn new() -> SignInLimiter {
        SignInLimiter {
            buckets: Mutex::new(Buckets {
                per_client: HashMap::new(),
                global: (GLOBAL_PER_MINUTE, Instant::now()),
            }),
        }
    }

    /// Takes one attempt for `client`, or refuses.
    pub fn attempt(&self, client: IpAddr) -> Result<(), Failure> {
        let now = Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(buckets) => buckets,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (global, at) = buckets.global;
        let global = (global + now.duration_since(at).as_secs_f64() * GLOBAL_PER_MINUTE / 60.0)
            .min(GLOBAL_PER_MINUTE);
        let (tokens, at) = buckets
            .per_client
            .get(&client)
            .copied()
            .unwrap_or((BURST, now));
        let tokens =
            (tokens + now.duration_since(at).as_secs_f64() / REFILL.as_secs_f64()).min(BURST);
        if tokens < 1.0 || global < 1.0 {
            buckets.per_client.insert(client, (tokens, now));
            buckets.global = (global, now);
            return Err(Failure::TooManyAttempts);
        }
        buckets.per_client.insert(client, (tokens - 1.0, now));
        buckets.global = (global - 1.0, now);
        Ok(())
    }

    /// Forgets clients whose bucket is full again.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(buckets) => buckets,
            Err(poisoned) => poisoned.into_inner(),
        };
        let full_after = REFILL.mul_f64(BURST);
        buckets
            .per_client
            .retain(|_, (_, at)| now.duration_since(*at) < full_after);
    }
}

/// The client address of a request: the TCP peer, or, when the peer is one of the
/// `trusted` proxies (the ingress in front of the console), the address that proxy says it
/// forwarded for: the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
/// Entries further left are the client's own claims and are never believed.
pub fn client_address(
    info: &ConnectInfo<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = info.0.ip();
    if !trusted.iter().any(|proxy| proxy.contains(&peer)) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .map(|entry| entry.parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded
        .into_iter()
        .rev()
        .find(|address| !trusted.iter().any(|proxy| proxy.contains(address)))
        .unwrap_or(peer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_a_burst_then_is_refused() {
        let limiter = SignInLimiter::new();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            limiter.attempt(client).unwrap();
        }
        assert!(matches!(
            limiter.attempt(client),
            Err(Failure::TooManyAttempts)
        ));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        limiter.attempt(other).unwrap();
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.1.2.3".parse().unwrap(),
        );
        let from_ingress = ConnectInfo(SocketAddr::from(([10, 0, 0, 5], 443)));
        assert_eq!(
            client_address(&from_ingress, &headers, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the right-most untrusted entry"
        );
        let direct = ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 443)));
        assert_eq!(
            client_address(&direct, &headers, &trusted),
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "a client that is not a proxy cannot name another address"
        );
        assert_eq!(
            client_address(&from_ingress, &HeaderMap::new(), &trusted),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        let mut garbled = HeaderMap::new();
        garbled.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(
            client_address(&from_ingress, &garbled, &trusted),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(&from_ingress, &headers, &[]),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_policy_allows_no_inline_script_nor_framing() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
    }
}
