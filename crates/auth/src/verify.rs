//! Verifying tokens: header (`alg` allowed, `kid` known, the key's own algorithm), signature,
//! issuer, audience, times, then our claims.
//!
//! A token that verified is remembered (by the SHA-256 of its exact text, with its `exp` and
//! `nbf`), so the next call with the same token skips the signature check and claim parsing —
//! the largest cost of an authenticated call. Its times are checked again on every call with
//! the same leeway; a token outside them goes through the full check, which refuses it. What
//! is remembered belongs to one key set: [`TokenVerifier::replace_keys`] starts with an empty
//! memory, so a token of a key that left the set is checked in full (and refused) again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use crate::bearer::MAX_TOKEN_BYTES;
use crate::claims::{MAX_IDENTIFIER_CHARS, check_identity, check_issuer_and_audience, check_text};
use crate::error::from_jwt_error;
use crate::key_set::{KeyAlgorithm, KeySet, VerificationKey};
use crate::{AuthError, Principal, Role};

/// Verified tokens remembered at most; when full, expired ones are dropped, then all.
const CACHE_CAPACITY: usize = 16_384;

/// Largest accepted clock leeway, in seconds.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// The registered claims `jsonwebtoken` must find before anything else is looked at (`nbf` is
/// checked when present: RFC 9068 access tokens need not carry it).
const REQUIRED_SPEC_CLAIMS: [&str; 4] = ["exp", "iss", "aud", "sub"];

/// Registered claims that no [`ClaimNames`] field may take: they mean something else.
const RESERVED_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];

/// Which claims hold the user's identity. The defaults are Tryggdel's own names; a deployment
/// whose identity provider puts them elsewhere (e.g. HSA attributes) maps them here. Errors
/// name a claim by its default name, whatever it is mapped to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimNames {
    /// The user id (default `sub`).
    pub user_id: String,
    /// The organisation code (default `org`).
    pub organisation: String,
    /// The unit within the organisation (default `unit`).
    pub unit: String,
    /// The roles: a JSON array of strings, or one space-separated string (default `roles`).
    pub roles: String,
    /// The police region (default `region`).
    pub region: String,
    /// The display name (default `name`).
    pub name: String,
}

impl Default for ClaimNames {
    fn default() -> ClaimNames {
        ClaimNames {
            user_id: "sub".into(),
            organisation: "org".into(),
            unit: "unit".into(),
            roles: "roles".into(),
            region: "region".into(),
            name: "name".into(),
        }
    }
}

impl ClaimNames {
    /// Each name non-empty, distinct from the others and from the registered claims that mean
    /// something else.
    pub fn check(&self) -> Result<(), AuthError> {
        let names = self.all();
        for (index, name) in names.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(AuthError::InvalidConfig {
                    reason: "a claim name must not be empty",
                });
            }
            if RESERVED_CLAIMS.contains(name) {
                return Err(AuthError::InvalidConfig {
                    reason: "a claim name must not be iss, aud, exp, nbf, iat or jti",
                });
            }
            if names[..index].contains(name) {
                return Err(AuthError::InvalidConfig {
                    reason: "two identity fields are mapped to the same claim",
                });
            }
        }
        Ok(())
    }

    fn all(&self) -> [&str; 6] {
        [
            &self.user_id,
            &self.organisation,
            &self.unit,
            &self.roles,
            &self.region,
            &self.name,
        ]
    }
}

/// What a [`TokenVerifier`] trusts.
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// The only accepted `iss`.
    pub issuer: String,
    /// The only accepted `aud`.
    pub audience: String,
    /// The identity provider's public keys by `kid`.
    pub keys: KeySet,
    /// Where the identity is in a token.
    pub claims: ClaimNames,
    /// Clock skew allowed on `exp` and `nbf`, at most [`MAX_LEEWAY_SECONDS`] (callers use 30).
    pub leeway_seconds: u64,
}

/// Verifies JWTs against a key set that can be replaced while in use (key rotation). Cheap to
/// clone; clones share the key set and the memory of verified tokens.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    claims: ClaimNames,
    leeway: u64,
    /// One validation per algorithm, each pinned to that algorithm alone.
    validations: HashMap<KeyAlgorithm, Validation>,
    state: RwLock<Arc<KeyState>>,
}

/// A key set and the tokens verified with it.
struct KeyState {
    keys: Arc<KeySet>,
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

/// A token that passed every check, and the times it is valid between.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    not_before: Option<i64>,
    expires_at: i64,
}

