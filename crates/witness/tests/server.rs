//! The witness over real HTTPS on 127.0.0.1:0: every status of C2SP tlog-witness, racing
//! submissions, a forked log refused, and a witness killed with SIGKILL between persisting
//! and answering that, restarted, never cosigns two inconsistent checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner, CosignatureVerifier, SignedNote};
use tryggdel_merkle::{MerkleTree, leaf_hash};
use tryggdel_tls::CertificateAuthority;
use tryggdel_witness::client::{WitnessClient, http_client};
use tryggdel_witness::protocol::AddCheckpoint;
use tryggdel_witness::server::{AfterPersist, RunningWitness, WitnessSettings, start};

const ORIGIN: &str = "audit.tryggdel.example/log";
const WITNESS_NAME: &str = "witness.polisen.example/tryggdel";

/// A log: its signing key and a tree whose leaves are `<prefix> <i>`.
struct Log {
    signer: CheckpointSigner,
    tree: MerkleTree,
}

impl Log {
    fn new(origin: &str, key_seed: u8, prefix: &str, size: u32) -> Self {
        Self::fork(origin, key_seed, &[(prefix, size)])
    }

    /// A tree of consecutive runs of leaves, each run with its own prefix.
    fn fork(origin: &str, key_seed: u8, runs: &[(&str, u32)]) -> Self {
        let mut tree = MerkleTree::new();
        for (prefix, size) in runs {
            for i in 0..*size {
                tree.push(leaf_hash(format!("{prefix} {i}").as_bytes()));
            }
        }
        Self {
            signer: CheckpointSigner::new(SigningKey::from_bytes(&[key_seed; 32]), origin).unwrap(),
            tree,
        }
    }

    fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint::new(self.signer.name(), size, self.tree.root_at(size).unwrap()).unwrap()
    }

    fn note(&self, size: u64) -> String {
        self.signer.sign(&self.checkpoint(size)).unwrap()
    }

    fn request(&self, old: u64, size: u64) -> String {
        AddCheckpoint {
            old_size: old,
            proof: if old == 0 {
                vec![]
            } else {
                self.tree.consistency_proof(old, size).unwrap()
            },
            note: self.note(size),
        }
        .to_text()
    }
}

