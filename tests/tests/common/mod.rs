//! The harness the end-to-end tests share: the three services (audit, notification,
//! disclosure) started together on one backend, with real mTLS and real tokens, clients for
//! them, and the builders of a disclosure's content.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::{Role, TokenRequest};
use tryggdel_proto::common::v1::{DisclosureState, Person};
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::{
    ApproveRequest, CreateDraftRequest, Disclosure, DraftContent, GetRequest, SubmitRequest,
};
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;
use tryggdel_system::testing::{development_identity, fast_relay, test_system};
use tryggdel_system::{DataDirectory, RunningSystem, Service};
use tryggdel_test_support::{BearerInterceptor, TestBackend, TestDatabase, TestIdentity};

pub type Disclosures = DisclosureServiceClient<InterceptedService<Channel, BearerInterceptor>>;
pub type Notifications = NotificationServiceClient<InterceptedService<Channel, BearerInterceptor>>;

pub const BOLLNAS: &str = "bollnas-kommun";

/// What differs between the test files' systems.
pub struct Options {
    /// How quickly the notification service wants an urgent disclosure acknowledged.
    pub urgent_deadline: Duration,
    /// How often the notification service repeats an escalation nobody answered.
    pub escalation_repeat: Duration,
    /// How often the notification service looks for missed deadlines.
    pub deadline_check_interval: Duration,
    /// How many times, 25 ms apart, [`System::wait_for_state`] looks before it gives up.
    pub state_polls: u32,
}

pub struct System {
    pub identity: TestIdentity,
    pub databases: Vec<TestDatabase>,
    pub audit: tryggdel_audit::RunningService,
    /// `None` while a test has stopped it; restart it with [`System::restart_notification`].
    pub notification: Option<tryggdel_notification::RunningService>,
    pub notification_settings: tryggdel_notification::Settings,
    pub notification_address: SocketAddr,
    pub disclosure: tryggdel_disclosure::RunningService,
    pub receipt_key: ed25519_dalek::VerifyingKey,
    state_polls: u32,
    /// The development data directory the system was built from.
    _data: tempfile::TempDir,
}

pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

impl System {
    /// Starts the three services as `tryggdel start` does, on free ports and fresh databases
    /// of `backend`; `None` when the backend is not available.
    pub async fn start(backend: TestBackend, options: Options) -> Option<System> {
        let mut databases = Vec::new();
        for _ in 0..3 {
            databases.push(TestDatabase::create(backend).await?);
        }
        let data = tempfile::tempdir().unwrap();
        let running = test_system(data.path())
            .database(Service::Audit, databases[0].url.clone())
            .database(Service::Notification, databases[1].url.clone())
            .database(Service::Disclosure, databases[2].url.clone())
            .notification(move |settings| {
                settings.urgent_deadline = options.urgent_deadline;
                settings.escalation_repeat = options.escalation_repeat;
                settings.deadline_check_interval = options.deadline_check_interval;
                settings.relay = fast_relay();
            })
            .disclosure(|settings| settings.relay = fast_relay())
            .start()
            .await
            .unwrap();
        let identity = development_identity(&DataDirectory::new(data.path())).unwrap();
        let RunningSystem {
            audit,
            notification,
            disclosure,
            settings,
            ..
        } = running;
        Some(System {
            identity,
            databases,
            audit,
            notification_address: notification.local_addr,
            notification: Some(notification),
            notification_settings: settings.notification,
            disclosure,
            receipt_key: settings.disclosure.receipt_key,
            state_polls: options.state_polls,
            _data: data,
        })
    }

    /// Starts the notification service again, on the address it had, after a test stopped it.
    pub async fn restart_notification(&mut self) {
        let listener = TcpListener::bind(self.notification_address).await.unwrap();
        self.notification = Some(
            tryggdel_notification::spawn_on(&self.notification_settings, listener)
                .await
                .unwrap(),
        );
    }

    /// A disclosure client of `user` of `organisation` with `role`.
    pub async fn disclosures(&self, user: &str, organisation: &str, role: Role) -> Disclosures {
        let token = self.identity.token(user, organisation, &[role]);
        self.disclosures_as(organisation, &token).await
    }

