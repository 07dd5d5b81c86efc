//! The `NotificationService` gRPC handlers: who may deliver (allow-listed service
//! certificates), what a police officer sees (their region only; anything else does not
//! exist), what the disclosing organisation sees (its own deliveries only), receipts, and
//! follow-up questions. Subscribe is in [`crate::subscription`], the deadline timers in
//! [`crate::escalation`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};
use tonic::{Request, Response, Status};
use tryggdel_auth::Role;
use tryggdel_domain::{
    OrganisationCode, OrganisationKind, PolicePayload, PoliceRegion, RECEIPT_FORMAT,
    ReceiptStatement, receipt_key_id, sign_receipt,
};
use tryggdel_proto::notification::v1::notification_service_server::NotificationService;
use tryggdel_proto::notification::v1::{
    AcknowledgeRequest, AskFollowUpRequest, DeliverRequest, DeliverResponse, Delivery,
    DeliveryStatus, Escalation, FollowUp, GetDeliveryStatusRequest, ListEscalationsRequest,
    ListEscalationsResponse, ListFollowUpsRequest, ListFollowUpsResponse, ListPendingRequest,
    ListPendingResponse, Receipt, SubscribeRequest,
};
use tryggdel_service_kit::{Authenticator, Caller, ServiceError, trace_id};
use tryggdel_storage::FieldCipher;

use crate::clock::{millis, now_unix_ms, rfc3339};
use crate::store::{
    DeliverOutcome, DeliveryRow, EVENT_ACKNOWLEDGED, EVENT_DELIVERED, EVENT_FOLLOW_UP_ASKED,
    FollowUpRow, NewDelivery, NotificationStore, OutboxActor, OutboxPayload, OutboxReceipt,
    StoreError, StoredReceipt,
};
use crate::subscription::DeliveryStream;

/// The largest payload Deliver takes.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// The longest police reference (diarienummer), in characters.
pub const MAX_POLICE_REFERENCE_CHARS: usize = 64;
/// The longest follow-up question, in characters.
pub const MAX_QUESTION_CHARS: usize = 2000;
/// The largest ListPending page.
pub const MAX_PAGE_SIZE: u32 = 200;
const DEFAULT_PAGE_SIZE: u32 = 50;
/// The most escalations one ListEscalations answers (oldest first).
pub const MAX_ESCALATIONS: u32 = 1000;
const MAX_TEXT_CHARS: usize = 128;
/// Live deliveries a slow subscriber may fall behind by before it re-reads from the database.
const LIVE_CAPACITY: usize = 1024;

/// When deliveries fall due and how often escalations repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// An urgent delivery must be acknowledged within this.
    pub urgent: Duration,
    /// Any other delivery must be acknowledged within this.
    pub ordinary: Duration,
    /// After an escalation, the next one follows after this if still unacknowledged.
    pub escalation_repeat: Duration,
}

/// The handlers and what they need; cheap to clone.
#[derive(Clone)]
pub struct NotificationApi {
    inner: Arc<Inner>,
}

struct Inner {
    store: NotificationStore,
    authenticator: Authenticator,
    cipher: FieldCipher,
    receipt_key: SigningKey,
    receipt_key_id: String,
    deadlines: Deadlines,
    senders: Vec<String>,
    /// Deliveries as they commit, for the subscriptions (each filters its region).
    live: broadcast::Sender<Arc<Delivery>>,
    /// Changed whenever an outbox event commits (wakes the relay).
    outbox_signal: watch::Sender<u64>,
    /// Set to true when the service stops: every subscription ends.
    stopping: watch::Sender<bool>,
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        ServiceError::internal(anyhow::Error::new(error).context("notification store"))
    }
}

impl NotificationApi {
    pub fn new(
        store: NotificationStore,
        authenticator: Authenticator,
        cipher: FieldCipher,
        receipt_key: SigningKey,
        deadlines: Deadlines,
        senders: Vec<String>,
    ) -> NotificationApi {
        NotificationApi::with_live_capacity(
            store,
            authenticator,
            cipher,
            receipt_key,
            deadlines,
            senders,
            LIVE_CAPACITY,
        )
    }

