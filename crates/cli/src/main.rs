//! `tryggdel`: starts the whole system on the embedded default, runs one service as deployed,
//! plays the demo, and is the command line of every role (caseworker, decision maker, police
//! officer, compliance officer).
//!
//! Exit codes (also in the README): 0 done; 1 could not run; 2 the audit log does not verify;
//! 3 not authenticated; 4 not permitted; 5 refused (invalid input, wrong state, not found).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tryggdel::client::{Connection, exit, exit_code};
use tryggdel::commands::{DisclosureAction, Endpoints, PoliceAction, Session};
use tryggdel::delegation::DelegationAction;
use tryggdel::holds::HoldAction;
use tryggdel::report::{ReportFormat, SubjectReportRequest};
use tryggdel::requests::{NewRequest, RequestAction};
use tryggdel::review::ReviewAction;
use tryggdel_auth::{Role, SignerConfig, TokenRequest, TokenSigner};
use tryggdel_proto::audit::v1::QueryRequest;
use tryggdel_system::development::{AUDIENCE, ISSUER};
use tryggdel_system::{Config, DataDirectory, Service, SystemOptions, read, start_system};

#[derive(Parser)]
#[command(
    name = "tryggdel",
    version,
    about = "Secure disclosures to the police under OSL 10 kap. 18 c §",
    after_help = "Exit codes: 0 done, 1 could not run, 2 audit log does not verify, \
                  3 not authenticated, 4 not permitted, 5 refused."
)]
struct Cli {
    /// Where development certificates, keys and SQLite databases live.
    #[arg(long, global = true, env = "TRYGGDEL_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Log format: text or json.
    #[arg(
        long,
        global = true,
        env = "TRYGGDEL_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: String,
    /// Print JSON instead of tables (before or after the subcommand).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the whole system in development mode (creates the data directory on first start).
    Start {
        /// Address of the disclosure service.
        #[arg(
            long,
            env = "TRYGGDEL_DISCLOSURE_LISTEN",
            default_value = "127.0.0.1:50051"
        )]
        disclosure_listen: SocketAddr,
        /// Address of the audit service.
        #[arg(long, env = "TRYGGDEL_AUDIT_LISTEN", default_value = "127.0.0.1:50052")]
        audit_listen: SocketAddr,
        /// Address of the notification service.
        #[arg(
            long,
            env = "TRYGGDEL_NOTIFICATION_LISTEN",
            default_value = "127.0.0.1:50053"
        )]
        notification_listen: SocketAddr,
        /// Address of the web console (HTTPS).
        #[arg(
            long,
            env = "TRYGGDEL_CONSOLE_LISTEN",
            default_value = "127.0.0.1:8443"
        )]
        console_listen: SocketAddr,
        /// Database URL; the default is a SQLite file per service in the data directory.
        #[arg(long, env = "TRYGGDEL_DATABASE_URL")]
        database_url: Option<String>,
        /// The organisations and delegations file; the default is the development directory.
        #[arg(long, env = "TRYGGDEL_DIRECTORY")]
        directory: Option<PathBuf>,
        /// An OpenTelemetry collector (OTLP/gRPC, e.g. http://127.0.0.1:4317) for traces and
        /// metrics.
        #[arg(long, env = "TRYGGDEL_OTLP_ENDPOINT")]
        otlp_endpoint: Option<String>,
    },
    /// Run one service as deployed, configured by a file and TRYGGDEL_… variables.
    Serve {
        service: Service,
        /// The configuration file (TOML).
        #[arg(long, env = "TRYGGDEL_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Bring one service's database schema up to date, then exit.
    Migrate {
        service: Service,
        #[arg(long, env = "TRYGGDEL_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Ask a service whether it is serving (gRPC health over mTLS); exit 0 when it is.
    Health {
        /// e.g. https://127.0.0.1:50051
        #[arg(long)]
        endpoint: String,
        /// The configuration whose tls.ca, tls.cert and tls.key to connect with.
        #[arg(long, env = "TRYGGDEL_CONFIG")]
        config: Option<PathBuf>,
        /// Ask about this service's gRPC name rather than the server as a whole.
        #[arg(long)]
        service: Option<Service>,
    },
    /// Write a development PKI and keys for every service (the data directory's layout).
    Pki {
        #[arg(long)]
        out: PathBuf,
        /// The organisations to issue client certificates for.
        #[arg(long)]
        directory: Option<PathBuf>,
    },
    /// Print a development token signed with the data directory's key.
    DevToken {
        /// caseworker, decision_maker, police_officer, compliance_officer or admin (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The user id (the token's subject).
        #[arg(long)]
        user: String,
        /// The organisation code, e.g. bollnas-kommun.
        #[arg(long)]
        org: String,
        /// The organisational unit.
        #[arg(long)]
        unit: Option<String>,
        /// The police region (police officers), e.g. mitt.
        #[arg(long)]
        region: Option<String>,
        /// Minutes until the token expires.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
    },
    /// Play the Trygghetens hus scenario against the running system, step by step.
    Demo {
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Caseworkers and decision makers: drafts, assessments, decisions.
    Disclosure {
        #[command(flatten)]
        user: UserArgs,
        #[command(subcommand)]
        command: DisclosureCommand,
    },
    /// Admins: who may decide disclosures under which legal bases, and when.
    Delegation {
        #[command(flatten)]
        user: UserArgs,
        #[command(subcommand)]
        command: DelegationCommand,
    },
    /// Requests for information: officers of a law-enforcement authority send them and read
    /// the answers; the organisation asked lists, reads and refuses them (a disclosure whose
    /// draft file names `answers_information_request_id` answers one).
    Request {
        #[command(flatten)]
        user: UserArgs,
        #[command(subcommand)]
        command: RequestCommand,
    },
    /// Police officers: the region's inbox, receipts, follow-up questions.
    Police {
        #[command(flatten)]
        user: UserArgs,
        #[command(subcommand)]
        command: PoliceCommand,
    },
    /// Holds on disclosures: the disclosing organisation's officers, or the receiving
    /// authority's, keep a disclosure out of subject reports and clearing until a day.
    Hold {
        #[command(flatten)]
        user: UserArgs,
        #[command(subcommand)]
        command: HoldCommand,
    },
    /// Compliance officers: reports from the audit log, e.g. a subject report (registerutdrag).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Compliance officers: the audit log — queries, checkpoints, exports, offline verification.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Compliance officers: systematic log review — written criteria, review runs (a seeded
    /// sample and targeted rules), findings and their outcomes.
    Review {
        #[command(flatten)]
        user: UserArgs,
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Compliance officers and supervisors: disclosure statistics for a period, as CSV or
    /// JSON (counts under 5 are always suppressed in an export).
    Statistics {
        #[command(flatten)]
        user: UserArgs,
        /// First day, YYYY-MM-DD (Swedish time).
        #[arg(long, value_parser = tryggdel::statistics::parse_day)]
        from: time::Date,
        /// Last day, YYYY-MM-DD, included.
        #[arg(long, value_parser = tryggdel::statistics::parse_day)]
        until: time::Date,
        /// Group by, comma-separated: organisation, basis (legal_basis), crime
        /// (crime_category), recipient, region (police_region), outcome, urgency, month.
        #[arg(long, default_value = "")]
        by: String,
        /// The organisation (supervisors; default your own, a supervisor's: every one).
        #[arg(long)]
        organisation: Option<String>,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: tryggdel::statistics::ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Administrators and compliance officers: clearing (gallring) under a clearing decision.
    Clearing {
        #[command(flatten)]
        user: UserArgs,
        #[command(subcommand)]
        command: ClearingCommand,
    },
    /// Another agency's witness of the audit log (C2SP tlog-witness and cosignature/v1).
    Witness {
        #[command(subcommand)]
        command: WitnessCommand,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// The organisation's written criteria for unauthorised access.
    Criteria {
        #[command(subcommand)]
        command: CriteriaCommand,
    },
    /// Run a review of a period: a reproducible random sample and the targeted rules.
    Run {
        /// The organisation reviewed (default your own; supervisors: any).
        #[arg(long)]
        organisation: Option<String>,
        /// First day, YYYY-MM-DD (Swedish time).
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD, included.
        #[arg(long)]
        until: String,
        /// 64 hex digits; the same seed draws the same sample (default: a fresh one, printed).
        #[arg(long)]
        seed: Option<String>,
        /// Entries drawn at random (default: the service's).
        #[arg(long)]
        sample: Option<u32>,
    },
    /// A run with its findings, their explanations and outcomes.
    Show {
        /// The run's id.
        run: String,
    },
    /// The organisation's runs, newest first.
    List {
        #[arg(long)]
        organisation: Option<String>,
    },
    /// Record the outcome of a finding.
    Outcome {
        /// The run's id.
        run: String,
        /// The finding's number in the run.
        finding: u32,
        /// no-remark, explained or unauthorised-escalated.
        #[arg(long, value_parser = tryggdel::review::parse_outcome)]
        outcome: tryggdel_proto::audit::v1::ReviewOutcome,
        /// Required for explained and unauthorised-escalated.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Subcommand)]
enum CriteriaCommand {
    /// Store a new version of the criteria, from a text file or the command line.
    Set {
        /// A UTF-8 text file with the criteria.
        #[arg(long, conflicts_with = "text", required_unless_present = "text")]
        file: Option<PathBuf>,
        #[arg(long)]
        text: Option<String>,
    },
    /// Show the latest criteria, or a version.
    Show {
        #[arg(long)]
        organisation: Option<String>,
        #[arg(long)]
        version: Option<u32>,
    },
}

#[derive(Subcommand)]
enum ClearingCommand {
    /// Clear the personal data of the organisation's disclosures that the decision makes due
    /// (held ones and persons born on an exempt day are kept), and have the audit log clear
    /// theirs.
    Run {
        /// The clearing decision, a TOML file.
        #[arg(long)]
        decision: PathBuf,
        /// Only show what would be cleared and kept.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum WitnessCommand {
    /// Create the witness's Ed25519 key (PKCS#8 PEM, 0600) and print its verifier key, which
    /// the log operator puts into the witness policy.
    Key {
        /// The witness's name, e.g. witness.polisen.se/tryggdel.
        #[arg(long)]
        name: String,
        /// Where to write the key (never replaced).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the witness: HTTPS `POST /add-checkpoint` and `GET /checkpoint/<origin>`.
    Serve {
        #[arg(long, env = "TRYGGDEL_WITNESS_NAME")]
        name: String,
        /// The witness's key (from `tryggdel witness key`).
        #[arg(long, env = "TRYGGDEL_WITNESS_KEY")]
        key: PathBuf,
        /// A log to witness: its verifier key `<origin>+<key id>+<key>` or a file holding it
        /// (repeatable; comma-separated in the environment).
        #[arg(
            long = "log",
            env = "TRYGGDEL_WITNESS_LOGS",
            value_delimiter = ',',
            required = true
        )]
        logs: Vec<String>,
        #[arg(long, env = "TRYGGDEL_WITNESS_LISTEN", default_value = "0.0.0.0:7380")]
        listen: std::net::SocketAddr,
        /// Where the witness keeps what it cosigned; losing it means a new key.
        #[arg(long, env = "TRYGGDEL_WITNESS_STATE_DIR")]
        state_dir: PathBuf,
        /// Its HTTPS certificate chain (PEM).
        #[arg(long, env = "TRYGGDEL_WITNESS_TLS_CERT")]
        tls_cert: PathBuf,
        /// Its HTTPS private key (PEM).
        #[arg(long, env = "TRYGGDEL_WITNESS_TLS_KEY")]
        tls_key: PathBuf,
    },
}

#[derive(Args, Clone)]
struct EndpointArgs {
    #[arg(
        long = "disclosure-endpoint",
        env = "TRYGGDEL_DISCLOSURE_ENDPOINT",
        default_value = "https://127.0.0.1:50051"
    )]
    disclosure: String,
    #[arg(
        long = "notification-endpoint",
        env = "TRYGGDEL_NOTIFICATION_ENDPOINT",
        default_value = "https://127.0.0.1:50053"
    )]
    notification: String,
    #[arg(
        long = "audit-endpoint",
        env = "TRYGGDEL_AUDIT_ENDPOINT",
        default_value = "https://127.0.0.1:50052"
    )]
    audit: String,
}

impl EndpointArgs {
    fn endpoints(&self) -> Endpoints {
        Endpoints {
            disclosure: self.disclosure.clone(),
            notification: self.notification.clone(),
            audit: self.audit.clone(),
        }
    }
}

/// Who is calling: their organisation (picks its client certificate) and token.
#[derive(Args, Clone)]
struct UserArgs {
    /// Your organisation, e.g. bollnas-kommun.
    #[arg(long, env = "TRYGGDEL_ORG", global = true)]
    org: Option<String>,
    /// Your token (see `tryggdel dev-token`).
    #[arg(long, env = "TRYGGDEL_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(flatten)]
    endpoints: EndpointArgs,
}

impl UserArgs {
    fn connection(&self, data: &DataDirectory) -> anyhow::Result<Connection> {
        let org = self
            .org
            .as_deref()
            .context("which organisation are you? pass --org (or set TRYGGDEL_ORG)")?;
        Ok(Connection::development(
            data,
            &self.endpoints.disclosure,
            org,
            self.token.clone().unwrap_or_default(),
        ))
    }

    /// The user's connection and endpoints, and the output format, for a role command.
    fn session(&self, data: &DataDirectory, json: bool) -> anyhow::Result<Session> {
        Ok(Session {
            connection: self.connection(data)?,
            endpoints: self.endpoints.endpoints(),
            json,
        })
    }
}

#[derive(Subcommand)]
enum DisclosureCommand {
    /// Print a complete example draft file (the Bollnäs case) to start from.
    Template,
    /// Create a draft from a draft file (JSON); prints the new draft's id (with --json, the
    /// draft).
    Draft {
        #[arg(long)]
        file: PathBuf,
        /// Makes a retry safe: the same id returns the same draft.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Replace a draft's content from a draft file.
    Update {
        #[arg(long)]
        id: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Assess the legal basis of a draft (by --id) or of a draft file, optionally as of a date.
    Assess {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        /// YYYY-MM-DD
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Hand a complete draft to the decision makers.
    Submit {
        #[arg(long)]
        id: String,
    },
    /// Approve a submitted disclosure (decision makers with the delegation).
    Approve {
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
        /// Your written judgement whether the victim is a närstående: required when the
        /// victim's relation is "other", refused otherwise.
        #[arg(long, default_value = "")]
        close_relative_judgement: String,
    },
    /// Reject a submitted disclosure, with the reason.
    Reject {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a disclosure that has not been delivered.
    Withdraw {
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Your organisation's disclosures.
    List {
        /// draft, submitted, approved, delivered, acknowledged, rejected, withdrawn, expired
        #[arg(long)]
        state: Option<String>,
    },
    /// One disclosure, with its decision and the police's receipt.
    Show {
        #[arg(long)]
        id: String,
        /// Reveal the protected details (recorded in the audit log first).
        #[arg(long)]
        reveal: bool,
    },
    /// The police's follow-up questions on a disclosure.
    FollowUps {
        #[arg(long)]
        id: String,
    },
    /// Deliveries nobody acknowledged in time.
    Escalations {
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Subcommand)]
enum DelegationCommand {
    /// Grant a user the delegation to decide under legal bases, from a date (default today).
    Grant {
        /// The decision maker's user id.
        #[arg(long)]
        user: String,
        /// A legal basis, e.g. OSL-10-18c (repeatable).
        #[arg(long = "basis", required = true)]
        bases: Vec<String>,
        /// First day it holds, YYYY-MM-DD (default today).
        #[arg(long)]
        from: Option<String>,
        /// Last day it holds, YYYY-MM-DD (default no end).
        #[arg(long)]
        to: Option<String>,
    },
    /// End a delegation: the last day it holds (default today); it is never deleted.
    Revoke {
        #[arg(long)]
        id: String,
        /// Last day it holds, YYYY-MM-DD (default today).
        #[arg(long)]
        to: Option<String>,
    },
    /// Your organisation's delegations, or only those valid on a date.
    List {
        /// YYYY-MM-DD.
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Subcommand)]
enum HoldCommand {
    /// Place a hold on a disclosure: the legal ground and the last day it holds.
    Place {
        #[arg(long)]
        disclosure_id: String,
        /// The legal ground, e.g. a provision (nothing personal).
        #[arg(long)]
        ground: String,
        /// The last day it holds, YYYY-MM-DD (at most [disclosure] hold_max_days ahead).
        #[arg(long)]
        until: String,
        /// Makes a retry return the same hold (8-64 letters, digits, - and _).
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Move a hold's last day later.
    Extend {
        #[arg(long)]
        id: String,
        /// The hold's version you last saw.
        #[arg(long)]
        version: i64,
        /// The new last day, YYYY-MM-DD.
        #[arg(long)]
        until: String,
    },
    /// End a hold now.
    End {
        #[arg(long)]
        id: String,
        /// The hold's version you last saw.
        #[arg(long)]
        version: i64,
    },
    /// Every hold placed on a disclosure.
    List {
        #[arg(long)]
        disclosure_id: String,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// A subject report (registerutdrag): every disclosure about a person and every access to
    /// their data, as JSON or as a PDF/A letter to the person. The report is itself logged.
    Subject {
        #[command(flatten)]
        user: UserArgs,
        /// The person's identity number.
        #[arg(long)]
        person: String,
        /// Supervisors: only this organisation's part of the log.
        #[arg(long)]
        organisation: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: ReportFileFormat,
        /// Where to write the report.
        #[arg(long)]
        out: PathBuf,
    },
}

/// The file format of `report subject`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportFileFormat {
    Json,
    Pdf,
}

#[derive(Subcommand)]
enum RequestCommand {
    /// Officers: ask an organisation for information.
    Send {
        /// The organisation asked, e.g. bollnas-kommun.
        #[arg(long)]
        to: String,
        /// The person it is about: their personnummer or samordningsnummer.
        #[arg(long)]
        about: Option<String>,
        /// The person's name.
        #[arg(long)]
        name: Option<String>,
        /// What information is asked for.
        #[arg(long)]
        what: String,
        /// What it is needed for.
        #[arg(long)]
        purpose: String,
        /// The legal ground cited.
        #[arg(long)]
        ground: String,
        #[arg(long)]
        urgent: bool,
        /// The reply deadline: YYYY-MM-DD (the end of that day in Sweden) or an RFC 3339 time.
        #[arg(long)]
        reply_by: String,
        /// Makes a retry safe (8-64 letters, digits, - and _); a fresh one when not given.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Your organisation's queue, or what your authority asked.
    List {
        /// open, answered or refused.
        #[arg(long)]
        state: Option<String>,
    },
    /// One request, with its answer or refusal.
    Show {
        #[arg(long)]
        id: String,
    },
    /// The organisation asked: refuse a request, with the reason and the weighing of interests.
    Refuse {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        weighing: String,
    },
}

#[derive(Subcommand)]
enum PoliceCommand {
    /// Your region's unacknowledged deliveries; with --follow, then each new one as it arrives.
    Inbox {
        #[arg(long)]
        follow: bool,
        /// With --follow: start after this sequence instead of the unacknowledged ones.
        #[arg(long, default_value_t = 0)]
        cursor: u64,
    },
    /// Acknowledge a delivery with the police reference (diarienummer).
    Acknowledge {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reference: String,
    },
    /// Ask the disclosing organisation a follow-up question.
    FollowUp {
        #[arg(long)]
        id: String,
        #[arg(long)]
        question: String,
    },
    /// Acknowledge the recall of a delivered disclosure its organisation withdrew.
    AcknowledgeRecall {
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Find entries (compliance officers).
    Query {
        #[command(flatten)]
        user: UserArgs,
        /// An identity number: finds entries about that person (searched as a keyed hash).
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        disclosure_id: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        legal_basis: Option<String>,
        /// Entries of this organisation (supervisors: any).
        #[arg(long)]
        organisation: Option<String>,
    },
    /// Save a signed checkpoint (the latest, or the one at --tree-size) to a file.
    Checkpoint {
        #[command(flatten)]
        log: LogArgs,
        /// Where to write the signed note.
        #[arg(long)]
        out: PathBuf,
    },
    /// Save every entry of the log at a signed checkpoint, for offline verification.
    Export {
        #[command(flatten)]
        log: LogArgs,
        /// Where to write the export (JSON Lines).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write one entry's C2SP tlog-proof bundle: the entry, its inclusion proof and the
    /// witnessed checkpoint, verifiable offline with `audit verify --proof FILE --policy P`.
    Proof {
        #[command(flatten)]
        user: UserArgs,
        /// The entry's index.
        #[arg(long)]
        index: u64,
        /// Where to write the bundle.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an export offline: the checkpoint's signature, every entry's hash, the root,
    /// consistency with earlier checkpoints, and optionally one entry's inclusion; with
    /// --policy also the witnesses' cosignatures against its quorum and --max-age-seconds.
    /// Or verify a proof bundle (--proof) with nothing but the policy.
    /// Exit code 0: verified; 2: the log does not verify; 1: verification could not run.
    Verify {
        /// The export file.
        #[arg(long, required_unless_present = "proof")]
        export: Option<PathBuf>,
        /// A C2SP tlog-proof bundle from `tryggdel audit proof`, instead of an export.
        #[arg(long, requires = "policy", conflicts_with_all = ["export", "checkpoints", "inclusion"])]
        proof: Option<PathBuf>,
        /// The log's public key: a verifier key `<origin>+<key id>+<key>` or a file holding it
        /// (default: the policy's log line).
        #[arg(long)]
        key: Option<String>,
        /// A witness policy (C2SP tlog-policy): the checkpoint counts only with cosignatures
        /// meeting its quorum.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// With --policy: the newest cosignature may be at most this old.
        #[arg(long, default_value_t = 86_400)]
        max_age_seconds: u64,
        /// An earlier signed checkpoint to check consistency with (repeatable).
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        /// Prove this entry's inclusion and show it.
        #[arg(long)]
        inclusion: Option<u64>,
    },
    /// Clear personal data from the log under a clearing decision (gallringsbeslut, TOML):
    /// the free text of disclosures, and persons' references with the free text of their
    /// entries outside any disclosure (access logs). Refused for a disclosure with an active
    /// hold and a person born on one of the decision's exempt days. Prints what was cleared.
    Clear {
        #[command(flatten)]
        user: UserArgs,
        /// The clearing decision (TOML).
        #[arg(long)]
        decision: PathBuf,
        /// A disclosure to clear (repeatable).
        #[arg(long = "disclosure")]
        disclosures: Vec<String>,
        /// A person to clear, by identity number (repeatable).
        #[arg(long = "person")]
        persons: Vec<String>,
    },
    /// Convert an export for a supervisor: CSV, PDF/A-2b or a FHIR R4 Bundle of AuditEvents
    /// (IHE BALP), each naming the signed checkpoint and every entry's index. The export is
    /// verified against the log's key first; one that does not verify is not converted.
    /// Exit code 0: converted; 2: the export does not verify; 1: the conversion could not run.
    Convert {
        /// The export file (from `tryggdel audit export`).
        #[arg(long)]
        export: PathBuf,
        /// The log's public key: a verifier key `<origin>+<key id>+<key>` or a file holding it.
        #[arg(long)]
        key: String,
        /// The output format.
        #[arg(long, value_enum)]
        format: ConvertFormat,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
}

/// The formats of `audit convert`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ConvertFormat {
    Csv,
    Pdf,
    Fhir,
}

/// Who asks the audit log, and at which size (`audit checkpoint`, `audit export`).
#[derive(Args, Clone)]
struct LogArgs {
    #[command(flatten)]
    user: UserArgs,
    #[arg(long, default_value_t = 0)]
    tree_size: u64,
}

impl LogArgs {
    /// A connection to the audit service.
    fn connection(&self, data: &DataDirectory) -> anyhow::Result<Connection> {
        Ok(self.user.connection(data)?.at(&self.user.endpoints.audit))
    }
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Usage errors exit 1 (2 means "the audit log does not verify").
            let code = if error.use_stderr() {
                exit::FAILED
            } else {
                exit::OK
            };
            let _ = error.print();
            return std::process::ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(exit_code(&error))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the runtime")
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let format = tryggdel_telemetry::LogFormat::parse(&cli.log_format)
        .with_context(|| format!("--log-format {:?}: expected text or json", cli.log_format))?;
    let data = DataDirectory::new(&cli.data_dir);
    let json = cli.json;
    match cli.command {
        Command::Start {
            disclosure_listen,
            audit_listen,
            notification_listen,
            console_listen,
            database_url,
            directory,
            otlp_endpoint,
        } => {
            runtime()?.block_on(async {
                // Before any service starts: their metric instruments are made at start.
                let telemetry =
                    tryggdel_telemetry::init_with(tryggdel_telemetry::TelemetryOptions {
                        format,
                        filter: "info".into(),
                        service_name: "tryggdel".into(),
                        otlp_endpoint: otlp_endpoint.clone(),
                    })?;
                let system = start_system(&SystemOptions {
                    data_dir: cli.data_dir.clone(),
                    disclosure_listen,
                    audit_listen,
                    notification_listen,
                    console_listen,
                    database_url,
                    directory,
                })
                .await?;
                system.print_banner();
                wait_for_stop_signal().await?;
                tryggdel::out!("stopping");
                let stopped = system.stop().await;
                let flushed = telemetry.shutdown().await;
                stopped.and(flushed)
            })?;
            Ok(exit::OK)
        }
        Command::Serve { service, config } => {
            let config = Config::load(config.as_deref())?;
            let format = match config.telemetry.log_format.as_deref() {
                Some(text) => tryggdel_telemetry::LogFormat::parse(text).with_context(|| {
                    format!("telemetry.log_format {text:?}: expected text or json")
                })?,
                None => format,
            };
            runtime()?.block_on(async {
                let telemetry =
                    tryggdel_telemetry::init_with(tryggdel_telemetry::TelemetryOptions {
                        format,
                        filter: "info".into(),
                        service_name: format!("tryggdel-{}", service.as_str()),
                        otlp_endpoint: config.telemetry.otlp_endpoint.clone(),
                    })?;
                let served = tryggdel::ops::serve(service, &config, wait_for_stop_signal()).await;
                let flushed = telemetry.shutdown().await;
                served.and(flushed)
            })?;
            Ok(exit::OK)
        }
        Command::Migrate { service, config } => {
            tryggdel_telemetry::init(format, "info");
            let config = Config::load(config.as_deref())?;
            runtime()?.block_on(tryggdel::ops::migrate(service, &config))?;
            tryggdel::out!("{} schema is up to date", service.as_str());
            Ok(exit::OK)
        }
        Command::Health {
            endpoint,
            config,
            service,
        } => {
            let config = Config::load(config.as_deref())?;
            runtime()?.block_on(tryggdel::ops::health(&endpoint, &config, service))?;
            tryggdel::out!("{endpoint} is serving");
            Ok(exit::OK)
        }
        Command::Pki { out, directory } => {
            tryggdel::ops::pki(&out, directory.as_deref())?;
            Ok(exit::OK)
        }
        Command::DevToken {
            roles,
            user,
            org,
            unit,
            region,
            minutes,
        } => {
            let roles = roles
                .iter()
                .map(|text| {
                    Role::parse(text).with_context(|| {
                        format!("--role {text:?}: expected caseworker, decision_maker, police_officer, compliance_officer or admin")
                    })
                })
                .collect::<anyhow::Result<Vec<Role>>>()?;
            if !data.signing_key().exists() {
                bail!(
                    "no development signing key at {}: run `tryggdel start` once first",
                    data.signing_key().display()
                );
            }
            let signer = TokenSigner::new(SignerConfig {
                issuer: ISSUER.to_owned(),
                audience: AUDIENCE.to_owned(),
                private_key_pem: read(&data.signing_key())?,
            })?;
            let token = signer.mint(&TokenRequest {
                user_id: user,
                organisation: org,
                unit,
                roles,
                police_region: region,
                display_name: None,
                valid_for: Duration::from_secs(minutes.saturating_mul(60)),
            })?;
            tryggdel::out!("{token}");
            Ok(exit::OK)
        }
        Command::Demo { endpoints } => {
            runtime()?.block_on(tryggdel::demo::run(&data, &endpoints.endpoints()))?;
            Ok(exit::OK)
        }
        Command::Disclosure { user, command } => {
            let action = match command {
                DisclosureCommand::Template => {
                    // Needs neither a connection nor a token.
                    tryggdel::out!(
                        "{}",
                        serde_json::to_string_pretty(&tryggdel::draft_file::DraftFile::example())
                            .context("the example draft")?
                    );
                    return Ok(exit::OK);
                }
                DisclosureCommand::Draft { file, request_id } => {
                    DisclosureAction::Draft { file, request_id }
                }
                DisclosureCommand::Update { id, file } => DisclosureAction::Update { id, file },
                DisclosureCommand::Assess { id, file, as_of } => {
                    DisclosureAction::Assess { id, file, as_of }
                }
                DisclosureCommand::Submit { id } => DisclosureAction::Submit { id },
                DisclosureCommand::Approve {
                    id,
                    comment,
                    close_relative_judgement,
                } => DisclosureAction::Approve {
                    id,
                    comment,
                    close_relative_judgement,
                },
                DisclosureCommand::Reject { id, reason } => DisclosureAction::Reject { id, reason },
                DisclosureCommand::Withdraw { id, reason } => {
                    DisclosureAction::Withdraw { id, reason }
                }
                DisclosureCommand::List { state } => DisclosureAction::List { state },
                DisclosureCommand::Show { id, reveal } => DisclosureAction::Show { id, reveal },
                DisclosureCommand::FollowUps { id } => DisclosureAction::FollowUps { id },
                DisclosureCommand::Escalations { id } => DisclosureAction::Escalations { id },
            };
            runtime()?.block_on(tryggdel::commands::disclosure(
                &user.session(&data, json)?,
                action,
            ))?;
            Ok(exit::OK)
        }
        Command::Delegation { user, command } => {
            let action = match command {
                DelegationCommand::Grant {
                    user,
                    bases,
                    from,
                    to,
                } => DelegationAction::Grant {
                    user,
                    legal_bases: bases,
                    from,
                    to,
                },
                DelegationCommand::Revoke { id, to } => DelegationAction::Revoke { id, to },
                DelegationCommand::List { as_of } => DelegationAction::List { as_of },
            };
            runtime()?.block_on(tryggdel::delegation::delegation(
                &user.session(&data, json)?,
                action,
            ))?;
            Ok(exit::OK)
        }
        Command::Request { user, command } => {
            let action = match command {
                RequestCommand::Send {
                    to,
                    about,
                    name,
                    what,
                    purpose,
                    ground,
                    urgent,
                    reply_by,
                    request_id,
                } => RequestAction::Send(NewRequest {
                    request_id,
                    organisation: to,
                    subject_identity_number: about,
                    subject_name: name,
                    information_sought: what,
                    purpose,
                    legal_ground: ground,
                    urgent,
                    reply_by,
                }),
                RequestCommand::List { state } => RequestAction::List { state },
                RequestCommand::Show { id } => RequestAction::Show { id },
                RequestCommand::Refuse {
                    id,
                    reason,
                    weighing,
                } => RequestAction::Refuse {
                    id,
                    reason,
                    weighing,
                },
            };
            runtime()?.block_on(tryggdel::requests::request(
                &user.session(&data, json)?,
                action,
            ))?;
            Ok(exit::OK)
        }
        Command::Police { user, command } => {
            let session = user.session(&data, json)?;
            let action = match command {
                PoliceCommand::Inbox { follow, cursor } => PoliceAction::Inbox { follow, cursor },
                PoliceCommand::Acknowledge { id, reference } => {
                    PoliceAction::Acknowledge { id, reference }
                }
                PoliceCommand::FollowUp { id, question } => PoliceAction::FollowUp { id, question },
                PoliceCommand::AcknowledgeRecall { id } => PoliceAction::AcknowledgeRecall { id },
            };
            runtime()?.block_on(tryggdel::commands::police(&session, action))?;
            Ok(exit::OK)
        }
        Command::Audit { command } => audit_command(&data, command, json),
        Command::Hold { user, command } => {
            let action = match command {
                HoldCommand::Place {
                    disclosure_id,
                    ground,
                    until,
                    request_id,
                } => HoldAction::Place {
                    disclosure_id,
                    legal_ground: ground,
                    until,
                    request_id,
                },
                HoldCommand::Extend { id, version, until } => {
                    HoldAction::Extend { id, version, until }
                }
                HoldCommand::End { id, version } => HoldAction::End { id, version },
                HoldCommand::List { disclosure_id } => HoldAction::List { disclosure_id },
            };
            runtime()?.block_on(tryggdel::holds::hold(&user.session(&data, json)?, action))?;
            Ok(exit::OK)
        }
        Command::Report {
            command:
                ReportCommand::Subject {
                    user,
                    person,
                    organisation,
                    format,
                    out,
                },
        } => {
            let session = user.session(&data, json)?;
            let request = SubjectReportRequest {
                person,
                organisation,
                format: match format {
                    ReportFileFormat::Json => ReportFormat::Json,
                    ReportFileFormat::Pdf => ReportFormat::Pdf,
                },
                out,
            };
            let connection = session.connection.at(&session.endpoints.audit);
            let report =
                runtime()?.block_on(tryggdel::report::subject_report(&connection, &request))?;
            tryggdel::out!("{}", tryggdel::report::summary(&report, &request.out));
            Ok(exit::OK)
        }
        Command::Review { user, command } => {
            let action = match command {
                ReviewCommand::Criteria {
                    command: CriteriaCommand::Set { file, text },
                } => ReviewAction::SetCriteria {
                    text: match (file, text) {
                        (Some(file), _) => std::fs::read_to_string(&file)
                            .with_context(|| format!("reading {}", file.display()))?,
                        (None, text) => text.unwrap_or_default(),
                    },
                },
                ReviewCommand::Criteria {
                    command:
                        CriteriaCommand::Show {
                            organisation,
                            version,
                        },
                } => ReviewAction::ShowCriteria {
                    organisation,
                    version,
                },
                ReviewCommand::Run {
                    organisation,
                    from,
                    until,
                    seed,
                    sample,
                } => ReviewAction::Run {
                    organisation,
                    from,
                    until,
                    seed,
                    sample,
                },
                ReviewCommand::Show { run } => ReviewAction::Show { run_id: run },
                ReviewCommand::List { organisation } => ReviewAction::List { organisation },
                ReviewCommand::Outcome {
                    run,
                    finding,
                    outcome,
                    note,
                } => ReviewAction::Outcome {
                    run_id: run,
                    finding,
                    outcome,
                    note,
                },
            };
            runtime()?.block_on(tryggdel::review::review(
                &user.session(&data, json)?,
                action,
            ))?;
            Ok(exit::OK)
        }
        Command::Statistics {
            user,
            from,
            until,
            by,
            organisation,
            format,
            out,
        } => {
            let export = tryggdel::statistics::StatisticsExport {
                organisation,
                from,
                until,
                group_by: tryggdel::statistics::parse_dimensions(&by),
                format,
                out,
            };
            runtime()?.block_on(tryggdel::statistics::export(
                &user.session(&data, json)?,
                export,
            ))?;
            Ok(exit::OK)
        }
        Command::Clearing {
            user,
            command: ClearingCommand::Run { decision, dry_run },
        } => {
            let mode = if dry_run {
                tryggdel::clearing_run::ClearingMode::DryRun
            } else {
                tryggdel::clearing_run::ClearingMode::Clear
            };
            runtime()?.block_on(tryggdel::clearing_run::run(
                &user.session(&data, json)?,
                &decision,
                mode,
            ))?;
            Ok(exit::OK)
        }
        Command::Witness { command } => witness_command(command, format),
    }
}

fn witness_command(
    command: WitnessCommand,
    format: tryggdel_telemetry::LogFormat,
) -> anyhow::Result<u8> {
    match command {
        WitnessCommand::Key { name, out } => {
            let vkey = tryggdel::witness::create_key(&name, &out)?;
            tryggdel::out!("{vkey}");
            Ok(exit::OK)
        }
        WitnessCommand::Serve {
            name,
            key,
            logs,
            listen,
            state_dir,
            tls_cert,
            tls_key,
        } => {
            runtime()?.block_on(async {
                let telemetry =
                    tryggdel_telemetry::init_with(tryggdel_telemetry::TelemetryOptions {
                        format,
                        filter: "info".into(),
                        service_name: "tryggdel-witness".into(),
                        otlp_endpoint: None,
                    })?;
                let served = tryggdel::witness::serve(
                    tryggdel::witness::ServeOptions {
                        name,
                        key_file: key,
                        logs,
                        listen,
                        state_dir,
                        tls_cert,
                        tls_key,
                    },
                    wait_for_stop_signal(),
                )
                .await;
                let flushed = telemetry.shutdown().await;
                served.and(flushed)
            })?;
            Ok(exit::OK)
        }
    }
}

fn audit_command(data: &DataDirectory, command: AuditCommand, json: bool) -> anyhow::Result<u8> {
    match command {
        AuditCommand::Query {
            user,
            person,
            disclosure_id,
            action,
            actor,
            legal_basis,
            organisation,
        } => {
            let session = user.session(data, json)?;
            let request = QueryRequest {
                person_identity_number: person.unwrap_or_default(),
                disclosure_id: disclosure_id.unwrap_or_default(),
                action: action.unwrap_or_default(),
                actor_user_id: actor.unwrap_or_default(),
                legal_basis_id: legal_basis.unwrap_or_default(),
                organisation: organisation.unwrap_or_default(),
                page_size: 500,
                ..QueryRequest::default()
            };
            runtime()?.block_on(tryggdel::commands::audit_query(&session, request))?;
            Ok(exit::OK)
        }
        AuditCommand::Clear {
            user,
            decision,
            disclosures,
            persons,
        } => {
            let connection = user.connection(data)?.at(&user.endpoints.audit);
            let response = runtime()?.block_on(tryggdel::clearing::clear(
                &connection,
                &decision,
                disclosures,
                persons,
            ))?;
            if json {
                tryggdel::out!("{}", tryggdel::clearing::report_json(&response));
            } else {
                tryggdel::out!("{}", tryggdel::clearing::report_text(&response));
            }
            Ok(exit::OK)
        }
        AuditCommand::Checkpoint { log, out } => {
            let connection = log.connection(data)?;
            let checkpoint =
                runtime()?.block_on(tryggdel::audit::checkpoint(&connection, log.tree_size))?;
            std::fs::write(&out, &checkpoint.note)
                .with_context(|| format!("writing {}", out.display()))?;
            tryggdel::out!(
                "checkpoint of {} entries of {} written to {}",
                checkpoint.tree_size,
                checkpoint.origin,
                out.display()
            );
            Ok(exit::OK)
        }
        AuditCommand::Export { log, out } => {
            let connection = log.connection(data)?;
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut progress = tryggdel::audit::progress_printer("exported");
            let written = runtime()?.block_on(tryggdel::audit::export(
                &connection,
                log.tree_size,
                std::io::BufWriter::new(file),
                &mut progress,
            ))?;
            tryggdel::out!("{written} entries written to {}", out.display());
            Ok(exit::OK)
        }
        AuditCommand::Proof { user, index, out } => {
            let connection = user.connection(data)?.at(&user.endpoints.audit);
            let bundle = runtime()?.block_on(tryggdel::audit::proof_bundle(&connection, index))?;
            std::fs::write(&out, bundle.to_text())
                .with_context(|| format!("writing {}", out.display()))?;
            tryggdel::out!("proof of entry {index} written to {}", out.display());
            Ok(exit::OK)
        }
        AuditCommand::Convert {
            export,
            key,
            format,
            out,
        } => {
            let format = match format {
                ConvertFormat::Csv => tryggdel_supervisor_export::Format::Csv,
                ConvertFormat::Pdf => tryggdel_supervisor_export::Format::Pdf,
                ConvertFormat::Fhir => tryggdel_supervisor_export::Format::Fhir,
            };
            match tryggdel::audit::convert(&export, &key, format, &out)? {
                Ok(converted) => {
                    tryggdel::out!(
                        "{} entries of {} at the checkpoint of {} entries (root {}) written to {} as {}",
                        converted.entries,
                        converted.checkpoint.origin,
                        converted.checkpoint.tree_size,
                        converted.checkpoint.root_hash_hex,
                        out.display(),
                        format.name()
                    );
                    Ok(exit::OK)
                }
                Err(refusal) => {
                    tryggdel::out!("NOT CONVERTED: {refusal}");
                    Ok(exit::NOT_VERIFIED)
                }
            }
        }
        AuditCommand::Verify {
            export,
            proof,
            key,
            policy,
            max_age_seconds,
            checkpoints,
            inclusion,
        } => {
            let policy = policy
                .as_deref()
                .map(tryggdel::audit::read_policy)
                .transpose()?;
            if let (Some(proof), Some(policy)) = (proof, &policy) {
                return match tryggdel::audit::verify_proof_bundle(&proof, policy, max_age_seconds)?
                {
                    Ok(verified) => {
                        tryggdel::out!(
                            "verified: entry {} is in the log {} of {} entries, cosigned by {}",
                            verified.index,
                            verified.checkpoint.checkpoint.origin(),
                            verified.checkpoint.checkpoint.size(),
                            verified
                                .checkpoint
                                .cosigned_by
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        Ok(exit::OK)
                    }
                    Err(error) => {
                        tryggdel::out!("NOT VERIFIED: {error}");
                        Ok(exit::NOT_VERIFIED)
                    }
                };
            }
            let export = export.context("give --export (or --proof with --policy)")?;
            let key = tryggdel::audit::key_from(key.as_deref(), policy.as_ref())?;
            let mut progress = tryggdel::audit::progress_printer("verified");
            let report =
                tryggdel::audit::verify(&export, &key, &checkpoints, inclusion, &mut progress)?;
            let verdict = policy
                .as_ref()
                .map(|policy| {
                    tryggdel::audit::verify_export_policy(&export, policy, max_age_seconds)
                })
                .transpose()?;
            if json {
                let mut value = serde_json::to_value(&report).context("the report as JSON")?;
                if let (Some(verdict), Some(object)) = (&verdict, value.as_object_mut()) {
                    object.insert(
                        "witness_policy".into(),
                        serde_json::Value::String(verdict.to_string()),
                    );
                }
                tryggdel::out!(
                    "{}",
                    serde_json::to_string_pretty(&value).context("the report as JSON")?
                );
            } else {
                tryggdel::out!("{report}");
                if let Some(verdict) = &verdict {
                    tryggdel::out!("{verdict}");
                }
            }
            let policy_met = verdict.as_ref().is_none_or(|v| v.result.is_ok());
            Ok(if report.is_ok() && policy_met {
                exit::OK
            } else {
                exit::NOT_VERIFIED
            })
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C"),
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("tryggdel").chain(args.iter().copied()))
            .unwrap_or_else(|error| panic!("{args:?}: {error}"))
    }

    #[test]
    fn the_arguments_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_is_taken_before_or_after_the_subcommand() {
        for args in [
            &["--json", "disclosure", "list"][..],
            &["disclosure", "--json", "list"],
            &["disclosure", "list", "--json"],
            &["--json", "police", "inbox"],
            &["--json", "audit", "query"],
            &[
                "audit", "verify", "--export", "e.jsonl", "--key", "k", "--json",
            ],
            &[
                "--json", "audit", "verify", "--export", "e.jsonl", "--key", "k",
            ],
        ] {
            assert!(parse(args).json, "{args:?}");
        }
        assert!(!parse(&["disclosure", "list"]).json);
    }
}
