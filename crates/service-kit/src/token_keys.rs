//! The identity provider's keys as a service holds them: a [`TokenVerifier`] and where its keys
//! come from ([`KeySource`]): fixed, a JWK Set file, or a JWK Set URL.
//!
//! A token naming a `kid` the verifier does not know makes [`TokenKeys::verify`] read the
//! source again — once: callers that meet unknown keys at the same time wait for the same
//! read, and a read happens at most once per [`TokenSettings::min_refresh_interval`], so a
//! stream of made-up `kid`s cannot make the service hammer its identity provider. A key that
//! is still unknown after the read is refused. A failed read keeps the keys in use; the first
//! failure of a run is logged as a warning, the ones after it quietly, and never with anything
//! of the token.
//!
//! Keys also age: a call that finds them older than [`MAX_KEY_AGE`] reads the source again
//! (one caller, the others go on with the keys in use), so a key the identity provider has
//! withdrawn stops being trusted within that time even if no token names a new key.
//!
//! URLs: `https` only, except `http` to a loopback host (a local identity provider); no
//! credentials in the URL; redirects are not followed; 5 s to answer; at most 1 MiB.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tryggdel_auth::{AuthError, ClaimNames, KeySet, Principal, TokenVerifier, VerifierConfig};

pub use reqwest::Url;

/// The least time between two reads of a key source, unless configured otherwise.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How old the keys read from a file or URL may get before a call reads them again.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(10 * 60);
/// The largest JWK Set document read, from a file or a URL.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// How long a JWK Set URL has to answer in full.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the identity provider's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// Keys given once (a configured public key, or tests); never read again.
    Fixed(KeySet),
    /// A JWK Set file, read again when a token names an unknown key.
    JwksFile(PathBuf),
    /// A JWK Set URL (the identity provider's `jwks_uri`), fetched again when a token names
    /// an unknown key.
    JwksUrl(Url),
}

impl KeySource {
    /// A JWK Set location as configured: an `https://` URL (or `http://` to a loopback host),
    /// otherwise a file path.
    pub fn jwks(location: &str) -> anyhow::Result<KeySource> {
        let lower = location.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            let url = Url::parse(location)
                .with_context(|| format!("the jwks location {location:?} is not a valid URL"))?;
            check_url(&url)?;
            return Ok(KeySource::JwksUrl(url));
        }
        if location.contains("://") {
            bail!("the jwks location {location:?} is neither an https URL nor a file path");
        }
        Ok(KeySource::JwksFile(PathBuf::from(location)))
    }

    /// Whether the keys can be read again.
    fn refreshes(&self) -> bool {
        !matches!(self, KeySource::Fixed(_))
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Fixed(keys) => write!(f, "{} configured keys", keys.len()),
            KeySource::JwksFile(path) => write!(f, "{}", path.display()),
            KeySource::JwksUrl(url) => write!(f, "{url}"),
        }
    }
}

/// What a service trusts tokens from, before any key is read.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// The only accepted `iss`.
    pub issuer: String,
    /// The only accepted `aud`.
    pub audience: String,
    /// Where the keys come from.
    pub keys: KeySource,
    /// Which claims hold the identity.
    pub claims: ClaimNames,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The least time between two reads of the key source
    /// ([`DEFAULT_MIN_REFRESH_INTERVAL`]).
    pub min_refresh_interval: Duration,
}

impl TokenSettings {
    /// Settings trusting exactly the keys of `config`, never read again.
    pub fn fixed(config: VerifierConfig) -> TokenSettings {
        TokenSettings {
            issuer: config.issuer,
            audience: config.audience,
            keys: KeySource::Fixed(config.keys),
            claims: config.claims,
            leeway_seconds: config.leeway_seconds,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
        }
    }
}

/// A token verifier whose keys are read again, rate-limited, when a token names an unknown
/// one.
pub struct TokenKeys {
    verifier: TokenVerifier,
    source: KeySource,
    client: Option<reqwest::Client>,
    min_refresh_interval: Duration,
    /// Counts the reads that succeeded: a caller that waited for a read another caller made
    /// sees it changed and verifies again without reading.
    generation: AtomicU64,
    refresh: tokio::sync::Mutex<Refresh>,
    /// When the keys in use were last read (or confirmed unchanged).
    read_at: std::sync::Mutex<Instant>,
    max_key_age: Duration,
}