    /// As [`NotificationApi::new`], with room for `live_capacity` deliveries in the live
    /// broadcast (tests make it small to make subscribers lag).
    pub(crate) fn with_live_capacity(
        store: NotificationStore,
        authenticator: Authenticator,
        cipher: FieldCipher,
        receipt_key: SigningKey,
        deadlines: Deadlines,
        senders: Vec<String>,
        live_capacity: usize,
    ) -> NotificationApi {
        let receipt_key_id = receipt_key_id(&receipt_key.verifying_key());
        NotificationApi {
            inner: Arc::new(Inner {
                store,
                authenticator,
                cipher,
                receipt_key,
                receipt_key_id,
                deadlines,
                senders,
                live: broadcast::Sender::new(live_capacity),
                outbox_signal: watch::Sender::new(0),
                stopping: watch::Sender::new(false),
            }),
        }
    }

    pub fn store(&self) -> &NotificationStore {
        &self.inner.store
    }

    pub fn deadlines(&self) -> Deadlines {
        self.inner.deadlines
    }

    /// The id of the receipt key (hex of the first 4 bytes of SHA-256 of the public key).
    pub fn receipt_key_id(&self) -> &str {
        &self.inner.receipt_key_id
    }

    /// The key receipts verify with.
    pub fn receipt_verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.inner.receipt_key.verifying_key()
    }

    /// Changes whenever an outbox event commits.
    pub fn outbox_signal(&self) -> watch::Receiver<u64> {
        self.inner.outbox_signal.subscribe()
    }

    /// Ends every subscription (with UNAVAILABLE, so clients reconnect with their cursor) and
    /// refuses new ones; the service is about to stop.
    pub fn stop_subscriptions(&self) {
        self.inner.stopping.send_replace(true);
    }

    pub(crate) fn signal_outbox(&self) {
        self.inner
            .outbox_signal
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    pub(crate) fn live_deliveries(&self) -> broadcast::Receiver<Arc<Delivery>> {
        self.inner.live.subscribe()
    }

    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// A stored delivery as the police receive it (the payload opened).
    pub(crate) fn wire_delivery(&self, row: &DeliveryRow) -> Result<Delivery, ServiceError> {
        let payload = self
            .inner
            .cipher
            .open(&row.payload_sealed, &payload_context(&row.disclosure_id))?;
        Ok(delivery_message(row, payload.to_vec(), now_unix_ms()))
    }

    async fn deliver(
        &self,
        request: Request<DeliverRequest>,
    ) -> Result<DeliverResponse, ServiceError> {
        let Some(service) = Authenticator::service(&request) else {
            return Err(ServiceError::PermissionDenied(
                "Deliver is for Tryggdel services and needs a service certificate".into(),
            ));
        };
        if !self.inner.senders.contains(&service.name) {
            return Err(ServiceError::PermissionDenied(format!(
                "service {} may not deliver to the police",
                service.name
            )));
        }
        let call_trace_id = trace_id(request.metadata());
        let request = request.into_inner();
        let disclosure_id = parse_disclosure_id(&request.disclosure_id)?;
        let code = OrganisationCode::parse(&request.organisation)
            .map_err(|error| ServiceError::invalid("organisation", error))?;
        let organisation = self
            .inner
            .authenticator
            .directory()
            .organisation(&code)
            .ok_or_else(|| {
                ServiceError::invalid("organisation", "is not registered in this deployment")
            })?;
        let region = organisation.police_region().ok_or_else(|| {
            ServiceError::invalid(
                "organisation",
                "has no county, so no police region (only municipalities and healthcare \
                 providers disclose)",
            )
        })?;
        if request.state != "approved" {
            return Err(ServiceError::FailedPrecondition(format!(
                "only approved disclosures are delivered to the police; state is {:?}",
                request.state
            )));
        }
        if request.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ServiceError::invalid(
                "payload",
                format!("at most {MAX_PAYLOAD_BYTES} bytes"),
            ));
        }
        if !is_sha256_hex(&request.payload_sha256) {
            return Err(ServiceError::invalid(
                "payload_sha256",
                "must be 64 lowercase hex digits",
            ));
        }
        if hex::encode(Sha256::digest(&request.payload)) != request.payload_sha256 {
            return Err(ServiceError::invalid(
                "payload_sha256",
                "does not match the SHA-256 of the payload: the payload is not the one bound \
                 at approval",
            ));
        }
        let payload = PolicePayload::from_canonical_bytes(&request.payload)
            .map_err(|error| ServiceError::invalid("payload", error))?;
        check_payload_matches(&payload, &disclosure_id, &code, region, &request)?;
        let approved_by = text("approved_by", &request.approved_by, MAX_TEXT_CHARS, true)?;
        if request.approved_at_unix_ms <= 0 {
            return Err(ServiceError::invalid(
                "approved_at_unix_ms",
                "must be a positive unix time in milliseconds",
            ));
        }
        let trace = if request.trace_id.is_empty() {
            call_trace_id
        } else if is_trace_id(&request.trace_id) {
            request.trace_id.clone()
        } else {
            return Err(ServiceError::invalid(
                "trace_id",
                "must be empty or 32 lowercase hex digits",
            ));
        };
        let now = now_unix_ms();
        let due_in = if request.urgent {
            self.inner.deadlines.urgent
        } else {
            self.inner.deadlines.ordinary
        };
        let delivery = NewDelivery {
            disclosure_id: disclosure_id.clone(),
            police_region: region.as_str().to_owned(),
            organisation: code.as_str().to_owned(),
            urgent: request.urgent,
            payload_sealed: self
                .inner
                .cipher
                .seal(&request.payload, &payload_context(&disclosure_id))?,
            payload_sha256: request.payload_sha256.clone(),
            approved_by,
            approved_at: request.approved_at_unix_ms,
            legal_basis_id: payload.legal_basis().as_str().to_owned(),
            registry_version: payload.registry_version().to_owned(),
            delivered_by: service.name.clone(),
            trace_id: trace,
            delivered_at: now,
            deadline: now.saturating_add(millis(due_in)),
        };
        let outcome = self
            .inner
            .store
            .deliver(&delivery, |sequence| {
                delivered_event(&delivery, sequence).to_event()
            })
            .await?;
        match outcome {
            DeliverOutcome::Delivered { sequence } => {
                let row = delivered_row(delivery, sequence);
                self.publish(&row, request.payload);
                tracing::info!(
                    disclosure_id = %row.disclosure_id,
                    police_region = %row.police_region,
                    sequence,
                    urgent = row.urgent,
                    "delivered"
                );
                Ok(DeliverResponse {
                    police_region: row.police_region,
                    sequence: to_u64(sequence),
                    duplicate: false,
                })
            }
            DeliverOutcome::Existing(existing) => {
                if existing.payload_sha256 != request.payload_sha256 {
                    return Err(ServiceError::AlreadyExists(format!(
                        "disclosure {disclosure_id} was delivered with another payload \
                         (payload_sha256 differs); refused"
                    )));
                }
                Ok(DeliverResponse {
                    police_region: existing.police_region,
                    sequence: to_u64(existing.sequence),
                    duplicate: true,
                })
            }
        }
    }

    /// Tells the relay and the subscriptions about a delivery that has just committed.
    pub(crate) fn publish(&self, row: &DeliveryRow, payload: Vec<u8>) {
        self.signal_outbox();
        // Nobody subscribed is not an error: the delivery waits in the database.
        let _ = self
            .inner
            .live
            .send(Arc::new(delivery_message(row, payload, now_unix_ms())));
    }

    /// The delivery `disclosure_id` if it went to `region`; otherwise it does not exist.
    async fn delivery_for_region(
        &self,
        disclosure_id: &str,
        region: PoliceRegion,
    ) -> Result<DeliveryRow, ServiceError> {
        match self.inner.store.get(disclosure_id).await? {
            Some(row) if row.police_region == region.as_str() => Ok(row),
            _ => Err(ServiceError::NotFound("delivery")),
        }
    }

    /// The delivery `disclosure_id` if `caller`'s organisation made it; otherwise it does not
    /// exist.
    async fn delivery_of_organisation(
        &self,
        disclosure_id: &str,
        caller: &Caller,
    ) -> Result<DeliveryRow, ServiceError> {
        match self.inner.store.get(disclosure_id).await? {
            Some(row) if row.organisation == caller.organisation.code().as_str() => Ok(row),
            _ => Err(ServiceError::NotFound("delivery")),
        }
    }

    async fn list_pending(
        &self,
        request: Request<ListPendingRequest>,
    ) -> Result<ListPendingResponse, ServiceError> {
        let caller = self.inner.authenticator.user(&request)?;
        let region = police_region(&caller, "listing pending deliveries")?;
        let request = request.into_inner();
        if request.page_size > MAX_PAGE_SIZE {
            return Err(ServiceError::invalid(
                "page_size",
                format!("at most {MAX_PAGE_SIZE}"),
            ));
        }
        let limit = if request.page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            request.page_size
        };
        let after = if request.page_token.is_empty() {
            0
        } else {
            decode_page_token(&request.page_token)?
        };
        let rows = self
            .inner
            .store
            .pending(region.as_str(), after, i64::MAX, limit)
            .await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() == limit as usize => encode_page_token(last.sequence),
            _ => String::new(),
        };
        let deliveries = rows
            .iter()
            .map(|row| self.wire_delivery(row))
            .collect::<Result<_, _>>()?;
        Ok(ListPendingResponse {
            deliveries,
            next_page_token,
        })
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Receipt, ServiceError> {
        let caller = self.inner.authenticator.user(&request)?;
        let region = police_region(&caller, "acknowledging a delivery")?;
        let request = request.into_inner();
        let disclosure_id = parse_disclosure_id(&request.disclosure_id)?;
        let police_reference = text(
            "police_reference",
            request.police_reference.trim(),
            MAX_POLICE_REFERENCE_CHARS,
            true,
        )?;
        let row = self.delivery_for_region(&disclosure_id, region).await?;
        if let Some(receipt) = &row.receipt {
            return Ok(receipt_message(&row, receipt));
        }
        let now = now_unix_ms();
        let acknowledged_at = rfc3339(now)
            .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("clock out of range")))?;
        let statement = ReceiptStatement {
            format: RECEIPT_FORMAT.to_owned(),
            disclosure_id: row.disclosure_id.clone(),
            police_region: row.police_region.clone(),
            police_reference: police_reference.clone(),
            acknowledged_by: caller.user().to_owned(),
            acknowledged_at,
            acknowledged_at_unix_ms: now,
            payload_sha256: row.payload_sha256.clone(),
        };
        let signed = sign_receipt(&statement, &self.inner.receipt_key).map_err(|error| {
            ServiceError::internal(anyhow::Error::new(error).context("signing"))
        })?;
        let receipt = StoredReceipt {
            police_reference: police_reference.clone(),
            acknowledged_by: caller.user().to_owned(),
            acknowledged_at: now,
            statement: signed.statement,
            signature: signed.signature,
            key_id: signed.key_id,
        };
        let mut payload = event_payload(&row, EVENT_ACKNOWLEDGED, now, Some(actor(&caller)));
        payload.trace_id = caller.trace_id.clone();
        payload
            .details
            .insert("payload_sha256".into(), row.payload_sha256.clone());
        payload
            .details
            .insert("sequence".into(), row.sequence.to_string());
        payload.receipt = Some(OutboxReceipt {
            police_reference,
            acknowledged_by: receipt.acknowledged_by.clone(),
            acknowledged_at_unix_ms: now,
            statement_base64: STANDARD.encode(&receipt.statement),
            signature_base64: STANDARD.encode(&receipt.signature),
            key_id: receipt.key_id.clone(),
        });
        if self
            .inner
            .store
            .acknowledge(&disclosure_id, &receipt, &payload.to_event()?)
            .await?
        {
            self.signal_outbox();
            tracing::info!(disclosure_id = %disclosure_id, police_region = %row.police_region, "acknowledged");
            return Ok(receipt_message(&row, &receipt));
        }
        // A concurrent acknowledgement won; its receipt is the one.
        let stored = self.inner.store.get(&disclosure_id).await?;
        match stored {
            Some(stored) => match &stored.receipt {
                Some(receipt) => Ok(receipt_message(&stored, receipt)),
                None => Err(ServiceError::internal(anyhow::anyhow!(
                    "acknowledgement of {disclosure_id} neither applied nor found"
                ))),
            },
            None => Err(ServiceError::NotFound("delivery")),
        }
    }

    async fn get_delivery_status(
        &self,
        request: Request<GetDeliveryStatusRequest>,
    ) -> Result<DeliveryStatus, ServiceError> {
        let caller = self.inner.authenticator.user(&request)?;
        caller.require_any(
            &[
                Role::Caseworker,
                Role::DecisionMaker,
                Role::ComplianceOfficer,
            ],
            "reading a delivery's status",
        )?;
        let disclosure_id = parse_disclosure_id(&request.get_ref().disclosure_id)?;
        let row = self
            .delivery_of_organisation(&disclosure_id, &caller)
            .await?;
        Ok(DeliveryStatus {
            disclosure_id: row.disclosure_id.clone(),
            police_region: row.police_region.clone(),
            delivered_at_unix_ms: row.delivered_at,
            deadline_unix_ms: row.deadline,
            overdue: is_overdue(&row, now_unix_ms()),
            escalations: u32::try_from(row.escalations).unwrap_or(u32::MAX),
            receipt: row
                .receipt
                .as_ref()
                .map(|receipt| receipt_message(&row, receipt)),
        })
    }

    async fn ask_follow_up(
        &self,
        request: Request<AskFollowUpRequest>,
    ) -> Result<FollowUp, ServiceError> {
        let caller = self.inner.authenticator.user(&request)?;
        let region = police_region(&caller, "asking a follow-up question")?;
        let request = request.into_inner();
        let disclosure_id = parse_disclosure_id(&request.disclosure_id)?;
        let question = question(&request.question)?;
        let row = self.delivery_for_region(&disclosure_id, region).await?;
        let now = now_unix_ms();
        let id = uuid::Uuid::now_v7().hyphenated().to_string();
        let follow_up = FollowUpRow {
            id: id.clone(),
            disclosure_id: row.disclosure_id.clone(),
            organisation: row.organisation.clone(),
            police_region: row.police_region.clone(),
            asked_by: caller.user().to_owned(),
            question_sealed: self
                .inner
                .cipher
                .seal(question.as_bytes(), &question_context(&id))?,
            asked_at: now,
        };
        // The question may hold personal data: the audit event names it, never quotes it.
        let mut payload = event_payload(&row, EVENT_FOLLOW_UP_ASKED, now, Some(actor(&caller)));
        payload.trace_id = caller.trace_id.clone();
        payload.details.insert("follow_up_id".into(), id.clone());
        payload.details.insert(
            "question_chars".into(),
            question.chars().count().to_string(),
        );
        self.inner
            .store
            .insert_follow_up(&follow_up, &payload.to_event()?)
            .await?;
        self.signal_outbox();
        tracing::info!(disclosure_id = %disclosure_id, follow_up_id = %id, "follow-up question asked");
        Ok(follow_up_message(&follow_up, question))
    }

    async fn list_follow_ups(
        &self,
        request: Request<ListFollowUpsRequest>,
    ) -> Result<ListFollowUpsResponse, ServiceError> {
        let caller = self.inner.authenticator.user(&request)?;
        caller.require_any(
            &[Role::Caseworker, Role::DecisionMaker],
            "reading follow-up questions",
        )?;
        let disclosure_id = parse_disclosure_id(&request.get_ref().disclosure_id)?;
        let row = self
            .delivery_of_organisation(&disclosure_id, &caller)
            .await?;
        let follow_ups = self
            .inner
            .store
            .follow_ups(&row.disclosure_id)
            .await?
            .into_iter()
            .map(|follow_up| {
                let question = self
                    .inner
                    .cipher
                    .open(&follow_up.question_sealed, &question_context(&follow_up.id))?;
                let question = String::from_utf8(question.to_vec()).map_err(|_| {
                    ServiceError::internal(anyhow::anyhow!(
                        "follow-up {} is not UTF-8",
                        follow_up.id
                    ))
                })?;
                Ok(follow_up_message(&follow_up, question))
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(ListFollowUpsResponse { follow_ups })
    }

    async fn list_escalations(
        &self,
        request: Request<ListEscalationsRequest>,
    ) -> Result<ListEscalationsResponse, ServiceError> {
        let caller = self.inner.authenticator.user(&request)?;
        caller.require_any(
            &[Role::DecisionMaker, Role::ComplianceOfficer],
            "reading escalations",
        )?;
        let requested = &request.get_ref().disclosure_id;
        let disclosure_id = if requested.is_empty() {
            String::new()
        } else {
            let id = parse_disclosure_id(requested)?;
            self.delivery_of_organisation(&id, &caller).await?;
            id
        };
        let escalations = self
            .inner
            .store
            .escalations(
                caller.organisation.code().as_str(),
                &disclosure_id,
                MAX_ESCALATIONS,
            )
            .await?
            .into_iter()
            .map(|row| Escalation {
                id: row.id,
                disclosure_id: row.disclosure_id,
                organisation: row.organisation,
                police_region: row.police_region,
                urgent: row.urgent,
                deadline_unix_ms: row.deadline,
                raised_at_unix_ms: row.raised_at,
                round: u32::try_from(row.round).unwrap_or(u32::MAX),
            })
            .collect();
        Ok(ListEscalationsResponse { escalations })
    }
}

/// The region of a police officer: role police_officer, organisation of kind police, and a
/// known region in the token. Anyone else is refused.
pub(crate) fn police_region(caller: &Caller, action: &str) -> Result<PoliceRegion, ServiceError> {
    caller.require_any(&[Role::PoliceOfficer], action)?;
    if !matches!(caller.organisation.kind(), OrganisationKind::Police) {
        return Err(ServiceError::PermissionDenied(format!(
            "{action} is for officers of Polismyndigheten"
        )));
    }
    let region = caller.principal.police_region.as_deref().ok_or_else(|| {
        ServiceError::PermissionDenied(format!("{action} needs a token that names a police region"))
    })?;
    PoliceRegion::parse(region).map_err(|_| {
        ServiceError::PermissionDenied("the token names an unknown police region".into())
    })
}

/// The actor of an officer's event.
fn actor(caller: &Caller) -> OutboxActor {
    OutboxActor {
        user_id: caller.user().to_owned(),
        roles: caller.role_names(),
        organisation: caller.organisation.code().as_str().to_owned(),
        unit: caller.principal.unit.clone().unwrap_or_default(),
    }
}

/// An outbox payload about `row` with no details yet; the trace id is the delivery's, the
/// `traceparent` the current span's (the relays continue its trace).
pub(crate) fn event_payload(
    row: &DeliveryRow,
    event_type: &str,
    at: i64,
    actor: Option<OutboxActor>,
) -> OutboxPayload {
    OutboxPayload {
        event_id: uuid::Uuid::now_v7().hyphenated().to_string(),
        event_type: event_type.to_owned(),
        occurred_at_unix_ms: at,
        actor,
        disclosure_id: row.disclosure_id.clone(),
        organisation: row.organisation.clone(),
        police_region: row.police_region.clone(),
        legal_basis_id: row.legal_basis_id.clone(),
        registry_version: row.registry_version.clone(),
        trace_id: row.trace_id.clone(),
        traceparent: tryggdel_service_kit::current_traceparent().unwrap_or_default(),
        details: BTreeMap::new(),
        receipt: None,
    }
}

fn delivered_event(delivery: &NewDelivery, sequence: i64) -> OutboxPayload {
    let row = delivered_row(delivery.clone(), sequence);
    let mut payload = event_payload(&row, EVENT_DELIVERED, delivery.delivered_at, None);
    let details = [
        ("sequence", sequence.to_string()),
        ("urgent", delivery.urgent.to_string()),
        ("payload_sha256", delivery.payload_sha256.clone()),
        ("deadline_unix_ms", delivery.deadline.to_string()),
        ("delivered_by", delivery.delivered_by.clone()),
        ("approved_by", delivery.approved_by.clone()),
    ];
    payload.details.extend(
        details
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value)),
    );
    payload
}

