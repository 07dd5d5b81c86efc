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
use crate::system::{BoundSystem, SystemBuilder};

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

/// The system a test starts from `data`: every service on a free port, checkpoints signed as
/// soon as entries arrive. A test adds its databases and overrides.
pub fn test_system(data: &std::path::Path) -> SystemBuilder {
    SystemBuilder::development(data)
        .on_free_ports()
        .audit(|settings| settings.checkpoint_interval = Duration::ZERO)
}

/// Binds `builder`'s system (nothing started yet) with the test identity of its data directory.
pub async fn bind_with_identity(
    builder: SystemBuilder,
) -> anyhow::Result<(TestIdentity, BoundSystem)> {
    let bound = builder.bind().await?;
    Ok((development_identity(&bound.data)?, bound))
}
