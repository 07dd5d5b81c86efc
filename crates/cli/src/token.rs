//! Bearer tokens on outgoing calls.

use anyhow::Context;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};

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
