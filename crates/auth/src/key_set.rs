//! The keys tokens are verified with: a JSON Web Key Set (RFC 7517) read into keys by `kid`,
//! each verifying with the one algorithm its own type gives it, from the allow-list
//! [`KeyAlgorithm`].
//!
//! A key set is checked whole when it is read: every key must be usable (a point on its
//! curve, an RSA modulus of 2048 to 4096 bits), its `kid` present and unique, its `alg` (if
//! given) allowed and in agreement with its type. Symmetric (`oct`) keys, private key material
//! and algorithms outside the allow-list refuse the whole set, naming the key. Keys meant for
//! encryption (`use: "enc"`) are skipped.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value, json};

use crate::{AuthError, keys};

/// Most keys one key set may hold (identity providers publish a handful).
pub const MAX_KEYS: usize = 64;
/// Longest accepted `kid`, in characters.
pub const MAX_KID_CHARS: usize = 128;
/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The JWK members that hold private or secret key material: a key set holding any of them is
/// refused, as a verifier has no business with them.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// An algorithm tokens may be signed with: asymmetric only, never `HS*` or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 (`EdDSA`), for `OKP` keys on `Ed25519`.
    EdDsa,
    /// ECDSA on P-256 with SHA-256 (`ES256`), for `EC` keys on `P-256`.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`), for `RSA` keys.
    Rs256,
    /// RSASSA-PSS with SHA-256 (`PS256`), for `RSA` keys.
    Ps256,
}

impl KeyAlgorithm {
    /// Every allowed algorithm.
    pub const ALL: [KeyAlgorithm; 4] = [
        KeyAlgorithm::EdDsa,
        KeyAlgorithm::Es256,
        KeyAlgorithm::Rs256,
        KeyAlgorithm::Ps256,
    ];

    /// The JOSE name, as in a token's `alg` header and a JWK's `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDsa => "EdDSA",
            KeyAlgorithm::Es256 => "ES256",
            KeyAlgorithm::Rs256 => "RS256",
            KeyAlgorithm::Ps256 => "PS256",
        }
    }

    /// The algorithm of a JOSE name, exactly (case-sensitive); `None` for anything outside the
    /// allow-list, `none` and every `HS*` included.
    pub fn parse(name: &str) -> Option<KeyAlgorithm> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == name)
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            KeyAlgorithm::EdDsa => Algorithm::EdDSA,
            KeyAlgorithm::Es256 => Algorithm::ES256,
            KeyAlgorithm::Rs256 => Algorithm::RS256,
            KeyAlgorithm::Ps256 => Algorithm::PS256,
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Public keys by `kid`, each with its algorithm. Never empty. Cheap enough to clone.
#[derive(Clone)]
pub struct KeySet {
    keys: BTreeMap<String, VerificationKey>,
}

/// One key of a [`KeySet`].
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) decoding_key: DecodingKey,
    /// The key as [`KeySet::to_jwks_json`] publishes it: its public members, `kid`, `use` and
    /// `alg`.
    public_jwk: Map<String, Value>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.keys
                    .iter()
                    .map(|(kid, key)| (kid, key.algorithm.as_str())),
            )
            .finish()
    }
}

impl PartialEq for KeySet {
    fn eq(&self, other: &KeySet) -> bool {
        self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .zip(&other.keys)
                .all(|((kid, key), (other_kid, other_key))| {
                    kid == other_kid && key.public_jwk == other_key.public_jwk
                })
    }
}

impl Eq for KeySet {}

