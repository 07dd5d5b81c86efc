//! Several instances of each service as separate processes against one PostgreSQL server:
//! one database per service, shared by that service's instances, a development PKI written
//! by `tryggdel pki`, and each instance configured by a TOML file read by the same code as
//! `tryggdel serve` (`tryggdel::ops::serve`). An instance can be killed (SIGKILL, as a crash
//! would), stopped (SIGTERM) and started again.
//!
//! Instance `i` of disclosure and of notification talk to instance `i` of the other services,
//! as pods behind per-zone services would; what one instance's relays cannot deliver, the other
//! instances' relays deliver, since they share the outbox.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tryggdel_system::DataDirectory;
use tryggdel_system::Service;
use tryggdel_system::development::{AUDIENCE, AUDIT_ORIGIN, ISSUER};

use crate::{Backend, BenchDatabase, BenchIdentity};

/// The services, in the order they are started.
pub const SERVICES: [Service; 3] = [Service::Audit, Service::Notification, Service::Disclosure];

/// How the cluster is laid out.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub admin_url: String,
    pub database_prefix: String,
    /// Instances of each service.
    pub instances: usize,
    /// The program that runs one instance: called as `<program> instance <service> --config <file>`.
    pub program: PathBuf,
    pub checkpoint_interval_ms: u64,
}

