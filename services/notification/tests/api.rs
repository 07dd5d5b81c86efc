//! Integration tests: the real notification server on 127.0.0.1:0 with real mTLS and real
//! tokens, next to a real audit service, on SQLite and on PostgreSQL (when
//! `TRYGGDEL_TEST_POSTGRES_URL` is set; CI requires it). Waits are bounded polls, never
//! sleeps taken as proof.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::Code;
use tonic::Streaming;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::{Role, TokenRequest};
use tryggdel_domain::{Directory, LegalRegistry, PolicePayload, receipt_key_id};
use tryggdel_notification::{RunningService, Settings, verify_receipt};
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;
use tryggdel_proto::notification::v1::*;
use tryggdel_system::testing::{bind_with_identity, fast_relay, test_system};
use tryggdel_system::{BoundSystem, Service};
use tryggdel_test_support::{
    BearerInterceptor, TestBackend, TestDatabase, TestIdentity, acknowledge, decision_maker_of,
    escalation_rounds,
};

type Client = NotificationServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const BOLLNAS: &str = "bollnas-kommun";
const JONKOPING: &str = "jonkoping-kommun";
const POLICE: &str = "polisen";
/// Bollnäs (2183, county 21) is served by region Mitt.
const MITT: &str = "mitt";
/// Jönköping (0680, county 06) is served by region Öst.
const OST: &str = "ost";

/// The keyed references a delivery in these tests names (never identity numbers).
const SUBJECT_REF: &str =
    "hmac-sha256:1111111111111111111111111111111111111111111111111111111111111111";
const VICTIM_REF: &str =
    "hmac-sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// How fast deadlines pass in a test.
#[derive(Clone, Copy)]
struct Timing {
    urgent_deadline: Duration,
    escalation_repeat: Duration,
    deadline_check_interval: Duration,
}

impl Timing {
    /// Nothing falls due while a test runs.
    fn relaxed() -> Timing {
        Timing {
            urgent_deadline: Duration::from_secs(3600),
            escalation_repeat: Duration::from_secs(3600),
            deadline_check_interval: Duration::from_secs(3600),
        }
    }

    fn fast() -> Timing {
        Timing {
            urgent_deadline: Duration::from_millis(200),
            escalation_repeat: Duration::from_millis(200),
            deadline_check_interval: Duration::from_millis(50),
        }
    }
}

struct Harness {
    identity: TestIdentity,
    registry: Arc<LegalRegistry>,
    directory: Arc<Directory>,
    settings: Settings,
    /// None while a test has the service stopped.
    service: Option<RunningService>,
    /// None while a test has the audit service stopped.
    audit: Option<tryggdel_audit::RunningService>,
    audit_address: std::net::SocketAddr,
    database: TestDatabase,
    audit_database: TestDatabase,
    /// The development data directory the settings were made from.
    _data: tempfile::TempDir,
}

impl Harness {
    /// The audit and notification services as the system builder makes them (from a
    /// development data directory, each on a fresh database), with `timing`. The hop back to
    /// the disclosure service is tested with all three services in tests/; here the disclosure
    /// service's address refuses connections and receipts wait in the outbox.
    async fn start(backend: TestBackend, timing: Timing) -> Option<Harness> {
        let database = TestDatabase::create(backend).await?;
        let audit_database = TestDatabase::create(backend).await?;
        let data = tempfile::tempdir().unwrap();
        let builder = test_system(data.path())
            .database(Service::Audit, audit_database.url.clone())
            .database(Service::Notification, database.url.clone())
            .notification(move |settings| {
                settings.urgent_deadline = timing.urgent_deadline;
                settings.ordinary_deadline = Duration::from_secs(24 * 3600);
                settings.escalation_repeat = timing.escalation_repeat;
                settings.deadline_check_interval = timing.deadline_check_interval;
                settings.relay = fast_relay();
            });
        let (identity, bound) = bind_with_identity(builder).await.unwrap();
        let BoundSystem {
            listeners,
            settings: system,
            ..
        } = bound;
        let audit = tryggdel_audit::spawn_on(&system.audit, listeners.audit)
            .await
            .unwrap();
        let service = tryggdel_notification::spawn_on(&system.notification, listeners.notification)
            .await
            .unwrap();
        Some(Harness {
            identity,
            registry: system.disclosure.registry.clone(),
            directory: system.notification.directory.clone(),
            settings: system.notification,
            service: Some(service),
            audit_address: audit.local_addr,
            audit: Some(audit),
            database,
            audit_database,
            _data: data,
        })
    }

    fn service(&self) -> &RunningService {
        self.service.as_ref().expect("the service is running")
    }

    /// Stops the service and starts it again on the same database.
    async fn restart(&mut self) {
        self.service.take().unwrap().stop().await.unwrap();
        self.service = Some(
            tryggdel_notification::spawn(&self.settings, "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap(),
        );
    }

    /// The disclosure service, as the notification service sees it (service certificate).
    async fn sender(&self) -> NotificationServiceClient<Channel> {
        self.service_client("disclosure").await
    }

    async fn service_client(&self, name: &str) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(
            self.identity
                .service_channel(self.service().local_addr, name)
                .await,
        )
    }

    async fn client_with_token(&self, organisation: &str, token: &str) -> Client {
        let channel = self
            .identity
            .channel(self.service().local_addr, organisation)
            .await;
        NotificationServiceClient::with_interceptor(channel, BearerInterceptor::new(token))
    }

    async fn user(&self, user: &str, organisation: &str, roles: &[Role]) -> Client {
        let token = self.identity.token(user, organisation, roles);
        self.client_with_token(organisation, &token).await
    }

