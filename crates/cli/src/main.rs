//! `tryggdel`: starts the system on the embedded default (SQLite and a generated development
//! PKI in one data directory) and mints development tokens.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tryggdel_auth::{Role, SignerConfig, TokenRequest, TokenSigner};

use tryggdel::devkit::{AUDIENCE, DataDirectory, ISSUER, read};
use tryggdel::system::{SystemOptions, start_system};

#[derive(Parser)]
#[command(
    name = "tryggdel",
    version,
    about = "Secure disclosures to the police under OSL 10 kap. 18 c §"
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the system in development mode (creates the data directory on first start).
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
        /// Database URL; the default is a SQLite file per service in the data directory.
        #[arg(long, env = "TRYGGDEL_DATABASE_URL")]
        database_url: Option<String>,
        /// The organisations and delegations file; the default is the development directory.
        #[arg(long, env = "TRYGGDEL_DIRECTORY")]
        directory: Option<PathBuf>,
    },
    /// The audit log: checkpoints, exports, offline verification.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
}

/// How to reach the audit service as a user.
#[derive(clap::Args)]
struct AuditConnection {
    /// The audit service.
    #[arg(
        long,
        env = "TRYGGDEL_AUDIT_ENDPOINT",
        default_value = "https://127.0.0.1:50052"
    )]
    endpoint: String,
    /// Your organisation; picks its development client certificate.
    #[arg(long, env = "TRYGGDEL_ORG")]
    org: String,
    /// Your token (see `tryggdel dev-token`).
    #[arg(long, env = "TRYGGDEL_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Save a signed checkpoint (the latest, or the one at --tree-size) to a file.
    Checkpoint {
        #[command(flatten)]
        connection: AuditConnection,
        #[arg(long, default_value_t = 0)]
        tree_size: u64,
        /// Where to write the signed note.
        #[arg(long)]
        out: PathBuf,
    },
    /// Save every entry of the log at a signed checkpoint, for offline verification.
    Export {
        #[command(flatten)]
        connection: AuditConnection,
        #[arg(long, default_value_t = 0)]
        tree_size: u64,
        /// Where to write the export (JSON Lines).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an export offline: the checkpoint's signature, every entry's hash, the root,
    /// consistency with earlier checkpoints, and optionally one entry's inclusion.
    /// Exit code 0: verified; 2: the log does not verify; 1: verification could not run.
    Verify {
        /// The export file.
        #[arg(long)]
        export: PathBuf,
        /// The log's public key: a verifier key `<origin>+<key id>+<key>` or a file holding it.
        #[arg(long)]
        key: String,
        /// An earlier signed checkpoint to check consistency with (repeatable).
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        /// Prove this entry's inclusion and show it.
        #[arg(long)]
        inclusion: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Exit code of `audit verify` when the log does not verify.
const EXIT_NOT_VERIFIED: u8 = 2;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Done) => std::process::ExitCode::SUCCESS,
        Ok(Outcome::NotVerified) => std::process::ExitCode::from(EXIT_NOT_VERIFIED),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

enum Outcome {
    Done,
    NotVerified,
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let format = tryggdel_telemetry::LogFormat::parse(&cli.log_format)
        .with_context(|| format!("--log-format {:?}: expected text or json", cli.log_format))?;
    let data = DataDirectory::new(&cli.data_dir);
    match cli.command {
        Command::Start {
            disclosure_listen,
            audit_listen,
            notification_listen,
            database_url,
            directory,
        } => {
            tryggdel_telemetry::init(format, "info");
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(async {
                let system = start_system(&SystemOptions {
                    data_dir: cli.data_dir.clone(),
                    disclosure_listen,
                    audit_listen,
                    notification_listen,
                    database_url,
                    directory,
                })
                .await?;
                system.print_banner();
                wait_for_stop_signal().await?;
                println!("stopping");
                system.stop().await
            })?;
            Ok(Outcome::Done)
        }
        Command::Audit { command } => audit_command(&data, command),
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
            println!("{token}");
            Ok(Outcome::Done)
        }
    }
}

fn audit_command(data: &DataDirectory, command: AuditCommand) -> anyhow::Result<Outcome> {
    let connect = |connection: AuditConnection| {
        tryggdel::audit::Connection::development(
            data,
            &connection.endpoint,
            &connection.org,
            connection.token,
        )
    };
    let runtime = || tokio::runtime::Runtime::new().context("starting the runtime");
    match command {
        AuditCommand::Checkpoint {
            connection,
            tree_size,
            out,
        } => {
            let connection = connect(connection);
            let checkpoint =
                runtime()?.block_on(tryggdel::audit::checkpoint(&connection, tree_size))?;
            std::fs::write(&out, &checkpoint.note)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "checkpoint of {} entries of {} written to {}",
                checkpoint.tree_size,
                checkpoint.origin,
                out.display()
            );
            Ok(Outcome::Done)
        }
        AuditCommand::Export {
            connection,
            tree_size,
            out,
        } => {
            let connection = connect(connection);
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut progress = tryggdel::audit::progress_printer("exported");
            let written = runtime()?.block_on(tryggdel::audit::export(
                &connection,
                tree_size,
                std::io::BufWriter::new(file),
                &mut progress,
            ))?;
            println!("{written} entries written to {}", out.display());
            Ok(Outcome::Done)
        }
        AuditCommand::Verify {
            export,
            key,
            checkpoints,
            inclusion,
            json,
        } => {
            let mut progress = tryggdel::audit::progress_printer("verified");
            let report =
                tryggdel::audit::verify(&export, &key, &checkpoints, inclusion, &mut progress)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).context("the report as JSON")?
                );
            } else {
                println!("{report}");
            }
            Ok(if report.is_ok() {
                Outcome::Done
            } else {
                Outcome::NotVerified
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