/// What the header of a token says, once checked.
struct TokenHeader {
    algorithm: KeyAlgorithm,
    kid: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("leeway_seconds", &self.inner.leeway)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Checks the configuration.
    pub fn new(config: VerifierConfig) -> Result<Self, AuthError> {
        check_issuer_and_audience(&config.issuer, &config.audience)?;
        if config.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(AuthError::InvalidConfig {
                reason: "leeway_seconds must be at most 300",
            });
        }
        config.claims.check()?;
        let validations = KeyAlgorithm::ALL
            .into_iter()
            .map(|algorithm| (algorithm, validation(&config, algorithm)))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: config.issuer,
                audience: config.audience,
                claims: config.claims,
                leeway: config.leeway_seconds,
                validations,
                state: RwLock::new(Arc::new(KeyState::new(config.keys))),
            }),
        })
    }

    /// The key set in use.
    pub fn keys(&self) -> Arc<KeySet> {
        self.state().keys.clone()
    }

    /// Verifies with `keys` from now on; tokens verified before are checked in full again.
    pub fn replace_keys(&self, keys: KeySet) {
        let fresh = Arc::new(KeyState::new(keys));
        match self.inner.state.write() {
            Ok(mut state) => *state = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// Verifies `token` and returns who it is for.
    ///
    /// In order: size, header (`alg` one of EdDSA, ES256, RS256, PS256; no `crit`; a `kid`
    /// the key set holds, whose algorithm is the header's), signature, `iss`, `aud`, `exp`,
    /// `nbf` if present (with leeway), then the user id, organisation and roles, `jti`, `iat`
    /// and the optional unit, region and name.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidToken {
                reason: "token too long",
            });
        }
        let state = self.state();
        let digest = token_key(token);
        let now = unix_now();
        if let Some(principal) = state.remembered(&digest, now, self.leeway()) {
            return Ok(principal);
        }
        let header = read_header(token)?;
        let key = state.keys.get(&header.kid).ok_or(AuthError::UnknownKey)?;
        if key.algorithm != header.algorithm {
            return Err(AuthError::DisallowedAlgorithm);
        }
        let claims = self.decode_claims(token, key)?;
        let principal = principal_from_claims(&claims, &self.inner.claims)?;
        if let Some(expires_at) = claims.get("exp").and_then(Value::as_i64) {
            state.remember(
                digest,
                Verified {
                    principal: principal.clone(),
                    not_before: claims.get("nbf").and_then(Value::as_i64),
                    expires_at,
                },
                now,
                self.leeway(),
            );
        }
        Ok(principal)
    }

    fn state(&self) -> Arc<KeyState> {
        match self.inner.state.read() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn leeway(&self) -> i64 {
        i64::try_from(self.inner.leeway).unwrap_or(0)
    }

    /// Signature and registered-claim checks by `jsonwebtoken`, with the algorithm list pinned
    /// to the key's own algorithm; on its own this already refuses any other header.
    fn decode_claims(
        &self,
        token: &str,
        key: &VerificationKey,
    ) -> Result<Map<String, Value>, AuthError> {
        let validation = self
            .inner
            .validations
            .get(&key.algorithm)
            .ok_or(AuthError::DisallowedAlgorithm)?;
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding_key, validation)
            .map(|data| data.claims)
            .map_err(|error| from_jwt_error(&error))
    }
}

