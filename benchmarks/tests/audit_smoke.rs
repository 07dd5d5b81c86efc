//! The audit benchmark's smoke run, part of the normal test run so that it cannot rot:
//! `bench-audit --smoke` (a few seconds, tiny sizes) on PostgreSQL when
//! `TRYGGDEL_TEST_POSTGRES_URL` is set (databases under the test run's prefix), else on
//! SQLite, must succeed and print every figure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// `--backend …` (and the server and a database prefix the test run cleans up, on PostgreSQL).
fn backend_args(backend: &str) -> Option<Vec<String>> {
    match backend {
        "postgres" => {
            let url = std::env::var("TRYGGDEL_TEST_POSTGRES_URL")
                .ok()
                .filter(|url| !url.is_empty())?;
            let run = std::env::var("TRYGGDEL_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
            Some(vec![
                "--backend".into(),
                "postgres".into(),
                "--postgres-url".into(),
                url,
                "--database-prefix".into(),
                format!("tryggdel_test_{run}_bench_"),
            ])
        }
        _ => Some(vec!["--backend".into(), "sqlite".into()]),
    }
}

fn run(binary: &str, args: &[String]) -> String {
    let output = Command::new(binary)
        .arg("--smoke")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{binary} --smoke failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

fn assert_contains(output: &str, expected: &[&str]) {
    for text in expected {
        assert!(output.contains(text), "{text:?} missing from:\n{output}");
    }
}

fn audit_smoke_run_prints_its_figures(backend: &str) {
    let Some(args) = backend_args(backend) else {
        return;
    };
    let output = run(env!("CARGO_BIN_EXE_bench-audit"), &args);
    assert_contains(
        &output,
        &[
            "machine: ",
            "background load: ",
            "events per call 1: ",
            "events per call 20: ",
            "entries/s",
            "inclusion proof",
            "consistency proof",
            "GetInclusionProof (service)",
            "GetConsistencyProof (service)",
            "service start-up: ",
            "verify_export: ",
            "raw SHA-256 over the same file: ",
            "ratio verification / raw SHA-256: ",
            "RESULT bench=audit",
            "verify_over_sha256=",
        ],
    );
    let result = output
        .lines()
        .find(|line| line.starts_with("RESULT "))
        .unwrap();
    for key in ["appends_1", "appends_20"] {
        let rate: f64 = result
            .split_whitespace()
            .find_map(|field| field.strip_prefix(&format!("{key}=")))
            .unwrap()
            .parse()
            .unwrap();
        assert!(rate > 0.0, "{result}");
    }
    assert!(!result.contains("=-"), "a figure is missing: {result}");
}

mod sqlite {
    #[test]
    fn audit_smoke_run_prints_its_figures() {
        super::audit_smoke_run_prints_its_figures("sqlite");
    }
}

mod postgres {
    #[test]
    fn audit_smoke_run_prints_its_figures() {
        super::audit_smoke_run_prints_its_figures("postgres");
    }
}
