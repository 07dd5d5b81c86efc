//! What the benchmarks' smoke tests share: running a benchmark binary in its smoke mode on a
//! backend, and reading what it prints.
// Each test file uses its own part of this.
#![allow(dead_code)]

use std::process::Command;

/// `--backend …`, with the server and a database prefix the test run cleans up on
/// PostgreSQL; None when PostgreSQL is not configured (and not required).
pub fn backend_args(backend: &str) -> Option<Vec<String>> {
    match backend {
        "postgres" => {
            let url = tryggdel_test_support::postgres_admin_url()?;
            let mut args = vec!["--backend".into(), "postgres".into()];
            args.extend(postgres_args(url));
            Some(args)
        }
        _ => Some(vec!["--backend".into(), "sqlite".into()]),
    }
}

/// `--postgres-url <url> --database-prefix <the test run's prefix>`.
pub fn postgres_args(url: String) -> Vec<String> {
    let run = std::env::var("TRYGGDEL_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
    vec![
        "--postgres-url".into(),
        url,
        "--database-prefix".into(),
        format!("tryggdel_test_{run}_bench_"),
    ]
}

/// Runs `binary --smoke <args>`; returns its output, failing the test on a non-zero exit.
pub fn run(binary: &str, args: &[String]) -> String {
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

pub fn assert_contains(output: &str, expected: &[&str]) {
    for text in expected {
        assert!(output.contains(text), "{text:?} missing from:\n{output}");
    }
}

/// The `RESULT` line.
pub fn result_line(output: &str) -> &str {
    output
        .lines()
        .find(|line| line.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{output}"))
}

/// The value of `name=` in the `RESULT` line.
pub fn field<'a>(result: &'a str, name: &str) -> &'a str {
    result
        .split_whitespace()
        .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {result}"))
}
