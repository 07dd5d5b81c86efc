//! Subscribe: a police region's deliveries as a server stream, first the backlog from the
//! database, then live.
//!
//! How nothing is missed or sent twice across the seam between backlog and live:
//! - The subscription joins the live broadcast *before* it reads the database, so every
//!   delivery committed after the read is also in the broadcast.
//! - Sequences are gap-free per region and commit in order (see [`crate::store`]), so the
//!   subscription keeps one number, the last sequence it sent, and skips live items at or
//!   below it.
//! - A live item further ahead than the next sequence (two Delivers broadcasting out of
//!   order, or a delivery committed by another replica), a lagging receiver (the broadcast
//!   overwrote items it had not read), and a periodic poll all lead to the same catch-up:
//!   read every delivery after the last sequence sent from the database.
//! - A recall is the exception: its delivery comes live again, below the last sequence, with
//!   `recall` set, and is sent as it is. A subscriber who missed it (lagging, or connected to
//!   another replica) finds it in ListPending, and a replay from cursor 0 includes it, until
//!   it is acknowledged.
//!
//! Each subscriber has its own task and bounded channel. A slow client fills only its own
//! channel (its task waits; Deliver never does); when it falls behind the broadcast it
//! re-reads from the database instead of losing deliveries. The task ends when the client
//! goes away or the service stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};
use tryggdel_domain::Inbox;
use tryggdel_proto::notification::v1::{Delivery, SubscribeRequest};
use tryggdel_service_kit::{Caller, ServiceError};

use crate::api::NotificationApi;
use crate::store::{DeliveryRow, StoreError};

/// What Subscribe answers with.
pub type DeliveryStream = ReceiverStream<Result<Delivery, Status>>;

/// Deliveries buffered per subscriber before its task waits for the client.
const SUBSCRIBER_BUFFER: usize = 64;
/// Rows per database read while replaying or catching up.
const PAGE: u32 = 200;
/// How often an idle subscription looks in the database for deliveries it was not told about
/// (made through another replica of the service).
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Where a subscription starts.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// Every unacknowledged delivery up to this sequence, then everything after it.
    Pending { up_to: i64 },
    /// Every delivery after this sequence.
    After(i64),
}

/// Why a subscription ended.
enum Ended {
    ClientGone,
    Stopping,
    Failed(ServiceError),
}

struct Subscription {
    api: NotificationApi,
    /// The officer reading: each delivery sent is logged as their read before it is sent.
    reader: Caller,
    region: Inbox,
    sender: mpsc::Sender<Result<Delivery, Status>>,
    stopping: watch::Receiver<bool>,
    /// The last sequence sent (or, before anything was sent, known to be covered).
    last: i64,
}

impl NotificationApi {
    pub(crate) async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<DeliveryStream, ServiceError> {
        let (caller, region) = self.officer(&request, "subscribing to deliveries").await?;
        let cursor = request.get_ref().cursor;
        let stream = self
            .open_subscription(caller.clone(), region, cursor)
            .await?;
        tracing::info!(
            police_region = region.as_str(),
            user = caller.user(),
            cursor,
            "subscribed"
        );
        Ok(stream)
    }

    /// The deliveries of `region` from `cursor` on (0: the unacknowledged ones), then live,
    /// each logged as a read by `reader` before it is sent.
    pub(crate) async fn open_subscription(
        &self,
        reader: Caller,
        region: Inbox,
        cursor: u64,
    ) -> Result<DeliveryStream, ServiceError> {
        let stopping = self.stopping();
        if *stopping.borrow() {
            return Err(ServiceError::Unavailable(
                "the notification service is stopping".into(),
            ));
        }
        let cursor =
            i64::try_from(cursor).map_err(|_| ServiceError::invalid("cursor", "out of range"))?;
        // Join the broadcast before reading the database: nothing committed after the read
        // can then be missed.
        let live = self.live_deliveries();
        let last = self.store().last_sequence(region).await?;
        if cursor > last {
            return Err(ServiceError::invalid(
                "cursor",
                format!(
                    "region {} has delivered up to sequence {last}; {cursor} was never issued",
                    region.as_str()
                ),
            ));
        }
        let start = if cursor == 0 {
            Start::Pending { up_to: last }
        } else {
            Start::After(cursor)
        };
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        let subscription = Subscription {
            api: self.clone(),
            reader,
            region,
            sender,
            stopping,
            last: 0,
        };
        tokio::spawn(subscription.run(start, live));
        Ok(ReceiverStream::new(receiver))
    }
}

impl Subscription {
    async fn run(mut self, start: Start, mut live: broadcast::Receiver<Arc<Delivery>>) {
        let Err(ended) = self.serve(start, &mut live).await;
        match ended {
            Ended::ClientGone => {
                tracing::debug!(
                    police_region = self.region.as_str(),
                    last = self.last,
                    "subscriber left"
                );
            }
            Ended::Stopping => {
                let _ = self.sender.try_send(Err(Status::unavailable(
                    "the notification service is stopping; reconnect with the last sequence \
                     received as the cursor",
                )));
            }
            Ended::Failed(error) => {
                let _ = self.sender.try_send(Err(error.into()));
            }
        }
    }

