//! Sessions kept on the server. The browser holds only the session id, in a `__Host-` cookie
//! that is HttpOnly, Secure and SameSite=Strict; the user's token and CSRF token stay here.
//!
//! A session ends at sign-out, after [`SessionSettings::idle`] without a request, after
//! [`SessionSettings::absolute`] from sign-in, or when the user's token expires, whichever
//! comes first. Sessions are found by the SHA-256 of their id, so the store holds no usable
//! cookie value. A session that timed out is remembered (by that hash alone, for
//! [`SessionSettings::absolute`]) after the periodic sweep dropped it, so its user is told it
//! expired rather than sent to sign in without a word.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tryggdel_auth::{Principal, Role};

use crate::Shared;
use crate::pages::Failure;

/// The session cookie's name. `__Host-`: the browser keeps it only if Secure, Path=/ and
/// without Domain, so no other host or path can set or read it.
pub const SESSION_COOKIE: &str = "__Host-tryggdel-session";

/// How long sessions last.
#[derive(Clone, Copy, Debug)]
pub struct SessionSettings {
    /// Without a request for this long, the session ends (default 15 minutes).
    pub idle: Duration,
    /// From sign-in, the session ends after this long whatever happens (default 8 hours).
    pub absolute: Duration,
}

impl Default for SessionSettings {
    fn default() -> SessionSettings {
        SessionSettings {
            idle: Duration::from_secs(15 * 60),
            absolute: Duration::from_secs(8 * 60 * 60),
        }
    }
}

/// Who is signed in, and the token the services are called with.
#[derive(Clone)]
pub struct SignedInUser {
    pub principal: Principal,
    /// The bearer token forwarded to the services. Never sent to the browser.
    pub token: String,
    /// The token's `exp` (Unix seconds): the session ends then.
    pub token_expires_at: i64,
}

impl std::fmt::Debug for SignedInUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedInUser")
            .field("user", &self.principal.user_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl SignedInUser {
    pub fn has(&self, role: Role) -> bool {
        self.principal.has_role(role)
    }
}

/// A live session as a request sees it.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: SignedInUser,
    pub csrf: String,
}

impl Session {
    /// Whether `offered` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, offered: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), offered.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Refuses a state-changing request whose form did not carry the CSRF token.
    pub fn check_csrf(&self, offered: &str) -> Result<(), Failure> {
        if self.csrf_matches(offered) {
            Ok(())
        } else {
            Err(Failure::Forged)
        }
    }
}

struct Stored {
    session: Session,
    signed_in_at: Instant,
    last_seen: Instant,
}

/// Why a request has no session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie, or one the store does not know.
    SignedOut,
    /// The session timed out (idle, absolute, or its token expired) and was ended.
    Expired,
}

/// The sessions of this console instance.
pub struct SessionStore {
    settings: SessionSettings,
    sessions: Mutex<Sessions>,
}

#[derive(Default)]
struct Sessions {
    live: HashMap<[u8; 32], Stored>,
    /// Sessions the sweep found timed out, with when: their next request is told so once.
    timed_out: HashMap<[u8; 32], Instant>,
}

