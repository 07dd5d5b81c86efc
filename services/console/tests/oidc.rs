//! OpenID Connect sign-in against a real provider: the certified `oidc-provider` package run
//! by Node (`tests/oidc/provider.mjs`), started by each test on a free port, and a console
//! started with `tryggdel_console::start` that signs in with it. A client that keeps cookies
//! (per host and port, by hand) plays the browser and follows the redirects, so each scenario
//! can tamper with what a browser would carry: sign-in and sign-out, a wrong `state`, a
//! replayed code, a wrong `nonce`, and an expired session.
//!
//! The services are not started: the console needs only the provider, and its backend points
//! at closed ports. The signed-in user is an administrator, whose start page the console draws
//! without calling a service.
//!
//! Without Node or the provider's `node_modules` the suite says plainly that it did not run and
//! how to run it, and passes; under `TRYGGDEL_REQUIRE_BROWSER=1` (CI) it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{StatusCode, Url};
use tokio::io::AsyncBufReadExt as _;
use tryggdel_auth::ClaimNames;
use tryggdel_console::sign_in::{LOGIN_COOKIE, OidcSettings, TokenToForward};
use tryggdel_console::{RunningConsole, SessionSettings, Settings, SignInSettings};
use tryggdel_domain::{DEVELOPMENT_DIRECTORY, Directory, LegalRegistry};
use tryggdel_merkle::checkpoint::CheckpointSigner;
use tryggdel_service_kit::{DEFAULT_MIN_REFRESH_INTERVAL, KeySource, TokenSettings};
use tryggdel_test_support::{TestIdentity, log_signing_key};

const CLIENT_ID: &str = "tryggdel-console";
const CLIENT_SECRET: &str = "the console's client secret at the test provider";
/// The resource indicator of the services, and the audience their tokens carry.
const RESOURCE: &str = "urn:tryggdel:services";
const AUDIENCE: &str = "tryggdel-oidc-test";
/// The scope of the services' resource server (access tokens for it are JWTs).
const SCOPE: &str = "tryggdel";
const SESSION_COOKIE: &str = "__Host-tryggdel-session";
const DISPLAY_NAME: &str = "Astrid Förvaltare";

const HOW_TO_RUN: &str = "install Node 20 or later, run `npm ci --prefix services/console/tests/oidc`, \
     then `cargo test -p tryggdel-console --test oidc` (scripts/test.sh does the npm step)";

/// Writes a line the test command's log shows even when the test passes.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn provider_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Why the suite cannot run here, if it cannot.
fn missing() -> Option<String> {
    let version = match std::process::Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => return Some("no `node` on the PATH".to_owned()),
    };
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok());
    if major.is_none_or(|major| major < 20) {
        return Some(format!("Node {version} is older than 20"));
    }
    let package = provider_directory().join("node_modules/oidc-provider/package.json");
    if !package.is_file() {
        return Some(format!("{} is not installed", package.display()));
    }
    None
}

/// Whether the suite can run; when it cannot, fails under `TRYGGDEL_REQUIRE_BROWSER=1` and
/// otherwise says so.
fn can_run() -> bool {
    let Some(why) = missing() else {
        return true;
    };
    let required = std::env::var("TRYGGDEL_REQUIRE_BROWSER").as_deref() == Ok("1");
    assert!(
        !required,
        "TRYGGDEL_REQUIRE_BROWSER=1 but the OpenID Connect suite cannot run: {why}; to run it: {HOW_TO_RUN}"
    );
    say(&format!(
        "OpenID Connect suite did NOT run: {why}; to run it: {HOW_TO_RUN}"
    ));
    false
}

/// The provider process; it exits when its standard input closes, and is killed when dropped.
struct Provider {
    issuer: String,
    _process: tokio::process::Child,
}

