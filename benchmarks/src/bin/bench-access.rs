//! The access log's cost on a read: a caseworker's Get of a disclosure (which records the read
//! in the outbox before answering) against the same service's AssessLegalBasis of the same
//! stored disclosure (which reads, opens and assesses it but returns no personal data, so
//! logs nothing), and the access record on its own (one outbox insert, as Get writes it).
//!
//! The whole system runs in this process as `tryggdel start` runs it, on SQLite files or on
//! fresh PostgreSQL databases; every call is real gRPC over TLS 1.3 with a real token. Calls
//! are made one at a time by `--clients` concurrent clients.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use prost::Message as _;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel::token::Bearer;
use tryggdel_auth::Role;
use tryggdel_bench::stats::{Samples, ms};
use tryggdel_bench::{Backend, BenchDatabase, BenchIdentity};
use tryggdel_proto::audit::v1::{AuditEvent, Outcome};
use tryggdel_proto::disclosure::v1::assess_legal_basis_request::Target;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::{AssessLegalBasisRequest, CreateDraftRequest, GetRequest};
use tryggdel_storage::OutboxEvent;
use tryggdel_system::{DataDirectory, Service, SystemBuilder};

#[derive(Parser, Debug)]
#[command(about = "What recording every read in the access log adds to Get")]
struct Args {
    /// sqlite, or postgres (fresh databases on --postgres-url).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Disclosures read (round robin).
    #[arg(long, default_value_t = 200)]
    disclosures: usize,
    /// Calls of each kind measured, over all clients.
    #[arg(long, default_value_t = 3_000)]
    calls: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

type Disclosures = DisclosureServiceClient<InterceptedService<Channel, Bearer>>;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tryggdel_tls::install_crypto_provider();
    let backend = Backend::parse(&args.backend, &args.postgres_url)?;
    let mut databases = Vec::new();
    for label in ["audit", "notification", "disclosure"] {
        databases.push(BenchDatabase::create(&backend, "tryggdel_bench_access", label).await?);
    }
    let outcome = run(&args, &databases).await;
    for database in databases {
        database.remove().await.ok();
    }
    outcome
}

async fn run(args: &Args, databases: &[BenchDatabase]) -> anyhow::Result<()> {
    let data = tempfile::tempdir().context("a data directory")?;
    let url = |index: usize| -> anyhow::Result<String> {
        databases
            .get(index)
            .map(|database| database.url.clone())
            .context("three databases")
    };
    let system = SystemBuilder::development(data.path())
        .on_free_ports()
        .database(Service::Audit, url(0)?)
        .database(Service::Notification, url(1)?)
        .database(Service::Disclosure, url(2)?)
        .start()
        .await
        .context("starting the system")?;
    let identity = Arc::new(BenchIdentity::from_development_pki(&DataDirectory::new(
        data.path(),
    ))?);
    let token = identity.token(
        "handlaggare-bollnas",
        "bollnas-kommun",
        &[Role::Caseworker],
        None,
        Duration::from_secs(3600),
    )?;
    let channel = identity
        .channel(system.disclosure.local_addr, "bollnas-kommun")
        .await?;
    let client: Disclosures =
        DisclosureServiceClient::with_interceptor(channel, Bearer::new(&token)?);
    println!(
        "access-log benchmark: backend {}, {} disclosures, {} calls of each kind by {} clients",
        args.backend, args.disclosures, args.calls, args.clients
    );
    let mut ids = Vec::new();
    for index in 0..args.disclosures {
        let content = tryggdel_test_support::draft::draft_content(
            &format!("IFO-{index:06}"),
            "OSL-26-1",
            false,
        )?;
        let draft = client
            .clone()
            .create_draft(CreateDraftRequest {
                client_request_id: format!("access-{index:08}"),
                content: Some(content),
            })
            .await
            .with_context(|| format!("draft {index}"))?
            .into_inner();
        ids.push(draft.id);
    }
    let ids = Arc::new(ids);

    // Warm both paths, then measure them interleaved so that both see the same machine.
    measure(args, &client, &ids, Kind::Get, args.calls / 10).await?;
    measure(args, &client, &ids, Kind::Assess, args.calls / 10).await?;
    let mut get = Samples::new();
    let mut assess = Samples::new();
    for _ in 0..5 {
        get.extend(&measure(args, &client, &ids, Kind::Get, args.calls / 5).await?);
        assess.extend(&measure(args, &client, &ids, Kind::Assess, args.calls / 5).await?);
    }
    let record = measure_records(system.disclosure.api.store(), args.calls, args.clients).await?;

    let mut record = record;
    println!("latency, p50 / p99 / max (ms):");
    for (name, samples) in [
        ("Get (its read recorded first)", &mut get),
        (
            "AssessLegalBasis of the same (nothing recorded)",
            &mut assess,
        ),
        ("the access record alone (one outbox insert)", &mut record),
    ] {
        println!(
            "  {name:<50} {} / {} / {}",
            ms(samples.percentile(50.0)),
            ms(samples.percentile(99.0)),
            ms(samples.max()),
        );
    }
    println!(
        "target: the access log adds at most 2 ms to Get's p99; the record's own p99 is {} ms \
         (Get p99 {} ms against {} ms for the unrecorded read)",
        ms(record.percentile(99.0)),
        ms(get.percentile(99.0)),
        ms(assess.percentile(99.0)),
    );
    system.stop().await
}

