//! One service as deployed: `tryggdel pki`, `migrate`, `serve` with a configuration file,
//! `health` over mTLS, and production mode refusing development material.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, stop_with_sigterm, text};

fn tryggdel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tryggdel"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// A configuration for the audit service on the PKI in `pki`.
fn config(pki: &Path, mode: &str, database: &str, port: u16) -> String {
    let p = |path: &str| pki.join(path).display().to_string();
    format!(
        r#"mode = "{mode}"
database_url = "{database}"

[tls]
ca = "{ca}"
cert = "{cert}"
key = "{key}"

[token]
issuer = "https://idp.dev.tryggdel.local"
audience = "tryggdel"
public_key = "{token}"

[keys]
person_index = "{person}"
audit_log = "{log}"

[listen]
audit = "127.0.0.1:{port}"

[audit]
origin = "audit.dev.tryggdel.local/log"
"#,
        ca = p("pki/ca.pem"),
        cert = p("pki/audit.pem"),
        key = p("pki/audit-key.pem"),
        token = p("keys/token-signing-public.pem"),
        person = p("keys/person-index.key"),
        log = p("keys/audit-log-key.pem"),
    )
}

#[test]
fn a_single_service_serves_reports_health_and_production_refuses_development_material() {
    let directory = tempfile::tempdir().unwrap();
    let pki = directory.path().join("secrets");
    let output = tryggdel(&["pki", "--out", pki.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for file in [
        "pki/ca.pem",
        "pki/notification.pem",
        "keys/receipt-public.pem",
        "pki/clients/polisen.pem",
    ] {
        assert!(pki.join(file).exists(), "{file}");
    }

    let port = free_port();
    let database = format!("sqlite://{}", directory.path().join("audit.db").display());
    let file = directory.path().join("config.toml");
    std::fs::write(&file, config(&pki, "development", &database, port)).unwrap();
    let config_flag = ["--config", file.to_str().unwrap()];

    let migrated = tryggdel(&[&["migrate", "audit"][..], &config_flag].concat());
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    assert!(text(&migrated.stdout).contains("up to date"));

    let mut served = Command::new(env!("CARGO_BIN_EXE_tryggdel"))
        .args([&["serve", "audit"][..], &config_flag].concat())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let endpoint = format!("https://127.0.0.1:{port}");
    let mut healthy = None;
    for _ in 0..100 {
        let output = tryggdel(
            &[
                &["health", "--endpoint", &endpoint, "--service", "audit"][..],
                &config_flag,
            ]
            .concat(),
        );
        if output.status.success() {
            healthy = Some(output);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let healthy = healthy.expect("the audit service reports SERVING");
    assert!(text(&healthy.stdout).contains("is serving"));
    stop_with_sigterm(&mut served);
    let down = tryggdel(&[&["health", "--endpoint", &endpoint][..], &config_flag].concat());
    assert_eq!(down.status.code(), Some(1));

    // Production mode: development material and SQLite are refused, naming the reason.
    let production = directory.path().join("production.toml");
    for (database, reason) in [
        (database.as_str(), "needs PostgreSQL"),
        (
            "postgres://tryggdel@db/tryggdel",
            "refuses the development CA",
        ),
    ] {
        std::fs::write(&production, config(&pki, "production", database, port)).unwrap();
        let refused = tryggdel(&["serve", "audit", "--config", production.to_str().unwrap()]);
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            text(&refused.stderr).contains(reason),
            "{}",
            text(&refused.stderr)
        );
    }
    let missing = tryggdel(&["serve", "audit", "--config", "/nonexistent/config.toml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("does not exist"));
}