impl Provider {
    /// Starts the provider with one client whose redirect URI is `redirect_uri`.
    async fn start(redirect_uri: &str) -> Provider {
        let settings = serde_json::json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [redirect_uri],
            "resource": RESOURCE,
            "audience": AUDIENCE,
            "scope": SCOPE,
            // The identity under HSA-like claim names, mapped back with ClaimNames below.
            "account": {
                "id": "SE2321000016-A1B2",
                "employeeHsaId": "SE2321000016-A1B2",
                "organisationCode": "bollnas-kommun",
                "healthCareUnitName": "Individ- och familjeomsorgen",
                "systemRole": "admin",
                "displayName": DISPLAY_NAME,
            },
        });
        let mut process = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .arg(settings.to_string())
            .current_dir(provider_directory())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("starting node provider.mjs");
        let stdout = process.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider did not start within 30 s")
            .unwrap()
            .expect("the provider ended before it listened");
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
        // What the provider prints later (its notices) is passed on, so its pipe stays open.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("provider: {line}");
            }
        });
        Provider {
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            _process: process,
        }
    }
}

/// What the console logs while a test runs (warnings and above), to check why a sign-in
/// failed and that no token or code is ever logged. The tests run on one thread, the
/// console's tasks with them, so a thread's default subscriber sees them all.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Asserts the log says a sign-in failed because of `reason`, and holds nothing of
    /// `secrets` nor any JWT.
    fn assert_failed_because(&self, reason: &str, secrets: &[&str]) {
        let text = self.text();
        assert!(
            text.lines()
                .any(|line| line.contains("sign-in failed") && line.contains(reason)),
            "expected a failed sign-in because {reason:?}, the log says:\n{text}"
        );
        for secret in secrets {
            assert!(!text.contains(secret), "the log holds a secret: {text}");
        }
        assert!(!text.contains("eyJ"), "the log holds a token: {text}");
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// A free port nothing listens on (the services this console would call).
fn closed_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The console's settings, signing in with OpenID Connect at `issuer`.
fn settings(identity: &TestIdentity, origin: &str, issuer: &str, idle: Duration) -> Settings {
    let registry = Arc::new(LegalRegistry::embedded().unwrap());
    let directory = Arc::new(Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry).unwrap());
    let certificate = identity.service_certificate("console");
    let log_key = CheckpointSigner::new(log_signing_key(), "tryggdel.test/audit")
        .unwrap()
        .verifier()
        .to_vkey_string();
    Settings {
        public_origin: origin.to_owned(),
        cert_chain_pem: certificate.cert_pem,
        key_pem: certificate.key_pem,
        disclosure: identity.endpoint("console", closed_address()),
        audit: identity.endpoint("console", closed_address()),
        notification: identity.endpoint("console", closed_address()),
        sign_in: SignInSettings::OpenIdConnect(OidcSettings {
            issuer: issuer.to_owned(),
            client_id: CLIENT_ID.to_owned(),
            client_secret: Some(CLIENT_SECRET.to_owned()),
            scopes: vec!["openid".to_owned(), SCOPE.to_owned()],
            extra_ca_pem: None,
            token: TokenToForward::AccessToken,
            verifier: TokenSettings {
                issuer: issuer.to_owned(),
                audience: AUDIENCE.to_owned(),
                // oidc-provider publishes its keys at /jwks (its discovery says so too).
                keys: KeySource::JwksUrl(Url::parse(&format!("{issuer}/jwks")).unwrap()),
                claims: ClaimNames {
                    user_id: "employeeHsaId".to_owned(),
                    organisation: "organisationCode".to_owned(),
                    unit: "healthCareUnitName".to_owned(),
                    roles: "systemRole".to_owned(),
                    region: "policeRegion".to_owned(),
                    name: "displayName".to_owned(),
                },
                leeway_seconds: 30,
                min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            },
        }),
        sessions: SessionSettings {
            idle,
            absolute: Duration::from_secs(3600),
        },
        registry,
        directory,
        audit_log_vkey: log_key,
        development: false,
        trusted_proxies: Vec::new(),
    }
}

/// A console signing in at a provider of its own, and a browser.
struct Harness {
    origin: String,
    browser: Browser,
    console: RunningConsole,
    _provider: Provider,
}

