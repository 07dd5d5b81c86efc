//! One approval is one trace: the three services running together (real mTLS, real tokens)
//! export their spans to an in-memory exporter, and the Approve call, the relayed audit
//! appends, the hand-over to the notification service and its own audit append all share the
//! trace id of the client's root span — through the outboxes, long after Approve answered —
//! with each span's parent the span that caused it. The acknowledgement is a second trace that
//! crosses back to the disclosure service. Nothing exported carries an identity number or a
//! token, and the metrics are there.
//!
//! One test binary has one global subscriber: only tests that need the in-memory exporter
//! belong in this file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use common::{BOLLNAS, Options, System, assert_all_found, content, submitted};
use tryggdel_auth::Role;
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::ApproveRequest;
use tryggdel_proto::notification::v1::AcknowledgeRequest;
use tryggdel_telemetry::TelemetryGuard;
use tryggdel_telemetry::testing::{
    InMemoryMetricExporter, InMemorySpanExporter, SpanData, SpanKind,
};
use tryggdel_test_support::{TestBackend, on_both_backends};

const DISCLOSURE: &str = "tryggdel.disclosure.v1.DisclosureService";
const AUDIT: &str = "tryggdel.audit.v1.AuditService";
const NOTIFICATION: &str = "tryggdel.notification.v1.NotificationService";

struct Telemetry {
    spans: InMemorySpanExporter,
    metrics: InMemoryMetricExporter,
    guard: TelemetryGuard,
}

/// The process's telemetry, installed once before any service starts.
fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let metrics = InMemoryMetricExporter::default();
        let guard = tryggdel_telemetry::init_for_tests(spans.clone(), metrics.clone())
            .expect("the only subscriber of this test binary");
        Telemetry {
            spans,
            metrics,
            guard,
        }
    })
}

/// The system with deadlines far beyond the test: nothing escalates.
async fn start(backend: TestBackend) -> Option<System> {
    System::start(
        backend,
        Options {
            urgent_deadline: Duration::from_secs(3600),
            escalation_repeat: Duration::from_secs(3600),
            deadline_check_interval: Duration::from_millis(200),
            state_polls: 400,
        },
    )
    .await
}

/// The audit log's entries about one disclosure: action → trace id (the last of each).
async fn audit_traces(system: &System, id: &str) -> BTreeMap<String, String> {
    system
        .audit_entries(id)
        .await
        .iter()
        .map(|json| {
            (
                json["action"].as_str().unwrap().to_owned(),
                json["trace_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits (bounded) until the audit log holds every one of `actions` about `id`.
async fn wait_for_audit(system: &System, id: &str, actions: &[&str]) -> BTreeMap<String, String> {
    for _ in 0..400 {
        let traces = audit_traces(system, id).await;
        if actions.iter().all(|action| traces.contains_key(*action)) {
            return traces;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the audit log never held all of {actions:?} about {id}");
}

/// The spans of one trace, waiting (bounded) until `ready` holds for them: the relays' client
/// spans end just after the audit log answers, so they may trail what the test observed.
async fn trace_spans(trace_id: &str, ready: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
    let mut spans = Vec::new();
    for _ in 0..200 {
        spans = telemetry()
            .spans
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|span| span.span_context.trace_id().to_string() == trace_id)
            .collect();
        if ready(&spans) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "trace {trace_id} never completed; it has {:#?}",
        spans
            .iter()
            .map(|span| (span.name.as_ref(), span.span_kind.clone()))
            .collect::<Vec<_>>()
    );
}

fn is_rpc(span: &SpanData, kind: SpanKind, service: &str, method: &str) -> bool {
    span.span_kind == kind && span.name == format!("{service}/{method}")
}

fn span_id(span: &SpanData) -> String {
    span.span_context.span_id().to_string()
}

fn parent_id(span: &SpanData) -> String {
    span.parent_span_id.to_string()
}

/// The only span in `spans` that `matches`.
fn one<'a>(spans: &'a [SpanData], what: &str, matches: impl Fn(&SpanData) -> bool) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|span| matches(span)).collect();
    assert_eq!(found.len(), 1, "expected one {what}, found {}", found.len());
    found[0]
}

/// The server span answering the client span `client`.
fn server_of<'a>(spans: &'a [SpanData], client: &SpanData) -> &'a SpanData {
    one(spans, "server span of a client span", |span| {
        span.span_kind == SpanKind::Server
            && span.name == client.name
            && parent_id(span) == span_id(client)
    })
}

/// Every text an exported span carries: name, attributes, events and their attributes,
/// links' attributes and the status.
fn texts(span: &SpanData) -> Vec<String> {
    let mut texts = vec![span.name.to_string(), format!("{:?}", span.status)];
    texts.extend(
        span.attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value.as_str())),
    );
    for event in span.events.iter() {
        texts.push(event.name.to_string());
        texts.extend(
            event
                .attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value.as_str())),
        );
    }
    for link in span.links.iter() {
        texts.extend(
            link.attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value.as_str())),
        );
    }
    texts
}

