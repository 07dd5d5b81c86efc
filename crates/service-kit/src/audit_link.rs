//! The client side of the audit log, as every other service uses it.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::Channel;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{
    AppendRequest, AppendedEntry, AuditEvent, ClearRequest, ClearResponse,
};

use tracing::Instrument as _;

use crate::observe::{TracedChannel, client_span, record_client_outcome, traced};

/// The audit service's gRPC name, for client spans.
const AUDIT_SERVICE: &str = "tryggdel.audit.v1.AuditService";

/// A batch whose events come from at most this many traces is sent as one call per trace, so
/// each event's append is in the trace of the request that caused it. A larger batch (a
/// backlog under load) goes in one call whose span links to the events' traces: batching wins
/// over exact parentage when the relay is behind.
pub const MAX_CALLS_PER_BATCH: usize = 16;

/// Most links one batch span carries (the SDK's default limit).
const MAX_LINKS: usize = 128;

/// PEM material a service presents when it calls another: its own certificate and key, and
/// the CA that must have issued the server's certificate.
#[derive(Clone)]
pub struct ClientTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ClientTls { .. }")
    }
}

/// Where another service is and how to reach it.
#[derive(Clone, Debug)]
pub struct ServiceEndpoint {
    /// e.g. `https://127.0.0.1:50052`.
    pub uri: String,
    /// The name the service's certificate must carry, e.g. `localhost`.
    pub server_name: String,
    pub tls: ClientTls,
    /// How long one call may take before it counts as failed.
    pub timeout: Duration,
}

impl ServiceEndpoint {
    /// A channel whose calls carry the current trace context (see [`crate::traced`]).
    pub fn traced_channel(&self) -> anyhow::Result<TracedChannel> {
        Ok(traced(self.lazy_channel()?))
    }

    /// A channel that connects on first use and reconnects as needed.
    pub fn lazy_channel(&self) -> anyhow::Result<Channel> {
        tryggdel_tls::install_crypto_provider();
        tryggdel_tls::lazy_channel(
            &self.uri,
            &self.server_name,
            &self.tls.ca_pem,
            &self.tls.cert_pem,
            &self.tls.key_pem,
        )
        .with_context(|| format!("channel to {}", self.uri))
    }
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AuditLinkError {
    #[error("the audit service did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the audit service refused or failed the append: {0}")]
    Status(#[from] tonic::Status),
    #[error("the audit service answered {got} entries for {sent} events")]
    Mismatch { sent: usize, got: usize },
}

/// An event from an outbox with the `traceparent` of the request that caused it (empty if
/// unknown).
#[derive(Clone, Debug)]
pub struct TracedEvent {
    pub event: AuditEvent,
    pub traceparent: String,
}

/// Consecutive events of the same trace, in order.
fn runs_by_trace(events: Vec<TracedEvent>) -> Vec<(String, Vec<AuditEvent>)> {
    let mut runs: Vec<(String, Vec<AuditEvent>)> = Vec::new();
    for TracedEvent { event, traceparent } in events {
        match runs.last_mut() {
            Some((current, run)) if *current == traceparent => run.push(event),
            _ => runs.push((traceparent, vec![event])),
        }
    }
    runs
}

/// A connection to the audit service (connects on first use, reconnects as needed). Every
/// call carries the trace context of its client span.
///
/// Clones share whether the audit log was reachable at the last append any of them made
/// ([`AuditLink::is_reachable`]): the outbox relay's appends keep it current, so a read that
/// is logged through the outbox can be refused while the log is known to be down.
#[derive(Clone)]
pub struct AuditLink {
    client: AuditServiceClient<TracedChannel>,
    timeout: Duration,
    reachable: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// When the audit log was last probed (Unix ms), shared by the clones.
    last_probe: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// How often, at most, an unreachable audit log is probed by [`AuditLink::check_reachable`].
const PROBE_EVERY_MS: i64 = 500;
/// How long a probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl AuditLink {
    pub fn new(endpoint: &ServiceEndpoint) -> anyhow::Result<AuditLink> {
        Ok(AuditLink {
            client: AuditServiceClient::new(endpoint.traced_channel()?),
            timeout: endpoint.timeout,
            reachable: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            last_probe: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0)),
        })
    }

