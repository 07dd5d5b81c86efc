//! The relay of receipts back to the disclosure service: every acknowledgement's signed
//! receipt reaches it (`RecordReceipt`, idempotent there) at least once, so exactly once in
//! effect. Events go to the audit log through the shared `AuditDestination`.

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt as _;
use tryggdel_proto::disclosure::v1::RecordReceiptRequest;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_service_kit::{Destination, Sent, ServiceEndpoint, ServiceLink, TracedChannel};
use tryggdel_storage::{OutboxDestination, PendingEvent};

use crate::store::{OutboxPayload, outbox::TO_DISCLOSURE};

/// How many receipts are on their way to the disclosure service at once.
const RECEIPTS_IN_FLIGHT: usize = 16;

/// The disclosure service as the destination of acknowledgements: each carries the signed
/// receipt it records.
pub struct ReceiptsToDisclosure {
    link: DisclosureLink,
}

/// A connection to the disclosure service (connects on first use).
type DisclosureLink = ServiceLink<DisclosureServiceClient<TracedChannel>>;

impl ReceiptsToDisclosure {
    pub fn new(endpoint: &ServiceEndpoint) -> anyhow::Result<ReceiptsToDisclosure> {
        Ok(ReceiptsToDisclosure {
            link: ServiceLink::new(
                endpoint,
                "tryggdel.disclosure.v1.DisclosureService",
                DisclosureServiceClient::new,
            )?,
        })
    }
}

impl Destination for ReceiptsToDisclosure {
    fn name(&self) -> &'static str {
        "notification.receipts"
    }

    fn outbox(&self) -> OutboxDestination {
        TO_DISCLOSURE
    }

    /// Hands the receipts over several at once (each waits for the disclosure service's
    /// commit). Those recorded are held even when others failed; the first failure is
    /// returned (the relay backs off and sends the rest again).
    async fn send(&self, events: Vec<PendingEvent>) -> Sent {
        let outcomes: Vec<anyhow::Result<i64>> = futures::stream::iter(events)
            .map(|pending| relay_receipt(&self.link, pending.seq, pending.event.payload))
            .buffer_unordered(RECEIPTS_IN_FLIGHT)
            .collect()
            .await;
        let mut sent = Sent::default();
        for outcome in outcomes {
            match outcome {
                Ok(seq) => sent.held.push(seq),
                Err(error) => {
                    sent.failure.get_or_insert(error);
                }
            }
        }
        sent
    }
}

/// Sends the receipt of acknowledgement `seq` to the disclosure service; returns `seq`.
async fn relay_receipt(
    disclosure: &DisclosureLink,
    seq: i64,
    payload: String,
) -> anyhow::Result<i64> {
    let payload: OutboxPayload = serde_json::from_str(&payload)
        .with_context(|| format!("outbox event {seq} has an unreadable payload"))?;
    let receipt = payload
        .receipt
        .as_ref()
        .with_context(|| format!("acknowledgement {seq} carries no receipt"))?;
    let request = RecordReceiptRequest {
        disclosure_id: payload.disclosure_id.clone(),
        statement: STANDARD
            .decode(&receipt.statement_base64)
            .with_context(|| format!("acknowledgement {seq}: receipt statement"))?,
        signature: STANDARD
            .decode(&receipt.signature_base64)
            .with_context(|| format!("acknowledgement {seq}: receipt signature"))?,
        key_id: receipt.key_id.clone(),
        trace_id: payload.trace_id.clone(),
    };
    // The hop back continues the acknowledgement's trace.
    let disclosure_id = request.disclosure_id.clone();
    disclosure
        .call(
            "RecordReceipt",
            &payload.traceparent,
            |mut client| async move { client.record_receipt(request).await },
        )
        .await
        // The status stays the error's source, with its own cause (e.g. the transport's).
        .map_err(anyhow::Error::new)
        .with_context(|| {
            format!("recording the receipt of {disclosure_id} in the disclosure service")
        })?;
    Ok(seq)
}
