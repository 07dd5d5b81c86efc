//! Bearer tokens on outgoing calls, and statuses explained the way a user can act on them.

use anyhow::Context;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Code, Status};

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(token: &str) -> anyhow::Result<Bearer> {
        let value = format!("Bearer {}", token.trim())
            .parse()
            .context("the token contains characters that cannot go in a header")?;
        Ok(Bearer(value))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A refused call as an error that says what to do.
pub fn explain(status: Status) -> anyhow::Error {
    let hint = match status.code() {
        Code::Unauthenticated => {
            " (get a fresh token: `tryggdel dev-token --role … --user … --org …`)"
        }
        Code::PermissionDenied => " (your role or organisation may not do this)",
        Code::Unavailable => " (is the service running? try again shortly)",
        _ => "",
    };
    anyhow::anyhow!("{:?}: {}{hint}", status.code(), status.message())
}