impl Harness {
    async fn start(idle: Duration) -> Harness {
        let identity = TestIdentity::generate();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("https://{}", listener.local_addr().unwrap());
        let provider = Provider::start(&format!("{origin}/logga-in/callback")).await;
        let console = tryggdel_console::start(
            settings(&identity, &origin, &provider.issuer, idle),
            listener,
        )
        .await
        .unwrap();
        Harness {
            browser: Browser::new(identity.ca.cert_pem()),
            origin,
            console,
            _provider: provider,
        }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.origin)).unwrap()
    }

    /// `GET /logga-in/oidc`: the provider's authorization URL the console sends the browser to.
    async fn begin(&mut self) -> Url {
        let response = self.browser.get(self.url("/logga-in/oidc")).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
        let login = response.set_cookie(LOGIN_COOKIE).expect("a login cookie");
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=600",
        ] {
            assert!(login.contains(attribute), "{login}");
        }
        response.location.expect("a redirect to the provider")
    }

    /// Follows the provider from `authorization` until it sends the browser back to the
    /// console: the callback URL, not yet opened.
    async fn through_provider(&mut self, authorization: Url) -> Url {
        let callback = self.url("/logga-in/callback");
        let mut url = authorization;
        for _ in 0..10 {
            let response = self.browser.get(url.clone()).await;
            let next = response.location.unwrap_or_else(|| {
                panic!(
                    "the provider answered {} at {url}: {}",
                    response.status, response.body
                )
            });
            if next.as_str().starts_with(callback.as_str()) {
                return next;
            }
            url = next;
        }
        panic!("the provider did not send the browser back within 10 redirects");
    }

    /// A whole sign-in up to the provider's answer: the callback URL.
    async fn at_callback(&mut self) -> Url {
        let authorization = self.begin().await;
        self.through_provider(authorization).await
    }

    /// `GET /`, as the signed-in (or not) browser.
    async fn home(&mut self) -> Answer {
        self.browser.get(self.url("/")).await
    }

    async fn stop(self) {
        self.console.stop().await.unwrap();
    }
}

/// What the browser got back.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    location: Option<Url>,
    set_cookies: Vec<String>,
    body: String,
}

impl Answer {
    /// The `Set-Cookie` line for cookie `name`, if the answer set it.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|line| line.starts_with(&format!("{name}=")))
    }

    /// Whether the answer gave the browser a new session (a non-empty session cookie).
    fn starts_a_session(&self) -> bool {
        self.set_cookie(SESSION_COOKIE)
            .is_some_and(|line| !line.starts_with(&format!("{SESSION_COOKIE}=;")))
    }

    fn assert_sign_in_failed(&self) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.body);
        assert!(
            self.body.contains("Inloggningen misslyckades"),
            "{}",
            self.body
        );
        assert!(self.body.contains("Logga in igen"), "{}", self.body);
        assert!(!self.starts_a_session(), "{:?}", self.set_cookies);
    }
}

/// An HTTP client that keeps cookies per host and port and follows no redirect by itself.
struct Browser {
    client: reqwest::Client,
    cookies: HashMap<String, HashMap<String, String>>,
}

