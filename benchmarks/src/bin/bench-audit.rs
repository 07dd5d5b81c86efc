//! `bench-audit`: the audit log measured next to the machine's own limits, in one run:
//!
//! 1. appends per second through the service with group commit (N concurrent appenders with
//!    the `disclosure` service certificate, over mTLS, at 1 and at 20 events per call), with
//!    Append latency, and PostgreSQL's commits and WAL syncs;
//! 2. inclusion and consistency proofs at large sizes, in the library (`MerkleTree`: build
//!    time, memory per entry, proof generation) and through the service over gRPC, on a log
//!    bulk-loaded to each size that the service must open and verify first;
//! 3. full verification of an export taken through the service, next to raw SHA-256 over
//!    the same file on the same machine.
//!
//! The last line is `RESULT bench=audit key=value …`.

use std::io::{BufReader, BufWriter, Read as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rand::Rng as _;
use sha2::Digest as _;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit_verify::{
    ExportEntry, ExportHeader, ExportOpening, ExportWriter, VerifyOptions, verify_export,
};
use tryggdel_auth::Role;
use tryggdel_bench::audit::{bulk_load, relay_event};
use tryggdel_bench::database::redacted;
use tryggdel_bench::machine::background_load;
use tryggdel_bench::stats::{ms_table_header, ms_table_row, us};
use tryggdel_bench::system::audit_settings;
use tryggdel_bench::{
    Backend, Bearer, BenchDatabase, BenchIdentity, CpuTimes, DatabaseArgs, Machine, Samples,
    ServerCounters, xact_commit,
};
use tryggdel_merkle::checkpoint::CheckpointSigner;
use tryggdel_merkle::{Hash, MerkleTree, hash_from_slice};
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{
    AppendRequest, ExportRequest, GetConsistencyProofRequest, GetInclusionProofRequest,
    export_chunk, get_inclusion_proof_request,
};
use tryggdel_system::development::AUDIT_ORIGIN;
use tryggdel_system::{DataDirectory, SystemBuilder};

#[derive(Parser, Debug)]
#[command(about = "Benchmarks the audit log: appends, proofs at scale, export verification")]
struct Args {
    /// A few seconds: tiny sizes, short phases (the smoke test runs this).
    #[arg(long)]
    smoke: bool,
    /// `postgres` or `sqlite`.
    #[arg(long, default_value = "postgres")]
    backend: String,
    #[command(flatten)]
    databases: DatabaseArgs,
    /// Concurrent appenders.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds each append phase runs.
    #[arg(long, default_value_t = 10.0)]
    append_seconds: f64,
    /// Events per Append call, one phase each.
    #[arg(long, value_delimiter = ',', default_value = "1,20")]
    events_per_call: Vec<usize>,
    /// Tree sizes of the library-level proof benchmark.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    proof_sizes: Vec<u64>,
    /// Log sizes bulk-loaded for the proofs through the service.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    service_proof_sizes: Vec<u64>,
    /// Proofs timed per size and kind.
    #[arg(long, default_value_t = 2000)]
    proof_samples: usize,
    /// Entries of the exported log that is verified.
    #[arg(long, default_value_t = 1_000_000)]
    verify_entries: u64,
    /// How often, at most, the log signs a checkpoint during the append phases (ms).
    #[arg(long, default_value_t = 1000)]
    checkpoint_interval_ms: u64,
}

impl Args {
    fn apply_smoke(&mut self) {
        if self.smoke {
            self.concurrency = self.concurrency.min(4);
            self.append_seconds = self.append_seconds.min(1.0);
            self.proof_sizes = vec![1000, 4096];
            self.service_proof_sizes = vec![1500];
            self.proof_samples = self.proof_samples.min(100);
            self.verify_entries = self.verify_entries.min(1500);
        }
    }
}

/// The figures that go into the RESULT line.
#[derive(Default)]
struct Result {
    fields: Vec<(String, String)>,
}

impl Result {
    fn add(&mut self, key: impl Into<String>, value: impl ToString) {
        self.fields.push((key.into(), value.to_string()));
    }

    /// The 99th percentiles of the inclusion and the consistency proofs at `size`, as
    /// `{prefix}incl_p99_{unit}_{size}` and `{prefix}cons_p99_{unit}_{size}`, each written by
    /// `value`.
    fn add_proof_p99s(
        &mut self,
        prefix: &str,
        unit: &str,
        value: fn(Option<Duration>) -> String,
        size: u64,
        inclusion: &mut Samples,
        consistency: &mut Samples,
    ) {
        for (kind, samples) in [("incl", inclusion), ("cons", consistency)] {
            self.add(
                format!("{prefix}{kind}_p99_{unit}_{size}"),
                value(samples.percentile(99.0)),
            );
        }
    }

    fn line(&self) -> String {
        let mut line = "RESULT bench=audit".to_owned();
        for (key, value) in &self.fields {
            line.push_str(&format!(" {key}={value}"));
        }
        line
    }
}

fn ms_value(duration: Option<Duration>) -> String {
    duration
        .map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.apply_smoke();
    tryggdel_bench::init_telemetry();
    let backend = Backend::parse(&args.backend, &args.databases.postgres_url)?;
    let machine = Machine::detect();
    println!("machine: {}", machine.describe());
    let load = tokio::task::spawn_blocking(|| background_load(Duration::from_millis(500)))
        .await
        .context("sampling the background load")?;
    println!(
        "background load: {load:.2} of {} cores busy before the run (figures taken on a busy machine are low)",
        machine.cores
    );
    match backend.admin_url() {
        Some(url) => println!("backend: postgresql at {}", redacted(url)),
        None => println!("backend: sqlite (one file in a temporary directory)"),
    }
    let data = tempfile::tempdir().context("a data directory")?;
    SystemBuilder::development(data.path()).prepare()?;
    let identity = Arc::new(BenchIdentity::from_development_pki(&DataDirectory::new(
        data.path(),
    ))?);
    let mut result = Result::default();
    result.add("backend", backend.name());
    result.add("cores", machine.cores);
    result.add("load", format!("{load:.2}"));

    appends(&args, &backend, &identity, &machine, &mut result).await?;
    library_proofs(&args, &mut result).await?;
    let mut verified = false;
    for &size in &args.service_proof_sizes {
        let verify = !verified && size >= args.verify_entries;
        service_proofs(&args, &backend, &identity, size, verify, &mut result).await?;
        verified |= verify;
    }
    if !verified {
        service_proofs(
            &args,
            &backend,
            &identity,
            args.verify_entries,
            true,
            &mut result,
        )
        .await?;
    }
    println!("{}", result.line());
    Ok(())
}

type Client = AuditServiceClient<Channel>;

/// Phase 1: N appenders calling Append for `append_seconds`, per events-per-call setting.
async fn appends(
    args: &Args,
    backend: &Backend,
    identity: &Arc<BenchIdentity>,
    machine: &Machine,
    result: &mut Result,
) -> anyhow::Result<()> {
    println!();
    println!("== appends through the service (group commit), fresh database per phase ==");
    println!(
        "concurrency: {} appenders (service certificate `disclosure`, mTLS), {:.1} s per phase, checkpoint at most every {} ms",
        args.concurrency, args.append_seconds, args.checkpoint_interval_ms
    );
    for &per_call in &args.events_per_call {
        let database =
            BenchDatabase::create(backend, &args.databases.database_prefix, "audit").await?;
        let outcome = append_phase(args, backend, identity, machine, &database, per_call).await;
        remove(database, args.databases.keep_databases).await?;
        let (rate, mut latency) = outcome?;
        result.add(format!("appends_{per_call}"), format!("{rate:.0}"));
        result.add(
            format!("append_p99_ms_{per_call}"),
            ms_value(latency.percentile(99.0)),
        );
    }
    Ok(())
}

async fn remove(database: BenchDatabase, keep: bool) -> anyhow::Result<()> {
    if keep {
        if let Some(name) = &database.name {
            println!("kept database {name}");
        }
        return Ok(());
    }
    database.remove().await
}

async fn start_audit(
    identity: &BenchIdentity,
    database_url: &str,
    checkpoint_interval: Duration,
    signing_key: Option<ed25519_dalek::SigningKey>,
) -> anyhow::Result<tryggdel_audit::RunningService> {
    let mut settings =
        audit_settings(&identity.data, database_url.to_owned(), checkpoint_interval)?;
    if let Some(key) = signing_key {
        settings.signing_key = key;
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a port")?;
    tryggdel_audit::spawn_on(&settings, listener)
        .await
        .context("starting the audit service")
}

async fn append_phase(
    args: &Args,
    backend: &Backend,
    identity: &Arc<BenchIdentity>,
    machine: &Machine,
    database: &BenchDatabase,
    per_call: usize,
) -> anyhow::Result<(f64, Samples)> {
    let service = start_audit(
        identity,
        &database.url,
        Duration::from_millis(args.checkpoint_interval_ms),
        None,
    )
    .await?;
    let mut clients = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        clients.push(Client::new(
            identity
                .service_channel(service.local_addr, "disclosure")
                .await?,
        ));
    }
    let names: Vec<String> = database.name.iter().cloned().collect();
    let admin = backend.admin_url().map(str::to_owned);
    let commits_before = match &admin {
        Some(url) => Some(xact_commit(url, &names).await?),
        None => None,
    };
    let counters_before = match &admin {
        Some(url) => Some(ServerCounters::read(url).await?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut client in clients {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::new();
            let mut entries = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let events = (0..per_call).map(|_| relay_event()).collect();
                let call = Instant::now();
                let answer = client
                    .append(AppendRequest { events })
                    .await
                    .context("append")?;
                samples.record(call.elapsed());
                entries += answer.into_inner().entries.len() as u64;
            }
            anyhow::Ok((samples, entries))
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.append_seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latency = Samples::new();
    let mut entries = 0;
    for task in tasks {
        let (samples, count) = task.await.context("appender")??;
        latency.extend(&samples);
        entries += count;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = CpuTimes::now().since(&cpu_before);
    let rate = entries as f64 / elapsed;
    println!(
        "events per call {per_call}: {rate:.0} entries/s ({:.0} calls/s, {entries} entries in {elapsed:.2} s)",
        latency.len() as f64 / elapsed
    );
    println!("{}", ms_table_header("latency"));
    println!(
        "{}",
        ms_table_row(&format!("Append ({per_call}/call)"), &mut latency)
    );
    if let (Some(url), Some(commits_before), Some(counters_before)) =
        (&admin, commits_before, counters_before)
    {
        let commits = xact_commit(url, &names).await? - commits_before;
        let counters = ServerCounters::read(url).await?.since(&counters_before);
        println!(
            "  database commits: {commits} ({:.1} entries per commit, {:.0} commits/s); server-wide: {} write transactions, WAL syncs {}, WAL {:.1} MB ({:.0} bytes per entry)",
            entries as f64 / commits.max(1) as f64,
            commits as f64 / elapsed,
            counters.xids,
            counters.wal_syncs,
            counters.wal_bytes as f64 / 1e6,
            counters.wal_bytes as f64 / entries.max(1) as f64
        );
    }
    let (process_us, others_us) = cpu.per(entries);
    println!(
        "  CPU: {}; per entry {process_us:.1} µs here, {others_us:.1} µs elsewhere",
        cpu.describe(machine.cores)
    );
    service.stop().await?;
    Ok((rate, latency))
}

/// Resident memory of this process (VmRSS), in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn random_hashes(count: u64) -> impl Iterator<Item = Hash> {
    let mut rng = rand::thread_rng();
    (0..count).map(move |_| {
        let mut hash = [0u8; 32];
        rng.fill(&mut hash);
        hash
    })
}

/// Phase 2a: `MerkleTree` built from random leaf hashes; proofs over random indices and sizes.
async fn library_proofs(args: &Args, result: &mut Result) -> anyhow::Result<()> {
    println!();
    println!("== proofs in the library (MerkleTree, in memory) ==");
    let sizes = args.proof_sizes.clone();
    let samples = args.proof_samples;
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for size in sizes {
            let before = resident_bytes();
            let started = Instant::now();
            let tree = MerkleTree::from_leaf_hashes(random_hashes(size));
            let build = started.elapsed();
            let memory = match (before, resident_bytes()) {
                (Some(before), Some(after)) => {
                    format!("{:.1}", after.saturating_sub(before) as f64 / size as f64)
                }
                _ => "-".to_owned(),
            };
            let mut rng = rand::thread_rng();
            let mut inclusion = Samples::new();
            let mut consistency = Samples::new();
            for _ in 0..samples {
                let index = rng.gen_range(0..size);
                let at = rng.gen_range(index + 1..=size);
                let started = Instant::now();
                let proof = tree.inclusion_proof(index, at);
                inclusion.record(started.elapsed());
                proof?;
                let first = rng.gen_range(1..=size);
                let started = Instant::now();
                let proof = tree.consistency_proof(first, size);
                consistency.record(started.elapsed());
                proof?;
            }
            lines.push((size, build, memory, inclusion, consistency));
            drop(tree);
        }
        anyhow::Ok(lines)
    })
    .await
    .context("library proofs")??;
    for (size, build, memory, mut inclusion, mut consistency) in lines {
        println!(
            "size {size}: build {:.2} s from leaf hashes ({:.0} leaves/s), memory {memory} bytes per entry (resident)",
            build.as_secs_f64(),
            size as f64 / build.as_secs_f64().max(1e-9)
        );
        for (kind, samples, over) in [
            ("inclusion", &mut inclusion, "(index, size)"),
            ("consistency", &mut consistency, "first sizes"),
        ] {
            println!(
                "  {kind} proof (library): p50 {} µs, p99 {} µs, max {} µs over {} random {over}",
                us(samples.percentile(50.0)),
                us(samples.percentile(99.0)),
                us(samples.max()),
                samples.len()
            );
        }
        result.add_proof_p99s("lib_", "us", us, size, &mut inclusion, &mut consistency);
    }
    Ok(())
}

/// Phase 2b (and 3): a log bulk-loaded to `size` entries, opened by the service (which checks
/// it against its checkpoint), proofs over gRPC; with `verify`, an export verified offline.
async fn service_proofs(
    args: &Args,
    backend: &Backend,
    identity: &Arc<BenchIdentity>,
    size: u64,
    verify: bool,
    result: &mut Result,
) -> anyhow::Result<()> {
    let database = BenchDatabase::create(backend, &args.databases.database_prefix, "audit").await?;
    let outcome = service_proofs_on(args, identity, &database, size, verify, result).await;
    remove(database, args.databases.keep_databases).await?;
    outcome
}

async fn service_proofs_on(
    args: &Args,
    identity: &Arc<BenchIdentity>,
    database: &BenchDatabase,
    size: u64,
    verify: bool,
    result: &mut Result,
) -> anyhow::Result<()> {
    println!();
    println!("== proofs through the service at {size} entries ==");
    let signing_key = tryggdel_bench::system::random_signing_key();
    let signer =
        CheckpointSigner::new(signing_key.clone(), AUDIT_ORIGIN).context("checkpoint signer")?;
    let loaded = bulk_load(&database.url, &signer, size).await?;
    println!(
        "bulk load: {size} real entries ({:.0} bytes each on average) in {:.1} s ({:.0} entries/s), checkpoint signed at {}",
        loaded.bytes as f64 / size.max(1) as f64,
        loaded.elapsed.as_secs_f64(),
        size as f64 / loaded.elapsed.as_secs_f64().max(1e-9),
        loaded.checkpoint.tree_size
    );
    let started = Instant::now();
    let service = start_audit(
        identity,
        &database.url,
        Duration::from_secs(1),
        Some(signing_key),
    )
    .await?;
    let startup = started.elapsed();
    println!(
        "service start-up: {:.2} s (loads every leaf hash, rebuilds the tree, checks it against the signed checkpoint)",
        startup.as_secs_f64()
    );
    result.add(
        format!("startup_s_{size}"),
        format!("{:.2}", startup.as_secs_f64()),
    );
    let outcome = async {
        let mut client = Client::new(
            identity
                .service_channel(service.local_addr, "disclosure")
                .await?,
        );
        let mut inclusion = Samples::new();
        let mut consistency = Samples::new();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
        for _ in 0..args.proof_samples {
            let index = rng.gen_range(0..size);
            let started = Instant::now();
            client
                .get_inclusion_proof(GetInclusionProofRequest {
                    tree_size: size,
                    entry: Some(get_inclusion_proof_request::Entry::Index(index)),
                })
                .await
                .context("GetInclusionProof")?;
            inclusion.record(started.elapsed());
            let first = rng.gen_range(1..=size);
            let started = Instant::now();
            client
                .get_consistency_proof(GetConsistencyProofRequest {
                    first_size: first,
                    second_size: size,
                })
                .await
                .context("GetConsistencyProof")?;
            consistency.record(started.elapsed());
        }
        println!("{}", ms_table_header("one caller, sequential"));
        println!(
            "{}",
            ms_table_row("GetInclusionProof (service)", &mut inclusion)
        );
        println!(
            "{}",
            ms_table_row("GetConsistencyProof (service)", &mut consistency)
        );
        result.add_proof_p99s("", "ms", ms_value, size, &mut inclusion, &mut consistency);
        if verify {
            verification(identity, &service, &signer, result).await?;
        }
        anyhow::Ok(())
    }
    .await;
    service.stop().await?;
    outcome
}

/// Phase 3: export through the service to a file, verify it, hash the same file raw.
async fn verification(
    identity: &Arc<BenchIdentity>,
    service: &tryggdel_audit::RunningService,
    signer: &CheckpointSigner,
    result: &mut Result,
) -> anyhow::Result<()> {
    println!();
    println!("== full verification of an export ==");
    let token = identity.token(
        "granskare-ivo",
        "ivo",
        &[Role::ComplianceOfficer],
        None,
        Duration::from_secs(3600),
    )?;
    let channel = identity.channel(service.local_addr, "ivo").await?;
    let mut officer: AuditServiceClient<InterceptedService<Channel, Bearer>> =
        AuditServiceClient::with_interceptor(channel, tryggdel_bench::identity::bearer(&token)?);
    let directory = tempfile::tempdir().context("temporary directory")?;
    let path = directory.path().join("export.jsonl");
    let started = Instant::now();
    let mut stream = officer
        .export(ExportRequest { tree_size: 0 })
        .await
        .context("Export")?
        .into_inner();
    let Some(first) = stream.message().await.context("Export")? else {
        bail!("the export stream is empty");
    };
    let Some(export_chunk::Part::Checkpoint(checkpoint)) = first.part else {
        bail!("the export does not start with its checkpoint");
    };
    let file = std::fs::File::create(&path).context("creating the export file")?;
    let mut writer = ExportWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        &ExportHeader {
            origin: checkpoint.origin.clone(),
            tree_size: checkpoint.tree_size,
            checkpoint_note: checkpoint.note.clone(),
        },
    )
    .context("export file")?;
    while let Some(chunk) = stream.message().await.context("Export")? {
        let Some(export_chunk::Part::Entries(batch)) = chunk.part else {
            bail!("a second checkpoint in the export");
        };
        for entry in batch.entries {
            let openings: Vec<ExportOpening> = entry
                .openings
                .into_iter()
                .map(|opening| ExportOpening {
                    key: opening.key,
                    salt: opening.salt,
                    data: opening.data,
                })
                .collect();
            writer
                .write_entry_with_openings(
                    &ExportEntry {
                        index: entry.index,
                        entry: entry.entry,
                        recorded_leaf_hash: hash_from_slice(&entry.leaf_hash)
                            .context("leaf hash of 32 bytes")?,
                    },
                    &openings,
                )
                .context("writing the export")?;
        }
    }
    let mut out = writer.finish().context("writing the export")?;
    std::io::Write::flush(&mut out).context("writing the export")?;
    drop(out);
    let exported = started.elapsed();
    let bytes = std::fs::metadata(&path).context("export file")?.len();
    let entries = checkpoint.tree_size;
    println!(
        "export: {entries} entries, {:.1} MB, through the service in {:.2} s",
        bytes as f64 / 1e6,
        exported.as_secs_f64()
    );
    let verifier = signer.verifier();
    let verify_path = path.clone();
    let (verified, report_ok) = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&verify_path).context("opening the export")?;
        let started = Instant::now();
        let report = verify_export(
            BufReader::with_capacity(1 << 20, file),
            &VerifyOptions::new(verifier),
            &mut |_| {},
        )
        .context("verifying the export")?;
        anyhow::Ok((started.elapsed(), report.is_ok()))
    })
    .await
    .context("verification")??;
    if !report_ok {
        bail!("the export did not verify");
    }
    let sha_path = path.clone();
    let raw = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&sha_path).context("opening the export")?;
        let mut buffer = vec![0u8; 1 << 20];
        let mut hasher = sha2::Sha256::new();
        let started = Instant::now();
        loop {
            let read = file.read(&mut buffer).context("reading the export")?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        let _digest = hasher.finalize();
        anyhow::Ok(started.elapsed())
    })
    .await
    .context("raw SHA-256")??;
    let verify_mb = bytes as f64 / 1e6 / verified.as_secs_f64().max(1e-9);
    let raw_mb = bytes as f64 / 1e6 / raw.as_secs_f64().max(1e-9);
    let ratio = verify_mb / raw_mb.max(1e-9);
    println!(
        "verify_export: {entries} entries in {:.3} s: {:.0} entries/s, {verify_mb:.1} MB/s (signature, every leaf against its recorded hash, the root against the signed root)",
        verified.as_secs_f64(),
        entries as f64 / verified.as_secs_f64().max(1e-9)
    );
    println!(
        "raw SHA-256 over the same file: {:.3} s, {raw_mb:.1} MB/s",
        raw.as_secs_f64()
    );
    println!("ratio verification / raw SHA-256: {ratio:.2} (target at least 0.5)");
    result.add(
        "verify_entries_per_s",
        format!("{:.0}", entries as f64 / verified.as_secs_f64().max(1e-9)),
    );
    result.add("verify_mb_per_s", format!("{verify_mb:.1}"));
    result.add("sha256_mb_per_s", format!("{raw_mb:.1}"));
    result.add("verify_over_sha256", format!("{ratio:.2}"));
    Ok(())
}
