//! For tests that run services from the [`crate::SystemBuilder`]: the test identity of a
//! development data directory (its CA, to connect with any organisation's or service's
//! certificate, and its token issuer's keys, to mint tokens the services accept).

use tryggdel_auth::SigningKeyPair;
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