impl KeySet {
    /// Reads a JWK Set (`{"keys": [...]}`), checking every key (see the module documentation).
    pub fn from_jwks_json(text: &str) -> Result<KeySet, AuthError> {
        let document: Value = serde_json::from_str(text).map_err(|_| AuthError::InvalidConfig {
            reason: "the key set is not json",
        })?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(AuthError::InvalidConfig {
                reason: "the key set has no keys array",
            });
        };
        if entries.len() > MAX_KEYS {
            return Err(AuthError::InvalidConfig {
                reason: "the key set holds more than 64 keys",
            });
        }
        let mut keys = BTreeMap::new();
        for entry in entries {
            let Value::Object(jwk) = entry else {
                return Err(AuthError::InvalidConfig {
                    reason: "a key in the key set is not a json object",
                });
            };
            let kid = kid_of(jwk)?;
            let Some(key) = read_key(&kid, jwk)? else {
                continue;
            };
            if keys.insert(kid.clone(), key).is_some() {
                return Err(unusable(&kid, "its kid appears more than once"));
            }
        }
        if keys.is_empty() {
            return Err(AuthError::InvalidConfig {
                reason: "the key set holds no signing key",
            });
        }
        Ok(KeySet { keys })
    }

    /// The key set of one Ed25519 public key (SPKI PEM), whose `kid` is its RFC 7638 JWK
    /// thumbprint: the form of a single configured key, and of the development identity
    /// provider's, whose signer names the same `kid`.
    pub fn single_ed25519_pem(pem: &str) -> Result<KeySet, AuthError> {
        Ok(KeySet::ed25519(&keys::parse_public_key_pem(pem)?))
    }

    /// The key set of one Ed25519 key, named by its thumbprint.
    pub(crate) fn ed25519(key: &ed25519_dalek::VerifyingKey) -> KeySet {
        let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
        let kid = ed25519_thumbprint(key);
        let verification = VerificationKey {
            algorithm: KeyAlgorithm::EdDsa,
            decoding_key: DecodingKey::from_ed_der(key.as_bytes()),
            public_jwk: public_jwk(
                &kid,
                KeyAlgorithm::EdDsa,
                json!({ "kty": "OKP", "crv": "Ed25519", "x": x }),
            ),
        };
        KeySet {
            keys: BTreeMap::from([(kid, verification)]),
        }
    }

    /// The set as a JWK Set document, for publishing: each key's public members, `kid`,
    /// `use: "sig"` and `alg`.
    pub fn to_jwks_json(&self) -> String {
        let keys: Vec<&Map<String, Value>> =
            self.keys.values().map(|key| &key.public_jwk).collect();
        json!({ "keys": keys }).to_string()
    }

    /// The `kid`s, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The algorithm of the key `kid`, if the set holds it.
    pub fn algorithm(&self, kid: &str) -> Option<KeyAlgorithm> {
        self.keys.get(kid).map(|key| key.algorithm)
    }

    /// How many keys the set holds (at least one).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a key set holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }
}