/// One instance of a service.
pub struct Instance {
    pub service: Service,
    pub number: usize,
    pub address: SocketAddr,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    pub fn name(&self) -> String {
        format!("{}-{}", self.service.as_str(), self.number)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// The running cluster.
pub struct Cluster {
    pub options: ClusterOptions,
    pub secrets: PathBuf,
    /// Databases of audit, notification and disclosure, in that order.
    pub databases: Vec<BenchDatabase>,
    pub instances: Vec<Instance>,
    pub identity: Arc<BenchIdentity>,
    _directory: tempfile::TempDir,
}

fn free_address() -> anyhow::Result<SocketAddr> {
    // The port is released before the instance binds it; on loopback nothing else takes it
    // in between unless the machine is short of ports.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    listener.local_addr().context("reading a bound port")
}

fn database_label(service: Service) -> &'static str {
    service.as_str()
}

/// The TOML configuration of one instance.
fn instance_config(
    data: &DataDirectory,
    service: Service,
    database_url: &str,
    listen: SocketAddr,
    endpoints: &[(Service, SocketAddr)],
    checkpoint_interval_ms: u64,
) -> String {
    let p = |path: PathBuf| toml_string(&path.display().to_string());
    let endpoint = |wanted: Service| {
        endpoints
            .iter()
            .find(|(other, _)| *other == wanted)
            .map(|(_, address)| format!("https://localhost:{}", address.port()))
            .unwrap_or_default()
    };
    let name = service.as_str();
    let notification_field_key = data.root.join("keys/notification-field-encryption.key");
    let field_key = match service {
        Service::Notification => notification_field_key,
        _ => data.field_key(),
    };
    format!(
        r#"mode = "development"
database_url = {database_url}

[tls]
ca = {ca}
cert = {cert}
key = {key}

[token]
issuer = {issuer}
audience = {audience}
public_key = {token}

[keys]
field = {field}
person_index = {person}
audit_log = {log}
receipt = {receipt}
receipt_public = {receipt_public}

[listen]
{name} = "{listen}"

[endpoints]
audit = "{audit}"
notification = "{notification}"
disclosure = "{disclosure}"

[audit]
origin = {origin}
checkpoint_interval_ms = {checkpoint_interval_ms}
"#,
        database_url = toml_string(database_url),
        ca = p(data.ca_cert()),
        cert = p(data.server_cert(name)),
        key = p(data.server_key(name)),
        issuer = toml_string(ISSUER),
        audience = toml_string(AUDIENCE),
        token = p(data.verifying_key()),
        field = p(field_key),
        person = p(data.person_key()),
        log = p(data.audit_log_key()),
        receipt = p(data.receipt_key()),
        receipt_public = p(data.receipt_public_key()),
        audit = endpoint(Service::Audit),
        notification = endpoint(Service::Notification),
        disclosure = endpoint(Service::Disclosure),
        origin = toml_string(AUDIT_ORIGIN),
    )
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

impl Cluster {
    /// Writes the PKI, creates the databases, migrates them once, writes every instance's
    /// configuration and starts every instance; answers once all report SERVING.
    pub async fn start(options: ClusterOptions) -> anyhow::Result<Cluster> {
        anyhow::ensure!(
            options.instances >= 1,
            "at least one instance of each service"
        );
        let directory = tempfile::tempdir().context("temporary directory")?;
        let secrets = directory.path().join("secrets");
        tryggdel::ops::pki(&secrets, None).context("writing the development PKI")?;
        let data = DataDirectory::new(&secrets);
        write_field_key(&data.root.join("keys/notification-field-encryption.key"))?;
        let identity = Arc::new(BenchIdentity::from_development_pki(&data)?);

        let backend = Backend::Postgres {
            admin_url: options.admin_url.clone(),
        };
        let mut databases = Vec::new();
        for service in SERVICES {
            match BenchDatabase::create(&backend, &options.database_prefix, database_label(service))
                .await
            {
                Ok(database) => databases.push(database),
                Err(error) => {
                    for database in databases {
                        database.remove().await.ok();
                    }
                    return Err(error);
                }
            }
        }
        let mut cluster = Cluster {
            options,
            secrets,
            databases,
            instances: Vec::new(),
            identity,
            _directory: directory,
        };
        match cluster.configure_and_start().await {
            Ok(()) => Ok(cluster),
            Err(error) => {
                cluster.shutdown().await.ok();
                Err(error)
            }
        }
    }

    async fn configure_and_start(&mut self) -> anyhow::Result<()> {
        let data = DataDirectory::new(&self.secrets);
        let mut addresses = Vec::new();
        for number in 1..=self.options.instances {
            for service in SERVICES {
                addresses.push((service, number, free_address()?));
            }
        }
        let root = self
            .secrets
            .parent()
            .context("the secrets directory has a parent")?
            .to_path_buf();
        for &(service, number, address) in &addresses {
            let endpoints: Vec<(Service, SocketAddr)> = addresses
                .iter()
                .filter(|(other, other_number, _)| *other != service && *other_number == number)
                .map(|(other, _, address)| (*other, *address))
                .collect();
            let url = self.database_url(service)?;
            let text = instance_config(
                &data,
                service,
                &url,
                address,
                &endpoints,
                self.options.checkpoint_interval_ms,
            );
            let config = root.join(format!("{}-{number}.toml", service.as_str()));
            std::fs::write(&config, text)
                .with_context(|| format!("writing {}", config.display()))?;
            self.instances.push(Instance {
                service,
                number,
                address,
                config,
                log: root.join(format!("{}-{number}.log", service.as_str())),
                child: None,
            });
        }
        // Migrations run once per database, as a deployment's migration job does.
        for service in SERVICES {
            let first = self
                .instances
                .iter()
                .find(|instance| instance.service == service)
                .context("an instance of every service")?;
            let config = tryggdel_system::Config::load(Some(&first.config))?;
            tryggdel::ops::migrate(service, &config)
                .await
                .with_context(|| format!("migrating the {} database", service.as_str()))?;
        }
        for service in SERVICES {
            for position in 0..self.instances.len() {
                if self.instances[position].service == service {
                    self.start_instance(position).await?;
                }
            }
        }
        Ok(())
    }

    fn database_url(&self, service: Service) -> anyhow::Result<String> {
        let index = SERVICES
            .iter()
            .position(|other| *other == service)
            .context("a known service")?;
        self.databases
            .get(index)
            .map(|database| database.url.clone())
            .context("a database per service")
    }

    /// The PostgreSQL database names of audit, notification and disclosure.
    pub fn database_names(&self) -> Vec<String> {
        self.databases
            .iter()
            .filter_map(|database| database.name.clone())
            .collect()
    }

    /// The database URL of `service`.
    pub fn url_of(&self, service: Service) -> anyhow::Result<String> {
        self.database_url(service)
    }

    /// Addresses of the running instances of `service`.
    pub fn addresses(&self, service: Service) -> Vec<SocketAddr> {
        self.instances
            .iter()
            .filter(|instance| instance.service == service && instance.is_running())
            .map(|instance| instance.address)
            .collect()
    }

    /// The position of instance `number` of `service`.
    pub fn position(&self, service: Service, number: usize) -> anyhow::Result<usize> {
        self.instances
            .iter()
            .position(|instance| instance.service == service && instance.number == number)
            .with_context(|| format!("no instance {}-{number}", service.as_str()))
    }

    /// Starts the instance at `position` and waits until it reports SERVING.
    pub async fn start_instance(&mut self, position: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let program = self.options.program.clone();
        let instance = self
            .instances
            .get_mut(position)
            .context("no such instance")?;
        anyhow::ensure!(instance.child.is_none(), "{} is running", instance.name());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&instance.log)
            .with_context(|| format!("opening {}", instance.log.display()))?;
        let child = Command::new(&program)
            .arg("instance")
            .arg(instance.service.as_str())
            .arg("--config")
            .arg(&instance.config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {} ({})", instance.name(), program.display()))?;
        instance.child = Some(child);
        let name = instance.name();
        let endpoint = format!("https://localhost:{}", instance.address.port());
        let service = instance.service;
        let config = tryggdel_system::Config::load(Some(&instance.config))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tryggdel::ops::health(&endpoint, &config, Some(service))
                .await
                .is_ok()
            {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.exit_status(position)? {
                bail!(
                    "{name} exited ({status}) before serving: see {}",
                    self.instances[position].log.display()
                );
            }
            if Instant::now() > deadline {
                bail!("{name} did not report SERVING within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn exit_status(&mut self, position: usize) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let instance = self
            .instances
            .get_mut(position)
            .context("no such instance")?;
        let Some(child) = instance.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait().context("checking an instance")?;
        if status.is_some() {
            instance.child = None;
        }
        Ok(status)
    }

    /// Kills the instance at `position` with SIGKILL, as a crash would: nothing is handed
    /// over or flushed.
    pub fn kill(&mut self, position: usize) -> anyhow::Result<()> {
        let instance = self
            .instances
            .get_mut(position)
            .context("no such instance")?;
        let mut child = instance
            .child
            .take()
            .with_context(|| format!("{} is not running", instance.name()))?;
        child.kill().context("sending SIGKILL")?;
        child.wait().context("waiting for a killed instance")?;
        Ok(())
    }

    /// Stops the instance at `position` with SIGTERM (it hands over what its relays hold) and
    /// waits for it to exit, for at most `timeout`; then kills it.
    pub fn terminate(&mut self, position: usize, timeout: Duration) -> anyhow::Result<()> {
        let instance = self
            .instances
            .get_mut(position)
            .context("no such instance")?;
        let Some(mut child) = instance.child.take() else {
            return Ok(());
        };
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .context("running kill -TERM")?;
        let deadline = Instant::now() + timeout;
        if sent.success() {
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().context("waiting for an instance")? {
                    if !status.success() {
                        bail!(
                            "{} exited with {status} on SIGTERM: see {}",
                            instance.name(),
                            instance.log.display()
                        );
                    }
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        child.kill().ok();
        child.wait().ok();
        bail!(
            "{} did not stop within {timeout:?} of SIGTERM",
            instance.name()
        )
    }

    /// Which of the instances at `positions` has a TCP connection from local port `port`
    /// (read from /proc: the socket's inode in /proc/net/tcp*, then the process holding it).
    pub fn instance_owning_port(&self, positions: &[usize], port: i32) -> Option<usize> {
        let inodes = socket_inodes_of_local_port(u16::try_from(port).ok()?);
        if inodes.is_empty() {
            return None;
        }
        positions.iter().copied().find(|position| {
            let Some(pid) = self
                .instances
                .get(*position)
                .and_then(|instance| instance.child.as_ref())
                .map(Child::id)
            else {
                return false;
            };
            let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            entries.flatten().any(|entry| {
                std::fs::read_link(entry.path())
                    .map(|target| {
                        let target = target.to_string_lossy().into_owned();
                        inodes
                            .iter()
                            .any(|inode| target == format!("socket:[{inode}]"))
                    })
                    .unwrap_or(false)
            })
        })
    }

    /// The last lines of an instance's log, for error messages.
    pub fn log_tail(&self, position: usize, lines: usize) -> String {
        let Some(instance) = self.instances.get(position) else {
            return String::new();
        };
        let text = std::fs::read_to_string(&instance.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops every instance (disclosure first, so each relay's receiver is still there), then
    /// drops the databases unless `keep`.
    pub async fn shutdown_and_remove(mut self, keep: bool) -> anyhow::Result<()> {
        let stopped = self.shutdown().await;
        if !keep {
            for database in std::mem::take(&mut self.databases) {
                database.remove().await?;
            }
        }
        stopped
    }

    async fn shutdown(&mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        for service in [Service::Disclosure, Service::Notification, Service::Audit] {
            for position in 0..self.instances.len() {
                if self.instances[position].service == service {
                    let stopped = self.terminate(position, Duration::from_secs(20));
                    if result.is_ok() {
                        result = stopped;
                    }
                }
            }
        }
        result
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for instance in &mut self.instances {
            if let Some(mut child) = instance.child.take() {
                child.kill().ok();
                child.wait().ok();
            }
        }
    }
}

/// Inodes of the TCP sockets bound to local `port` (IPv4 and IPv6).
fn socket_inodes_of_local_port(port: u16) -> Vec<String> {
    let wanted = format!("{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit_once(':'))
                .map(|(_, port)| port);
            if local_port == Some(wanted.as_str())
                && let Some(inode) = fields.get(9)
            {
                inodes.push((*inode).to_owned());
            }
        }
    }
    inodes
}

fn write_field_key(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        std::fs::write(path, tryggdel_storage::FieldKey::generate_base64())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs one instance of `service` with the configuration `file` until SIGTERM: what
/// `<program> instance <service> --config <file>` does in the child process.
pub fn run_instance(service: Service, file: &Path) -> anyhow::Result<()> {
    let config = tryggdel_system::Config::load(Some(file))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        crate::init_telemetry();
        let stop = async {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .context("listening for SIGTERM")?;
            terminate.recv().await;
            anyhow::Ok(())
        };
        tryggdel::ops::serve(service, &config, stop).await
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_quoted() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let parsed: toml::Value =
            toml::from_str(&format!("x = {}", toml_string("C:\\tmp\\\"x\"\n"))).unwrap();
        assert_eq!(parsed["x"].as_str(), Some("C:\\tmp\\\"x\"\n"));
    }
}
