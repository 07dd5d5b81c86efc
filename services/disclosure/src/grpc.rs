//! The `DisclosureService` gRPC adapter: each RPC authenticates its caller and hands the
//! request to its handler; results become responses and statuses in one place
//! ([`tryggdel_service_kit::respond`]).

use tonic::{Request, Response, Status};
use tryggdel_proto::disclosure::v1::{
    ApproveRequest, AssessLegalBasisRequest, Assessment, CreateDraftRequest, Delegation,
    Disclosure, GetInformationRequestRequest, GetRequest, GrantDelegationRequest,
    InformationRequest, ListDelegationsRequest, ListDelegationsResponse,
    ListInformationRequestsRequest, ListInformationRequestsResponse, ListRequest, ListResponse,
    RecordReceiptRequest, RecordReceiptResponse, RefuseInformationRequestRequest, RejectRequest,
    RequestInformationRequest, RevokeDelegationRequest, SubmitRequest, UpdateDraftRequest,
    WithdrawRequest, disclosure_service_server::DisclosureService,
};
use tryggdel_proto::disclosure::v1::{
    ClearingReport, GetStatisticsRequest, RunClearingRequest, Statistics,
};
use tryggdel_proto::disclosure::v1::{
    EndHoldRequest, ExtendHoldRequest, Hold, ListHoldsRequest, ListHoldsResponse, PlaceHoldRequest,
};
use tryggdel_service_kit::respond;

use crate::api::DisclosureApi;

/// Runs a user's call: authenticates the caller, runs the handler `$method`, logs a refusal.
macro_rules! handle {
    ($self:ident, $request:ident, $method:ident) => {{
        let caller = $self.authenticate(&$request).await?;
        let result = $self.$method(&caller, $request.into_inner()).await;
        if let Err(error) = &result {
            tracing::debug!(user = %caller.user(), error = %error, concat!(stringify!($method), " refused"));
        }
        respond(result)
    }};
}

#[tonic::async_trait]
impl DisclosureService for DisclosureApi {
    async fn record_receipt(
        &self,
        request: Request<RecordReceiptRequest>,
    ) -> Result<Response<RecordReceiptResponse>, Status> {
        respond(DisclosureApi::record_receipt(self, request).await)
    }

    async fn create_draft(
        &self,
        request: Request<CreateDraftRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, create_draft)
    }

    async fn update_draft(
        &self,
        request: Request<UpdateDraftRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, update_draft)
    }

    async fn assess_legal_basis(
        &self,
        request: Request<AssessLegalBasisRequest>,
    ) -> Result<Response<Assessment>, Status> {
        handle!(self, request, assess)
    }

    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, submit)
    }

    async fn approve(
        &self,
        request: Request<ApproveRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, approve)
    }

    async fn reject(
        &self,
        request: Request<RejectRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, reject)
    }

    async fn withdraw(
        &self,
        request: Request<WithdrawRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, withdraw)
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, get)
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        handle!(self, request, list)
    }

    async fn grant_delegation(
        &self,
        request: Request<GrantDelegationRequest>,
    ) -> Result<Response<Delegation>, Status> {
        handle!(self, request, grant_delegation)
    }

    async fn revoke_delegation(
        &self,
        request: Request<RevokeDelegationRequest>,
    ) -> Result<Response<Delegation>, Status> {
        handle!(self, request, revoke_delegation)
    }

    async fn list_delegations(
        &self,
        request: Request<ListDelegationsRequest>,
    ) -> Result<Response<ListDelegationsResponse>, Status> {
        handle!(self, request, list_delegations)
    }

    async fn request_information(
        &self,
        request: Request<RequestInformationRequest>,
    ) -> Result<Response<InformationRequest>, Status> {
        handle!(self, request, request_information)
    }

    async fn get_information_request(
        &self,
        request: Request<GetInformationRequestRequest>,
    ) -> Result<Response<InformationRequest>, Status> {
        handle!(self, request, get_information_request)
    }

    async fn list_information_requests(
        &self,
        request: Request<ListInformationRequestsRequest>,
    ) -> Result<Response<ListInformationRequestsResponse>, Status> {
        handle!(self, request, list_information_requests)
    }

    async fn refuse_information_request(
        &self,
        request: Request<RefuseInformationRequestRequest>,
    ) -> Result<Response<InformationRequest>, Status> {
        handle!(self, request, refuse_information_request)
    }

    async fn place_hold(
        &self,
        request: Request<PlaceHoldRequest>,
    ) -> Result<Response<Hold>, Status> {
        handle!(self, request, place_hold)
    }

    async fn extend_hold(
        &self,
        request: Request<ExtendHoldRequest>,
    ) -> Result<Response<Hold>, Status> {
        handle!(self, request, extend_hold)
    }

    async fn end_hold(&self, request: Request<EndHoldRequest>) -> Result<Response<Hold>, Status> {
        handle!(self, request, end_hold)
    }

    async fn list_holds(
        &self,
        request: Request<ListHoldsRequest>,
    ) -> Result<Response<ListHoldsResponse>, Status> {
        handle!(self, request, list_holds)
    }

    async fn get_statistics(
        &self,
        request: Request<GetStatisticsRequest>,
    ) -> Result<Response<Statistics>, Status> {
        handle!(self, request, get_statistics)
    }

    async fn run_clearing(
        &self,
        request: Request<RunClearingRequest>,
    ) -> Result<Response<ClearingReport>, Status> {
        handle!(self, request, run_clearing)
    }
}
