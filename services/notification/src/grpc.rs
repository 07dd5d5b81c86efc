//! The gRPC adapter: each `NotificationService` method calls its handler and turns the
//! result into the answer with [`respond`] (errors become statuses in one place). Nothing else
//! happens here.

use tonic::{Request, Response, Status};
use tryggdel_proto::notification::v1::notification_service_server::NotificationService;
use tryggdel_proto::notification::v1::{
    AcknowledgeRecallRequest, AcknowledgeRequest, AskFollowUpRequest, DeliverRequest,
    DeliverResponse, DeliveryStatus, FollowUp, GetDeliveryStatusRequest, ListEscalationsRequest,
    ListEscalationsResponse, ListFollowUpsRequest, ListFollowUpsResponse, ListPendingRequest,
    ListPendingResponse, Recall, RecallRequest, RecallResponse, Receipt, SubscribeRequest,
};
use tryggdel_service_kit::respond;

use crate::api::NotificationApi;
use crate::subscription::DeliveryStream;

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

    async fn recall(
        &self,
        request: Request<RecallRequest>,
    ) -> Result<Response<RecallResponse>, Status> {
        respond(NotificationApi::recall(self, request).await)
    }

    async fn acknowledge_recall(
        &self,
        request: Request<AcknowledgeRecallRequest>,
    ) -> Result<Response<Recall>, Status> {
        respond(NotificationApi::acknowledge_recall(self, request).await)
    }
}
