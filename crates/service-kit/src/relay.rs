//! The outbox relay loop every service runs: one task moving committed events to one
//! destination, at least once, with exponential backoff on failure. Receivers dedupe by event
//! id, so the effect is exactly once.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

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

/// One step of a relay to the audit log: `pending` outbox rows (sequence number, payload JSON)
/// become events through `to_event`, are appended in order (each in the trace of the request
/// that caused it), and only then does `mark` record them as relayed. Returns how many.
pub async fn relay_to_audit<P, F, M, Fut>(
    pending: Vec<(i64, String)>,
    link: &crate::AuditLink,
    to_event: F,
    mark: M,
) -> anyhow::Result<usize>
where
    P: serde::de::DeserializeOwned,
    F: Fn(P) -> crate::TracedEvent,
    M: FnOnce(Vec<i64>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if pending.is_empty() {
        return Ok(0);
    }
    let mut seqs = Vec::with_capacity(pending.len());
    let mut events = Vec::with_capacity(pending.len());
    for (seq, payload) in &pending {
        let payload: P = serde_json::from_str(payload)
            .with_context(|| format!("outbox event {seq} has an unreadable payload"))?;
        seqs.push(*seq);
        events.push(to_event(payload));
    }
    link.append_traced(events)
        .await
        .context("appending to the audit log")?;
    let count = seqs.len();
    mark(seqs).await.context("marking relayed events")?;
    Ok(count)
}
