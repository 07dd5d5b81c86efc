//! Minting tokens: for the development identity provider, the CLI and tests.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use zeroize::Zeroize;

use crate::claims::{check_identity, check_issuer_and_audience};
use crate::error::from_jwt_error;
use crate::key_set::ed25519_thumbprint;
use crate::{AuthError, Claims, KeySet, Role, keys};

/// What a [`TokenSigner`] needs.
#[derive(Clone)]
pub struct SignerConfig {
    /// Written into `iss`.
    pub issuer: String,
    /// Written into `aud`.
    pub audience: String,
    /// PKCS#8 Ed25519 private key PEM. Secret; `Debug` redacts it.
    pub private_key_pem: String,
}

impl std::fmt::Debug for SignerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// Who a token is for and how long it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// Becomes `sub`.
    pub user_id: String,
    /// Becomes `org`.
    pub organisation: String,
    /// Becomes `unit`.
    pub unit: Option<String>,
    /// Becomes `roles`.
    pub roles: Vec<Role>,
    /// Becomes `region`.
    pub police_region: Option<String>,
    /// Becomes `name`.
    pub display_name: Option<String>,
    /// `exp - iat`; at least one second.
    pub valid_for: Duration,
}

/// Signs EdDSA JWTs with one Ed25519 key, naming it in the header's `kid` by its RFC 7638
/// thumbprint (the `kid` of [`KeySet::single_ed25519_pem`] for its public key).
pub struct TokenSigner {
    issuer: String,
    audience: String,
    encoding_key: EncodingKey,
    public_key_pem: String,
    verifying_key: ed25519_dalek::VerifyingKey,
    kid: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Reads and checks the key. The PEM text in `config` is wiped afterwards.
    pub fn new(mut config: SignerConfig) -> Result<Self, AuthError> {
        let result = Self::from_config(&config);
        config.private_key_pem.zeroize();
        result
    }

    fn from_config(config: &SignerConfig) -> Result<Self, AuthError> {
        check_issuer_and_audience(&config.issuer, &config.audience)?;
        // Parse with ed25519-dalek first: `EncodingKey::from_ed_pem` only checks the
        // PEM label and would defer a broken key to the first signature.
        let signing_key = keys::parse_private_key_pem(&config.private_key_pem)?;
        let public_key_pem = keys::public_key_pem(&signing_key)?;
        let encoding_key = EncodingKey::from_ed_pem(config.private_key_pem.trim().as_bytes())
            .map_err(|_| AuthError::Key {
                context: "private key is not an ed25519 pkcs#8 pem",
            })?;
        Ok(Self {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            encoding_key,
            public_key_pem,
            verifying_key: signing_key.verifying_key(),
            kid: ed25519_thumbprint(&signing_key.verifying_key()),
        })
    }

    /// The SPKI PEM of the matching public key.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// The `kid` its tokens name: the thumbprint of its public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key set that verifies its tokens, for a [`crate::VerifierConfig`] or to publish.
    pub fn key_set(&self) -> KeySet {
        KeySet::ed25519(&self.verifying_key)
    }

    /// Mints a token for `request`: `iat = nbf = now`, `exp = now + valid_for`,
    /// `jti` a fresh UUID v4. Refuses a request the verifier would refuse.
    pub fn mint(&self, request: &TokenRequest) -> Result<String, AuthError> {
        check_identity(
            &request.user_id,
            &request.organisation,
            request.unit.as_deref(),
            &request.roles,
            request.police_region.as_deref(),
            request.display_name.as_deref(),
        )?;
        if request.valid_for.as_secs() == 0 {
            return Err(AuthError::InvalidClaim {
                name: "exp",
                reason: "validity must be at least one second",
            });
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let exp = i64::try_from(request.valid_for.as_secs())
            .ok()
            .and_then(|seconds| now.checked_add(seconds))
            .ok_or(AuthError::InvalidClaim {
                name: "exp",
                reason: "validity too long",
            })?;
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: request.user_id.clone(),
            exp,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            org: request.organisation.clone(),
            unit: request.unit.clone(),
            roles: request.roles.clone(),
            region: request.police_region.clone(),
            name: request.display_name.clone(),
        };
        self.mint_claims(&claims)
    }

    /// Signs `claims` exactly as given, with no checks: for tests that need
    /// expired, not-yet-valid, wrongly addressed or otherwise odd tokens.
    pub fn mint_claims(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key)
            .map_err(|error| from_jwt_error(&error))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{SigningKeyPair, generate_ed25519_key_pair};

