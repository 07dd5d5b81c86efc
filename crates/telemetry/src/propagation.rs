//! The W3C trace context across gRPC hops and through the outboxes: read it from incoming
//! headers, write it into outgoing metadata, and keep it as a `traceparent` string where work
//! continues later (an outbox row relayed after the request has ended).

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The OpenTelemetry context of the current `tracing` span (empty without the trace layer).
pub fn current_context() -> Context {
    tracing::Span::current().context()
}

/// The trace id of the current span as 32 lowercase hex digits, if there is a valid one.
pub fn current_trace_id() -> Option<String> {
    let context = current_context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The W3C `traceparent` of the current span (`00-<trace>-<span>-<flags>`), if valid.
pub fn current_traceparent() -> Option<String> {
    let context = current_context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

/// The remote parent a stored `traceparent` names, or None if it is empty or invalid.
pub fn context_from_traceparent(traceparent: &str) -> Option<Context> {
    if traceparent.is_empty() {
        return None;
    }
    let mut carrier = HashMap::with_capacity(1);
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    let context = TraceContextPropagator::new().extract(&carrier);
    let valid = context.span().span_context().is_valid();
    valid.then_some(context)
}

/// Makes `parent` the parent of `span`. Must happen before the span is first entered; does
/// nothing if the span is disabled or the trace layer is not installed.
pub fn set_parent(span: &tracing::Span, parent: Context) {
    let _ = span.set_parent(parent);
}

/// Links `span` to the span a stored `traceparent` names (work caused by it, in another
/// trace). Does nothing for an empty or invalid `traceparent`.
pub fn link_to(span: &tracing::Span, traceparent: &str) {
    if let Some(context) = context_from_traceparent(traceparent) {
        span.add_link(context.span().span_context().clone());
    }
}

/// The trace context a caller sent in HTTP/2 headers (gRPC metadata), with the global
/// propagator; empty if none.
pub fn extract_from_headers(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// Writes `context` into outgoing gRPC metadata with the global propagator.
pub fn inject_into_metadata(context: &Context, metadata: &mut tonic::metadata::MetadataMap) {
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(context, &mut MetadataInjector(metadata));
    });
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    inject_into_metadata(&current_context(), metadata);
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        if let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_str()) {
            self.0.insert(key, value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_through_metadata() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = context_from_traceparent(traceparent).unwrap();
        let mut metadata = tonic::metadata::MetadataMap::new();
        // The global propagator is a no-op until `init`; inject with the W3C one directly.
        TraceContextPropagator::new()
            .inject_context(&context, &mut MetadataInjector(&mut metadata));
        assert_eq!(metadata.get("traceparent").unwrap(), traceparent);
        let headers = metadata.into_headers();
        let extracted = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert_eq!(
            extracted.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn empty_or_invalid_traceparents_give_no_context() {
        assert!(context_from_traceparent("").is_none());
        assert!(context_from_traceparent("garbage").is_none());
        assert!(
            context_from_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
                .is_none()
        );
    }

    #[test]
    fn without_a_trace_layer_there_is_no_current_trace() {
        assert!(current_trace_id().is_none());
        assert!(current_traceparent().is_none());
    }
}