/// The RFC 7638 thumbprint of an Ed25519 key: base64url SHA-256 of
/// `{"crv":"Ed25519","kty":"OKP","x":"…"}`.
pub(crate) fn ed25519_thumbprint(key: &ed25519_dalek::VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    thumbprint(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", &x)])
}

/// RFC 7638: the required members in lexicographic order, no whitespace, SHA-256, base64url.
fn thumbprint(members: &[(&str, &str)]) -> String {
    use sha2::Digest as _;
    let ordered: BTreeMap<&str, &str> = members.iter().copied().collect();
    // Serialising a map of plain strings cannot fail.
    let canonical = serde_json::to_string(&ordered).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

fn unusable(kid: &str, reason: &'static str) -> AuthError {
    AuthError::UnusableKey {
        kid: kid.to_owned(),
        reason,
    }
}

/// The key's `kid`: a non-empty string of printable characters, bounded.
fn kid_of(jwk: &Map<String, Value>) -> Result<String, AuthError> {
    let Some(Value::String(kid)) = jwk.get("kid") else {
        return Err(AuthError::InvalidConfig {
            reason: "a key in the key set has no kid",
        });
    };
    if kid.is_empty() || kid.chars().count() > MAX_KID_CHARS || kid.chars().any(char::is_control) {
        return Err(AuthError::InvalidConfig {
            reason: "a key in the key set has an empty, overlong or unprintable kid",
        });
    }
    Ok(kid.clone())
}

/// Reads one JWK; `None` for a key meant for encryption.
fn read_key(kid: &str, jwk: &Map<String, Value>) -> Result<Option<VerificationKey>, AuthError> {
    match jwk.get("use") {
        None => {}
        Some(Value::String(usage)) if usage == "sig" => {}
        Some(Value::String(usage)) if usage == "enc" => return Ok(None),
        Some(_) => return Err(unusable(kid, "its use is neither sig nor enc")),
    }
    let kty = match jwk.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        _ => return Err(unusable(kid, "it has no kty")),
    };
    if kty == "oct" {
        return Err(unusable(
            kid,
            "it is a symmetric (oct) key: only asymmetric algorithms are allowed",
        ));
    }
    if PRIVATE_MEMBERS
        .iter()
        .any(|member| jwk.contains_key(*member))
    {
        return Err(unusable(kid, "it holds private key material"));
    }
    let declared =
        match jwk.get("alg") {
            None => None,
            Some(Value::String(alg)) => Some(KeyAlgorithm::parse(alg).ok_or_else(|| {
                unusable(kid, "its alg is not one of EdDSA, ES256, RS256 and PS256")
            })?),
            Some(_) => return Err(unusable(kid, "its alg is not a string")),
        };
    let (algorithm, decoding_key, public) = match kty {
        "OKP" => okp_key(kid, jwk, declared)?,
        "EC" => ec_key(kid, jwk, declared)?,
        "RSA" => rsa_key(kid, jwk, declared)?,
        _ => return Err(unusable(kid, "its kty is not OKP, EC or RSA")),
    };
    Ok(Some(VerificationKey {
        algorithm,
        decoding_key,
        public_jwk: public_jwk(kid, algorithm, public),
    }))
}

/// The key's algorithm: the one its type allows, and the JWK's `alg` must not say otherwise.
fn algorithm_of(
    kid: &str,
    declared: Option<KeyAlgorithm>,
    allowed: &[KeyAlgorithm],
) -> Result<KeyAlgorithm, AuthError> {
    match declared {
        None => Ok(allowed[0]),
        Some(algorithm) if allowed.contains(&algorithm) => Ok(algorithm),
        Some(_) => Err(unusable(kid, "its alg contradicts its kty or crv")),
    }
}

type ReadKey = (KeyAlgorithm, DecodingKey, Value);

fn okp_key(
    kid: &str,
    jwk: &Map<String, Value>,
    declared: Option<KeyAlgorithm>,
) -> Result<ReadKey, AuthError> {
    if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
        return Err(unusable(kid, "an OKP key must be on the Ed25519 curve"));
    }
    let algorithm = algorithm_of(kid, declared, &[KeyAlgorithm::EdDsa])?;
    let x: [u8; 32] = member_bytes(kid, jwk, "x")?
        .try_into()
        .map_err(|_| unusable(kid, "its x is not 32 bytes"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
        .map_err(|_| unusable(kid, "its x is not an Ed25519 public key"))?;
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    Ok((
        algorithm,
        DecodingKey::from_ed_der(key.as_bytes()),
        json!({ "kty": "OKP", "crv": "Ed25519", "x": x }),
    ))
}

fn ec_key(
    kid: &str,
    jwk: &Map<String, Value>,
    declared: Option<KeyAlgorithm>,
) -> Result<ReadKey, AuthError> {
    if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
        return Err(unusable(kid, "an EC key must be on the P-256 curve"));
    }
    let algorithm = algorithm_of(kid, declared, &[KeyAlgorithm::Es256])?;
    let x = member_bytes(kid, jwk, "x")?;
    let y = member_bytes(kid, jwk, "y")?;
    if x.len() != 32 || y.len() != 32 {
        return Err(unusable(kid, "its x and y are not 32 bytes each"));
    }
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    p256::PublicKey::from_sec1_bytes(&point)
        .map_err(|_| unusable(kid, "its x and y are not a point on P-256"))?;
    Ok((
        algorithm,
        DecodingKey::from_ec_der(&point),
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&x),
            "y": URL_SAFE_NO_PAD.encode(&y),
        }),
    ))
}

