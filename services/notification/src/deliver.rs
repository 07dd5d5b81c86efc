//! Deliver: the disclosure service hands over an approved disclosure. Only allow-listed
//! service certificates; the request is checked once into a [`ValidDelivery`]; the delivery
//! gets the next sequence of its region in the transaction that stores it and its
//! `notification.delivered` event. Idempotent by disclosure id: the same delivery again is
//! answered as a duplicate, the same id with another payload is refused.

use tonic::Request;
use tryggdel_proto::notification::v1::{DeliverRequest, DeliverResponse};
use tryggdel_service_kit::{ServiceError, millis, now_unix_ms, trace_id};

use crate::api::NotificationApi;
use crate::delivery_request::{TraceId, ValidDelivery};
use crate::events;
use crate::policy::DELIVER;
use crate::store::{DeliverOutcome, NewDelivery, payload_context};
use crate::wire::to_u64;

impl NotificationApi {
    pub(crate) async fn deliver(
        &self,
        request: Request<DeliverRequest>,
    ) -> Result<DeliverResponse, ServiceError> {
        let sender = DELIVER.check(&request, |name| self.is_sender(name))?;
        let call_trace_id = trace_id(request.metadata());
        let ValidDelivery {
            disclosure_id,
            organisation,
            police_region,
            urgent,
            payload,
            approved_by,
            approved_at_unix_ms,
            trace_id: named_trace_id,
            person_refs,
        } = ValidDelivery::parse(request.into_inner(), self.authenticator().directory())?;
        let now = now_unix_ms();
        let due_in = if urgent {
            self.deadlines().urgent
        } else {
            self.deadlines().ordinary
        };
        let delivery = NewDelivery {
            disclosure_id: disclosure_id.as_str().to_owned(),
            police_region,
            organisation,
            urgent,
            payload_sealed: self
                .cipher()
                .seal(payload.bytes(), &payload_context(disclosure_id.as_str()))?,
            payload_sha256: payload.sha256_hex().to_owned(),
            approved_by,
            approved_at: approved_at_unix_ms,
            legal_basis_id: payload.police_payload().legal_basis().as_str().to_owned(),
            registry_version: payload.police_payload().registry_version().to_owned(),
            delivered_by: sender.name,
            trace_id: named_trace_id.map_or(call_trace_id, TraceId::into_string),
            delivered_at: now,
            deadline: now.saturating_add(millis(due_in)),
            person_refs,
        };
        let outcome = self
            .store()
            .deliver(&delivery, |sequence| {
                events::delivered(&delivery, sequence).to_event()
            })
            .await?;
        match outcome {
            DeliverOutcome::Delivered { sequence } => {
                let row = delivery.into_row(sequence);
                self.publish(&row, payload.into_bytes());
                tracing::info!(
                    disclosure_id = %row.disclosure_id,
                    police_region = %row.police_region.as_str(),
                    sequence,
                    urgent = row.urgent,
                    "delivered"
                );
                Ok(DeliverResponse {
                    police_region: row.police_region.as_str().to_owned(),
                    sequence: to_u64(sequence),
                    duplicate: false,
                })
            }
            DeliverOutcome::Existing(existing) => {
                if existing.payload_sha256 != payload.sha256_hex() {
                    return Err(ServiceError::AlreadyExists(format!(
                        "disclosure {} was delivered with another payload \
                         (payload_sha256 differs); refused",
                        disclosure_id
                    )));
                }
                Ok(DeliverResponse {
                    police_region: existing.police_region.as_str().to_owned(),
                    sequence: to_u64(existing.sequence),
                    duplicate: true,
                })
            }
        }
    }
}
