//! Integration tests of the integrity scrub: the real audit service on 127.0.0.1:0 with real
//! mTLS and tokens, on SQLite and on PostgreSQL, with rows changed directly in its database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{BOLLNAS, Deployment, event, events};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit::scrub::{Finding, ScrubProgress};
use tryggdel_audit::{RunningService, Settings};
use tryggdel_auth::Role;
use tryggdel_domain::IdentityNumber;
use tryggdel_merkle::leaf_hash;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{
    AppendRequest, ExportRequest, GetInclusionProofRequest, QueryRequest,
    get_inclusion_proof_request,
};
use tryggdel_test_support::{BearerInterceptor, TestBackend, on_both_backends};

type UserClient = AuditServiceClient<InterceptedService<Channel, BearerInterceptor>>;

/// A background scrub that, after its pass at start, does not run again within a test: the
/// tests drive the scrub themselves.
const NOT_AGAIN: Duration = Duration::from_secs(3600);

fn settings(deployment: &Deployment, interval: Duration, batch: u32) -> Settings {
    let mut settings = deployment.settings();
    settings.scrub.interval = interval;
    settings.scrub.batch = batch;
    settings
}

async fn spawn(settings: &Settings) -> RunningService {
    tryggdel_audit::spawn(settings, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn append(deployment: &Deployment, service: &RunningService, count: usize) {
    let mut client = deployment.service_client(service, "disclosure").await;
    client
        .append(AppendRequest {
            events: events(count),
        })
        .await
        .unwrap();
}

async fn user(
    deployment: &Deployment,
    service: &RunningService,
    user: &str,
    organisation: &str,
) -> UserClient {
    let identity = &deployment.identity;
    let channel = identity.channel(service.local_addr, organisation).await;
    let token = identity.token(user, organisation, &[Role::ComplianceOfficer]);
    AuditServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
}

/// Switches the database's refusal of UPDATE on entries off, as an operator with the owner's
/// rights can.
async fn unprotect(service: &RunningService, backend: TestBackend) {
    let statement = match backend {
        TestBackend::Postgres => {
            "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only"
        }
        TestBackend::Sqlite => "DROP TRIGGER IF EXISTS audit_entries_no_update",
    };
    sqlx::query(statement)
        .execute(service.api.log().store().database().pool())
        .await
        .unwrap();
}

/// The stored bytes of entry `index` with the decision maker's name changed.
async fn changed_bytes(service: &RunningService, index: u64) -> Vec<u8> {
    let stored = service
        .api
        .log()
        .store()
        .entry(index)
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(stored.bytes).unwrap();
    assert!(text.contains("beslut-bollnas"), "{text}");
    text.replace("beslut-bollnas", "beslut-annan").into_bytes()
}

/// Rewrites entry `index`'s bytes directly in the database.
async fn rewrite_entry(service: &RunningService, backend: TestBackend, index: u64) {
    unprotect(service, backend).await;
    let bytes = changed_bytes(service, index).await;
    sqlx::query("UPDATE audit_entries SET entry = $1 WHERE idx = $2")
        .bind(bytes)
        .bind(index as i64)
        .execute(service.api.log().store().database().pool())
        .await
        .unwrap();
}

/// Rewrites entry `index`'s bytes and, to match them, the leaf hash stored beside them.
async fn rewrite_entry_and_leaf(service: &RunningService, backend: TestBackend, index: u64) {
    unprotect(service, backend).await;
    let bytes = changed_bytes(service, index).await;
    let leaf = leaf_hash(&bytes).to_vec();
    sqlx::query("UPDATE audit_entries SET entry = $1, leaf_hash = $2 WHERE idx = $3")
        .bind(bytes)
        .bind(leaf)
        .bind(index as i64)
        .execute(service.api.log().store().database().pool())
        .await
        .unwrap();
}

fn inclusion(index: u64) -> GetInclusionProofRequest {
    GetInclusionProofRequest {
        tree_size: 0,
        entry: Some(get_inclusion_proof_request::Entry::Index(index)),
    }
}

fn assert_refused(status: &tonic::Status, index: u64) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains(&format!("entry {index} "))
            && status.message().contains("quarantined"),
        "{}",
        status.message()
    );
}

