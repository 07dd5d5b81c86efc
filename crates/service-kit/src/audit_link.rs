//! The client side of the audit log, as every other service uses it.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::Channel;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{AppendRequest, AppendedEntry, AuditEvent};

/// PEM material a service presents when it calls another: its own certificate and key, and
/// the CA that must have issued the server's certificate.
#[derive(Clone)]
pub struct ClientTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ClientTls { .. }")
    }
}

/// Where another service is and how to reach it.
#[derive(Clone, Debug)]
pub struct ServiceEndpoint {
    /// e.g. `https://127.0.0.1:50052`.
    pub uri: String,
    /// The name the service's certificate must carry, e.g. `localhost`.
    pub server_name: String,
    pub tls: ClientTls,
    /// How long one call may take before it counts as failed.
    pub timeout: Duration,
}

impl ServiceEndpoint {
    /// A channel that connects on first use and reconnects as needed.
    pub fn lazy_channel(&self) -> anyhow::Result<Channel> {
        tryggdel_tls::install_crypto_provider();
        tryggdel_tls::lazy_channel(
            &self.uri,
            &self.server_name,
            &self.tls.ca_pem,
            &self.tls.cert_pem,
            &self.tls.key_pem,
        )
        .with_context(|| format!("channel to {}", self.uri))
    }
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AuditLinkError {
    #[error("the audit service did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the audit service refused or failed the append: {0}")]
    Status(#[from] tonic::Status),
    #[error("the audit service answered {got} entries for {sent} events")]
    Mismatch { sent: usize, got: usize },
}

/// A connection to the audit service (connects on first use, reconnects as needed).
#[derive(Clone)]
pub struct AuditLink {
    client: AuditServiceClient<Channel>,
    timeout: Duration,
}

impl AuditLink {
    pub fn new(endpoint: &ServiceEndpoint) -> anyhow::Result<AuditLink> {
        let channel = endpoint.lazy_channel()?;
        Ok(AuditLink {
            client: AuditServiceClient::new(channel),
            timeout: endpoint.timeout,
        })
    }

    /// Appends `events` in order; Ok once the audit log holds them durably.
    pub async fn append(
        &self,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AppendedEntry>, AuditLinkError> {
        let sent = events.len();
        let mut client = self.client.clone();
        let call = client.append(AppendRequest { events });
        let response = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| AuditLinkError::Timeout(self.timeout))??;
        let entries = response.into_inner().entries;
        if entries.len() != sent {
            return Err(AuditLinkError::Mismatch {
                sent,
                got: entries.len(),
            });
        }
        Ok(entries)
    }
}