    fn signer() -> TokenSigner {
        let pair = generate_ed25519_key_pair().unwrap();
        TokenSigner::new(SignerConfig {
            issuer: "https://idp.example".to_owned(),
            audience: "tryggdel".to_owned(),
            private_key_pem: pair.private_key_pem,
        })
        .unwrap()
    }

    /// A fresh key pair and a signer configuration holding its private key.
    fn pair_and_config() -> (SigningKeyPair, SignerConfig) {
        let pair = generate_ed25519_key_pair().unwrap();
        let config = SignerConfig {
            issuer: "iss".to_owned(),
            audience: "aud".to_owned(),
            private_key_pem: pair.private_key_pem.clone(),
        };
        (pair, config)
    }

    fn request() -> TokenRequest {
        TokenRequest {
            user_id: "u1".to_owned(),
            organisation: "org".to_owned(),
            unit: None,
            roles: vec![Role::Caseworker],
            police_region: None,
            display_name: None,
            valid_for: Duration::from_secs(300),
        }
    }

    #[test]
    fn minted_claims_have_the_documented_times_and_a_uuid_jti() {
        let signer = signer();
        let before = time::OffsetDateTime::now_utc().unix_timestamp();
        let token = signer.mint(&request()).unwrap();
        let after = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims: Claims = jsonwebtoken::dangerous::insecure_decode(&token)
            .unwrap()
            .claims;
        assert!(before <= claims.iat && claims.iat <= after);
        assert_eq!(claims.nbf, claims.iat);
        assert_eq!(claims.exp, claims.iat + 300);
        assert_eq!(
            uuid::Uuid::parse_str(&claims.jti)
                .unwrap()
                .get_version_num(),
            4
        );
        assert_eq!(claims.iss, "https://idp.example");
        assert_eq!(claims.aud, "tryggdel");
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(signer.kid()));
        assert_eq!(
            signer.key_set().kids().collect::<Vec<_>>(),
            vec![signer.kid()]
        );
        assert_eq!(
            KeySet::single_ed25519_pem(signer.public_key_pem()).unwrap(),
            signer.key_set()
        );
    }

    #[test]
    fn two_tokens_get_different_ids() {
        let signer = signer();
        let a: Claims = jsonwebtoken::dangerous::insecure_decode(signer.mint(&request()).unwrap())
            .unwrap()
            .claims;
        let b: Claims = jsonwebtoken::dangerous::insecure_decode(signer.mint(&request()).unwrap())
            .unwrap()
            .claims;
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn refuses_to_mint_what_the_verifier_would_refuse() {
        let signer = signer();
        let mut no_roles = request();
        no_roles.roles.clear();
        assert!(matches!(
            signer.mint(&no_roles),
            Err(AuthError::InvalidClaim { name: "roles", .. })
        ));
        let mut no_user = request();
        no_user.user_id.clear();
        assert!(matches!(
            signer.mint(&no_user),
            Err(AuthError::InvalidClaim { name: "sub", .. })
        ));
        let mut zero = request();
        zero.valid_for = Duration::from_millis(500);
        assert!(matches!(
            signer.mint(&zero),
            Err(AuthError::InvalidClaim { name: "exp", .. })
        ));
        let mut forever = request();
        forever.valid_for = Duration::from_secs(u64::MAX);
        assert!(matches!(
            signer.mint(&forever),
            Err(AuthError::InvalidClaim { name: "exp", .. })
        ));
    }

    #[test]
    fn bad_config_is_refused() {
        let (pair, config) = pair_and_config();
        let public_as_private = SignerConfig {
            private_key_pem: pair.public_key_pem.clone(),
            ..config.clone()
        };
        assert!(matches!(
            TokenSigner::new(public_as_private),
            Err(AuthError::Key { .. })
        ));
        let empty_issuer = SignerConfig {
            issuer: " ".to_owned(),
            ..config.clone()
        };
        assert!(matches!(
            TokenSigner::new(empty_issuer),
            Err(AuthError::InvalidConfig { .. })
        ));
        let empty_audience = SignerConfig {
            audience: String::new(),
            ..config.clone()
        };
        assert!(matches!(
            TokenSigner::new(empty_audience),
            Err(AuthError::InvalidConfig { .. })
        ));
        let signer = TokenSigner::new(config).unwrap();
        assert_eq!(signer.public_key_pem(), pair.public_key_pem);
    }

    #[test]
    fn debug_output_never_holds_the_private_key() {
        let (pair, config) = pair_and_config();
        let body = pair.private_key_pem.lines().nth(1).unwrap().to_owned();
        let printed_config = format!("{config:?}");
        assert!(!printed_config.contains(&body));
        assert!(printed_config.contains("<redacted>"));
        let signer = TokenSigner::new(config).unwrap();
        assert!(!format!("{signer:?}").contains(&body));
    }
}