/// A fresh random identifier: 256 bits, base64url.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl SessionStore {
    pub fn new(settings: SessionSettings) -> SessionStore {
        SessionStore {
            settings,
            sessions: Mutex::new(Sessions::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        match self.sessions.lock() {
            Ok(sessions) => sessions,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Starts a session for `user` under a new id (never one the browser offered), ending
    /// `previous` if there was one. Returns the new id for the cookie.
    pub fn start(&self, user: SignedInUser, previous: Option<&str>) -> String {
        let id = random_id();
        let now = Instant::now();
        let mut sessions = self.lock();
        if let Some(previous) = previous {
            sessions.live.remove(&key(previous));
        }
        sessions.live.insert(
            key(&id),
            Stored {
                session: Session {
                    user,
                    csrf: random_id(),
                },
                signed_in_at: now,
                last_seen: now,
            },
        );
        id
    }

    /// Whether `stored` has timed out (idle, absolute, or its token expired).
    fn has_timed_out(&self, stored: &Stored, now: Instant, unix_now: i64) -> bool {
        now.duration_since(stored.last_seen) > self.settings.idle
            || now.duration_since(stored.signed_in_at) > self.settings.absolute
            || stored.session.user.token_expires_at <= unix_now
    }

    /// The session behind `id`, touched; an expired one is ended (and said to be expired
    /// once, also when the sweep ended it first).
    pub fn find(&self, id: &str) -> Result<Session, NoSession> {
        let now = Instant::now();
        let key = key(id);
        let mut guard = self.lock();
        let sessions = &mut *guard;
        let Some(stored) = sessions.live.get_mut(&key) else {
            return match sessions.timed_out.remove(&key) {
                Some(_) => Err(NoSession::Expired),
                None => Err(NoSession::SignedOut),
            };
        };
        if self.has_timed_out(stored, now, unix_now()) {
            sessions.live.remove(&key);
            return Err(NoSession::Expired);
        }
        stored.last_seen = now;
        Ok(stored.session.clone())
    }

    /// Ends the session behind `id` (sign-out).
    pub fn end(&self, id: &str) {
        let key = key(id);
        let mut sessions = self.lock();
        sessions.live.remove(&key);
        sessions.timed_out.remove(&key);
    }

    /// Drops every session that has timed out, remembering which for
    /// [`SessionSettings::absolute`], and forgets those remembered longer.
    pub fn sweep(&self) {
        let now = Instant::now();
        let unix = unix_now();
        let mut sessions = self.lock();
        let Sessions { live, timed_out } = &mut *sessions;
        live.retain(|key, stored| {
            let ended = self.has_timed_out(stored, now, unix);
            if ended {
                timed_out.insert(*key, now);
            }
            !ended
        });
        timed_out.retain(|_, since| now.duration_since(*since) <= self.settings.absolute);
    }

    /// For tests: makes the session behind `id` look idle for longer than the idle timeout.
    #[cfg(test)]
    pub fn age(&self, id: &str, by: Duration) {
        if let Some(stored) = self.lock().live.get_mut(&key(id)) {
            stored.last_seen = stored.last_seen.checked_sub(by).unwrap_or(stored.last_seen);
        }
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for the session id: `__Host-`, HttpOnly, Secure, SameSite=Strict, Path=/.
/// No Max-Age: the cookie ends with the browser; the server ends the session sooner.
pub fn session_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("__Host-tryggdel-session=; Path=/; Secure"))
}

/// `Set-Cookie` that removes cookie `name`.
pub fn removal_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("__Host-tryggdel-session=; Path=/; Max-Age=0"))
}

/// The extractor for pages that need a signed-in user: without a live session the request
/// gets the sign-in page (or the "session expired" page).
impl<S> FromRequestParts<S> for Session
where
    Shared: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Session, Failure> {
        let console = Shared::from_ref(state);
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or(Failure::SignedOut)?;
        console.sessions.find(id).map_err(|why| match why {
            NoSession::SignedOut => Failure::SignedOut,
            NoSession::Expired => Failure::Expired,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn user(expires_in: i64) -> SignedInUser {
        SignedInUser {
            principal: Principal {
                user_id: "handlaggare-bollnas".into(),
                organisation: "bollnas-kommun".into(),
                unit: None,
                roles: vec![Role::Caseworker],
                police_region: None,
                display_name: None,
                token_id: "t".into(),
            },
            token: "token".into(),
            token_expires_at: unix_now() + expires_in,
        }
    }

    #[test]
    fn a_session_is_found_by_its_id_and_ends_at_sign_out() {
        let store = SessionStore::new(SessionSettings::default());
        let id = store.start(user(3600), None);
        assert_eq!(
            store.find(&id).unwrap().user.principal.user_id,
            "handlaggare-bollnas"
        );
        assert_eq!(store.find("other").unwrap_err(), NoSession::SignedOut);
        store.end(&id);
        assert_eq!(store.find(&id).unwrap_err(), NoSession::SignedOut);
    }

    #[test]
    fn signing_in_again_gives_a_new_id_and_ends_the_old_session() {
        let store = SessionStore::new(SessionSettings::default());
        let first = store.start(user(3600), None);
        let second = store.start(user(3600), Some(&first));
        assert_ne!(first, second);
        assert_eq!(store.find(&first).unwrap_err(), NoSession::SignedOut);
        assert!(store.find(&second).is_ok());
    }

    #[test]
    fn idle_absolute_and_token_expiry_end_a_session() {
        let store = SessionStore::new(SessionSettings {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(3600),
        });
        let id = store.start(user(3600), None);
        store.age(&id, Duration::from_secs(61));
        assert_eq!(store.find(&id).unwrap_err(), NoSession::Expired);
        assert_eq!(store.find(&id).unwrap_err(), NoSession::SignedOut);

        let short = SessionStore::new(SessionSettings {
            idle: Duration::from_secs(3600),
            absolute: Duration::from_millis(1),
        });
        let id = short.start(user(3600), None);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.find(&id).unwrap_err(), NoSession::Expired);

        let id = store.start(user(-1), None);
        assert_eq!(store.find(&id).unwrap_err(), NoSession::Expired);
    }

    #[test]
    fn a_session_the_sweep_ended_is_still_said_to_have_expired_once() {
        let store = SessionStore::new(SessionSettings {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(3600),
        });
        let idle = store.start(user(3600), None);
        let active = store.start(user(3600), None);
        let signed_out = store.start(user(3600), None);
        store.age(&idle, Duration::from_secs(61));
        store.age(&signed_out, Duration::from_secs(61));
        store.end(&signed_out);
        store.sweep();
        assert_eq!(store.find(&idle).unwrap_err(), NoSession::Expired);
        assert_eq!(store.find(&idle).unwrap_err(), NoSession::SignedOut);
        assert_eq!(store.find(&signed_out).unwrap_err(), NoSession::SignedOut);
        assert!(store.find(&active).is_ok());
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let store = SessionStore::new(SessionSettings::default());
        let id = store.start(user(3600), None);
        let session = store.find(&id).unwrap();
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&format!("{}x", session.csrf)));
    }

    #[test]
    fn cookies_are_read_by_exact_name_and_set_with_every_attribute() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; __Host-tryggdel-session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "__Host-tryggdel"), None);
        let set = session_cookie("abc");
        let set = set.to_str().unwrap();
        for attribute in ["__Host-", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(!set.contains("Domain"));
    }
}
