//! The `AuditService` gRPC handlers: who may append (services), who may read proofs (any
//! authenticated caller), who may query and export (compliance officers), and the auditing of
//! queries and exports before anything is returned.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tryggdel_auth::Role;
use tryggdel_domain::{IdentityNumber, PersonKey};
use tryggdel_proto::audit::v1::audit_service_server::AuditService;
use tryggdel_proto::audit::v1::{
    Actor, AppendRequest, AppendResponse, AppendedEntry, AuditEvent, ClearRequest, ClearResponse,
    ConsistencyProof, Entry, EntryBatch, ExportChunk, ExportRequest, GetCheckpointRequest,
    GetConsistencyProofRequest, GetInclusionProofRequest, InclusionProof, Opening, Outcome,
    QueryRequest, QueryResponse, SignedCheckpoint, export_chunk, get_inclusion_proof_request,
};
use tryggdel_service_kit::{
    Authenticator, Caller, ServiceError, ServiceOnly, invalid_page_token, now_unix_ms, page_size,
    respond, today_in_sweden,
};

use crate::entry::{FullEntry, body_from_event};
use crate::log::{AppendError, AuditLog};
use crate::scrub::Integrity;
use crate::store::{QueryFilter, StoreError, StoredCheckpoint};
use crate::witnessing::Witnessing;

/// The most events one Append takes.
pub const MAX_EVENTS_PER_APPEND: usize = 1000;
const MAX_PAGE_SIZE: u32 = 500;
const DEFAULT_PAGE_SIZE: u32 = 100;
const EXPORT_BATCH: u32 = 1000;
/// The name the service records its own events under.
pub(crate) const SOURCE: &str = "audit";
/// Append: only the Tryggdel services on the allow-list.
const APPEND: ServiceOnly = ServiceOnly {
    without_service_certificate: "Append is for Tryggdel services and needs a service certificate",
    action: "append to the audit log",
};

/// The handlers and what they need.
#[derive(Clone)]
pub struct AuditApi {
    log: AuditLog,
    authenticator: Authenticator,
    person_key: PersonKey,
    appenders: Arc<Vec<String>>,
    witnessing: Option<Arc<Witnessing>>,
    /// The integrity scrub's quarantine, which every read of entries consults.
    integrity: Integrity,
    /// How subject reports are made.
    report: Arc<crate::report::ReportSettings>,
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        match error {
            // An outage is UNAVAILABLE, a defect INTERNAL: service-kit's one classification.
            StoreError::Database(error) => ServiceError::from(error),
            other => ServiceError::internal(anyhow::Error::new(other).context("audit store")),
        }
    }
}

pub(crate) fn append_error(error: AppendError) -> ServiceError {
    match error {
        AppendError::Conflict { .. } => ServiceError::AlreadyExists(error.to_string()),
        AppendError::Unavailable(cause) => match database_outage(&cause) {
            // What is wrong with the database (down, full, read-only), in the one wording.
            Some(outage) => ServiceError::Unavailable(format!(
                "the audit log could not make the entries durable: {}",
                outage.message()
            )),
            None => {
                tracing::warn!(error = format!("{cause:#}"), "append not durable");
                ServiceError::Unavailable(
                    "the audit log could not make the entries durable; retry".into(),
                )
            }
        },
        AppendError::Stopped => ServiceError::Unavailable("the audit log is stopping".into()),
        AppendError::DatabaseDown => ServiceError::Unavailable(
            "the audit log's database is unavailable: nothing was logged; retry later".into(),
        ),
        AppendError::NotWithinDeadline(_) => ServiceError::Unavailable(format!(
            "{error}: the entries may or may not have been logged; retry with the same event ids"
        )),
    }
}

/// The database outage behind a failed append, if that is what it was.
fn database_outage(cause: &anyhow::Error) -> Option<tryggdel_storage::Outage> {
    cause.chain().find_map(|error| {
        if let Some(StoreError::Database(database)) = error.downcast_ref::<StoreError>() {
            return tryggdel_storage::outage(database);
        }
        error
            .downcast_ref::<sqlx::Error>()
            .and_then(tryggdel_storage::outage)
    })
}

fn wire_checkpoint(checkpoint: &StoredCheckpoint, origin: &str) -> SignedCheckpoint {
    SignedCheckpoint {
        note: checkpoint.note.clone(),
        origin: origin.to_owned(),
        tree_size: checkpoint.tree_size,
        root_hash: checkpoint.root.to_vec(),
        signed_at_unix_ms: checkpoint.signed_at,
    }
}

