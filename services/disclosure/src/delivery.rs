//! The hand-over to the police: approved disclosures go to the notification service (which
//! routes them to the region), and the police's signed receipt comes back through
//! `RecordReceipt`. [`ToPolice`] is the outbox relay's destination for approvals.
//!
//! Invariants:
//! - Only approvals are handed over, with the payload bytes and hash bound at approval.
//! - An approval is settled (never sent again) only once the notification service has taken
//!   it, or has refused it for good — which is recorded as `disclosure.delivery_refused` — or
//!   the disclosure is no longer approved.
//! - A receipt is accepted only with a valid signature of the pinned receipt key, for this
//!   disclosure, its region and its payload hash.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use futures::StreamExt as _;
use tracing::Instrument as _;
use tryggdel_domain::{DisclosureState, LifecycleAction};
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;
use tryggdel_proto::notification::v1::{
    DeliverRequest, DeliverResponse, RecallRequest, RecallResponse,
};
use tryggdel_service_kit::{
    Destination, Retry, Sent, ServiceEndpoint, ServiceLink, TracedChannel, now_unix_ms,
};
use tryggdel_storage::{OutboxDestination, PendingEvent};

use crate::api::DisclosureApi;
use crate::events::{Trace, outbox_event, system_actor};
use crate::sealing;
use crate::store::{DeliveryRow, DisclosureRecord, OutboxPayload, Settle, TO_POLICE};

/// How many police regions' hand-overs run at once. Within a region they run one after
/// another, in approval order, so each region's delivery sequence follows its approvals.
const REGIONS_IN_FLIGHT: usize = 8;

/// A connection to the notification service (connects on first use). Calls carry the
/// current trace context.
#[derive(Clone)]
pub struct NotificationLink {
    link: ServiceLink<NotificationServiceClient<TracedChannel>>,
}

/// The notification service as the destination of approvals: each is handed over with the
/// payload bound at approval, in the trace of the approval.
pub struct ToPolice {
    api: DisclosureApi,
    link: NotificationLink,
}

impl NotificationLink {
    /// A link to the notification service at `endpoint`.
    pub fn new(endpoint: &ServiceEndpoint) -> anyhow::Result<NotificationLink> {
        Ok(NotificationLink {
            link: ServiceLink::new(
                endpoint,
                "tryggdel.notification.v1.NotificationService",
                NotificationServiceClient::new,
            )?,
        })
    }

    /// Recalls a delivered disclosure, in a client span continuing `traceparent` (the
    /// withdrawal's).
    pub(crate) async fn recall(
        &self,
        request: RecallRequest,
        traceparent: &str,
    ) -> Result<RecallResponse, tonic::Status> {
        self.link
            .call("Recall", traceparent, |mut client| async move {
                client.recall(request).await
            })
            .await
    }

    /// Hands an approval over, in a client span under the current one (the relay's, which
    /// continues the approval's trace).
    async fn deliver(&self, request: DeliverRequest) -> Result<DeliverResponse, tonic::Status> {
        self.link
            .call("Deliver", "", |mut client| async move {
                client.deliver(request).await
            })
            .await
    }
}

impl ToPolice {
    /// Hand-overs of `api`'s approvals over `link`.
    pub fn new(api: DisclosureApi, link: NotificationLink) -> ToPolice {
        ToPolice { api, link }
    }
}

impl Destination for ToPolice {
    fn name(&self) -> &'static str {
        "disclosure.delivery"
    }

    fn outbox(&self) -> OutboxDestination {
        TO_POLICE
    }

    /// Hands the approvals over; those settled are held. Approvals of different police
    /// regions are handed over concurrently (each hand-over waits for two commits, the
    /// notification service's and this one's, so one at a time caps the whole deployment's
    /// delivery rate); those of one region go in approval order, and stop at the first
    /// transient failure, which is returned (the relay backs off and retries) once every
    /// hand-over in flight has finished.
    async fn send(&self, events: Vec<PendingEvent>) -> Sent {
        let mut by_region: BTreeMap<String, Vec<PendingEvent>> = BTreeMap::new();
        for approval in events {
            by_region
                .entry(self.api.region_key(&approval.event.organisation))
                .or_default()
                .push(approval);
        }
        let outcomes: Vec<Sent> = futures::stream::iter(by_region.into_values())
            .map(|approvals| async move {
                let mut sent = Sent::default();
                for approval in &approvals {
                    if let Err(error) = self.api.deliver_one(&self.link, approval).await {
                        sent.failure = Some(error);
                        break;
                    }
                    sent.held.push(approval.seq);
                }
                sent
            })
            .buffer_unordered(REGIONS_IN_FLIGHT)
            .collect()
            .await;
        let mut sent = Sent::default();
        for outcome in outcomes {
            sent.held.extend(outcome.held);
            sent.failure = sent.failure.or(outcome.failure);
        }
        sent
    }
}

impl DisclosureApi {
    /// The police region `organisation` routes to (the organisation itself if it routes
    /// nowhere, or is no longer registered: its hand-over then fails on its own).
    fn region_key(&self, organisation: &str) -> String {
        tryggdel_domain::OrganisationCode::parse(organisation)
            .ok()
            .and_then(|code| self.directory().organisation(&code).cloned())
            .and_then(|organisation| organisation.police_region())
            .map(|region| region.as_str().to_owned())
            .unwrap_or_else(|| organisation.to_owned())
    }

