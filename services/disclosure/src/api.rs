//! [`DisclosureApi`]: what the handlers share — the store, the registry, the keys, the links —
//! and the steps most of them take (load a disclosure the caller may see, open its draft,
//! assess it, save a change under the caller's version, answer with its wire form).
//!
//! Invariant: a disclosure the caller may not see is reported as not found, never as refused.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use tokio::sync::watch;
use tonic::Request;
use tryggdel_domain::{Directory, LegalRegistry, Organisation, OrganisationCode, PersonKey};
use tryggdel_proto::disclosure::v1::{Disclosure, DraftContent, ProtectedDetails};
use tryggdel_service_kit::{AuditLink, Authenticator, Caller, ServiceError, today_in_sweden};
use tryggdel_storage::FieldCipher;

use crate::checks::parse_disclosure_id;
use crate::content::{self, ValidatedDraft};
use crate::expiry::Expiry;
use crate::policy;
use crate::requests::RequestDeadlines;
use crate::sealing;
use crate::store::{DisclosureRecord, DisclosureStore};
use crate::wire;

/// The handlers and everything they need.
#[derive(Clone)]
pub struct DisclosureApi {
    pub(crate) store: DisclosureStore,
    pub(crate) registry: Arc<LegalRegistry>,
    authenticator: Authenticator,
    pub(crate) cipher: FieldCipher,
    pub(crate) person_key: PersonKey,
    pub(crate) audit: AuditLink,
    /// The notification service's receipt key: receipts must verify with it.
    pub(crate) receipt_key: VerifyingKey,
    /// When untouched drafts and submitted disclosures expire.
    pub(crate) expiry: Expiry,
    /// When open requests for information past their deadline escalate again.
    pub(crate) request_deadlines: RequestDeadlines,
    /// The longest a hold may last, in days from the day it is placed or extended.
    pub(crate) hold_max_days: u32,
    /// How long each organisation keeps a disclosure at least before clearing.
    pub(crate) clearing_retention: crate::clearing::ClearingRetention,
    /// Bumped after every committed outbox event, to wake the relays.
    outbox_signal: Arc<watch::Sender<u64>>,
}

impl DisclosureApi {
    pub fn new(
        store: DisclosureStore,
        registry: Arc<LegalRegistry>,
        authenticator: Authenticator,
        cipher: FieldCipher,
        person_key: PersonKey,
        audit: AuditLink,
        receipt_key: VerifyingKey,
    ) -> DisclosureApi {
        DisclosureApi {
            store,
            registry,
            authenticator,
            cipher,
            person_key,
            audit,
            receipt_key,
            expiry: Expiry::default(),
            request_deadlines: RequestDeadlines::default(),
            hold_max_days: crate::holds::DEFAULT_HOLD_MAX_DAYS,
            clearing_retention: crate::clearing::ClearingRetention::default(),
            outbox_signal: Arc::new(watch::Sender::new(0)),
        }
    }

    /// The same handlers with untouched disclosures expiring as `expiry` says (by default
    /// [`Expiry::default`]).
    pub fn with_expiry(self, expiry: Expiry) -> DisclosureApi {
        DisclosureApi { expiry, ..self }
    }

    /// The same handlers with requests for information escalating as `deadlines` says (by
    /// default [`RequestDeadlines::default`]).
    pub fn with_request_deadlines(self, request_deadlines: RequestDeadlines) -> DisclosureApi {
        DisclosureApi {
            request_deadlines,
            ..self
        }
    }

    /// The same handlers with holds lasting at most `hold_max_days` (by default
    /// [`crate::holds::DEFAULT_HOLD_MAX_DAYS`]).
    pub fn with_hold_max_days(self, hold_max_days: u32) -> DisclosureApi {
        DisclosureApi {
            hold_max_days,
            ..self
        }
    }

    /// The same handlers with organisations keeping disclosures as `retention` says (by
    /// default five years after the last entry).
    pub fn with_clearing_retention(
        self,
        clearing_retention: crate::clearing::ClearingRetention,
    ) -> DisclosureApi {
        DisclosureApi {
            clearing_retention,
            ..self
        }
    }

    pub fn store(&self) -> &DisclosureStore {
        &self.store
    }

    pub fn audit_link(&self) -> &AuditLink {
        &self.audit
    }