    /// A disclosure client with `organisation`'s certificate and `token`.
    pub async fn disclosures_as(&self, organisation: &str, token: &str) -> Disclosures {
        let channel = self
            .identity
            .channel(self.disclosure.local_addr, organisation)
            .await;
        DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(token))
    }

    /// A notification client of `user` of `organisation` with `role`.
    pub async fn notifications(&self, user: &str, organisation: &str, role: Role) -> Notifications {
        let token = self.identity.token(user, organisation, &[role]);
        self.notifications_as(organisation, &token).await
    }

    /// A notification client with `organisation`'s certificate and `token`.
    pub async fn notifications_as(&self, organisation: &str, token: &str) -> Notifications {
        let channel = self
            .identity
            .channel(self.notification_address, organisation)
            .await;
        NotificationServiceClient::with_interceptor(channel, BearerInterceptor::new(token))
    }

    /// The token of the first police officer of `region`, of `unit`.
    pub fn police_token(&self, region: &str, unit: Option<&str>) -> String {
        self.identity
            .signer()
            .mint(&TokenRequest {
                user_id: format!("polis-{region}-1"),
                organisation: "polisen".into(),
                unit: unit.map(Into::into),
                roles: vec![Role::PoliceOfficer],
                police_region: Some(region.into()),
                display_name: None,
                valid_for: Duration::from_secs(600),
            })
            .unwrap()
    }

    /// A police officer of `region`, at the regional command centre.
    pub async fn officer(&self, region: &str) -> Notifications {
        let token = self.police_token(region, Some("Regionledningscentralen"));
        self.notifications_as("polisen", &token).await
    }

    /// Drafts, submits and approves a disclosure of `organisation`; returns it approved.
    pub async fn approved(&self, organisation: &str, request: &str, urgent: bool) -> Disclosure {
        let short = organisation
            .trim_end_matches("-kommun")
            .trim_end_matches("-stad");
        let mut caseworker = self
            .disclosures(
                &format!("handlaggare-{short}"),
                organisation,
                Role::Caseworker,
            )
            .await;
        let submitted = submitted(&mut caseworker, request, content("LEV-1", urgent)).await;
        let mut decision_maker = self
            .disclosures(
                &format!("beslut-{short}"),
                organisation,
                Role::DecisionMaker,
            )
            .await;
        approve(&mut decision_maker, &submitted).await
    }

    /// [`System::approved`], then waits until it is delivered; returns it as approved.
    pub async fn approved_and_delivered(
        &self,
        organisation: &str,
        request: &str,
        urgent: bool,
    ) -> Disclosure {
        let approved = self.approved(organisation, request, urgent).await;
        self.wait_for_state(&approved.id, DisclosureState::Delivered)
            .await;
        approved
    }

    /// Waits (bounded) until the disclosure reaches `state`, as Bollnäs's caseworker sees it.
    pub async fn wait_for_state(&self, id: &str, state: DisclosureState) -> Disclosure {
        let token = self
            .identity
            .token("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker]);
        self.wait_for_state_as(&token, id, state).await
    }

    /// Waits (bounded) until the disclosure reaches `state`, as the Bollnäs user holding
    /// `token` sees it.
    pub async fn wait_for_state_as(
        &self,
        token: &str,
        id: &str,
        state: DisclosureState,
    ) -> Disclosure {
        let mut client = self.disclosures_as(BOLLNAS, token).await;
        let mut seen = None;
        for _ in 0..self.state_polls {
            let disclosure = get(&mut client, id).await;
            if disclosure.state == state as i32 {
                return disclosure;
            }
            seen = Some(disclosure.state);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("disclosure {id} did not reach {state:?}; last seen {seen:?}");
    }

    /// The audit log's entries about one disclosure, in log order, as the JSON they are.
    pub async fn audit_entries(&self, id: &str) -> Vec<serde_json::Value> {
        self.identity.audit_entries(self.audit.local_addr, id).await
    }

    pub async fn stop(self) {
        self.disclosure.stop().await.unwrap();
        if let Some(notification) = self.notification {
            notification.stop().await.unwrap();
        }
        self.audit.stop().await.unwrap();
        for database in self.databases {
            database.remove().await;
        }
    }
}

/// Drafts `content` as `caseworker` and submits it; returns it submitted.
pub async fn submitted(
    caseworker: &mut Disclosures,
    request: &str,
    content: DraftContent,
) -> Disclosure {
    let draft = caseworker
        .create_draft(CreateDraftRequest {
            client_request_id: request.into(),
            content: Some(content),
        })
        .await
        .unwrap()
        .into_inner();
    caseworker
        .submit(SubmitRequest {
            disclosure_id: draft.id.clone(),
            expected_version: draft.version,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Approves `submitted` as `decision_maker`; returns it approved.
pub async fn approve(decision_maker: &mut Disclosures, submitted: &Disclosure) -> Disclosure {
    decision_maker
        .approve(ApproveRequest {
            disclosure_id: submitted.id.clone(),
            expected_version: submitted.version,
            comment: String::new(),
            close_relative_judgement: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Disclosure `id` as `client` sees it now (protected details not revealed).
pub async fn get(client: &mut Disclosures, id: &str) -> Disclosure {
    client
        .get(GetRequest {
            disclosure_id: id.into(),
            reveal_protected: false,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Asserts that every one of `expected` is among `found`.
pub fn assert_all_found(found: &[String], expected: &[&str]) {
    for expected in expected {
        assert!(
            found.iter().any(|found| found == expected),
            "no {expected} in {found:?}"
        );
    }
}

/// A test person born on 17 May `year` with birth number `birth`.
pub fn person(year: i32, birth: u16) -> Person {
    tryggdel_test_support::draft::person(year, birth).unwrap()
}

/// A complete draft about a threat to kill a spouse: the subject born 1980, the victim 1982.
pub fn content(case_reference: &str, urgent: bool) -> DraftContent {
    tryggdel_test_support::draft::draft_content(case_reference, "OSL-26-1", urgent).unwrap()
}
