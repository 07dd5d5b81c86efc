//! The scale-out benchmark's smoke run, part of the normal test run so that it cannot rot:
//! two instances of each service as separate processes against one PostgreSQL database per
//! service, the audit sequencer killed and restarted under load, and the databases checked
//! afterwards. It needs PostgreSQL (instances share a database), so it runs in the PostgreSQL
//! suite only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod postgres {
    use std::process::Command;

    #[test]
    fn scale_out_smoke_run_kills_the_sequencer_and_loses_nothing() {
        let Some(url) = tryggdel_test_support::postgres_admin_url() else {
            return;
        };
        let run = std::env::var("TRYGGDEL_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
        let output = Command::new(env!("CARGO_BIN_EXE_bench-scale-out"))
            .args(["--smoke", "--postgres-url", &url, "--database-prefix"])
            .arg(format!("tryggdel_test_{run}_bench_"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "bench-scale-out --smoke failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        for expected in [
            "machine: ",
            "2 instances of each service",
            "killed audit-",
            "restarted audit-",
            "checks: ",
            "none twice or out of order: yes",
            "RESULT bench=scale-out",
            " failed=0 ",
            "checks=passed",
        ] {
            assert!(
                stdout.contains(expected),
                "{expected:?} missing from:\n{stdout}"
            );
        }
        let result = stdout
            .lines()
            .find(|line| line.starts_with("RESULT "))
            .unwrap();
        let lifecycles: u64 = result
            .split_whitespace()
            .find_map(|field| field.strip_prefix("lifecycles="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(lifecycles > 0, "{result}");
        assert!(!result.contains("handover_first_commit_ms=-"), "{result}");
    }
}
