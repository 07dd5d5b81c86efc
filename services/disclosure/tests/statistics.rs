//! Statistics through the real server, on SQLite and on PostgreSQL (when
//! `TRYGGDEL_TEST_POSTGRES_URL` is set): grouping, small-count suppression (4 suppressed, 5
//! shown), internal figures only for the organisation's own compliance officers, and the
//! median and 90th percentile of each span. Disclosures are drafted through the API; their
//! times and outcomes are then set in the database, so the expected figures are exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::Role;
use tryggdel_disclosure::RunningService;
use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::*;
use tryggdel_system::testing::{bind_with_identity, fast_relay, test_system};
use tryggdel_system::{BoundSystem, Service};
use tryggdel_test_support::{
    BearerInterceptor, TestBackend, TestDatabase, TestIdentity, on_both_backends,
};

type Client = DisclosureServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const BOLLNAS: &str = "bollnas-kommun";
const JONKOPING: &str = "jonkoping-kommun";
const IVO: &str = "ivo";
/// 2026-03-02T10:00:00Z, a Monday in March in Sweden.
const MARCH: i64 = 1_772_445_600_000;
/// 2026-04-01T00:30:00+02:00 in Sweden, 31 March 22:30 in UTC.
const FIRST_OF_APRIL_IN_SWEDEN: i64 = 1_774_996_200_000;
const SECOND: i64 = 1000;

struct Harness {
    identity: TestIdentity,
    service: RunningService,
    audit: tryggdel_audit::RunningService,
    database: TestDatabase,
    audit_database: TestDatabase,
    _data: tempfile::TempDir,
}

impl Harness {
    async fn start(backend: TestBackend) -> Option<Harness> {
        let database = TestDatabase::create(backend).await?;
        let audit_database = TestDatabase::create(backend).await?;
        let data = tempfile::tempdir().unwrap();
        let builder = test_system(data.path())
            .database(Service::Audit, audit_database.url.clone())
            .database(Service::Disclosure, database.url.clone())
            .audit(|settings| settings.appenders = vec!["disclosure".into()])
            .disclosure(|settings| settings.relay = fast_relay());
        let (identity, bound) = bind_with_identity(builder).await.unwrap();
        let BoundSystem {
            listeners,
            settings: system,
            ..
        } = bound;
        let audit = tryggdel_audit::spawn_on(&system.audit, listeners.audit)
            .await
            .unwrap();
        let service = tryggdel_disclosure::spawn_on(&system.disclosure, listeners.disclosure)
            .await
            .unwrap();
        Some(Harness {
            identity,
            service,
            audit,
            database,
            audit_database,
            _data: data,
        })
    }

    async fn client(&self, user: &str, organisation: &str, roles: &[Role]) -> Client {
        let token = self.identity.token(user, organisation, roles);
        let channel = self
            .identity
            .channel(self.service.local_addr, organisation)
            .await;
        DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    }

    async fn execute(&self, statement: &str, values: &[i64], id: &str) {
        let mut query = sqlx::query(statement);
        for value in values {
            query = query.bind(*value);
        }
        query
            .bind(id.to_owned())
            .execute(self.service.api.store().database().pool())
            .await
            .unwrap();
    }

    async fn stop(self) {
        self.service.stop().await.unwrap();
        self.audit.stop().await.unwrap();
        self.database.remove().await;
        self.audit_database.remove().await;
    }
}

fn personnummer(year: i32, month: u8, day: u8, birth_number: u16) -> String {
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day).unwrap();
    tryggdel_domain::testing::personnummer_from(date, birth_number)
}

