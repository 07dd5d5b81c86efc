//! The whole system in one process, built the one way every caller builds it: `tryggdel
//! start`, the end-to-end tests, the services' test harnesses and the benchmarks all take a
//! development data directory's configuration ([`DataDirectory::development_config`], the same
//! [`Config`] a deployment loads), turn it into each service's settings with
//! [`crate::settings`], and differ only in the overrides they ask for (free ports, a fresh
//! database per service, faster relays, shorter deadlines).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tokio::net::TcpListener;
use tryggdel_disclosure::{DEVELOPMENT_DIRECTORY, Directory};
use tryggdel_domain::LegalRegistry;

use crate::config::{Config, Endpoints, Listen};
use crate::data_directory::DataDirectory;
use crate::files::read;
use crate::settings::{self, Service};
use crate::witnesses::DevelopmentWitnesses;

/// The services `tryggdel start` runs, in start order.
pub const SERVICES: [&str; 3] = ["audit", "notification", "disclosure"];

/// Who gets a service certificate of the development CA: the services and the console.
pub const CERTIFICATES: [&str; 4] = ["audit", "notification", "disclosure", "console"];

/// What `tryggdel start` was asked for.
#[derive(Clone, Debug)]
pub struct SystemOptions {
    pub data_dir: PathBuf,
    pub disclosure_listen: SocketAddr,
    pub audit_listen: SocketAddr,
    pub notification_listen: SocketAddr,
    /// The console (HTTPS).
    pub console_listen: SocketAddr,
    /// None: a SQLite file per service in the data directory. A PostgreSQL URL is shared by
    /// the services, each in its own schema.
    pub database_url: Option<String>,
    /// None: the development organisation directory.
    pub directory: Option<PathBuf>,
}

/// A change to one service's settings after the configuration made them.
type Override<S> = Box<dyn FnOnce(&mut S) + Send>;

/// Builds and starts the three services from a development data directory's configuration,
/// with the overrides a test or a benchmark asks for.
pub struct SystemBuilder {
    data: DataDirectory,
    directory: Option<PathBuf>,
    listen: Listen,
    /// A database URL shared by every service (PostgreSQL: one schema each).
    shared_database: Option<String>,
    /// A database of its own for a service; wins over `shared_database`.
    databases: HashMap<Service, String>,
    audit: Vec<Override<tryggdel_audit::Settings>>,
    notification: Vec<Override<tryggdel_notification::Settings>>,
    disclosure: Vec<Override<tryggdel_disclosure::Settings>>,
    console: Vec<Override<tryggdel_console::Settings>>,
    /// Whether the two development witnesses run and the log publishes only what they cosign.
    development_witnesses: bool,
}

/// The settings each service was started with (to start one again as it was).
pub struct SystemSettings {
    pub audit: tryggdel_audit::Settings,
    pub notification: tryggdel_notification::Settings,
    pub disclosure: tryggdel_disclosure::Settings,
}

/// The running services.
pub struct RunningSystem {
    pub data: DataDirectory,
    pub registry_version: String,
    pub audit: tryggdel_audit::RunningService,
    pub notification: tryggdel_notification::RunningService,
    pub disclosure: tryggdel_disclosure::RunningService,
    pub console: tryggdel_console::RunningConsole,
    pub settings: SystemSettings,
    /// The development witnesses, when asked for.
    pub witnesses: Option<DevelopmentWitnesses>,
}

/// `settings` with every override applied, in the order they were asked for.
fn changed<S>(mut settings: S, overrides: Vec<Override<S>>) -> S {
    for change in overrides {
        change(&mut settings);
    }
    settings
}

async fn bind(address: SocketAddr, service: Service) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address} for the {} service", service.as_str()))
}

impl SystemBuilder {
    /// The system `tryggdel start` runs on `data_dir`: the development directory, the default
    /// addresses, a SQLite file per service in the data directory.
    pub fn development(data_dir: impl Into<PathBuf>) -> SystemBuilder {
        SystemBuilder {
            data: DataDirectory::new(data_dir),
            directory: None,
            listen: Listen::default(),
            shared_database: None,
            databases: HashMap::new(),
            audit: Vec::new(),
            notification: Vec::new(),
            disclosure: Vec::new(),
            console: Vec::new(),
            development_witnesses: false,
        }
    }

