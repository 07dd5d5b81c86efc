//! Verifying tokens: algorithm, signature, issuer, audience, times, then our claims.
//!
//! A token that verified is remembered (by the SHA-256 of its exact text, with its `exp` and
//! `nbf`), so the next call with the same token skips the signature check and claim parsing —
//! the largest cost of an authenticated call. Its times are checked again on every call with
//! the same leeway; a token outside them goes through the full check, which refuses it. The
//! key and the rules are fixed for a verifier's life, so what verified once verifies again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::bearer::MAX_TOKEN_BYTES;
use crate::claims::{MAX_IDENTIFIER_CHARS, check_identity, check_issuer_and_audience, check_text};
use crate::error::from_jwt_error;
use crate::{AuthError, Principal, Role, keys};

/// Verified tokens remembered at most; when full, expired ones are dropped, then all.
const CACHE_CAPACITY: usize = 16_384;

/// Largest accepted clock leeway, in seconds.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// The registered claims `jsonwebtoken` must find before anything else is looked at.
const REQUIRED_SPEC_CLAIMS: [&str; 5] = ["exp", "nbf", "iss", "aud", "sub"];

/// What a [`TokenVerifier`] trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The only accepted `iss`.
    pub issuer: String,
    /// The only accepted `aud`.
    pub audience: String,
    /// The identity provider's Ed25519 public key, SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
    /// Clock skew allowed on `exp` and `nbf`, at most [`MAX_LEEWAY_SECONDS`] (callers use 30).
    pub leeway_seconds: u64,
}

/// Verifies EdDSA JWTs against one Ed25519 public key. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    decoding_key: DecodingKey,
    validation: Validation,
    verified: Arc<Mutex<HashMap<[u8; 32], Verified>>>,
}

/// A token that passed every check, and the times it is valid between.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    not_before: i64,
    expires_at: i64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .field("leeway_seconds", &self.validation.leeway)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Checks the configuration and reads the public key.
    pub fn new(config: VerifierConfig) -> Result<Self, AuthError> {
        check_issuer_and_audience(&config.issuer, &config.audience)?;
        if config.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(AuthError::InvalidConfig {
                reason: "leeway_seconds must be at most 300",
            });
        }
        // Parse with ed25519-dalek first: `DecodingKey::from_ed_pem` accepts any SPKI
        // bit string, and a short one would only fail (or panic) at the first verify.
        keys::parse_public_key_pem(&config.public_key_pem)?;
        let decoding_key = DecodingKey::from_ed_pem(config.public_key_pem.trim().as_bytes())
            .map_err(|_| AuthError::Key {
                context: "public key is not an ed25519 spki pem",
            })?;

        // Pinned: EdDSA only, whatever the token's header says.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_required_spec_claims(&REQUIRED_SPEC_CLAIMS);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.leeway = config.leeway_seconds;
        Ok(Self {
            decoding_key,
            validation,
            verified: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Verifies `token` and returns who it is for.
    ///
    /// In order: size, header (`alg` must be `EdDSA`, no `crit`), signature, `iss`,
    /// `aud`, `exp`, `nbf` (with leeway), then `sub`, `org`, `roles`, `jti`, `iat`
    /// and the optional `unit`, `region`, `name`.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidToken {
                reason: "token too long",
            });
        }
        let key = token_key(token);
        let now = unix_now();
        if let Some(principal) = self.remembered(&key, now) {
            return Ok(principal);
        }
        check_header(token)?;
        let claims = self.decode_claims(token)?;
        let principal = principal_from_claims(&claims)?;
        if let (Some(not_before), Some(expires_at)) = (
            claims.get("nbf").and_then(Value::as_i64),
            claims.get("exp").and_then(Value::as_i64),
        ) {
            self.remember(
                key,
                Verified {
                    principal: principal.clone(),
                    not_before,
                    expires_at,
                },
                now,
            );
        }
        Ok(principal)
    }

    /// The principal of a token verified before, if its times still hold at `now` (with the
    /// same leeway as the full check).
    fn remembered(&self, key: &[u8; 32], now: i64) -> Option<Principal> {
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        let verified = match self.verified.lock() {
            Ok(verified) => verified,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = verified.get(key)?;
        (entry.expires_at >= now - leeway && entry.not_before <= now + leeway)
            .then(|| entry.principal.clone())
    }

    fn remember(&self, key: [u8; 32], entry: Verified, now: i64) {
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
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

    /// Signature and registered-claim checks by `jsonwebtoken`, with the pinned
    /// algorithm list; on its own this already refuses every non-EdDSA header.
    fn decode_claims(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding_key, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| from_jwt_error(&error))
    }
}