fn content(crime_id: &str, urgent: bool) -> DraftContent {
    DraftContent {
        unit: "Socialtjänsten, vuxenenheten".into(),
        case_reference: "BOL-2026-0042".into(),
        subject: Some(Person {
            identity_number: personnummer(1985, 3, 14, 123),
            name: "Testperson Ett".into(),
        }),
        victim: Some(Person {
            identity_number: personnummer(1988, 7, 2, 456),
            name: "Testperson Två".into(),
        }),
        relation: "cohabitant".into(),
        legal_basis_id: "OSL-10-18c".into(),
        claimed_secrecy: "OSL-26-1".into(),
        recipient: "polismyndigheten".into(),
        crime_id: crime_id.into(),
        crime_time: "future_risk".into(),
        urgent,
        ..DraftContent::default()
    }
}

async fn draft(client: &mut Client, request_id: &str, content: DraftContent) -> String {
    client
        .create_draft(CreateDraftRequest {
            client_request_id: request_id.into(),
            content: Some(content),
        })
        .await
        .unwrap()
        .into_inner()
        .id
}

fn by(dimensions: &[&str]) -> GetStatisticsRequest {
    GetStatisticsRequest {
        group_by: dimensions.iter().map(|name| (*name).to_owned()).collect(),
        ..GetStatisticsRequest::default()
    }
}

async fn statistics(client: &mut Client, request: GetStatisticsRequest) -> Statistics {
    client.get_statistics(request).await.unwrap().into_inner()
}

fn row<'a>(statistics: &'a Statistics, keys: &[&str]) -> &'a StatisticsRow {
    statistics
        .rows
        .iter()
        .find(|row| row.keys == keys)
        .unwrap_or_else(|| panic!("no row {keys:?} in {:?}", statistics.rows))
}

fn figures(figures: &Option<DurationFigures>) -> (u64, i64, i64) {
    let figures = figures.as_ref().expect("figures");
    assert!(!figures.suppressed, "{figures:?}");
    (figures.samples, figures.median_seconds, figures.p90_seconds)
}