fn rsa_key(
    kid: &str,
    jwk: &Map<String, Value>,
    declared: Option<KeyAlgorithm>,
) -> Result<ReadKey, AuthError> {
    use rsa::traits::PublicKeyParts as _;
    let algorithm = algorithm_of(kid, declared, &[KeyAlgorithm::Rs256, KeyAlgorithm::Ps256])?;
    let n = member_bytes(kid, jwk, "n")?;
    let e = member_bytes(kid, jwk, "e")?;
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .map_err(|_| unusable(kid, "its n and e are not an RSA public key"))?;
    if key.n().bits() < MIN_RSA_BITS {
        return Err(unusable(kid, "its RSA modulus is shorter than 2048 bits"));
    }
    let n = key.n().to_bytes_be();
    let e = key.e().to_bytes_be();
    Ok((
        algorithm,
        DecodingKey::from_rsa_raw_components(&n, &e),
        json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(&n),
            "e": URL_SAFE_NO_PAD.encode(&e),
        }),
    ))
}

/// A base64url member's bytes (unpadded, as RFC 7518 writes them; trailing padding is
/// tolerated).
fn member_bytes(
    kid: &str,
    jwk: &Map<String, Value>,
    member: &'static str,
) -> Result<Vec<u8>, AuthError> {
    let Some(Value::String(text)) = jwk.get(member) else {
        return Err(unusable(kid, missing_member(member)));
    };
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| unusable(kid, "a key member is not base64url"))
}

fn missing_member(member: &str) -> &'static str {
    match member {
        "x" => "it has no x",
        "y" => "it has no y",
        "n" => "it has no n",
        "e" => "it has no e",
        _ => "a key member is missing",
    }
}

