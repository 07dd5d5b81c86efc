//! `bench-compliance`: the compliance officer's work on a log of working size. A log of
//! `--entries` (10 million) real entries is bulk-loaded (see `tryggdel_bench::compliance` for
//! its shape: one organisation's month of `--review-accesses` reads, one person's entries
//! spread over it all), `--disclosures` disclosures are loaded into the disclosure service's
//! database, then the whole system starts on them and, through gRPC over mTLS with real tokens:
//!
//! 1. a subject report for the person (GetSubjectReport), repeated;
//! 2. a review run over the month (StartReviewRun: the seeded sample and every rule);
//! 3. statistics over every disclosure (GetStatistics, grouped by month, basis and outcome).
//!
//! The last line is `RESULT bench=compliance key=value …`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::Role;
use tryggdel_bench::audit::bulk_load_with;
use tryggdel_bench::compliance::{LogShape, REVIEWED_ORGANISATION};
use tryggdel_bench::identity::bearer;
use tryggdel_bench::stats::{Samples, ms};
use tryggdel_bench::{Backend, BenchDatabase, BenchIdentity, DatabaseArgs};
use tryggdel_domain::IdentityNumber;
use tryggdel_merkle::checkpoint::CheckpointSigner;
use tryggdel_proto::audit::v1::log_review_service_client::LogReviewServiceClient;
use tryggdel_proto::audit::v1::subject_report_service_client::SubjectReportServiceClient;
use tryggdel_proto::audit::v1::{GetSubjectReportRequest, StartReviewRunRequest};
use tryggdel_proto::disclosure::v1::GetStatisticsRequest;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_system::{DataDirectory, Service, SystemBuilder};

#[derive(Parser, Debug)]
#[command(about = "Subject reports, log review and statistics on a log of working size")]
struct Args {
    /// Small sizes (the smoke test).
    #[arg(long)]
    smoke: bool,
    /// `postgres` or `sqlite`.
    #[arg(long, default_value = "postgres")]
    backend: String,
    #[command(flatten)]
    databases: DatabaseArgs,
    /// Entries of the log.
    #[arg(long, default_value_t = 10_000_000)]
    entries: u64,
    /// Reads in the reviewed month.
    #[arg(long, default_value_t = 1_000_000)]
    review_accesses: u64,
    /// Entries about the reported person.
    #[arg(long, default_value_t = 330)]
    person_entries: u64,
    /// Disclosures the statistics count.
    #[arg(long, default_value_t = 100_000)]
    disclosures: u64,
    /// Times each call is measured.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Where the run's keys and certificates live (a temporary directory if not given). A
    /// loaded log is signed with its audit key, so `--reuse` needs the same directory.
    #[arg(long)]
    data_directory: Option<std::path::PathBuf>,
    /// Measure on the loaded databases of an earlier `--keep-databases --data-directory`
    /// run instead of loading new ones: their names as that run printed them (audit,
    /// notification, disclosure). The shape options must be the ones that run had.
    #[arg(long, requires = "data_directory", value_delimiter = ',')]
    reuse: Option<Vec<String>>,
}

/// The reported person (a test personnummer of Skatteverket's series).
const PERSON: &str = "19121212-1212";

