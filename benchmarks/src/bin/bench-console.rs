//! The console's benchmark: server time to render the caseworker's list and the decision
//! queue with many disclosures in the organisation, and the time from Approve (a form post to
//! the console) to the delivery appearing on an open police inbox (its server-sent event).
//!
//! The whole system runs in this process as `tryggdel start` runs it (production relay
//! pacing), on SQLite files or on fresh PostgreSQL databases. Pages are fetched over HTTPS
//! with a signed-in session, exactly as a browser does; "server time" is the console's own
//! `Server-Timing` figure, next to the round trip the client saw.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt as _;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel::token::Bearer;
use tryggdel_auth::Role;
use tryggdel_bench::stats::{Samples, ms};
use tryggdel_bench::{Backend, BenchDatabase, BenchIdentity};
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::{CreateDraftRequest, Disclosure, SubmitRequest};
use tryggdel_system::{DataDirectory, Service, SystemBuilder};

#[derive(Parser, Debug)]
#[command(about = "Console render times and Approve-to-police-inbox latency")]
struct Args {
    /// sqlite, or postgres (fresh databases on --postgres-url).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Disclosures in the organisation before measuring.
    #[arg(long, default_value_t = 10_000)]
    disclosures: usize,
    /// Of them, submitted and waiting for a decision (the rest stay drafts).
    #[arg(long, default_value_t = 1_000)]
    submitted: usize,
    /// Renders of each page measured.
    #[arg(long, default_value_t = 300)]
    renders: usize,
    /// Approvals measured to the police inbox.
    #[arg(long, default_value_t = 100)]
    approvals: usize,
    /// Concurrent calls while seeding.
    #[arg(long, default_value_t = 16)]
    seed_concurrency: usize,
}

type Disclosures = DisclosureServiceClient<InterceptedService<Channel, Bearer>>;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.submitted < args.approvals || args.submitted > args.disclosures {
        bail!("need approvals <= submitted <= disclosures");
    }
    tryggdel_tls::install_crypto_provider();
    let backend = Backend::parse(&args.backend, &args.postgres_url)?;
    let mut databases = Vec::new();
    for label in ["audit", "notification", "disclosure"] {
        databases.push(BenchDatabase::create(&backend, "tryggdel_bench_console", label).await?);
    }
    let outcome = run(&args, &databases).await;
    for database in databases {
        database.remove().await.ok();
    }
    outcome
}

async fn run(args: &Args, databases: &[BenchDatabase]) -> anyhow::Result<()> {
    let data = tempfile::tempdir().context("a data directory")?;
    let url = |index: usize| -> anyhow::Result<String> {
        databases
            .get(index)
            .map(|database| database.url.clone())
            .context("three databases")
    };
    let system = SystemBuilder::development(data.path())
        .on_free_ports()
        .database(Service::Audit, url(0)?)
        .database(Service::Notification, url(1)?)
        .database(Service::Disclosure, url(2)?)
        .start()
        .await
        .context("starting the system")?;
    let identity = Arc::new(BenchIdentity::from_development_pki(&DataDirectory::new(
        data.path(),
    ))?);
    let origin = format!("https://{}", system.console.local_addr);
    println!(
        "console benchmark: backend {}, {} disclosures ({} submitted), console at {origin}",
        args.backend, args.disclosures, args.submitted
    );

    let started = Instant::now();
    let waiting = seed(args, &identity, system.disclosure.local_addr).await?;
    println!(
        "seeded {} disclosures in {:.1} s",
        args.disclosures,
        started.elapsed().as_secs_f64()
    );

    let ca = std::fs::read_to_string(DataDirectory::new(data.path()).ca_cert())?;
    let caseworker = Browser::sign_in(&origin, &ca, "handlaggare-bollnas").await?;
    let decision_maker = Browser::sign_in(&origin, &ca, "beslut-bollnas").await?;
    let police = Browser::sign_in(&origin, &ca, "polis-mitt-1").await?;

    println!(
        "\npage renders ({} each, sequential, after 20 warm-up renders)",
        args.renders
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "page", "server p50", "server p99", "server max", "round p50", "round p99"
    );
    for (name, browser, path) in [
        ("caseworker's list", &caseworker, "/utkast"),
        ("decision queue", &decision_maker, "/att-besluta"),
    ] {
        let (mut server, mut round) = browser.measure(path, args.renders).await?;
        println!(
            "{name:<28} {:>10} {:>10} {:>10} {:>12} {:>12}",
            ms(server.percentile(50.0)),
            ms(server.percentile(99.0)),
            ms(server.max()),
            ms(round.percentile(50.0)),
            ms(round.percentile(99.0)),
        );
    }

    let latency = approve_to_inbox(args, &decision_maker, &police, &waiting).await?;
    let mut latency = latency;
    println!(
        "\nApprove (form post) to the row on an open police inbox, {} approvals, sequential:",
        latency.len()
    );
    println!(
        "  p50 {} ms, p99 {} ms, max {} ms",
        ms(latency.percentile(50.0)),
        ms(latency.percentile(99.0)),
        ms(latency.max())
    );
    system.stop().await
}

