//! Scale-out: two (or more) instances of each service, each its own process, against one
//! PostgreSQL server, run the lifecycle load; part-way through, the audit instance that took
//! the sequencer lock last is killed with SIGKILL, and later started again. Afterwards the
//! databases are checked from outside: no audit entry lost, duplicated or out of order, every
//! checkpoint (whichever instance signed it) consistent, and no delivery sent twice — neither
//! in the notification database nor on any police subscriber's stream.
//!
//!   bench-scale-out [--instances 2] [--concurrency 16] [--duration 30] [--kill-at 10]
//!                   [--restart-at 20] [--postgres-url URL] [--smoke]
//!
//! `bench-scale-out instance <service> --config <file>` runs one instance (the child
//! processes); it is `tryggdel serve` built into this binary.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use sqlx::{Connection as _, PgConnection};
use tokio::sync::watch;
use tryggdel_bench::cluster::{Cluster, ClusterOptions};
use tryggdel_bench::consistency::{self, RunDatabases};
use tryggdel_bench::lifecycle::{self, LoadOptions, LoadReport, Phase, Step};
use tryggdel_bench::machine::{CpuTimes, background_load};
use tryggdel_bench::stats::{ms_table_header, ms_table_row};
use tryggdel_bench::{DatabaseArgs, Machine, ServerCounters, system};
use tryggdel_merkle::checkpoint::CheckpointVerifier;
use tryggdel_system::Service;