impl KeyState {
    fn new(keys: KeySet) -> KeyState {
        KeyState {
            keys: Arc::new(keys),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The principal of a token verified before, if its times still hold at `now` (with the
    /// same leeway as the full check).
    fn remembered(&self, key: &[u8; 32], now: i64, leeway: i64) -> Option<Principal> {
        let verified = match self.verified.lock() {
            Ok(verified) => verified,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = verified.get(key)?;
        let started = entry
            .not_before
            .is_none_or(|not_before| not_before <= now + leeway);
        (entry.expires_at >= now - leeway && started).then(|| entry.principal.clone())
    }

    fn remember(&self, key: [u8; 32], entry: Verified, now: i64, leeway: i64) {
        let mut verified = match self.verified.lock() {
            Ok(verified) => verified,
            Err(poisoned) => poisoned.into_inner(),
        };
        if verified.len() >= CACHE_CAPACITY {
            verified.retain(|_, entry| entry.expires_at >= now - leeway);
            if verified.len() >= CACHE_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(key, entry);
    }
}

/// The validation for keys of `algorithm`: that algorithm only, whatever the token says.
fn validation(config: &VerifierConfig, algorithm: KeyAlgorithm) -> Validation {
    let mut validation = Validation::new(algorithm.jwt());
    validation.algorithms = vec![algorithm.jwt()];
    validation.set_required_spec_claims(&REQUIRED_SPEC_CLAIMS);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_issuer(&[config.issuer.as_str()]);
    validation.set_audience(&[config.audience.as_str()]);
    validation.leeway = config.leeway_seconds;
    validation
}

fn token_key(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Looks at the header before any key is touched, so that `none`, `HS256`, names
/// `jsonwebtoken` does not know and the rest outside the allow-list all give
/// [`AuthError::DisallowedAlgorithm`] rather than a parse error, and a token without a `kid`
/// is refused before any key is looked for.
fn read_header(token: &str) -> Result<TokenHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::InvalidToken {
            reason: "token is not three dot-separated parts",
        });
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::InvalidToken {
            reason: "token header is not base64url",
        })?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header).map_err(|_| AuthError::InvalidToken {
            reason: "token header is not a json object",
        })?;
    let algorithm = match header.get("alg") {
        Some(Value::String(alg)) => {
            KeyAlgorithm::parse(alg).ok_or(AuthError::DisallowedAlgorithm)?
        }
        Some(_) => return Err(AuthError::DisallowedAlgorithm),
        None => {
            return Err(AuthError::InvalidToken {
                reason: "token header has no alg",
            });
        }
    };
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; we know none.
    if header.contains_key("crit") {
        return Err(AuthError::InvalidToken {
            reason: "token header has unsupported critical extensions",
        });
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        _ => {
            return Err(AuthError::InvalidToken {
                reason: "token header names no key (kid)",
            });
        }
    };
    Ok(TokenHeader { algorithm, kid })
}

/// Builds the principal from a payload whose signature and registered claims
/// `jsonwebtoken` has already checked, reading the identity where `names` say.
fn principal_from_claims(
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<Principal, AuthError> {
    let user_id = required_string(claims, &names.user_id, "sub")?;
    let organisation = required_string(claims, &names.organisation, "org")?;
    let token_id = required_string(claims, "jti", "jti")?;
    check_text("jti", &token_id, MAX_IDENTIFIER_CHARS)?;
    match claims.get("iat") {
        None | Some(Value::Null) => return Err(AuthError::MissingClaim { name: "iat" }),
        Some(Value::Number(number)) if number.as_i64().is_some() => {}
        Some(_) => {
            return Err(AuthError::InvalidClaim {
                name: "iat",
                reason: "not an integer",
            });
        }
    }
    let roles = required_roles(claims, &names.roles)?;
    let unit = optional_string(claims, &names.unit, "unit")?;
    let police_region = optional_string(claims, &names.region, "region")?;
    let display_name = optional_string(claims, &names.name, "name")?;
    check_identity(
        &user_id,
        &organisation,
        unit.as_deref(),
        &roles,
        police_region.as_deref(),
        display_name.as_deref(),
    )?;
    Ok(Principal {
        user_id,
        organisation,
        unit,
        roles,
        police_region,
        display_name,
        token_id,
    })
}

/// The string claim `claim`, named `name` in errors.
fn required_string(
    claims: &Map<String, Value>,
    claim: &str,
    name: &'static str,
) -> Result<String, AuthError> {
    optional_string(claims, claim, name)?.ok_or(AuthError::MissingClaim { name })
}

fn optional_string(
    claims: &Map<String, Value>,
    claim: &str,
    name: &'static str,
) -> Result<Option<String>, AuthError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(AuthError::InvalidClaim {
            name,
            reason: "not a string",
        }),
    }
}

/// The roles: a JSON array of role names, or one string of them separated by spaces (as OAuth
/// writes `scope`).
fn required_roles(claims: &Map<String, Value>, claim: &str) -> Result<Vec<Role>, AuthError> {
    const NAME: &str = "roles";
    let names: Vec<Option<&str>> = match claims.get(claim) {
        None | Some(Value::Null) => return Err(AuthError::MissingClaim { name: NAME }),
        Some(Value::Array(values)) => {
            // Checked here too so an enormous array is refused before it is walked.
            if values.len() > crate::claims::MAX_ROLES {
                return Err(too_many_roles());
            }
            values.iter().map(Value::as_str).collect()
        }
        Some(Value::String(text)) => {
            let names: Vec<Option<&str>> = text
                .split_whitespace()
                .map(Some)
                .take(crate::claims::MAX_ROLES + 1)
                .collect();
            if names.len() > crate::claims::MAX_ROLES {
                return Err(too_many_roles());
            }
            names
        }
        Some(_) => {
            return Err(AuthError::InvalidClaim {
                name: NAME,
                reason: "not an array or a string",
            });
        }
    };
    names
        .into_iter()
        .map(|name| {
            name.and_then(Role::parse).ok_or(AuthError::InvalidClaim {
                name: NAME,
                reason: "unknown role",
            })
        })
        .collect()
}

fn too_many_roles() -> AuthError {
    AuthError::InvalidClaim {
        name: "roles",
        reason: "too many roles",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::key_set::tests::{RSA_PRIVATE_KEY, ed25519_jwk, jwks, p256_key, rsa_jwk};
    use crate::{
        Claims, SignerConfig, SigningKeyPair, TokenRequest, TokenSigner, generate_ed25519_key_pair,
    };

    const ISSUER: &str = "https://idp.socialtjanst.example";
    const AUDIENCE: &str = "tryggdel";

    struct Fixture {
        pair: SigningKeyPair,
        signer: TokenSigner,
        verifier: TokenVerifier,
    }

    fn fixture() -> Fixture {
        let pair = generate_ed25519_key_pair().unwrap();
        let signer = signer_for(pair.private_key_pem.clone());
        let verifier = TokenVerifier::new(config(
            KeySet::single_ed25519_pem(&pair.public_key_pem).unwrap(),
        ))
        .unwrap();
        Fixture {
            pair,
            signer,
            verifier,
        }
    }

    /// The test issuer and audience, the default claim names and 30 s of leeway, with `keys`.
    fn config(keys: KeySet) -> VerifierConfig {
        VerifierConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            keys,
            claims: ClaimNames::default(),
            leeway_seconds: 30,
        }
    }

    /// A signer for the test issuer and audience holding `private_key_pem`.
    fn signer_for(private_key_pem: String) -> TokenSigner {
        TokenSigner::new(SignerConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            private_key_pem,
        })
        .unwrap()
    }

    impl Fixture {
        /// Mints `claims` with the fixture's signer and verifies the token.
        fn verify_claims(&self, claims: &Claims) -> Result<Principal, AuthError> {
            let token = self.signer.mint_claims(claims).unwrap();
            self.verifier.verify(&token)
        }

        /// Signs an arbitrary payload with the fixture's real key and verifies the token.
        fn verify_json(&self, payload: &Value) -> Result<Principal, AuthError> {
            self.verifier.verify(&sign_json(self, payload))
        }

        /// Asserts that verifying `token` fails as an invalid token.
        fn assert_invalid_token(&self, token: &str) {
            let result = self.verifier.verify(token);
            assert!(
                matches!(result, Err(AuthError::InvalidToken { .. })),
                "{token}: {result:?}"
            );
        }

        /// Asserts that `token` is refused for its algorithm both by `verify` (the header
        /// check) and by `decode_claims` alone with the fixture's key (jsonwebtoken's pinned
        /// algorithm list: defence in depth).
        fn assert_algorithm_refused(&self, token: &str) {
            assert_eq!(
                self.verifier.verify(token),
                Err(AuthError::DisallowedAlgorithm)
            );
            assert_eq!(
                self.verifier.decode_claims(token, &self.key()),
                Err(AuthError::DisallowedAlgorithm)
            );
        }