/// Creates the disclosures through the disclosure service as Bollnäs caseworkers; submits
/// `submitted` of them. Returns the submitted ones.
async fn seed(
    args: &Args,
    identity: &Arc<BenchIdentity>,
    address: std::net::SocketAddr,
) -> anyhow::Result<Vec<Disclosure>> {
    let token = identity.token(
        "handlaggare-bollnas",
        "bollnas-kommun",
        &[Role::Caseworker],
        None,
        Duration::from_secs(3600),
    )?;
    let channel = identity.channel(address, "bollnas-kommun").await?;
    let client: Disclosures =
        DisclosureServiceClient::with_interceptor(channel, Bearer::new(&token)?);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.seed_concurrency {
        let mut client = client.clone();
        let next = next.clone();
        let (total, submitted) = (args.disclosures, args.submitted);
        tasks.push(tokio::spawn(async move {
            let mut waiting = Vec::new();
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= total {
                    return anyhow::Ok(waiting);
                }
                let content = tryggdel_test_support::draft::draft_content(
                    &format!("IFO-{index:06}"),
                    "OSL-26-1",
                    index.is_multiple_of(7),
                )?;
                let draft = client
                    .create_draft(CreateDraftRequest {
                        client_request_id: format!("seed-{index:08}"),
                        content: Some(content),
                    })
                    .await
                    .with_context(|| format!("draft {index}"))?
                    .into_inner();
                if index < submitted {
                    let done = client
                        .submit(SubmitRequest {
                            disclosure_id: draft.id.clone(),
                            expected_version: draft.version,
                        })
                        .await
                        .with_context(|| format!("submitting {index}"))?
                        .into_inner();
                    waiting.push(done);
                }
            }
        }));
    }
    let mut waiting = Vec::new();
    for task in tasks {
        waiting.extend(task.await.context("a seeding task")??);
    }
    Ok(waiting)
}