    /// `tryggdel start` as asked for on its command line.
    pub fn from_options(options: &SystemOptions) -> SystemBuilder {
        let mut builder = SystemBuilder::development(&options.data_dir);
        builder.directory = options.directory.clone();
        builder.listen = Listen {
            disclosure: options.disclosure_listen,
            audit: options.audit_listen,
            notification: options.notification_listen,
            console: options.console_listen,
        };
        builder.shared_database = options.database_url.clone();
        builder.with_development_witnesses()
    }

    /// Runs the two development witnesses (2-of-2) beside the services; the audit log then
    /// publishes only checkpoints both cosigned.
    pub fn with_development_witnesses(mut self) -> SystemBuilder {
        self.development_witnesses = true;
        self
    }

    /// Every service on a free port of 127.0.0.1.
    pub fn on_free_ports(mut self) -> SystemBuilder {
        let free = SocketAddr::from(([127, 0, 0, 1], 0));
        self.listen = Listen {
            disclosure: free,
            audit: free,
            notification: free,
            console: free,
        };
        self
    }

    /// `service` keeps its data in the database at `url`.
    pub fn database(mut self, service: Service, url: impl Into<String>) -> SystemBuilder {
        self.databases.insert(service, url.into());
        self
    }

    /// Changes the audit service's settings after the configuration made them.
    pub fn audit(
        mut self,
        change: impl FnOnce(&mut tryggdel_audit::Settings) + Send + 'static,
    ) -> SystemBuilder {
        self.audit.push(Box::new(change));
        self
    }

    /// Changes the notification service's settings after the configuration made them.
    pub fn notification(
        mut self,
        change: impl FnOnce(&mut tryggdel_notification::Settings) + Send + 'static,
    ) -> SystemBuilder {
        self.notification.push(Box::new(change));
        self
    }

    /// Changes the disclosure service's settings after the configuration made them.
    pub fn disclosure(
        mut self,
        change: impl FnOnce(&mut tryggdel_disclosure::Settings) + Send + 'static,
    ) -> SystemBuilder {
        self.disclosure.push(Box::new(change));
        self
    }

    /// Changes the console's settings after the configuration made them.
    pub fn console(
        mut self,
        change: impl FnOnce(&mut tryggdel_console::Settings) + Send + 'static,
    ) -> SystemBuilder {
        self.console.push(Box::new(change));
        self
    }

    /// Creates the development data directory's certificates and keys where they are missing
    /// (those present are reused).
    pub fn prepare(&self) -> anyhow::Result<()> {
        tryggdel_tls::install_crypto_provider();
        if self
            .data
            .ensure(&CERTIFICATES, &organisation_codes(self.directory.as_ref())?)?
        {
            tracing::info!(data_dir = %self.data.root.display(), "created development certificates and keys");
        }
        Ok(())
    }

    /// The audit service's settings alone, on `database_url`, as [`SystemBuilder::start`]
    /// would make them (default endpoints, the overrides applied): for running the log by
    /// itself.
    pub fn audit_settings(self, database_url: String) -> anyhow::Result<tryggdel_audit::Settings> {
        self.prepare()?;
        let config = self
            .data
            .development_config(Service::Audit.as_str(), self.directory.clone());
        let common = settings::common(&config)?;
        let audit_settings = settings::audit_settings(&config, &common, database_url)?;
        Ok(changed(audit_settings, self.audit))
    }

    /// The disclosure service's settings alone, on `database_url`, as [`SystemBuilder::start`]
    /// would make them (default endpoints): its keys, for writing its database directly.
    pub fn disclosure_settings(
        self,
        database_url: String,
    ) -> anyhow::Result<tryggdel_disclosure::Settings> {
        self.prepare()?;
        let config = self
            .data
            .development_config(Service::Disclosure.as_str(), self.directory.clone());
        let common = settings::common(&config)?;
        settings::disclosure_settings(&config, &common, database_url)
    }

