//! What the audit service's integration tests share: a test database, identity and log keys to
//! start the service on (as often as a test restarts it or runs instances side by side), a
//! fresh store for the tests below the API, the events they append, and the calls whose
//! answers they check.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit::{AuditStore, MIGRATIONS, RunningService, Settings};
use tryggdel_audit_verify::{ExportEntry, ExportHeader, ExportOpening, ExportWriter};
use tryggdel_domain::PersonKey;
use tryggdel_merkle::checkpoint::{CheckpointSigner, CheckpointVerifier};
use tryggdel_merkle::{Hash, hash_from_slice};
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{
    Actor, AuditEvent, ExportChunk, ExportRequest, GetCheckpointRequest,
    GetConsistencyProofRequest, ObjectRef, Outcome, SignedCheckpoint, export_chunk,
};
use tryggdel_storage::Database;
use tryggdel_system::development::AUDIT_ORIGIN;
use tryggdel_system::testing::development_identity;
use tryggdel_system::{DataDirectory, SystemBuilder};
use tryggdel_test_support::{BearerInterceptor, TestBackend, TestDatabase, TestIdentity};

pub const ORIGIN: &str = AUDIT_ORIGIN;
pub const BOLLNAS: &str = "bollnas-kommun";

/// What the service runs on: a fresh database and a development data directory (its PKI,
/// token issuer, log signing key and person key), the service's settings made from it by the
/// system builder as `tryggdel start` makes them. Every instance started from it is the same
/// service on the same log.
pub struct Deployment {
    pub identity: TestIdentity,
    pub database: TestDatabase,
    pub signing_key: ed25519_dalek::SigningKey,
    pub person_key: PersonKey,
    settings: Settings,
    _data: tempfile::TempDir,
}

impl Deployment {
    /// `None` where the backend is not available (PostgreSQL without its test URL).
    pub async fn create(backend: TestBackend) -> Option<Deployment> {
        let database = TestDatabase::create(backend).await?;
        let data = tempfile::tempdir().unwrap();
        let settings = SystemBuilder::development(data.path())
            .audit(|settings| settings.checkpoint_interval = Duration::ZERO)
            .audit_settings(database.url.clone())
            .unwrap();
        Some(Deployment {
            identity: development_identity(&DataDirectory::new(data.path())).unwrap(),
            database,
            signing_key: settings.signing_key.clone(),
            person_key: settings.person_key.clone(),
            settings,
            _data: data,
        })
    }

    /// The service's settings: every instance's, and those of one started again.
    pub fn settings(&self) -> Settings {
        self.settings.clone()
    }

    /// An instance of the service on 127.0.0.1:0.
    pub async fn spawn(&self) -> RunningService {
        tryggdel_audit::spawn(&self.settings(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    /// A client of `service` with the certificate of the Tryggdel service `name`.
    pub async fn service_client(
        &self,
        service: &RunningService,
        name: &str,
    ) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(
            self.identity
                .service_channel(service.local_addr, name)
                .await,
        )
    }

    /// Verifies notes signed with the log's key.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointSigner::new(self.signing_key.clone(), ORIGIN)
            .unwrap()
            .verifier()
    }
}

/// A fresh database of `backend`, migrated, and the store on it; `None` where the backend is
/// not available.
pub async fn store(backend: TestBackend) -> Option<(TestDatabase, AuditStore)> {
    let database = TestDatabase::create(backend).await?;
    let connected = Database::connect(&database.url, "audit", &MIGRATIONS)
        .await
        .unwrap();
    Some((database, AuditStore::new(connected)))
}

/// A successful event as disclosure reports it, with `action` and at most one person reference.
pub fn event(action: &str, person_ref: Option<String>) -> AuditEvent {
    let disclosure_id = uuid::Uuid::now_v7().to_string();
    AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        action: action.into(),
        occurred_at_unix_ms: 1_795_000_000_000,
        actor: Some(Actor {
            user_id: "beslut-bollnas".into(),
            roles: vec!["decision_maker".into()],
            organisation: BOLLNAS.into(),
            unit: "IFO".into(),
        }),
        objects: vec![ObjectRef {
            kind: "disclosure".into(),
            id: disclosure_id.clone(),
        }],
        disclosure_id,
        organisation: BOLLNAS.into(),
        legal_basis_id: "OSL-10-18c".into(),
        registry_version: "sha256:0123".into(),
        purpose: "disclosure to the police to prevent crime".into(),
        recipient: "polisen/mitt".into(),
        outcome: Outcome::Success as i32,
        person_refs: person_ref.into_iter().collect(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        ..AuditEvent::default()
    }
}

/// `count` new `disclosure.approved` events without person references.
pub fn events(count: usize) -> Vec<AuditEvent> {
    (0..count)
        .map(|_| event("disclosure.approved", None))
        .collect()
}

pub async fn latest_checkpoint(client: &mut AuditServiceClient<Channel>) -> SignedCheckpoint {
    client
        .get_checkpoint(GetCheckpointRequest { tree_size: 0 })
        .await
        .unwrap()
        .into_inner()
}

/// The hashes of the consistency proof between the trees of `first_size` and `second_size`
/// (0: the latest checkpoint's), as the service answers it.
pub async fn consistency_proof(
    client: &mut AuditServiceClient<Channel>,
    first_size: u64,
    second_size: u64,
) -> Vec<Hash> {
    let proof = client
        .get_consistency_proof(GetConsistencyProofRequest {
            first_size,
            second_size,
        })
        .await
        .unwrap()
        .into_inner();
    proof_hashes(&proof.hashes)
}

/// A proof's hashes as sent, each of which must be 32 bytes.
pub fn proof_hashes(hashes: &[Vec<u8>]) -> Vec<Hash> {
    hashes
        .iter()
        .map(|hash| hash_from_slice(hash).unwrap())
        .collect()
}

/// A client calling as a user (a token on every call).
pub type UserClient = AuditServiceClient<InterceptedService<Channel, BearerInterceptor>>;

/// Writes the export stream to an export file in memory, as the CLI does: each entry with
/// the personal data beside it.
pub async fn export_file(client: &mut UserClient, tree_size: u64) -> Vec<u8> {
    let mut stream = client
        .export(ExportRequest { tree_size })
        .await
        .unwrap()
        .into_inner();
    let Some(ExportChunk {
        part: Some(export_chunk::Part::Checkpoint(checkpoint)),
    }) = stream.message().await.unwrap()
    else {
        panic!("the export does not start with its checkpoint");
    };
    let mut writer = ExportWriter::new(
        Vec::new(),
        &ExportHeader {
            origin: checkpoint.origin.clone(),
            tree_size: checkpoint.tree_size,
            checkpoint_note: checkpoint.note.clone(),
        },
    )
    .unwrap();
    while let Some(chunk) = stream.message().await.unwrap() {
        let Some(export_chunk::Part::Entries(batch)) = chunk.part else {
            panic!("a second checkpoint in the export");
        };
        for entry in batch.entries {
            // Each entry with its personal data, as the export gives it.
            let openings: Vec<ExportOpening> = entry
                .openings
                .into_iter()
                .map(|opening| ExportOpening {
                    key: opening.key,
                    salt: opening.salt,
                    data: opening.data,
                })
                .collect();
            writer
                .write_entry_with_openings(
                    &ExportEntry {
                        index: entry.index,
                        entry: entry.entry,
                        recorded_leaf_hash: hash_from_slice(&entry.leaf_hash).unwrap(),
                    },
                    &openings,
                )
                .unwrap();
        }
    }
    writer.finish().unwrap()
}
