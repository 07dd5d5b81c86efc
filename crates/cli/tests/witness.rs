//! Witnesses from the command line: `tryggdel start` runs two development witnesses and the
//! log publishes only checkpoints both cosigned; a compliance officer writes one entry's proof
//! bundle and verifies it, and an export, with nothing but the policy; another agency creates
//! a witness key and runs `tryggdel witness serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, stop_with_sigterm, text};
use ed25519_dalek::SigningKey;
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner, CosignatureVerifier};
use tryggdel_merkle::{MerkleTree, leaf_hash};
use tryggdel_witness::client::{WitnessClient, http_client};

fn tryggdel(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tryggdel"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(args)
        .env_remove("TRYGGDEL_TOKEN")
        .env_remove("TRYGGDEL_ORG")
        .output()
        .unwrap()
}

/// Runs `args` and returns stdout lines as they come, until `ready` matches one.
fn spawn_until(data: &Path, args: &[&str], ready: &str) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tryggdel"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no {ready:?} within 60 s: {seen:?}");
        };
        let done = line.contains(ready);
        seen.push(line);
        if done {
            return (child, seen);
        }
    }
}

#[test]
fn start_publishes_cosigned_checkpoints_that_verify_with_the_policy_alone() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let (disclosure, audit, notification) = (free_port(), free_port(), free_port());
    let endpoints = [
        "--disclosure-endpoint".to_owned(),
        format!("https://127.0.0.1:{disclosure}"),
        "--audit-endpoint".to_owned(),
        format!("https://127.0.0.1:{audit}"),
        "--notification-endpoint".to_owned(),
        format!("https://127.0.0.1:{notification}"),
    ];
    let endpoints: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    let (mut started, banner) = spawn_until(
        &data,
        &[
            "start",
            "--disclosure-listen",
            &format!("127.0.0.1:{disclosure}"),
            "--audit-listen",
            &format!("127.0.0.1:{audit}"),
            "--notification-listen",
            &format!("127.0.0.1:{notification}"),
        ],
        "stop with Ctrl-C",
    );
    assert_eq!(
        banner
            .iter()
            .filter(|l| l.contains("C2SP tlog-witness"))
            .count(),
        2,
        "{banner:?}"
    );
    let policy = data.join("witnesses/policy.txt");
    let policy_arg = policy.to_str().unwrap();

    // The demo's entries, under a checkpoint both witnesses cosigned.
    let mut demo = vec!["demo"];
    demo.extend(&endpoints);
    let output = tryggdel(&data, &demo);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let officer = tryggdel(
        &data,
        &[
            "dev-token",
            "--role",
            "compliance_officer",
            "--user",
            "granskare-ivo",
            "--org",
            "ivo",
        ],
    );
    let officer = text(&officer.stdout).trim().to_owned();
    let as_officer = |args: &[&str]| {
        let mut all = vec!["audit"];
        all.extend(args);
        all.extend(["--org", "ivo", "--token", &officer]);
        all.extend(&endpoints);
        tryggdel(&data, &all)
    };

    // One entry's proof bundle, verified offline with the policy alone.
    let bundle = directory.path().join("entry-2.tlog-proof");
    let written = as_officer(&["proof", "--index", "2", "--out", bundle.to_str().unwrap()]);
    assert!(written.status.success(), "{}", text(&written.stderr));
    let bundle_text = std::fs::read_to_string(&bundle).unwrap();
    assert!(bundle_text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
    assert!(
        bundle_text.matches("\n\u{2014} ").count() >= 3,
        "{bundle_text}"
    );
    let verified = tryggdel(
        &data,
        &[
            "audit",
            "verify",
            "--proof",
            bundle.to_str().unwrap(),
            "--policy",
            policy_arg,
        ],
    );
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stdout)
    );
    assert!(text(&verified.stdout).contains("entry 2 is in the log"));

    // A bundle whose cosignature is gone does not verify (exit 2).
    let stripped: String = {
        let mut lines: Vec<&str> = bundle_text.lines().collect();
        lines.pop();
        lines.join("\n") + "\n"
    };
    let tampered = directory.path().join("stripped.tlog-proof");
    std::fs::write(&tampered, stripped).unwrap();
    let refused = tryggdel(
        &data,
        &[
            "audit",
            "verify",
            "--proof",
            tampered.to_str().unwrap(),
            "--policy",
            policy_arg,
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stdout));

    // An export verifies with the policy, its log key taken from the policy's log line.
    let export = directory.path().join("export.jsonl");
    let exported = as_officer(&["export", "--out", export.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let verified = tryggdel(
        &data,
        &[
            "audit",
            "verify",
            "--export",
            export.to_str().unwrap(),
            "--policy",
            policy_arg,
        ],
    );
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stdout)
    );
    assert!(
        text(&verified.stdout).contains("witness policy: met, cosigned by 2"),
        "{}",
        text(&verified.stdout)
    );
    // A policy that also wants a third agency's witness is not met by the same export.
    let third = tryggdel_merkle::checkpoint::Cosigner::new(
        SigningKey::from_bytes(&[6; 32]),
        "witness.kommun.example",
    )
    .unwrap()
    .verifier()
    .to_vkey_string();
    let stricter = std::fs::read_to_string(&policy).unwrap().replace(
        "group development all",
        &format!(
            "witness witness.kommun.example {third}\ngroup development all witness.kommun.example"
        ),
    );
    let stricter_path = directory.path().join("stricter.txt");
    std::fs::write(&stricter_path, stricter).unwrap();
    let refused = tryggdel(
        &data,
        &[
            "audit",
            "verify",
            "--export",
            export.to_str().unwrap(),
            "--policy",
            stricter_path.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stdout));
    assert!(text(&refused.stdout).contains("NOT MET"));

    stop_with_sigterm(&mut started);
}

