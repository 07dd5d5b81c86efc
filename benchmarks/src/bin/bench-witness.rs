//! `bench-witness`: witnessing measured on this machine, in one run:
//!
//! 1. one witness's `add-checkpoint` throughput: a real `tryggdel witness` server (HTTPS, TLS
//!    1.3, its state written with write-fsync-rename-fsync before every answer) witnessing
//!    several logs, each log's client submitting its next checkpoint (one more entry, with
//!    the consistency proof) as soon as the previous one is cosigned, over kept-alive
//!    connections; requests per second and their latency;
//! 2. what cosigning adds to a checkpoint's publication with three local witnesses: per
//!    checkpoint, the time from the log's signed note to a note carrying cosignatures that
//!    meet a 2-of-3 policy — the audit service's round (`Witnessing::cosign`): all three
//!    submitted in parallel, each cosignature verified, the quorum checked;
//! 3. the same through the audit service itself (SQLite, a checkpoint after every batch):
//!    one entry appended at a time, the time from the checkpoint covering it being signed to
//!    the service publishing it cosigned.
//!
//! Client and witnesses share the machine's cores. The last line is
//! `RESULT bench=witness key=value …`.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use ed25519_dalek::SigningKey;
use tryggdel_bench::stats::{ms_table_header, ms_table_row};
use tryggdel_bench::{CpuTimes, Machine, Samples};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner, Cosigner, SignedNote};
use tryggdel_merkle::{MerkleTree, leaf_hash};
use tryggdel_tls::CertificateAuthority;
use tryggdel_witness::client::{WitnessClient, http_client};
use tryggdel_witness::policy::Policy;
use tryggdel_witness::server::{RunningWitness, WitnessSettings};

