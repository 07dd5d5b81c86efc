//! The lifecycle load: simulated users run a disclosure's whole lifecycle over real gRPC with
//! mTLS and real tokens, as many at once as asked, until a time or count bound, while police
//! officers watch their regions' delivery streams.
//!
//! One lifecycle: a caseworker of an organisation drafts (CreateDraft) and submits (Submit); a
//! decision maker of the same organisation holding the delegation (never the drafter) approves
//! (Approve); the user waits until an officer of the organisation's police region sees the
//! delivery on `notification.Subscribe`; an officer of that region acknowledges it with a police
//! reference (Acknowledge); the user waits until the disclosure is ACKNOWLEDGED (polling `Get`
//! as the caseworker).
//!
//! The load is spread over every address given (user `i` uses disclosure address `i mod n`, and
//! its officer the notification address `i mod m`), and every police region that the chosen
//! organisations route to has one subscriber on every notification address. Each subscriber
//! keeps the sequences it received, so a caller can check that nothing was delivered twice or
//! out of order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{oneshot, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::Role;
use tryggdel_domain::{Directory, LegalBasisId, OrganisationCode};
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::{
    ApproveRequest, CreateDraftRequest, GetRequest, SubmitRequest,
};
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;
use tryggdel_proto::notification::v1::{AcknowledgeRequest, SubscribeRequest};

use crate::{Bearer, BenchIdentity, Samples};

/// The legal basis every benchmark disclosure is made under (OSL 10 kap. 18 c §).
pub use tryggdel_test_support::draft::LEGAL_BASIS;

/// How long the tokens the load uses are valid: longer than any run.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How long a user waits after a failed step before starting another lifecycle.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(50);

/// The first and the longest pause between two looks at a disclosure's state. Each look is a
/// `Get` with its token verified and a database read, and costs the services as much as a step
/// of the lifecycle itself: looking more often blurs the figures more than it sharpens them.
const FIRST_POLL: Duration = Duration::from_millis(5);
const LONGEST_POLL: Duration = Duration::from_millis(25);

type Disclosures = DisclosureServiceClient<InterceptedService<Channel, Bearer>>;
type Notifications = NotificationServiceClient<InterceptedService<Channel, Bearer>>;

/// What the load runs against and for how long.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The disclosure service instances; users are spread over them.
    pub disclosure_addresses: Vec<SocketAddr>,
    /// The notification service instances; officers are spread over them, and every region
    /// has a subscriber on each.
    pub notification_addresses: Vec<SocketAddr>,
    /// Simulated users running lifecycles at the same time.
    pub concurrency: usize,
    /// Lifecycles run before measuring starts (their figures are not counted).
    pub warmup: Duration,
    /// How long the measurement runs after the warm-up.
    pub duration: Duration,
    /// At most this many lifecycles are started, warm-up included.
    pub max_lifecycles: Option<u64>,
    /// How long in-flight lifecycles may take to finish once the bound is reached.
    pub drain_timeout: Duration,
    /// How long a user waits for a delivery, or for the acknowledgement to come back, before
    /// counting the lifecycle as failed.
    pub wait_timeout: Duration,
}

/// Where the load is: sent on the `phase` channel of [`run`] so that a caller can read its own
/// counters (database commits, CPU) exactly at the measurement window's edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, subscribing, warming up.
    Starting,
    /// The measurement window is open.
    Measuring,
    /// The window is closed; in-flight lifecycles are finishing.
    Draining,
    /// Every user and subscriber has stopped.
    Done,
}