    /// Creates the development data directory if needed (certificates and keys, reused when
    /// present) and starts every service, each with the configuration `tryggdel serve` would
    /// give it in development mode, changed only by the overrides.
    pub async fn start(self) -> anyhow::Result<RunningSystem> {
        self.bind().await?.start().await
    }

    /// Everything [`SystemBuilder::start`] does before starting a service: the data
    /// directory prepared, every listener bound (each service must know the others'
    /// addresses) and every service's settings made. A test that needs only some of the
    /// services starts those from here; the others' addresses then refuse connections.
    pub async fn bind(self) -> anyhow::Result<BoundSystem> {
        self.prepare()?;
        let data = self.data;
        let listeners = Listeners {
            audit: bind(self.listen.audit, Service::Audit).await?,
            notification: bind(self.listen.notification, Service::Notification).await?,
            disclosure: bind(self.listen.disclosure, Service::Disclosure).await?,
            console: bind(self.listen.console, Service::Console).await?,
        };
        let endpoints = Endpoints {
            audit: format!("https://{}", listeners.audit.local_addr()?),
            disclosure: format!("https://{}", listeners.disclosure.local_addr()?),
            notification: format!("https://{}", listeners.notification.local_addr()?),
        };
        let database_url = |service: Service| {
            self.databases
                .get(&service)
                .or(self.shared_database.as_ref())
                .cloned()
                .unwrap_or_else(|| data.sqlite_url(service.as_str()))
        };
        let configured = |service: Service| -> anyhow::Result<(Config, settings::Common)> {
            let mut config = data.development_config(service.as_str(), self.directory.clone());
            config.endpoints = endpoints.clone();
            let common = settings::common(&config)?;
            Ok((config, common))
        };

        let (config, common) = configured(Service::Audit)?;
        let audit = settings::audit_settings(&config, &common, database_url(Service::Audit))?;
        let mut audit = changed(audit, self.audit);
        let witnesses = if self.development_witnesses {
            let log = tryggdel_merkle::checkpoint::CheckpointSigner::new(
                audit.signing_key.clone(),
                audit.origin.clone(),
            )?
            .verifier();
            let (witnesses, witnessing) = DevelopmentWitnesses::start(&data, &log).await?;
            audit.witnessing = Some(witnessing);
            Some(witnesses)
        } else {
            None
        };

        let (config, common) = configured(Service::Notification)?;
        let notification =
            settings::notification_settings(&config, &common, database_url(Service::Notification))?;
        let notification = changed(notification, self.notification);

        let (config, common) = configured(Service::Disclosure)?;
        let disclosure =
            settings::disclosure_settings(&config, &common, database_url(Service::Disclosure))?;
        let disclosure = changed(disclosure, self.disclosure);

        let (mut config, common) = configured(Service::Console)?;
        config.console.public_origin = Some(format!("https://{}", listeners.console.local_addr()?));
        let sign_in = crate::console::sign_in(&config)?;
        let console = crate::console::console_settings(&config, &common, sign_in)?;
        let console = changed(console, self.console);
        Ok(BoundSystem {
            data,
            registry_version: common.registry.registry_version().to_owned(),
            listeners,
            console,
            settings: SystemSettings {
                audit,
                notification,
                disclosure,
            },
            witnesses,
        })
    }
}

/// A system with its listeners bound and its settings made, not yet started.
pub struct BoundSystem {
    pub data: DataDirectory,
    pub registry_version: String,
    pub listeners: Listeners,
    pub settings: SystemSettings,
    /// The console's settings (it starts last, once the services answer).
    pub console: tryggdel_console::Settings,
    /// The development witnesses, already running, when asked for.
    pub witnesses: Option<DevelopmentWitnesses>,
}

/// Each service's bound listener.
pub struct Listeners {
    pub audit: TcpListener,
    pub notification: TcpListener,
    pub disclosure: TcpListener,
    pub console: TcpListener,
}