/// An entry as sent: its leaf bytes, and beside them the openings that still exist so that
/// the receiver can check them against the leaf's commitments.
fn wire_entry(entry: FullEntry) -> Entry {
    let cleared = u32::try_from(entry.cleared()).unwrap_or(u32::MAX);
    let openings = entry
        .present()
        .map(|opening| Opening {
            key: opening.key.clone(),
            salt: opening.salt.to_vec(),
            data: opening.data.clone(),
        })
        .collect();
    Entry {
        index: entry.index,
        entry: entry.bytes,
        leaf_hash: entry.leaf_hash.to_vec(),
        openings,
        cleared_openings: cleared,
    }
}

/// Refuses entries whose openings were changed: none is served (the scrub raises the alarm).
pub(crate) fn refuse_tampered(entries: &[FullEntry]) -> Result<(), ServiceError> {
    match entries.iter().find(|entry| !entry.tampered().is_empty()) {
        Some(entry) => {
            tracing::error!(
                index = entry.index,
                "an opening of an audit entry does not match its commitment"
            );
            Err(ServiceError::FailedPrecondition(format!(
                "audit entry {} has personal data that does not match its commitment; it is \
                 withheld until an operator has investigated",
                entry.index
            )))
        }
        None => Ok(()),
    }
}

/// A reader of checkpoints and proofs: a Tryggdel service or an authenticated user.
enum Reader {
    Service,
    User(Box<Caller>),
}

impl AuditApi {
    pub fn new(
        log: AuditLog,
        authenticator: Authenticator,
        person_key: PersonKey,
        appenders: Vec<String>,
    ) -> AuditApi {
        AuditApi {
            integrity: Integrity::new(log.clone()),
            log,
            authenticator,
            person_key,
            appenders: Arc::new(appenders),
            witnessing: None,
            report: Arc::default(),
        }
    }

    /// The same handlers making subject reports as `report` says.
    pub fn with_report(mut self, report: crate::report::ReportSettings) -> AuditApi {
        self.report = Arc::new(report);
        self
    }

    pub(crate) fn report_settings(&self) -> &crate::report::ReportSettings {
        &self.report
    }

    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// Whether service `name` is on the append allow-list.
    pub(crate) fn may_append(&self, name: &str) -> bool {
        self.appenders.iter().any(|appender| appender == name)
    }

    pub(crate) fn person_key(&self) -> &PersonKey {
        &self.person_key
    }

    /// The same handlers publishing only checkpoints `witnessing` saw cosigned.
    pub fn with_witnessing(mut self, witnessing: Option<Arc<Witnessing>>) -> AuditApi {
        self.witnessing = witnessing;
        self
    }

    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// The integrity scrub of the log and its quarantine.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }

    /// The log's witnessing, when configured.
    pub fn witnessing(&self) -> Option<&Arc<Witnessing>> {
        self.witnessing.as_ref()
    }

    /// The checkpoint served as the latest: with witnesses, the latest cosigned to the
    /// policy's quorum (none yet: UNAVAILABLE); without, the latest signed.
    pub fn published_checkpoint(&self) -> Result<StoredCheckpoint, ServiceError> {
        match &self.witnessing {
            None => Ok(self.log.latest_checkpoint()),
            Some(witnessing) => witnessing.published().ok_or_else(|| {
                ServiceError::Unavailable(
                    "no checkpoint has been cosigned by the witnesses yet; retry shortly".into(),
                )
            }),
        }
    }

    fn origin(&self) -> &str {
        self.log.verifier().name()
    }

    async fn reader<T>(&self, request: &Request<T>) -> Result<Reader, ServiceError> {
        if Authenticator::service_in_own_name(request).is_some() {
            return Ok(Reader::Service);
        }
        Ok(Reader::User(Box::new(
            self.authenticator.user(request).await?,
        )))
    }