fn token_key(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Looks at the header before any key is touched, so that `none`, `HS256`,
/// `RS256` and names `jsonwebtoken` does not know all give
/// [`AuthError::DisallowedAlgorithm`] rather than a parse error.
fn check_header(token: &str) -> Result<(), AuthError> {
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
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "EdDSA" => {}
        Some(_) => return Err(AuthError::DisallowedAlgorithm),
        None => {
            return Err(AuthError::InvalidToken {
                reason: "token header has no alg",
            });
        }
    }
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; we know none.
    if header.contains_key("crit") {
        return Err(AuthError::InvalidToken {
            reason: "token header has unsupported critical extensions",
        });
    }
    Ok(())
}

/// Builds the principal from a payload whose signature and registered claims
/// `jsonwebtoken` has already checked.
fn principal_from_claims(claims: &Map<String, Value>) -> Result<Principal, AuthError> {
    let user_id = required_string(claims, "sub")?;
    let organisation = required_string(claims, "org")?;
    let token_id = required_string(claims, "jti")?;
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
    let roles = required_roles(claims)?;
    let unit = optional_string(claims, "unit")?;
    let police_region = optional_string(claims, "region")?;
    let display_name = optional_string(claims, "name")?;
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

fn required_string(claims: &Map<String, Value>, name: &'static str) -> Result<String, AuthError> {
    optional_string(claims, name)?.ok_or(AuthError::MissingClaim { name })
}

fn optional_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(AuthError::InvalidClaim {
            name,
            reason: "not a string",
        }),
    }
}

