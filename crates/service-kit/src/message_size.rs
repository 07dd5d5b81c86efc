//! A request over a service's message size limit is answered RESOURCE_EXHAUSTED, the status
//! gRPC specifies for a message larger than the receiver accepts.
//!
//! Each service sets its limit on its generated server (`max_decoding_message_size`), and
//! tonic's decoder refuses a larger request before any handler runs, but with OUT_OF_RANGE.
//! [`MessageSizeLayer`], in front of every service ([`crate::serve`]), turns that answer into
//! RESOURCE_EXHAUSTED. No handler answers OUT_OF_RANGE ([`crate::ServiceError`] has no such
//! variant), so a call refused before it started with OUT_OF_RANGE is always such a request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `grpc-status` of OUT_OF_RANGE (11) and RESOURCE_EXHAUSTED (8).
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// The tower layer that answers RESOURCE_EXHAUSTED instead of tonic's OUT_OF_RANGE for a
/// request over the size limit.
#[derive(Clone, Copy, Debug, Default)]
pub struct MessageSizeLayer;

impl<S> tower::Layer<S> for MessageSizeLayer {
    type Service = MessageSizeService<S>;

    fn layer(&self, inner: S) -> MessageSizeService<S> {
        MessageSizeService { inner }
    }
}

/// See [`MessageSizeLayer`].
#[derive(Clone, Debug)]
pub struct MessageSizeService<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for MessageSizeService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            too_large_is_resource_exhausted(response.headers_mut());
            Ok(response)
        })
    }
}

/// Rewrites the status of a trailers-only answer (a call refused before it started: the
/// status is in the headers) from OUT_OF_RANGE to RESOURCE_EXHAUSTED; tonic's message, which
/// names the size and the limit, stays.
fn too_large_is_resource_exhausted(headers: &mut http::HeaderMap) {
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == OUT_OF_RANGE.as_bytes());
    if out_of_range {
        headers.insert(
            "grpc-status",
            http::HeaderValue::from_static(RESOURCE_EXHAUSTED),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn status_texts_are_the_codes() {
        use tonic::Code;
        assert_eq!(OUT_OF_RANGE, (Code::OutOfRange as i32).to_string());
        assert_eq!(
            RESOURCE_EXHAUSTED,
            (Code::ResourceExhausted as i32).to_string()
        );
    }

    #[test]
    fn only_out_of_range_is_rewritten() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static("11"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static("Error, decoded message length too large"),
        );
        too_large_is_resource_exhausted(&mut headers);
        assert_eq!(headers["grpc-status"], "8");
        assert_eq!(
            headers["grpc-message"],
            "Error, decoded message length too large"
        );
        for other in ["0", "3", "13"] {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-status", http::HeaderValue::from_static(other));
            too_large_is_resource_exhausted(&mut headers);
            assert_eq!(headers["grpc-status"], other);
        }
        let mut none = http::HeaderMap::new();
        too_large_is_resource_exhausted(&mut none);
        assert!(none.is_empty());
    }
}