/// The steps a lifecycle's figures are kept for, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    CreateDraft,
    Submit,
    Approve,
    /// From sending Approve until an officer of the region sees the delivery on the stream.
    Delivered,
    Acknowledge,
    /// From sending Acknowledge until the disclosure service shows ACKNOWLEDGED.
    Acknowledged,
    /// The whole lifecycle, from sending CreateDraft to seeing ACKNOWLEDGED.
    Lifecycle,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::CreateDraft,
        Step::Submit,
        Step::Approve,
        Step::Delivered,
        Step::Acknowledge,
        Step::Acknowledged,
        Step::Lifecycle,
    ];

    /// The name printed in tables.
    pub fn label(self) -> &'static str {
        match self {
            Step::CreateDraft => "CreateDraft",
            Step::Submit => "Submit",
            Step::Approve => "Approve",
            Step::Delivered => "approve→delivered (e2e)",
            Step::Acknowledge => "Acknowledge",
            Step::Acknowledged => "acknowledge→acknowledged (e2e)",
            Step::Lifecycle => "whole lifecycle (e2e)",
        }
    }
}

/// What one police subscriber received.
#[derive(Clone, Debug)]
pub struct SubscriberLog {
    pub police_region: String,
    pub notification_address: SocketAddr,
    /// (sequence, disclosure id) in the order the stream gave them, across reconnections.
    pub deliveries: Vec<(u64, String)>,
    /// How many times the stream ended or failed and was opened again from the last sequence.
    pub reconnections: u64,
}

impl SubscriberLog {
    /// Sequences that did not come in strictly increasing order, and disclosure ids that came
    /// more than once: both empty when the stream kept its promise.
    pub fn anomalies(&self) -> (Vec<u64>, Vec<String>) {
        let mut out_of_order = Vec::new();
        let mut last = 0;
        for (sequence, _) in &self.deliveries {
            if *sequence <= last {
                out_of_order.push(*sequence);
            }
            last = last.max(*sequence);
        }
        let mut seen = HashMap::new();
        for (_, id) in &self.deliveries {
            *seen.entry(id.as_str()).or_insert(0u32) += 1;
        }
        let mut duplicates: Vec<String> = seen
            .into_iter()
            .filter(|(_, count)| *count > 1)
            .map(|(id, _)| id.to_owned())
            .collect();
        duplicates.sort();
        (out_of_order, duplicates)
    }

    /// The disclosures of `approved` this stream never delivered, sorted.
    pub fn missing(&self, approved: &HashSet<String>) -> Vec<String> {
        let delivered: HashSet<&str> = self.deliveries.iter().map(|(_, id)| id.as_str()).collect();
        let mut missing: Vec<String> = approved
            .iter()
            .filter(|id| !delivered.contains(id.as_str()))
            .cloned()
            .collect();
        missing.sort();
        missing
    }
}

/// The failures of one step: how many, and the first few messages.
#[derive(Clone, Debug, Default)]
pub struct Failures {
    pub count: u64,
    pub examples: Vec<String>,
}

/// What a run of the load measured.
#[derive(Debug)]
pub struct LoadReport {
    /// Latencies of the steps started inside the measurement window.
    pub samples: BTreeMap<Step, Samples>,
    /// Lifecycles completed inside the measurement window.
    pub lifecycles: u64,
    /// Lifecycles completed in all (warm-up and drain included).
    pub lifecycles_total: u64,
    /// Lifecycles that were still running when the drain timeout ran out.
    pub unfinished: u64,
    /// `Get`s the users sent while waiting for ACKNOWLEDGED, in all.
    pub polls: u64,
    /// The measurement window's length.
    pub window: Duration,
    /// Failed steps by step.
    pub failures: BTreeMap<Step, Failures>,
    /// Failures of the subscribers' streams (each was reopened from its last sequence).
    pub subscriber_failures: Failures,
    /// One per (region, notification address).
    pub subscribers: Vec<SubscriberLog>,
    /// The disclosures whose Approve succeeded, by police region: what every stream of the
    /// region must have delivered.
    pub approved: HashMap<String, HashSet<String>>,
    /// The organisations the users worked for, with their police regions.
    pub organisations: Vec<(String, String)>,
}

