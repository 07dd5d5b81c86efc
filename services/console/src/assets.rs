//! The console's own static files, embedded in the binary and served under names that carry
//! their version, so they may be cached for good. No script or style comes from anywhere
//! else (the Content-Security-Policy says `'self'` only).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Shared;

/// htmx 2.0.11 from npm (`htmx.org`), unchanged; SHA-256
/// d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717.
pub const HTMX_PATH: &str = "/assets/htmx-2.0.11.min.js";
pub const CSS_PATH: &str = "/assets/console-2.css";
pub const LIVE_PATH: &str = "/assets/live-2.js";

const HTMX: &[u8] = include_bytes!("../assets/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("../assets/console.css");
const LIVE: &[u8] = include_bytes!("../assets/live.js");

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(HTMX_PATH, get(|| async { asset(HTMX, "text/javascript") }))
        .route(CSS_PATH, get(|| async { asset(CSS, "text/css") }))
        .route(LIVE_PATH, get(|| async { asset(LIVE, "text/javascript") }))
}

fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sha2::Digest as _;

    #[test]
    fn htmx_is_the_pinned_release() {
        assert_eq!(
            hex::encode(sha2::Sha256::digest(super::HTMX)),
            "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
        );
    }
}
