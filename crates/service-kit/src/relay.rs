//! The outbox relay every service runs: one task per [`Destination`] moving committed events
//! there, at least once, in outbox order, with exponential backoff on failure. Receivers
//! dedupe by event id, so the effect is exactly once. A new destination is one
//! implementation of [`Destination`], started with [`start_relay`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use tokio::sync::watch;
use tryggdel_proto::audit::v1::AuditEvent;
use tryggdel_storage::{Database, DatabaseHealth, OutboxDestination, PendingEvent};

use crate::{AuditLink, TracedEvent};

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

/// A running relay: one task moving outbox events to one destination.
pub struct Relay {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts `step` in a loop: after a step that moved events it runs again at once; after an
    /// empty one it waits for `wake` (changed whenever the service commits an event) or the
    /// poll interval; after a failure it backs off exponentially. While `database` is down it
    /// stands aside (no step, no failure counted), and when the database answers again it
    /// goes at once with its backoff reset, also in the middle of a backoff.
    pub fn start<F, Fut>(
        name: &'static str,
        mut step: F,
        mut wake: watch::Receiver<u64>,
        config: RelayConfig,
        database: DatabaseHealth,
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
                if !database.is_up() {
                    tokio::select! {
                        _ = database.until_up() => {}
                        _ = stopped.changed() => {}
                    }
                    backoff = config.min_backoff;
                    continue;
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
                            _ = database.recovered() => backoff = config.min_backoff,
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

/// A place a service's outbox events go to: the audit log, another service. The relay reads
/// what the destination does not hold yet, in outbox order, hands it to [`Destination::send`]
/// and records what the destination now holds; a destination knows nothing of the loop.
pub trait Destination: Send + Sync + 'static {
    /// The relay's name in logs and metrics (e.g. `disclosure.audit`).
    fn name(&self) -> &'static str;

    /// Which outbox events go here, and where their arrival is recorded.
    fn outbox(&self) -> OutboxDestination;

    /// Sends `events` (oldest first). Only after this returns does the relay record the
    /// events it names as held, so a crash in between sends them again: the destination
    /// must take a repeat as a no-op.
    fn send(&self, events: Vec<PendingEvent>) -> impl Future<Output = Sent> + Send;
}

/// What a [`Destination`] did with a batch.
#[derive(Debug, Default)]
pub struct Sent {
    /// The outbox sequence numbers the destination now holds.
    pub held: Vec<i64>,
    /// Why the others were not sent (the relay backs off and sends them again).
    pub failure: Option<anyhow::Error>,
}

impl Sent {
    /// Every event of the batch, or (on `Err`) none of it.
    pub fn all_or_nothing(events: &[PendingEvent], result: anyhow::Result<()>) -> Sent {
        match result {
            Ok(()) => Sent {
                held: events.iter().map(|pending| pending.seq).collect(),
                failure: None,
            },
            Err(error) => Sent {
                held: Vec::new(),
                failure: Some(error),
            },
        }
    }
}

/// One step of the relay to `destination`: up to `batch` events it does not hold are sent
/// and those it took are recorded as held. Returns how many were sent, or why not all.
pub async fn relay_step<D: Destination>(
    database: &Database,
    destination: &D,
    batch: i64,
) -> anyhow::Result<usize> {
    let outbox = destination.outbox();
    let pending = outbox
        .pending(database, batch)
        .await
        .context("reading the outbox")?;
    if pending.is_empty() {
        return Ok(0);
    }
    let count = pending.len();
    let Sent { mut held, failure } = destination.send(pending).await;
    held.sort_unstable();
    outbox
        .mark(database, &held, crate::now_unix_ms())
        .await
        .with_context(|| format!("recording what {} holds", destination.name()))?;
    match failure {
        Some(error) => Err(error),
        None => Ok(count),
    }
}

/// Starts the relay of `database`'s outbox to `destination`, woken by `wake`.
pub fn start_relay<D: Destination>(
    database: Database,
    destination: D,
    wake: watch::Receiver<u64>,
    config: RelayConfig,
) -> Relay {
    let name = destination.name();
    let destination = Arc::new(destination);
    let batch = config.batch;
    let health = database.health().clone();
    Relay::start(
        name,
        move || {
            let (database, destination) = (database.clone(), Arc::clone(&destination));
            async move { relay_step(&database, destination.as_ref(), batch).await }
        },
        wake,
        config,
        health,
    )
}

/// Gives every outbox event written before the outbox kept audit events its audit event (and
/// trace context), made from its payload — the service's `P`, as JSON — by `audit_event`,
/// reading `batch` rows at a time; returns how many. A payload that does not parse is an error
/// naming its seq: the event would otherwise never reach the audit log.
pub async fn fill_in_audit_events<P: serde::de::DeserializeOwned>(
    database: &Database,
    batch: i64,
    audit_event: impl Fn(&P) -> TracedEvent,
) -> anyhow::Result<usize> {
    let mut filled = 0;
    loop {
        let rows = tryggdel_storage::events_without_audit_event(database, batch)
            .await
            .context("reading outbox events without an audit event")?;
        if rows.is_empty() {
            return Ok(filled);
        }
        for (seq, payload) in rows {
            let payload: P = serde_json::from_str(&payload)
                .with_context(|| format!("outbox event {seq} has a payload that does not parse"))?;
            let TracedEvent { event, traceparent } = audit_event(&payload);
            tryggdel_storage::set_audit_event(database, seq, &event.encode_to_vec(), &traceparent)
                .await
                .with_context(|| format!("storing the audit event of outbox event {seq}"))?;
            filled += 1;
        }
    }
}

/// The audit log as a destination: every event of the outbox, sent as the audit event it
/// carries, each in the trace of the request that caused it. The log dedupes by event id.
pub struct AuditDestination {
    link: AuditLink,
    name: &'static str,
}

impl AuditDestination {
    /// Every event, recorded in `audit_relayed_at`.
    pub const OUTBOX: OutboxDestination = OutboxDestination::all("audit_relayed_at");

    /// The relay named `name` (e.g. `disclosure.audit`) over `link`.
    pub fn new(link: AuditLink, name: &'static str) -> AuditDestination {
        AuditDestination { link, name }
    }
}

impl Destination for AuditDestination {
    fn name(&self) -> &'static str {
        self.name
    }

    fn outbox(&self) -> OutboxDestination {
        Self::OUTBOX
    }

    async fn send(&self, events: Vec<PendingEvent>) -> Sent {
        let traced: anyhow::Result<Vec<TracedEvent>> = events
            .iter()
            .map(|pending| {
                // Empty bytes would decode as an empty event: a row never filled in is an
                // error, not an entry.
                anyhow::ensure!(
                    !pending.event.audit_event.is_empty(),
                    "outbox event {} carries no audit event",
                    pending.seq
                );
                Ok(TracedEvent {
                    event: AuditEvent::decode(pending.event.audit_event.as_slice()).with_context(
                        || format!("outbox event {} has an unreadable audit event", pending.seq),
                    )?,
                    traceparent: pending.event.traceparent.clone(),
                })
            })
            .collect();
        let result = match traced {
            Ok(traced) => self
                .link
                .append_traced(traced)
                .await
                .map(drop)
                .context("appending to the audit log"),
            Err(error) => Err(error),
        };
        Sent::all_or_nothing(&events, result)
    }
}