/// Five disclosures about grov kvinnofridskränkning, approved, delivered and acknowledged
/// after 1..5 minutes, 10..50 seconds and 1000..5000 seconds; four urgent ones about grov
/// misshandel still drafts, one of them created on 1 April in Sweden (31 March in UTC).
async fn statistics_group_suppress_and_time(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness
        .client("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker])
        .await;
    for index in 0..5_i64 {
        let id = draft(
            &mut caseworker,
            &format!("stat-kvinnofrid-{index}"),
            content("grov-kvinnofridskrankning", false),
        )
        .await;
        let created = MARCH + index * 3600 * SECOND;
        let decided = created + (index + 1) * 60 * SECOND;
        let delivered = decided + (index + 1) * 10 * SECOND;
        let acknowledged = delivered + (index + 1) * 1000 * SECOND;
        harness
            .execute(
                "UPDATE disclosures SET state = 'acknowledged', created_at = $1, \
                 decision_outcome = 'approved', decided_by = 'beslutsfattare', decided_at = $2 \
                 WHERE id = $3",
                &[created, decided],
                &id,
            )
            .await;
        harness
            .execute(
                "INSERT INTO deliveries (delivered_at, acknowledged_at, disclosure_id, \
                 police_region, police_reference, acknowledged_by, receipt_key_id) \
                 VALUES ($1, $2, $3, 'mitt', 'P-1', 'polis', 'k')",
                &[delivered, acknowledged],
                &id,
            )
            .await;
    }
    for index in 0..4_i64 {
        let id = draft(
            &mut caseworker,
            &format!("stat-misshandel-{index}"),
            content("grov-misshandel", true),
        )
        .await;
        let created = if index == 3 {
            FIRST_OF_APRIL_IN_SWEDEN
        } else {
            MARCH + index * SECOND
        };
        harness
            .execute(
                "UPDATE disclosures SET created_at = $1 WHERE id = $2",
                &[created],
                &id,
            )
            .await;
    }

    let mut officer = harness
        .client("dataskydd-bollnas", BOLLNAS, &[Role::ComplianceOfficer])
        .await;
    let by_crime = statistics(&mut officer, by(&["crime_category"])).await;
    assert!(by_crime.suppressed_small_counts);
    assert_eq!(by_crime.suppression_threshold, 5);
    assert_eq!(by_crime.organisation, BOLLNAS);
    let shown = row(&by_crime, &["grov-kvinnofridskrankning"]);
    assert!(!shown.suppressed);
    assert_eq!(shown.count, 5);
    assert_eq!(figures(&shown.draft_to_decision), (5, 180, 300));
    assert_eq!(figures(&shown.decision_to_delivery), (5, 30, 50));
    assert_eq!(figures(&shown.delivery_to_acknowledgement), (5, 3000, 5000));
    let hidden = row(&by_crime, &["grov-misshandel"]);
    assert!(hidden.suppressed);
    assert_eq!(hidden.count, 0);
    assert!(hidden.draft_to_decision.is_none());

    // The organisation's own officer may ask for exact internal figures.
    let internal = statistics(
        &mut officer,
        GetStatisticsRequest {
            internal: true,
            ..by(&["crime_category", "urgency"])
        },
    )
    .await;
    assert!(!internal.suppressed_small_counts);
    let exact = row(&internal, &["grov-misshandel", "urgent"]);
    assert_eq!((exact.count, exact.suppressed), (4, false));
    assert_eq!(
        row(&internal, &["grov-kvinnofridskrankning", "normal"]).count,
        5
    );

    // Months are Swedish; outcomes are states; the period bounds creation.
    let by_month = statistics(
        &mut officer,
        GetStatisticsRequest {
            internal: true,
            ..by(&["month", "outcome"])
        },
    )
    .await;
    assert_eq!(row(&by_month, &["2026-03", "acknowledged"]).count, 5);
    assert_eq!(row(&by_month, &["2026-03", "draft"]).count, 3);
    assert_eq!(row(&by_month, &["2026-04", "draft"]).count, 1);
    let march_only = statistics(
        &mut officer,
        GetStatisticsRequest {
            from_unix_ms: MARCH,
            until_unix_ms: MARCH + 4 * 3600 * SECOND,
            internal: true,
            ..by(&[])
        },
    )
    .await;
    assert_eq!(march_only.rows.len(), 1);
    assert_eq!(march_only.rows[0].count, 7);
    assert_eq!(
        figures(&march_only.rows[0].draft_to_decision),
        (4, 120, 240)
    );

    // A supervisor sees every organisation, always suppressed, never internal figures.
    let mut supervisor = harness
        .client("granskare-ivo", IVO, &[Role::ComplianceOfficer])
        .await;
    let everyone = statistics(&mut supervisor, by(&["organisation", "crime_category"])).await;
    assert_eq!(everyone.organisation, "");
    assert_eq!(
        row(&everyone, &[BOLLNAS, "grov-kvinnofridskrankning"]).count,
        5
    );
    assert!(row(&everyone, &[BOLLNAS, "grov-misshandel"]).suppressed);
    let refused = supervisor
        .get_statistics(GetStatisticsRequest {
            internal: true,
            ..by(&[])
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Nobody else, and no other organisation's officer.
    let refused = caseworker.get_statistics(by(&["month"])).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let mut other = harness
        .client("dataskydd-jonkoping", JONKOPING, &[Role::ComplianceOfficer])
        .await;
    let refused = other
        .get_statistics(GetStatisticsRequest {
            organisation: BOLLNAS.into(),
            ..by(&[])
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let unknown = officer.get_statistics(by(&["name"])).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument, "{unknown:?}");
    harness.stop().await;
}

/// A disclosure changed after its clear columns were filled is counted as it is now.
async fn statistics_follow_changes(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness
        .client("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker])
        .await;
    let id = draft(
        &mut caseworker,
        "stat-change-1",
        content("grov-misshandel", false),
    )
    .await;
    let mut officer = harness
        .client("dataskydd-bollnas", BOLLNAS, &[Role::ComplianceOfficer])
        .await;
    let internal = GetStatisticsRequest {
        internal: true,
        ..by(&["crime_category"])
    };
    let before = statistics(&mut officer, internal.clone()).await;
    assert_eq!(row(&before, &["grov-misshandel"]).count, 1);
    caseworker
        .update_draft(UpdateDraftRequest {
            disclosure_id: id,
            expected_version: 1,
            content: Some(content("grov-kvinnofridskrankning", false)),
        })
        .await
        .unwrap();
    let after = statistics(&mut officer, internal).await;
    assert_eq!(after.rows.len(), 1);
    assert_eq!(row(&after, &["grov-kvinnofridskrankning"]).count, 1);
    harness.stop().await;
}

/// Opt-in (`TRYGGDEL_BENCH_STATISTICS=1`, PostgreSQL only): 100,000 disclosures of one
/// organisation over a year, a quarter of them delivered and acknowledged, counted by month and
/// legal basis with all three times; the answer through the RPC must come in under 2 s.
async fn statistics_over_100000_disclosures(backend: TestBackend) {
    if backend != TestBackend::Postgres || std::env::var("TRYGGDEL_BENCH_STATISTICS").is_err() {
        eprintln!("skipped: set TRYGGDEL_BENCH_STATISTICS=1 (and a PostgreSQL URL) to run it");
        return;
    }
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let pool = harness.service.api.store().database().pool();
    sqlx::query(
        "INSERT INTO disclosures (id, organisation, police_region, state, version, urgent, \
         legal_basis_id, drafted_by, client_request_id, request_fingerprint, content_sealed, \
         protected_sealed, created_at, updated_at, submitted_by, submitted_at, \
         decision_outcome, decided_by, decided_at, decision_reason, payload_sha256, \
         payload_sealed, registry_version, catalogue_version, stat_crime_id, stat_recipient, \
         stat_month, clear_version) \
         SELECT 'bench-' || g, 'bollnas-kommun', 'mitt', \
         (ARRAY['acknowledged', 'rejected', 'withdrawn', 'draft'])[1 + g % 4], 1, \
         CAST(g % 7 = 0 AS INT), (ARRAY['OSL-10-18c', 'OSL-10-21', 'OSL-10-23'])[1 + g % 3], \
         'u', 'c' || g, '', '', '', $1 + g * 300000, $1 + g * 300000, '', 0, \
         (ARRAY['approved', 'rejected', 'withdrawn', ''])[1 + g % 4], 'd', \
         $1 + g * 300000 + (g % 97) * 60000, '', '', '', '', '', \
         (ARRAY['grov-misshandel', 'grov-kvinnofridskrankning'])[1 + g % 2], \
         'polismyndigheten', \
         '2026-' || lpad(CAST(1 + (g * 300000 / 2678400000) % 12 AS TEXT), 2, '0'), 1 \
         FROM generate_series(CAST(1 AS BIGINT), 100000) AS g",
    )
    .bind(MARCH - 60 * 24 * 3600 * SECOND)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO deliveries (disclosure_id, police_region, delivered_at, police_reference, \
         acknowledged_by, acknowledged_at, receipt_key_id) \
         SELECT id, 'mitt', decided_at + 45000, 'P', 'polis', \
         decided_at + 45000 + (created_at % 3600) * 1000, 'k' \
         FROM disclosures WHERE state = 'acknowledged'",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
    let mut officer = harness
        .client("dataskydd-bollnas", BOLLNAS, &[Role::ComplianceOfficer])
        .await;
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let answer = statistics(&mut officer, by(&["month", "legal_basis"])).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            answer.rows.iter().map(|row| row.count).sum::<u64>(),
            100_000
        );
    }
    eprintln!("statistics over 100,000 disclosures: slowest of 3 answers {slowest:?}");
    assert!(slowest < std::time::Duration::from_secs(2), "{slowest:?}");
    harness.stop().await;
}

on_both_backends!(
    statistics_group_suppress_and_time,
    statistics_follow_changes,
    statistics_over_100000_disclosures
);