async fn one_approval_is_one_trace(backend: TestBackend) {
    let telemetry = telemetry();
    let Some(system) = start(backend).await else {
        return;
    };
    let caseworker_token =
        system
            .identity
            .token("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker]);
    let decider_token = system
        .identity
        .token("beslut-bollnas", BOLLNAS, &[Role::DecisionMaker]);
    let content = content("LEV-TRACE-1", false);
    let identity_numbers = [
        content.subject.as_ref().unwrap().identity_number.clone(),
        content.victim.as_ref().unwrap().identity_number.clone(),
    ];

    let mut caseworker = system.disclosures_as(BOLLNAS, &caseworker_token).await;
    let submitted = submitted(
        &mut caseworker,
        &format!("trace-{}", uuid::Uuid::new_v4()),
        content,
    )
    .await;

    // The decision maker's client starts the trace and sends its traceparent with Approve.
    let root = tracing::info_span!(target: "tryggdel_e2e", "approve disclosure");
    let root_traceparent = {
        let _entered = root.enter();
        tryggdel_telemetry::current_traceparent().expect("the root span is traced")
    };
    let trace_id = root_traceparent[3..35].to_owned();
    let root_span_id = root_traceparent[36..52].to_owned();
    let mut approve = tonic::Request::new(ApproveRequest {
        disclosure_id: submitted.id.clone(),
        expected_version: submitted.version,
        comment: String::new(),
        close_relative_judgement: String::new(),
    });
    approve
        .metadata_mut()
        .insert("traceparent", root_traceparent.parse().unwrap());
    let mut decision_maker = system.disclosures_as(BOLLNAS, &decider_token).await;
    decision_maker.approve(approve).await.unwrap();
    drop(root);

    system
        .wait_for_state_as(&caseworker_token, &submitted.id, DisclosureState::Delivered)
        .await;
    let entries = wait_for_audit(
        &system,
        &submitted.id,
        &[
            "disclosure.approved",
            "notification.delivered",
            "disclosure.delivered",
        ],
    )
    .await;
    // The audit log's trace ids are the trace's.
    for action in [
        "disclosure.approved",
        "notification.delivered",
        "disclosure.delivered",
    ] {
        assert_eq!(entries[action], trace_id, "{action}");
    }
    assert_ne!(
        entries["disclosure.submitted"], trace_id,
        "Submit was a trace of its own"
    );

    let appends = |spans: &[SpanData]| {
        spans
            .iter()
            .filter(|span| is_rpc(span, SpanKind::Server, AUDIT, "Append"))
            .count()
    };
    let spans = trace_spans(&trace_id, |spans| {
        appends(spans) >= 3
            && spans
                .iter()
                .filter(|span| is_rpc(span, SpanKind::Client, AUDIT, "Append"))
                .count()
                >= 3
    })
    .await;

    // disclosure: Approve continues the client's root span.
    let approve = one(&spans, "Approve server span", |span| {
        is_rpc(span, SpanKind::Server, DISCLOSURE, "Approve")
    });
    assert_eq!(parent_id(approve), root_span_id);
    assert!(approve.parent_span_is_remote);
    let attribute = |span: &SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    };
    assert_eq!(attribute(approve, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(approve, "rpc.service").as_deref(),
        Some(DISCLOSURE)
    );
    assert_eq!(attribute(approve, "rpc.method").as_deref(), Some("Approve"));
    assert_eq!(
        attribute(approve, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );

    // disclosure → audit: the relay appends the approval as a child of Approve.
    let approval_append = one(&spans, "append of the approval", |span| {
        is_rpc(span, SpanKind::Client, AUDIT, "Append") && parent_id(span) == span_id(approve)
    });
    server_of(&spans, approval_append);

    // disclosure → notification: the delivery relay continues Approve, Deliver is its child.
    let hand_over = one(&spans, "delivery relay span", |span| {
        span.name == "relay disclosure.delivery"
    });
    assert_eq!(parent_id(hand_over), span_id(approve));
    let deliver_client = one(&spans, "Deliver client span", |span| {
        is_rpc(span, SpanKind::Client, NOTIFICATION, "Deliver")
    });
    assert_eq!(parent_id(deliver_client), span_id(hand_over));
    let deliver = server_of(&spans, deliver_client);

    // notification → audit: `notification.delivered`, a child of Deliver.
    let delivered_append = one(&spans, "append of notification.delivered", |span| {
        is_rpc(span, SpanKind::Client, AUDIT, "Append") && parent_id(span) == span_id(deliver)
    });
    server_of(&spans, delivered_append);

    // disclosure → audit: `disclosure.delivered`, recorded by the delivery relay.
    let recorded_append = one(&spans, "append of disclosure.delivered", |span| {
        is_rpc(span, SpanKind::Client, AUDIT, "Append") && parent_id(span) == span_id(hand_over)
    });
    server_of(&spans, recorded_append);

    // The acknowledgement is the officer's own trace, and crosses back to disclosure.
    let officer_token = system.police_token("mitt", None);
    let mut officer = system.notifications_as("polisen", &officer_token).await;
    officer
        .acknowledge(AcknowledgeRequest {
            disclosure_id: submitted.id.clone(),
            police_reference: "5000-K123456-26".into(),
        })
        .await
        .unwrap();
    system
        .wait_for_state_as(
            &caseworker_token,
            &submitted.id,
            DisclosureState::Acknowledged,
        )
        .await;
    let entries = wait_for_audit(
        &system,
        &submitted.id,
        &["notification.acknowledged", "disclosure.acknowledged"],
    )
    .await;
    let ack_trace = entries["notification.acknowledged"].clone();
    assert_ne!(ack_trace, trace_id);
    assert_eq!(entries["disclosure.acknowledged"], ack_trace);
    let ack_spans = trace_spans(&ack_trace, |spans| {
        spans
            .iter()
            .any(|span| is_rpc(span, SpanKind::Server, DISCLOSURE, "RecordReceipt"))
    })
    .await;
    let acknowledge = one(&ack_spans, "Acknowledge server span", |span| {
        is_rpc(span, SpanKind::Server, NOTIFICATION, "Acknowledge")
    });
    let receipt_client = one(&ack_spans, "RecordReceipt client span", |span| {
        is_rpc(span, SpanKind::Client, DISCLOSURE, "RecordReceipt")
    });
    assert_eq!(parent_id(receipt_client), span_id(acknowledge));
    server_of(&ack_spans, receipt_client);

    // Nothing exported carries an identity number (in any form) or a token.
    let mut secrets: Vec<String> = vec![
        caseworker_token.clone(),
        decider_token.clone(),
        officer_token.clone(),
    ];
    for number in &identity_numbers {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        secrets.push(number.clone());
        secrets.push(digits[2..].to_owned());
        secrets.push(digits);
    }
    let everything = telemetry.spans.get_finished_spans().unwrap();
    for span in &everything {
        for text in texts(span) {
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "span {} exports a secret: {text}",
                    span.name
                );
            }
            assert!(
                !text.to_ascii_lowercase().contains("bearer"),
                "span {} exports a bearer token: {text}",
                span.name
            );
        }
    }

    // The metrics are there: per-RPC count and latency, outbox depth, deliveries, audit log.
    tokio::task::spawn_blocking(move || telemetry.guard.flush().unwrap())
        .await
        .unwrap();
    let names: Vec<String> = telemetry
        .metrics
        .get_finished_metrics()
        .unwrap()
        .iter()
        .flat_map(|resource| resource.scope_metrics())
        .flat_map(|scope| scope.metrics())
        .map(|metric| metric.name().to_owned())
        .collect();
    assert_all_found(
        &names,
        &[
            "rpc.server.duration",
            "rpc.server.requests",
            "tryggdel.outbox.depth",
            "tryggdel.notification.deliveries.pending",
            "tryggdel.notification.deliveries.overdue",
            "tryggdel.audit.tree_size",
            "tryggdel.audit.checkpoint_age",
        ],
    );

    system.stop().await;
}

on_both_backends!(one_approval_is_one_trace);