impl Browser {
    /// Trusts `ca_pem` (the console's certificate); the provider is plain http on loopback.
    fn new(ca_pem: &str) -> Browser {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in tryggdel_tls::parse_certificates(ca_pem, "test CA").unwrap() {
            roots.add(certificate).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Browser {
            client: reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn jar(&mut self, url: &Url) -> &mut HashMap<String, String> {
        let site = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        self.cookies.entry(site).or_default()
    }

    /// The browser's cookie `name` for `url`'s host and port.
    fn cookie(&mut self, url: &Url, name: &str) -> Option<String> {
        self.jar(url).get(name).cloned()
    }

    fn set(&mut self, url: &Url, name: &str, value: &str) {
        self.jar(url).insert(name.to_owned(), value.to_owned());
    }

    async fn get(&mut self, url: Url) -> Answer {
        let request = self.client.get(url.clone());
        self.send(url, request).await
    }

    /// A form post from the console's own page (same-origin `Origin`).
    async fn post(&mut self, url: Url, form: &str) -> Answer {
        let origin = url.origin().ascii_serialization();
        let request = self
            .client
            .post(url.clone())
            .header(reqwest::header::ORIGIN, origin)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.to_owned());
        self.send(url, request).await
    }

    async fn send(&mut self, url: Url, request: reqwest::RequestBuilder) -> Answer {
        let cookies: Vec<String> = self
            .jar(&url)
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let request = if cookies.is_empty() {
            request
        } else {
            request.header(reqwest::header::COOKIE, cookies.join("; "))
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|value| url.join(value.to_str().unwrap()).unwrap());
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect();
        for line in &set_cookies {
            let pair = line.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let removed = value.is_empty() || line.contains("Max-Age=0");
            let jar = self.jar(&url);
            if removed {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let body = response.text().await.unwrap();
        Answer {
            status,
            location,
            set_cookies,
            body,
        }
    }
}

/// `url` with query parameter `name` set to `value`.
fn with_parameter(url: &Url, name: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(key, old)| {
            let value = if key == name {
                value.to_owned()
            } else {
                old.into_owned()
            };
            (key.into_owned(), value)
        })
        .collect();
    let mut changed = url.clone();
    changed.query_pairs_mut().clear().extend_pairs(pairs);
    changed
}

fn parameter(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {name}"))
}

/// The CSRF token of the page in `body`.
fn csrf(body: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("a CSRF field") + marker.len();
    let end = start + body[start..].find('"').unwrap();
    body[start..end].to_owned()
}

#[tokio::test]
async fn signing_in_starts_a_server_side_session_with_the_mapped_identity_and_signing_out_ends_it()
{
    if !can_run() {
        return;
    }
    let mut harness = Harness::start(Duration::from_secs(600)).await;
    let page = harness.browser.get(harness.url("/logga-in")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Logga in via 127.0.0.1"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/logga-in/oidc\""),
        "{}",
        page.body
    );

    let authorization = harness.begin().await;
    for (name, expected) in [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("code_challenge_method", "S256"),
    ] {
        assert_eq!(parameter(&authorization, name), expected, "{authorization}");
    }
    for name in ["state", "nonce", "code_challenge"] {
        assert!(
            parameter(&authorization, name).len() >= 22,
            "{authorization}"
        );
    }
    let scope = parameter(&authorization, "scope");
    assert!(scope.split(' ').any(|scope| scope == "openid"), "{scope}");
    assert!(scope.split(' ').any(|scope| scope == SCOPE), "{scope}");
    let callback = harness.through_provider(authorization).await;

    let answer = harness.browser.get(callback).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // The page moves on to / by itself: a redirect would lose the SameSite=Strict cookie.
    assert!(
        answer
            .body
            .contains(r#"http-equiv="refresh" content="0;url=/""#),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("Fortsätt"), "{}", answer.body);
    let session = answer.set_cookie(SESSION_COOKIE).expect("a session cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    assert!(
        answer
            .set_cookie(LOGIN_COOKIE)
            .is_some_and(|line| line.contains("Max-Age=0")),
        "the pending sign-in's cookie is removed: {:?}",
        answer.set_cookies
    );

    // The session holds the identity from the access token, under the mapped claim names.
    let home = harness.home().await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("Välkommen"), "{}", home.body);
    assert!(home.body.contains(DISPLAY_NAME), "{}", home.body);
    assert!(home.body.contains("Administratör"), "{}", home.body);
    assert!(home.body.contains("Bollnäs kommun"), "{}", home.body);

    // Sign-out ends the session on the server: the old cookie, sent again, is worthless.
    let console_url = harness.url("/");
    let old = harness
        .browser
        .cookie(&console_url, SESSION_COOKIE)
        .unwrap();
    let out = harness
        .browser
        .post(
            harness.url("/logga-ut"),
            &format!("csrf={}", csrf(&home.body)),
        )
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert!(out.body.contains("Du är utloggad"), "{}", out.body);
    harness.browser.set(&console_url, SESSION_COOKIE, &old);
    let after = harness.home().await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location.unwrap().path(), "/logga-in");
    harness.stop().await;
}

#[tokio::test]
async fn a_callback_with_a_wrong_state_fails_and_uses_up_the_pending_sign_in() {
    if !can_run() {
        return;
    }
    let (logs, _logging) = Logs::capture();
    let mut harness = Harness::start(Duration::from_secs(600)).await;
    let callback = harness.at_callback().await;
    let login = harness.browser.cookie(&callback, LOGIN_COOKIE).unwrap();
    let code = parameter(&callback, "code");

    let tampered = with_parameter(&callback, "state", "a-state-of-another-sign-in");
    harness.browser.get(tampered).await.assert_sign_in_failed();
    logs.assert_failed_because("the state does not match", &[&code, &login]);
    let home = harness.home().await;
    assert_eq!(
        home.status,
        StatusCode::SEE_OTHER,
        "no session: {}",
        home.body
    );

    // The pending sign-in was taken by the failed attempt: the genuine answer, with the same
    // login cookie, now fails too.
    harness.browser.set(&callback, LOGIN_COOKIE, &login);
    harness.browser.get(callback).await.assert_sign_in_failed();
    logs.assert_failed_because("no pending sign-in", &[&code, &login]);
    assert_eq!(harness.home().await.status, StatusCode::SEE_OTHER);
    harness.stop().await;
}

#[tokio::test]
async fn a_replayed_code_fails_both_as_a_repeated_callback_and_at_the_provider() {
    if !can_run() {
        return;
    }
    let (logs, _logging) = Logs::capture();
    let mut harness = Harness::start(Duration::from_secs(600)).await;
    let callback = harness.at_callback().await;
    let login = harness.browser.cookie(&callback, LOGIN_COOKIE).unwrap();
    let code = parameter(&callback, "code");
    let answer = harness.browser.get(callback.clone()).await;
    assert!(answer.starts_a_session(), "{}", answer.body);

    // The same callback again, with the same login cookie: the pending sign-in is gone.
    harness.browser.set(&callback, LOGIN_COOKIE, &login);
    harness
        .browser
        .get(callback.clone())
        .await
        .assert_sign_in_failed();
    logs.assert_failed_because("no pending sign-in", &[&code, &login]);

    // The used code delivered to a fresh pending sign-in, with that sign-in's own state: the
    // provider refuses the code (it was redeemed, and it was not issued for this PKCE
    // verifier), so no session starts.
    harness.browser.cookies.clear();
    let fresh = harness.begin().await;
    let replayed = with_parameter(&callback, "state", &parameter(&fresh, "state"));
    harness.browser.get(replayed).await.assert_sign_in_failed();
    logs.assert_failed_because("the provider refused: invalid_grant", &[&code, &login]);
    assert_eq!(harness.home().await.status, StatusCode::SEE_OTHER);
    harness.stop().await;
}

#[tokio::test]
async fn an_id_token_with_another_nonce_fails() {
    if !can_run() {
        return;
    }
    let (logs, _logging) = Logs::capture();
    let mut harness = Harness::start(Duration::from_secs(600)).await;
    // The authorization request reaches the provider with a nonce other than the one the
    // console keeps for this sign-in, so the provider's ID token names that other nonce;
    // state and PKCE are untouched, so the code exchange itself succeeds.
    let authorization = harness.begin().await;
    let other_nonce = with_parameter(&authorization, "nonce", "a-nonce-of-another-sign-in");
    let callback = harness.through_provider(other_nonce).await;
    assert_eq!(
        parameter(&callback, "state"),
        parameter(&authorization, "state")
    );
    let code = parameter(&callback, "code");
    harness.browser.get(callback).await.assert_sign_in_failed();
    logs.assert_failed_because("the ID token was refused: Invalid nonce", &[&code]);
    assert_eq!(harness.home().await.status, StatusCode::SEE_OTHER);
    harness.stop().await;
}

#[tokio::test]
async fn a_session_idle_for_longer_than_the_idle_timeout_has_expired() {
    if !can_run() {
        return;
    }
    let idle = Duration::from_secs(1);
    let mut harness = Harness::start(idle).await;
    let callback = harness.at_callback().await;
    assert!(harness.browser.get(callback).await.starts_a_session());
    assert_eq!(harness.home().await.status, StatusCode::OK);

    tokio::time::sleep(idle + Duration::from_millis(500)).await;
    let expired = harness.home().await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "{}", expired.body);
    assert!(
        expired.body.contains("Sessionen har gått ut"),
        "{}",
        expired.body
    );
    // Ended on the server: the next request is simply signed out.
    assert_eq!(harness.home().await.status, StatusCode::SEE_OTHER);
    harness.stop().await;
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_at_start_is_an_error_naming_the_issuer() {
    tryggdel_tls::install_crypto_provider();
    let identity = TestIdentity::generate();
    let issuer = format!("http://{}", closed_address());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("https://{}", listener.local_addr().unwrap());
    let error = tryggdel_console::start(
        settings(&identity, &origin, &issuer, Duration::from_secs(600)),
        listener,
    )
    .await
    .err()
    .expect("the console does not start without its provider");
    let error = format!("{error:#}");
    assert!(error.contains(&issuer), "{error}");
}