async fn the_scrub_finds_a_row_changed_in_the_database_and_names_its_index(backend: TestBackend) {
    let Some(deployment) = Deployment::create(backend).await else {
        return;
    };
    let service = spawn(&settings(&deployment, NOT_AGAIN, 1000)).await;
    for _ in 0..3 {
        append(&deployment, &service, 4).await;
    }
    let integrity = service.api.integrity().clone();
    assert_eq!(integrity.scrub_pass(5).await.unwrap(), Vec::new());
    let progress = integrity.progress().await.unwrap();
    assert_eq!(progress.next_index, progress.pass_end);
    assert!(progress.pass_end >= 12, "{progress:?}");
    let mut supervisor = user(&deployment, &service, "granskare-ivo", "ivo").await;
    let mut officer = user(&deployment, &service, "granskare-bollnas", BOLLNAS).await;
    supervisor.get_inclusion_proof(inclusion(3)).await.unwrap();

    // Entry 3 rewritten in the database: the next pass names it, and quarantines it, with an
    // ERROR line naming its index (the scrub is driven from this thread, where it logs).
    rewrite_entry(&service, backend, 3).await;
    let errors = ErrorLines::default();
    let found = {
        let _capture = tracing::subscriber::set_default(errors.clone());
        integrity.scrub_pass(5).await.unwrap()
    };
    assert_eq!(found, vec![(3, Finding::BytesChanged)]);
    let lines = errors.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("index=3 ") && lines[0].contains("entry 3 was changed in the database"),
        "{}",
        lines[0]
    );
    assert_eq!(integrity.failures(), 1);
    let quarantined = integrity.quarantined().await.unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].index, 3);
    assert!(quarantined[0].finding.contains("no longer hash"));

    // Every reader is refused the entry, with its index; the others are served.
    let refused = supervisor
        .get_inclusion_proof(inclusion(3))
        .await
        .unwrap_err();
    assert_refused(&refused, 3);
    let mut disclosure = deployment.service_client(&service, "disclosure").await;
    let refused = disclosure
        .get_inclusion_proof(inclusion(3))
        .await
        .unwrap_err();
    assert_refused(&refused, 3);
    let proof = supervisor
        .get_inclusion_proof(inclusion(4))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proof.index, 4);
    let refused = officer
        .query(QueryRequest {
            organisation: BOLLNAS.into(),
            page_size: 100,
            ..QueryRequest::default()
        })
        .await
        .unwrap_err();
    assert_refused(&refused, 3);
    let refused = supervisor
        .export(ExportRequest { tree_size: 0 })
        .await
        .unwrap_err();
    assert_refused(&refused, 3);

    // Found again it is not counted again; the mark stays.
    assert_eq!(
        integrity.scrub_pass(5).await.unwrap(),
        vec![(3, Finding::BytesChanged)]
    );
    assert_eq!(integrity.failures(), 1);

    // Rewriting the stored leaf hash to match the new bytes hides nothing.
    rewrite_entry_and_leaf(&service, backend, 6).await;
    assert_eq!(
        integrity.scrub_pass(1000).await.unwrap(),
        vec![(3, Finding::BytesChanged), (6, Finding::BytesChanged)]
    );
    assert_eq!(integrity.failures(), 2);
    let indices: Vec<u64> = integrity
        .quarantined()
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.index)
        .collect();
    assert_eq!(indices, vec![3, 6]);

    // A query whose answer skips a quarantined entry is served: the first and third of three
    // entries concern the person, the second does not and is quarantined.
    let number =
        tryggdel_domain::testing::personnummer_from(time::macros::date!(1988 - 04 - 12), 234);
    let reference = deployment
        .person_key
        .reference(&IdentityNumber::parse(&number, time::macros::date!(2026 - 11 - 22)).unwrap())
        .to_string();
    let mut client = deployment.service_client(&service, "disclosure").await;
    let appended = client
        .append(AppendRequest {
            events: vec![
                event("disclosure.approved", Some(reference.clone())),
                event("disclosure.approved", None),
                event("disclosure.approved", Some(reference)),
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let [first, second, third] = [0, 1, 2].map(|i| appended[i].index);
    assert_eq!((second, third), (first + 1, first + 2));
    rewrite_entry(&service, backend, second).await;
    integrity.scrub_pass(1000).await.unwrap();
    let quarantined: Vec<u64> = integrity
        .quarantined()
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.index)
        .collect();
    assert_eq!(quarantined, vec![3, 6, second]);
    let answer = officer
        .query(QueryRequest {
            organisation: BOLLNAS.into(),
            person_identity_number: number,
            page_size: 100,
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let served: Vec<u64> = answer.entries.iter().map(|entry| entry.index).collect();
    assert_eq!(served, vec![first, third]);
    service.stop().await.unwrap();
    deployment.database.remove().await;
}

async fn the_background_scrub_goes_on_after_a_restart_from_where_it_ended(backend: TestBackend) {
    let Some(deployment) = Deployment::create(backend).await else {
        return;
    };
    let service = spawn(&settings(&deployment, NOT_AGAIN, 1000)).await;
    append(&deployment, &service, 10).await;
    // The pass begun at start covered the empty log; this one reads entries 0 to 3 of 10.
    let integrity = service.api.integrity().clone();
    wait_for(|| async { integrity.progress().await.unwrap().passes >= 1 }).await;
    let report = integrity.scrub_batch(4).await.unwrap();
    assert_eq!((report.from, report.until), (0, 4));
    assert!(!report.pass_complete);
    // One entry behind where the scrub stands is changed, and one ahead of it.
    rewrite_entry(&service, backend, 2).await;
    rewrite_entry(&service, backend, 7).await;
    service.stop().await.unwrap();

    // Started again, the service's scrub goes on from entry 4 in batches of 3 to the end of
    // the pass, finding entry 7 alone, without anyone asking.
    let service = spawn(&settings(&deployment, NOT_AGAIN, 3)).await;
    let integrity = service.api.integrity().clone();
    wait_for(|| async { integrity.progress().await.unwrap().passes >= 2 }).await;
    let progress = integrity.progress().await.unwrap();
    assert_eq!(
        progress,
        ScrubProgress {
            next_index: 10,
            pass_end: 10,
            passes: 2
        }
    );
    let indices: Vec<u64> = integrity
        .quarantined()
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.index)
        .collect();
    assert_eq!(indices, vec![7]);
    assert_eq!(integrity.failures(), 1);
    let mut supervisor = user(&deployment, &service, "granskare-ivo", "ivo").await;
    assert_refused(
        &supervisor
            .get_inclusion_proof(inclusion(7))
            .await
            .unwrap_err(),
        7,
    );
    // Entry 2, not yet found, is still served; the next pass finds it.
    supervisor.get_inclusion_proof(inclusion(2)).await.unwrap();
    let found = integrity.scrub_pass(1000).await.unwrap();
    assert_eq!(
        found,
        vec![(2, Finding::BytesChanged), (7, Finding::BytesChanged)]
    );
    assert_refused(
        &supervisor
            .get_inclusion_proof(inclusion(2))
            .await
            .unwrap_err(),
        2,
    );
    service.stop().await.unwrap();
    deployment.database.remove().await;
}

/// The ERROR events logged while it is the thread's subscriber, each as one line of its
/// fields (`name=value`, the message last).
#[derive(Clone, Default)]
struct ErrorLines(Arc<Mutex<Vec<String>>>);

impl ErrorLines {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// The fields of one event.
#[derive(Default)]
struct Fields {
    named: String,
    message: String,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.named.push_str(&format!("{}={value:?} ", field.name()));
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.named.push_str(&format!("{}={value} ", field.name()));
    }
}

impl tracing::Subscriber for ErrorLines {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() == tracing::Level::ERROR
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push(format!("{}{}", fields.named, fields.message));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Waits, a bounded number of times, for `condition`.
async fn wait_for<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the scrub did not get there within 5 s");
}

on_both_backends!(
    the_scrub_finds_a_row_changed_in_the_database_and_names_its_index,
    the_background_scrub_goes_on_after_a_restart_from_where_it_ended
);
