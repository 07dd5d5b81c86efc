//! `bench-lifecycle`: N simulated users run the whole disclosure lifecycle (draft, submit,
//! approve, delivery to the police region, acknowledge, acknowledged) against the three
//! services started in this process on fresh databases, over real gRPC with mTLS and real
//! tokens; prints lifecycles per second, each step's latency percentiles, the database commits
//! the load caused, and the machine's CPU use, then one `RESULT` line.
//!
//! Which commit rate the database ceiling compares with: pgbench's one-INSERT transactions each
//! write, so the like-for-like figure is the server's writing transactions (transaction ids
//! assigned, `write_xacts_per_s`). `xact_commit` (`commits_per_s`) also counts every read-only
//! statement the services run outside a transaction (and the load's own polling `Get`s), which
//! cost no WAL flush; both are printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;
use tryggdel_bench::lifecycle::{LoadOptions, LoadReport, Phase, Step};
use tryggdel_bench::machine::{CpuUse, background_load};
use tryggdel_bench::stats::{ms, ms_table_header, ms_table_row};
use tryggdel_bench::system::remove_databases;
use tryggdel_bench::{
    Backend, CpuTimes, DatabaseArgs, Machine, ServerCounters, System, SystemOptions, xact_commit,
};

#[derive(Parser, Debug)]
#[command(about = "The whole disclosure lifecycle under load, over real gRPC with mTLS and JWTs")]
struct Args {
    /// Simulated users running lifecycles at the same time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to measure (after the warm-up).
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Start at most this many lifecycles (warm-up included).
    #[arg(long)]
    max_lifecycles: Option<u64>,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Seconds in-flight lifecycles may take to finish after the bound.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// postgres or sqlite.
    #[arg(long, default_value = "postgres")]
    backend: String,
    #[command(flatten)]
    databases: DatabaseArgs,
    /// A few seconds with 2 users and small bounds, to show the benchmark still runs.
    #[arg(long)]
    smoke: bool,
}

/// The database counters at one edge of the measurement window.
#[derive(Clone, Copy)]
struct Edge {
    cpu: CpuTimes,
    xact_commit: Option<i64>,
    server: Option<ServerCounters>,
}

async fn edge(admin_url: Option<&str>, names: &[String]) -> anyhow::Result<Edge> {
    let cpu = CpuTimes::now();
    let (xact_commit, server) = match admin_url {
        Some(url) => (
            Some(xact_commit(url, names).await?),
            Some(ServerCounters::read(url).await?),
        ),
        None => (None, None),
    };
    Ok(Edge {
        cpu,
        xact_commit,
        server,
    })
}

/// Reads the counters when the load opens and closes its measurement window.
async fn watch_edges(
    mut phase: watch::Receiver<Phase>,
    admin_url: Option<String>,
    names: Vec<String>,
) -> anyhow::Result<(Edge, Edge)> {
    phase
        .wait_for(|now| *now != Phase::Starting)
        .await
        .context("the load ended before measuring")?;
    let open = edge(admin_url.as_deref(), &names).await?;
    phase
        .wait_for(|now| matches!(now, Phase::Draining | Phase::Done))
        .await
        .context("the load ended without closing its window")?;
    let close = edge(admin_url.as_deref(), &names).await?;
    Ok((open, close))
}