/// The stored row of a delivery just committed.
pub(crate) fn delivered_row(delivery: NewDelivery, sequence: i64) -> DeliveryRow {
    DeliveryRow {
        disclosure_id: delivery.disclosure_id,
        police_region: delivery.police_region,
        sequence,
        organisation: delivery.organisation,
        urgent: delivery.urgent,
        payload_sealed: delivery.payload_sealed,
        payload_sha256: delivery.payload_sha256,
        approved_by: delivery.approved_by,
        approved_at: delivery.approved_at,
        legal_basis_id: delivery.legal_basis_id,
        registry_version: delivery.registry_version,
        delivered_by: delivery.delivered_by,
        trace_id: delivery.trace_id,
        delivered_at: delivery.delivered_at,
        deadline: delivery.deadline,
        overdue: false,
        escalations: 0,
        next_escalation_at: Some(delivery.deadline),
        receipt: None,
    }
}

/// Overdue: escalated once, or unacknowledged past the deadline.
fn is_overdue(row: &DeliveryRow, now: i64) -> bool {
    row.overdue || (row.receipt.is_none() && now >= row.deadline)
}

fn delivery_message(row: &DeliveryRow, payload: Vec<u8>, now: i64) -> Delivery {
    Delivery {
        sequence: to_u64(row.sequence),
        disclosure_id: row.disclosure_id.clone(),
        organisation: row.organisation.clone(),
        police_region: row.police_region.clone(),
        urgent: row.urgent,
        payload,
        payload_sha256: row.payload_sha256.clone(),
        delivered_at_unix_ms: row.delivered_at,
        deadline_unix_ms: row.deadline,
        overdue: is_overdue(row, now),
        receipt: row
            .receipt
            .as_ref()
            .map(|receipt| receipt_message(row, receipt)),
    }
}

