//! Reading the bearer token out of gRPC metadata.

use crate::AuthError;

/// Longest accepted token, in bytes (8 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The token from the single `authorization: Bearer <token>` metadata entry.
///
/// The scheme is matched case-insensitively (RFC 7235); spaces between the scheme
/// and the token are skipped. Refused: no entry or nothing after the scheme
/// ([`AuthError::MissingToken`]); several entries, a non-ASCII value, another
/// scheme, whitespace inside the token, or a token over [`MAX_TOKEN_BYTES`]
/// ([`AuthError::MalformedHeader`]).
pub fn bearer_token(metadata: &tonic::metadata::MetadataMap) -> Result<&str, AuthError> {
    let mut values = metadata.get_all("authorization").iter();
    let value = values.next().ok_or(AuthError::MissingToken)?;
    if values.next().is_some() {
        return Err(AuthError::MalformedHeader);
    }
    let value = value.to_str().map_err(|_| AuthError::MalformedHeader)?;
    parse_bearer(value)
}

fn parse_bearer(value: &str) -> Result<&str, AuthError> {
    const SCHEME: &str = "bearer";
    let value = value.trim();
    if value.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let scheme = value
        .get(..SCHEME.len())
        .ok_or(AuthError::MalformedHeader)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(AuthError::MalformedHeader);
    }
    let rest = &value[SCHEME.len()..];
    if rest.is_empty() {
        // "Bearer" with nothing after it.
        return Err(AuthError::MissingToken);
    }
    if !rest.starts_with(' ') {
        // e.g. "Bearerabc" or "Bearer\tabc".
        return Err(AuthError::MalformedHeader);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::MalformedHeader);
    }
    if token
        .chars()
        .any(|c| c.is_ascii_whitespace() || c.is_control())
    {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tonic::metadata::{MetadataMap, MetadataValue};

    fn with_authorization(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", value.parse().unwrap());
        metadata
    }

    /// What [`bearer_token`] reads from an `authorization` header holding `value`.
    fn token_from_header(value: &str) -> Result<String, AuthError> {
        bearer_token(&with_authorization(value)).map(str::to_owned)
    }

    /// Asserts that a header holding any of `values` is refused with `expected`.
    #[track_caller]
    fn assert_each_refused(values: &[&str], expected: AuthError) {
        for value in values {
            assert_eq!(token_from_header(value), Err(expected.clone()), "{value:?}");
        }
    }

    #[test]
    fn reads_a_bearer_token() {
        let metadata = with_authorization("Bearer abc.def.ghi");
        assert_eq!(bearer_token(&metadata), Ok("abc.def.ghi"));
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for value in ["bearer abc", "BEARER abc", "BeArEr abc", "Bearer   abc"] {
            assert_eq!(token_from_header(value).as_deref(), Ok("abc"), "{value}");
        }
    }

    #[test]
    fn missing_header_is_missing_token() {
        let metadata = MetadataMap::new();
        assert_eq!(bearer_token(&metadata), Err(AuthError::MissingToken));
    }

    #[test]
    fn other_metadata_is_not_a_token() {
        let mut metadata = MetadataMap::new();
        metadata.insert("x-authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&metadata), Err(AuthError::MissingToken));
    }

    #[test]
    fn empty_token_is_missing_token() {
        assert_each_refused(
            &["Bearer", "Bearer ", "Bearer    ", ""],
            AuthError::MissingToken,
        );
    }

    #[test]
    fn wrong_scheme_is_malformed() {
        let values = [
            "Basic dXNlcjpwYXNz",
            "Token abc",
            "abc.def.ghi",
            "Bearerabc",
            "Bear",
            "Bearer\tabc",
            "MAC abc",
        ];
        assert_each_refused(&values, AuthError::MalformedHeader);
    }

    #[test]
    fn whitespace_inside_token_is_malformed() {
        assert_eq!(
            bearer_token(&with_authorization("Bearer abc def")),
            Err(AuthError::MalformedHeader)
        );
    }

    #[test]
    fn oversized_token_is_malformed_and_limit_is_inclusive() {
        let at_limit = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES));
        assert_eq!(
            bearer_token(&with_authorization(&at_limit)).map(str::len),
            Ok(MAX_TOKEN_BYTES)
        );
        let over = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(
            bearer_token(&with_authorization(&over)),
            Err(AuthError::MalformedHeader)
        );
    }

    #[test]
    fn two_authorization_entries_are_malformed() {
        let mut metadata = with_authorization("Bearer abc");
        metadata.append("authorization", "Bearer def".parse().unwrap());
        assert_eq!(bearer_token(&metadata), Err(AuthError::MalformedHeader));
    }

    #[test]
    fn non_ascii_value_is_malformed() {
        let mut metadata = MetadataMap::new();
        let value = MetadataValue::try_from(b"Bearer \xff\xfe".as_slice()).unwrap();
        metadata.insert("authorization", value);
        assert_eq!(bearer_token(&metadata), Err(AuthError::MalformedHeader));
    }
}
