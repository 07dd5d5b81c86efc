//! Client side: a rustls client configuration with a client certificate, and tonic channels.
//!
//! The channels use tonic's own TLS (`ClientTlsConfig`); tonic offers TLS 1.2 and 1.3, and the
//! servers of this crate accept 1.3 only, so every connection made is TLS 1.3. Call
//! [`crate::install_crypto_provider`] at start-up so tonic picks the ring provider.

use std::time::Duration;

use rustls::ClientConfig;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{Result, TlsError};
use crate::pem::{parse_certificates, parse_private_key, parse_root_store};

/// How long [`connect_channel`] and [`lazy_channel`] wait for a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a client configuration: TLS 1.3 only, ring provider, ALPN `h2`, server verified
/// against `ca_pem`, and `client_cert_pem`/`client_key_pem` presented as client certificate.
pub fn client_config(
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<ClientConfig> {
    let roots = parse_root_store(ca_pem, "server ca certificate")?;
    let chain = parse_certificates(client_cert_pem, "client certificate")?;
    let key = parse_private_key(client_key_pem, "client private key")?;
    let builder = ClientConfig::builder_with_provider(crate::ring_provider());
    let mut config = crate::tls13_only(builder, "client tls configuration")?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(TlsError::rustls("client certificate and key"))?;
    config.alpn_protocols = vec![crate::ALPN_H2.to_vec()];
    Ok(config)
}

/// Connects a tonic channel over mTLS and waits for the connection.
///
/// `endpoint_uri` is e.g. `"https://127.0.0.1:50051"`; `server_name` is the name checked
/// against the server certificate's SANs (e.g. `"localhost"`), independent of the URI's host.
pub async fn connect_channel(
    endpoint_uri: &str,
    server_name: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<Channel> {
    let endpoint = endpoint(
        endpoint_uri,
        server_name,
        ca_pem,
        client_cert_pem,
        client_key_pem,
    )?;
    endpoint
        .connect()
        .await
        .map_err(|source| TlsError::Channel {
            uri: endpoint_uri.to_owned(),
            source,
        })
}

/// Like [`connect_channel`], but connects on first use (and reconnects as needed); errors here
/// are configuration errors only.
pub fn lazy_channel(
    endpoint_uri: &str,
    server_name: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<Channel> {
    let endpoint = endpoint(
        endpoint_uri,
        server_name,
        ca_pem,
        client_cert_pem,
        client_key_pem,
    )?;
    Ok(endpoint.connect_lazy())
}

fn endpoint(
    endpoint_uri: &str,
    server_name: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<Endpoint> {
    // tonic parses PEM only when connecting and with vaguer errors: check it here first.
    parse_root_store(ca_pem, "server ca certificate")?;
    parse_certificates(client_cert_pem, "client certificate")?;
    parse_private_key(client_key_pem, "client private key")?;

    let channel_error = |source| TlsError::Channel {
        uri: endpoint_uri.to_owned(),
        source,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(client_cert_pem, client_key_pem))
        .domain_name(server_name);
    Endpoint::from_shared(endpoint_uri.to_owned())
        .map_err(channel_error)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_config(tls)
        .map_err(channel_error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_certificates::ca_and_client;

    #[test]
    fn client_config_offers_h2_and_a_certificate() {
        let (ca, client) = ca_and_client("c", "o");
        let config = client_config(ca.cert_pem(), &client.cert_pem, &client.key_pem).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn client_config_errors_name_the_input() {
        let (ca, client) = ca_and_client("c", "o");
        let error = client_config("", &client.cert_pem, &client.key_pem).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no certificate found in server ca certificate pem"
        );
        let error = client_config(ca.cert_pem(), &client.cert_pem, "").unwrap_err();
        assert_eq!(
            error.to_string(),
            "no private key found in client private key pem"
        );
    }

    #[tokio::test]
    async fn lazy_channel_checks_configuration_without_connecting() {
        crate::install_crypto_provider();
        let (ca, client) = ca_and_client("c", "o");
        // Nothing listens there; a lazy channel does not care until used.
        assert!(
            lazy_channel(
                "https://127.0.0.1:1",
                "localhost",
                ca.cert_pem(),
                &client.cert_pem,
                &client.key_pem,
            )
            .is_ok()
        );
        let error = lazy_channel(
            "not a uri",
            "localhost",
            ca.cert_pem(),
            &client.cert_pem,
            &client.key_pem,
        )
        .unwrap_err();
        assert!(error.to_string().contains("not a uri"), "{error}");
        assert!(
            lazy_channel(
                "https://127.0.0.1:1",
                "localhost",
                "",
                &client.cert_pem,
                &client.key_pem
            )
            .is_err()
        );
    }
}
