//! The outbox relay to the audit log: every event the service committed reaches the log
//! exactly once in effect. The relay reads events not yet relayed in seq order, appends them
//! (the log dedupes by event id), and marks them only after the log has made them durable. A
//! crash anywhere in between at worst sends an event again. Mirrors the disclosure service's
//! relay.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tryggdel_proto::audit::v1::{Actor, AuditEvent, ObjectRef, Outcome};
use tryggdel_service_kit::AuditLink;

use crate::clock::now_unix_ms;
use crate::store::{NotificationStore, OutboxPayload};

/// Pacing of the relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Events per append.
    pub batch: i64,
    /// First wait after a failure; doubled on each further failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How often the outbox is checked when nobody wakes the relay.
    pub poll_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            batch: 200,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// The audit event for an outbox payload: the disclosing organisation as the data
/// controller, the police region as the recipient, the officer (or nobody, for what the
/// service does on its own) as the actor.
pub fn audit_event(payload: &OutboxPayload) -> AuditEvent {
    let mut details = payload.details.clone();
    details.insert("police_region".into(), payload.police_region.clone());
    if let Some(receipt) = &payload.receipt {
        details.insert("police_reference".into(), receipt.police_reference.clone());
        details.insert("receipt_key_id".into(), receipt.key_id.clone());
        details.insert(
            "acknowledged_at_unix_ms".into(),
            receipt.acknowledged_at_unix_ms.to_string(),
        );
    }
    AuditEvent {
        event_id: payload.event_id.clone(),
        action: payload.event_type.clone(),
        occurred_at_unix_ms: payload.occurred_at_unix_ms,
        actor: payload.actor.as_ref().map(|actor| Actor {
            user_id: actor.user_id.clone(),
            roles: actor.roles.clone(),
            organisation: actor.organisation.clone(),
            unit: actor.unit.clone(),
        }),
        objects: vec![ObjectRef {
            kind: "disclosure".into(),
            id: payload.disclosure_id.clone(),
        }],
        disclosure_id: payload.disclosure_id.clone(),
        organisation: payload.organisation.clone(),
        legal_basis_id: payload.legal_basis_id.clone(),
        registry_version: payload.registry_version.clone(),
        purpose: "disclosure to the police to prevent crime".into(),
        recipient: format!("polisen/{}", payload.police_region),
        outcome: Outcome::Success as i32,
        outcome_detail: String::new(),
        person_refs: Vec::new(),
        trace_id: payload.trace_id.clone(),
        details: details.into_iter().collect(),
    }
}

/// A running relay: one task moving outbox events to one destination.
pub struct Relay {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts `step` in a loop: after a step that moved events it runs again at once; after an
    /// empty one it waits for `wake` (changed whenever the service commits an event) or the
    /// poll interval; after a failure it backs off exponentially.
    pub fn start<F, Fut>(
        name: &'static str,
        mut step: F,
        mut wake: watch::Receiver<u64>,
        config: RelayConfig,
    ) -> Relay
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<usize>> + Send,
    {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut backoff = config.min_backoff;
            let mut failing = false;
            loop {
                if *stopped.borrow() {
                    break;
                }
                let pause = match step().await {
                    Ok(moved) => {
                        if failing {
                            tracing::info!(relay = name, "relay recovered");
                            failing = false;
                        }
                        backoff = config.min_backoff;
                        if moved > 0 {
                            // More may have been committed while this batch was in flight.
                            continue;
                        }
                        None
                    }
                    Err(error) => {
                        tracing::warn!(relay = name, error = format!("{error:#}"), retry_in = ?backoff, "relay failed");
                        failing = true;
                        let pause = backoff;
                        backoff = (backoff * 2).min(config.max_backoff);
                        Some(pause)
                    }
                };
                match pause {
                    Some(pause) => {
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = stopped.changed() => {}
                        }
                    }
                    None => {
                        tokio::select! {
                            changed = wake.changed() => {
                                if changed.is_err() {
                                    // The service is gone; poll until stopped.
                                    tokio::time::sleep(config.poll_interval).await;
                                }
                            }
                            _ = tokio::time::sleep(config.poll_interval) => {}
                            _ = stopped.changed() => {}
                        }
                    }
                }
            }
        });
        Relay { stop, task }
    }

    /// Stops after the step in flight, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Moves up to `batch` events not yet in the audit log there; returns how many.
pub async fn relay_to_audit(
    store: &NotificationStore,
    link: &AuditLink,
    batch: i64,
) -> anyhow::Result<usize> {
    let pending = store
        .awaiting_audit(batch)
        .await
        .context("reading the outbox")?;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut seqs = Vec::with_capacity(pending.len());
    let mut events = Vec::with_capacity(pending.len());
    for (seq, payload) in &pending {
        let payload: OutboxPayload = serde_json::from_str(payload)
            .with_context(|| format!("outbox event {seq} has an unreadable payload"))?;
        seqs.push(*seq);
        events.push(audit_event(&payload));
    }
    link.append(events)
        .await
        .context("appending to the audit log")?;
    store
        .mark_audited(&seqs, now_unix_ms())
        .await
        .context("marking relayed events")?;
    Ok(seqs.len())
}