    /// Settles the approval `approval`: hands it over in its trace, or records why not.
    async fn deliver_one(
        &self,
        link: &NotificationLink,
        approval: &PendingEvent,
    ) -> anyhow::Result<()> {
        let (seq, event) = (approval.seq, &approval.event);
        let disclosure_id = event.disclosure_id.as_str();
        // A payload that does not parse only costs the hand-over the approval's trace id (the
        // relay span's is used instead).
        let trace_id = serde_json::from_str::<OutboxPayload>(&event.payload)
            .map(|payload| payload.trace_id)
            .unwrap_or_default();
        // The hand-over continues the approval's trace: its span's parent is the Approve call.
        let span = tracing::info_span!(
            "outbox.relay",
            otel.name = "relay disclosure.delivery",
            relay = "disclosure.delivery",
            disclosure_id = %disclosure_id,
        );
        if let Some(parent) = tryggdel_service_kit::context_from_traceparent(&event.traceparent) {
            tryggdel_service_kit::set_parent(&span, parent);
        }
        self.hand_over(link, seq, disclosure_id, &trace_id)
            .instrument(span)
            .await
    }

    async fn hand_over(
        &self,
        link: &NotificationLink,
        seq: i64,
        disclosure_id: &str,
        trace_id: &str,
    ) -> anyhow::Result<()> {
        let trace = Trace::continuing(trace_id);
        // A concurrent change (a receipt arriving first) moves the version; read again.
        for _ in 0..3 {
            let record = self
                .store()
                .get(disclosure_id)
                .await?
                .with_context(|| format!("approved disclosure {disclosure_id} is missing"))?;
            if record.state != DisclosureState::Approved {
                // Delivered already (its receipt came first), or withdrawn before hand-over:
                // settled as held, with nothing to hand over.
                return Ok(());
            }
            match link.deliver(self.deliver_request(&record, &trace)?).await {
                Ok(delivered) => {
                    if self
                        .record_handed_over(seq, &trace, &record, delivered)
                        .await?
                    {
                        tracing::info!(disclosure_id = %record.id, "delivered to the police region");
                        return Ok(());
                    }
                }
                Err(status) if Retry::of(&status) == Retry::Never => {
                    return self.record_refusal(seq, &trace, &record, &status).await;
                }
                Err(status) => {
                    bail!(
                        "delivering {}: {:?}: {}",
                        record.id,
                        status.code(),
                        status.message()
                    );
                }
            }
        }
        bail!("disclosure {disclosure_id} kept changing while being delivered")
    }

    /// The hand-over of an approved disclosure: the payload bytes and hash bound at approval.
    fn deliver_request(
        &self,
        record: &DisclosureRecord,
        trace: &Trace,
    ) -> anyhow::Result<DeliverRequest> {
        let payload =
            sealing::open_payload(&self.cipher, record).context("opening the approved payload")?;
        let decision = record.decision.as_ref();
        Ok(DeliverRequest {
            disclosure_id: record.id.clone(),
            organisation: record.organisation.clone(),
            state: record.state.as_str().to_owned(),
            urgent: record.urgent,
            payload: payload.to_vec(),
            payload_sha256: record.payload_sha256().to_owned(),
            approved_by: decision
                .map(|decision| decision.decided_by.clone())
                .unwrap_or_default(),
            approved_at_unix_ms: decision.map_or(0, |decision| decision.decided_at),
            legal_basis_id: record.legal_basis_id.clone(),
            registry_version: record.registry_version().to_owned(),
            trace_id: trace.trace_id.clone(),
            person_refs: self
                .person_refs(record)
                .map_err(|error| anyhow::anyhow!("the persons the disclosure concerns: {error}"))?,
        })
    }

    /// Records that the notification service took the approval `seq`: the disclosure is
    /// delivered, with its delivery record. False when the disclosure changed meanwhile.
    async fn record_handed_over(
        &self,
        seq: i64,
        trace: &Trace,
        record: &DisclosureRecord,
        delivered: DeliverResponse,
    ) -> anyhow::Result<bool> {
        let now = now_unix_ms();
        let mut next = record.clone();
        next.advance(record.step(LifecycleAction::Deliver)?, now);
        let details = [
            ("police_region", delivered.police_region.clone()),
            ("sequence", delivered.sequence.to_string()),
        ];
        let event = self
            .payload_as(
                system_actor(),
                trace,
                &next,
                "disclosure.delivered",
                &details,
            )
            .and_then(outbox_event)
            .context("the delivery event")?;
        let delivery = DeliveryRow {
            disclosure_id: record.id.clone(),
            police_region: delivered.police_region,
            delivered_at: now,
            police_reference: String::new(),
            acknowledged_by: String::new(),
            acknowledged_at: 0,
            receipt_statement: None,
            receipt_signature: None,
            receipt_key_id: String::new(),
        };
        let recorded = self
            .store()
            .record_delivery(
                &next,
                record.version,
                &[event],
                &delivery,
                Some(Settle { seq, at: now }),
            )
            .await?;
        if recorded {
            self.signal_outbox();
        }
        Ok(recorded)
    }

    /// Settles the approval `seq` the notification service refused for good, recording the
    /// refusal as `disclosure.delivery_refused`.
    async fn record_refusal(
        &self,
        seq: i64,
        trace: &Trace,
        record: &DisclosureRecord,
        status: &tonic::Status,
    ) -> anyhow::Result<()> {
        tracing::error!(
            disclosure_id = %record.id,
            code = ?status.code(),
            reason = status.message(),
            "the notification service refused the disclosure"
        );
        let reason = format!("{:?}: {}", status.code(), status.message());
        let event = self
            .refusal_as(
                system_actor(),
                trace,
                record,
                "disclosure.delivery_refused",
                reason,
            )
            .context("the refusal event")?;
        self.store()
            .settle_delivery(seq, &event, now_unix_ms())
            .await?;
        self.signal_outbox();
        Ok(())
    }
}