fn receipt_message(row: &DeliveryRow, receipt: &StoredReceipt) -> Receipt {
    Receipt {
        disclosure_id: row.disclosure_id.clone(),
        police_reference: receipt.police_reference.clone(),
        acknowledged_by: receipt.acknowledged_by.clone(),
        police_region: row.police_region.clone(),
        acknowledged_at_unix_ms: receipt.acknowledged_at,
        payload_sha256: row.payload_sha256.clone(),
        statement: receipt.statement.clone(),
        signature: receipt.signature.clone(),
        key_id: receipt.key_id.clone(),
    }
}

fn follow_up_message(row: &FollowUpRow, question: String) -> FollowUp {
    FollowUp {
        id: row.id.clone(),
        disclosure_id: row.disclosure_id.clone(),
        organisation: row.organisation.clone(),
        asked_by: row.asked_by.clone(),
        police_region: row.police_region.clone(),
        question,
        asked_at_unix_ms: row.asked_at,
    }
}

/// The payload must be the one this request says it is: same disclosure, organisation,
/// region, urgency, legal basis and registry version.
fn check_payload_matches(
    payload: &PolicePayload,
    disclosure_id: &str,
    organisation: &OrganisationCode,
    region: PoliceRegion,
    request: &DeliverRequest,
) -> Result<(), ServiceError> {
    if payload.disclosure_id() != disclosure_id {
        return Err(ServiceError::invalid(
            "payload",
            "is for another disclosure than disclosure_id",
        ));
    }
    if payload.organisation_code() != organisation {
        return Err(ServiceError::invalid(
            "payload",
            "is from another organisation than organisation",
        ));
    }
    if payload.police_region() != region {
        return Err(ServiceError::invalid(
            "payload",
            format!(
                "names police region {} but the organisation's county routes to {}",
                payload.police_region().as_str(),
                region.as_str()
            ),
        ));
    }
    if payload.urgent() != request.urgent {
        return Err(ServiceError::invalid(
            "urgent",
            "differs from the payload's urgency",
        ));
    }
    if !request.legal_basis_id.is_empty()
        && request.legal_basis_id != payload.legal_basis().as_str()
    {
        return Err(ServiceError::invalid(
            "legal_basis_id",
            "differs from the payload's legal basis",
        ));
    }
    if !request.registry_version.is_empty()
        && request.registry_version != payload.registry_version()
    {
        return Err(ServiceError::invalid(
            "registry_version",
            "differs from the payload's registry version",
        ));
    }
    Ok(())
}