fn required_roles(claims: &Map<String, Value>) -> Result<Vec<Role>, AuthError> {
    const NAME: &str = "roles";
    let values = match claims.get(NAME) {
        None | Some(Value::Null) => return Err(AuthError::MissingClaim { name: NAME }),
        Some(Value::Array(values)) => values,
        Some(_) => {
            return Err(AuthError::InvalidClaim {
                name: NAME,
                reason: "not an array",
            });
        }
    };
    // Checked here too so an enormous array is refused before it is walked.
    if values.len() > crate::claims::MAX_ROLES {
        return Err(AuthError::InvalidClaim {
            name: NAME,
            reason: "too many roles",
        });
    }
    values
        .iter()
        .map(|value| {
            value
                .as_str()
                .and_then(Role::parse)
                .ok_or(AuthError::InvalidClaim {
                    name: NAME,
                    reason: "unknown role",
                })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
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
        let verifier = TokenVerifier::new(VerifierConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            public_key_pem: pair.public_key_pem.clone(),
            leeway_seconds: 30,
        })
        .unwrap();
        Fixture {
            pair,
            signer,
            verifier,
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
        /// check) and by `decode_claims` alone (jsonwebtoken's pinned algorithm list: defence
        /// in depth).
        fn assert_algorithm_refused(&self, token: &str) {
            assert_eq!(
                self.verifier.verify(token),
                Err(AuthError::DisallowedAlgorithm)
            );
            assert_eq!(
                self.verifier.decode_claims(token),
                Err(AuthError::DisallowedAlgorithm)
            );
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

    /// Signs an arbitrary payload with the fixture's real key.
    fn sign_json(fixture: &Fixture, payload: &Value) -> String {
        let key = EncodingKey::from_ed_pem(fixture.pair.private_key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), payload, &key).unwrap()
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
        let other_signer = signer_for(other.private_key_pem);
        let token = other_signer.mint(&police_request()).unwrap();
        f.assert_invalid_token(&token);
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

    /// The key-confusion attack: HS256 with the (public) PEM text as the HMAC secret.
    fn hs256_with_public_key_as_secret(f: &Fixture) -> String {
        let key = EncodingKey::from_secret(f.pair.public_key_pem.as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &valid_claims(), &key).unwrap()
    }

    #[test]
    fn hs256_token_keyed_with_the_public_key_is_refused_even_by_the_pinned_validation_alone() {
        let f = fixture();
        f.assert_algorithm_refused(&hs256_with_public_key_as_secret(&f));
    }

    #[test]
    fn rs256_header_is_refused() {
        let f = fixture();
        let token = f.signer.mint_claims(&valid_claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header = b64(&json!({ "alg": "RS256", "typ": "JWT" }));
        let forged = format!("{header}.{}.{}", parts[1], parts[2]);
        f.assert_algorithm_refused(&forged);
    }

    #[test]
    fn unsigned_alg_none_token_is_refused() {
        let f = fixture();
        let payload = b64(&valid_payload());
        for alg in ["none", "None", "NONE"] {
            let header = b64(&json!({ "alg": alg, "typ": "JWT" }));
            let token = format!("{header}.{payload}.");
            assert_eq!(
                f.verifier.verify(&token),
                Err(AuthError::DisallowedAlgorithm),
                "{alg}"
            );
            assert!(f.verifier.decode_claims(&token).is_err(), "{alg}");
        }
    }

    #[test]
    fn eddsa_header_with_empty_signature_is_refused() {
        let f = fixture();
        let header = b64(&json!({ "alg": "EdDSA", "typ": "JWT" }));
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
            json!("caseworker"),
            json!(vec!["caseworker"; 9]),
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
        for name in ["exp", "nbf", "iss", "aud", "sub", "org", "jti", "iat"] {
            let mut payload = valid_payload();
            payload.as_object_mut().unwrap().remove(name);
            assert_eq!(
                f.verify_json(&payload),
                Err(AuthError::MissingClaim {
                    name: match name {
                        "exp" => "exp",
                        "nbf" => "nbf",
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
        let config = VerifierConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            public_key_pem: pair.public_key_pem.clone(),
            leeway_seconds: 30,
        };
        assert!(TokenVerifier::new(config.clone()).is_ok());
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
            let case = VerifierConfig {
                public_key_pem: pem,
                ..config.clone()
            };
            assert!(matches!(
                TokenVerifier::new(case),
                Err(AuthError::Key { .. })
            ));
        }
    }

    #[test]
    fn verifier_built_from_the_signers_public_key_accepts_its_tokens() {
        let f = fixture();
        let verifier = TokenVerifier::new(VerifierConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            public_key_pem: f.signer.public_key_pem().to_owned(),
            leeway_seconds: 0,
        })
        .unwrap();
        let token = f.signer.mint(&police_request()).unwrap();
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn a_verified_token_is_remembered_only_while_its_times_hold() {
        let fixture = fixture();
        let token = fixture.signer.mint(&police_request()).unwrap();
        let first = fixture.verifier.verify(&token).unwrap();
        assert_eq!(fixture.verifier.verify(&token).unwrap(), first);
        let key = token_key(&token);
        assert_eq!(fixture.verifier.remembered(&key, now()), Some(first));
        // 600 s of validity and 30 s of leeway: remembered at +629, not at +631 or before nbf.
        assert!(
            fixture
                .verifier
                .remembered(&key, now() + 600 + 29)
                .is_some()
        );
        assert_eq!(fixture.verifier.remembered(&key, now() + 600 + 31), None);
        assert_eq!(fixture.verifier.remembered(&key, now() - 31), None);
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
        assert_eq!(fixture.verifier.remembered(&token_key(&token), now()), None);
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
        for i in 0..(CACHE_CAPACITY + 10) {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            key[31] = 1;
            fixture.verifier.remember(
                key,
                Verified {
                    principal: principal.clone(),
                    not_before: now(),
                    expires_at: now() + 60,
                },
                now(),
            );
        }
        assert!(fixture.verifier.verified.lock().unwrap().len() <= CACHE_CAPACITY);
    }
}