        /// The fixture's one verification key.
        fn key(&self) -> VerificationKey {
            self.verifier.keys().get(self.signer.kid()).unwrap().clone()
        }

        /// The principal the verifier remembers for `token`'s digest at `now`.
        fn remembered(&self, digest: &[u8; 32], now: i64) -> Option<Principal> {
            self.verifier
                .state()
                .remembered(digest, now, self.verifier.leeway())
        }
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn police_request() -> TokenRequest {
        TokenRequest {
            user_id: "199001011234".to_owned(),
            organisation: "polisen".to_owned(),
            unit: Some("utredning-syd".to_owned()),
            roles: vec![Role::PoliceOfficer, Role::DecisionMaker],
            police_region: Some("syd".to_owned()),
            display_name: Some("Åsa Öberg".to_owned()),
            valid_for: Duration::from_secs(600),
        }
    }

    fn valid_claims() -> Claims {
        let now = now();
        Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: "u1".to_owned(),
            exp: now + 600,
            nbf: now,
            iat: now,
            jti: "jti-1".to_owned(),
            org: "kommun-a".to_owned(),
            unit: None,
            roles: vec![Role::Caseworker],
            region: None,
            name: None,
        }
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    /// Signs an arbitrary payload with the fixture's real key, naming it.
    fn sign_json(fixture: &Fixture, payload: &Value) -> String {
        let key = EncodingKey::from_ed_pem(fixture.pair.private_key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(
            &header(Algorithm::EdDSA, fixture.signer.kid()),
            payload,
            &key,
        )
        .unwrap()
    }

    /// A header of `algorithm` naming `kid`.
    fn header(algorithm: Algorithm, kid: &str) -> Header {
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_owned());
        header
    }

    fn valid_payload() -> Value {
        serde_json::to_value(valid_claims()).unwrap()
    }

    #[test]
    fn round_trip_gives_the_principal() {
        let f = fixture();
        let request = police_request();
        let token = f.signer.mint(&request).unwrap();
        let principal = f.verifier.verify(&token).unwrap();
        assert_eq!(principal.user_id, request.user_id);
        assert_eq!(principal.organisation, request.organisation);
        assert_eq!(principal.unit, request.unit);
        assert_eq!(principal.roles, request.roles);
        assert_eq!(principal.police_region, request.police_region);
        assert_eq!(principal.display_name, request.display_name);
        assert!(uuid::Uuid::parse_str(&principal.token_id).is_ok());
        assert!(principal.has_role(Role::PoliceOfficer));
        assert!(principal.has_role(Role::DecisionMaker));
        assert!(!principal.has_role(Role::Admin));
    }

    #[test]
    fn mint_claims_round_trip_keeps_every_field() {
        let f = fixture();
        let claims = Claims {
            unit: Some("enhet-1".to_owned()),
            name: Some("Kim".to_owned()),
            ..valid_claims()
        };
        let principal = f
            .verifier
            .verify(&f.signer.mint_claims(&claims).unwrap())
            .unwrap();
        assert_eq!(
            principal,
            Principal {
                user_id: "u1".to_owned(),
                organisation: "kommun-a".to_owned(),
                unit: Some("enhet-1".to_owned()),
                roles: vec![Role::Caseworker],
                police_region: None,
                display_name: Some("Kim".to_owned()),
                token_id: "jti-1".to_owned(),
            }
        );
    }

    #[test]
    fn expired_early_or_foreign_tokens_are_refused_with_their_error() {
        let f = fixture();
        let cases = [
            (
                "expired",
                Claims {
                    exp: now() - 3600,
                    nbf: now() - 7200,
                    iat: now() - 7200,
                    ..valid_claims()
                },
                AuthError::Expired,
            ),
            (
                "future nbf",
                Claims {
                    nbf: now() + 3600,
                    exp: now() + 7200,
                    ..valid_claims()
                },
                AuthError::NotYetValid,
            ),
            (
                "wrong issuer",
                Claims {
                    iss: "https://evil.example".to_owned(),
                    ..valid_claims()
                },
                AuthError::WrongIssuer,
            ),
            (
                "wrong audience",
                Claims {
                    aud: "some-other-service".to_owned(),
                    ..valid_claims()
                },
                AuthError::WrongAudience,
            ),
        ];
        for (case, claims, expected) in cases {
            assert_eq!(f.verify_claims(&claims), Err(expected), "{case}");
        }
    }

    #[test]
    fn leeway_applies_to_exp_and_nbf() {
        let f = fixture();
        let just_expired = Claims {
            exp: now() - 10,
            ..valid_claims()
        };
        assert!(f.verify_claims(&just_expired).is_ok());
        let slightly_early = Claims {
            nbf: now() + 10,
            ..valid_claims()
        };
        assert!(f.verify_claims(&slightly_early).is_ok());
        let beyond_leeway = Claims {
            exp: now() - 120,
            ..valid_claims()
        };
        assert_eq!(f.verify_claims(&beyond_leeway), Err(AuthError::Expired));
    }

    #[test]
    fn token_signed_by_another_key_is_refused() {
        let f = fixture();
        let other = generate_ed25519_key_pair().unwrap();
        let other_signer = signer_for(other.private_key_pem.clone());
        // Under its own kid: a key the verifier does not know.
        let token = other_signer.mint(&police_request()).unwrap();
        assert_eq!(f.verifier.verify(&token), Err(AuthError::UnknownKey));
        // Under the verifier's kid: the signature does not verify.
        let key = EncodingKey::from_ed_pem(other.private_key_pem.as_bytes()).unwrap();
        f.assert_invalid_token(&signed(Algorithm::EdDSA, f.signer.kid(), &key));
    }

