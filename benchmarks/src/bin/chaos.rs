//! `chaos`: PostgreSQL stopped and started again under load. The three services run in this
//! process, as `tryggdel start` builds them, on a throw-away PostgreSQL cluster of the run's
//! own (initdb on a free port, run as the `postgres` user when started as root; never a server
//! anyone else uses). Simulated users draft, submit and approve, and police officers of each
//! region acknowledge what they are delivered, while the cluster is stopped (`pg_ctl stop -m
//! fast` or `-m immediate`) for each outage asked for and started again.
//!
//! Printed: the status codes the users saw, per outage and in all; the longest call; for each
//! outage, how long after the database's return the first call succeeded. Checked afterwards,
//! failing the run otherwise: no call took longer than the database deadline (plus
//! [`CALL_ALLOWANCE`] for the rest of the call), no call was answered INTERNAL, every approval
//! answered OK is in the audit log exactly once and was delivered, every outbox event reached
//! the log exactly once (the shared consistency checks), the relays drained, and the export
//! verifies against the log's key.
//!
//! `--short` (one 5 s fast stop and one 5 s immediate stop) is part of `scripts/test.sh`; the
//! full run is documented in BENCHMARKS.md.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit_verify::{ExportEntry, ExportHeader, ExportWriter, VerifyOptions};
use tryggdel_auth::Role;
use tryggdel_bench::consistency::{self, RunDatabases};
use tryggdel_bench::{Bearer, BenchIdentity};
use tryggdel_domain::{Directory, LegalBasisId, OrganisationCode};
use tryggdel_merkle::checkpoint::CheckpointSigner;
use tryggdel_merkle::hash_from_slice;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{ExportRequest, export_chunk};
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::{ApproveRequest, CreateDraftRequest, SubmitRequest};
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;
use tryggdel_proto::notification::v1::{AcknowledgeRequest, ListPendingRequest};
use tryggdel_system::{DataDirectory, RunningSystem, Service, SystemBuilder};

/// What a call may take beyond the database deadline (TLS, token, the work around the
/// database) before the run counts it as too slow.
const CALL_ALLOWANCE: Duration = Duration::from_secs(1);
/// How long a user pauses after a refused call.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(100);
/// How long the tokens are valid: longer than any run.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Deliveries an officer lists at a time.
const OFFICER_PAGE: u32 = 25;
/// The legal basis every disclosure is made under.
const LEGAL_BASIS: &str = tryggdel_test_support::draft::LEGAL_BASIS;

type Disclosures = DisclosureServiceClient<InterceptedService<Channel, Bearer>>;
type Notifications = NotificationServiceClient<InterceptedService<Channel, Bearer>>;

#[derive(Parser, Debug)]
#[command(about = "PostgreSQL stopped and restarted under load, on a throw-away cluster")]
struct Args {
    /// Outages as MODE:SECONDS, in order (MODE is fast or immediate).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fast:5,immediate:5,fast:40,immediate:40"
    )]
    outages: Vec<String>,
    /// One 5 s fast stop and one 5 s immediate stop (the test command's run).
    #[arg(long)]
    short: bool,
    /// Simulated users drafting, submitting and approving at the same time.
    #[arg(long, default_value_t = 8)]
    users: usize,
    /// Seconds of load before the first outage and after each return.
    #[arg(long, default_value_t = 4.0)]
    settle: f64,
    /// The database deadline the services run with (`[database] deadline_ms`).
    #[arg(long, default_value_t = 5000)]
    deadline_ms: u64,
    /// Fail (rather than say so and succeed) when no PostgreSQL server binaries are found.
    #[arg(long, env = "TRYGGDEL_REQUIRE_POSTGRES", value_parser = clap::builder::BoolishValueParser::new())]
    require: bool,
}

