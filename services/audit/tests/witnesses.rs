//! The log with three witnesses on 127.0.0.1 and a 2-of-3 policy: with one witness down its
//! checkpoints are still cosigned and published; with two down they are not, and the last
//! cosigned checkpoint is served; back up, the witnesses catch up and publishing resumes.
//! On both backends (on PostgreSQL the checkpoints come through the log's lock and tail).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Deployment, events, latest_checkpoint};
use ed25519_dalek::SigningKey;
use tonic::transport::Channel;
use tryggdel_audit::RunningService;
use tryggdel_audit::witnessing::WitnessingSettings;
use tryggdel_merkle::checkpoint::Cosigner;
use tryggdel_proto::audit::v1::AppendRequest;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_test_support::{TestBackend, on_both_backends};
use tryggdel_tls::CertificateAuthority;
use tryggdel_witness::policy::Policy;
use tryggdel_witness::server::{RunningWitness, WitnessSettings};

struct Witness {
    name: String,
    key: SigningKey,
    address: SocketAddr,
    state: PathBuf,
    running: Option<RunningWitness>,
}

struct Witnesses {
    cert_pem: String,
    key_pem: String,
    ca_pem: String,
    log: tryggdel_merkle::checkpoint::CheckpointVerifier,
    all: Vec<Witness>,
    _state: tempfile::TempDir,
}

impl Witnesses {
    async fn start(log: tryggdel_merkle::checkpoint::CheckpointVerifier) -> Witnesses {
        let ca = CertificateAuthority::generate("witnesses' CA").unwrap();
        let issued = ca
            .issue_server(
                "witness",
                &["localhost".to_owned()],
                &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            )
            .unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut witnesses = Witnesses {
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
            ca_pem: ca.cert_pem().to_owned(),
            log,
            all: Vec::new(),
            _state: state,
        };
        for (i, agency) in ["polisen", "ivo", "bollnas"].iter().enumerate() {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            witnesses.all.push(Witness {
                name: format!("witness.{agency}.example"),
                key: SigningKey::from_bytes(&[i as u8 + 10; 32]),
                address: listener.local_addr().unwrap(),
                state: witnesses._state.path().join(agency),
                running: None,
            });
            witnesses.run(i, listener).await;
        }
        witnesses
    }

    async fn run(&mut self, i: usize, listener: TcpListener) {
        let witness = &self.all[i];
        let running = tryggdel_witness::server::start(
            WitnessSettings {
                name: witness.name.clone(),
                signing_key: witness.key.clone(),
                logs: vec![self.log.clone()],
                state_directory: witness.state.clone(),
                cert_chain_pem: self.cert_pem.clone(),
                key_pem: self.key_pem.clone(),
                after_persist: None,
            },
            listener,
        )
        .await
        .unwrap();
        self.all[i].running = Some(running);
    }

    async fn stop(&mut self, i: usize) {
        self.all[i]
            .running
            .take()
            .unwrap()
            .shutdown()
            .await
            .unwrap();
    }

    /// Starts witness `i` again on its address, with the state it had.
    async fn restart(&mut self, i: usize) {
        let listener = TcpListener::bind(self.all[i].address).unwrap();
        self.run(i, listener).await;
    }

    fn policy(&self) -> Policy {
        let mut text = format!("log {}\n", self.log.to_vkey_string());
        for (i, w) in self.all.iter().enumerate() {
            let vkey = Cosigner::new(w.key.clone(), w.name.clone())
                .unwrap()
                .verifier()
                .to_vkey_string();
            text.push_str(&format!("witness w{i} {vkey} https://{}/\n", w.address));
        }
        text.push_str("group agencies 2 w0 w1 w2\nquorum agencies\n");
        Policy::parse(&text).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn append(client: &mut AuditServiceClient<Channel>, count: usize) {
    client
        .append(AppendRequest {
            events: events(count),
        })
        .await
        .unwrap();
}

/// Waits (bounded) until the published checkpoint has `size` entries; returns the witnesses
/// (policy names) whose cosignatures it carries.
async fn published_at(
    client: &mut AuditServiceClient<Channel>,
    policy: &Policy,
    size: u64,
) -> Vec<String> {
    for _ in 0..200 {
        if let Ok(checkpoint) = client
            .get_checkpoint(tryggdel_proto::audit::v1::GetCheckpointRequest { tree_size: 0 })
            .await
        {
            let checkpoint = checkpoint.into_inner();
            if checkpoint.tree_size == size {
                let verified = policy
                    .verify_checkpoint(&checkpoint.note, now(), 300)
                    .unwrap();
                return verified.cosigned_by.into_keys().collect();
            }
            assert!(checkpoint.tree_size < size, "published beyond {size}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint of {size} entries was published");
}

fn signed_size(service: &RunningService) -> u64 {
    service.api.log().latest_checkpoint().tree_size
}

async fn a_two_of_three_quorum_survives_one_witness_down_and_not_two(backend: TestBackend) {
    let Some(deployment) = Deployment::create(backend).await else {
        return;
    };
    let mut witnesses = Witnesses::start(deployment.verifier()).await;
    let policy = witnesses.policy();
    let mut settings = deployment.settings();
    settings.witnessing = Some(WitnessingSettings {
        policy: policy.clone(),
        ca_pem: Some(witnesses.ca_pem.clone()),
        timeout: Duration::from_secs(2),
        retry_interval: Duration::from_millis(100),
    });
    let service = tryggdel_audit::spawn(&settings, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut client = deployment.service_client(&service, "disclosure").await;
    let witnessing = service.api.witnessing().unwrap().clone();

    // All three up: cosigned by all three.
    append(&mut client, 3).await;
    let size = signed_size(&service);
    assert!(size >= 3);
    assert_eq!(published_at(&mut client, &policy, size).await.len(), 3);

    // One down: still cosigned, by the other two.
    witnesses.stop(1).await;
    append(&mut client, 2).await;
    let size = signed_size(&service);
    assert_eq!(
        published_at(&mut client, &policy, size).await,
        vec!["w0".to_owned(), "w2".to_owned()]
    );
    assert!(witnessing.quorum_met());
    let last_cosigned = size;

    // Two down: appends are still acknowledged, the checkpoint is signed but not published;
    // the last cosigned one is served and the lag says so.
    witnesses.stop(2).await;
    append(&mut client, 4).await;
    let signed = signed_size(&service);
    assert!(signed > last_cosigned);
    for _ in 0..200 {
        if !witnessing.quorum_met() && witnessing.lag() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!witnessing.quorum_met());
    assert_eq!(witnessing.lag(), signed - last_cosigned);
    let served = latest_checkpoint(&mut client).await;
    assert_eq!(served.tree_size, last_cosigned);
    policy.verify_checkpoint(&served.note, now(), 300).unwrap();

    // Back up: the witnesses catch up from the sizes they had, and publishing resumes.
    witnesses.restart(1).await;
    witnesses.restart(2).await;
    let cosigned_by = published_at(&mut client, &policy, signed).await;
    assert!(cosigned_by.len() >= 2, "{cosigned_by:?}");
    append(&mut client, 1).await;
    let size = signed_size(&service);
    assert_eq!(published_at(&mut client, &policy, size).await.len(), 3);
    assert!(witnessing.quorum_met());
    assert_eq!(witnessing.lag(), 0);

    service.stop().await.unwrap();
    for i in 0..3 {
        witnesses.stop(i).await;
    }
}

on_both_backends!(a_two_of_three_quorum_survives_one_witness_down_and_not_two);