    #[test]
    fn tampered_payload_is_refused() {
        let f = fixture();
        let token = f.signer.mint_claims(&valid_claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload = valid_payload();
        payload["roles"] = json!(["admin"]);
        let forged = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
        f.assert_invalid_token(&forged);
    }

    /// The key-confusion attack: HS256 with the (public) PEM text as the HMAC secret, naming
    /// the public key's `kid`.
    fn hs256_with_public_key_as_secret(f: &Fixture) -> String {
        let key = EncodingKey::from_secret(f.pair.public_key_pem.as_bytes());
        jsonwebtoken::encode(
            &header(Algorithm::HS256, f.signer.kid()),
            &valid_claims(),
            &key,
        )
        .unwrap()
    }

    #[test]
    fn hs256_token_keyed_with_the_public_key_is_refused_even_by_the_pinned_validation_alone() {
        let f = fixture();
        f.assert_algorithm_refused(&hs256_with_public_key_as_secret(&f));
        let key = EncodingKey::from_secret(f.pair.public_key_pem.as_bytes());
        let without_kid =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &valid_claims(), &key).unwrap();
        f.assert_algorithm_refused(&without_kid);
    }

    #[test]
    fn rs256_header_on_an_ed25519_key_is_refused() {
        let f = fixture();
        let token = f.signer.mint_claims(&valid_claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header = b64(&json!({ "alg": "RS256", "typ": "JWT", "kid": f.signer.kid() }));
        let forged = format!("{header}.{}.{}", parts[1], parts[2]);
        f.assert_algorithm_refused(&forged);
    }

    #[test]
    fn unsigned_alg_none_token_is_refused() {
        let f = fixture();
        let payload = b64(&valid_payload());
        for alg in ["none", "None", "NONE"] {
            for header in [
                json!({ "alg": alg, "typ": "JWT" }),
                json!({ "alg": alg, "typ": "JWT", "kid": f.signer.kid() }),
            ] {
                let token = format!("{}.{payload}.", b64(&header));
                assert_eq!(
                    f.verifier.verify(&token),
                    Err(AuthError::DisallowedAlgorithm),
                    "{alg}"
                );
                assert!(f.verifier.decode_claims(&token, &f.key()).is_err(), "{alg}");
            }
        }
    }

    #[test]
    fn eddsa_header_with_empty_signature_is_refused() {
        let f = fixture();
        let header = b64(&json!({ "alg": "EdDSA", "typ": "JWT", "kid": f.signer.kid() }));
        let token = format!("{header}.{}.", b64(&valid_payload()));
        f.assert_invalid_token(&token);
    }

    #[test]
    fn garbage_is_refused() {
        let f = fixture();
        for token in [
            "garbage",
            "a.b.c",
            "..",
            "a.b",
            "a.b.c.d",
            "eyJhbGciOiJFZERTQSJ9.!!!.abc",
            "eyJhbGciOiJFZERTQSJ9.e30.AAAA",
            "bm90IGpzb24.e30.AAAA",
        ] {
            f.assert_invalid_token(token);
        }
        assert_eq!(f.verifier.verify(""), Err(AuthError::MissingToken));
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        f.assert_invalid_token(&huge);
    }

    #[test]
    fn header_without_alg_or_with_crit_is_refused() {
        let f = fixture();
        let payload = b64(&valid_payload());
        let no_alg = format!("{}.{payload}.AAAA", b64(&json!({ "typ": "JWT" })));
        f.assert_invalid_token(&no_alg);
        let crit = format!(
            "{}.{payload}.AAAA",
            b64(&json!({ "alg": "EdDSA", "crit": ["exp"], "exp": 1 }))
        );
        f.assert_invalid_token(&crit);
    }

    #[test]
    fn missing_roles_is_refused() {
        let f = fixture();
        let mut payload = valid_payload();
        payload.as_object_mut().unwrap().remove("roles");
        assert_eq!(
            f.verify_json(&payload),
            Err(AuthError::MissingClaim { name: "roles" })
        );
    }

    #[test]
    fn empty_unknown_or_too_many_roles_are_refused() {
        let f = fixture();
        let empty = Claims {
            roles: Vec::new(),
            ..valid_claims()
        };
        assert!(matches!(
            f.verify_claims(&empty),
            Err(AuthError::InvalidClaim { name: "roles", .. })
        ));
        for roles in [
            json!(["superuser"]),
            json!(["Caseworker"]),
            json!([1]),
            json!("caseworker superuser"),
            json!(""),
            json!(42),
            json!({ "caseworker": true }),
            json!(vec!["caseworker"; 9]),
            json!(["caseworker"; 9].join(" ")),
        ] {
            let mut payload = valid_payload();
            payload["roles"] = roles.clone();
            assert!(
                matches!(
                    f.verify_json(&payload),
                    Err(AuthError::InvalidClaim { name: "roles", .. })
                ),
                "{roles}"
            );
        }
    }

    #[test]
    fn bad_subject_and_organisation_are_refused() {
        let f = fixture();
        let cases = [
            (
                Claims {
                    sub: String::new(),
                    ..valid_claims()
                },
                "sub",
            ),
            (
                Claims {
                    sub: "x".repeat(129),
                    ..valid_claims()
                },
                "sub",
            ),
            (
                Claims {
                    org: String::new(),
                    ..valid_claims()
                },
                "org",
            ),
            (
                Claims {
                    jti: String::new(),
                    ..valid_claims()
                },
                "jti",
            ),
        ];
        for (claims, expected) in cases {
            match f.verify_claims(&claims) {
                Err(AuthError::InvalidClaim { name, .. }) => assert_eq!(name, expected),
                other => panic!("expected invalid {expected}, got {other:?}"),
            }
        }
    }

    #[test]
    fn missing_claims_are_named() {
        let f = fixture();
        for name in ["exp", "iss", "aud", "sub", "org", "jti", "iat"] {
            let mut payload = valid_payload();
            payload.as_object_mut().unwrap().remove(name);
            assert_eq!(
                f.verify_json(&payload),
                Err(AuthError::MissingClaim {
                    name: match name {
                        "exp" => "exp",
                        "iss" => "iss",
                        "aud" => "aud",
                        "sub" => "sub",
                        "org" => "org",
                        "jti" => "jti",
                        _ => "iat",
                    }
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn wrongly_typed_optional_claims_are_refused() {
        let f = fixture();
        for name in ["unit", "region", "name", "org"] {
            let mut payload = valid_payload();
            payload[name] = json!(42);
            assert!(
                matches!(
                    f.verify_json(&payload),
                    Err(AuthError::InvalidClaim { name: got, .. }) if got == name
                ),
                "{name}"
            );
        }
        let mut payload = valid_payload();
        payload["exp"] = json!("tomorrow");
        assert!(f.verify_json(&payload).is_err());
    }

    #[test]
    fn error_messages_never_contain_the_token() {
        let f = fixture();
        let hs = hs256_with_public_key_as_secret(&f);
        let expired = f
            .signer
            .mint_claims(&Claims {
                exp: now() - 3600,
                ..valid_claims()
            })
            .unwrap();
        let mut payload = valid_payload();
        payload["roles"] = json!(["x-secret-role"]);
        let unknown_role = sign_json(&f, &payload);
        for token in [
            hs,
            expired,
            unknown_role,
            "gArBaGe1.xYz_Q9.pLmNoP".to_owned(),
        ] {
            let error = f.verifier.verify(&token).unwrap_err();
            let status = error.to_status();
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            for text in [error.to_string(), status.message().to_owned()] {
                for part in token.split('.').filter(|part| part.len() > 3) {
                    assert!(!text.contains(part), "{text}");
                }
                assert!(!text.contains("x-secret-role"));
            }
        }
    }

    #[test]
    fn bad_verifier_config_is_refused() {
        let pair = generate_ed25519_key_pair().unwrap();
        let config = config(KeySet::single_ed25519_pem(&pair.public_key_pem).unwrap());
        assert!(TokenVerifier::new(config.clone()).is_ok());
        let renamed = |rename: fn(&mut ClaimNames)| {
            let mut claims = ClaimNames::default();
            rename(&mut claims);
            VerifierConfig {
                claims,
                ..config.clone()
            }
        };
        let cases = [
            VerifierConfig {
                issuer: String::new(),
                ..config.clone()
            },
            VerifierConfig {
                audience: " ".to_owned(),
                ..config.clone()
            },
            VerifierConfig {
                leeway_seconds: MAX_LEEWAY_SECONDS + 1,
                ..config.clone()
            },
            renamed(|claims| claims.organisation = String::new()),
            renamed(|claims| claims.roles = "org".into()),
            renamed(|claims| claims.user_id = "jti".into()),
            renamed(|claims| claims.unit = "exp".into()),
        ];
        for case in cases {
            assert!(matches!(
                TokenVerifier::new(case),
                Err(AuthError::InvalidConfig { .. })
            ));
        }
        for pem in [
            pair.private_key_pem.clone(),
            "garbage".to_owned(),
            // An RSA-sized nonsense body under the right label.
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_owned(),
        ] {
            assert!(matches!(
                KeySet::single_ed25519_pem(&pem),
                Err(AuthError::Key { .. })
            ));
        }
    }

    #[test]
    fn verifier_built_from_the_signers_public_key_accepts_its_tokens() {
        let f = fixture();
        let verifier = TokenVerifier::new(VerifierConfig {
            leeway_seconds: 0,
            ..config(KeySet::single_ed25519_pem(f.signer.public_key_pem()).unwrap())
        })
        .unwrap();
        let token = f.signer.mint(&police_request()).unwrap();
        assert!(verifier.verify(&token).is_ok());
        let from_key_set = TokenVerifier::new(config(f.signer.key_set())).unwrap();
        assert!(from_key_set.verify(&token).is_ok());
    }

    #[test]
    fn a_verified_token_is_remembered_only_while_its_times_hold() {
        let fixture = fixture();
        let token = fixture.signer.mint(&police_request()).unwrap();
        let first = fixture.verifier.verify(&token).unwrap();
        assert_eq!(fixture.verifier.verify(&token).unwrap(), first);
        let key = token_key(&token);
        assert_eq!(fixture.remembered(&key, now()), Some(first));
        // 600 s of validity and 30 s of leeway: remembered at +629, not at +631 or before nbf.
        assert!(fixture.remembered(&key, now() + 600 + 29).is_some());
        assert_eq!(fixture.remembered(&key, now() + 600 + 31), None);
        assert_eq!(fixture.remembered(&key, now() - 31), None);
    }

    #[test]
    fn a_refused_token_is_not_remembered() {
        let fixture = fixture();
        let mut expired = valid_payload();
        expired["exp"] = json!(now() - 3600);
        expired["nbf"] = json!(now() - 7200);
        let token = sign_json(&fixture, &expired);
        assert!(matches!(
            fixture.verifier.verify(&token),
            Err(AuthError::Expired)
        ));
        assert_eq!(fixture.remembered(&token_key(&token), now()), None);
        assert!(matches!(
            fixture.verifier.verify(&token),
            Err(AuthError::Expired)
        ));
    }

    #[test]
    fn a_remembered_token_changed_in_one_character_is_checked_in_full() {
        let fixture = fixture();
        let token = fixture.signer.mint(&police_request()).unwrap();
        fixture.verifier.verify(&token).unwrap();
        let mut changed = token.clone().into_bytes();
        let last = changed.len() - 2;
        changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).unwrap();
        assert!(fixture.verifier.verify(&changed).is_err());
    }

    #[test]
    fn the_memory_of_verified_tokens_is_bounded() {
        let fixture = fixture();
        let token = fixture.signer.mint(&police_request()).unwrap();
        let principal = fixture.verifier.verify(&token).unwrap();
        let state = fixture.verifier.state();
        for i in 0..(CACHE_CAPACITY + 10) {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            key[31] = 1;
            state.remember(
                key,
                Verified {
                    principal: principal.clone(),
                    not_before: Some(now()),
                    expires_at: now() + 60,
                },
                now(),
                30,
            );
        }
        assert!(state.verified.lock().unwrap().len() <= CACHE_CAPACITY);
    }

    /// A verifier of the test issuer and audience trusting the JWK Set of `keys`.
    fn jwks_verifier(keys: &[Value]) -> TokenVerifier {
        TokenVerifier::new(config(KeySet::from_jwks_json(&jwks(keys)).unwrap())).unwrap()
    }

    /// `valid_claims` signed with `key` under `algorithm`, naming `kid`.
    fn signed(algorithm: Algorithm, kid: &str, key: &EncodingKey) -> String {
        jsonwebtoken::encode(&header(algorithm, kid), &valid_claims(), key).unwrap()
    }

    fn rsa_encoding_key() -> EncodingKey {
        EncodingKey::from_rsa_pem(RSA_PRIVATE_KEY.as_bytes()).unwrap()
    }

    #[test]
    fn rs256_ps256_es256_and_eddsa_tokens_verify_with_their_keys() {
        let ed = generate_ed25519_key_pair().unwrap();
        let (ec_der, ec_jwk) = p256_key("ec");
        let verifier = jwks_verifier(&[
            ed25519_jwk(&ed.public_key_pem, "ed"),
            ec_jwk,
            rsa_jwk("rs", Some("RS256")),
            rsa_jwk("ps", Some("PS256")),
        ]);
        let ed_key = EncodingKey::from_ed_pem(ed.private_key_pem.as_bytes()).unwrap();
        let ec_key = EncodingKey::from_ec_der(&ec_der);
        for (algorithm, kid, key) in [
            (Algorithm::EdDSA, "ed", &ed_key),
            (Algorithm::ES256, "ec", &ec_key),
            (Algorithm::RS256, "rs", &rsa_encoding_key()),
            (Algorithm::PS256, "ps", &rsa_encoding_key()),
        ] {
            let principal = verifier.verify(&signed(algorithm, kid, key));
            assert_eq!(principal.unwrap().user_id, "u1", "{algorithm:?}");
        }
    }

    #[test]
    fn two_keys_are_valid_at_once() {
        let old = generate_ed25519_key_pair().unwrap();
        let new = generate_ed25519_key_pair().unwrap();
        let verifier = jwks_verifier(&[
            ed25519_jwk(&old.public_key_pem, "2026-01"),
            ed25519_jwk(&new.public_key_pem, "2026-02"),
        ]);
        for (pair, kid) in [(&old, "2026-01"), (&new, "2026-02")] {
            let key = EncodingKey::from_ed_pem(pair.private_key_pem.as_bytes()).unwrap();
            assert!(
                verifier
                    .verify(&signed(Algorithm::EdDSA, kid, &key))
                    .is_ok()
            );
        }
        // Each key verifies only its own tokens, whatever kid a token names.
        let old_key = EncodingKey::from_ed_pem(old.private_key_pem.as_bytes()).unwrap();
        let misnamed = signed(Algorithm::EdDSA, "2026-02", &old_key);
        assert!(matches!(
            verifier.verify(&misnamed),
            Err(AuthError::InvalidToken { .. })
        ));
    }

    #[test]
    fn an_unknown_kid_is_refused_without_naming_it() {
        let f = fixture();
        let key = EncodingKey::from_ed_pem(f.pair.private_key_pem.as_bytes()).unwrap();
        let token = signed(Algorithm::EdDSA, "kid-nobody-published", &key);
        let error = f.verifier.verify(&token).unwrap_err();
        assert_eq!(error, AuthError::UnknownKey);
        let status = error.to_status();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(!status.message().contains("kid-nobody-published"));
        assert!(!error.to_string().contains("kid-nobody-published"));
    }

    #[test]
    fn a_token_without_a_kid_is_refused() {
        let f = fixture();
        let key = EncodingKey::from_ed_pem(f.pair.private_key_pem.as_bytes()).unwrap();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &valid_claims(), &key).unwrap();
        assert_eq!(
            f.verifier.verify(&token),
            Err(AuthError::InvalidToken {
                reason: "token header names no key (kid)"
            })
        );
    }

    #[test]
    fn a_token_whose_alg_is_not_its_keys_is_refused() {
        let ed = generate_ed25519_key_pair().unwrap();
        let (ec_der, ec_jwk) = p256_key("ec");
        let verifier = jwks_verifier(&[
            ed25519_jwk(&ed.public_key_pem, "ed"),
            ec_jwk,
            rsa_jwk("ps", Some("PS256")),
            rsa_jwk("rs", None),
        ]);
        let ec_key = EncodingKey::from_ec_der(&ec_der);
        for token in [
            // Really signed with the RSA key, but as RS256 against a PS256 key and back.
            signed(Algorithm::RS256, "ps", &rsa_encoding_key()),
            signed(Algorithm::PS256, "rs", &rsa_encoding_key()),
            // ES256 naming the Ed25519 key.
            signed(Algorithm::ES256, "ed", &ec_key),
        ] {
            assert_eq!(verifier.verify(&token), Err(AuthError::DisallowedAlgorithm));
        }
    }

    #[test]
    fn hs256_keyed_with_an_rsa_public_key_is_refused() {
        use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
        let verifier = jwks_verifier(&[rsa_jwk("rs", None)]);
        let public = rsa::RsaPrivateKey::from_pkcs1_pem(RSA_PRIVATE_KEY)
            .unwrap()
            .to_public_key();
        let pem = public.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let der = public.to_pkcs1_der().unwrap();
        let jwk = rsa_jwk("rs", None).to_string();
        for secret in [pem.as_bytes(), der.as_bytes(), jwk.as_bytes()] {
            let token = signed(Algorithm::HS256, "rs", &EncodingKey::from_secret(secret));
            assert_eq!(verifier.verify(&token), Err(AuthError::DisallowedAlgorithm));
        }
    }

    #[test]
    fn replacing_the_keys_rotates_them_and_forgets_what_the_old_ones_verified() {
        let old = generate_ed25519_key_pair().unwrap();
        let new = generate_ed25519_key_pair().unwrap();
        let old_key = EncodingKey::from_ed_pem(old.private_key_pem.as_bytes()).unwrap();
        let new_key = EncodingKey::from_ed_pem(new.private_key_pem.as_bytes()).unwrap();
        let verifier = jwks_verifier(&[ed25519_jwk(&old.public_key_pem, "old")]);
        let old_token = signed(Algorithm::EdDSA, "old", &old_key);
        let new_token = signed(Algorithm::EdDSA, "new", &new_key);
        assert!(verifier.verify(&old_token).is_ok());
        assert_eq!(verifier.verify(&new_token), Err(AuthError::UnknownKey));

        let clone = verifier.clone();
        verifier.replace_keys(
            KeySet::from_jwks_json(&jwks(&[
                ed25519_jwk(&old.public_key_pem, "old"),
                ed25519_jwk(&new.public_key_pem, "new"),
            ]))
            .unwrap(),
        );
        assert!(clone.verify(&new_token).is_ok());
        assert!(verifier.verify(&old_token).is_ok());

        verifier.replace_keys(
            KeySet::from_jwks_json(&jwks(&[ed25519_jwk(&new.public_key_pem, "new")])).unwrap(),
        );
        assert_eq!(verifier.keys().kids().collect::<Vec<_>>(), vec!["new"]);
        // Verified (and remembered) a moment ago, refused now its key is gone.
        assert_eq!(verifier.verify(&old_token), Err(AuthError::UnknownKey));
        assert!(verifier.verify(&new_token).is_ok());
    }

    #[test]
    fn a_token_without_nbf_verifies_and_is_remembered() {
        let f = fixture();
        let mut payload = valid_payload();
        payload.as_object_mut().unwrap().remove("nbf");
        let token = sign_json(&f, &payload);
        assert!(f.verifier.verify(&token).is_ok());
        assert!(f.remembered(&token_key(&token), now()).is_some());
        assert!(f.verifier.verify(&token).is_ok());
    }

    #[test]
    fn mapped_claim_names_and_space_separated_roles_give_the_principal() {
        let f = fixture();
        let verifier = TokenVerifier::new(VerifierConfig {
            claims: ClaimNames {
                user_id: "hsa_id".into(),
                organisation: "hsa_org".into(),
                unit: "hsa_unit".into(),
                roles: "tryggdel_roles".into(),
                region: "police_region".into(),
                name: "given_name".into(),
            },
            ..config(f.verifier.keys().as_ref().clone())
        })
        .unwrap();
        let now = now();
        let payload = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "opaque-subject",
            "exp": now + 600, "iat": now, "jti": "j-1",
            "hsa_id": "SE2321000016-1234", "hsa_org": "kommun-a", "hsa_unit": "enhet-1",
            "tryggdel_roles": "caseworker decision_maker", "police_region": "syd",
            "given_name": "Kim",
            // Tryggdel's own names are ignored once mapped away.
            "org": "someone-else", "roles": ["admin"],
        });
        let principal = verifier.verify(&sign_json(&f, &payload)).unwrap();
        assert_eq!(
            principal,
            Principal {
                user_id: "SE2321000016-1234".into(),
                organisation: "kommun-a".into(),
                unit: Some("enhet-1".into()),
                roles: vec![Role::Caseworker, Role::DecisionMaker],
                police_region: Some("syd".into()),
                display_name: Some("Kim".into()),
                token_id: "j-1".into(),
            }
        );
        let mut without = payload.clone();
        without.as_object_mut().unwrap().remove("hsa_org");
        assert_eq!(
            verifier.verify(&sign_json(&f, &without)),
            Err(AuthError::MissingClaim { name: "org" })
        );
    }
}