    /// A police officer whose token names `region` (or none).
    async fn officer(&self, region: Option<&str>) -> Client {
        let token = self
            .identity
            .signer()
            .mint(&TokenRequest {
                user_id: format!("polis-{}-1", region.unwrap_or("utan-region")),
                organisation: POLICE.into(),
                unit: Some("Regionledningscentralen".into()),
                roles: vec![Role::PoliceOfficer],
                police_region: region.map(str::to_owned),
                display_name: None,
                valid_for: Duration::from_secs(600),
            })
            .unwrap();
        self.client_with_token(POLICE, &token).await
    }

    async fn caseworker(&self, organisation: &str) -> Client {
        let token = self.identity.role_token(organisation, Role::Caseworker);
        self.client_with_token(organisation, &token).await
    }

    async fn decision_maker(&self, organisation: &str) -> Client {
        let token = self.identity.role_token(organisation, Role::DecisionMaker);
        self.client_with_token(organisation, &token).await
    }

    /// The canonical payload of a disclosure from `organisation`, as approval binds it.
    fn payload(
        &self,
        disclosure_id: &str,
        organisation: &str,
        urgent: bool,
        risk: &str,
    ) -> PolicePayload {
        support::police_payload(
            &self.registry,
            &self.directory,
            disclosure_id,
            organisation,
            urgent,
            risk,
        )
    }

    /// An approved disclosure of `organisation` ready to Deliver.
    fn approved(&self, organisation: &str, urgent: bool) -> DeliverRequest {
        let disclosure_id = uuid::Uuid::now_v7().to_string();
        let payload = self.payload(
            &disclosure_id,
            organisation,
            urgent,
            "Hot om att skada den närstående vid hennes flytt.",
        );
        DeliverRequest {
            disclosure_id,
            organisation: organisation.to_owned(),
            state: "approved".into(),
            urgent,
            payload: payload.canonical_bytes(),
            payload_sha256: payload.sha256_hex(),
            approved_by: decision_maker_of(organisation),
            approved_at_unix_ms: 1_795_341_600_000,
            legal_basis_id: "OSL-10-18c".into(),
            registry_version: self.registry.registry_version().to_owned(),
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            person_refs: vec![SUBJECT_REF.to_owned(), VICTIM_REF.to_owned()],
        }
    }

    /// Delivers an approved disclosure of `organisation`; returns the request and the answer.
    async fn deliver(&self, organisation: &str, urgent: bool) -> (DeliverRequest, DeliverResponse) {
        let request = self.approved(organisation, urgent);
        let response = self
            .sender()
            .await
            .deliver(request.clone())
            .await
            .unwrap()
            .into_inner();
        (request, response)
    }

    /// Waits (bounded) until every outbox event is in the audit log.
    async fn wait_for_relay(&self) {
        let store = self.service().api.store();
        eventually("the outbox to reach the audit log", || async {
            (store.audit_backlog().await.unwrap() == 0).then_some(())
        })
        .await;
    }

    /// The audit log's entries about one disclosure, as JSON, read by IVO's compliance
    /// officer.
    async fn audit_entries(&self, disclosure_id: &str) -> Vec<serde_json::Value> {
        self.identity
            .audit_entries(self.audit_address, disclosure_id)
            .await
    }

    async fn stop(self) {
        if let Some(service) = self.service {
            service.stop().await.unwrap();
        }
        if let Some(audit) = self.audit {
            audit.stop().await.unwrap();
        }
        self.database.remove().await;
        self.audit_database.remove().await;
    }
}

/// Polls `probe` every 25 ms until it gives a value; fails after about 30 s.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..1200 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The next delivery on a subscription; fails if none comes within 15 s.
async fn next(stream: &mut Streaming<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(15), stream.message())
        .await
        .expect("no delivery arrived within 15 s")
        .expect("the subscription failed")
        .expect("the subscription ended")
}

async fn subscribe(client: &mut Client, cursor: u64) -> Streaming<Delivery> {
    client
        .subscribe(SubscribeRequest { cursor })
        .await
        .unwrap()
        .into_inner()
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, naming: &str) {
    let status = result.expect_err("the call should have been refused");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(
        status.message().contains(naming),
        "{:?} does not name {naming}",
        status.message()
    );
}

async fn a_delivery_reaches_only_its_region(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let mut mitt = harness.officer(Some(MITT)).await;
    let mut ost = harness.officer(Some(OST)).await;
    let mut mitt_stream = subscribe(&mut mitt, 0).await;
    let mut ost_stream = subscribe(&mut ost, 0).await;

    let (bollnas, delivered) = harness.deliver(BOLLNAS, false).await;
    assert_eq!(delivered.police_region, MITT);
    assert_eq!(delivered.sequence, 1);
    assert!(!delivered.duplicate);
    let received = next(&mut mitt_stream).await;
    assert_eq!(received.disclosure_id, bollnas.disclosure_id);
    assert_eq!(received.sequence, 1);
    assert_eq!(received.police_region, MITT);
    assert_eq!(received.organisation, BOLLNAS);
    assert_eq!(received.payload, bollnas.payload);
    assert_eq!(received.payload_sha256, bollnas.payload_sha256);
    assert!(received.deadline_unix_ms > received.delivered_at_unix_ms);
    assert!(received.receipt.is_none());

    // Region Öst's stream is in sequence order: if Bollnäs had reached it, it would come
    // before Jönköping's own delivery.
    let (jonkoping, delivered) = harness.deliver(JONKOPING, false).await;
    assert_eq!(delivered.police_region, OST);
    assert_eq!(delivered.sequence, 1, "sequences are per region");
    let received = next(&mut ost_stream).await;
    assert_eq!(received.disclosure_id, jonkoping.disclosure_id);
    assert_eq!(received.police_region, OST);

    // And Mitt's next is its own second delivery, not Jönköping's.
    let (second, delivered) = harness.deliver(BOLLNAS, true).await;
    assert_eq!(delivered.sequence, 2);
    let received = next(&mut mitt_stream).await;
    assert_eq!(received.disclosure_id, second.disclosure_id);
    assert!(received.urgent);

    // The pending lists and direct lookups agree.
    let pending = ost
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = pending
        .deliveries
        .iter()
        .map(|delivery| delivery.disclosure_id.as_str())
        .collect();
    assert_eq!(ids, [jonkoping.disclosure_id.as_str()]);
    assert_refused(
        ost.acknowledge(AcknowledgeRequest {
            disclosure_id: bollnas.disclosure_id.clone(),
            police_reference: "4000-K1-26".into(),
        })
        .await,
        Code::NotFound,
        "not found",
    );

    // A new subscriber of Mitt replays both unacknowledged deliveries in order.
    let mut replay = subscribe(&mut mitt, 0).await;
    assert_eq!(next(&mut replay).await.disclosure_id, bollnas.disclosure_id);
    assert_eq!(next(&mut replay).await.disclosure_id, second.disclosure_id);
    harness.stop().await;
}