/// One stop of the cluster.
#[derive(Clone, Copy, Debug)]
struct Outage {
    mode: StopMode,
    length: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopMode {
    Fast,
    Immediate,
}

impl StopMode {
    fn as_str(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

impl Outage {
    fn parse(text: &str) -> anyhow::Result<Outage> {
        let (mode, seconds) = text
            .split_once(':')
            .with_context(|| format!("outage {text:?}: expected MODE:SECONDS"))?;
        let mode = match mode {
            "fast" => StopMode::Fast,
            "immediate" => StopMode::Immediate,
            other => bail!("outage {text:?}: mode {other:?} is neither fast nor immediate"),
        };
        let seconds: f64 = seconds
            .parse()
            .with_context(|| format!("outage {text:?}: seconds"))?;
        Ok(Outage {
            mode,
            length: Duration::try_from_secs_f64(seconds)
                .with_context(|| format!("outage {text:?}: seconds must be ≥ 0"))?,
        })
    }
}

/// A throw-away PostgreSQL cluster: its own directory, port and socket directory.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// As which user the server runs (`postgres` when this process is root).
    run_as: Option<&'static str>,
    directory: tempfile::TempDir,
}

impl Cluster {
    /// The newest installed server's binaries, if any.
    fn find_binaries() -> Option<PathBuf> {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin)
    }

    fn create(bin: PathBuf) -> anyhow::Result<Cluster> {
        let root = is_root()?;
        let directory = tempfile::Builder::new()
            .prefix("tryggdel-chaos-")
            .tempdir()
            .context("a directory for the cluster")?;
        let run_as = root.then_some("postgres");
        if let Some(user) = run_as {
            run(Command::new("chown")
                .arg(format!("{user}:{user}"))
                .arg(directory.path()))
            .context("handing the cluster's directory to the postgres user")?;
        }
        let port = free_port()?;
        let cluster = Cluster {
            data: directory.path().join("data"),
            bin,
            port,
            run_as,
            directory,
        };
        cluster
            .run_tool(
                "initdb",
                &[
                    "-D",
                    path_str(&cluster.data)?,
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
            )
            .context("initdb")?;
        Ok(cluster)
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    fn run_tool(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let mut command = self.command(tool);
        command.args(args).current_dir(self.directory.path());
        run(&mut command)
    }

    fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            path_str(self.directory.path())?
        );
        let log = self.directory.path().join("server.log");
        self.run_tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .context("starting the cluster")
    }

    fn stop(&self, mode: StopMode) -> anyhow::Result<()> {
        self.run_tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data)?,
                "-m",
                mode.as_str(),
                "-w",
                "-t",
                "60",
                "stop",
            ],
        )
        .with_context(|| format!("stopping the cluster ({})", mode.as_str()))
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever state it is in; the directory goes with the TempDir.
        let _ = self.stop(StopMode::Immediate);
    }
}

fn is_root() -> anyhow::Result<bool> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .context("running id -u")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("the free port")?.port())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} failed ({}): {}{}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// One call a user or officer made.
#[derive(Clone, Copy, Debug)]
struct Call {
    method: &'static str,
    started: Instant,
    took: Duration,
    code: Code,
}

/// What every user and officer shares.
#[derive(Default)]
struct Record {
    calls: Mutex<Vec<Call>>,
    /// Disclosures whose Approve was answered OK.
    approved: Mutex<HashSet<String>>,
    stop: AtomicBool,
    lifecycles: AtomicU64,
}

impl Record {
    async fn call<T>(
        &self,
        method: &'static str,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        let started = Instant::now();
        let answer = call.await;
        let code = match &answer {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Call {
                method,
                started,
                took: started.elapsed(),
                code,
            });
        answer.map(tonic::Response::into_inner)
    }

    fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An organisation whose caseworkers draft and whose decision maker approves.
#[derive(Clone, Debug)]
struct Participant {
    organisation: String,
    short: String,
    decision_maker: String,
    police_region: String,
    secrecy: String,
}

/// The organisations of the directory that route to a police region and have a decision maker
/// `beslut-<name>` holding the delegation for [`LEGAL_BASIS`] (as in the development directory).
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
            .trim_start_matches("region-")
            .to_owned();
        let decision_maker = format!("beslut-{short}");
        if directory.holds_delegation(&parsed, &decision_maker, &basis) {
            found.push(Participant {
                organisation: code,
                short,
                decision_maker,
                police_region: region.as_str().to_owned(),
                secrecy: secrecy.as_str().to_owned(),
            });
        }
    }
    found.sort_by(|a, b| a.organisation.cmp(&b.organisation));
    ensure!(
        !found.is_empty(),
        "no organisation can approve {LEGAL_BASIS}"
    );
    Ok(found)
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
        tryggdel_bench::identity::bearer(&token)?,
    ))
}