/// The last read of the source, behind the lock that makes reads single-flight.
#[derive(Default)]
struct Refresh {
    last_attempt: Option<Instant>,
    failing: bool,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("source", &self.source.to_string())
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Reads the keys from their source and builds the verifier: a source that cannot be read
    /// now is an error naming it (a service does not start without its keys).
    pub async fn load(settings: &TokenSettings) -> anyhow::Result<TokenKeys> {
        let client = match &settings.keys {
            KeySource::JwksUrl(url) => {
                check_url(url)?;
                Some(http_client()?)
            }
            _ => None,
        };
        let keys = read_keys(&settings.keys, client.as_ref())
            .await
            .with_context(|| format!("reading the token keys from {}", settings.keys))?;
        let verifier = TokenVerifier::new(VerifierConfig {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            keys,
            claims: settings.claims.clone(),
            leeway_seconds: settings.leeway_seconds,
        })
        .context("token verifier")?;
        tracing::info!(
            source = %settings.keys,
            kids = ?verifier.keys().kids().collect::<Vec<_>>(),
            "token keys read"
        );
        Ok(TokenKeys {
            verifier,
            source: settings.keys.clone(),
            client,
            min_refresh_interval: settings.min_refresh_interval,
            generation: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(Refresh::default()),
            read_at: std::sync::Mutex::new(Instant::now()),
            max_key_age: MAX_KEY_AGE,
        })
    }

    /// The same, with keys read again once older than `max_key_age` (tests use a short one).
    pub fn with_max_key_age(mut self, max_key_age: Duration) -> TokenKeys {
        self.max_key_age = max_key_age;
        self
    }

    /// Trusts exactly the keys of `config`, never read again.
    pub fn fixed(config: VerifierConfig) -> Result<TokenKeys, AuthError> {
        let source = KeySource::Fixed(config.keys.clone());
        Ok(TokenKeys {
            verifier: TokenVerifier::new(config)?,
            source,
            client: None,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            generation: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(Refresh::default()),
            read_at: std::sync::Mutex::new(Instant::now()),
            max_key_age: MAX_KEY_AGE,
        })
    }

    /// The verifier, with the keys in use.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// Verifies `token`; if it names an unknown key, reads the source again (at most once per
    /// minimum interval, one read for all callers waiting) and verifies once more.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if self.source.refreshes() && self.keys_age() > self.max_key_age {
            self.refresh_aged().await;
        }
        let seen = self.generation.load(Ordering::Acquire);
        match self.verifier.verify(token) {
            Err(AuthError::UnknownKey) if self.source.refreshes() => {}
            result => return result,
        }
        if self.refresh_since(seen).await {
            self.verifier.verify(token)
        } else {
            Err(AuthError::UnknownKey)
        }
    }

    fn keys_age(&self) -> Duration {
        match self.read_at.lock() {
            Ok(read_at) => read_at.elapsed(),
            Err(poisoned) => poisoned.into_inner().elapsed(),
        }
    }

    /// Reads aged keys again: one caller does, while the others go on with the keys in use.
    async fn refresh_aged(&self) {
        let Ok(mut refresh) = self.refresh.try_lock() else {
            return;
        };
        let recently_tried = refresh
            .last_attempt
            .is_some_and(|last| last.elapsed() < self.min_refresh_interval);
        if self.keys_age() > self.max_key_age && !recently_tried {
            self.read_again(&mut refresh).await;
        }
    }

    /// Reads the source again, unless a read succeeded since generation `seen` (then the keys
    /// may already be new) or the last attempt is less than the minimum interval ago. Whether
    /// the keys may have changed since `seen`.
    async fn refresh_since(&self, seen: u64) -> bool {
        let mut refresh = self.refresh.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return true;
        }
        if refresh
            .last_attempt
            .is_some_and(|last| last.elapsed() < self.min_refresh_interval)
        {
            return false;
        }
        self.read_again(&mut refresh).await
    }

    /// Reads the source and puts its keys in use; whether that succeeded.
    async fn read_again(&self, refresh: &mut Refresh) -> bool {
        refresh.last_attempt = Some(Instant::now());
        match read_keys(&self.source, self.client.as_ref()).await {
            Ok(keys) => {
                match self.read_at.lock() {
                    Ok(mut read_at) => *read_at = Instant::now(),
                    Err(poisoned) => *poisoned.into_inner() = Instant::now(),
                }
                if refresh.failing {
                    tracing::info!(source = %self.source, "token keys read again after failing");
                    refresh.failing = false;
                }
                if *self.verifier.keys() != keys {
                    tracing::info!(
                        source = %self.source,
                        kids = ?keys.kids().collect::<Vec<_>>(),
                        "token keys replaced"
                    );
                    self.verifier.replace_keys(keys);
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
                true
            }
            Err(error) => {
                if refresh.failing {
                    tracing::debug!(source = %self.source, error = format!("{error:#}"), "reading the token keys failed again");
                } else {
                    tracing::warn!(
                        source = %self.source,
                        error = format!("{error:#}"),
                        "reading the token keys failed; the keys in use are kept"
                    );
                    refresh.failing = true;
                }
                false
            }
        }
    }
}

