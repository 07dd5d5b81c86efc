//! tryggdel-auth: who is calling. Bearer tokens in gRPC metadata, JWTs verified against
//! the identity provider's key set, and the [`Principal`] a service authorises against.
//!
//! Services call [`bearer_token`] on the request metadata, then
//! [`TokenVerifier::verify`], and turn any [`AuthError`] into a `tonic::Status`
//! with [`AuthError::to_status`]. The keys are a [`KeySet`], read from a JWK Set
//! ([`KeySet::from_jwks_json`]) or one Ed25519 PEM ([`KeySet::single_ed25519_pem`]);
//! whoever fetches a JWK Set again swaps it in with [`TokenVerifier::replace_keys`].
//! [`TokenSigner`] and [`generate_ed25519_key_pair`] serve the development identity
//! provider, the CLI and tests. Authorisation policy (role × organisation × case) lives
//! elsewhere.
//!
//! # Invariants
//!
//! - Only asymmetric algorithms are accepted: EdDSA (Ed25519), ES256 (P-256), RS256 and
//!   PS256 ([`KeyAlgorithm`]). A key's algorithm is its own (from its type, and for RSA its
//!   JWK `alg`); a token's header must name a `kid` the key set holds and exactly that key's
//!   algorithm, and `jsonwebtoken`'s validation is pinned to it too. So `none`, `HS256` (the
//!   key-confusion attack with the public key as HMAC secret) and a token whose `alg` is not
//!   its key's are refused with [`AuthError::DisallowedAlgorithm`]; a token without a `kid`
//!   is invalid, one with an unknown `kid` is [`AuthError::UnknownKey`].
//! - A key set is checked whole when read: `kid`s present and unique, every key usable,
//!   symmetric keys, private key material and algorithms outside the allow-list refused
//!   naming the key; keys for encryption skipped; never empty.
//! - `exp`, `iss`, `aud`, `sub`, `iat` and `jti` are required, `nbf` is checked when present;
//!   issuer and audience are each a single configured value; clock leeway is at most
//!   [`MAX_LEEWAY_SECONDS`]. Which claims hold the identity is configurable
//!   ([`ClaimNames`]).
//! - A [`Principal`] exists only for a token that passed every check: non-empty user id of at
//!   most 128 characters, non-empty organisation, 1 to 8 distinct known roles, a `jti` and an
//!   `iat`; optional string claims are never empty.
//! - A verified token is remembered (bounded, by the SHA-256 of its text) with its times,
//!   checked again on every call, and only for the key set it verified with.
//! - The signer refuses to mint from a [`TokenRequest`] the verifier would refuse
//!   ([`TokenSigner::mint_claims`] is the deliberate, unchecked escape hatch for tests), and
//!   names its key in `kid` (its RFC 7638 thumbprint).
//! - No error message, status or `Debug` output contains a token, a claim value or private
//!   key material: error fields are `&'static str` (but the `kid` of a refused key of the
//!   configured key set), and private keys are redacted in `Debug`.
//! - Keys are checked when a key set, verifier or signer is built, not at the first token.
//! - No I/O, no async, no global state.

#![forbid(unsafe_code)]

mod bearer;
mod claims;
mod error;
mod key_set;
mod keys;
mod sign;
mod verify;

pub use bearer::{MAX_TOKEN_BYTES, bearer_token};
pub use claims::{
    Claims, MAX_DISPLAY_NAME_CHARS, MAX_IDENTIFIER_CHARS, MAX_ROLES, MAX_SUBJECT_CHARS, Principal,
    Role,
};
pub use error::AuthError;
pub use key_set::{KeyAlgorithm, KeySet, MAX_KEYS, MAX_KID_CHARS, MIN_RSA_BITS};
pub use keys::{SigningKeyPair, ed25519_private_key_pem, generate_ed25519_key_pair};
pub use sign::{SignerConfig, TokenRequest, TokenSigner};
pub use verify::{ClaimNames, MAX_LEEWAY_SECONDS, TokenVerifier, VerifierConfig};
