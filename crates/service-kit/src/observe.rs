//! Traces and metrics of every gRPC call, on both sides.
//!
//! Server side ([`RpcLayer`], installed by [`crate::serve`]): each call gets a server span
//! named `<package.Service>/<Method>` whose parent is the caller's W3C `traceparent` (from the
//! request's metadata), with `rpc.system`, `rpc.service`, `rpc.method` and
//! `rpc.grpc.status_code`; and is counted and timed per service, method and status code.
//! Nothing else of the request is recorded: never its metadata (the bearer token travels in
//! `authorization`), never its message.
//!
//! Client side: [`client_span`] wraps an outgoing call, and the channel's [`PropagateTrace`]
//! interceptor writes the current span's context into the call's metadata.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use tonic::Code;
use tonic::transport::Channel;
use tracing::Instrument as _;
use tracing::field::Empty;

/// A channel whose calls carry the current trace context.
pub type TracedChannel = tonic::service::interceptor::InterceptedService<Channel, PropagateTrace>;

/// Wraps `channel` so that every call carries the current span's trace context.
pub fn traced(channel: Channel) -> TracedChannel {
    tonic::service::interceptor::InterceptedService::new(channel, PropagateTrace)
}

/// The client interceptor that injects the current span's `traceparent`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateTrace;

impl tonic::service::Interceptor for PropagateTrace {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        tryggdel_telemetry::inject_current(request.metadata_mut());
        Ok(request)
    }
}

/// A client span for a call of `service`/`method` (e.g. `tryggdel.audit.v1.AuditService`,
/// `Append`), a child of the current span unless a parent is set on it before it is entered.
pub fn client_span(service: &'static str, method: &'static str) -> tracing::Span {
    tracing::info_span!(
        "grpc.client",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "client",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
    )
}

/// Records the outcome of a call on its client span.
pub fn record_client_outcome<T>(span: &tracing::Span, result: &Result<T, tonic::Status>) {
    let code = match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    };
    span.record("rpc.grpc.status_code", code as i64);
    if code != Code::Ok {
        // A client span fails with any status but OK.
        span.record("otel.status_code", "error");
    }
}

/// Per-call instruments.
struct RpcMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl RpcMetrics {
    fn new() -> RpcMetrics {
        let meter = opentelemetry::global::meter(tryggdel_telemetry::SCOPE);
        RpcMetrics {
            requests: meter
                .u64_counter("rpc.server.requests")
                .with_unit("{request}")
                .with_description("gRPC calls served, by service, method and status code")
                .build(),
            duration: meter
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description(
                    "Time to answer a gRPC call (to the response headers for a stream)",
                )
                .with_boundaries(vec![
                    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
                    5000.0, 10000.0,
                ])
                .build(),
        }
    }

    fn record(&self, service: &str, method: &str, code: i64, elapsed_ms: f64) {
        let attributes = [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("rpc.grpc.status_code", code),
        ];
        self.requests.add(1, &attributes);
        self.duration.record(elapsed_ms, &attributes);
    }
}

/// The tower layer [`crate::serve`] puts in front of every service.
#[derive(Clone)]
pub struct RpcLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcLayer {
    /// Builds the instruments from the global meter provider (a no-op one if none is set).
    pub fn new() -> RpcLayer {
        RpcLayer {
            metrics: Arc::new(RpcMetrics::new()),
        }
    }
}

impl Default for RpcLayer {
    fn default() -> RpcLayer {
        RpcLayer::new()
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// See [`RpcLayer`].
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was not driven to readiness stays here; the ready one serves.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let (service, method) = split_path(request.uri().path());
        let span = if is_traced(&service) {
            let span = server_span(&service, &method);
            tryggdel_telemetry::set_parent(
                &span,
                tryggdel_telemetry::extract_from_headers(request.headers()),
            );
            span
        } else {
            tracing::Span::none()
        };
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            inner.call(request)
        };
        Box::pin(
            async move {
                let result = future.await;
                let code = match &result {
                    Ok(response) => grpc_code(response.headers()),
                    Err(_) => Code::Unknown as i64,
                };
                let current = tracing::Span::current();
                current.record("rpc.grpc.status_code", code);
                if is_server_error(code) {
                    current.record("otel.status_code", "error");
                }
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                metrics.record(&service, &method, code, elapsed_ms);
                result
            }
            .instrument(span),
        )
    }
}

fn server_span(service: &str, method: &str) -> tracing::Span {
    tracing::info_span!(
        "grpc.server",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = Empty,
    )
}

/// Health checks and reflection are counted but not traced (probes would flood the traces).
fn is_traced(service: &str) -> bool {
    !(service.starts_with("grpc.health.") || service.starts_with("grpc.reflection."))
}

/// `/package.Service/Method` → (`package.Service`, `Method`). Anything else is `unknown`
/// (bounded, so odd paths cannot blow up the metrics' cardinality).
fn split_path(path: &str) -> (String, String) {
    let bounded = |text: &str| {
        let valid = !text.is_empty()
            && text.len() <= 128
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        if valid {
            text.to_owned()
        } else {
            "unknown".to_owned()
        }
    };
    match path.trim_start_matches('/').split_once('/') {
        Some((service, method)) => (bounded(service), bounded(method)),
        None => ("unknown".to_owned(), "unknown".to_owned()),
    }
}

/// The gRPC status of a response: in its headers for a trailers-only answer (every error of
/// a unary call), otherwise in the trailers that follow the message (OK).
fn grpc_code(headers: &http::HeaderMap) -> i64 {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i64>().ok())
        .unwrap_or(Code::Ok as i64)
}

/// The codes that mark a server span as failed (OpenTelemetry's gRPC conventions): the
/// server's fault, not the caller's.
fn is_server_error(code: i64) -> bool {
    [
        Code::Unknown,
        Code::DeadlineExceeded,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
    ]
    .iter()
    .any(|server| *server as i64 == code)
}

/// Runs `call` (a gRPC call on a [`TracedChannel`]) inside `span` for at most `timeout`,
/// recording its status there; no answer in time is DEADLINE_EXCEEDED.
pub async fn call_in_span<T, F>(
    span: tracing::Span,
    timeout: std::time::Duration,
    call: F,
) -> Result<T, tonic::Status>
where
    F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let result = match tokio::time::timeout(timeout, call.instrument(span.clone())).await {
        Ok(result) => result.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded(format!(
            "no answer within {timeout:?}"
        ))),
    };
    record_client_outcome(&span, &result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/tryggdel.audit.v1.AuditService/Append"),
            ("tryggdel.audit.v1.AuditService".into(), "Append".into())
        );
        assert_eq!(split_path("/"), ("unknown".into(), "unknown".into()));
        assert_eq!(
            split_path("/a b/c"),
            ("unknown".into(), "c".into()),
            "odd names are not recorded"
        );
    }

    #[test]
    fn status_codes_come_from_the_headers_or_are_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_code(&headers), 0);
        headers.insert("grpc-status", http::HeaderValue::from_static("7"));
        assert_eq!(grpc_code(&headers), 7);
        assert!(!is_server_error(7));
        assert!(is_server_error(Code::Internal as i64));
    }
}