/// A disclosure id: a UUID, normalised to lowercase hyphenated form.
pub(crate) fn parse_disclosure_id(value: &str) -> Result<String, ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::invalid("disclosure_id", "is required"));
    }
    uuid::Uuid::parse_str(value)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| ServiceError::invalid("disclosure_id", "must be a UUID"))
}

/// Text of at most `max` characters without control characters (and, if `required`, not
/// empty).
fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, ServiceError> {
    if required && value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(ServiceError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// A follow-up question: 1..=2000 characters after trimming; line breaks and tabs allowed,
/// other control characters not.
fn question(value: &str) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid("question", "is required"));
    }
    if value.chars().count() > MAX_QUESTION_CHARS {
        return Err(ServiceError::invalid(
            "question",
            format!("at most {MAX_QUESTION_CHARS} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ServiceError::invalid(
            "question",
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(value.to_owned())
}

fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_trace_id(value: &str) -> bool {
    value.len() == 32
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && value.bytes().any(|b| b != b'0')
}

/// The sealing context of a delivery's payload.
pub(crate) fn payload_context(disclosure_id: &str) -> String {
    format!("notification:delivery:{disclosure_id}:payload")
}

/// The sealing context of a follow-up question.
fn question_context(follow_up_id: &str) -> String {
    format!("notification:follow_up:{follow_up_id}:question")
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn encode_page_token(sequence: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("after:{sequence}"))
}

fn decode_page_token(token: &str) -> Result<i64, ServiceError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("after:").and_then(|n| n.parse().ok()))
        .filter(|sequence: &i64| *sequence >= 0)
        .ok_or_else(|| ServiceError::invalid("page_token", "not a token this service issued"))
}

fn respond<T>(result: Result<T, ServiceError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn deliver(
        &self,
        request: Request<DeliverRequest>,
    ) -> Result<Response<DeliverResponse>, Status> {
        respond(NotificationApi::deliver(self, request).await)
    }

    type SubscribeStream = DeliveryStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        respond(NotificationApi::subscribe(self, request).await)
    }

    async fn list_pending(
        &self,
        request: Request<ListPendingRequest>,
    ) -> Result<Response<ListPendingResponse>, Status> {
        respond(NotificationApi::list_pending(self, request).await)
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Response<Receipt>, Status> {
        respond(NotificationApi::acknowledge(self, request).await)
    }

    async fn get_delivery_status(
        &self,
        request: Request<GetDeliveryStatusRequest>,
    ) -> Result<Response<DeliveryStatus>, Status> {
        respond(NotificationApi::get_delivery_status(self, request).await)
    }

    async fn ask_follow_up(
        &self,
        request: Request<AskFollowUpRequest>,
    ) -> Result<Response<FollowUp>, Status> {
        respond(NotificationApi::ask_follow_up(self, request).await)
    }

    async fn list_follow_ups(
        &self,
        request: Request<ListFollowUpsRequest>,
    ) -> Result<Response<ListFollowUpsResponse>, Status> {
        respond(NotificationApi::list_follow_ups(self, request).await)
    }

    async fn list_escalations(
        &self,
        request: Request<ListEscalationsRequest>,
    ) -> Result<Response<ListEscalationsResponse>, Status> {
        respond(NotificationApi::list_escalations(self, request).await)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_page_token(&encode_page_token(41)).unwrap(), 41);
        for bad in [
            "garbage!",
            &URL_SAFE_NO_PAD.encode("after:x"),
            &URL_SAFE_NO_PAD.encode("after:-3"),
        ] {
            let status: Status = decode_page_token(bad).unwrap_err().into();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().starts_with("page_token:"), "{bad}");
        }
    }

    #[test]
    fn disclosure_ids_are_uuids_in_one_form() {
        let id = "0193A1B2-0000-7000-8000-000000000001";
        assert_eq!(
            parse_disclosure_id(id).unwrap(),
            "0193a1b2-0000-7000-8000-000000000001"
        );
        for bad in ["", "not-a-uuid", "0193a1b2"] {
            let status: Status = parse_disclosure_id(bad).unwrap_err().into();
            assert!(status.message().starts_with("disclosure_id:"), "{bad}");
        }
    }

    #[test]
    fn police_references_and_questions_are_bounded_text() {
        assert_eq!(
            text("police_reference", "5000-K123456-26", 64, true).unwrap(),
            "5000-K123456-26"
        );
        assert!(text("police_reference", "", 64, true).is_err());
        assert!(text("police_reference", &"x".repeat(65), 64, true).is_err());
        assert!(text("police_reference", "5000\n26", 64, true).is_err());
        assert_eq!(
            question("  Finns vapen i hemmet?\n ").unwrap(),
            "Finns vapen i hemmet?"
        );
        assert!(question("   ").is_err());
        assert!(question(&"å".repeat(MAX_QUESTION_CHARS)).is_ok());
        assert!(question(&"å".repeat(MAX_QUESTION_CHARS + 1)).is_err());
        assert!(question("rad ett\nrad två\tflik").is_ok());
        assert!(question("klocka\u{7}").is_err());
    }

    #[test]
    fn hashes_and_trace_ids_are_lowercase_hex() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex(&"ab".repeat(31)));
        assert!(is_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!is_trace_id(&"0".repeat(32)));
        assert!(!is_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"));
    }
}
