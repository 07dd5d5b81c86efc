//! The database going away under a running service, as a client sees it over mTLS.
//!
//! PostgreSQL: the service reaches its database through a TCP proxy the test controls; cutting
//! it resets every connection and refuses new ones, as a stopped server does. The service must
//! report NOT_SERVING, refuse calls UNAVAILABLE within about a second (never INTERNAL, never
//! after a pool timeout), report SERVING again within two seconds of the database's return, and
//! log a retried event exactly once.
//!
//! SQLite: a database file that can only be read refuses an append UNAVAILABLE with a message
//! saying so, and nothing of it is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tryggdel_proto::audit::v1::{AppendRequest, GetCheckpointRequest};
use tryggdel_test_support::TestBackend;

use common::{Deployment, events};

const SERVICE: &str = "tryggdel.audit.v1.AuditService";

/// A TCP proxy to the database that can be cut (every connection reset, new ones closed at
/// once) and restored.
struct Proxy {
    address: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (cut, connections) = (cut.clone(), connections.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let forward = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections.lock().await.push(forward);
                }
            }
        });
        Proxy {
            address,
            cut,
            connections,
            accept,
        }
    }

    /// Resets every connection and closes new ones at once.
    async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().await.drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `url` with its host and port replaced by `address`.
fn through(url: &str, address: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let credentials = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}://{credentials}{address}/{path}")
}

fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split_once('/').unwrap().0;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&host_port.replace("localhost", "127.0.0.1"))
        .unwrap()
        .next()
        .unwrap()
}

async fn health(client: &mut HealthClient<tonic::transport::Channel>) -> ServingStatus {
    let status = client
        .check(HealthCheckRequest {
            service: SERVICE.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(status).unwrap()
}

/// Waits (bounded by `within`) until the health of the service is `wanted`; how long it took.
async fn until_health(
    client: &mut HealthClient<tonic::transport::Channel>,
    wanted: ServingStatus,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        if health(client).await == wanted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "health did not become {wanted:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_database_is_unavailable_at_once_not_serving_and_recovers_by_itself() {
        let Some(deployment) = Deployment::create(TestBackend::Postgres).await else {
            return;
        };
        let proxy = Proxy::start(upstream(&deployment.database.url)).await;
        let mut settings = deployment.settings();
        settings.database_url = through(&settings.database_url, proxy.address);
        settings.database.deadline = Duration::from_secs(2);
        let service = tryggdel_audit::spawn(&settings, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut client = deployment.service_client(&service, "disclosure").await;
        let mut health_client = HealthClient::new(
            deployment
                .identity
                .service_channel(service.local_addr, "disclosure")
                .await,
        );
        assert_eq!(health(&mut health_client).await, ServingStatus::Serving);
        let before = events(1);
        client
            .append(AppendRequest {
                events: before.clone(),
            })
            .await
            .unwrap();

        proxy.cut().await;
        let noticed = until_health(
            &mut health_client,
            ServingStatus::NotServing,
            Duration::from_secs(3),
        )
        .await;
        // The server as a whole (what liveness asks) keeps serving.
        let whole = health_client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(whole, ServingStatus::Serving as i32);

        let during = events(1);
        for attempt in 0..3 {
            let started = Instant::now();
            let refused = client
                .append(AppendRequest {
                    events: during.clone(),
                })
                .await
                .expect_err("the log cannot append without its database");
            let waited = started.elapsed();
            assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
            assert!(
                waited < Duration::from_millis(1000),
                "attempt {attempt} refused after {waited:?}"
            );
            let started = Instant::now();
            let read = client.get_checkpoint(GetCheckpointRequest::default()).await;
            // The latest checkpoint is served from memory; a read that needs the database is
            // refused as fast.
            assert!(
                read.is_ok() || read.as_ref().unwrap_err().code() == Code::Unavailable,
                "{read:?}"
            );
            assert!(started.elapsed() < Duration::from_millis(1000));
        }

        proxy.restore();
        let back = until_health(
            &mut health_client,
            ServingStatus::Serving,
            Duration::from_secs(2),
        )
        .await;
        let appended = client
            .append(AppendRequest {
                events: during.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert_eq!(appended.len(), 1);
        assert!(!appended[0].duplicate, "refused appends must not be logged");
        let repeated = client
            .append(AppendRequest {
                events: before.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert!(repeated[0].duplicate);
        assert_eq!(repeated[0].index, 0);
        assert_eq!(appended[0].index, 1);
        println!("outage noticed after {noticed:?}, serving again {back:?} after the return");

        service.stop().await.unwrap();
        deployment.database.remove().await;
    }
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_only_database_file_is_unavailable_with_the_reason_and_nothing_written() {
        let deployment = Deployment::create(TestBackend::Sqlite).await.unwrap();
        let settings = deployment.settings();
        let service = tryggdel_audit::spawn(&settings, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut client = deployment.service_client(&service, "disclosure").await;
        client
            .append(AppendRequest { events: events(2) })
            .await
            .unwrap();
        service.stop().await.unwrap();

        // The same file, now only readable (as on a volume remounted read-only; a permission
        // bit would not stop the root user the tests may run as).
        let mut read_only = deployment.settings();
        read_only.database_url = format!("{}?mode=ro", settings.database_url);
        let service = tryggdel_audit::spawn(&read_only, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut client = deployment.service_client(&service, "disclosure").await;
        let refused = client
            .append(AppendRequest { events: events(3) })
            .await
            .expect_err("a read-only log cannot append");
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        assert!(
            refused.message().contains("read-only"),
            "the message says what is wrong: {}",
            refused.message()
        );
        let checkpoint = client
            .get_checkpoint(GetCheckpointRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(checkpoint.tree_size, 2);
        service.stop().await.unwrap();

        let database = tryggdel_storage::Database::connect(
            &settings.database_url,
            "audit",
            &tryggdel_audit::MIGRATIONS,
        )
        .await
        .unwrap();
        let (entries,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_entries")
            .fetch_one(database.pool())
            .await
            .unwrap();
        assert_eq!(entries, 2, "nothing of the refused append is written");
        database.close().await;
    }
}
