//! What the disclosing organisation reads about its own deliveries: GetDeliveryStatus (when
//! delivered, the deadline, overdue, escalations, the receipt), ListFollowUps (the police's
//! questions, opened) and ListEscalations. Another organisation's delivery does not exist for
//! it.

use tonic::Request;
use tryggdel_proto::notification::v1::{
    DeliveryStatus, GetDeliveryStatusRequest, ListEscalationsRequest, ListEscalationsResponse,
    ListFollowUpsRequest, ListFollowUpsResponse,
};
use tryggdel_service_kit::{Caller, ServiceError, now_unix_ms};

use crate::api::NotificationApi;
use crate::policy::{
    delivery_of_organisation, require_escalation_reader, require_follow_up_reader,
    require_status_reader,
};
use crate::store::{DeliveryRow, question_context};
use crate::validate::DisclosureId;
use crate::wire::{delivery_status, escalation_message, follow_up_message};

/// The most escalations one ListEscalations answers (oldest first).
pub const MAX_ESCALATIONS: u32 = 1000;

impl NotificationApi {
    pub(crate) async fn get_delivery_status(
        &self,
        request: Request<GetDeliveryStatusRequest>,
    ) -> Result<DeliveryStatus, ServiceError> {
        let caller = self.authenticator().user(&request).await?;
        require_status_reader(&caller)?;
        let row = self
            .delivery_of_own_organisation(&request.get_ref().disclosure_id, &caller)
            .await?;
        Ok(delivery_status(&row, now_unix_ms()))
    }

    pub(crate) async fn list_follow_ups(
        &self,
        request: Request<ListFollowUpsRequest>,
    ) -> Result<ListFollowUpsResponse, ServiceError> {
        let caller = self.authenticator().user(&request).await?;
        require_follow_up_reader(&caller)?;
        let row = self
            .delivery_of_own_organisation(&request.get_ref().disclosure_id, &caller)
            .await?;
        let follow_ups = self
            .store()
            .follow_ups(&row.disclosure_id)
            .await?
            .into_iter()
            .map(|follow_up| {
                let question = self
                    .cipher()
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

    pub(crate) async fn list_escalations(
        &self,
        request: Request<ListEscalationsRequest>,
    ) -> Result<ListEscalationsResponse, ServiceError> {
        let caller = self.authenticator().user(&request).await?;
        require_escalation_reader(&caller)?;
        let organisation = caller.organisation.code();
        let requested = &request.get_ref().disclosure_id;
        let escalations = if requested.is_empty() {
            self.store()
                .open_escalations(organisation, MAX_ESCALATIONS)
                .await?
        } else {
            let row = self
                .delivery_of_own_organisation(requested, &caller)
                .await?;
            self.store()
                .escalations_of(organisation, &row.disclosure_id, MAX_ESCALATIONS)
                .await?
        };
        Ok(ListEscalationsResponse {
            escalations: escalations.into_iter().map(escalation_message).collect(),
        })
    }

    /// The delivery of the `disclosure_id` field if `caller`'s organisation made it;
    /// otherwise it does not exist.
    async fn delivery_of_own_organisation(
        &self,
        disclosure_id: &str,
        caller: &Caller,
    ) -> Result<DeliveryRow, ServiceError> {
        let disclosure_id = DisclosureId::parse(disclosure_id)?;
        delivery_of_organisation(self.store().get(disclosure_id.as_str()).await?, caller)
    }
}