async fn a_reconnecting_subscriber_misses_nothing_and_gets_nothing_twice(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let mut officer = harness.officer(Some(MITT)).await;
    let mut stream = subscribe(&mut officer, 0).await;
    let (first, _) = harness.deliver(BOLLNAS, false).await;
    let received = next(&mut stream).await;
    assert_eq!(received.disclosure_id, first.disclosure_id);
    let cursor = received.sequence;
    // The officer acknowledges the first one, then loses the connection.
    acknowledge(&mut officer, &first.disclosure_id, "5000-K100-26")
        .await
        .unwrap();
    drop(stream);

    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(harness.deliver(BOLLNAS, false).await.0.disclosure_id);
    }
    let mut stream = subscribe(&mut officer, cursor).await;
    for (expected_sequence, expected_id) in (cursor + 1..).zip(&missed) {
        let received = next(&mut stream).await;
        assert_eq!(received.sequence, expected_sequence);
        assert_eq!(&received.disclosure_id, expected_id);
    }
    // Live again: the next delivery is the next item, so nothing was queued twice.
    let (live, delivered) = harness.deliver(BOLLNAS, false).await;
    let received = next(&mut stream).await;
    assert_eq!(received.disclosure_id, live.disclosure_id);
    assert_eq!(received.sequence, delivered.sequence);
    assert_eq!(received.sequence, cursor + 4);

    // Reconnecting after everything replays only what is after the cursor, acknowledged or
    // not; cursor 0 replays only the unacknowledged ones.
    let mut again = subscribe(&mut officer, cursor + 3).await;
    assert_eq!(next(&mut again).await.disclosure_id, live.disclosure_id);
    let mut from_start = subscribe(&mut officer, 0).await;
    assert_eq!(next(&mut from_start).await.disclosure_id, missed[0]);

    assert_refused(
        officer.subscribe(SubscribeRequest { cursor: 99 }).await,
        Code::InvalidArgument,
        "cursor",
    );
    // Stopping the service ends open subscriptions (clients reconnect with their cursor).
    harness.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(15), again.message())
        .await
        .expect("the subscription ended with the service");
    assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");
}