/// A signed-in browser session: its cookie and its CSRF token.
struct Browser {
    client: reqwest::Client,
    origin: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn sign_in(origin: &str, ca_pem: &str, user: &str) -> anyhow::Result<Browser> {
        let roots = tryggdel_tls::parse_root_store(ca_pem, "development CA")?;
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let response = client
            .post(format!("{origin}/logga-in/utveckling"))
            .header("origin", origin)
            .form(&[("user", user)])
            .send()
            .await?;
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("__Host-tryggdel-session="))
            .and_then(|value| value.split(';').next())
            .map(str::to_owned)
            .context("no session cookie after sign-in")?;
        let mut browser = Browser {
            client,
            origin: origin.to_owned(),
            cookie,
            csrf: String::new(),
        };
        let page = browser.get("/").await?;
        browser.csrf = csrf_of(&page.1).context("no CSRF token on the start page")?;
        Ok(browser)
    }

    /// The page at `path`: (server time, body).
    async fn get(&self, path: &str) -> anyhow::Result<(Duration, String)> {
        let response = self
            .client
            .get(format!("{}{path}", self.origin))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        let response = if response.status().is_redirection() {
            let location = response
                .headers()
                .get("location")
                .and_then(|value| value.to_str().ok())
                .context("a redirect without a location")?
                .to_owned();
            self.client
                .get(format!("{}{location}", self.origin))
                .header("cookie", &self.cookie)
                .send()
                .await?
        } else {
            response
        };
        if !response.status().is_success() {
            bail!("GET {path}: {}", response.status());
        }
        let server = server_time(response.headers())?;
        Ok((server, response.text().await?))
    }

    async fn measure(&self, path: &str, renders: usize) -> anyhow::Result<(Samples, Samples)> {
        for _ in 0..20 {
            self.get(path).await?;
        }
        let (mut server, mut round) = (Samples::new(), Samples::new());
        for _ in 0..renders {
            let started = Instant::now();
            let (time, body) = self.get(path).await?;
            round.record(started.elapsed());
            server.record(time);
            if !body.contains("<table") {
                bail!("{path} rendered no table");
            }
        }
        Ok((server, round))
    }
}

fn csrf_of(page: &str) -> Option<String> {
    let start = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

fn server_time(headers: &reqwest::header::HeaderMap) -> anyhow::Result<Duration> {
    let value = headers
        .get("server-timing")
        .and_then(|value| value.to_str().ok())
        .context("no Server-Timing header")?;
    let millis: f64 = value
        .split("dur=")
        .nth(1)
        .and_then(|text| text.parse().ok())
        .context("a Server-Timing header without dur")?;
    Ok(Duration::from_secs_f64(millis / 1000.0))
}

/// Approves `args.approvals` waiting disclosures one at a time through the console while a
/// police inbox stream is open, and times each from the post to its row arriving.
async fn approve_to_inbox(
    args: &Args,
    decision_maker: &Browser,
    police: &Browser,
    waiting: &[Disclosure],
) -> anyhow::Result<Samples> {
    let inbox = police.get("/inkommande").await?.1;
    let cursor = inbox
        .split("/inkommande/strom?efter=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the inbox page has no stream")?
        .to_owned();
    let response = police
        .client
        .get(format!("{}/inkommande/strom?efter={cursor}", police.origin))
        .header("cookie", &police.cookie)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("the inbox stream: {}", response.status());
    }
    let (sender, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let reader = tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if let Some(start) = event.find("id=\"leverans-") {
                    let id: String = event[start + 13..].chars().take(36).collect();
                    if sender.send((id, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut samples = Samples::new();
    for disclosure in waiting.iter().take(args.approvals) {
        let started = Instant::now();
        let response = decision_maker
            .client
            .post(format!(
                "{}/att-besluta/{}/godkann",
                decision_maker.origin, disclosure.id
            ))
            .header("cookie", &decision_maker.cookie)
            .header("origin", &decision_maker.origin)
            .form(&[
                ("csrf", decision_maker.csrf.as_str()),
                ("expected_version", &disclosure.version.to_string()),
                ("comment", "Beslutat enligt delegation"),
            ])
            .send()
            .await?;
        if !response.status().is_redirection() {
            bail!(
                "approving {} was refused: {}",
                disclosure.id,
                response.status()
            );
        }
        let deadline = started + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (id, at) = tokio::time::timeout(left, arrivals.recv())
                .await
                .with_context(|| format!("{} never reached the police inbox", disclosure.id))?
                .context("the inbox stream ended")?;
            if id == disclosure.id {
                samples.record(at.duration_since(started));
                break;
            }
        }
    }
    reader.abort();
    Ok(samples)
}
