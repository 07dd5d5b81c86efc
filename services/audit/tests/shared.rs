//! Several audit instances on one PostgreSQL database: their sequencers take turns under the
//! log's advisory lock, so the log stays one (indices contiguous, each event once, every
//! checkpoint an extension of the previous), any instance proves what any other committed,
//! and an instance that dies mid-load hands over at once with nothing lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{Deployment, consistency_proof, events, latest_checkpoint, proof_hashes};
use tonic::transport::Channel;
use tryggdel_audit::RunningService;
use tryggdel_merkle::checkpoint::CheckpointVerifier;
use tryggdel_merkle::{MerkleTree, hash_from_slice, verify_consistency, verify_inclusion};
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::*;
use tryggdel_test_support::TestBackend;

/// Instances of the service on one PostgreSQL deployment.
struct Cluster {
    deployment: Deployment,
}

impl Cluster {
    async fn create() -> Option<Cluster> {
        let deployment = Deployment::create(TestBackend::Postgres).await?;
        Some(Cluster { deployment })
    }

    async fn instance(&self) -> RunningService {
        self.deployment.spawn().await
    }

    /// An instance on a runtime of its own, so that it can be killed: every task dropped where
    /// it waits, every socket (its database connections too) closed, as when a process dies.
    async fn killable_instance(&self) -> Killable {
        let settings = self.deployment.settings();
        tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let service = runtime
                .block_on(tryggdel_audit::spawn(
                    &settings,
                    "127.0.0.1:0".parse().unwrap(),
                ))
                .unwrap();
            Killable { runtime, service }
        })
        .await
        .unwrap()
    }

    async fn client(&self, service: &RunningService) -> AuditServiceClient<Channel> {
        self.deployment.service_client(service, "disclosure").await
    }

    fn verifier(&self) -> CheckpointVerifier {
        self.deployment.verifier()
    }

    /// Every stored entry's (index, event id, leaf hash) and every checkpoint's (size, note),
    /// straight from the database.
    async fn stored(&self) -> (Vec<(i64, String, Vec<u8>)>, Vec<(i64, String)>) {
        let pool = sqlx::PgPool::connect(&self.deployment.database.url)
            .await
            .unwrap();
        let entries =
            sqlx::query_as("SELECT idx, event_id, leaf_hash FROM audit.audit_entries ORDER BY idx")
                .fetch_all(&pool)
                .await
                .unwrap();
        let checkpoints = sqlx::query_as(
            "SELECT tree_size, note FROM audit.audit_checkpoints ORDER BY tree_size",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        (entries, checkpoints)
    }

    /// The log as stored is one log: indices 0..n, each event once, every checkpoint signed
    /// by the log's key over a prefix of the stored leaves (so each extends the previous).
    async fn check_stored_log(&self, expected_events: &BTreeSet<String>) -> MerkleTree {
        let (entries, checkpoints) = self.stored().await;
        let mut tree = MerkleTree::new();
        let mut seen = BTreeSet::new();
        for (position, (index, event_id, leaf)) in entries.iter().enumerate() {
            assert_eq!(*index, position as i64, "the log has a gap");
            assert!(seen.insert(event_id.clone()), "{event_id} logged twice");
            tree.push(hash_from_slice(leaf).unwrap());
        }
        assert_eq!(&seen, expected_events);
        let verifier = self.verifier();
        let mut previous = 0;
        for (size, note) in &checkpoints {
            let checkpoint = verifier.verify(note).unwrap();
            assert_eq!(checkpoint.size(), *size as u64);
            assert!(checkpoint.size() >= previous);
            assert_eq!(
                checkpoint.root(),
                &tree.root_at(checkpoint.size()).unwrap(),
                "the checkpoint at size {size} is not over the stored leaves"
            );
            previous = checkpoint.size();
        }
        assert_eq!(previous, tree.len(), "the last batch has no checkpoint");
        tree
    }
}

