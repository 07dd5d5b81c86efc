//! [`ServiceHost`]: how every service runs and stops, the same way for all three. A service
//! is its gRPC server, the background tasks it runs beside it (outbox relays, metric
//! samplers, timers) and its database; it stops in that order, so nothing in flight loses its
//! connection and nothing committed is lost (what a relay has not sent stays in the outbox).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tryggdel_storage::Database;

use crate::metrics::Sampler;
use crate::{Relay, RunningServer, ServerTls};

/// A task a service runs beside its server, stopped after the server.
pub trait Background: Send + Sync {
    /// Stops after the step in flight, if any.
    fn stop(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl Background for Relay {
    fn stop(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(Relay::stop(*self))
    }
}

/// A background task that runs a step every interval (the first at once) until stopped; a
/// failed step is reported and tried again at the next interval.
pub struct Periodic {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Periodic {
    /// Runs `step` every `interval`, handing each failure to `failed`.
    pub fn start<F, Fut, E>(
        interval: Duration,
        mut step: F,
        failed: impl Fn(E) + Send + 'static,
    ) -> Periodic
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Send,
    {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => break,
                }
                if *stopped.borrow() {
                    break;
                }
                if let Err(error) = step().await {
                    failed(error);
                }
            }
        });
        Periodic { stop, task }
    }

    /// Stops after the step in flight, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Background for Periodic {
    fn stop(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(Periodic::stop(*self))
    }
}

impl Background for Sampler {
    fn stop(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(Sampler::stop(*self))
    }
}

/// A running service: its server, its background tasks and its database.
pub struct ServiceHost {
    pub local_addr: SocketAddr,
    server: RunningServer,
    background: Vec<Box<dyn Background>>,
    database: Database,
}

/// Binds `address` (port 0 for any free port) for the service `service`.
pub async fn bind(address: SocketAddr, service: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address} for the {service} service"))
}

impl ServiceHost {
    /// Serves `routes` of the gRPC service `service_name` on `listener`, over `database`.
    pub fn start(
        service_name: &'static str,
        routes: Routes,
        tls: &ServerTls,
        listener: TcpListener,
        database: Database,
    ) -> anyhow::Result<ServiceHost> {
        let server = RunningServer::start_following(
            service_name,
            routes,
            tls,
            listener,
            database.health().clone(),
        )?;
        Ok(ServiceHost {
            local_addr: server.local_addr,
            server,
            background: Vec::new(),
            database,
        })
    }

    /// Runs `task` beside the server until the service stops.
    pub fn run(&mut self, task: impl Background + 'static) {
        self.background.push(Box::new(task));
    }

    /// Runs `task` (a sampler that only exists while metrics are exported) if there is one.
    pub fn run_if_any(&mut self, task: Option<impl Background + 'static>) {
        if let Some(task) = task {
            self.run(task);
        }
    }

    /// Stops accepting, lets in-flight calls finish, stops the background tasks (each after
    /// its step in flight) and closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await?;
        for task in self.background {
            task.stop().await;
        }
        self.database.close().await;
        Ok(())
    }
}