    async fn serve(
        &mut self,
        start: Start,
        live: &mut broadcast::Receiver<Arc<Delivery>>,
    ) -> Result<Infallible, Ended> {
        match start {
            Start::Pending { up_to } => {
                self.replay_pending(up_to).await?;
                self.last = up_to;
            }
            Start::After(cursor) => {
                self.last = cursor;
                self.catch_up().await?;
            }
        }
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.reset();
        loop {
            tokio::select! {
                biased;
                _ = self.stopping.changed() => return Err(Ended::Stopping),
                _ = self.sender.closed() => return Err(Ended::ClientGone),
                item = live.recv() => match item {
                    Ok(delivery) => {
                        if delivery.police_region != self.region.as_str() {
                            continue;
                        }
                        let sequence = i64::try_from(delivery.sequence).unwrap_or(i64::MAX);
                        if sequence <= self.last {
                            // A recall of a delivery sent before comes again, with its recall.
                            if delivery.recall.is_some() {
                                self.send_live(delivery.as_ref().clone()).await?;
                            }
                            continue;
                        }
                        if sequence == self.last + 1 {
                            self.send_live(delivery.as_ref().clone()).await?;
                            self.last = sequence;
                        } else {
                            // A gap: an earlier delivery was broadcast later, or elsewhere.
                            self.catch_up().await?;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(police_region = self.region.as_str(), missed, "subscriber lagged; catching up from the database");
                        self.catch_up().await?;
                    }
                    Err(RecvError::Closed) => return Err(Ended::Stopping),
                },
                _ = poll.tick() => self.catch_up().await?,
            }
        }
    }

    /// Sends the unacknowledged deliveries after the last one sent (from the start, before
    /// anything was sent) with sequences up to `up_to`, in order.
    async fn replay_pending(&mut self, up_to: i64) -> Result<(), Ended> {
        loop {
            let page = self
                .api
                .store()
                .pending(self.region, self.last, up_to, PAGE)
                .await;
            if !self.send_page(page).await? {
                return Ok(());
            }
        }
    }

    /// Sends every delivery after the last one sent, in order.
    async fn catch_up(&mut self) -> Result<(), Ended> {
        loop {
            let page = self.api.store().after(self.region, self.last, PAGE).await;
            if !self.send_page(page).await? {
                return Ok(());
            }
        }
    }

    /// Sends a page of deliveries read from the database, in order, keeping `last` at the
    /// last one sent. True when the page was full: more may follow.
    async fn send_page(
        &mut self,
        page: Result<Vec<DeliveryRow>, StoreError>,
    ) -> Result<bool, Ended> {
        let rows = page.map_err(|error| Ended::Failed(error.into()))?;
        let full = rows.len() >= PAGE as usize;
        for row in rows {
            let delivery = self.api.wire_delivery(&row).map_err(Ended::Failed)?;
            self.log_read(&row).await?;
            self.send(delivery).await?;
            self.last = row.sequence;
        }
        Ok(full)
    }

    /// Sends a live delivery, logged as a read (with the persons its stored row names).
    async fn send_live(&mut self, delivery: Delivery) -> Result<(), Ended> {
        let row = self
            .api
            .store()
            .get(&delivery.disclosure_id)
            .await
            .map_err(|error| Ended::Failed(error.into()))?
            .ok_or_else(|| {
                Ended::Failed(ServiceError::internal(anyhow::anyhow!(
                    "a broadcast delivery {} is not stored",
                    delivery.disclosure_id
                )))
            })?;
        self.log_read(&row).await?;
        self.send(delivery).await
    }

    /// Logs the subscriber's read of `row` before it is sent; an unlogged read ends the
    /// subscription (UNAVAILABLE while the audit log does not answer).
    async fn log_read(&self, row: &DeliveryRow) -> Result<(), Ended> {
        self.api
            .log_read(&self.reader, &[row], "subscribe")
            .await
            .map_err(Ended::Failed)
    }

    /// Waits for room in the client's channel (only this subscription waits).
    async fn send(&mut self, delivery: Delivery) -> Result<(), Ended> {
        tokio::select! {
            biased;
            _ = self.stopping.changed() => Err(Ended::Stopping),
            sent = self.sender.send(Ok(delivery)) => sent.map_err(|_| Ended::ClientGone),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio_stream::StreamExt as _;
    use tryggdel_domain::{DEVELOPMENT_DIRECTORY, Directory, LegalRegistry};
    use tryggdel_service_kit::{Authenticator, TokenKeys};
    use tryggdel_storage::{Database, FieldCipher, FieldKey};
    use tryggdel_test_support::{TestBackend, TestDatabase, TestIdentity};

    use tryggdel_domain::OrganisationCode;
    use tryggdel_service_kit::now_unix_ms;

    use super::*;
    use crate::api::Deadlines;
    use crate::events;
    use crate::store::{
        DeliverOutcome, MIGRATIONS, NewDelivery, NotificationStore, payload_context,
    };
    use tryggdel_domain::PoliceRegion;

    /// Commits a delivery for region Mitt and publishes it, as Deliver does.
    async fn deliver(api: &NotificationApi, cipher: &FieldCipher) -> i64 {
        let disclosure_id = uuid::Uuid::now_v7().to_string();
        let now = now_unix_ms();
        let delivery = NewDelivery {
            disclosure_id: disclosure_id.clone(),
            police_region: Inbox::Police(PoliceRegion::Mitt),
            organisation: OrganisationCode::parse("bollnas-kommun").unwrap(),
            urgent: false,
            payload_sealed: cipher
                .seal(b"{}", &payload_context(&disclosure_id))
                .unwrap(),
            payload_sha256: "ab".repeat(32),
            approved_by: "beslut-bollnas".into(),
            approved_at: now,
            legal_basis_id: "OSL-10-18c".into(),
            registry_version: format!("sha256:{}", "cd".repeat(32)),
            delivered_by: "disclosure".into(),
            trace_id: String::new(),
            delivered_at: now,
            deadline: now + 60_000,
            person_refs: Vec::new(),
        };
        let outcome = api
            .store()
            .deliver(&delivery, |sequence| {
                events::delivered(&delivery, sequence).to_event()
            })
            .await
            .unwrap();
        let DeliverOutcome::Delivered { sequence } = outcome else {
            panic!("delivered twice");
        };
        api.publish(&delivery.into_row(sequence), b"{}".to_vec());
        sequence
    }

    async fn next(stream: &mut DeliveryStream) -> Result<Delivery, Status> {
        tokio::time::timeout(Duration::from_secs(15), stream.next())
            .await
            .expect("an item within 15 s")
            .expect("the stream is open")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscriber_behind_the_broadcast_catches_up_from_the_database() {
        let database = TestDatabase::create(TestBackend::Sqlite).await.unwrap();
        let identity = TestIdentity::generate();
        let registry = LegalRegistry::embedded().unwrap();
        let directory = Arc::new(Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry).unwrap());
        let cipher =
            FieldCipher::new(&FieldKey::from_base64(&FieldKey::generate_base64()).unwrap());
        let api = NotificationApi::new(
            NotificationStore::new(
                Database::connect(&database.url, "notification", &MIGRATIONS)
                    .await
                    .unwrap(),
            ),
            Authenticator::new(
                Arc::new(TokenKeys::fixed(identity.verifier_config()).unwrap()),
                directory,
            ),
            cipher.clone(),
            ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
            Deadlines {
                urgent: Duration::from_secs(60),
                ordinary: Duration::from_secs(60),
                escalation_repeat: Duration::from_secs(60),
            },
            vec!["disclosure".into()],
            tryggdel_service_kit::AuditLink::new(&tryggdel_service_kit::ServiceEndpoint {
                uri: "https://127.0.0.1:9".into(),
                server_name: "localhost".into(),
                tls: identity.client_tls("notification"),
                timeout: Duration::from_secs(1),
            })
            .unwrap(),
        )
        .with_live_capacity(4);
        let reader = Caller {
            principal: tryggdel_auth::Principal {
                user_id: "polis-mitt-1".into(),
                organisation: "polisen".into(),
                unit: None,
                roles: vec![tryggdel_auth::Role::PoliceOfficer],
                police_region: Some("mitt".into()),
                display_name: None,
                token_id: "jti-1".into(),
            },
            organisation: tryggdel_domain::Organisation::new(
                OrganisationCode::parse("polisen").unwrap(),
                "Polismyndigheten",
                tryggdel_domain::OrganisationKind::Police,
            )
            .unwrap(),
            trace_id: String::new(),
            traceparent: String::new(),
        };
        let mut stream = api
            .open_subscription(reader, Inbox::Police(PoliceRegion::Mitt), 0)
            .await
            .unwrap();
        // Nobody reads: the subscriber's channel fills, then the broadcast (room for 4)
        // overwrites what it has not taken.
        let total = (SUBSCRIBER_BUFFER as u64) * 3;
        for _ in 0..total {
            deliver(&api, &cipher).await;
        }
        for expected in 1..=total {
            assert_eq!(next(&mut stream).await.unwrap().sequence, expected);
        }
        // Then it is live again.
        let sequence = deliver(&api, &cipher).await;
        assert_eq!(next(&mut stream).await.unwrap().sequence as i64, sequence);
        // Stopping ends the subscription with UNAVAILABLE (reconnect with the cursor).
        api.stop_subscriptions();
        let status = next(&mut stream).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        database.remove().await;
    }
}