#[derive(Parser, Debug)]
#[command(
    about = "Two instances of each service against one PostgreSQL, with the audit sequencer killed part-way"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Commands>,
    /// Instances of each service.
    #[arg(long, default_value_t = 2)]
    instances: usize,
    /// Simulated users.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of measured load (after a 2 s warm-up).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// At most this many lifecycles.
    #[arg(long, default_value_t = 100_000)]
    max_lifecycles: u64,
    /// Seconds into the measured load at which the audit sequencer is killed (SIGKILL).
    #[arg(long, default_value_t = 10.0)]
    kill_at: f64,
    /// Seconds into the measured load at which the killed instance is started again.
    #[arg(long, default_value_t = 20.0)]
    restart_at: f64,
    #[command(flatten)]
    databases: DatabaseArgs,
    /// A few seconds at small sizes (the test suite's run).
    #[arg(long)]
    smoke: bool,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Runs one instance of a service until SIGTERM (what the benchmark starts as a child).
    Instance {
        #[arg(value_enum)]
        service: Service,
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Commands::Instance { service, config }) => {
            tryggdel_bench::cluster::run_instance(*service, config)
        }
        None => run_benchmark(cli),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_benchmark(mut cli: Cli) -> anyhow::Result<()> {
    if cli.smoke {
        cli.concurrency = cli.concurrency.min(4);
        cli.duration = 4;
        cli.max_lifecycles = cli.max_lifecycles.min(200);
        cli.kill_at = 1.0;
        cli.restart_at = 2.5;
    }
    anyhow::ensure!(cli.instances >= 2, "scale-out needs at least 2 instances");
    anyhow::ensure!(
        cli.kill_at < cli.restart_at && cli.restart_at < cli.duration as f64,
        "--kill-at must come before --restart-at, both inside --duration"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(benchmark(cli))
}

/// What happened to the audit sequencer during the run.
struct Handover {
    killed: String,
    /// Entries durable when the instance was killed.
    size_at_kill: i64,
    /// From SIGKILL to the first entry committed by another instance.
    first_commit_after: Option<Duration>,
    /// From SIGKILL to the first checkpoint signed by another instance.
    first_checkpoint_after: Option<Duration>,
    /// How long the killed instance took to start again and report SERVING (it loads and
    /// checks the log that the others grew meanwhile).
    restart: Option<Duration>,
}

async fn benchmark(cli: Cli) -> anyhow::Result<()> {
    let machine = Machine::detect();
    let load = background_load(Duration::from_millis(500));
    println!(
        "== scale-out: {} instances of each service, one PostgreSQL ==",
        cli.instances
    );
    println!("machine: {}", machine.describe());
    println!("background load before the run: {load:.2} cores busy");
    println!(
        "concurrency: {} users; duration: {} s measured (2 s warm-up); audit sequencer killed at {} s, restarted at {} s",
        cli.concurrency, cli.duration, cli.kill_at, cli.restart_at
    );
    let program = std::env::current_exe().context("locating this program")?;
    let started = Instant::now();
    let mut cluster = Cluster::start(ClusterOptions {
        admin_url: cli.databases.postgres_url.clone(),
        database_prefix: cli.databases.database_prefix.clone(),
        instances: cli.instances,
        program,
        checkpoint_interval_ms: 1000,
    })
    .await?;
    println!(
        "cluster: {} processes started in {:.1} s; databases {}",
        cluster.instances.len(),
        started.elapsed().as_secs_f64(),
        cluster.database_names().join(", ")
    );
    let outcome = drive(&cli, &mut cluster).await;
    let keep = cli.databases.keep_databases;
    if let Err(error) = &outcome {
        for (position, instance) in cluster.instances.iter().enumerate() {
            let tail = cluster.log_tail(position, 5);
            if !tail.is_empty() {
                eprintln!("--- {} (last lines of its log)\n{tail}", instance.name());
            }
        }
        eprintln!("error: {error:#}");
    }
    let stopped = cluster.shutdown_and_remove(keep).await;
    outcome?;
    stopped
}

async fn drive(cli: &Cli, cluster: &mut Cluster) -> anyhow::Result<()> {
    let (_, directory) = system::development_directory()?;
    let databases = RunDatabases {
        audit_url: cluster.url_of(Service::Audit)?,
        notification_url: cluster.url_of(Service::Notification)?,
        disclosure_url: cluster.url_of(Service::Disclosure)?,
    };
    let options = LoadOptions {
        disclosure_addresses: cluster.addresses(Service::Disclosure),
        notification_addresses: cluster.addresses(Service::Notification),
        concurrency: cli.concurrency,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(cli.duration),
        max_lifecycles: Some(cli.max_lifecycles),
        drain_timeout: Duration::from_secs(30),
        wait_timeout: Duration::from_secs(30),
    };
    let identity = cluster.identity.clone();
    let (phase_sender, mut phase) = watch::channel(Phase::Starting);
    let load = tokio::spawn(async move {
        lifecycle::run(identity, &directory, &options, Some(phase_sender)).await
    });

    // Wait for the measured window, then kill and restart the audit sequencer on schedule.
    while *phase.borrow() == Phase::Starting {
        if phase.changed().await.is_err() {
            break;
        }
    }
    let before = CpuTimes::now();
    let counters_before = ServerCounters::read(&cli.databases.postgres_url).await?;
    let window = Instant::now();
    let handover = chaos(cli, cluster, &databases, window).await;
    let report = load.await.context("the load task")??;
    let cpu = CpuTimes::now().since(&before);
    let counters = ServerCounters::read(&cli.databases.postgres_url)
        .await?
        .since(&counters_before);
    let handover = handover?;

    let drained = consistency::wait_for_drained(&databases, Duration::from_secs(60)).await?;
    let signed = consistency::wait_for_checkpoint(&databases, Duration::from_secs(30)).await?;
    let log_key = std::fs::read_to_string(cluster.secrets.join("keys/audit-log.vkey"))
        .context("reading the audit log's verifier key")?;
    let verifier =
        CheckpointVerifier::parse_vkey(log_key.trim()).context("the audit log's verifier key")?;
    let checked = consistency::check(&databases, &verifier).await;
    let cores = Machine::detect().cores;
    let wall = cpu.wall.max(1e-9);
    let cpu = format!(
        "{:.2} of {cores} cores busy (the load generator {:.2}; the {} service processes and PostgreSQL {:.2})",
        (cpu.process + cpu.others) / wall,
        cpu.process / wall,
        cluster.instances.len(),
        cpu.others / wall
    );
    print_report(cli, &report, &handover, cpu, &counters);
    println!(
        "after the load: outboxes relayed within {:.2} s, then a checkpoint covering every entry within {:.2} s",
        drained.as_secs_f64(),
        signed.as_secs_f64()
    );

    let mut problems = Vec::new();
    for subscriber in &report.subscribers {
        let (out_of_order, duplicates) = subscriber.anomalies();
        let missing = report.never_delivered(subscriber);
        if !out_of_order.is_empty() || !duplicates.is_empty() || !missing.is_empty() {
            problems.push(format!(
                "subscriber of {} on {}: out of order {:?}, twice {:?}, never delivered {:?}",
                subscriber.police_region,
                subscriber.notification_address,
                out_of_order,
                duplicates,
                missing
            ));
        }
    }
    let approved = report.approvals();
    let streamed: usize = report
        .subscribers
        .iter()
        .map(|subscriber| subscriber.deliveries.len())
        .sum();
    match &checked {
        Ok(log) => println!("checks: {}", log.describe()),
        Err(error) => problems.push(format!("{error:#}")),
    }
    println!(
        "police streams: {} subscribers received {streamed} deliveries of {approved} approvals; each stream delivered every approval of its region, none twice or out of order: {}",
        report.subscribers.len(),
        if problems.iter().any(|p| p.starts_with("subscriber")) {
            "NO"
        } else {
            "yes"
        }
    );
    let failed = report.failed();
    println!(
        "RESULT bench=scale-out instances={} concurrency={} lifecycles={} lifecycles_per_s={:.1} failed={failed} \
         audit_entries={} handover_first_commit_ms={} handover_checkpoint_ms={} restart_ms={} checks={}",
        cli.instances,
        cli.concurrency,
        report.lifecycles,
        report.lifecycles_per_second(),
        checked.as_ref().map(|log| log.entries).unwrap_or(0),
        millis(handover.first_commit_after),
        millis(handover.first_checkpoint_after),
        millis(handover.restart),
        if problems.is_empty() {
            "passed"
        } else {
            "FAILED"
        }
    );
    if !problems.is_empty() {
        bail!("scale-out checks failed:\n  {}", problems.join("\n  "));
    }
    if failed > 0 || report.unfinished > 0 {
        bail!(
            "{failed} steps failed and {} lifecycles did not finish",
            report.unfinished
        );
    }
    Ok(())
}

fn millis(duration: Option<Duration>) -> String {
    duration
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".to_owned())
}

/// Kills the audit instance that committed last at `kill_at`, measures how soon another
/// instance commits and signs, and starts it again at `restart_at`.
async fn chaos(
    cli: &Cli,
    cluster: &mut Cluster,
    databases: &RunDatabases,
    window: Instant,
) -> anyhow::Result<Handover> {
    sleep_until(window + Duration::from_secs_f64(cli.kill_at)).await;
    let mut audit = consistency::connect(&databases.audit_url, "audit").await?;
    let (victim, seen_holding) = sequencer_holder(&mut audit, cluster).await?;
    let (size_at_kill, checkpoints_at_kill) = log_state(&mut audit).await?;
    let killed_at = Instant::now();
    cluster.kill(victim)?;
    let killed = cluster.instances[victim].name();
    println!(
        "killed {killed} (SIGKILL) at {:.1} s with {size_at_kill} entries durable ({})",
        window.elapsed().as_secs_f64(),
        if seen_holding {
            "it held the sequencer lock"
        } else {
            "no instance was seen holding the sequencer lock within 2 s"
        }
    );
    let mut first_commit_after = None;
    let mut first_checkpoint_after = None;
    let watch_until = killed_at + Duration::from_secs(15);
    while Instant::now() < watch_until
        && (first_commit_after.is_none() || first_checkpoint_after.is_none())
    {
        let (size, checkpoints) = log_state(&mut audit).await?;
        if first_commit_after.is_none() && size > size_at_kill {
            first_commit_after = Some(killed_at.elapsed());
        }
        if first_checkpoint_after.is_none() && checkpoints > checkpoints_at_kill {
            first_checkpoint_after = Some(killed_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    audit.close().await.ok();
    sleep_until(window + Duration::from_secs_f64(cli.restart_at)).await;
    let restart = cluster.start_instance(victim).await?;
    println!(
        "restarted {killed} at {:.1} s: serving after {:.2} s",
        window.elapsed().as_secs_f64(),
        restart.as_secs_f64()
    );
    Ok(Handover {
        killed,
        size_at_kill,
        first_commit_after,
        first_checkpoint_after,
        restart: Some(restart),
    })
}

async fn sleep_until(at: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
}

/// (entries, checkpoints) durable now.
async fn log_state(audit: &mut PgConnection) -> anyhow::Result<(i64, i64)> {
    let state: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM audit_entries), (SELECT count(*) FROM audit_checkpoints)",
    )
    .fetch_one(audit)
    .await
    .context("reading the audit log's size")?;
    Ok(state)
}

/// The running audit instance that holds — or, between batches, held last — the sequencer
/// lock: PostgreSQL knows which connection holds the advisory lock, and the connection's client
/// port belongs to one instance's process.
/// Answers the instance, and whether it was seen holding the lock.
async fn sequencer_holder(
    audit: &mut PgConnection,
    cluster: &Cluster,
) -> anyhow::Result<(usize, bool)> {
    let running: Vec<usize> = cluster
        .instances
        .iter()
        .enumerate()
        .filter(|(_, instance)| instance.service == Service::Audit && instance.is_running())
        .map(|(position, _)| position)
        .collect();
    // Between two batches nobody holds it: look for a while.
    for _ in 0..400 {
        let holder_port: Option<(i32,)> = sqlx::query_as(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() \
             AND a.client_port IS NOT NULL LIMIT 1",
        )
        .fetch_optional(&mut *audit)
        .await
        .context("looking up the advisory lock's holder")?;
        if let Some((port,)) = holder_port
            && let Some(position) = cluster.instance_owning_port(&running, port)
        {
            return Ok((position, true));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running
        .first()
        .map(|position| (*position, false))
        .context("no audit instance is running")
}

fn print_report(
    cli: &Cli,
    report: &LoadReport,
    handover: &Handover,
    cpu: String,
    counters: &ServerCounters,
) {
    let mut report_samples = report.samples.clone();
    println!(
        "lifecycles: {} in {:.1} s: {:.1} lifecycles/s across {} instances of each service",
        report.lifecycles,
        report.window.as_secs_f64(),
        report.lifecycles_per_second(),
        cli.instances
    );
    println!("{}", ms_table_header("step"));
    for step in Step::ALL {
        if let Some(samples) = report_samples.get_mut(&step) {
            println!("{}", ms_table_row(step.label(), samples));
        }
    }
    println!(
        "failed steps: {}; unfinished lifecycles: {}",
        report.failed(),
        report.unfinished
    );
    for (step, failures) in &report.failures {
        for example in &failures.examples {
            println!("  {}: {example}", step.label());
        }
    }
    println!(
        "database: {} writing transactions, {} WAL syncs during the run",
        counters.xids, counters.wal_syncs
    );
    println!("CPU: {cpu}");
    println!(
        "sequencer: killed {} with {} entries durable; next entry committed by another instance after {} ms, next checkpoint after {} ms; restarted in {} ms",
        handover.killed,
        handover.size_at_kill,
        millis(handover.first_commit_after),
        millis(handover.first_checkpoint_after),
        millis(handover.restart)
    );
}