    /// [`AuditLink::is_reachable`], but while it is false the audit log is asked again (at
    /// most every 500 ms, by one caller at a time; the others see false): an append of no
    /// events, which a reachable audit service refuses as invalid. So reads are served again
    /// as soon as the log answers, even when this instance's relay has nothing to send (another
    /// instance relayed it) or is waiting out its backoff.
    pub async fn check_reachable(&self) -> bool {
        if self.is_reachable() {
            return true;
        }
        let now = crate::now_unix_ms();
        let last = self.last_probe.load(std::sync::atomic::Ordering::Acquire);
        if now.saturating_sub(last) < PROBE_EVERY_MS
            || self
                .last_probe
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::AcqRel,
                    std::sync::atomic::Ordering::Acquire,
                )
                .is_err()
        {
            return false;
        }
        let mut client = self.client.clone();
        let probe = client.append(AppendRequest { events: Vec::new() });
        match tokio::time::timeout(PROBE_TIMEOUT.min(self.timeout), probe).await {
            // It answered: with a refusal of the empty append, or anything but a transport
            // failure.
            Ok(Ok(_)) => self.set_reachable(true),
            Ok(Err(status))
                if !matches!(
                    status.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Cancelled
                        | tonic::Code::Unknown
                ) =>
            {
                self.set_reachable(true);
            }
            Ok(Err(_)) | Err(_) => {}
        }
        self.is_reachable()
    }

    /// False once an append failed because the audit log did not answer (a timeout, or the
    /// service unavailable); true again after the next append it took. True until the first
    /// append.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set_reachable(&self, reachable: bool) {
        let was = self
            .reachable
            .swap(reachable, std::sync::atomic::Ordering::AcqRel);
        if was != reachable {
            if reachable {
                tracing::info!("the audit log answers again");
            } else {
                tracing::warn!(
                    "the audit log does not answer; reads that must be logged are refused until it does"
                );
            }
        }
    }

    /// Appends `events` in order, in the current trace; Ok once the audit log holds them
    /// durably.
    pub async fn append(
        &self,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AppendedEntry>, AuditLinkError> {
        self.send(client_span(AUDIT_SERVICE, "Append"), events)
            .await
    }

    /// Appends relayed `events` in order, each in the trace of the request that caused it
    /// (see [`MAX_CALLS_PER_BATCH`]); Ok once the audit log holds them all durably. On an
    /// error some leading events may be in the log already; sending them again is harmless
    /// (the log dedupes by event id).
    pub async fn append_traced(
        &self,
        events: Vec<TracedEvent>,
    ) -> Result<Vec<AppendedEntry>, AuditLinkError> {
        let runs = runs_by_trace(events);
        if runs.len() <= MAX_CALLS_PER_BATCH {
            let mut entries = Vec::new();
            for (traceparent, run) in runs {
                let span = client_span(AUDIT_SERVICE, "Append");
                if let Some(parent) = tryggdel_telemetry::context_from_traceparent(&traceparent) {
                    tryggdel_telemetry::set_parent(&span, parent);
                }
                entries.extend(self.send(span, run).await?);
            }
            return Ok(entries);
        }
        let span = client_span(AUDIT_SERVICE, "Append");
        let mut linked = std::collections::HashSet::new();
        for (traceparent, _) in &runs {
            if linked.len() < MAX_LINKS && linked.insert(traceparent.as_str()) {
                tryggdel_telemetry::link_to(&span, traceparent);
            }
        }
        let events = runs.into_iter().flat_map(|(_, run)| run).collect();
        self.send(span, events).await
    }

    /// Asks the audit log to clear the entries of disclosures and persons under a clearing
    /// decision (a service's clearing run); Ok once it has cleared them and appended its
    /// tombstone.
    pub async fn clear(&self, request: ClearRequest) -> Result<ClearResponse, AuditLinkError> {
        let span = client_span(AUDIT_SERVICE, "Clear");
        let mut client = self.client.clone();
        let call = client.clear(request).instrument(span.clone());
        let Ok(result) = tokio::time::timeout(self.timeout, call).await else {
            record_client_outcome::<()>(
                &span,
                &Err(tonic::Status::deadline_exceeded("no answer in time")),
            );
            return Err(AuditLinkError::Timeout(self.timeout));
        };
        record_client_outcome(&span, &result);
        Ok(result?.into_inner())
    }

    async fn send(
        &self,
        span: tracing::Span,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AppendedEntry>, AuditLinkError> {
        let sent = events.len();
        let mut client = self.client.clone();
        let call = client
            .append(AppendRequest { events })
            .instrument(span.clone());
        let Ok(result) = tokio::time::timeout(self.timeout, call).await else {
            record_client_outcome::<()>(
                &span,
                &Err(tonic::Status::deadline_exceeded("no answer in time")),
            );
            self.set_reachable(false);
            return Err(AuditLinkError::Timeout(self.timeout));
        };
        record_client_outcome(&span, &result);
        match &result {
            Ok(_) => self.set_reachable(true),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Cancelled
                ) =>
            {
                self.set_reachable(false);
            }
            Err(_) => {}
        }
        let response = result?;
        let entries = response.into_inner().entries;
        if entries.len() != sent {
            return Err(AuditLinkError::Mismatch {
                sent,
                got: entries.len(),
            });
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, traceparent: &str) -> TracedEvent {
        TracedEvent {
            event: AuditEvent {
                event_id: id.into(),
                ..AuditEvent::default()
            },
            traceparent: traceparent.into(),
        }
    }

    #[test]
    fn events_are_grouped_into_runs_of_one_trace_in_order() {
        let runs = runs_by_trace(vec![
            event("1", "a"),
            event("2", "a"),
            event("3", "b"),
            event("4", "a"),
            event("5", ""),
        ]);
        let shape: Vec<(&str, Vec<&str>)> = runs
            .iter()
            .map(|(traceparent, run)| {
                (
                    traceparent.as_str(),
                    run.iter().map(|event| event.event_id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("a", vec!["1", "2"]),
                ("b", vec!["3"]),
                ("a", vec!["4"]),
                ("", vec!["5"]),
            ]
        );
    }
}