/// The published form: the key's public members plus `kid`, `use` and `alg`.
fn public_jwk(kid: &str, algorithm: KeyAlgorithm, public: Value) -> Map<String, Value> {
    let mut jwk = match public {
        Value::Object(members) => members,
        _ => Map::new(),
    };
    jwk.insert("kid".into(), Value::String(kid.to_owned()));
    jwk.insert("use".into(), Value::String("sig".into()));
    jwk.insert("alg".into(), Value::String(algorithm.as_str().to_owned()));
    jwk
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::generate_ed25519_key_pair;

    /// A throwaway RSA key for tests (`openssl genrsa -traditional 2048`).
    pub(crate) const RSA_PRIVATE_KEY: &str = include_str!("testdata/rsa-2048.pem");

    /// The public JWK of the test RSA key, under `kid`, with `alg` if given.
    pub(crate) fn rsa_jwk(kid: &str, alg: Option<&str>) -> Value {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(RSA_PRIVATE_KEY).unwrap();
        let mut jwk = json!({
            "kty": "RSA",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        });
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        jwk
    }

    /// A fresh P-256 key: its PKCS#8 DER (for signing) and its public JWK under `kid`.
    pub(crate) fn p256_key(kid: &str) -> (Vec<u8>, Value) {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use p256::pkcs8::EncodePrivateKey as _;
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = secret.public_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        });
        (secret.to_pkcs8_der().unwrap().as_bytes().to_vec(), jwk)
    }

    /// The public JWK of an Ed25519 SPKI PEM under `kid`.
    pub(crate) fn ed25519_jwk(public_key_pem: &str, kid: &str) -> Value {
        let key = keys::parse_public_key_pem(public_key_pem).unwrap();
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
        })
    }

    pub(crate) fn jwks(keys: &[Value]) -> String {
        json!({ "keys": keys }).to_string()
    }

    fn refusal(keys: &[Value]) -> AuthError {
        KeySet::from_jwks_json(&jwks(keys)).unwrap_err()
    }

    #[test]
    fn each_key_type_gets_its_own_algorithm() {
        let pair = generate_ed25519_key_pair().unwrap();
        let (_, ec) = p256_key("ec");
        let set = KeySet::from_jwks_json(&jwks(&[
            ed25519_jwk(&pair.public_key_pem, "ed"),
            ec,
            rsa_jwk("rsa-default", None),
            rsa_jwk("rsa-rs", Some("RS256")),
            rsa_jwk("rsa-ps", Some("PS256")),
        ]))
        .unwrap();
        assert_eq!(set.len(), 5);
        assert_eq!(set.algorithm("ed"), Some(KeyAlgorithm::EdDsa));
        assert_eq!(set.algorithm("ec"), Some(KeyAlgorithm::Es256));
        assert_eq!(set.algorithm("rsa-default"), Some(KeyAlgorithm::Rs256));
        assert_eq!(set.algorithm("rsa-rs"), Some(KeyAlgorithm::Rs256));
        assert_eq!(set.algorithm("rsa-ps"), Some(KeyAlgorithm::Ps256));
        assert_eq!(set.algorithm("other"), None);
    }

    #[test]
    fn a_published_key_set_reads_back_as_the_same_set() {
        let pair = generate_ed25519_key_pair().unwrap();
        let (_, ec) = p256_key("ec");
        let set = KeySet::from_jwks_json(&jwks(&[
            ed25519_jwk(&pair.public_key_pem, "ed"),
            ec,
            rsa_jwk("rsa", Some("PS256")),
        ]))
        .unwrap();
        let published = set.to_jwks_json();
        let again = KeySet::from_jwks_json(&published).unwrap();
        assert_eq!(again, set);
        let document: Value = serde_json::from_str(&published).unwrap();
        for key in document["keys"].as_array().unwrap() {
            assert_eq!(key["use"], "sig");
            assert!(key.get("d").is_none());
        }
    }

    #[test]
    fn a_single_pem_key_is_named_by_its_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let key = ed25519_dalek::VerifyingKey::from_bytes(
            &URL_SAFE_NO_PAD.decode(x).unwrap().try_into().unwrap(),
        )
        .unwrap();
        assert_eq!(
            ed25519_thumbprint(&key),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        let pair = generate_ed25519_key_pair().unwrap();
        let set = KeySet::single_ed25519_pem(&pair.public_key_pem).unwrap();
        let parsed = keys::parse_public_key_pem(&pair.public_key_pem).unwrap();
        assert_eq!(
            set.kids().collect::<Vec<_>>(),
            vec![ed25519_thumbprint(&parsed)]
        );
        assert!(matches!(
            KeySet::single_ed25519_pem(&pair.private_key_pem),
            Err(AuthError::Key { .. })
        ));
    }

    #[test]
    fn keys_for_encryption_are_skipped_and_a_set_of_none_is_refused() {
        let pair = generate_ed25519_key_pair().unwrap();
        let mut encryption = rsa_jwk("enc", None);
        encryption["use"] = json!("enc");
        encryption["alg"] = json!("RSA-OAEP");
        let set = KeySet::from_jwks_json(&jwks(&[
            encryption.clone(),
            ed25519_jwk(&pair.public_key_pem, "sig"),
        ]))
        .unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), vec!["sig"]);
        assert!(matches!(
            refusal(&[encryption]),
            AuthError::InvalidConfig { .. }
        ));
        assert!(matches!(refusal(&[]), AuthError::InvalidConfig { .. }));
    }

    #[test]
    fn symmetric_keys_and_algorithms_outside_the_allow_list_are_refused_naming_the_key() {
        let pair = generate_ed25519_key_pair().unwrap();
        let ed = ed25519_jwk(&pair.public_key_pem, "good");
        let hmac = json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256" });
        let mut none = rsa_jwk("none", None);
        none["alg"] = json!("none");
        let mut rs384 = rsa_jwk("rs384", None);
        rs384["alg"] = json!("RS384");
        let mut hs_on_rsa = rsa_jwk("hs-on-rsa", None);
        hs_on_rsa["alg"] = json!("HS256");
        for (bad, kid) in [
            (hmac, "hmac"),
            (none, "none"),
            (rs384, "rs384"),
            (hs_on_rsa, "hs-on-rsa"),
        ] {
            let error = refusal(&[ed.clone(), bad]);
            assert!(
                matches!(&error, AuthError::UnusableKey { kid: named, .. } if named == kid),
                "{error:?}"
            );
            assert!(error.to_string().contains(kid), "{error}");
        }
    }

    #[test]
    fn an_alg_contradicting_the_key_type_is_refused() {
        let pair = generate_ed25519_key_pair().unwrap();
        let mut ed_as_es = ed25519_jwk(&pair.public_key_pem, "ed");
        ed_as_es["alg"] = json!("ES256");
        let (_, mut ec_as_rs) = p256_key("ec");
        ec_as_rs["alg"] = json!("RS256");
        let mut rsa_as_ed = rsa_jwk("rsa", None);
        rsa_as_ed["alg"] = json!("EdDSA");
        for bad in [ed_as_es, ec_as_rs, rsa_as_ed] {
            assert!(matches!(
                refusal(&[bad]),
                AuthError::UnusableKey {
                    reason: "its alg contradicts its kty or crv",
                    ..
                }
            ));
        }
    }

    #[test]
    fn kids_are_required_and_unique() {
        let pair = generate_ed25519_key_pair().unwrap();
        let mut no_kid = ed25519_jwk(&pair.public_key_pem, "x");
        no_kid.as_object_mut().unwrap().remove("kid");
        assert!(matches!(
            refusal(&[no_kid]),
            AuthError::InvalidConfig { .. }
        ));
        let mut empty_kid = ed25519_jwk(&pair.public_key_pem, "x");
        empty_kid["kid"] = json!("");
        assert!(matches!(
            refusal(&[empty_kid]),
            AuthError::InvalidConfig { .. }
        ));
        let key = ed25519_jwk(&pair.public_key_pem, "twice");
        assert!(matches!(
            refusal(&[key.clone(), rsa_jwk("twice", None)]),
            AuthError::UnusableKey { kid, .. } if kid == "twice"
        ));
    }

    #[test]
    fn broken_or_private_keys_are_refused() {
        let pair = generate_ed25519_key_pair().unwrap();
        let ed = ed25519_jwk(&pair.public_key_pem, "k");
        let mut short_x = ed.clone();
        short_x["x"] = json!("AAAA");
        let mut private = ed.clone();
        private["d"] = json!("AAAA");
        let mut x448 = ed.clone();
        x448["crv"] = json!("Ed448");
        let (_, ec) = p256_key("k");
        let mut off_curve = ec.clone();
        off_curve["y"] = off_curve["x"].clone();
        let mut p384 = ec.clone();
        p384["crv"] = json!("P-384");
        let mut small_rsa = rsa_jwk("k", None);
        small_rsa["n"] = json!(URL_SAFE_NO_PAD.encode([0xc5u8; 128]));
        let mut no_kty = ed.clone();
        no_kty.as_object_mut().unwrap().remove("kty");
        let mut unknown_use = ed.clone();
        unknown_use["use"] = json!("both");
        for bad in [
            short_x,
            private,
            x448,
            off_curve,
            p384,
            small_rsa,
            no_kty,
            unknown_use,
        ] {
            assert!(
                matches!(
                    refusal(std::slice::from_ref(&bad)),
                    AuthError::UnusableKey { .. }
                ),
                "{bad}"
            );
        }
        for text in ["not json", "{}", r#"{"keys": {}}"#, r#"{"keys": [1]}"#] {
            assert!(matches!(
                KeySet::from_jwks_json(text),
                Err(AuthError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn algorithm_names_are_the_allow_list_exactly() {
        for algorithm in KeyAlgorithm::ALL {
            assert_eq!(KeyAlgorithm::parse(algorithm.as_str()), Some(algorithm));
        }
        for name in [
            "none", "HS256", "HS512", "RS384", "ES384", "eddsa", "Ed25519", "",
        ] {
            assert_eq!(KeyAlgorithm::parse(name), None, "{name}");
        }
    }
}
