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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_server::Health;
    use tonic_health::server::HealthService;
    use tryggdel_telemetry::testing::{AggregatedMetrics, InMemoryMetricExporter, MetricData};

    use super::*;

    const SERVICE: &str = "tryggdel.test.v1.TestService";

    #[derive(Clone)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn status(health: &HealthService) -> i32 {
        health
            .check(tonic::Request::new(HealthCheckRequest {
                service: SERVICE.to_owned(),
            }))
            .await
            .unwrap()
            .into_inner()
            .status
    }

    async fn until_status(health: &HealthService, wanted: ServingStatus) {
        for _ in 0..200 {
            if status(health).await == wanted as i32 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("health never became {wanted:?}");
    }

    fn transitions(
        exporter: &InMemoryMetricExporter,
        provider: &SdkMeterProvider,
    ) -> Vec<(String, u64)> {
        provider.force_flush().unwrap();
        let exported = exporter.get_finished_metrics().unwrap();
        let Some(latest) = exported.last() else {
            return Vec::new();
        };
        let mut counts = Vec::new();
        for metric in latest
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .filter(|metric| metric.name() == "tryggdel.database.transitions")
        {
            if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                for point in sum.data_points() {
                    let state = point
                        .attributes()
                        .find(|attribute| attribute.key.as_str() == "state")
                        .map(|attribute| attribute.value.as_str().into_owned())
                        .unwrap();
                    counts.push((state, point.value()));
                }
            }
        }
        counts.sort();
        counts
    }

    #[tokio::test]
    async fn health_follows_the_database_with_one_line_and_one_count_per_transition() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        opentelemetry::global::set_meter_provider(provider.clone());
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Buffer(log.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // The follower runs on this (current-thread) runtime, so this thread's subscriber sees it.
        let _guard = tracing::subscriber::set_default(subscriber);

        let database = DatabaseHealth::up();
        let reporter = HealthReporter::new();
        let health = HealthService::from_health_reporter(reporter.clone());
        let follower = follow(SERVICE.to_owned(), database.clone(), reporter).await;
        assert_eq!(status(&health).await, ServingStatus::Serving as i32);

        for reason in ["refused", "refused again", "reset"] {
            database.set(DatabaseState::Down {
                reason: reason.to_owned(),
            });
        }
        until_status(&health, ServingStatus::NotServing).await;
        database.set(DatabaseState::Up);
        database.set(DatabaseState::Up);
        until_status(&health, ServingStatus::Serving).await;
        follower.abort();

        let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        let down: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("database unreachable"))
            .collect();
        assert_eq!(down.len(), 1, "{text}");
        assert!(
            down[0].contains("WARN") && down[0].contains("refused"),
            "{text}"
        );
        let up: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("database answering again"))
            .collect();
        assert_eq!(up.len(), 1, "{text}");
        assert!(up[0].contains("INFO"), "{text}");
        assert_eq!(
            transitions(&exporter, &provider),
            vec![("down".to_owned(), 1), ("up".to_owned(), 1)]
        );
    }
}
