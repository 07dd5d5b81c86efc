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
        /// Database URL; the default is a SQLite file in the data directory.
        #[arg(long, env = "TRYGGDEL_DATABASE_URL")]
        database_url: Option<String>,
        /// The organisations and delegations file; the default is the development directory.
        #[arg(long, env = "TRYGGDEL_DIRECTORY")]
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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let format = tryggdel_telemetry::LogFormat::parse(&cli.log_format)
        .with_context(|| format!("--log-format {:?}: expected text or json", cli.log_format))?;
    let data = DataDirectory::new(&cli.data_dir);
    match cli.command {
        Command::Start {
            disclosure_listen,
            database_url,
            directory,
        } => {
            tryggdel_telemetry::init(format, "info");
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(async {
                let system = start_system(&SystemOptions {
                    data_dir: cli.data_dir.clone(),
                    disclosure_listen,
                    database_url,
                    directory,
                })
                .await?;
                system.print_banner();
                wait_for_stop_signal().await?;
                println!("stopping");
                system.stop().await
            })
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
            println!("{token}");
            Ok(())
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
