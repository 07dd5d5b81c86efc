//! The witness benchmark's smoke run, part of the normal test run so that it cannot rot:
//! `bench-witness --smoke` (a few seconds) must succeed and print every figure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod smoke;

use smoke::{assert_contains, field, result_line, run};

#[test]
fn witness_smoke_run_prints_its_figures() {
    let output = run(env!("CARGO_BIN_EXE_bench-witness"), &[]);
    assert_contains(
        &output,
        &[
            "machine: ",
            "requests/s",
            "add-checkpoint",
            "cosign (3 witnesses)",
            "cosigning adds ",
            "audit service, 3 witnesses",
            "through the service cosigning adds ",
            "RESULT bench=witness",
        ],
    );
    let result = result_line(&output);
    for key in [
        "add_checkpoint_per_s",
        "cosign_p99_ms",
        "service_added_p99_ms",
    ] {
        let figure: f64 = field(result, key).parse().unwrap();
        assert!(figure > 0.0, "{result}");
    }
}