impl BoundSystem {
    /// Starts the three services, the audit log first.
    pub async fn start(self) -> anyhow::Result<RunningSystem> {
        let BoundSystem {
            data,
            registry_version,
            listeners,
            settings,
            console,
            witnesses,
        } = self;
        let audit = tryggdel_audit::spawn_on(&settings.audit, listeners.audit).await?;
        let notification =
            tryggdel_notification::spawn_on(&settings.notification, listeners.notification).await?;
        let disclosure =
            tryggdel_disclosure::spawn_on(&settings.disclosure, listeners.disclosure).await?;
        let console_listener = listeners
            .console
            .into_std()
            .context("the console's listener")?;
        let console = tryggdel_console::start(console, console_listener).await?;
        Ok(RunningSystem {
            data,
            registry_version,
            audit,
            notification,
            disclosure,
            console,
            settings,
            witnesses,
        })
    }
}

/// Starts the system `tryggdel start` runs for `options`.
pub async fn start_system(options: &SystemOptions) -> anyhow::Result<RunningSystem> {
    SystemBuilder::from_options(options).start().await
}

/// The organisation codes of the directory the system runs with (for their client
/// certificates).
fn organisation_codes(directory: Option<&PathBuf>) -> anyhow::Result<Vec<String>> {
    let registry = LegalRegistry::embedded().context("legal-basis registry")?;
    let text = match directory {
        Some(path) => read(path)?,
        None => DEVELOPMENT_DIRECTORY.to_owned(),
    };
    Ok(Directory::from_toml(&text, &registry)
        .context("organisation directory")?
        .codes())
}

impl RunningSystem {
    /// What a newcomer needs to call the system.
    pub fn print_banner(&self) {
        let data = &self.data;
        println!(
            "tryggdel is running (development mode, data in {})",
            data.root.display()
        );
        println!(
            "  disclosure service    https://{}  (mTLS, TLS 1.3)",
            self.disclosure.local_addr
        );
        println!(
            "  audit service         https://{}  (mTLS, TLS 1.3)",
            self.audit.local_addr
        );
        println!(
            "  notification service  https://{}  (mTLS, TLS 1.3)",
            self.notification.local_addr
        );
        println!(
            "  console               https://{}  (open in a browser; the development CA signs its certificate)",
            self.console.local_addr
        );
        if let Some(witnesses) = &self.witnesses {
            for (name, address) in witnesses.addresses() {
                println!("  witness               https://{address}  ({name}, C2SP tlog-witness)");
            }
            println!(
                "  witness policy        {}  (2 of 2; `tryggdel audit verify --policy`)",
                witnesses.policy_path.display()
            );
        }
        println!("  legal-basis registry  {}", self.registry_version);
        println!("  CA certificate        {}", data.ca_cert().display());
        println!(
            "  client certificates   {}/<organisation>.pem and <organisation>-key.pem",
            data.root.join("pki/clients").display()
        );
        println!(
            "  audit log key         {}  (for `tryggdel audit verify`)",
            data.audit_log_vkey().display()
        );
        let data_flag = if data.root == std::path::Path::new("data") {
            String::new()
        } else {
            format!(" --data-dir {}", data.root.display())
        };
        println!("tokens for each role (valid 60 minutes):");
        for (role, user, organisation, extra) in [
            ("caseworker", "handlaggare-bollnas", "bollnas-kommun", ""),
            ("decision_maker", "beslut-bollnas", "bollnas-kommun", ""),
            (
                "police_officer",
                "polis-mitt-1",
                "polisen",
                " --region mitt",
            ),
            ("police_officer", "aklagare-1", "aklagarmyndigheten", ""),
            ("compliance_officer", "granskare-ivo", "ivo", ""),
        ] {
            println!(
                "  {role:<19} cargo run -q --bin tryggdel --{data_flag} dev-token --role {role} --user {user} --org {organisation}{extra}"
            );
        }
        println!("the whole scenario:   cargo run -q --bin tryggdel --{data_flag} demo");
        println!("stop with Ctrl-C (or SIGTERM)");
    }

    /// Stops every service, letting in-flight calls finish: disclosure, then notification,
    /// then audit, so that each relay can hand over what it holds before its receiver stops.
    /// Whatever is still in an outbox is sent on the next start.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.console.stop().await?;
        self.disclosure.stop().await?;
        self.notification.stop().await?;
        self.audit.stop().await?;
        match self.witnesses {
            Some(witnesses) => witnesses.stop().await,
            None => Ok(()),
        }
    }
}