struct Killable {
    runtime: tokio::runtime::Runtime,
    service: RunningService,
}

impl Killable {
    async fn kill(self) {
        tokio::task::spawn_blocking(move || {
            let Killable { runtime, service } = self;
            runtime.shutdown_background();
            drop(service);
        })
        .await
        .unwrap();
    }
}

/// `event id → index` of every answer, refusing an event answered with two indices.
fn record(answers: &mut BTreeMap<String, u64>, entries: &[AppendedEntry]) {
    for entry in entries {
        let previous = answers.insert(entry.event_id.clone(), entry.index);
        assert!(
            previous.is_none() || previous == Some(entry.index),
            "{} answered with indices {previous:?} and {}",
            entry.event_id,
            entry.index
        );
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_keep_one_log() {
        let Some(cluster) = Cluster::create().await else {
            return;
        };
        let first = cluster.instance().await;
        let second = cluster.instance().await;
        let mut tasks = Vec::new();
        for task in 0..8 {
            let mut own = cluster
                .client(if task % 2 == 0 { &first } else { &second })
                .await;
            let mut other = cluster
                .client(if task % 2 == 0 { &second } else { &first })
                .await;
            tasks.push(tokio::spawn(async move {
                let mut answers = BTreeMap::new();
                for round in 0..10 {
                    let batch = events(1 + round % 3);
                    // The same events through both instances at once: logged once.
                    let (left, right) = tokio::join!(
                        own.append(AppendRequest {
                            events: batch.clone()
                        }),
                        other.append(AppendRequest {
                            events: batch.clone()
                        }),
                    );
                    let (left, right) = (left.unwrap().into_inner(), right.unwrap().into_inner());
                    for (a, b) in left.entries.iter().zip(&right.entries) {
                        assert_eq!(a.index, b.index);
                        assert_eq!(a.leaf_hash, b.leaf_hash);
                        assert!(a.duplicate != b.duplicate, "{a:?} {b:?}");
                    }
                    record(&mut answers, &left.entries);
                    record(&mut answers, &right.entries);
                    let single = own
                        .append(AppendRequest { events: events(2) })
                        .await
                        .unwrap()
                        .into_inner();
                    record(&mut answers, &single.entries);
                }
                answers
            }));
        }
        let mut answers = BTreeMap::new();
        for task in tasks {
            for (event_id, index) in task.await.unwrap() {
                assert!(answers.insert(event_id, index).is_none());
            }
        }
        let indices: BTreeSet<u64> = answers.values().copied().collect();
        assert_eq!(indices, (0..answers.len() as u64).collect());
        let tree = cluster
            .check_stored_log(&answers.keys().cloned().collect())
            .await;

        // Each instance proves against the other's checkpoints, asked for more than it has
        // read yet or not.
        let mut a = cluster.client(&first).await;
        let mut b = cluster.client(&second).await;
        a.append(AppendRequest { events: events(3) }).await.unwrap();
        let verifier = cluster.verifier();
        for (mut signer, mut prover) in [(a.clone(), b.clone()), (b.clone(), a.clone())] {
            let note = latest_checkpoint(&mut signer).await.note;
            let checkpoint = verifier.verify(&note).unwrap();
            let size = checkpoint.size();
            for index in [0, size / 2, size - 1] {
                let proof = prover
                    .get_inclusion_proof(GetInclusionProofRequest {
                        tree_size: size,
                        entry: Some(get_inclusion_proof_request::Entry::Index(index)),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let hashes = proof_hashes(&proof.hashes);
                verify_inclusion(
                    &hash_from_slice(&proof.leaf_hash).unwrap(),
                    index,
                    size,
                    &hashes,
                    checkpoint.root(),
                )
                .unwrap();
            }
            let first_size = tree.len() / 3;
            let hashes = consistency_proof(&mut prover, first_size, size).await;
            verify_consistency(
                first_size,
                size,
                &tree.root_at(first_size).unwrap(),
                checkpoint.root(),
                &hashes,
            )
            .unwrap();
        }
        // Unasked, the tail brings each instance up to the other's checkpoint.
        let latest = latest_checkpoint(&mut a).await;
        tokio::time::sleep(tryggdel_audit::log::TAIL_INTERVAL * 3).await;
        assert_eq!(latest_checkpoint(&mut b).await.note, latest.note);

        first.stop().await.unwrap();
        second.stop().await.unwrap();
        cluster.deployment.database.remove().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_killed_mid_load_hands_over_with_nothing_lost() {
        let Some(cluster) = Cluster::create().await else {
            return;
        };
        let doomed = cluster.killable_instance().await;
        let survivor = cluster.instance().await;
        let doomed_address = doomed.service.local_addr;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for task in 0..6 {
            let stop = stop.clone();
            // Half the appenders start on the instance that will die; each retries a failed
            // call on the other instance, as a relay does.
            let mut primary = if task % 2 == 0 {
                AuditServiceClient::new(
                    cluster
                        .deployment
                        .identity
                        .service_channel(doomed_address, "disclosure")
                        .await,
                )
            } else {
                cluster.client(&survivor).await
            };
            let mut fallback = cluster.client(&survivor).await;
            tasks.push(tokio::spawn(async move {
                let mut sent = BTreeSet::new();
                let mut answers = BTreeMap::new();
                let mut failures = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let batch = events(3);
                    sent.extend(batch.iter().map(|event| event.event_id.clone()));
                    let request = AppendRequest {
                        events: batch.clone(),
                    };
                    match primary.append(request.clone()).await {
                        Ok(answer) => record(&mut answers, &answer.into_inner().entries),
                        Err(_) => {
                            failures += 1;
                            let answer = fallback.append(request).await.unwrap().into_inner();
                            record(&mut answers, &answer.entries);
                        }
                    }
                }
                (sent, answers, failures)
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed_at = std::time::Instant::now();
        doomed.kill().await;
        let mut client = cluster.client(&survivor).await;
        // The survivor takes appends at once (its sequencer gets the lock as the dead
        // instance's connections close).
        client
            .append(AppendRequest { events: events(1) })
            .await
            .unwrap();
        let handover = killed_at.elapsed();
        assert!(handover < Duration::from_secs(5), "{handover:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);

        let mut sent = BTreeSet::new();
        let mut answers = BTreeMap::new();
        let mut failures = 0;
        for task in tasks {
            let (task_sent, task_answers, task_failures) = task.await.unwrap();
            sent.extend(task_sent);
            failures += task_failures;
            for (event_id, index) in task_answers {
                assert!(answers.insert(event_id, index).is_none());
            }
        }
        assert!(failures > 0, "the kill came after the load");
        // Every event acknowledged by either instance is in the log, at the index it was
        // acknowledged with, and the log holds nothing else but the one sent after the kill.
        let (stored, _) = cluster.stored().await;
        let stored_index: BTreeMap<String, u64> = stored
            .iter()
            .map(|(index, event_id, _)| (event_id.clone(), *index as u64))
            .collect();
        for (event_id, index) in &answers {
            assert_eq!(stored_index.get(event_id), Some(index), "{event_id} lost");
        }
        assert_eq!(answers.len(), sent.len());
        assert_eq!(stored_index.len(), sent.len() + 1);
        let expected: BTreeSet<String> = stored_index.keys().cloned().collect();
        assert!(sent.is_subset(&expected));
        cluster.check_stored_log(&expected).await;

        // A new instance opens the log the dead one helped write.
        let again = cluster.instance().await;
        let mut client = cluster.client(&again).await;
        let checkpoint = cluster
            .verifier()
            .verify(&latest_checkpoint(&mut client).await.note)
            .unwrap();
        assert_eq!(checkpoint.size(), stored_index.len() as u64);
        again.stop().await.unwrap();
        survivor.stop().await.unwrap();
        cluster.deployment.database.remove().await;
    }
}
