//! The outbox events the service records: who did what to which disclosure, in which trace,
//! about whom (as keyed hashes of identity numbers, never the numbers), and the audited reads
//! that go to the audit log directly.
//!
//! Invariant: an event is built from the record as it will be committed (its new state and
//! version), so the audit log says what the database says.

use tryggdel_auth::Role;
use tryggdel_domain::IdentityNumber;
use tryggdel_proto::disclosure::v1::DraftContent;
use tryggdel_service_kit::{Caller, ServiceError, now_unix_ms, today_in_sweden};

use crate::api::DisclosureApi;
use crate::content::ValidatedDraft;
use crate::sealing;
use crate::store::{DisclosureRecord, OutboxActor, OutboxEvent, OutboxPayload};

/// Most disclosures one access event names: the audit log takes at most 32 objects an entry,
/// so a page of a List is recorded as one event per 32.
pub(crate) const MAX_OBJECTS_PER_EVENT: usize = 32;

/// The detail of a page's access event that lists the disclosures on it (comma-separated);
/// the audit entry names each as an object.
pub(crate) const ACCESSED_DISCLOSURES: &str = "disclosure_ids";

/// The detail, set to "true", of every event (changes and accesses) of a disclosure whose
/// protected details are not empty: the audit log's review finds accesses to a person with
/// protected identity by it.
pub(crate) const PROTECTED_IDENTITY: &str = "protected_identity";

/// The police's organisation code in the directory.
const POLICE_ORGANISATION: &str = "polisen";

/// The trace an outbox event belongs to: its id for the audit entry, and the `traceparent`
/// the relays continue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trace {
    pub trace_id: String,
    pub traceparent: String,
}

impl Trace {
    /// The trace of a user's call.
    pub fn of(caller: &Caller) -> Trace {
        Trace {
            trace_id: caller.trace_id.clone(),
            traceparent: caller.traceparent.clone(),
        }
    }

    /// Work continuing a trace known by its id (an approval's, a receipt's): that id for the
    /// audit entry (the current span's if none is given), and the current span's
    /// `traceparent`. With tracing on, the current span is in that same trace.
    pub fn continuing(trace_id: &str) -> Trace {
        let trace_id = if trace_id.is_empty() {
            tryggdel_service_kit::current_trace_id().unwrap_or_default()
        } else {
            trace_id.to_owned()
        };
        Trace {
            trace_id,
            traceparent: tryggdel_service_kit::current_traceparent().unwrap_or_default(),
        }
    }
}

/// A user as the actor of an event.
pub(crate) fn user_actor(caller: &Caller) -> OutboxActor {
    OutboxActor {
        user_id: caller.principal.user_id.clone(),
        roles: caller.role_names(),
        organisation: caller.organisation.code().as_str().to_owned(),
        unit: caller.principal.unit.clone(),
    }
}

/// The actor of events the service records on its own.
pub(crate) fn system_actor() -> OutboxActor {
    OutboxActor {
        user_id: String::new(),
        roles: Vec::new(),
        organisation: String::new(),
        unit: None,
    }
}

/// The police officer who acknowledged a disclosure.
pub(crate) fn police_actor(acknowledged_by: &str) -> OutboxActor {
    OutboxActor {
        user_id: acknowledged_by.to_owned(),
        roles: vec![Role::PoliceOfficer.as_str().to_owned()],
        organisation: POLICE_ORGANISATION.to_owned(),
        unit: None,
    }
}

/// Links a draft that answers a police follow-up question to that question in its events.
pub(crate) fn follow_up_detail(content: &DraftContent) -> Vec<(&'static str, String)> {
    if content.answers_follow_up_id.is_empty() {
        Vec::new()
    } else {
        vec![("answers_follow_up_id", content.answers_follow_up_id.clone())]
    }
}

