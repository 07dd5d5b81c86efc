//! A service's gRPC health following its database: NOT_SERVING while the database is down,
//! SERVING when it answers again. Each change is one log line (WARN down, INFO back) and one
//! count of `tryggdel.database.transitions{service, state}`; a failed call logs nothing more.

use opentelemetry::KeyValue;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tryggdel_storage::{DatabaseHealth, DatabaseState};

/// The gRPC health of a service whose database is in `state`.
pub fn serving_status(state: &DatabaseState) -> ServingStatus {
    if state.is_up() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Sets `service_name`'s status on `reporter` now, and at each change of `database` until the
/// returned task is aborted.
pub async fn follow(
    service_name: String,
    database: DatabaseHealth,
    reporter: HealthReporter,
) -> tokio::task::JoinHandle<()> {
    let transitions = crate::metrics::meter()
        .u64_counter("tryggdel.database.transitions")
        .with_description("Changes of a service's database between up and down")
        .build();
    let mut changes = database.subscribe();
    let initial = changes.borrow_and_update().clone();
    reporter
        .set_service_status(&service_name, serving_status(&initial))
        .await;
    let mut up = initial.is_up();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let state = changes.borrow_and_update().clone();
            if state.is_up() == up {
                continue;
            }
            up = state.is_up();
            reporter
                .set_service_status(&service_name, serving_status(&state))
                .await;
            match &state {
                DatabaseState::Up => {
                    tracing::info!(service = %service_name, "database answering again: serving");
                }
                DatabaseState::Down { reason } => {
                    tracing::warn!(
                        service = %service_name,
                        reason = %reason,
                        "database unreachable: not serving until it answers"
                    );
                }
            }
            transitions.add(
                1,
                &[
                    KeyValue::new("service", service_name.clone()),
                    KeyValue::new("state", if up { "up" } else { "down" }),
                ],
            );
        }
    })
}
