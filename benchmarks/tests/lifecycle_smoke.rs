//! The lifecycle benchmark's smoke run, part of the normal test run so that it cannot rot:
//! `bench-lifecycle --smoke` (2 users, a few seconds) on PostgreSQL when
//! `TRYGGDEL_TEST_POSTGRES_URL` is set, and on SQLite, must finish every lifecycle it starts,
//! print its figures and end with a `RESULT` line showing no failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod smoke;

use smoke::{assert_contains, field};

/// Runs the smoke mode with `backend_args`.
fn run(backend_args: &[String]) -> String {
    smoke::run(env!("CARGO_BIN_EXE_bench-lifecycle"), backend_args)
}

/// Checks what every backend's run prints; returns the `RESULT` line.
fn assert_figures(output: &str) -> String {
    assert_contains(
        output,
        &[
            "machine: ",
            " cores",
            "background load before the run: ",
            "concurrency: 2 users",
            "duration: ",
            "lifecycles/s: ",
            "CreateDraft",
            "Submit",
            "Approve",
            "approve→delivered (e2e)",
            "Acknowledge",
            "acknowledge→acknowledged (e2e)",
            "database commits: ",
            "CPU: ",
            "failed: 0",
            "RESULT bench=lifecycle",
            " failed=0 ",
        ],
    );
    let result = output
        .lines()
        .filter(|line| line.starts_with("RESULT "))
        .collect::<Vec<_>>();
    assert_eq!(result.len(), 1, "one RESULT line in:\n{output}");
    let result = result[0].to_owned();
    assert_eq!(
        output.lines().last(),
        Some(result.as_str()),
        "RESULT is the last line"
    );
    let lifecycles: u64 = field(&result, "lifecycles").parse().unwrap();
    assert!(lifecycles > 0, "{result}");
    let rate: f64 = field(&result, "lifecycles_per_s").parse().unwrap();
    assert!(rate > 0.0, "{result}");
    let approve_p99: f64 = field(&result, "approve_p99_ms").parse().unwrap();
    assert!(approve_p99 > 0.0, "{result}");
    assert_eq!(field(&result, "concurrency"), "2", "{result}");
    result
}

mod sqlite {
    #[test]
    fn lifecycle_smoke_run_prints_its_figures() {
        let output = super::run(&["--backend".into(), "sqlite".into()]);
        let result = super::assert_figures(&output);
        assert!(output.contains("database commits: not counted on sqlite"));
        assert_eq!(super::field(&result, "commits_per_s"), "-");
    }
}

mod postgres {
    #[test]
    fn lifecycle_smoke_run_prints_its_figures() {
        let Some(args) = super::smoke::backend_args("postgres") else {
            return;
        };
        let output = super::run(&args);
        let result = super::assert_figures(&output);
        assert_contains_postgres(&output);
        let commits: f64 = super::field(&result, "commits_per_s").parse().unwrap();
        let writes: f64 = super::field(&result, "write_xacts_per_s").parse().unwrap();
        assert!(commits > 0.0 && writes > 0.0, "{result}");
    }

    fn assert_contains_postgres(output: &str) {
        super::assert_contains(
            output,
            &[
                "xact_commit over the three databases",
                "writing transactions: ",
                "WAL: ",
            ],
        );
    }
}