async fn concurrent_deliveries_reach_every_subscriber_in_order(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let harness = Arc::new(harness);
    let mut officer = harness.officer(Some(MITT)).await;
    let mut reading = subscribe(&mut officer, 0).await;
    // This subscriber reads nothing until every delivery is made: it must not hold them up.
    // (Falling behind the live broadcast itself is tested in the subscription module: here
    // the transport's flow-control windows buffer more than the test delivers.)
    let mut idle = subscribe(&mut officer, 0).await;

    const TASKS: usize = 8;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let harness = harness.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = harness.sender().await;
            let mut sequences = Vec::new();
            for _ in 0..EACH {
                let request = harness.approved(BOLLNAS, false);
                let response = sender.deliver(request).await.unwrap().into_inner();
                sequences.push(response.sequence);
            }
            sequences
        }));
    }
    let mut received = Vec::new();
    for _ in 0..TASKS * EACH {
        received.push(next(&mut reading).await.sequence);
    }
    let mut assigned: Vec<u64> = Vec::new();
    for task in tasks {
        assigned.extend(
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assigned.sort_unstable();
    let expected: Vec<u64> = (1..=(TASKS * EACH) as u64).collect();
    assert_eq!(assigned, expected, "gap-free, unique sequences");
    assert_eq!(received, expected, "every delivery once, in order");
    let mut idle_received = Vec::new();
    for _ in 0..TASKS * EACH {
        idle_received.push(next(&mut idle).await.sequence);
    }
    assert_eq!(idle_received, expected);
    drop((reading, idle));
    Arc::try_unwrap(harness).ok().unwrap().stop().await;
}

async fn deliver_refuses_what_it_must(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let mut sender = harness.sender().await;

    let mut tampered = harness.approved(BOLLNAS, false);
    overwrite_first(&mut tampered.payload, b"Hot ", b'h');
    // Valid JSON with a matching hash, but not the canonical bytes approval binds.
    let mut pretty = harness.approved(BOLLNAS, false);
    let value: serde_json::Value = serde_json::from_slice(&pretty.payload).unwrap();
    pretty.payload = serde_json::to_vec_pretty(&value).unwrap();
    pretty.payload_sha256 = sha256_hex(&pretty.payload);
    let approved = || harness.approved(BOLLNAS, false);
    let refusals = [
        (tampered, Code::InvalidArgument, "payload_sha256"),
        (
            DeliverRequest {
                state: "submitted".into(),
                ..approved()
            },
            Code::FailedPrecondition,
            "approved",
        ),
        (pretty, Code::InvalidArgument, "payload"),
        // A payload made for another disclosure.
        (
            DeliverRequest {
                disclosure_id: uuid::Uuid::now_v7().to_string(),
                ..approved()
            },
            Code::InvalidArgument,
            "payload",
        ),
        (
            DeliverRequest {
                disclosure_id: "not-a-uuid".into(),
                ..approved()
            },
            Code::InvalidArgument,
            "disclosure_id",
        ),
        (
            DeliverRequest {
                organisation: "okand-kommun".into(),
                ..approved()
            },
            Code::InvalidArgument,
            "organisation",
        ),
        (
            DeliverRequest {
                organisation: POLICE.into(),
                ..approved()
            },
            Code::InvalidArgument,
            "organisation",
        ),
    ];
    for (request, code, naming) in refusals {
        assert_refused(sender.deliver(request).await, code, naming);
    }

    // Idempotent by disclosure id: the same delivery again is the first one.
    let request = harness.approved(BOLLNAS, true);
    let first = sender.deliver(request.clone()).await.unwrap().into_inner();
    let again = sender.deliver(request.clone()).await.unwrap().into_inner();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(again.police_region, first.police_region);
    // The same id with another (valid, approved) payload is refused.
    let other = harness.payload(
        &request.disclosure_id,
        BOLLNAS,
        true,
        "En annan riskbeskrivning.",
    );
    let changed = DeliverRequest {
        payload: other.canonical_bytes(),
        payload_sha256: other.sha256_hex(),
        ..request.clone()
    };
    assert_refused(
        sender.deliver(changed).await,
        Code::AlreadyExists,
        "payload_sha256",
    );

    // Concurrent Delivers of one disclosure: one is the delivery, the others its duplicates.
    let racing = harness.approved(BOLLNAS, false);
    let calls = (0..4).map(|_| {
        let mut sender = sender.clone();
        let racing = racing.clone();
        async move { sender.deliver(racing).await.unwrap().into_inner() }
    });
    let answers = futures::future::join_all(calls).await;
    assert_eq!(answers.iter().filter(|answer| !answer.duplicate).count(), 1);
    assert!(
        answers
            .iter()
            .all(|answer| answer.sequence == answers[0].sequence)
    );

    // Users cannot deliver, not even with a valid token; nor can services not allow-listed.
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    assert_refused(
        caseworker.deliver(harness.approved(BOLLNAS, false)).await,
        Code::PermissionDenied,
        "service certificate",
    );
    let mut audit = harness.service_client("audit").await;
    assert_refused(
        audit.deliver(harness.approved(BOLLNAS, false)).await,
        Code::PermissionDenied,
        "audit",
    );

    // Only the two accepted deliveries exist, with sequences 1 and 2.
    let mut officer = harness.officer(Some(MITT)).await;
    let pending = officer
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<(u64, &str)> = pending
        .deliveries
        .iter()
        .map(|delivery| (delivery.sequence, delivery.disclosure_id.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            (1, request.disclosure_id.as_str()),
            (2, racing.disclosure_id.as_str())
        ]
    );
    harness.stop().await;
}

/// Sets the first byte of the first `needle` in `bytes` to `to` (which must be found).
fn overwrite_first(bytes: &mut [u8], needle: &[u8], to: u8) {
    let position = bytes
        .windows(needle.len())
        .position(|window| window == needle)
        .unwrap();
    bytes[position] = to;
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn acknowledging_gives_one_signed_receipt(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let (request, _) = harness.deliver(BOLLNAS, true).await;
    let acknowledge = |reference: &str| AcknowledgeRequest {
        disclosure_id: request.disclosure_id.clone(),
        police_reference: reference.to_owned(),
    };

    // Another region's officer is told it does not exist; others may not acknowledge.
    let mut ost = harness.officer(Some(OST)).await;
    assert_refused(
        ost.acknowledge(acknowledge("4000-K1-26")).await,
        Code::NotFound,
        "not found",
    );
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    assert_refused(
        caseworker.acknowledge(acknowledge("4000-K1-26")).await,
        Code::PermissionDenied,
        "police_officer",
    );
    let mut no_region = harness.officer(None).await;
    assert_refused(
        no_region.acknowledge(acknowledge("4000-K1-26")).await,
        Code::PermissionDenied,
        "region",
    );

    let mut officer = harness.officer(Some(MITT)).await;
    assert_refused(
        officer.acknowledge(acknowledge("")).await,
        Code::InvalidArgument,
        "police_reference",
    );
    assert_refused(
        officer.acknowledge(acknowledge(&"K".repeat(65))).await,
        Code::InvalidArgument,
        "police_reference",
    );
    assert_refused(
        officer.acknowledge(acknowledge("5000-\u{1b}K1")).await,
        Code::InvalidArgument,
        "police_reference",
    );
    assert_refused(
        officer
            .acknowledge(AcknowledgeRequest {
                disclosure_id: uuid::Uuid::now_v7().to_string(),
                police_reference: "5000-K1-26".into(),
            })
            .await,
        Code::NotFound,
        "not found",
    );

    let receipt = officer
        .acknowledge(acknowledge("5000-K123456-26"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.disclosure_id, request.disclosure_id);
    assert_eq!(receipt.police_reference, "5000-K123456-26");
    assert_eq!(receipt.acknowledged_by, "polis-mitt-1");
    assert_eq!(receipt.police_region, MITT);
    assert_eq!(receipt.payload_sha256, request.payload_sha256);
    let key = harness.settings.receipt_signing_key.verifying_key();
    assert_eq!(receipt.key_id, receipt_key_id(&key));
    let statement = verify_receipt(&receipt, &key).unwrap();
    assert_eq!(statement.police_reference, "5000-K123456-26");
    assert_eq!(
        statement.acknowledged_at_unix_ms,
        receipt.acknowledged_at_unix_ms
    );
    let json: serde_json::Value = serde_json::from_slice(&receipt.statement).unwrap();
    assert_eq!(json["format"], "tryggdel.receipt/1");
    assert!(json["acknowledged_at"].as_str().unwrap().ends_with('Z'));
    // The disclosure service verifies the same bytes with the domain's verifier.
    tryggdel_domain::verify_receipt(
        &receipt.statement,
        &receipt.signature,
        &receipt.key_id,
        &key,
    )
    .unwrap();

    // One changed byte of the statement breaks it.
    let mut tampered = receipt.clone();
    overwrite_first(&mut tampered.statement, b"K123456", b'X');
    assert!(verify_receipt(&tampered, &key).is_err());

    // Acknowledging again, even with another reference, gives the first receipt unchanged.
    let again = officer
        .acknowledge(acknowledge("5000-K999999-26"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, receipt);

    // Two officers acknowledging at once get one and the same receipt.
    let (racing, _) = harness.deliver(BOLLNAS, false).await;
    let mut colleague = harness.officer(Some(MITT)).await;
    let (mine, theirs) = tokio::join!(
        officer.acknowledge(AcknowledgeRequest {
            disclosure_id: racing.disclosure_id.clone(),
            police_reference: "5000-K1-26".into(),
        }),
        colleague.acknowledge(AcknowledgeRequest {
            disclosure_id: racing.disclosure_id.clone(),
            police_reference: "5000-K2-26".into(),
        }),
    );
    let (mine, theirs) = (mine.unwrap().into_inner(), theirs.unwrap().into_inner());
    assert_eq!(mine, theirs);
    verify_receipt(&mine, &key).unwrap();

    // It is no longer pending.
    let pending = officer
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(pending.deliveries.is_empty());

    // The disclosing organisation sees who received it and when; nobody else sees anything.
    let status = caseworker
        .get_delivery_status(GetDeliveryStatusRequest {
            disclosure_id: request.disclosure_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.police_region, MITT);
    assert!(status.delivered_at_unix_ms > 0);
    assert_eq!(status.receipt.as_ref(), Some(&receipt));
    assert!(!status.overdue);
    assert_eq!(status.escalations, 0);
    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    decision_maker
        .get_delivery_status(GetDeliveryStatusRequest {
            disclosure_id: request.disclosure_id.clone(),
        })
        .await
        .unwrap();
    let mut other = harness.caseworker(JONKOPING).await;
    assert_refused(
        other
            .get_delivery_status(GetDeliveryStatusRequest {
                disclosure_id: request.disclosure_id.clone(),
            })
            .await,
        Code::NotFound,
        "not found",
    );
    harness.stop().await;
}

async fn overdue_deliveries_escalate_and_timers_survive_a_restart(backend: TestBackend) {
    let Some(mut harness) = Harness::start(backend, Timing::fast()).await else {
        return;
    };
    let (overdue, _) = harness.deliver(BOLLNAS, true).await;
    let (acknowledged, _) = harness.deliver(BOLLNAS, true).await;
    let mut officer = harness.officer(Some(MITT)).await;
    acknowledge(&mut officer, &acknowledged.disclosure_id, "5000-K2-26")
        .await
        .unwrap();
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let status_of = |id: &str| GetDeliveryStatusRequest {
        disclosure_id: id.to_owned(),
    };
    // If the acknowledgement came after the deadline it may have escalated before; it must
    // not escalate again.
    let escalated_before_receipt = caseworker
        .get_delivery_status(status_of(&acknowledged.disclosure_id))
        .await
        .unwrap()
        .into_inner()
        .escalations;

    let decision_maker = harness.decision_maker(BOLLNAS).await;
    let rounds =
        |mut client: Client, id: String| async move { escalation_rounds(&mut client, &id).await };
    let seen = eventually("round 2 of the escalation", || {
        let client = decision_maker.clone();
        let id = overdue.disclosure_id.clone();
        async move {
            let seen = rounds(client, id).await;
            (seen.len() >= 2).then_some(seen)
        }
    })
    .await;
    assert_eq!(&seen[..2], [1, 2]);
    let listed = decision_maker
        .clone()
        .list_escalations(ListEscalationsRequest {
            disclosure_id: overdue.disclosure_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .escalations;
    assert!(listed.iter().all(|escalation| escalation.urgent
        && escalation.organisation == BOLLNAS
        && escalation.police_region == MITT
        && escalation.raised_at_unix_ms >= escalation.deadline_unix_ms));

    // The timers live in the database: after a restart they still fire.
    harness.restart().await;
    let decision_maker = harness.decision_maker(BOLLNAS).await;
    let seen_before_restart = seen.len();
    let seen = eventually("an escalation after the restart", || {
        let client = decision_maker.clone();
        let id = overdue.disclosure_id.clone();
        async move {
            let seen = rounds(client, id).await;
            (seen.len() >= seen_before_restart + 2).then_some(seen)
        }
    })
    .await;
    let expected: Vec<u32> = (1..=seen.len() as u32).collect();
    assert_eq!(seen, expected, "one escalation per round, rounds in order");

    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let status = caseworker
        .get_delivery_status(status_of(&overdue.disclosure_id))
        .await
        .unwrap()
        .into_inner();
    assert!(status.overdue);
    assert!(status.escalations as usize >= seen.len());
    // Several repeat intervals passed since the acknowledgement: it did not escalate again.
    let status = caseworker
        .get_delivery_status(status_of(&acknowledged.disclosure_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.escalations, escalated_before_receipt);
    // Without a disclosure id: the open escalations, i.e. not the acknowledged delivery's.
    let open = decision_maker
        .clone()
        .list_escalations(ListEscalationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .escalations;
    assert!(!open.is_empty());
    assert!(
        open.iter()
            .all(|escalation| escalation.disclosure_id == overdue.disclosure_id)
    );

    // Only the disclosing organisation's decision makers and compliance officers see them.
    assert_refused(
        harness
            .decision_maker(JONKOPING)
            .await
            .list_escalations(ListEscalationsRequest {
                disclosure_id: overdue.disclosure_id.clone(),
            })
            .await,
        Code::NotFound,
        "not found",
    );
    assert_refused(
        caseworker
            .list_escalations(ListEscalationsRequest::default())
            .await,
        Code::PermissionDenied,
        "decision_maker",
    );
    harness
        .user("dso-bollnas", BOLLNAS, &[Role::ComplianceOfficer])
        .await
        .list_escalations(ListEscalationsRequest::default())
        .await
        .unwrap();

    // The escalations are in the audit log, without an actor.
    harness.wait_for_relay().await;
    let entries = harness.audit_entries(&overdue.disclosure_id).await;
    let escalated: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|entry| entry["action"] == "notification.escalated")
        .collect();
    assert!(escalated.len() >= 2);
    assert_eq!(escalated[0]["actor"]["user_id"], "");
    assert_eq!(escalated[0]["details"]["round"], "1");
    assert_eq!(escalated[0]["recipient"], "polisen/mitt");
    harness.stop().await;
}

async fn events_reach_the_audit_log(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let (request, delivered) = harness.deliver(BOLLNAS, false).await;
    let mut officer = harness.officer(Some(MITT)).await;
    let receipt = acknowledge(&mut officer, &request.disclosure_id, "5000-K77-26")
        .await
        .unwrap();
    officer
        .ask_follow_up(AskFollowUpRequest {
            disclosure_id: request.disclosure_id.clone(),
            question: "Finns det vapen i hemmet?".into(),
        })
        .await
        .unwrap();
    harness.wait_for_relay().await;

    let entries = harness.audit_entries(&request.disclosure_id).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "notification.delivered",
            "notification.acknowledged",
            "notification.follow_up_asked"
        ]
    );
    for entry in &entries {
        assert_eq!(entry["source"], "notification");
        assert_eq!(entry["organisation"], BOLLNAS);
        assert_eq!(entry["disclosure_id"], request.disclosure_id.as_str());
        assert_eq!(entry["recipient"], "polisen/mitt");
        assert_eq!(entry["purpose"]["legal_basis_id"], "OSL-10-18c");
        assert_eq!(
            entry["purpose"]["registry_version"],
            request.registry_version.as_str()
        );
        assert_eq!(entry["outcome"], "success");
    }
    let delivered_entry = &entries[0];
    assert_eq!(delivered_entry["actor"]["user_id"], "");
    assert_eq!(delivered_entry["trace_id"], request.trace_id.as_str());
    assert_eq!(
        delivered_entry["details"]["sequence"],
        delivered.sequence.to_string()
    );
    assert_eq!(
        delivered_entry["details"]["payload_sha256"],
        request.payload_sha256.as_str()
    );
    let acknowledged = &entries[1];
    assert_eq!(acknowledged["actor"]["user_id"], "polis-mitt-1");
    assert_eq!(acknowledged["actor"]["organisation"], POLICE);
    assert_eq!(acknowledged["details"]["police_reference"], "5000-K77-26");
    assert_eq!(
        acknowledged["details"]["receipt_key_id"],
        receipt.key_id.as_str()
    );
    // The question is personal data: the log names it, never quotes it.
    let asked = &entries[2];
    assert_eq!(asked["actor"]["user_id"], "polis-mitt-1");
    assert!(!asked.to_string().contains("vapen"));

    // The acknowledgement's outbox row carries what the hop back to the disclosure service
    // needs.
    let events = harness
        .service()
        .api
        .store()
        .events_of(&request.disclosure_id)
        .await
        .unwrap();
    let (_, payload) = events
        .iter()
        .find(|(event_type, _)| event_type == "notification.acknowledged")
        .unwrap();
    let payload: tryggdel_notification::store::OutboxPayload =
        serde_json::from_str(payload).unwrap();
    let carried = payload.receipt.unwrap();
    assert_eq!(carried.police_reference, "5000-K77-26");
    assert_eq!(carried.acknowledged_by, "polis-mitt-1");
    assert_eq!(
        carried.acknowledged_at_unix_ms,
        receipt.acknowledged_at_unix_ms
    );
    assert_eq!(carried.key_id, receipt.key_id);
    harness.stop().await;
}

async fn follow_up_questions_reach_only_the_disclosing_organisation(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let (request, _) = harness.deliver(BOLLNAS, false).await;
    let ask = |question: &str| AskFollowUpRequest {
        disclosure_id: request.disclosure_id.clone(),
        question: question.to_owned(),
    };
    let mut officer = harness.officer(Some(MITT)).await;
    assert_refused(
        officer.ask_follow_up(ask("  ")).await,
        Code::InvalidArgument,
        "question",
    );
    assert_refused(
        officer.ask_follow_up(ask(&"?".repeat(2001))).await,
        Code::InvalidArgument,
        "question",
    );
    assert_refused(
        harness
            .officer(Some(OST))
            .await
            .ask_follow_up(ask("Vem är kontaktperson?"))
            .await,
        Code::NotFound,
        "not found",
    );
    let asked = officer
        .ask_follow_up(ask("Finns det vapen i hemmet?\nI så fall vilka?"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(asked.asked_by, "polis-mitt-1");
    assert_eq!(asked.police_region, MITT);
    assert_eq!(asked.organisation, BOLLNAS);

    let list = ListFollowUpsRequest {
        disclosure_id: request.disclosure_id.clone(),
    };
    for mut reader in [
        harness.caseworker(BOLLNAS).await,
        harness.decision_maker(BOLLNAS).await,
    ] {
        let follow_ups = reader
            .list_follow_ups(list.clone())
            .await
            .unwrap()
            .into_inner()
            .follow_ups;
        assert_eq!(follow_ups, std::slice::from_ref(&asked));
        assert_eq!(
            follow_ups[0].question,
            "Finns det vapen i hemmet?\nI så fall vilka?"
        );
    }
    assert_refused(
        harness
            .caseworker(JONKOPING)
            .await
            .list_follow_ups(list.clone())
            .await,
        Code::NotFound,
        "not found",
    );
    assert_refused(
        officer.list_follow_ups(list.clone()).await,
        Code::PermissionDenied,
        "caseworker",
    );
    harness.stop().await;
}

async fn police_calls_need_an_officer_of_a_region(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    assert_refused(
        caseworker.subscribe(SubscribeRequest::default()).await,
        Code::PermissionDenied,
        "police_officer",
    );
    assert_refused(
        caseworker.list_pending(ListPendingRequest::default()).await,
        Code::PermissionDenied,
        "police_officer",
    );
    // A police_officer role in a municipality's token is no law-enforcement authority's.
    assert_refused(
        harness
            .user("falsk-polis", BOLLNAS, &[Role::PoliceOfficer])
            .await
            .list_pending(ListPendingRequest::default())
            .await,
        Code::PermissionDenied,
        "officers of a law-enforcement authority",
    );
    let mut no_region = harness.officer(None).await;
    assert_refused(
        no_region.subscribe(SubscribeRequest::default()).await,
        Code::PermissionDenied,
        "region",
    );
    assert_refused(
        harness
            .officer(Some("atlantis"))
            .await
            .list_pending(ListPendingRequest::default())
            .await,
        Code::PermissionDenied,
        "region",
    );
    // Without a token there is no call at all.
    let channel = harness
        .identity
        .channel(harness.service().local_addr, POLICE)
        .await;
    assert_refused(
        NotificationServiceClient::new(channel)
            .list_pending(ListPendingRequest::default())
            .await,
        Code::Unauthenticated,
        "",
    );

    // Paging of the pending list.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(harness.deliver(BOLLNAS, false).await.0.disclosure_id);
    }
    let mut officer = harness.officer(Some(MITT)).await;
    assert_refused(
        officer
            .list_pending(ListPendingRequest {
                page_size: 201,
                page_token: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "page_size",
    );
    assert_refused(
        officer
            .list_pending(ListPendingRequest {
                page_size: 2,
                page_token: "nonsense".into(),
            })
            .await,
        Code::InvalidArgument,
        "page_token",
    );
    let first = officer
        .list_pending(ListPendingRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.deliveries.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = officer
        .list_pending(ListPendingRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<String> = first
        .deliveries
        .iter()
        .chain(&second.deliveries)
        .map(|delivery| delivery.disclosure_id.clone())
        .collect();
    assert_eq!(listed, ids);
    assert!(second.next_page_token.is_empty());
    harness.stop().await;
}

/// A delivered disclosure withdrawn by its organisation: the disclosure service recalls it
/// (once), the region's subscribers get it again with the recall, ListPending lists it until
/// an officer of the region acknowledges the recall (once), the delivery itself can no longer
/// be acknowledged, and the audit log has the recall and its acknowledgement.
async fn a_recall_reaches_the_region_and_is_acknowledged_once(backend: TestBackend) {
    let Some(harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let mut officer = harness.officer(Some(MITT)).await;
    let mut stream = subscribe(&mut officer, 0).await;
    let (request, delivered) = harness.deliver(BOLLNAS, false).await;
    assert_eq!(next(&mut stream).await.sequence, delivered.sequence);
    let recall_request = RecallRequest {
        disclosure_id: request.disclosure_id.clone(),
        reason: "  Fel person angiven  ".into(),
        withdrawn_by: "handlaggare-bollnas".into(),
        withdrawn_at_unix_ms: 1_700_000_000_000,
        trace_id: String::new(),
    };

    // Only the disclosure service recalls, and only what it delivered, with a reason.
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    assert_refused(
        caseworker.recall(recall_request.clone()).await,
        Code::PermissionDenied,
        "service certificate",
    );
    let mut sender = harness.sender().await;
    assert_refused(
        sender
            .recall(RecallRequest {
                reason: " ".into(),
                ..recall_request.clone()
            })
            .await,
        Code::InvalidArgument,
        "reason",
    );
    assert_refused(
        sender
            .recall(RecallRequest {
                disclosure_id: uuid::Uuid::now_v7().to_string(),
                ..recall_request.clone()
            })
            .await,
        Code::NotFound,
        "not found",
    );
    // Nothing to acknowledge before the recall.
    assert_refused(
        officer
            .acknowledge_recall(AcknowledgeRecallRequest {
                disclosure_id: request.disclosure_id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "not been recalled",
    );

    let first = sender
        .recall(recall_request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    let again = sender
        .recall(recall_request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);

    // The subscriber gets the delivery again, with its recall.
    let pushed = next(&mut stream).await;
    assert_eq!(pushed.sequence, delivered.sequence);
    let recall = pushed.recall.unwrap();
    assert_eq!(recall.reason, "Fel person angiven");
    assert_eq!(recall.withdrawn_by, "handlaggare-bollnas");
    assert_eq!(recall.withdrawn_at_unix_ms, 1_700_000_000_000);
    assert!(recall.recalled_at_unix_ms > 0);
    assert_eq!(recall.acknowledged_by, "");

    // Listed as pending, with its recall; the delivery itself is no longer acknowledged.
    let pending = officer
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.deliveries.len(), 1);
    assert_eq!(
        pending.deliveries[0].recall.as_ref().unwrap().reason,
        "Fel person angiven"
    );
    assert_refused(
        acknowledge(&mut officer, &request.disclosure_id, "5000-K1-26").await,
        Code::FailedPrecondition,
        "recalled",
    );

    // Another region's officer is told it does not exist; the region's officer acknowledges.
    let mut ost = harness.officer(Some(OST)).await;
    let acknowledge_recall = AcknowledgeRecallRequest {
        disclosure_id: request.disclosure_id.clone(),
    };
    assert_refused(
        ost.acknowledge_recall(acknowledge_recall.clone()).await,
        Code::NotFound,
        "not found",
    );
    assert_refused(
        caseworker
            .acknowledge_recall(acknowledge_recall.clone())
            .await,
        Code::PermissionDenied,
        "police_officer",
    );
    let acknowledged = officer
        .acknowledge_recall(acknowledge_recall.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acknowledged.acknowledged_by, "polis-mitt-1");
    assert!(acknowledged.acknowledged_at_unix_ms > 0);
    assert_eq!(acknowledged.reason, "Fel person angiven");
    let twice = officer
        .acknowledge_recall(acknowledge_recall)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(twice, acknowledged);
    let pending = officer
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(pending.deliveries.is_empty());

    harness.wait_for_relay().await;
    let entries = harness.audit_entries(&request.disclosure_id).await;
    // The changes, in order (the officers' reads in between are the access log's, tested in
    // every_officer_read_is_logged_with_the_persons_and_none_while_the_log_is_down).
    let actions: Vec<&str> = entries
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .filter(|action| *action != "notification.read")
        .collect();
    assert_eq!(
        actions,
        [
            "notification.delivered",
            "notification.recalled",
            "notification.recall_acknowledged"
        ]
    );
    // The reason may name people: the log counts it, never quotes it.
    assert!(!entries[1].to_string().contains("Fel person"));
    harness.stop().await;
}

async fn every_officer_read_is_logged_with_the_persons_and_none_while_the_log_is_down(
    backend: TestBackend,
) {
    let Some(mut harness) = Harness::start(backend, Timing::relaxed()).await else {
        return;
    };
    let (request, _) = harness.deliver(BOLLNAS, false).await;
    let mut officer = harness.officer(Some(MITT)).await;
    let reads = || async {
        harness
            .service()
            .api
            .store()
            .events_of(&request.disclosure_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|(event_type, _)| event_type == "notification.read")
            .map(|(_, payload)| serde_json::from_str::<serde_json::Value>(&payload).unwrap())
            .collect::<Vec<_>>()
    };
    assert!(reads().await.is_empty(), "a delivery is no read");

    // ListPending: the read is in the outbox when the answer arrives, with the persons.
    let pending = officer
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.deliveries.len(), 1);
    let logged = reads().await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["actor"]["user_id"], "polis-mitt-1");
    assert_eq!(logged[0]["details"]["call"], "list_pending");
    assert_eq!(
        logged[0]["person_refs"],
        serde_json::json!([SUBJECT_REF, VICTIM_REF])
    );

    // The stream: each delivery it sends is logged before it is sent.
    let mut stream = subscribe(&mut officer, 0).await;
    assert_eq!(next(&mut stream).await.disclosure_id, request.disclosure_id);
    let (later, _) = harness.deliver(BOLLNAS, false).await;
    assert_eq!(next(&mut stream).await.disclosure_id, later.disclosure_id);
    let logged = reads().await;
    assert_eq!(logged.len(), 2);
    assert_eq!(logged[1]["details"]["call"], "subscribe");

    // In the audit log: every read, with the keyed references of the persons.
    harness.wait_for_relay().await;
    let entries = harness.audit_entries(&request.disclosure_id).await;
    let read_entries: Vec<_> = entries
        .iter()
        .filter(|entry| entry["action"] == "notification.read")
        .collect();
    assert_eq!(read_entries.len(), 2, "{entries:?}");
    assert_eq!(
        read_entries[0]["person_refs"],
        serde_json::json!([SUBJECT_REF, VICTIM_REF])
    );

    // The audit log goes down: reads stop once it is known not to answer; none is served
    // unlogged.
    harness.audit.take().unwrap().stop().await.unwrap();
    let mut refused = None;
    for _ in 0..1200 {
        if let Err(status) = officer.list_pending(ListPendingRequest::default()).await {
            refused = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let refused = refused.expect("a read refused while the audit log is down");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("audit log"), "{refused:?}");
    harness.stop().await;
}

tryggdel_test_support::on_both_backends!(
    every_officer_read_is_logged_with_the_persons_and_none_while_the_log_is_down,
    a_delivery_reaches_only_its_region,
    a_reconnecting_subscriber_misses_nothing_and_gets_nothing_twice,
    concurrent_deliveries_reach_every_subscriber_in_order,
    deliver_refuses_what_it_must,
    acknowledging_gives_one_signed_receipt,
    overdue_deliveries_escalate_and_timers_survive_a_restart,
    events_reach_the_audit_log,
    follow_up_questions_reach_only_the_disclosing_organisation,
    police_calls_need_an_officer_of_a_region,
    a_recall_reaches_the_region_and_is_acknowledged_once,
);
