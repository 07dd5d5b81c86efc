//! The audit benchmark's smoke run, part of the normal test run so that it cannot rot:
//! `bench-audit --smoke` (a few seconds, tiny sizes) on PostgreSQL when
//! `TRYGGDEL_TEST_POSTGRES_URL` is set (databases under the test run's prefix), else on
//! SQLite, must succeed and print every figure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod smoke;

use smoke::{assert_contains, backend_args, field, result_line, run};

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
    let result = result_line(&output);
    for key in ["appends_1", "appends_20"] {
        let rate: f64 = field(result, key).parse().unwrap();
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