#[derive(Parser, Debug)]
#[command(about = "Benchmarks witnessing: add-checkpoint throughput and the cost of cosigning")]
struct Args {
    /// A few seconds in all (the smoke test runs this).
    #[arg(long)]
    smoke: bool,
    /// Logs submitting to the one witness at once in part 1.
    #[arg(long, default_value_t = 16)]
    logs: usize,
    /// Seconds of part 1.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Checkpoints published through three witnesses in part 2.
    #[arg(long, default_value_t = 1000)]
    checkpoints: u64,
}

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> anyhow::Result<Pki> {
    let ca = CertificateAuthority::generate("bench witnesses' CA")?;
    let issued = ca.issue_server(
        "witness",
        &["localhost".to_owned()],
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
    )?;
    Ok(Pki {
        ca_pem: ca.cert_pem().to_owned(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
    })
}

fn log_signer(i: usize) -> anyhow::Result<CheckpointSigner> {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Ok(CheckpointSigner::new(
        SigningKey::from_bytes(&seed),
        format!("bench.tryggdel.example/log-{i}"),
    )?)
}

async fn start_witness(
    pki: &Pki,
    name: &str,
    seed: u8,
    logs: Vec<tryggdel_merkle::checkpoint::CheckpointVerifier>,
    state: &std::path::Path,
) -> anyhow::Result<RunningWitness> {
    tryggdel_witness::server::start(
        WitnessSettings {
            name: name.to_owned(),
            signing_key: SigningKey::from_bytes(&[seed; 32]),
            logs,
            state_directory: state.to_owned(),
            cert_chain_pem: pki.cert_pem.clone(),
            key_pem: pki.key_pem.clone(),
            after_persist: None,
        },
        TcpListener::bind("127.0.0.1:0").context("binding a witness")?,
    )
    .await
}

/// One log's tree and its signer.
struct BenchLog {
    signer: CheckpointSigner,
    tree: MerkleTree,
}

impl BenchLog {
    fn new(i: usize, size: u64) -> anyhow::Result<BenchLog> {
        Ok(BenchLog {
            signer: log_signer(i)?,
            tree: MerkleTree::from_leaf_hashes(
                (0..size).map(|n| {
                    leaf_hash(&[&(i as u64).to_be_bytes()[..], &n.to_be_bytes()].concat())
                }),
            ),
        })
    }

    fn signed(&self, size: u64) -> anyhow::Result<(Checkpoint, String)> {
        let checkpoint = Checkpoint::new(self.signer.name(), size, self.tree.root_at(size)?)?;
        let note = self.signer.sign(&checkpoint)?;
        Ok((checkpoint, note))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (logs, seconds, checkpoints) = if args.smoke {
        (2, 2, 50)
    } else {
        (args.logs, args.seconds, args.checkpoints)
    };
    tryggdel_bench::init_telemetry();
    tryggdel_tls::install_crypto_provider();
    let machine = Machine::detect();
    println!("machine: {}", machine.describe());
    let pki = pki()?;
    let http = http_client(Some(&pki.ca_pem), Duration::from_secs(10))?;

    // ---- 1. one witness, many logs ---------------------------------------------------------
    let state = tempfile::tempdir()?;
    // Enough entries that no log runs out: one per request.
    let per_log = 40_000u64.min(seconds * 20_000 / logs as u64 + 10);
    let bench_logs: Vec<Arc<BenchLog>> = (0..logs)
        .map(|i| BenchLog::new(i, per_log).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;
    let witness = start_witness(
        &pki,
        "witness.bench.example",
        1,
        bench_logs.iter().map(|l| l.signer.verifier()).collect(),
        state.path(),
    )
    .await?;
    let url = format!("https://{}/", witness.local_addr());
    println!(
        "part 1: one witness, {logs} logs submitting for {seconds} s (state on {}, fsync'd per answer)",
        state.path().display()
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for log in &bench_logs {
        let log = log.clone();
        let client = WitnessClient::new("bench", &url, witness.verifier().clone(), http.clone());
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::new();
            let mut size = 1;
            while Instant::now() < deadline && size < log.tree.len() {
                let (checkpoint, note) = log.signed(size)?;
                let proofs = |a: u64, b: u64| Ok(log.tree.consistency_proof(a, b)?);
                let begun = Instant::now();
                client.cosign(&note, &checkpoint, &proofs).await?;
                samples.record(begun.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
                size += 1;
            }
            anyhow::Ok(samples)
        }));
    }
    let mut latency = Samples::new();
    for task in tasks {
        latency.extend(&task.await.context("a submitting task")??);
    }
    let elapsed = started.elapsed();
    let cpu = CpuTimes::now().since(&cpu_before);
    let requests = done.load(Ordering::Relaxed);
    let rate = requests as f64 / elapsed.as_secs_f64();
    println!(
        "add-checkpoint: {requests} cosigned in {:.2} s = {rate:.0} requests/s (target ≥ 2000)",
        elapsed.as_secs_f64()
    );
    println!("cpu: {}", cpu.describe(machine.cores));
    println!("{}", ms_table_header("latency"));
    println!("{}", ms_table_row("add-checkpoint", &mut latency));
    witness.shutdown().await?;

    // ---- 2. three witnesses, 2-of-3, the cost of cosigning one checkpoint -------------------
    let states = tempfile::tempdir()?;
    let log = BenchLog::new(1000, checkpoints * 3 + 10)?;
    let mut witnesses = Vec::new();
    let mut policy_text = format!("log {}\n", log.signer.verifier().to_vkey_string());
    for i in 0..3u8 {
        let name = format!("witness-{i}.bench.example");
        let running = start_witness(
            &pki,
            &name,
            10 + i,
            vec![log.signer.verifier()],
            &states.path().join(format!("w{i}")),
        )
        .await?;
        let vkey = Cosigner::new(SigningKey::from_bytes(&[10 + i; 32]), name.clone())?
            .verifier()
            .to_vkey_string();
        policy_text.push_str(&format!(
            "witness w{i} {vkey} https://{}/\n",
            running.local_addr()
        ));
        witnesses.push(running);
    }
    policy_text.push_str("group agencies 2 w0 w1 w2\nquorum agencies\n");
    let policy = Policy::parse(&policy_text)?;
    let clients: Vec<WitnessClient> = policy
        .witnesses()
        .iter()
        .map(|w| {
            WitnessClient::new(
                w.name(),
                w.url().unwrap_or_default(),
                w.verifier().clone(),
                http.clone(),
            )
        })
        .collect();
    println!("part 2: {checkpoints} checkpoints cosigned by three local witnesses (2-of-3)");
    let mut publication = Samples::new();
    let proofs = |a: u64, b: u64| Ok(log.tree.consistency_proof(a, b)?);
    for round in 1..=checkpoints {
        // Each checkpoint a few entries beyond the previous one, as at a steady cadence.
        let size = round * 3;
        let (checkpoint, note_text) = log.signed(size)?;
        let begun = Instant::now();
        let answers = futures::future::join_all(
            clients
                .iter()
                .map(|c| c.cosign(&note_text, &checkpoint, &proofs)),
        )
        .await;
        let mut note = SignedNote::parse(&note_text)?;
        let mut cosigned_by = Vec::new();
        for (client, answer) in clients.iter().zip(answers) {
            note.add_signature(answer?)?;
            cosigned_by.push(client.name());
        }
        anyhow::ensure!(
            policy.is_met_by(cosigned_by.iter().copied()),
            "quorum not met"
        );
        let published = note.to_text();
        publication.record(begun.elapsed());
        anyhow::ensure!(published.len() > note_text.len());
    }
    println!("{}", ms_table_header("added to publication"));
    println!("{}", ms_table_row("cosign (3 witnesses)", &mut publication));
    let p99 = publication.percentile(99.0).unwrap_or_default();
    println!(
        "cosigning adds {:.2} ms p99 to a checkpoint's publication (target < 50 ms)",
        p99.as_secs_f64() * 1000.0
    );
    for witness in witnesses {
        witness.shutdown().await?;
    }
    let publication_p50 = publication.percentile(50.0).unwrap_or_default();

    // ---- 3. through the audit service ------------------------------------------------------
    let service_p99 = through_the_service(&pki, checkpoints.min(300)).await?;

    println!(
        "RESULT bench=witness add_checkpoint_per_s={rate:.0} add_checkpoint_p99_ms={:.3} cosign_p50_ms={:.3} cosign_p99_ms={:.3} service_added_p99_ms={:.3}",
        latency.percentile(99.0).unwrap_or_default().as_secs_f64() * 1000.0,
        publication_p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        service_p99.as_secs_f64() * 1000.0
    );
    Ok(())
}

/// Part 3: the audit service with three witnesses (2-of-3); per appended entry, the time from
/// its checkpoint being signed to that checkpoint being published. Returns the p99.
async fn through_the_service(pki: &Pki, entries: u64) -> anyhow::Result<Duration> {
    let data_dir = tempfile::tempdir()?;
    let data = tryggdel_system::DataDirectory::new(data_dir.path());
    let mut settings =
        tryggdel_bench::system::audit_settings(&data, data.sqlite_url("audit"), Duration::ZERO)?;
    let log_key =
        CheckpointSigner::new(settings.signing_key.clone(), settings.origin.clone())?.verifier();
    let states = tempfile::tempdir()?;
    let mut witnesses = Vec::new();
    let mut policy_text = format!("log {}\n", log_key.to_vkey_string());
    for i in 0..3u8 {
        let name = format!("witness-{i}.bench.example");
        let running = start_witness(
            pki,
            &name,
            20 + i,
            vec![log_key.clone()],
            &states.path().join(format!("w{i}")),
        )
        .await?;
        policy_text.push_str(&format!(
            "witness w{i} {} https://{}/\n",
            running.verifier().to_vkey_string(),
            running.local_addr()
        ));
        witnesses.push(running);
    }
    policy_text.push_str("group agencies 2 w0 w1 w2\nquorum agencies\n");
    settings.witnessing = Some(tryggdel_audit::witnessing::WitnessingSettings {
        policy: Policy::parse(&policy_text)?,
        ca_pem: Some(pki.ca_pem.clone()),
        timeout: Duration::from_secs(5),
        retry_interval: Duration::from_millis(50),
    });
    let service = tryggdel_audit::spawn(&settings, "127.0.0.1:0".parse()?).await?;
    let log = service.api.log().clone();
    let witnessing = service
        .api
        .witnessing()
        .context("the service has no witnessing")?
        .clone();
    let mut signed = log.watch_checkpoints();
    println!(
        "part 3: {entries} entries appended one at a time to the audit service (SQLite), three witnesses (2-of-3)"
    );
    let mut added = Samples::new();
    for _ in 0..entries {
        let body = tryggdel_audit::entry::body_from_event(
            "events[0]",
            &tryggdel_bench::audit::relay_event(),
            "disclosure",
        )
        .map_err(|e| anyhow::anyhow!("an event: {e}"))?;
        let appended = log
            .append(vec![body])
            .await
            .map_err(|e| anyhow::anyhow!("append: {e}"))?;
        let size = appended.first().map_or(0, |a| a.index) + 1;
        // The checkpoint covering the entry is signed with the entry's batch.
        let signed_at = loop {
            if *signed.borrow_and_update() >= size {
                break Instant::now();
            }
            signed.changed().await?;
        };
        let deadline = signed_at + Duration::from_secs(10);
        loop {
            if witnessing.published().is_some_and(|p| p.tree_size >= size) {
                added.record(signed_at.elapsed());
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "entry {size} was not published within 10 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    println!("{}", ms_table_header("signed to published"));
    println!("{}", ms_table_row("audit service, 3 witnesses", &mut added));
    let p99 = added.percentile(99.0).unwrap_or_default();
    println!(
        "through the service cosigning adds {:.2} ms p99 to publication (target < 50 ms)",
        p99.as_secs_f64() * 1000.0
    );
    service.stop().await?;
    for witness in witnesses {
        witness.shutdown().await?;
    }
    Ok(p99)
}