#[tokio::test]
async fn another_agency_creates_a_key_and_serves_a_witness() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("unused");
    let key = directory.path().join("witness.pem");
    let created = tryggdel(
        &data,
        &[
            "witness",
            "key",
            "--name",
            "witness.ivo.example",
            "--out",
            key.to_str().unwrap(),
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let vkey = text(&created.stdout).trim().to_owned();
    let witness_key = CosignatureVerifier::parse_vkey(&vkey).unwrap();
    // The key is never replaced.
    let again = tryggdel(
        &data,
        &[
            "witness",
            "key",
            "--name",
            "witness.ivo.example",
            "--out",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(1));

    let ca = tryggdel_tls::CertificateAuthority::generate("ivo CA").unwrap();
    let issued = ca
        .issue_server(
            "witness",
            &["localhost".into()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )
        .unwrap();
    let (cert, tls_key) = (
        directory.path().join("cert.pem"),
        directory.path().join("key.pem"),
    );
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&tls_key, &issued.key_pem).unwrap();
    let log =
        CheckpointSigner::new(SigningKey::from_bytes(&[1; 32]), "audit.example.se/log").unwrap();
    let port = free_port();
    let (mut served, _) = spawn_until(
        &data,
        &[
            "witness",
            "serve",
            "--name",
            "witness.ivo.example",
            "--key",
            key.to_str().unwrap(),
            "--log",
            &log.verifier().to_vkey_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
            directory.path().join("state").to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            tls_key.to_str().unwrap(),
        ],
        "listening on",
    );

    let tree = MerkleTree::from_leaf_hashes((0u8..9).map(|i| leaf_hash(&[i])));
    let checkpoint = Checkpoint::new(log.name(), tree.len(), tree.root()).unwrap();
    let client = WitnessClient::new(
        "ivo",
        &format!("https://127.0.0.1:{port}"),
        witness_key.clone(),
        http_client(Some(ca.cert_pem()), Duration::from_secs(10)).unwrap(),
    );
    let proofs = |a: u64, b: u64| Ok(tree.consistency_proof(a, b)?);
    let cosignature = client
        .cosign(&log.sign(&checkpoint).unwrap(), &checkpoint, &proofs)
        .await
        .unwrap();
    witness_key
        .verify(&checkpoint.body_text(), &cosignature)
        .unwrap();
    stop_with_sigterm(&mut served);
}