/// `https`, or `http` to a loopback host; no credentials.
fn check_url(url: &Url) -> anyhow::Result<()> {
    if !url.username().is_empty() || url.password().is_some() {
        bail!("the jwks URL must not carry credentials");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => bail!(
            "the jwks URL {url} must be https (http only to a loopback host such as 127.0.0.1)"
        ),
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// The client JWK Set URLs are fetched with: rustls with the process's (ring) provider and the
/// platform's roots, a deadline, no redirects.
fn http_client() -> anyhow::Result<reqwest::Client> {
    tryggdel_tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(JWKS_FETCH_TIMEOUT)
        .connect_timeout(JWKS_FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("http client for the jwks URL")
}

async fn read_keys(source: &KeySource, client: Option<&reqwest::Client>) -> anyhow::Result<KeySet> {
    let text = match source {
        KeySource::Fixed(keys) => return Ok(keys.clone()),
        KeySource::JwksFile(path) => read_file(path).await?,
        KeySource::JwksUrl(url) => {
            let client = client.context("no http client for the jwks URL")?;
            fetch(client, url).await?
        }
    };
    Ok(KeySet::from_jwks_json(&text)?)
}

async fn read_file(path: &Path) -> anyhow::Result<String> {
    let metadata = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    if metadata.len() > MAX_JWKS_BYTES as u64 {
        bail!("{} is larger than {MAX_JWKS_BYTES} bytes", path.display());
    }
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() > MAX_JWKS_BYTES {
        bail!("{} is larger than {MAX_JWKS_BYTES} bytes", path.display());
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))
}

async fn fetch(client: &reqwest::Client, url: &Url) -> anyhow::Result<String> {
    let mut response = client
        .get(url.clone())
        .header(
            reqwest::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("{url} answered {status}");
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
    {
        bail!("{url} answered more than {MAX_JWKS_BYTES} bytes");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("reading the answer of {url}"))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            bail!("{url} answered more than {MAX_JWKS_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).with_context(|| format!("the answer of {url} is not UTF-8"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;
    use tryggdel_auth::{SigningKeyPair, generate_ed25519_key_pair};

    use super::*;

    const ISSUER: &str = "https://idp.test.example";
    const AUDIENCE: &str = "tryggdel";

    /// An Ed25519 key the test identity provider signs with, named `kid`.
    struct Key {
        kid: &'static str,
        pair: SigningKeyPair,
    }

    impl Key {
        fn new(kid: &'static str) -> Key {
            Key {
                kid,
                pair: generate_ed25519_key_pair().unwrap(),
            }
        }

        fn jwk(&self) -> Value {
            use ed25519_dalek::pkcs8::DecodePublicKey as _;
            let key = ed25519_dalek::VerifyingKey::from_public_key_pem(&self.pair.public_key_pem)
                .unwrap();
            json!({
                "kty": "OKP", "crv": "Ed25519", "kid": self.kid, "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
            })
        }

        /// A valid token signed with this key.
        fn token(&self) -> String {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let claims = json!({
                "iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "exp": now + 600, "iat": now,
                "jti": uuid::Uuid::new_v4().to_string(), "org": "kommun-a",
                "roles": ["caseworker"],
            });
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.to_owned());
            let key = EncodingKey::from_ed_pem(self.pair.private_key_pem.as_bytes()).unwrap();
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        }
    }

    fn jwks(keys: &[&Key]) -> String {
        let keys: Vec<Value> = keys.iter().map(|key| key.jwk()).collect();
        json!({ "keys": keys }).to_string()
    }

    fn settings(keys: KeySource, min_refresh_interval: Duration) -> TokenSettings {
        TokenSettings {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            keys,
            claims: ClaimNames::default(),
            leeway_seconds: 5,
            min_refresh_interval,
        }
    }

    /// A local identity provider's JWK Set endpoint: answers every request with the current
    /// document (or a 500 while it is `None`) and counts the requests.
    struct JwksServer {
        url: Url,
        document: Arc<std::sync::Mutex<Option<String>>>,
        requests: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl JwksServer {
        async fn start(document: String) -> JwksServer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let shared = Arc::new(std::sync::Mutex::new(Some(document)));
            let requests = Arc::new(AtomicUsize::new(0));
            let (served, counted) = (shared.clone(), requests.clone());
            let task = tokio::spawn(async move {
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let document = served.lock().unwrap().clone();
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buffer = [0u8; 1024];
                        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                            match stream.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(read) => request.extend_from_slice(&buffer[..read]),
                            }
                        }
                        let (status, body) = match document {
                            Some(body) => ("200 OK", body),
                            None => ("500 Internal Server Error", String::new()),
                        };
                        let answer = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
            JwksServer {
                url: Url::parse(&format!("http://{address}/jwks.json")).unwrap(),
                document: shared,
                requests,
                task,
            }
        }

        fn publish(&self, document: Option<String>) {
            *self.document.lock().unwrap() = document;
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    impl Drop for JwksServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    #[tokio::test]
    async fn a_url_source_is_fetched_again_once_for_an_unknown_kid_and_then_refuses() {
        let first = Key::new("k1");
        let second = Key::new("k2");
        let server = JwksServer::start(jwks(&[&first])).await;
        let keys = TokenKeys::load(&settings(
            KeySource::JwksUrl(server.url.clone()),
            Duration::from_secs(1),
        ))
        .await
        .unwrap();
        assert_eq!(server.requests(), 1);
        assert!(keys.verify(&first.token()).await.is_ok());
        assert_eq!(server.requests(), 1, "a known kid reads nothing");

        // An unknown kid: one fetch, still unknown, refused.
        let stranger = Key::new("stranger");
        assert_eq!(
            keys.verify(&stranger.token()).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(server.requests(), 2);
        // Another unknown kid within the interval: refused without fetching.
        let other = Key::new("other-stranger");
        assert_eq!(
            keys.verify(&other.token()).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(server.requests(), 2);

        // The identity provider adds a key: within the interval it is not fetched yet …
        server.publish(Some(jwks(&[&first, &second])));
        assert_eq!(
            keys.verify(&second.token()).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(server.requests(), 2);
        // … after it, the unknown kid makes one fetch and verifies.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(keys.verify(&second.token()).await.is_ok());
        assert_eq!(server.requests(), 3);
        assert!(keys.verify(&first.token()).await.is_ok());
        assert_eq!(server.requests(), 3);
    }

    #[tokio::test]
    async fn callers_meeting_an_unknown_kid_at_once_share_one_fetch() {
        let first = Key::new("k1");
        let second = Key::new("k2");
        let server = JwksServer::start(jwks(&[&first])).await;
        let keys = Arc::new(
            TokenKeys::load(&settings(
                KeySource::JwksUrl(server.url.clone()),
                Duration::from_secs(60),
            ))
            .await
            .unwrap(),
        );
        server.publish(Some(jwks(&[&first, &second])));
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let keys = keys.clone();
                let token = second.token();
                tokio::spawn(async move { keys.verify(&token).await })
            })
            .collect();
        for call in calls {
            assert!(call.await.unwrap().is_ok());
        }
        assert_eq!(
            server.requests(),
            2,
            "one fetch at start, one for all eight"
        );
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_the_keys_in_use() {
        let first = Key::new("k1");
        let server = JwksServer::start(jwks(&[&first])).await;
        let keys = TokenKeys::load(&settings(
            KeySource::JwksUrl(server.url.clone()),
            Duration::ZERO,
        ))
        .await
        .unwrap();
        server.publish(None);
        assert_eq!(
            keys.verify(&Key::new("k2").token()).await,
            Err(AuthError::UnknownKey)
        );
        server.publish(Some("not a key set".into()));
        assert_eq!(
            keys.verify(&Key::new("k3").token()).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(server.requests(), 3);
        assert!(keys.verify(&first.token()).await.is_ok());
        assert_eq!(
            keys.verifier().keys().kids().collect::<Vec<_>>(),
            vec!["k1"]
        );
    }

    #[tokio::test]
    async fn a_url_that_cannot_be_fetched_at_start_is_an_error_naming_it() {
        let server = JwksServer::start(String::new()).await;
        server.publish(None);
        let url = server.url.clone();
        let error = TokenKeys::load(&settings(KeySource::JwksUrl(url.clone()), Duration::ZERO))
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains(url.as_str()), "{error:#}");

        // Nothing listens there any more.
        drop(server);
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = closed.local_addr().unwrap();
        drop(closed);
        let url = Url::parse(&format!("http://{address}/jwks")).unwrap();
        let error = TokenKeys::load(&settings(KeySource::JwksUrl(url.clone()), Duration::ZERO))
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains(url.as_str()), "{error:#}");
    }

    #[tokio::test]
    async fn a_file_source_rotates_keys_and_drops_removed_ones_even_remembered() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("jwks.json");
        let old = Key::new("2026-01");
        let new = Key::new("2026-02");
        std::fs::write(&path, jwks(&[&old])).unwrap();
        let keys = TokenKeys::load(&settings(KeySource::JwksFile(path.clone()), Duration::ZERO))
            .await
            .unwrap();
        let old_token = old.token();
        assert!(keys.verify(&old_token).await.is_ok());

        // Rotation: the new key is published beside the old one, and found by its kid.
        std::fs::write(&path, jwks(&[&old, &new])).unwrap();
        assert!(keys.verify(&new.token()).await.is_ok());
        assert!(keys.verify(&old_token).await.is_ok());

        // The old key is withdrawn: once the set is read again (a token naming another
        // unknown key makes it so), its tokens fail, also the one verified and remembered.
        std::fs::write(&path, jwks(&[&new])).unwrap();
        assert_eq!(
            keys.verify(&Key::new("unknown").token()).await,
            Err(AuthError::UnknownKey)
        );
        assert_eq!(keys.verify(&old_token).await, Err(AuthError::UnknownKey));
        assert!(keys.verify(&new.token()).await.is_ok());
    }

    #[tokio::test]
    async fn a_withdrawn_key_stops_being_trusted_once_the_keys_age() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("jwks.json");
        let (old, new) = (Key::new("2026-01"), Key::new("2026-02"));
        std::fs::write(&path, jwks(&[&old, &new])).unwrap();
        let keys = TokenKeys::load(&settings(KeySource::JwksFile(path.clone()), Duration::ZERO))
            .await
            .unwrap()
            .with_max_key_age(Duration::from_millis(50));
        let old_token = old.token();
        assert!(keys.verify(&old_token).await.is_ok());
        // The provider withdraws the old key; no token names an unknown one.
        std::fs::write(&path, jwks(&[&new])).unwrap();
        assert!(
            keys.verify(&old_token).await.is_ok(),
            "fresh keys are not read again"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(keys.verify(&old_token).await, Err(AuthError::UnknownKey));
        assert!(keys.verify(&new.token()).await.is_ok());
    }

    #[tokio::test]
    async fn fixed_keys_are_never_read_again() {
        let key = Key::new("k1");
        let keys = TokenKeys::fixed(VerifierConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            keys: KeySet::from_jwks_json(&jwks(&[&key])).unwrap(),
            claims: ClaimNames::default(),
            leeway_seconds: 5,
        })
        .unwrap();
        assert!(keys.verify(&key.token()).await.is_ok());
        assert_eq!(
            keys.verify(&Key::new("k2").token()).await,
            Err(AuthError::UnknownKey)
        );
    }

    #[tokio::test]
    async fn a_missing_or_oversized_file_is_an_error_naming_it() {
        let directory = tempfile::tempdir().unwrap();
        let missing = directory.path().join("missing.json");
        let error = TokenKeys::load(&settings(KeySource::JwksFile(missing), Duration::ZERO))
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("missing.json"), "{error:#}");
        let large = directory.path().join("large.json");
        std::fs::write(&large, " ".repeat(MAX_JWKS_BYTES + 1)).unwrap();
        let error = TokenKeys::load(&settings(KeySource::JwksFile(large), Duration::ZERO))
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("larger than"), "{error:#}");
    }

    #[test]
    fn jwks_locations_are_https_urls_loopback_http_or_paths() {
        for url in [
            "https://idp.example/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9000/jwks",
        ] {
            assert!(
                matches!(KeySource::jwks(url).unwrap(), KeySource::JwksUrl(_)),
                "{url}"
            );
        }
        assert_eq!(
            KeySource::jwks("/etc/tryggdel/jwks.json").unwrap(),
            KeySource::JwksFile("/etc/tryggdel/jwks.json".into())
        );
        for refused in [
            "http://idp.example/jwks",
            "http://10.0.0.1/jwks",
            "https://user:secret@idp.example/jwks",
            "ftp://idp.example/jwks",
            "https://",
        ] {
            assert!(KeySource::jwks(refused).is_err(), "{refused}");
        }
    }
}