impl LoadReport {
    /// The approvals of `log`'s region that its stream never delivered, sorted.
    pub fn never_delivered(&self, log: &SubscriberLog) -> Vec<String> {
        self.approved
            .get(&log.police_region)
            .map(|approved| log.missing(approved))
            .unwrap_or_default()
    }

    /// Approvals in all regions.
    pub fn approvals(&self) -> usize {
        self.approved.values().map(HashSet::len).sum()
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().map(|failures| failures.count).sum()
    }

    pub fn lifecycles_per_second(&self) -> f64 {
        self.lifecycles as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// An organisation the users draft for, and who may decide for it.
#[derive(Clone, Debug)]
struct Participant {
    organisation: String,
    /// The user holding the delegation for [`LEGAL_BASIS`].
    decision_maker: String,
    police_region: String,
    /// The secrecy the organisation's records are under (the draft must claim it).
    secrecy: String,
}

/// The organisations of `directory` that route to a police region and have a decision maker
/// holding the delegation for [`LEGAL_BASIS`] (user `beslut-<name>`, as in the development
/// directory).
fn participants(directory: &Directory) -> anyhow::Result<Vec<Participant>> {
    let basis = LegalBasisId::parse(LEGAL_BASIS).context("legal basis id")?;
    let mut found = Vec::new();
    for code in directory.codes() {
        let parsed = OrganisationCode::parse(&code).context("organisation code")?;
        let Some(organisation) = directory.organisation(&parsed) else {
            continue;
        };
        let (Some(region), Some(secrecy)) = (organisation.police_region(), organisation.secrecy())
        else {
            continue;
        };
        let short = code
            .trim_end_matches("-kommun")
            .trim_end_matches("-stad")
            .trim_start_matches("region-");
        let decision_maker = format!("beslut-{short}");
        if directory.holds_delegation(&parsed, &decision_maker, &basis) {
            found.push(Participant {
                organisation: code,
                decision_maker,
                police_region: region.as_str().to_owned(),
                secrecy: secrecy.as_str().to_owned(),
            });
        }
    }
    found.sort_by(|a, b| a.organisation.cmp(&b.organisation));
    anyhow::ensure!(
        !found.is_empty(),
        "no organisation in the directory has a decision maker beslut-<name> holding {LEGAL_BASIS}"
    );
    Ok(found)
}

pub use tryggdel_test_support::draft::draft_content;

/// Who waits for which disclosure's delivery, and deliveries seen before anyone waited.
#[derive(Default)]
struct DeliveryBoard {
    entries: Mutex<HashMap<String, Arrival>>,
}

enum Arrival {
    Waiting(oneshot::Sender<Instant>),
    Seen,
}

impl DeliveryBoard {
    /// Called by a subscriber for every delivery it gets.
    fn arrived(&self, disclosure_id: &str, at: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.remove(disclosure_id) {
            Some(Arrival::Waiting(waiter)) => {
                let _ = waiter.send(at);
                // A second subscriber of the region (another instance) may see it too.
                entries.insert(disclosure_id.to_owned(), Arrival::Seen);
            }
            Some(Arrival::Seen) => {
                entries.insert(disclosure_id.to_owned(), Arrival::Seen);
            }
            // Nobody waits: another subscriber's copy after the lifecycle moved on, or a
            // delivery made before this run.
            None => {}
        }
    }

    /// A receiver that fires when `disclosure_id` is delivered (at once if it already was).
    fn wait(&self, disclosure_id: &str) -> oneshot::Receiver<Instant> {
        let (sender, receiver) = oneshot::channel();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(disclosure_id) {
            Some(Arrival::Seen) => {
                let _ = sender.send(Instant::now());
            }
            _ => {
                entries.insert(disclosure_id.to_owned(), Arrival::Waiting(sender));
            }
        }
        receiver
    }

    /// Forgets a disclosure whose lifecycle is over.
    fn forget(&self, disclosure_id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(disclosure_id);
    }
}

/// What every user task shares.
struct Shared {
    board: DeliveryBoard,
    /// Lifecycles started so far (the count bound).
    started: AtomicU64,
    /// Lifecycles finished so far, and of those inside the window.
    finished: AtomicU64,
    finished_in_window: AtomicU64,
    in_flight: AtomicU64,
    /// `Get`s sent while waiting for ACKNOWLEDGED (the load's own cost to the services).
    polls: AtomicU64,
    /// Set when no more lifecycles may start.
    stop: AtomicBool,
    /// When the measurement window opens and (once known) closes.
    window_open: Instant,
    window_close: Mutex<Option<Instant>>,
    recorded: Mutex<Recorded>,
    /// Approved disclosures by region, and what each (region, notification address) stream
    /// delivered so far.
    streams: Mutex<StreamProgress>,
    max_lifecycles: Option<u64>,
    wait_timeout: Duration,
}

#[derive(Default)]
struct StreamProgress {
    approved: HashMap<String, HashSet<String>>,
    delivered: HashMap<(String, SocketAddr), HashSet<String>>,
}

impl StreamProgress {
    /// Whether every stream has delivered every approved disclosure of its region.
    fn complete(&self) -> bool {
        self.delivered.iter().all(|((region, _), delivered)| {
            self.approved
                .get(region)
                .is_none_or(|approved| approved.is_subset(delivered))
        })
    }
}

#[derive(Default)]
struct Recorded {
    samples: BTreeMap<Step, Samples>,
    failures: BTreeMap<Step, Failures>,
    subscriber_failures: Failures,
}

fn note_failure(failures: &mut Failures, message: String) {
    failures.count += 1;
    if failures.examples.len() < 5 {
        failures.examples.push(message);
    }
}

impl Shared {
    fn in_window(&self, at: Instant) -> bool {
        let close = *self
            .window_close
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        at >= self.window_open && close.is_none_or(|close| at < close)
    }

    fn record(&self, step: Step, started: Instant, finished: Instant) {
        if self.in_window(started) {
            self.recorded
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .samples
                .entry(step)
                .or_default()
                .record(finished.duration_since(started));
        }
    }

    fn fail(&self, step: Step, message: String) {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        note_failure(recorded.failures.entry(step).or_default(), message);
    }

    fn subscriber_failed(&self, message: String) {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        note_failure(&mut recorded.subscriber_failures, message);
    }

    /// Takes the right to start one more lifecycle, unless a bound is reached.
    fn may_start(&self) -> bool {
        if self.stop.load(Ordering::SeqCst) {
            return false;
        }
        let number = self.started.fetch_add(1, Ordering::SeqCst);
        match self.max_lifecycles {
            Some(max) if number >= max => {
                self.started.fetch_sub(1, Ordering::SeqCst);
                false
            }
            _ => true,
        }
    }
}

/// One simulated user's clients: caseworker and decision maker of one organisation, and an
/// officer of its police region.
struct User {
    number: usize,
    participant: Participant,
    caseworker: Disclosures,
    decision_maker: Disclosures,
    officer: Notifications,
}

async fn disclosures(
    identity: &BenchIdentity,
    address: SocketAddr,
    organisation: &str,
    user: &str,
    role: Role,
) -> anyhow::Result<Disclosures> {
    let token = identity.token(user, organisation, &[role], None, TOKEN_LIFETIME)?;
    let channel = identity.channel(address, organisation).await?;
    Ok(DisclosureServiceClient::with_interceptor(
        channel,
        crate::identity::bearer(&token)?,
    ))
}

async fn officer(
    identity: &BenchIdentity,
    address: SocketAddr,
    region: &str,
    number: usize,
) -> anyhow::Result<Notifications> {
    let token = identity.token(
        &format!("polis-{region}-{number}"),
        "polisen",
        &[Role::PoliceOfficer],
        Some(region),
        TOKEN_LIFETIME,
    )?;
    let channel = identity.channel(address, "polisen").await?;
    Ok(NotificationServiceClient::with_interceptor(
        channel,
        crate::identity::bearer(&token)?,
    ))
}

fn pick<T: Copy>(items: &[T], index: usize) -> anyhow::Result<T> {
    anyhow::ensure!(!items.is_empty(), "no address given");
    items
        .get(index % items.len())
        .copied()
        .context("an address by index")
}

impl User {
    async fn connect(
        identity: &BenchIdentity,
        options: &LoadOptions,
        participants: &[Participant],
        number: usize,
    ) -> anyhow::Result<User> {
        let participant = participants
            .get(number % participants.len().max(1))
            .cloned()
            .context("a participant")?;
        let disclosure = pick(&options.disclosure_addresses, number)?;
        let notification = pick(&options.notification_addresses, number)?;
        let short = participant
            .organisation
            .trim_end_matches("-kommun")
            .trim_end_matches("-stad")
            .trim_start_matches("region-");
        Ok(User {
            number,
            caseworker: disclosures(
                identity,
                disclosure,
                &participant.organisation,
                &format!("handlaggare-{short}-{number}"),
                Role::Caseworker,
            )
            .await?,
            decision_maker: disclosures(
                identity,
                disclosure,
                &participant.organisation,
                &participant.decision_maker,
                Role::DecisionMaker,
            )
            .await?,
            officer: officer(identity, notification, &participant.police_region, number).await?,
            participant,
        })
    }

    /// Runs lifecycles until a bound is reached.
    async fn run(mut self, shared: Arc<Shared>) {
        let mut round = 0u64;
        while shared.may_start() {
            shared.in_flight.fetch_add(1, Ordering::SeqCst);
            round += 1;
            let started = Instant::now();
            let outcome = self.lifecycle(&shared, round).await;
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            match outcome {
                Ok(()) => {
                    let finished = Instant::now();
                    shared.record(Step::Lifecycle, started, finished);
                    shared.finished.fetch_add(1, Ordering::SeqCst);
                    if shared.in_window(finished) {
                        shared.finished_in_window.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Err((step, message)) => {
                    shared.fail(step, message);
                    tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
                }
            }
        }
    }

    async fn lifecycle(&mut self, shared: &Shared, round: u64) -> Result<(), (Step, String)> {
        let client_request_id = format!("bench-{}-{}-{round}", uuid::Uuid::now_v7(), self.number);
        let content = draft_content(
            &format!("BENCH-{}-{round}", self.number),
            &self.participant.secrecy,
            false,
        )
        .map_err(|error| (Step::CreateDraft, format!("{error:#}")))?;

        let create = self.caseworker.create_draft(CreateDraftRequest {
            client_request_id,
            content: Some(content),
        });
        let draft = timed(shared, Step::CreateDraft, create).await?;
        let submit = self.caseworker.submit(SubmitRequest {
            disclosure_id: draft.id.clone(),
            expected_version: draft.version,
        });
        let submitted = timed(shared, Step::Submit, submit).await?;

        let delivered = shared.board.wait(&submitted.id);
        let approve_at = Instant::now();
        let approved = self
            .decision_maker
            .approve(ApproveRequest {
                disclosure_id: submitted.id.clone(),
                expected_version: submitted.version,
                comment: String::new(),
                close_relative_judgement: String::new(),
            })
            .await;
        if let Err(status) = approved {
            shared.board.forget(&submitted.id);
            return Err((Step::Approve, describe(&status)));
        }
        shared.record(Step::Approve, approve_at, Instant::now());
        shared
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .approved
            .entry(self.participant.police_region.clone())
            .or_default()
            .insert(submitted.id.clone());

        let seen = tokio::time::timeout(shared.wait_timeout, delivered).await;
        shared.board.forget(&submitted.id);
        match seen {
            Ok(Ok(at)) => shared.record(Step::Delivered, approve_at, at.max(approve_at)),
            Ok(Err(_)) => {
                return Err((Step::Delivered, "the delivery board closed".to_owned()));
            }
            Err(_) => {
                return Err((
                    Step::Delivered,
                    format!(
                        "no delivery of {} to region {} within {:?}",
                        submitted.id, self.participant.police_region, shared.wait_timeout
                    ),
                ));
            }
        }

        let acknowledge = self.officer.acknowledge(AcknowledgeRequest {
            disclosure_id: submitted.id.clone(),
            police_reference: format!("5000-K{:06}-26", round % 1_000_000),
        });
        let at = Instant::now();
        timed(shared, Step::Acknowledge, acknowledge).await?;

        let deadline = at + shared.wait_timeout;
        let mut pause = FIRST_POLL;
        loop {
            shared.polls.fetch_add(1, Ordering::Relaxed);
            let read = self
                .caseworker
                .get(GetRequest {
                    disclosure_id: submitted.id.clone(),
                    reveal_protected: false,
                })
                .await;
            // A read is refused while the audit log cannot take its access record (e.g. while
            // an audit instance fails over): a client waiting for the receipt reads again.
            let disclosure = match read {
                Ok(answer) => answer.into_inner(),
                Err(status)
                    if status.code() == tonic::Code::Unavailable && Instant::now() < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 3 / 2).min(LONGEST_POLL);
                    continue;
                }
                Err(status) => return Err((Step::Acknowledged, describe(&status))),
            };
            if disclosure.state == DisclosureState::Acknowledged as i32 {
                shared.record(Step::Acknowledged, at, Instant::now());
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err((
                    Step::Acknowledged,
                    format!(
                        "{} not acknowledged within {:?} (state {})",
                        submitted.id, shared.wait_timeout, disclosure.state
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(LONGEST_POLL);
        }
    }
}

/// Awaits one step's call and records how long it took; a refusal fails the step.
async fn timed<T>(
    shared: &Shared,
    step: Step,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, (Step, String)> {
    let at = Instant::now();
    let answer = call.await.map_err(|status| (step, describe(&status)))?;
    shared.record(step, at, Instant::now());
    Ok(answer.into_inner())
}

fn describe(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// One police officer of `region` watching the region's stream on one notification instance;
/// reopens the stream from the last sequence it saw if it ends, until `stop`.
async fn subscribe(
    mut client: Notifications,
    mut log: SubscriberLog,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> SubscriberLog {
    let mut cursor = 0u64;
    loop {
        if *stop.borrow() {
            return log;
        }
        let opened = tokio::select! {
            opened = client.subscribe(SubscribeRequest { cursor }) => opened,
            _ = stop.changed() => return log,
        };
        let mut stream = match opened {
            Ok(response) => response.into_inner(),
            Err(status) => {
                shared.subscriber_failed(format!(
                    "subscribe to {}: {}",
                    log.police_region,
                    describe(&status)
                ));
                tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                _ = stop.changed() => return log,
            };
            match next {
                Ok(Some(delivery)) => {
                    let at = Instant::now();
                    cursor = cursor.max(delivery.sequence);
                    shared.board.arrived(&delivery.disclosure_id, at);
                    shared
                        .streams
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .delivered
                        .entry((log.police_region.clone(), log.notification_address))
                        .or_default()
                        .insert(delivery.disclosure_id.clone());
                    log.deliveries
                        .push((delivery.sequence, delivery.disclosure_id));
                }
                Ok(None) => break,
                Err(status) => {
                    shared.subscriber_failed(format!(
                        "stream of {}: {}",
                        log.police_region,
                        describe(&status)
                    ));
                    break;
                }
            }
        }
        log.reconnections += 1;
    }
}

/// Runs the load: connects every user and subscriber, warms up, measures for
/// `options.duration` (or until `options.max_lifecycles` are done), lets in-flight lifecycles
/// finish within `options.drain_timeout`, and reports. `phase` (if given) is told when the
/// measurement window opens and closes.
pub async fn run(
    identity: Arc<BenchIdentity>,
    directory: &Directory,
    options: &LoadOptions,
    phase: Option<watch::Sender<Phase>>,
) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(options.concurrency > 0, "concurrency must be at least 1");
    anyhow::ensure!(
        !options.disclosure_addresses.is_empty() && !options.notification_addresses.is_empty(),
        "at least one disclosure and one notification address"
    );
    let tell = |now: Phase| {
        if let Some(phase) = &phase {
            phase.send_replace(now);
        }
    };
    tell(Phase::Starting);
    let all = participants(directory)?;
    // Only as many organisations as there are users, so each has someone working for it.
    let participants: Vec<Participant> = all.into_iter().take(options.concurrency).collect();
    let mut regions: Vec<String> = participants
        .iter()
        .map(|participant| participant.police_region.clone())
        .collect();
    regions.sort();
    regions.dedup();

    let mut users = Vec::with_capacity(options.concurrency);
    for number in 0..options.concurrency {
        users.push(
            User::connect(&identity, options, &participants, number)
                .await
                .with_context(|| format!("connecting user {number}"))?,
        );
    }

    let started = Instant::now();
    let shared = Arc::new(Shared {
        board: DeliveryBoard::default(),
        started: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        finished_in_window: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        polls: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        window_open: started + options.warmup,
        window_close: Mutex::new(None),
        recorded: Mutex::new(Recorded::default()),
        streams: Mutex::default(),
        max_lifecycles: options.max_lifecycles,
        wait_timeout: options.wait_timeout,
    });

    let (stop_subscribers, stopped) = watch::channel(false);
    let mut subscribers = Vec::new();
    for (index, address) in options.notification_addresses.iter().enumerate() {
        for region in &regions {
            let client = officer(&identity, *address, region, 1000 + index)
                .await
                .with_context(|| format!("connecting the subscriber of {region}"))?;
            shared
                .streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .delivered
                .insert((region.clone(), *address), HashSet::new());
            let log = SubscriberLog {
                police_region: region.clone(),
                notification_address: *address,
                deliveries: Vec::new(),
                reconnections: 0,
            };
            subscribers.push(tokio::spawn(subscribe(
                client,
                log,
                shared.clone(),
                stopped.clone(),
            )));
        }
    }

    let mut tasks = Vec::with_capacity(users.len());
    for user in users {
        tasks.push(tokio::spawn(user.run(shared.clone())));
    }

    // The window opens after the warm-up, and closes at the time bound or once the count
    // bound's lifecycles are all done.
    tokio::time::sleep_until((started + options.warmup).into()).await;
    tell(Phase::Measuring);
    let deadline = started + options.warmup + options.duration;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let count_reached = options
            .max_lifecycles
            .is_some_and(|max| shared.started.load(Ordering::SeqCst) >= max);
        if count_reached && shared.in_flight.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5).min(deadline - now)).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    let close = Instant::now();
    *shared
        .window_close
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(close);
    tell(Phase::Draining);

    let drain_deadline = tokio::time::Instant::now() + options.drain_timeout;
    let mut unfinished = 0;
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(drain_deadline, task).await {
            Ok(joined) => joined.context("a user task panicked")?,
            Err(_) => abort.abort(),
        }
    }
    if tokio::time::Instant::now() >= drain_deadline {
        unfinished = shared.in_flight.load(Ordering::SeqCst);
    }
    // Every stream (a region on every notification instance) gets the time to deliver all of
    // its region's approvals, so that what one never delivered shows as missing, not as late.
    let streams_deadline = tokio::time::Instant::now() + options.drain_timeout;
    while tokio::time::Instant::now() < streams_deadline
        && !shared
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .complete()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_subscribers.send_replace(true);
    let mut logs = Vec::new();
    for subscriber in subscribers {
        logs.push(subscriber.await.context("a subscriber task panicked")?);
    }
    tell(Phase::Done);

    let recorded = std::mem::take(
        &mut *shared
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let window_open = shared.window_open;
    Ok(LoadReport {
        samples: recorded.samples,
        lifecycles: shared.finished_in_window.load(Ordering::SeqCst),
        lifecycles_total: shared.finished.load(Ordering::SeqCst),
        unfinished,
        polls: shared.polls.load(Ordering::SeqCst),
        window: close.duration_since(window_open),
        failures: recorded.failures,
        subscriber_failures: recorded.subscriber_failures,
        subscribers: logs,
        approved: std::mem::take(
            &mut shared
                .streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .approved,
        ),
        organisations: participants
            .iter()
            .map(|participant| {
                (
                    participant.organisation.clone(),
                    participant.police_region.clone(),
                )
            })
            .collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_development_directory_has_several_organisations_and_regions() {
        let (_, directory) = crate::system::development_directory().unwrap();
        let found = participants(&directory).unwrap();
        assert!(found.len() >= 4, "{found:?}");
        let mut regions: Vec<&str> = found.iter().map(|p| p.police_region.as_str()).collect();
        regions.sort();
        regions.dedup();
        assert!(regions.len() >= 3, "{regions:?}");
        assert!(draft_content("X-1", "OSL-26-1", false).is_ok());
    }

    #[test]
    fn anomalies_find_repeats_and_disorder() {
        let log = |deliveries: Vec<(u64, &str)>| SubscriberLog {
            police_region: "mitt".into(),
            notification_address: "127.0.0.1:1".parse().unwrap(),
            deliveries: deliveries
                .into_iter()
                .map(|(sequence, id)| (sequence, id.to_owned()))
                .collect(),
            reconnections: 0,
        };
        let (disorder, duplicates) = log(vec![(1, "a"), (2, "b"), (3, "c")]).anomalies();
        assert!(disorder.is_empty() && duplicates.is_empty());
        let (disorder, duplicates) = log(vec![(1, "a"), (3, "c"), (2, "b"), (4, "a")]).anomalies();
        assert_eq!(disorder, vec![2]);
        assert_eq!(duplicates, vec!["a".to_owned()]);

        let approved: HashSet<String> = ["a", "b", "d"].iter().map(|id| (*id).to_owned()).collect();
        assert_eq!(
            log(vec![(1, "a"), (2, "b"), (3, "c")]).missing(&approved),
            vec!["d".to_owned()]
        );
        assert!(
            log(vec![(1, "d"), (2, "a"), (3, "b")])
                .missing(&approved)
                .is_empty()
        );
    }

    #[test]
    fn streams_are_complete_once_each_delivered_its_regions_approvals() {
        let address: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut progress = StreamProgress::default();
        assert!(progress.complete());
        // The stream of `region` on `at` has delivered `ids`.
        let delivered = |progress: &mut StreamProgress, region: &str, at, ids: &[&str]| {
            let stream = progress.delivered.entry((region.into(), at)).or_default();
            stream.extend(ids.iter().map(|id| (*id).to_owned()));
        };
        progress
            .approved
            .entry("mitt".into())
            .or_default()
            .insert("a".into());
        delivered(&mut progress, "mitt", address, &["a"]);
        delivered(&mut progress, "mitt", other, &[]);
        assert!(!progress.complete());
        delivered(&mut progress, "mitt", other, &["a"]);
        // A region with streams but nothing approved is complete.
        delivered(&mut progress, "syd", address, &[]);
        assert!(progress.complete());
    }

    #[test]
    fn the_delivery_board_answers_early_and_late_waiters() {
        let board = DeliveryBoard::default();
        let mut early = board.wait("a");
        assert!(early.try_recv().is_err());
        board.arrived("a", Instant::now());
        assert!(early.try_recv().is_ok());
        // A second subscriber's copy still answers a waiter that has not looked yet.
        let mut late = board.wait("a");
        assert!(late.try_recv().is_ok());
        board.forget("a");
        board.arrived("a", Instant::now());
        assert!(board.entries.lock().unwrap().is_empty());
    }
}