/// Drafts, submits and approves until told to stop; a refused call ends the lifecycle.
async fn user(
    number: usize,
    participant: Participant,
    mut caseworker: Disclosures,
    mut decision_maker: Disclosures,
    record: Arc<Record>,
) {
    let mut round = 0u64;
    while !record.stop.load(Ordering::SeqCst) {
        round += 1;
        let done = lifecycle(
            number,
            round,
            &participant,
            &mut caseworker,
            &mut decision_maker,
            &record,
        )
        .await;
        if done.is_err() {
            tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
        }
    }
}

async fn lifecycle(
    number: usize,
    round: u64,
    participant: &Participant,
    caseworker: &mut Disclosures,
    decision_maker: &mut Disclosures,
    record: &Record,
) -> Result<(), tonic::Status> {
    let content = tryggdel_test_support::draft::draft_content(
        &format!("CHAOS-{number}-{round}"),
        &participant.secrecy,
        false,
    )
    .map_err(|error| tonic::Status::internal(format!("{error:#}")))?;
    let draft = record
        .call(
            "CreateDraft",
            caseworker.create_draft(CreateDraftRequest {
                client_request_id: format!("chaos-{}-{number}-{round}", uuid::Uuid::now_v7()),
                content: Some(content),
            }),
        )
        .await?;
    let submitted = record
        .call(
            "Submit",
            caseworker.submit(SubmitRequest {
                disclosure_id: draft.id.clone(),
                expected_version: draft.version,
            }),
        )
        .await?;
    record
        .call(
            "Approve",
            decision_maker.approve(ApproveRequest {
                disclosure_id: submitted.id.clone(),
                expected_version: submitted.version,
                comment: String::new(),
                close_relative_judgement: String::new(),
            }),
        )
        .await?;
    record
        .approved
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(submitted.id);
    record.lifecycles.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// An officer of one region acknowledging whatever is pending, until told to stop.
async fn officer(mut client: Notifications, record: Arc<Record>) {
    let mut reference = 0u64;
    while !record.stop.load(Ordering::SeqCst) {
        let pending = record
            .call(
                "ListPending",
                client.list_pending(ListPendingRequest {
                    page_size: OFFICER_PAGE,
                    page_token: String::new(),
                }),
            )
            .await;
        let Ok(pending) = pending else {
            tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
            continue;
        };
        for delivery in pending.deliveries {
            reference += 1;
            let _ = record
                .call(
                    "Acknowledge",
                    client.acknowledge(AcknowledgeRequest {
                        disclosure_id: delivery.disclosure_id,
                        police_reference: format!("5000-K{:06}-26", reference % 1_000_000),
                    }),
                )
                .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What one outage looked like from the clients.
struct Window {
    outage: Outage,
    stopped_at: Instant,
    returned_at: Instant,
    until: Instant,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run_chaos().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chaos: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run_chaos() -> anyhow::Result<bool> {
    let mut args = Args::parse();
    if args.short {
        args.outages = vec!["fast:5".to_owned(), "immediate:5".to_owned()];
        args.settle = args.settle.min(3.0);
    }
    let outages = args
        .outages
        .iter()
        .map(|text| Outage::parse(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settle = Duration::try_from_secs_f64(args.settle).context("--settle must be seconds")?;
    let deadline = Duration::from_millis(args.deadline_ms);
    let Some(bin) = Cluster::find_binaries() else {
        let how = "install the PostgreSQL server (initdb, pg_ctl under /usr/lib/postgresql/<version>/bin) \
                   and run `cargo run --release -p tryggdel-bench --bin chaos -- --short`";
        if args.require {
            bail!(
                "no PostgreSQL server binaries found, and TRYGGDEL_REQUIRE_POSTGRES is set: {how}"
            );
        }
        println!("chaos: NOT RUN: no PostgreSQL server binaries found; to run it, {how}");
        return Ok(true);
    };
    // Warnings and errors of the services; sqlx's own notices (a line per connection the server
    // ends) only as errors, so the outages' transitions stand out.
    let _ = tryggdel_telemetry::init(tryggdel_telemetry::LogFormat::Text, "warn,sqlx=error");

    let cluster = Cluster::create(bin)?;
    cluster.start()?;
    println!(
        "chaos: throw-away cluster on 127.0.0.1:{} ({}), {} users, deadline {} ms, outages: {}",
        cluster.port,
        cluster.directory.path().display(),
        args.users,
        deadline.as_millis(),
        args.outages.join(", ")
    );
    tryggdel_test_support::create_postgres_database(&cluster.url("postgres"), "chaos")
        .await
        .context("creating the run's database")?;
    let url = cluster.url("chaos");

    let data = tempfile::tempdir().context("a data directory")?;
    let system = SystemBuilder::development(data.path())
        .on_free_ports()
        .database(Service::Audit, url.clone())
        .database(Service::Notification, url.clone())
        .database(Service::Disclosure, url.clone())
        .audit(move |settings| settings.database.deadline = deadline)
        .notification(move |settings| settings.database.deadline = deadline)
        .disclosure(move |settings| settings.database.deadline = deadline)
        .start()
        .await
        .context("starting the services")?;
    let outcome = drive(&args, &cluster, &system, &outages, settle, deadline, &url).await;
    let stopped = system.stop().await;
    let passed = outcome?;
    stopped.context("stopping the services")?;
    Ok(passed)
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &Args,
    cluster: &Cluster,
    system: &RunningSystem,
    outages: &[Outage],
    settle: Duration,
    deadline: Duration,
    url: &str,
) -> anyhow::Result<bool> {
    let identity = Arc::new(BenchIdentity::from_development_pki(&DataDirectory::new(
        &system.data.root,
    ))?);
    let participants = participants(&system.settings.disclosure.directory)?;
    let record = Arc::new(Record::default());
    let disclosure = system.disclosure.local_addr;
    let notification = system.notification.local_addr;
    let mut tasks = Vec::new();
    for number in 0..args.users {
        let participant = participants
            .get(number % participants.len())
            .cloned()
            .context("a participant")?;
        let caseworker = disclosures(
            &identity,
            disclosure,
            &participant.organisation,
            &format!("handlaggare-{}-{number}", participant.short),
            Role::Caseworker,
        )
        .await?;
        let decision_maker = disclosures(
            &identity,
            disclosure,
            &participant.organisation,
            &participant.decision_maker,
            Role::DecisionMaker,
        )
        .await?;
        tasks.push(tokio::spawn(user(
            number,
            participant,
            caseworker,
            decision_maker,
            record.clone(),
        )));
    }
    let regions: BTreeMap<String, ()> = participants
        .iter()
        .map(|participant| (participant.police_region.clone(), ()))
        .collect();
    for region in regions.keys() {
        let token = identity.token(
            &format!("polis-{region}-chaos"),
            "polisen",
            &[Role::PoliceOfficer],
            Some(region),
            TOKEN_LIFETIME,
        )?;
        let channel = identity.channel(notification, "polisen").await?;
        let client = NotificationServiceClient::with_interceptor(
            channel,
            tryggdel_bench::identity::bearer(&token)?,
        );
        tasks.push(tokio::spawn(officer(client, record.clone())));
    }

    let mut windows = Vec::new();
    tokio::time::sleep(settle).await;
    for outage in outages {
        let stopped_at = Instant::now();
        cluster.stop(outage.mode)?;
        tokio::time::sleep(outage.length).await;
        cluster.start()?;
        let returned_at = Instant::now();
        tokio::time::sleep(settle.max(Duration::from_secs(3))).await;
        windows.push(Window {
            outage: *outage,
            stopped_at,
            returned_at,
            until: Instant::now(),
        });
        println!(
            "chaos: stopped ({}) for {:.1} s, back after {:.1} s",
            outage.mode.as_str(),
            outage.length.as_secs_f64(),
            (returned_at - stopped_at).as_secs_f64()
        );
    }
    record.stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.context("a user task panicked")?;
    }

    let calls = record.calls();
    let approved = record
        .approved
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut passed = true;
    println!(
        "chaos: {} calls, {} lifecycles approved OK",
        calls.len(),
        approved.len()
    );
    println!("{}", codes_line("all calls", calls.iter()));
    for window in &windows {
        let inside: Vec<&Call> = calls
            .iter()
            .filter(|call| {
                call.started + call.took >= window.stopped_at && call.started < window.until
            })
            .collect();
        let first_success = calls
            .iter()
            .filter(|call| call.code == Code::Ok && call.started >= window.returned_at)
            .map(|call| call.started + call.took - window.returned_at)
            .min();
        let longest = inside
            .iter()
            .map(|call| call.took)
            .max()
            .unwrap_or_default();
        println!(
            "{}",
            codes_line(
                &format!(
                    "{} stop {:.0} s",
                    window.outage.mode.as_str(),
                    window.outage.length.as_secs_f64()
                ),
                inside.iter().copied()
            )
        );
        match first_success {
            Some(after) => println!(
                "  longest call {:.3} s; first success {:.3} s after the database returned",
                longest.as_secs_f64(),
                after.as_secs_f64()
            ),
            None => {
                println!("  FAIL: no call succeeded after the database returned");
                passed = false;
            }
        }
    }
    let longest = calls.iter().max_by_key(|call| call.took);
    if let Some(call) = longest {
        println!(
            "chaos: longest call {} {:.3} s ({:?})",
            call.method,
            call.took.as_secs_f64(),
            call.code
        );
        if call.took > deadline + CALL_ALLOWANCE {
            println!(
                "  FAIL: a call took longer than the deadline ({} ms) and {} ms for the rest",
                deadline.as_millis(),
                CALL_ALLOWANCE.as_millis()
            );
            passed = false;
        }
    }
    let internal = calls
        .iter()
        .filter(|call| call.code == Code::Internal)
        .count();
    if internal > 0 {
        println!("  FAIL: {internal} calls were answered INTERNAL");
        passed = false;
    }

    let databases = RunDatabases {
        audit_url: url.to_owned(),
        notification_url: url.to_owned(),
        disclosure_url: url.to_owned(),
    };
    let drained = consistency::wait_for_drained(&databases, Duration::from_secs(120))
        .await
        .context("the relays did not drain")?;
    consistency::wait_for_checkpoint(&databases, Duration::from_secs(30)).await?;
    println!(
        "chaos: outboxes drained {:.2} s after the load stopped",
        drained.as_secs_f64()
    );
    let signer = CheckpointSigner::new(
        system.settings.audit.signing_key.clone(),
        system.settings.audit.origin.clone(),
    )
    .context("the log's key")?;
    let report = consistency::check(&databases, &signer.verifier()).await?;
    println!("chaos: consistent: {}", report.describe());
    approvals_logged_once_and_delivered(url, &approved).await?;
    println!(
        "chaos: each of the {} approvals answered OK is in the audit log exactly once and was delivered",
        approved.len()
    );
    let entries = export_verifies(&identity, system, &signer).await?;
    println!("chaos: the export of {entries} entries verifies against the log's key");
    println!(
        "RESULT chaos {} outages={} calls={} approved={} internal={} longest_ms={} {}",
        if passed { "PASS" } else { "FAIL" },
        windows.len(),
        calls.len(),
        approved.len(),
        internal,
        longest.map_or(0, |call| call.took.as_millis()),
        windows
            .iter()
            .map(|window| {
                let first = calls
                    .iter()
                    .filter(|call| call.code == Code::Ok && call.started >= window.returned_at)
                    .map(|call| (call.started + call.took - window.returned_at).as_millis())
                    .min()
                    .unwrap_or(u128::MAX);
                format!(
                    "{}{}s_first_success_ms={first}",
                    window.outage.mode.as_str(),
                    window.outage.length.as_secs()
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(passed)
}

/// `label: OK n, UNAVAILABLE n, …` over `calls`.
fn codes_line<'a>(label: &str, calls: impl Iterator<Item = &'a Call>) -> String {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for call in calls {
        *counts.entry(format!("{:?}", call.code)).or_default() += 1;
    }
    let counts: Vec<String> = counts
        .into_iter()
        .map(|(code, count)| format!("{code} {count}"))
        .collect();
    format!("  {label}: {}", counts.join(", "))
}

/// Every approval answered OK is one `disclosure.approved` entry of the log and one delivery.
async fn approvals_logged_once_and_delivered(
    url: &str,
    approved: &HashSet<String>,
) -> anyhow::Result<()> {
    let mut audit = consistency::connect(url, "audit").await?;
    let logged: Vec<(String, i64)> = sqlx::query_as(
        "SELECT disclosure_id, count(*) FROM audit_entries WHERE action = 'disclosure.approved' \
         GROUP BY disclosure_id",
    )
    .fetch_all(&mut audit)
    .await
    .context("reading the logged approvals")?;
    let logged: BTreeMap<String, i64> = logged.into_iter().collect();
    let mut notification = consistency::connect(url, "notification").await?;
    let delivered: Vec<(String,)> = sqlx::query_as("SELECT disclosure_id FROM deliveries")
        .fetch_all(&mut notification)
        .await
        .context("reading the deliveries")?;
    let delivered: HashSet<String> = delivered.into_iter().map(|(id,)| id).collect();
    for id in approved {
        let times = logged.get(id).copied().unwrap_or(0);
        ensure!(
            times == 1,
            "approval of {id} was answered OK but is in the audit log {times} times"
        );
        ensure!(
            delivered.contains(id),
            "approval of {id} was answered OK but never delivered"
        );
    }
    Ok(())
}

/// Exports the log as a compliance officer over gRPC and verifies it offline; its size.
async fn export_verifies(
    identity: &BenchIdentity,
    system: &RunningSystem,
    signer: &CheckpointSigner,
) -> anyhow::Result<u64> {
    let token = identity.token(
        "granskare-ivo",
        "ivo",
        &[Role::ComplianceOfficer],
        None,
        TOKEN_LIFETIME,
    )?;
    let channel = identity.channel(system.audit.local_addr, "ivo").await?;
    let mut client =
        AuditServiceClient::with_interceptor(channel, tryggdel_bench::identity::bearer(&token)?);
    let mut stream = client
        .export(ExportRequest { tree_size: 0 })
        .await
        .context("export")?
        .into_inner();
    let first = stream
        .message()
        .await
        .context("export")?
        .context("an empty export")?;
    let Some(export_chunk::Part::Checkpoint(checkpoint)) = first.part else {
        bail!("the export did not start with its checkpoint");
    };
    let mut bytes = Vec::new();
    let mut writer = ExportWriter::new(
        &mut bytes,
        &ExportHeader {
            origin: checkpoint.origin.clone(),
            tree_size: checkpoint.tree_size,
            checkpoint_note: checkpoint.note.clone(),
        },
    )?;
    while let Some(chunk) = stream.message().await.context("export")? {
        let Some(export_chunk::Part::Entries(batch)) = chunk.part else {
            bail!("the export holds a second checkpoint");
        };
        for entry in batch.entries {
            let openings: Vec<tryggdel_audit_verify::ExportOpening> = entry
                .openings
                .into_iter()
                .map(|opening| tryggdel_audit_verify::ExportOpening {
                    key: opening.key,
                    salt: opening.salt,
                    data: opening.data,
                })
                .collect();
            writer.write_entry_with_openings(
                &ExportEntry {
                    index: entry.index,
                    recorded_leaf_hash: hash_from_slice(&entry.leaf_hash)
                        .with_context(|| format!("entry {}: leaf hash", entry.index))?,
                    entry: entry.entry,
                },
                &openings,
            )?;
        }
    }
    writer.finish()?;
    let report = tryggdel_audit_verify::verify_export(
        std::io::BufReader::new(bytes.as_slice()),
        &VerifyOptions::new(signer.verifier()),
        &mut |_| {},
    )?;
    ensure!(
        report.is_ok(),
        "the export does not verify: {:?}",
        report
            .findings()
            .map(|finding| finding.message.as_str())
            .collect::<Vec<_>>()
    );
    Ok(report.tree_size)
}