/// Loads the log of `shape` and the disclosures into fresh databases.
async fn load(
    args: &Args,
    audit_url: &str,
    disclosure_url: &str,
    data_path: &std::path::Path,
    shape: &LogShape,
    audit_settings: &tryggdel_audit::Settings,
) -> anyhow::Result<()> {
    let signer = CheckpointSigner::new(audit_settings.signing_key.clone(), &audit_settings.origin)
        .context("checkpoint signer")?;
    let make_shape = shape.clone();
    let loaded = bulk_load_with(
        audit_url,
        &signer,
        args.entries,
        Arc::new(move |index| make_shape.event(index)),
    )
    .await?;
    println!(
        "log loaded: {} entries in {:.1} s ({:.0} entries/s, {:.0} bytes each)",
        loaded.entries,
        loaded.elapsed.as_secs_f64(),
        loaded.entries as f64 / loaded.elapsed.as_secs_f64().max(1e-9),
        loaded.bytes as f64 / loaded.entries.max(1) as f64
    );
    let started = Instant::now();
    let loaded_disclosures = tryggdel_bench::compliance::load_disclosures(
        &SystemBuilder::development(data_path).disclosure_settings(disclosure_url.to_owned())?,
        args.disclosures,
    )
    .await?;
    println!(
        "disclosures loaded: {loaded_disclosures} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

type Reports = SubjectReportServiceClient<InterceptedService<Channel, tryggdel_bench::Bearer>>;
type Reviews = LogReviewServiceClient<InterceptedService<Channel, tryggdel_bench::Bearer>>;
type Disclosures = DisclosureServiceClient<InterceptedService<Channel, tryggdel_bench::Bearer>>;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.entries = 20_000;
        args.review_accesses = 5_000;
        args.person_entries = 33;
        args.disclosures = 500;
        args.repeat = 2;
    }
    tryggdel_tls::install_crypto_provider();
    tryggdel_bench::init_telemetry();
    let backend = Backend::parse(&args.backend, &args.databases.postgres_url)?;
    if let Some(names) = &args.reuse {
        anyhow::ensure!(
            names.len() == 3,
            "--reuse takes three database names (audit, notification, disclosure), not {}",
            names.len()
        );
    }
    let prefix = &args.databases.database_prefix;
    let mut databases = Vec::new();
    for (position, label) in ["audit", "notification", "disclosure"]
        .into_iter()
        .enumerate()
    {
        databases.push(
            match args.reuse.as_ref().and_then(|names| names.get(position)) {
                Some(name) => BenchDatabase::existing(&backend, name.trim())?,
                None => BenchDatabase::create(&backend, prefix, label).await?,
            },
        );
    }
    if args.databases.keep_databases || args.reuse.is_some() {
        let names: Vec<&str> = databases.iter().filter_map(|d| d.name.as_deref()).collect();
        println!("databases kept: {}", names.join(", "));
    }
    let outcome = run(&args, &databases).await;
    tryggdel_bench::system::remove_databases(
        databases,
        args.databases.keep_databases || args.reuse.is_some(),
    )
    .await?;
    outcome
}