fn witness_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn the_log() -> Log {
    Log::new(ORIGIN, 1, "entry", 40)
}

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let ca = CertificateAuthority::generate("witness test CA").unwrap();
    let issued = ca
        .issue_server(
            "witness",
            &["localhost".to_owned()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )
        .unwrap();
    Pki {
        ca_pem: ca.cert_pem().to_owned(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
    }
}

fn settings(pki: &Pki, state: &Path, after_persist: Option<AfterPersist>) -> WitnessSettings {
    WitnessSettings {
        name: WITNESS_NAME.to_owned(),
        signing_key: witness_key(),
        logs: vec![the_log().signer.verifier()],
        state_directory: state.to_owned(),
        cert_chain_pem: pki.cert_pem.clone(),
        key_pem: pki.key_pem.clone(),
        after_persist,
    }
}

async fn start_witness(pki: &Pki, state: &Path) -> RunningWitness {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    start(settings(pki, state, None), listener).await.unwrap()
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

async fn post(http: &reqwest::Client, port: u16, body: String) -> Answer {
    let response = http
        .post(format!("https://127.0.0.1:{port}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    Answer {
        status: response.status().as_u16(),
        content_type: response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body: response.text().await.unwrap(),
    }
}

fn verifier() -> CosignatureVerifier {
    tryggdel_merkle::checkpoint::Cosigner::new(witness_key(), WITNESS_NAME)
        .unwrap()
        .verifier()
}

fn assert_cosigned(answer: &Answer, log: &Log, size: u64) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let lines = tryggdel_merkle::checkpoint::NoteSignature::parse_lines(&answer.body).unwrap();
    assert_eq!(lines.len(), 1);
    let time = verifier()
        .verify(&log.checkpoint(size).body_text(), &lines[0])
        .unwrap();
    assert!(time > 1_700_000_000, "a real, non-zero time");
}

#[tokio::test]
async fn every_status_of_the_protocol() {
    let pki = pki();
    let state = tempfile::tempdir().unwrap();
    let witness = start_witness(&pki, state.path()).await;
    let port = witness.local_addr().port();
    let http = http_client(Some(&pki.ca_pem), Duration::from_secs(10)).unwrap();
    let log = the_log();

    // 400: not a request; an old size above the checkpoint's; a proof from size 0.
    for body in [
        "garbage".to_owned(),
        log.request(0, 5).replacen("old 0", "old 6", 1),
        format!("old 0\n{}\n\n{}", "A".repeat(43) + "=", log.note(5)),
        format!("old 0\n\n{}", log.note(5).replacen("\n5\n", "\n05\n", 1)),
    ] {
        let answer = post(&http, port, body.clone()).await;
        assert_eq!(answer.status, 400, "{body:?}: {}", answer.body);
    }
    // 404: a log it does not witness.
    let stranger = Log::new("other.example/log", 1, "entry", 5);
    assert_eq!(post(&http, port, stranger.request(0, 5)).await.status, 404);
    // 403: the right origin signed by another key.
    let impostor = Log::new(ORIGIN, 2, "entry", 5);
    assert_eq!(post(&http, port, impostor.request(0, 5)).await.status, 403);

    // 200: the first checkpoint, from size 0.
    assert_cosigned(&post(&http, port, log.request(0, 5)).await, &log, 5);
    // 409 with the size it cosigned.
    let conflict = post(&http, port, log.request(0, 8)).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.content_type, "text/x.tlog.size");
    assert_eq!(conflict.body, "5\n");
    let conflict = post(&http, port, log.request(3, 8)).await;
    assert_eq!((conflict.status, conflict.body.as_str()), (409, "5\n"));
    // 422: a proof that does not prove consistency.
    let mut bad = AddCheckpoint::parse(&log.request(5, 8)).unwrap();
    bad.proof[0][0] ^= 1;
    assert_eq!(post(&http, port, bad.to_text()).await.status, 422);
    let mut short = AddCheckpoint::parse(&log.request(5, 8)).unwrap();
    short.proof.pop();
    assert_eq!(post(&http, port, short.to_text()).await.status, 422);
    // 200 again with the right proof, and for the same checkpoint once more.
    assert_cosigned(&post(&http, port, log.request(5, 8)).await, &log, 8);
    assert_cosigned(&post(&http, port, log.request(8, 8)).await, &log, 8);

    // Monitors read the latest cosigned checkpoint.
    let latest = http
        .get(format!("https://127.0.0.1:{port}/checkpoint/{ORIGIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(latest.status(), 200);
    let note = SignedNote::parse(&latest.text().await.unwrap()).unwrap();
    assert_eq!(
        log.signer.verifier().verify_note(&note).unwrap(),
        log.checkpoint(8)
    );
    let cosignature = note
        .signatures()
        .iter()
        .find(|s| verifier().is_signer_of(s))
        .unwrap();
    verifier().verify(note.body(), cosignature).unwrap();
    let unknown = http
        .get(format!(
            "https://127.0.0.1:{port}/checkpoint/other.example/log"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // The log's own client recovers from a 409 by resending from the witness's size.
    let client = WitnessClient::new(
        "police",
        &format!("https://127.0.0.1:{port}/"),
        verifier(),
        http.clone(),
    );
    assert_eq!(client.known_size(), None);
    let proofs = |a: u64, b: u64| Ok(log.tree.consistency_proof(a, b)?);
    let cosignature = client
        .cosign(&log.note(20), &log.checkpoint(20), &proofs)
        .await
        .unwrap();
    verifier()
        .verify(&log.checkpoint(20).body_text(), &cosignature)
        .unwrap();
    assert_eq!(client.known_size(), Some(20));
    witness.shutdown().await.unwrap();
}

#[tokio::test]
async fn of_racing_submissions_exactly_one_wins() {
    let pki = pki();
    let state = tempfile::tempdir().unwrap();
    let witness = start_witness(&pki, state.path()).await;
    let port = witness.local_addr().port();
    let http = http_client(Some(&pki.ca_pem), Duration::from_secs(10)).unwrap();
    let log = the_log();
    assert_cosigned(&post(&http, port, log.request(0, 2)).await, &log, 2);
    let mut size = 2;
    for round in 0..10u64 {
        // Eight submissions from the same old size: consistent ones of different sizes,
        // and a fork of the same size as one of them.
        let fork = Log::fork(ORIGIN, 1, &[("entry", size as u32), ("fork", 10)]);
        let mut bodies: Vec<String> = (1..=6).map(|k| log.request(size, size + k)).collect();
        bodies.push(fork.request(size, size + 3));
        bodies.push(fork.request(size, size + 4));
        let answers = futures_join(&http, port, bodies).await;
        let winners: Vec<usize> = (0..answers.len())
            .filter(|&i| answers[i].status == 200)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {:?}", statuses(&answers));
        let winner = winners[0];
        for (i, answer) in answers.iter().enumerate() {
            if i != winner {
                assert_eq!(answer.status, 409, "round {round}");
            }
        }
        let won_size = if winner < 6 {
            size + winner as u64 + 1
        } else {
            size + winner as u64 - 3
        };
        for answer in &answers {
            if answer.status == 409 {
                assert_eq!(answer.body, format!("{won_size}\n"));
            }
        }
        if winner >= 6 {
            // A fork won this round: the genuine log is now refused for good.
            assert_eq!(
                post(&http, port, log.request(won_size, won_size + 1))
                    .await
                    .status,
                422
            );
            break;
        }
        size = won_size;
    }
    witness.shutdown().await.unwrap();
}

async fn futures_join(http: &reqwest::Client, port: u16, bodies: Vec<String>) -> Vec<Answer> {
    let barrier = Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let http = http.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                post(&http, port, body).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

fn statuses(answers: &[Answer]) -> Vec<u16> {
    answers.iter().map(|a| a.status).collect()
}

/// Everything logged while it lives, as text.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_forked_log_is_refused() {
    // The witness runs on this test's thread (current-thread runtime): its log lines land here.
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let pki = pki();
    let state = tempfile::tempdir().unwrap();
    let witness = start_witness(&pki, state.path()).await;
    let port = witness.local_addr().port();
    let http = http_client(Some(&pki.ca_pem), Duration::from_secs(10)).unwrap();
    let log = the_log();
    assert_cosigned(&post(&http, port, log.request(0, 8)).await, &log, 8);
    // The operator rewrites history after entry 5 and signs a second tree.
    let fork = Log::fork(ORIGIN, 1, &[("entry", 5), ("rewritten", 20)]);
    assert_ne!(fork.tree.root_at(8).unwrap(), log.tree.root_at(8).unwrap());
    // The same size with another root, a larger size with the fork's own proof.
    assert_eq!(post(&http, port, fork.request(8, 8)).await.status, 422);
    assert_eq!(post(&http, port, fork.request(8, 12)).await.status, 422);
    // Each refusal is logged at WARN with the evidence: both roots and the log-signed note.
    let logged = logs.text();
    let refusals: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("inconsistent with the one cosigned before"))
        .collect();
    assert_eq!(refusals.len(), 2, "{logged}");
    let cosigned_root =
        base64::engine::general_purpose::STANDARD.encode(log.tree.root_at(8).unwrap());
    let forked_root =
        base64::engine::general_purpose::STANDARD.encode(fork.tree.root_at(12).unwrap());
    assert!(refusals[1].contains(&cosigned_root), "{}", refusals[1]);
    assert!(refusals[1].contains(&forked_root), "{}", refusals[1]);
    assert!(refusals[1].contains("size=12"), "{}", refusals[1]);
    // Rewinding to a size the witness has passed is a conflict, never a cosignature.
    let answer = post(&http, port, fork.request(0, 6)).await;
    assert_eq!((answer.status, answer.body.as_str()), (409, "8\n"));
    // The genuine log goes on.
    assert_cosigned(&post(&http, port, log.request(8, 12)).await, &log, 12);
    witness.shutdown().await.unwrap();
}

// ---- A witness killed with SIGKILL between persisting its state and answering. ----

const CHILD_STATE: &str = "TRYGGDEL_WITNESS_TEST_CHILD_STATE";
const CHILD_DIR: &str = "TRYGGDEL_WITNESS_TEST_CHILD_DIR";
const CHILD_PAUSE_AT: &str = "TRYGGDEL_WITNESS_TEST_CHILD_PAUSE_AT";

/// Not a test of its own: the body of the child process the SIGKILL test starts (this test
/// binary, run again with the `CHILD_*` variables). Without them it returns at once.
#[test]
fn witness_child_process() {
    let (Ok(state), Ok(dir)) = (std::env::var(CHILD_STATE), std::env::var(CHILD_DIR)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let pause_at: Option<u64> = std::env::var(CHILD_PAUSE_AT)
        .ok()
        .map(|s| s.parse().unwrap());
    let paused_marker = dir.join("paused");
    let hook: AfterPersist = Arc::new(move |_origin, size| {
        if Some(size) == pause_at {
            std::fs::write(&paused_marker, size.to_string()).unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
    });
    let pki = Pki {
        ca_pem: String::new(),
        cert_pem: std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
        key_pem: std::fs::read_to_string(dir.join("key.pem")).unwrap(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let witness = start(settings(&pki, Path::new(&state), Some(hook)), listener)
            .await
            .unwrap();
        let port_file = dir.join("port");
        std::fs::write(
            dir.join("port.tmp"),
            witness.local_addr().port().to_string(),
        )
        .unwrap();
        std::fs::rename(dir.join("port.tmp"), &port_file).unwrap();
        witness.wait().await.unwrap();
    });
}

struct Child {
    process: std::process::Child,
    port: u16,
}

async fn spawn_child(dir: &Path, state: &Path, pause_at: Option<u64>) -> Child {
    let _ = std::fs::remove_file(dir.join("port"));
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "witness_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_STATE, state)
        .env(CHILD_DIR, dir)
        .stdout(std::process::Stdio::null());
    if let Some(size) = pause_at {
        command.env(CHILD_PAUSE_AT, size.to_string());
    }
    let process = command.spawn().unwrap();
    let port = wait_for(|| std::fs::read_to_string(dir.join("port")).ok()).await;
    Child {
        process,
        port: port.parse().unwrap(),
    }
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(value) = probe() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting");
}

#[tokio::test]
async fn killed_between_persisting_and_answering_it_never_cosigns_a_fork() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::write(dir.path().join("cert.pem"), &pki.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &pki.key_pem).unwrap();
    let http = http_client(Some(&pki.ca_pem), Duration::from_secs(30)).unwrap();
    let log = the_log();
    let fork = Log::fork(ORIGIN, 1, &[("entry", 10), ("rewritten", 30)]);

    // The witness cosigns size 10, then persists size 20 and is killed before answering.
    let mut child = spawn_child(dir.path(), &state, Some(20)).await;
    assert_cosigned(&post(&http, child.port, log.request(0, 10)).await, &log, 10);
    let pending = {
        let http = http.clone();
        let body = log.request(10, 20);
        let port = child.port;
        tokio::spawn(async move {
            http.post(format!("https://127.0.0.1:{port}/add-checkpoint"))
                .body(body)
                .send()
                .await
        })
    };
    let paused = wait_for(|| std::fs::read_to_string(dir.path().join("paused")).ok()).await;
    assert_eq!(paused, "20");
    child.process.kill().unwrap(); // SIGKILL
    child.process.wait().unwrap();
    assert!(pending.await.unwrap().is_err(), "the log got no answer");

    // Restarted, it remembers size 20 although it never answered for it.
    let mut child = spawn_child(dir.path(), &state, None).await;
    let port = child.port;
    // The log, not knowing, retries from 10: a conflict naming 20.
    let answer = post(&http, port, log.request(10, 20)).await;
    assert_eq!((answer.status, answer.body.as_str()), (409, "20\n"));
    // A fork from size 10 is refused whichever old size it claims.
    let answer = post(&http, port, fork.request(10, 20)).await;
    assert_eq!((answer.status, answer.body.as_str()), (409, "20\n"));
    assert_eq!(post(&http, port, fork.request(20, 20)).await.status, 422);
    assert_eq!(post(&http, port, fork.request(20, 25)).await.status, 422);
    // The genuine log continues from 20.
    assert_cosigned(&post(&http, port, log.request(20, 20)).await, &log, 20);
    assert_cosigned(&post(&http, port, log.request(20, 30)).await, &log, 30);
    child.process.kill().unwrap();
    child.process.wait().unwrap();
}

#[tokio::test]
async fn an_empty_tree_then_its_growth_are_cosigned() {
    let pki = pki();
    let state = tempfile::tempdir().unwrap();
    let witness = start_witness(&pki, state.path()).await;
    let port = witness.local_addr().port();
    let http = http_client(Some(&pki.ca_pem), Duration::from_secs(10)).unwrap();
    let log = the_log();
    assert_cosigned(&post(&http, port, log.request(0, 0)).await, &log, 0);
    assert_cosigned(&post(&http, port, log.request(0, 6)).await, &log, 6);
    assert_eq!(post(&http, port, log.request(0, 7)).await.status, 409);
    witness.shutdown().await.unwrap();
}
