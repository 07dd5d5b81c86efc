//! The one way a service calls another: [`ServiceLink`] holds a traced mTLS channel to the
//! other service and the deadline for one call, runs each call in a client span (continuing
//! the trace of the event that caused it), and [`Retry::of`] is the one classification of a
//! refusal into worth retrying or not.

use std::future::Future;
use std::time::Duration;

use tonic::{Code, Status};

use crate::observe::{TracedChannel, call_in_span, client_span};
use crate::{ServiceEndpoint, context_from_traceparent, set_parent};

/// Whether a failed call may succeed if made again unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The other service, or the way to it, is not able to answer now (unavailable, too slow,
    /// overloaded, aborted by a conflict, a fault on its side, or a version of it that does
    /// not know the call yet): back off and try again.
    Later,
    /// The other service refused the call as it is: the same call will be refused again.
    Never,
}

impl Retry {
    /// How a relay treats `status`.
    pub fn of(status: &Status) -> Retry {
        match status.code() {
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::NotFound => Retry::Never,
            Code::Ok
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::Cancelled
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
            | Code::Unauthenticated => Retry::Later,
        }
    }
}

/// A client of another Tryggdel service: connects on first use and reconnects as needed;
/// every call carries the trace context of its client span and has the endpoint's deadline.
#[derive(Clone)]
pub struct ServiceLink<C> {
    client: C,
    service: &'static str,
    timeout: Duration,
}

impl<C: Clone> ServiceLink<C> {
    /// A link to the gRPC service `service` (its full name, for spans) at `endpoint`, whose
    /// generated client `new_client` makes from a channel.
    pub fn new(
        endpoint: &ServiceEndpoint,
        service: &'static str,
        new_client: impl FnOnce(TracedChannel) -> C,
    ) -> anyhow::Result<ServiceLink<C>> {
        Ok(ServiceLink {
            client: new_client(endpoint.traced_channel()?),
            service,
            timeout: endpoint.timeout,
        })
    }

    /// Calls `method` through `call` in a client span that continues `traceparent` (the trace
    /// of the request that caused the call; empty for the current one), within the deadline.
    pub async fn call<T, F, Fut>(
        &self,
        method: &'static str,
        traceparent: &str,
        call: F,
    ) -> Result<T, Status>
    where
        F: FnOnce(C) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let span = client_span(self.service, method);
        if let Some(parent) = context_from_traceparent(traceparent) {
            set_parent(&span, parent);
        }
        call_in_span(span, self.timeout, call(self.client.clone())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_the_call_itself_are_never_retried() {
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::NotFound,
        ] {
            assert_eq!(Retry::of(&Status::new(code, "")), Retry::Never, "{code:?}");
        }
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Aborted,
            Code::Internal,
        ] {
            assert_eq!(Retry::of(&Status::new(code, "")), Retry::Later, "{code:?}");
        }
    }
}