async fn run(args: &Args, databases: &[BenchDatabase]) -> anyhow::Result<()> {
    let url = |index: usize| -> anyhow::Result<String> {
        databases
            .get(index)
            .map(|database| database.url.clone())
            .context("three databases")
    };
    // Kept until the run ends when no directory is given.
    let mut temporary = None;
    let data_path = match &args.data_directory {
        Some(path) => {
            std::fs::create_dir_all(path)
                .with_context(|| format!("the data directory {}", path.display()))?;
            path.clone()
        }
        None => temporary
            .insert(tempfile::tempdir().context("a data directory")?)
            .path()
            .to_owned(),
    };
    let audit_settings = SystemBuilder::development(&data_path).audit_settings(url(0)?)?;
    let person = IdentityNumber::parse(PERSON, time::OffsetDateTime::now_utc().date())
        .map_err(|error| anyhow::anyhow!("the benchmark's person: {error}"))?;
    let shape = LogShape {
        entries: args.entries,
        review_accesses: args.review_accesses,
        person_entries: args.person_entries,
        person_ref: audit_settings
            .person_key
            .reference(&person)
            .as_str()
            .to_owned(),
    };
    println!(
        "compliance benchmark: backend {}, a log of {} entries ({} reads in {REVIEWED_ORGANISATION}'s October 2026, {} about the reported person), {} disclosures",
        args.backend, args.entries, args.review_accesses, args.person_entries, args.disclosures
    );
    if args.reuse.is_some() {
        println!("log and disclosures: reused as loaded");
    } else {
        load(
            args,
            &url(0)?,
            &url(2)?,
            &data_path,
            &shape,
            &audit_settings,
        )
        .await?;
    }

    let started = Instant::now();
    let system = SystemBuilder::development(&data_path)
        .on_free_ports()
        .database(Service::Audit, url(0)?)
        .database(Service::Notification, url(1)?)
        .database(Service::Disclosure, url(2)?)
        .start()
        .await
        .context("starting the system")?;
    println!(
        "system started on them in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let identity = BenchIdentity::from_development_pki(&DataDirectory::new(&data_path))?;
    let officer = identity.token(
        "dataskydd-bollnas",
        REVIEWED_ORGANISATION,
        &[Role::ComplianceOfficer],
        None,
        Duration::from_secs(3600),
    )?;
    let audit_channel = identity
        .channel(system.audit.local_addr, REVIEWED_ORGANISATION)
        .await?;
    let disclosure_channel = identity
        .channel(system.disclosure.local_addr, REVIEWED_ORGANISATION)
        .await?;
    let mut reports: Reports =
        SubjectReportServiceClient::with_interceptor(audit_channel.clone(), bearer(&officer)?);
    let mut reviews: Reviews =
        LogReviewServiceClient::with_interceptor(audit_channel, bearer(&officer)?);
    let mut disclosures: Disclosures =
        DisclosureServiceClient::with_interceptor(disclosure_channel, bearer(&officer)?);

    let mut report = Samples::new();
    let mut report_items = (0, 0);
    for _ in 0..args.repeat {
        let started = Instant::now();
        let answer = reports
            .get_subject_report(GetSubjectReportRequest {
                person_identity_number: PERSON.to_owned(),
                organisation: String::new(),
            })
            .await
            .context("GetSubjectReport")?
            .into_inner();
        report.record(started.elapsed());
        report_items = (answer.disclosures.len(), answer.accesses.len());
    }
    println!(
        "subject report: {} disclosures and {} accesses; p50 {} ms, max {} ms",
        report_items.0,
        report_items.1,
        ms(report.percentile(50.0)),
        ms(report.max())
    );

    // A run the service refuses (e.g. over the database's deadline) is reported, and the
    // benchmark goes on to the statistics.
    let mut review = Samples::new();
    let mut review_counts = (0u64, 0usize);
    let mut review_refused = String::new();
    for round in 0..args.repeat {
        let started = Instant::now();
        let answer = reviews
            .start_review_run(StartReviewRunRequest {
                organisation: String::new(),
                from: "2026-10-01".into(),
                until: "2026-10-31".into(),
                seed: format!("{:064x}", round + 1),
                sample_size: 200,
            })
            .await;
        let elapsed = started.elapsed();
        match answer {
            Ok(run) => {
                let run = run.into_inner();
                review.record(elapsed);
                review_counts = (run.access_entries, run.findings.len());
            }
            Err(status) => {
                review_refused = format!(
                    "after {:.1} s: {:?} {}",
                    elapsed.as_secs_f64(),
                    status.code(),
                    status.message()
                );
                println!("review run refused {review_refused}");
                break;
            }
        }
    }
    if review_refused.is_empty() {
        println!(
            "review run over the month: {} accesses considered, {} findings; p50 {} ms, max {} ms",
            review_counts.0,
            review_counts.1,
            ms(review.percentile(50.0)),
            ms(review.max())
        );
    }

    let mut statistics = Samples::new();
    let mut groups = 0;
    for _ in 0..args.repeat {
        let started = Instant::now();
        let answer = disclosures
            .get_statistics(GetStatisticsRequest {
                organisation: String::new(),
                from_unix_ms: 0,
                until_unix_ms: 0,
                group_by: vec!["month".into(), "legal_basis".into(), "outcome".into()],
                internal: false,
            })
            .await
            .context("GetStatistics")?
            .into_inner();
        statistics.record(started.elapsed());
        groups = answer.rows.len();
    }
    println!(
        "statistics over {} disclosures: {groups} groups; p50 {} ms, max {} ms",
        args.disclosures,
        ms(statistics.percentile(50.0)),
        ms(statistics.max())
    );
    system.stop().await.context("stopping the system")?;
    println!(
        "RESULT bench=compliance entries={} review_accesses={} disclosures={} report_p50_ms={} report_max_ms={} review_p50_ms={} review_max_ms={} review_refused={} statistics_p50_ms={} statistics_max_ms={}",
        args.entries,
        args.review_accesses,
        args.disclosures,
        ms(report.percentile(50.0)),
        ms(report.max()),
        ms(review.percentile(50.0)),
        ms(review.max()),
        !review_refused.is_empty(),
        ms(statistics.percentile(50.0)),
        ms(statistics.max())
    );
    Ok(())
}
