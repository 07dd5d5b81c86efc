//! For tests that run services from the [`crate::SystemBuilder`]: the test identity of a
//! development data directory (its CA, to connect with any organisation's or service's
//! certificate, and its token issuer's keys, to mint tokens the services accept).

use std::time::Duration;

use tryggdel_auth::SigningKeyPair;
use tryggdel_service_kit::RelayConfig;
use tryggdel_test_support::TestIdentity;

use crate::data_directory::DataDirectory;
use crate::development::ISSUER;
use crate::files::read;

/// The test identity of the development data directory `data` (prepared already).
pub fn development_identity(data: &DataDirectory) -> anyhow::Result<TestIdentity> {
    Ok(TestIdentity::from_pem(
        &read(&data.ca_cert())?,
        &read(&data.ca_key())?,
        SigningKeyPair {
            private_key_pem: read(&data.signing_key())?,
            public_key_pem: read(&data.verifying_key())?,
        },
        ISSUER,
    ))
}

/// Relays that move events within a test's patience: small batches, short backoff, frequent
/// polls.
pub fn fast_relay() -> RelayConfig {
    RelayConfig {
        batch: 50,
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        poll_interval: Duration::from_millis(100),
    }
}
