//! The three services, called on the signed-in user's behalf: the console's own service
//! certificate on the connection, the user's token on each call. The services accept the
//! console's certificate for user calls and still verify every token and decide everything.

use anyhow::Context;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::subject_report_service_client::SubjectReportServiceClient;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;
use tryggdel_service_kit::ServiceEndpoint;

use crate::session::SignedInUser;

/// Adds the user's `authorization: Bearer …` (and the request's trace context) to a call.
#[derive(Clone)]
pub struct OnBehalfOf {
    authorization: Option<MetadataValue<Ascii>>,
}

impl tonic::service::Interceptor for OnBehalfOf {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let authorization = self
            .authorization
            .clone()
            .ok_or_else(|| Status::unauthenticated("the session's token cannot be sent"))?;
        request
            .metadata_mut()
            .insert("authorization", authorization);
        if let Some(traceparent) = tryggdel_service_kit::current_traceparent()
            && let Ok(value) = traceparent.parse()
        {
            request.metadata_mut().insert("traceparent", value);
        }
        Ok(request)
    }
}

pub type Disclosures = DisclosureServiceClient<InterceptedService<Channel, OnBehalfOf>>;
pub type Audit = AuditServiceClient<InterceptedService<Channel, OnBehalfOf>>;
pub type SubjectReports = SubjectReportServiceClient<InterceptedService<Channel, OnBehalfOf>>;
pub type Notifications = NotificationServiceClient<InterceptedService<Channel, OnBehalfOf>>;
pub type Review = tryggdel_proto::audit::v1::log_review_service_client::LogReviewServiceClient<
    InterceptedService<Channel, OnBehalfOf>,
>;

/// The channels to the three services (each connects on first use and reconnects).
pub struct Backend {
    disclosure: Channel,
    audit: Channel,
    notification: Channel,
}

impl Backend {
    pub fn new(
        disclosure: &ServiceEndpoint,
        audit: &ServiceEndpoint,
        notification: &ServiceEndpoint,
    ) -> anyhow::Result<Backend> {
        Ok(Backend {
            disclosure: disclosure
                .lazy_channel()
                .context("the disclosure service's endpoint")?,
            audit: audit
                .lazy_channel()
                .context("the audit service's endpoint")?,
            notification: notification
                .lazy_channel()
                .context("the notification service's endpoint")?,
        })
    }

    fn on_behalf_of(user: &SignedInUser) -> OnBehalfOf {
        OnBehalfOf {
            authorization: format!("Bearer {}", user.token).parse().ok(),
        }
    }

    pub fn disclosures(&self, user: &SignedInUser) -> Disclosures {
        DisclosureServiceClient::with_interceptor(self.disclosure.clone(), Self::on_behalf_of(user))
    }

    pub fn audit(&self, user: &SignedInUser) -> Audit {
        AuditServiceClient::with_interceptor(self.audit.clone(), Self::on_behalf_of(user))
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// The audit service's log review.
    pub fn review(&self, user: &SignedInUser) -> Review {
        tryggdel_proto::audit::v1::log_review_service_client::LogReviewServiceClient::with_interceptor(
            self.audit.clone(),
            Self::on_behalf_of(user),
        )
    }

    pub fn subject_reports(&self, user: &SignedInUser) -> SubjectReports {
        SubjectReportServiceClient::with_interceptor(self.audit.clone(), Self::on_behalf_of(user))
    }

    pub fn notifications(&self, user: &SignedInUser) -> Notifications {
        NotificationServiceClient::with_interceptor(
            self.notification.clone(),
            Self::on_behalf_of(user),
        )
    }
}