    /// Records what a compliance officer is about to read; nothing is returned unless this is
    /// durable.
    async fn audit_read(
        &self,
        caller: &Caller,
        action: &str,
        details: Vec<(&str, String)>,
        person_refs: Vec<String>,
    ) -> Result<u64, ServiceError> {
        let event = AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            action: action.to_owned(),
            occurred_at_unix_ms: now_unix_ms(),
            actor: Some(Actor {
                user_id: caller.user().to_owned(),
                roles: caller.role_names(),
                organisation: caller.organisation.code().as_str().to_owned(),
                unit: caller.principal.unit.clone().unwrap_or_default(),
            }),
            organisation: caller.organisation.code().as_str().to_owned(),
            purpose: "compliance review".into(),
            outcome: Outcome::Success as i32,
            person_refs,
            trace_id: caller.trace_id.clone(),
            details: details
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
            ..AuditEvent::default()
        };
        let body = body_from_event("event", &event, SOURCE)?;
        let appended = self.log.append(vec![body]).await.map_err(append_error)?;
        appended
            .first()
            .map(|entry| entry.index)
            .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("append answered nothing")))
    }

    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<AppendResponse, ServiceError> {
        let service = APPEND.check(&request, |name| {
            self.appenders.iter().any(|appender| appender == name)
        })?;
        let events = request.into_inner().events;
        if events.is_empty() {
            return Err(ServiceError::invalid(
                "events",
                "at least one event is required",
            ));
        }
        if events.len() > MAX_EVENTS_PER_APPEND {
            return Err(ServiceError::invalid(
                "events",
                format!("at most {MAX_EVENTS_PER_APPEND} per call"),
            ));
        }
        let bodies = events
            .iter()
            .enumerate()
            .map(|(i, event)| body_from_event(&format!("events[{i}]"), event, &service.name))
            .collect::<Result<Vec<_>, _>>()?;
        let appended = self.log.append(bodies).await.map_err(append_error)?;
        Ok(AppendResponse {
            entries: appended
                .into_iter()
                .map(|entry| AppendedEntry {
                    event_id: entry.event_id,
                    index: entry.index,
                    duplicate: entry.duplicate,
                    leaf_hash: entry.leaf_hash.to_vec(),
                })
                .collect(),
        })
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<SignedCheckpoint, ServiceError> {
        self.reader(&request).await?;
        let checkpoint = self
            .signed_checkpoint(request.into_inner().tree_size)
            .await?;
        Ok(wire_checkpoint(&checkpoint, self.origin()))
    }

    /// The checkpoint signed at `tree_size`, or for 0 the latest.
    async fn signed_checkpoint(&self, tree_size: u64) -> Result<StoredCheckpoint, ServiceError> {
        if tree_size == 0 {
            return self.published_checkpoint();
        }
        if let Some(published) = self.witnessing.as_ref().and_then(|w| w.published())
            && published.tree_size == tree_size
        {
            return Ok(published);
        }
        self.log
            .store()
            .checkpoint_at(tree_size)
            .await?
            .ok_or(ServiceError::NotFound("checkpoint"))
    }

    /// `requested` or, for 0, the latest checkpoint's size; never beyond what is durable
    /// (another instance may have committed more than this one has read: it reads it first).
    async fn proof_size(&self, requested: u64, field: &str) -> Result<u64, ServiceError> {
        let size = if requested == 0 {
            self.published_checkpoint()?.tree_size
        } else {
            requested
        };
        let durable = self
            .log
            .durable_size_at_least(size)
            .await
            .map_err(ServiceError::internal)?;
        if size > durable {
            return Err(ServiceError::invalid(
                field,
                format!("the log holds {durable} durable entries, not {size}"),
            ));
        }
        Ok(size)
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<InclusionProof, ServiceError> {
        let reader = self.reader(&request).await?;
        let request = request.into_inner();
        let size = self.proof_size(request.tree_size, "tree_size").await?;
        let index = match request.entry {
            Some(get_inclusion_proof_request::Entry::Index(index)) => index,
            Some(get_inclusion_proof_request::Entry::EventId(event_id)) => {
                let event_id = uuid::Uuid::parse_str(&event_id)
                    .map_err(|_| ServiceError::invalid("event_id", "must be a UUID"))?
                    .hyphenated()
                    .to_string();
                self.log
                    .store()
                    .index_of(&event_id)
                    .await?
                    .ok_or(ServiceError::NotFound("entry"))?
            }
            None => {
                return Err(ServiceError::invalid(
                    "entry",
                    "give the entry's index or its event id",
                ));
            }
        };
        if index >= size {
            return Err(ServiceError::invalid(
                "index",
                format!("entry {index} is not in the tree of size {size}"),
            ));
        }
        self.integrity.refuse_quarantined(index, index + 1).await?;
        let (leaf_hash, hashes) = self
            .log
            .inclusion_proof(index, size)
            .map_err(ServiceError::internal)?;
        // The entry itself only to those who may read entries.
        let entry = match reader {
            Reader::User(caller) if caller.has(Role::ComplianceOfficer) => self
                .log
                .store()
                .entry(index)
                .await?
                .map(|entry| entry.bytes)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(InclusionProof {
            index,
            tree_size: size,
            leaf_hash: leaf_hash.to_vec(),
            hashes: hashes.iter().map(|hash| hash.to_vec()).collect(),
            entry,
        })
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<ConsistencyProof, ServiceError> {
        self.reader(&request).await?;
        let request = request.into_inner();
        let second = self.proof_size(request.second_size, "second_size").await?;
        let first = request.first_size;
        if first == 0 {
            return Err(ServiceError::invalid(
                "first_size",
                "must be at least 1 (every tree extends the empty one)",
            ));
        }
        if first > second {
            return Err(ServiceError::invalid(
                "first_size",
                format!("{first} is larger than second_size {second}"),
            ));
        }
        let hashes = self
            .log
            .consistency_proof(first, second)
            .map_err(ServiceError::internal)?;
        Ok(ConsistencyProof {
            first_size: first,
            second_size: second,
            hashes: hashes.iter().map(|hash| hash.to_vec()).collect(),
        })
    }

    async fn query(&self, request: Request<QueryRequest>) -> Result<QueryResponse, ServiceError> {
        let caller = self.authenticator.user(&request).await?;
        caller.require_any(&[Role::ComplianceOfficer], "querying the audit log")?;
        let request = request.into_inner();
        let own = caller.organisation.code().as_str().to_owned();
        let organisation = if caller.is_supervisor() {
            request.organisation.clone()
        } else if request.organisation.is_empty() || request.organisation == own {
            own
        } else {
            return Err(ServiceError::PermissionDenied(format!(
                "a compliance officer of {own} may query only {own}'s entries"
            )));
        };
        if request.occurred_from_unix_ms < 0 || request.occurred_until_unix_ms < 0 {
            return Err(ServiceError::invalid(
                "occurred_from_unix_ms",
                "times must not be negative",
            ));
        }
        if request.page_size > MAX_PAGE_SIZE {
            return Err(ServiceError::invalid(
                "page_size",
                format!("at most {MAX_PAGE_SIZE}"),
            ));
        }
        let limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        let after_index = if request.page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(&request.page_token)?)
        };
        let person_ref = if request.person_identity_number.is_empty() {
            String::new()
        } else {
            let number = IdentityNumber::parse(&request.person_identity_number, today_in_sweden())
                .map_err(|error| ServiceError::invalid("person_identity_number", error))?;
            self.person_key.reference(&number).as_str().to_owned()
        };
        // The query's own entry is not part of its answer.
        let own_entry = self
            .audit_read(
                &caller,
                "audit.queried",
                vec![
                    ("organisation", organisation.clone()),
                    ("actor_user_id", request.actor_user_id.clone()),
                    ("action", request.action.clone()),
                    ("legal_basis_id", request.legal_basis_id.clone()),
                    ("disclosure_id", request.disclosure_id.clone()),
                    (
                        "occurred_from_unix_ms",
                        request.occurred_from_unix_ms.to_string(),
                    ),
                    (
                        "occurred_until_unix_ms",
                        request.occurred_until_unix_ms.to_string(),
                    ),
                ],
                if person_ref.is_empty() {
                    Vec::new()
                } else {
                    vec![person_ref.clone()]
                },
            )
            .await?;
        let filter = QueryFilter {
            occurred_from: request.occurred_from_unix_ms,
            occurred_until: request.occurred_until_unix_ms,
            organisation,
            actor_user_id: request.actor_user_id,
            action: request.action,
            legal_basis_id: request.legal_basis_id,
            disclosure_id: request.disclosure_id,
            person_ref,
            after_index,
            limit,
        };
        let entries = self.log.store().query(&filter, own_entry).await?;
        self.integrity.refuse_any_quarantined(&entries).await?;
        let entries = self.log.store().full_entries(entries).await?;
        refuse_tampered(&entries)?;
        let next_page_token = match entries.last() {
            Some(last) if entries.len() == limit as usize => encode_page_token(last.index),
            _ => String::new(),
        };
        Ok(QueryResponse {
            entries: entries.into_iter().map(wire_entry).collect(),
            next_page_token,
            checkpoint: self
                .published_checkpoint()
                .ok()
                .map(|checkpoint| wire_checkpoint(&checkpoint, self.origin())),
        })
    }

    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<ReceiverStream<Result<ExportChunk, Status>>, ServiceError> {
        let caller = self.authenticator.user(&request).await?;
        if !caller.is_supervisor() {
            return Err(ServiceError::PermissionDenied(
                "exporting the audit log requires a compliance officer of a supervisory organisation"
                    .into(),
            ));
        }
        let checkpoint = self
            .signed_checkpoint(request.into_inner().tree_size)
            .await?;
        self.integrity
            .refuse_quarantined(0, checkpoint.tree_size)
            .await?;
        self.audit_read(
            &caller,
            "audit.exported",
            vec![("tree_size", checkpoint.tree_size.to_string())],
            Vec::new(),
        )
        .await?;
        let (sender, receiver) = mpsc::channel(4);
        let store = self.log.store().clone();
        let integrity = self.integrity.clone();
        let origin = self.origin().to_owned();
        tokio::spawn(async move {
            let first = ExportChunk {
                part: Some(export_chunk::Part::Checkpoint(wire_checkpoint(
                    &checkpoint,
                    &origin,
                ))),
            };
            if sender.send(Ok(first)).await.is_err() {
                return;
            }
            let mut next = 0;
            while next < checkpoint.tree_size {
                let chunk = match store.range(next, checkpoint.tree_size, EXPORT_BATCH).await {
                    Ok(entries) if entries.first().map(|entry| entry.index) == Some(next) => {
                        entries
                    }
                    Ok(_) => {
                        tracing::error!(index = next, "export found a gap in the log");
                        let _ = sender
                            .send(Err(Status::data_loss(format!("entry {next} is missing"))))
                            .await;
                        return;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(ServiceError::from(error).into())).await;
                        return;
                    }
                };
                // An entry quarantined since the export began is not sent either.
                if let Err(refused) = integrity.refuse_any_quarantined(&chunk).await {
                    let _ = sender.send(Err(refused.into())).await;
                    return;
                }
                next += chunk.len() as u64;
                let chunk = match store.full_entries(chunk).await {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        let _ = sender.send(Err(ServiceError::from(error).into())).await;
                        return;
                    }
                };
                if let Err(refused) = refuse_tampered(&chunk) {
                    let _ = sender.send(Err(refused.into())).await;
                    return;
                }
                let part = ExportChunk {
                    part: Some(export_chunk::Part::Entries(EntryBatch {
                        entries: chunk.into_iter().map(wire_entry).collect(),
                    })),
                };
                if sender.send(Ok(part)).await.is_err() {
                    return;
                }
            }
        });
        Ok(ReceiverStream::new(receiver))
    }
}