fn seconds(value: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{what} must be seconds ≥ 0"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark; Ok(false) when any step failed.
async fn run() -> anyhow::Result<bool> {
    let mut args = Args::parse();
    if args.smoke {
        args.concurrency = 2;
        args.duration = args.duration.min(2.0);
        args.warmup = args.warmup.min(0.5);
        args.max_lifecycles = Some(args.max_lifecycles.unwrap_or(200).min(200));
        args.drain_timeout = args.drain_timeout.min(15.0);
    }
    tryggdel_bench::init_telemetry();
    let backend = Backend::parse(&args.backend, &args.databases.postgres_url)?;
    let machine = Machine::detect();
    let load_before = tokio::task::spawn_blocking(|| background_load(Duration::from_millis(500)))
        .await
        .context("measuring the background load")?;
    let background_xids = match backend.admin_url() {
        Some(url) => {
            let before = ServerCounters::read(url).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some(ServerCounters::read(url).await?.since(&before).xids as f64 / 0.5)
        }
        None => None,
    };

    let system = System::start(&SystemOptions {
        backend: backend.clone(),
        database_prefix: args.databases.database_prefix.clone(),
        checkpoint_interval: Duration::from_secs(1),
    })
    .await?;
    let options = LoadOptions {
        disclosure_addresses: vec![system.disclosure_address()],
        notification_addresses: vec![system.notification_address()],
        concurrency: args.concurrency,
        warmup: seconds(args.warmup, "--warmup")?,
        duration: seconds(args.duration, "--duration")?,
        max_lifecycles: args.max_lifecycles,
        drain_timeout: seconds(args.drain_timeout, "--drain-timeout")?,
        wait_timeout: Duration::from_secs(20),
    };
    let (phase, phases) = watch::channel(Phase::Starting);
    let edges = tokio::spawn(watch_edges(
        phases,
        backend.admin_url().map(str::to_owned),
        system.database_names(),
    ));
    let started = Instant::now();
    let report = tryggdel_bench::lifecycle::run(
        Arc::clone(&system.identity),
        &system.directory,
        &options,
        Some(phase),
    )
    .await;
    let edges = edges.await.context("the counter task panicked")?;
    let run_time = started.elapsed();
    let (stopped, databases) = system.stop_services().await;
    let removed = remove_databases(databases, args.databases.keep_databases).await;
    let report = report?;
    let (open, close) = edges?;
    stopped.context("stopping the services")?;
    removed.context("dropping the databases")?;

    print(
        &args,
        &backend,
        &machine,
        load_before,
        background_xids,
        report,
        (open, close),
        run_time,
    )
}

#[allow(clippy::too_many_arguments)]
fn print(
    args: &Args,
    backend: &Backend,
    machine: &Machine,
    load_before: f64,
    background_xids: Option<f64>,
    mut report: LoadReport,
    (open, close): (Edge, Edge),
    run_time: Duration,
) -> anyhow::Result<bool> {
    let window = report.window.as_secs_f64().max(1e-9);
    let rate = report.lifecycles_per_second();
    let cpu: CpuUse = close.cpu.since(&open.cpu);
    println!("== bench-lifecycle ==");
    println!("machine: {}", machine.describe());
    println!(
        "background load before the run: {load_before:.2} of {} cores busy{}",
        machine.cores,
        background_xids
            .map(|xids| format!(
                ", {xids:.0} writing transactions/s on the PostgreSQL server from other clients"
            ))
            .unwrap_or_default()
    );
    println!("backend: {}", backend.name());
    println!(
        "organisations (police region): {}",
        report
            .organisations
            .iter()
            .map(|(organisation, region)| format!("{organisation} ({region})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("concurrency: {} users", args.concurrency);
    println!(
        "duration: {window:.2} s measured after {:.1} s warm-up (bounds: {} s, {}; whole run {:.2} s)",
        args.warmup,
        args.duration,
        args.max_lifecycles
            .map(|max| format!("at most {max} lifecycles"))
            .unwrap_or_else(|| "no count bound".to_owned()),
        run_time.as_secs_f64()
    );
    println!(
        "lifecycles: {} in the window ({} in all, {} unfinished at the drain timeout)",
        report.lifecycles, report.lifecycles_total, report.unfinished
    );
    println!("lifecycles/s: {rate:.1}");
    println!(
        "the load's own calls: {:.1} Get per lifecycle while waiting for ACKNOWLEDGED (served by the disclosure service like any call)",
        report.polls as f64 / report.lifecycles_total.max(1) as f64
    );
    println!("latency (steps started inside the window):");
    println!("{}", ms_table_header("step"));
    for step in Step::ALL {
        let samples = report.samples.entry(step).or_default();
        println!("{}", ms_table_row(step.label(), samples));
    }

    let per_lifecycle = |count: f64| count / (report.lifecycles.max(1) as f64);
    let commits = match (open.xact_commit, close.xact_commit) {
        (Some(open), Some(close)) => Some((close - open) as f64),
        _ => None,
    };
    let server = match (open.server, close.server) {
        (Some(open), Some(close)) => Some(close.since(&open)),
        _ => None,
    };
    match (commits, server) {
        (Some(commits), Some(server)) => {
            println!(
                "database commits: {:.0}/s xact_commit over the three databases ({:.1} per lifecycle; read-only statements count too)",
                commits / window,
                per_lifecycle(commits)
            );
            println!(
                "writing transactions: {:.0}/s on the server (transaction ids assigned; {:.1} per lifecycle; other clients of the server count too)",
                server.xids as f64 / window,
                per_lifecycle(server.xids as f64)
            );
            println!(
                "WAL: {:.0} syncs/s ({:.2} per lifecycle), {:.0} records/s, {:.1} MB/s",
                server.wal_syncs as f64 / window,
                per_lifecycle(server.wal_syncs as f64),
                server.wal_records as f64 / window,
                server.wal_bytes as f64 / window / 1e6
            );
            println!(
                "the ratio to pgbench uses writing transactions/s: each pgbench transaction is one INSERT that writes and waits for its WAL flush, and so is each writing transaction here; xact_commit also counts read-only statements"
            );
        }
        _ => println!("database commits: not counted on {}", backend.name()),
    }
    println!("CPU: {}", cpu.describe(machine.cores));
    let (process_us, others_us) = cpu.per(report.lifecycles);
    println!(
        "CPU per lifecycle: {process_us:.0} µs in this process (services and load generator), {others_us:.0} µs in other processes"
    );

    let failed = report.failed();
    println!("failed: {failed}");
    for (step, failures) in &report.failures {
        println!("  {}: {} failed", step.label(), failures.count);
        for example in &failures.examples {
            println!("    {example}");
        }
    }
    if report.subscriber_failures.count > 0 {
        println!(
            "subscriber streams reopened after failing: {}",
            report.subscriber_failures.count
        );
        for example in &report.subscriber_failures.examples {
            println!("    {example}");
        }
    }
    let mut anomalies = 0;
    let mut missing = 0;
    for log in &report.subscribers {
        let (out_of_order, duplicates) = log.anomalies();
        let never = report.never_delivered(log);
        if !out_of_order.is_empty() || !duplicates.is_empty() || !never.is_empty() {
            anomalies += out_of_order.len() + duplicates.len();
            missing += never.len();
            println!(
                "  subscriber of {} at {}: out of order {:?}, delivered twice {:?}, never delivered {:?}",
                log.police_region, log.notification_address, out_of_order, duplicates, never
            );
        }
    }
    let deliveries: usize = report
        .subscribers
        .iter()
        .map(|log| log.deliveries.len())
        .sum();
    println!(
        "deliveries seen by the subscribers: {deliveries} ({} streams, {anomalies} out of order or repeated, {missing} approvals a stream never delivered)",
        report.subscribers.len()
    );

    let approve_p99 = report
        .samples
        .entry(Step::Approve)
        .or_default()
        .percentile(99.0);
    let fmt_rate = |value: Option<f64>| {
        value
            .map(|value| format!("{value:.1}"))
            .unwrap_or_else(|| "-".to_owned())
    };
    println!(
        "RESULT bench=lifecycle backend={} lifecycles={} lifecycles_per_s={rate:.1} commits_per_s={} write_xacts_per_s={} wal_syncs_per_s={} approve_p99_ms={} failed={failed} concurrency={} duration_s={window:.2} cores={} background_load={load_before:.2}",
        args.backend,
        report.lifecycles,
        fmt_rate(commits.map(|commits| commits / window)),
        fmt_rate(server.map(|server| server.xids as f64 / window)),
        fmt_rate(server.map(|server| server.wal_syncs as f64 / window)),
        ms(approve_p99),
        args.concurrency,
        machine.cores,
    );
    Ok(failed == 0 && anomalies == 0 && report.unfinished == 0)
}