    /// Changes whenever an outbox event is committed.
    pub fn outbox_signal(&self) -> watch::Receiver<u64> {
        self.outbox_signal.subscribe()
    }

    pub(crate) fn signal_outbox(&self) {
        self.outbox_signal
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    pub(crate) fn directory(&self) -> &Directory {
        self.authenticator.directory()
    }

    pub(crate) async fn authenticate<T>(
        &self,
        request: &Request<T>,
    ) -> Result<Caller, ServiceError> {
        self.authenticator.user(request).await
    }

    /// The disclosure `id` names, if the caller may see it; NOT_FOUND otherwise.
    pub(crate) async fn load_visible(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<DisclosureRecord, ServiceError> {
        let id = parse_disclosure_id(id)?;
        self.store
            .get(&id)
            .await?
            .filter(|record| policy::may_see(caller, record))
            .ok_or(ServiceError::NotFound("disclosure"))
    }

    /// The organisation a disclosure is from, as the directory knows it now.
    pub(crate) fn organisation_of(
        &self,
        record: &DisclosureRecord,
    ) -> Result<Organisation, ServiceError> {
        OrganisationCode::parse(&record.organisation)
            .ok()
            .and_then(|code| self.directory().organisation(&code).cloned())
            .ok_or_else(|| {
                ServiceError::FailedPrecondition(format!(
                    "organisation {} is no longer registered in this deployment",
                    record.organisation
                ))
            })
    }

    /// The stored draft, parsed again (the stored form is already validated).
    pub(crate) fn stored_draft(
        &self,
        record: &DisclosureRecord,
    ) -> Result<ValidatedDraft, ServiceError> {
        let (mut content, protected) = self.opened(record)?;
        content.victim_protected = Some(protected);
        content::validate(&content, today_in_sweden())
    }

    /// The legal assessment of `draft` from `organisation` on `as_of`.
    pub(crate) fn assess_draft(
        &self,
        draft: &ValidatedDraft,
        organisation: &Organisation,
        as_of: time::Date,
    ) -> Result<tryggdel_domain::Assessment, ServiceError> {
        let basis = draft.legal_basis.as_ref().ok_or_else(|| {
            ServiceError::invalid("content.legal_basis_id", "required for an assessment")
        })?;
        let facts = draft.case_facts(organisation)?;
        tryggdel_domain::assess(&self.registry, basis, &facts, as_of)
            .map_err(|error| ServiceError::invalid("content.legal_basis_id", error))
    }

    /// Writes the caller's change to `record` under their expected version, with its
    /// `event_type` event, and answers with the masked view; or reports the conflict.
    pub(crate) async fn save(
        &self,
        caller: &Caller,
        record: &DisclosureRecord,
        expected_version: i64,
        event_type: &str,
        details: &[(&str, String)],
    ) -> Result<Disclosure, ServiceError> {
        let event = self.event(caller, record, event_type, details)?;
        if self.store.update(record, expected_version, &event).await? {
            self.signal_outbox();
            return self.masked_view(record);
        }
        let current = self
            .store
            .get(&record.id)
            .await?
            .map(|stored| stored.version)
            .unwrap_or_default();
        Err(ServiceError::StaleVersion {
            expected: expected_version,
            current,
        })
    }

    /// The disclosure as a client sees it, protected details masked.
    pub(crate) fn masked_view(
        &self,
        record: &DisclosureRecord,
    ) -> Result<Disclosure, ServiceError> {
        let (content, protected) = self.opened(record)?;
        wire::disclosure(
            record,
            &self.expiry,
            content,
            content::masked(&protected),
            false,
        )
    }

    /// The disclosure with its protected details (a reveal already in the audit log).
    pub(crate) fn revealed_view(
        &self,
        record: &DisclosureRecord,
    ) -> Result<Disclosure, ServiceError> {
        let (content, protected) = self.opened(record)?;
        wire::disclosure(record, &self.expiry, content, protected, true)
    }

    /// The record's content and its protected details, unsealed.
    fn opened(
        &self,
        record: &DisclosureRecord,
    ) -> Result<(DraftContent, ProtectedDetails), ServiceError> {
        Ok((
            sealing::open_content(&self.cipher, record)?,
            sealing::open_protected(&self.cipher, record)?,
        ))
    }
}