/// The token of the page after entry `index`.
fn encode_page_token(index: u64) -> String {
    tryggdel_service_kit::encode_page_token(&format!("after:{index}"))
}

/// The index a token of [`encode_page_token`] names.
fn decode_page_token(token: &str) -> Result<u64, ServiceError> {
    tryggdel_service_kit::decode_page_token(token)?
        .strip_prefix("after:")
        .and_then(|index| index.parse().ok())
        .ok_or_else(invalid_page_token)
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        respond(AuditApi::append(self, request).await)
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<Response<SignedCheckpoint>, Status> {
        respond(AuditApi::get_checkpoint(self, request).await)
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<Response<InclusionProof>, Status> {
        respond(AuditApi::get_inclusion_proof(self, request).await)
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<ConsistencyProof>, Status> {
        respond(AuditApi::get_consistency_proof(self, request).await)
    }

    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<QueryResponse>, Status> {
        respond(AuditApi::query(self, request).await)
    }

    type ExportStream = ReceiverStream<Result<ExportChunk, Status>>;

    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        respond(AuditApi::export(self, request).await)
    }

    async fn clear(
        &self,
        request: Request<ClearRequest>,
    ) -> Result<Response<ClearResponse>, Status> {
        respond(crate::clearing::clear(self, request).await)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_page_token(&encode_page_token(41)).unwrap(), 41);
        assert!(decode_page_token("garbage!").is_err());
        assert!(decode_page_token(&URL_SAFE_NO_PAD.encode("after:x")).is_err());
    }

    #[test]
    fn unavailable_appends_do_not_leak_their_cause() {
        let status: Status = append_error(AppendError::Unavailable(anyhow::anyhow!(
            "disk /dev/sda1 full"
        )))
        .into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("sda1"));
    }
}