#[derive(Clone, Copy)]
enum Kind {
    Get,
    Assess,
}

/// `calls` calls of `kind` by the clients, each timed.
async fn measure(
    args: &Args,
    client: &Disclosures,
    ids: &Arc<Vec<String>>,
    kind: Kind,
    calls: usize,
) -> anyhow::Result<Samples> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.clients.max(1) {
        let mut client = client.clone();
        let ids = ids.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::new();
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= calls {
                    return anyhow::Ok(samples);
                }
                let id = ids
                    .get(index % ids.len())
                    .context("a disclosure to read")?
                    .clone();
                let started = Instant::now();
                match kind {
                    Kind::Get => {
                        client
                            .get(GetRequest {
                                disclosure_id: id,
                                reveal_protected: false,
                            })
                            .await
                            .context("Get")?;
                    }
                    Kind::Assess => {
                        client
                            .assess_legal_basis(AssessLegalBasisRequest {
                                target: Some(Target::DisclosureId(id)),
                                ..AssessLegalBasisRequest::default()
                            })
                            .await
                            .context("AssessLegalBasis")?;
                    }
                }
                samples.record(started.elapsed());
            }
        }));
    }
    let mut all = Samples::new();
    for task in tasks {
        all.extend(&task.await.context("a client task")??);
    }
    Ok(all)
}

/// `calls` access records written straight to the outbox by `clients` concurrent writers, as
/// Get writes them (one event, one insert), each timed.
async fn measure_records(
    store: &tryggdel_disclosure::DisclosureStore,
    calls: usize,
    clients: usize,
) -> anyhow::Result<Samples> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let store = store.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::new();
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= calls {
                    return anyhow::Ok(samples);
                }
                let event_id = uuid::Uuid::now_v7().to_string();
                let now = tryggdel_service_kit::now_unix_ms();
                let audit_event = AuditEvent {
                    event_id: event_id.clone(),
                    action: "disclosure.read".into(),
                    occurred_at_unix_ms: now,
                    outcome: Outcome::Success as i32,
                    ..AuditEvent::default()
                };
                let event = OutboxEvent {
                    event_id,
                    event_type: "disclosure.read".into(),
                    disclosure_id: format!("bench-{index}"),
                    organisation: "bollnas-kommun".into(),
                    payload: "{}".into(),
                    created_at: now,
                    audit_event: audit_event.encode_to_vec(),
                    traceparent: String::new(),
                };
                let started = Instant::now();
                store
                    .record_events(std::slice::from_ref(&event))
                    .await
                    .context("an access record")?;
                samples.record(started.elapsed());
            }
        }));
    }
    let mut all = Samples::new();
    for task in tasks {
        all.extend(&task.await.context("a writer task")??);
    }
    Ok(all)
}