/// What an approval event records beyond the record: the payload's hash, the delegation it
/// relied on, the catalogue version, which data items the payload holds, and the decision
/// maker's written judgement when the approval rests on one.
pub(crate) fn approval_details(
    record: &DisclosureRecord,
    draft: &ValidatedDraft,
) -> Vec<(&'static str, String)> {
    let decision = record.decision.as_ref();
    let catalogue_version = decision
        .map(|decision| decision.catalogue_version.clone())
        .unwrap_or_default();
    let judgement = decision
        .map(|decision| decision.judgement.clone())
        .unwrap_or_default();
    let delegation_id = decision
        .map(|decision| decision.delegation_id.clone())
        .unwrap_or_default();
    let mut details = vec![
        ("payload_sha256", record.payload_sha256().to_owned()),
        ("delegation_id", delegation_id),
        ("catalogue_version", catalogue_version),
        (
            "data_items",
            draft
                .data_items
                .iter()
                .map(|item| item.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    if !judgement.is_empty() {
        details.push(("close_relative_judgement", judgement));
    }
    details
}

impl DisclosureApi {
    /// An outbox event about `record` by the calling user, in the call's trace.
    pub(crate) fn event(
        &self,
        caller: &Caller,
        record: &DisclosureRecord,
        event_type: &str,
        details: &[(&str, String)],
    ) -> Result<OutboxEvent, ServiceError> {
        self.payload_as(
            user_actor(caller),
            &Trace::of(caller),
            record,
            event_type,
            details,
        )
        .and_then(outbox_event)
    }

    /// An outbox event recording that something was refused, and why.
    pub(crate) fn refusal_as(
        &self,
        actor: OutboxActor,
        trace: &Trace,
        record: &DisclosureRecord,
        event_type: &str,
        reason: String,
    ) -> Result<OutboxEvent, ServiceError> {
        outbox_event(OutboxPayload {
            refusal: Some(reason),
            ..self.payload_as(actor, trace, record, event_type, &[])?
        })
    }

    /// Records a read of personal data in the audit log, and returns only once it is durable
    /// there: a read that cannot be audited does not happen.
    pub(crate) async fn audit_read(
        &self,
        caller: &Caller,
        record: &DisclosureRecord,
        event_type: &str,
        details: &[(&str, String)],
    ) -> Result<(), ServiceError> {
        let payload = self.payload_as(
            user_actor(caller),
            &Trace::of(caller),
            record,
            event_type,
            details,
        )?;
        self.audit
            .append(vec![payload.audit_event()])
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, disclosure_id = %record.id, "read not audited, refused");
                ServiceError::Unavailable(
                    "the read could not be recorded in the audit log, so nothing is returned; \
                     retry later"
                        .into(),
                )
            })?;
        Ok(())
    }

    /// Records that the caller read `record`'s personal data (`event_type`, e.g.
    /// `disclosure.read`), durably in the outbox before anything is returned; the audit relay
    /// takes it to the log exactly once. Refused while the audit log is known not to answer,
    /// so a read is never served unlogged and never served while its record cannot reach the
    /// log.
    pub(crate) async fn log_access(
        &self,
        caller: &Caller,
        records: &[&DisclosureRecord],
        event_type: &str,
    ) -> Result<(), ServiceError> {
        self.require_audit_log().await?;
        let mut events = Vec::new();
        for chunk in records.chunks(MAX_OBJECTS_PER_EVENT) {
            events.push(self.access_event(caller, chunk, event_type)?);
        }
        if events.is_empty() {
            return Ok(());
        }
        // Not signalled: the relay takes reads with its next batch (within its poll
        // interval), so a busy read path does not wake every relay for each read.
        self.store.record_events(&events).await?;
        Ok(())
    }

    /// The access event of a read of `records` (at least one, at most
    /// [`MAX_OBJECTS_PER_EVENT`]).
    fn access_event(
        &self,
        caller: &Caller,
        records: &[&DisclosureRecord],
        event_type: &str,
    ) -> Result<OutboxEvent, ServiceError> {
        Ok(match records {
            [] => {
                return Err(ServiceError::internal(anyhow::anyhow!(
                    "an access event about no disclosure"
                )));
            }
            [record] => self.event(caller, record, event_type, &[])?,
            many => {
                // A page: one event naming every disclosure on it and every person concerned.
                let mut person_refs: Vec<String> = Vec::new();
                for record in many {
                    for reference in self.person_refs(record)? {
                        if !person_refs.contains(&reference) {
                            person_refs.push(reference);
                        }
                    }
                }
                let ids: Vec<&str> = many.iter().map(|record| record.id.as_str()).collect();
                let mut details: std::collections::BTreeMap<String, String> = [
                    (ACCESSED_DISCLOSURES.to_owned(), ids.join(",")),
                    ("count".to_owned(), ids.len().to_string()),
                ]
                .into_iter()
                .collect();
                let mut protected = false;
                for record in many {
                    protected = protected || self.has_protected_identity(record)?;
                }
                if protected {
                    details.insert(PROTECTED_IDENTITY.to_owned(), "true".to_owned());
                }
                let first = many.first().copied().ok_or_else(|| {
                    ServiceError::internal(anyhow::anyhow!("an access event about no disclosure"))
                })?;
                let payload = OutboxPayload {
                    disclosure_id: String::new(),
                    police_region: String::new(),
                    state: String::new(),
                    version: 0,
                    legal_basis_id: String::new(),
                    urgent: false,
                    person_refs,
                    details,
                    ..self.payload_as(
                        user_actor(caller),
                        &Trace::of(caller),
                        first,
                        event_type,
                        &[],
                    )?
                };
                outbox_event(payload)?
            }
        })
    }

    /// Refuses a read that must be logged while the audit log is known not to answer.
    pub(crate) async fn require_audit_log(&self) -> Result<(), ServiceError> {
        if self.audit.check_reachable().await {
            Ok(())
        } else {
            Err(ServiceError::Unavailable(
                "the audit log does not answer, so this read cannot be logged and nothing is \
                 returned; retry later"
                    .into(),
            ))
        }
    }

    /// What an event about `record` by `actor` says, as it happens now (not a refusal); its
    /// outbox row is [`outbox_event`].
    pub(crate) fn payload_as(
        &self,
        actor: OutboxActor,
        trace: &Trace,
        record: &DisclosureRecord,
        event_type: &str,
        details: &[(&str, String)],
    ) -> Result<OutboxPayload, ServiceError> {
        let mut details: std::collections::BTreeMap<String, String> = details
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        if self.has_protected_identity(record)? {
            details.insert(PROTECTED_IDENTITY.to_owned(), "true".to_owned());
        }
        let registry_version = match record.registry_version() {
            "" => self.registry.registry_version().to_owned(),
            version => version.to_owned(),
        };
        Ok(OutboxPayload {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.to_owned(),
            occurred_at_unix_ms: now_unix_ms(),
            disclosure_id: record.id.clone(),
            organisation: record.organisation.clone(),
            police_region: record.police_region.clone(),
            actor,
            state: record.state.as_str().to_owned(),
            version: record.version,
            legal_basis_id: record.legal_basis_id.clone(),
            registry_version,
            urgent: record.urgent,
            person_refs: self.person_refs(record)?,
            trace_id: trace.trace_id.clone(),
            traceparent: trace.traceparent.clone(),
            refusal: None,
            details,
        })
    }

    /// Whether `record`'s protected details (address, workplace, school, shelter) are not
    /// empty: the person has protected identity.
    fn has_protected_identity(&self, record: &DisclosureRecord) -> Result<bool, ServiceError> {
        if record.protected_sealed.is_empty() {
            return Ok(false);
        }
        let protected = sealing::open_protected(&self.cipher, record)?;
        Ok([
            &protected.address,
            &protected.workplace,
            &protected.school,
            &protected.shelter,
        ]
        .iter()
        .any(|value| !value.trim().is_empty()))
    }

    /// Keyed hashes of the identity numbers a disclosure concerns (subject and victim).
    pub(crate) fn person_refs(
        &self,
        record: &DisclosureRecord,
    ) -> Result<Vec<String>, ServiceError> {
        let content = sealing::open_content(&self.cipher, record)?;
        let mut references = Vec::new();
        for person in [&content.subject, &content.victim].into_iter().flatten() {
            if person.identity_number.is_empty() {
                continue;
            }
            // Stored numbers were validated on the way in; one that no longer parses is ours.
            let number = IdentityNumber::parse(&person.identity_number, today_in_sweden())
                .map_err(|_| {
                    ServiceError::internal(anyhow::anyhow!(
                        "disclosure {}: a stored identity number does not parse",
                        record.id
                    ))
                })?;
            let reference = self.person_key.reference(&number).as_str().to_owned();
            if !references.contains(&reference) {
                references.push(reference);
            }
        }
        Ok(references)
    }
}

/// The outbox row of `payload`.
pub(crate) fn outbox_event(payload: OutboxPayload) -> Result<OutboxEvent, ServiceError> {
    payload
        .to_event()
        .map_err(|error| ServiceError::internal(anyhow::Error::new(error).context("event")))
}
