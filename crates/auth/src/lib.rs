//! tryggdel-auth: who is calling. Bearer tokens in gRPC metadata, EdDSA JWTs,
//! and the [`Principal`] a service authorises against.
//!
//! Services call [`bearer_token`] on the request metadata, then
//! [`TokenVerifier::verify`], and turn any [`AuthError`] into a `tonic::Status`
//! with [`AuthError::to_status`]. [`TokenSigner`] and
//! [`generate_ed25519_key_pair`] serve the development identity provider, the CLI
//! and tests. Authorisation policy (role × organisation × case) lives elsewhere.
//!
//! # Invariants
//!
//! - The verifier accepts EdDSA (Ed25519) only. The algorithm is pinned in the
//!   `jsonwebtoken` validation *and* checked in the header before any key is used,
//!   so `none`, `HS256` (the key-confusion attack with the public key as HMAC
//!   secret), `RS256` and the rest are refused with
//!   [`AuthError::DisallowedAlgorithm`].
//! - `exp`, `nbf`, `iss`, `aud` and `sub` are required; issuer and audience are
//!   each a single configured value; clock leeway is at most
//!   [`MAX_LEEWAY_SECONDS`].
//! - A [`Principal`] exists only for a token that passed every check: non-empty
//!   `sub` of at most 128 characters, non-empty `org`, 1 to 8 distinct known
//!   roles, a `jti` and an `iat`; optional string claims are never empty.
//! - The signer refuses to mint from a [`TokenRequest`] the verifier would refuse
//!   ([`TokenSigner::mint_claims`] is the deliberate, unchecked escape hatch for tests).
//! - No error message, status or `Debug` output contains a token, a claim value
//!   or private key material: error fields are `&'static str`, and private keys
//!   are redacted in `Debug`.
//! - Keys are checked when a verifier or signer is built, not at the first token.
//! - No I/O, no async, no global state.

#![forbid(unsafe_code)]

mod bearer;
mod claims;
mod error;
mod keys;
mod sign;
mod verify;

pub use bearer::{MAX_TOKEN_BYTES, bearer_token};
pub use claims::{
    Claims, MAX_DISPLAY_NAME_CHARS, MAX_IDENTIFIER_CHARS, MAX_ROLES, MAX_SUBJECT_CHARS, Principal,
    Role,
};
pub use error::AuthError;
pub use keys::{SigningKeyPair, generate_ed25519_key_pair};
pub use sign::{SignerConfig, TokenRequest, TokenSigner};
pub use verify::{MAX_LEEWAY_SECONDS, TokenVerifier, VerifierConfig};
