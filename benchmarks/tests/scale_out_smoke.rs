//! The scale-out benchmark's smoke run, part of the normal test run so that it cannot rot:
//! two instances of each service as separate processes against one PostgreSQL database per
//! service, the audit sequencer killed and restarted under load, and the databases checked
//! afterwards. It needs PostgreSQL (instances share a database), so it runs in the PostgreSQL
//! suite only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod smoke;

mod postgres {
    use super::smoke::{assert_contains, field, postgres_args, result_line, run};

    #[test]
    fn scale_out_smoke_run_kills_the_sequencer_and_loses_nothing() {
        let Some(url) = tryggdel_test_support::postgres_admin_url() else {
            return;
        };
        let stdout = run(env!("CARGO_BIN_EXE_bench-scale-out"), &postgres_args(url));
        assert_contains(
            &stdout,
            &[
                "machine: ",
                "2 instances of each service",
                "killed audit-",
                "restarted audit-",
                "checks: ",
                "none twice or out of order: yes",
                "RESULT bench=scale-out",
                " failed=0 ",
                "checks=passed",
            ],
        );
        let result = result_line(&stdout);
        let lifecycles: u64 = field(result, "lifecycles").parse().unwrap();
        assert!(lifecycles > 0, "{result}");
        assert!(!result.contains("handover_first_commit_ms=-"), "{result}");
    }
}
