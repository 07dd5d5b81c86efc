//! Personal data at rest: a disclosure's content, its protected details and its approved
//! payload are sealed with the field cipher, each bound to the disclosure and the part it is
//! (`disclosure:<id>:content`, `…:protected`, `…:payload`), so a sealed field cannot be moved
//! to another disclosure or another column and still open.

use prost::Message;
use tryggdel_domain::PolicePayload;
use tryggdel_proto::disclosure::v1::{DraftContent, ProtectedDetails};
use tryggdel_service_kit::ServiceError;
use tryggdel_storage::{FieldCipher, SealingError};

use crate::content::ValidatedDraft;
use crate::store::DisclosureRecord;

/// The draft content (without its protected details).
pub(crate) fn open_content(
    cipher: &FieldCipher,
    record: &DisclosureRecord,
) -> Result<DraftContent, ServiceError> {
    open_message(cipher, &record.content_sealed, &record.id, "content")
}

/// The protected details, unmasked.
pub(crate) fn open_protected(
    cipher: &FieldCipher,
    record: &DisclosureRecord,
) -> Result<ProtectedDetails, ServiceError> {
    open_message(cipher, &record.protected_sealed, &record.id, "protected")
}

/// Opens the `part` of disclosure `id` sealed in `sealed` and decodes the message in it.
fn open_message<M: Message + Default>(
    cipher: &FieldCipher,
    sealed: &str,
    id: &str,
    part: &'static str,
) -> Result<M, ServiceError> {
    let bytes = cipher.open(sealed, &context(id, part))?;
    M::decode(bytes.as_slice())
        .map_err(|error| ServiceError::internal(anyhow::Error::new(error).context(part)))
}

/// Seals a validated draft into `record`, with what the record keeps in the clear (its legal
/// basis and urgency).
pub(crate) fn seal_draft(
    cipher: &FieldCipher,
    record: &mut DisclosureRecord,
    draft: &ValidatedDraft,
) -> Result<(), ServiceError> {
    record.content_sealed = cipher.seal(
        &draft.content.encode_to_vec(),
        &context(&record.id, "content"),
    )?;
    record.protected_sealed = cipher.seal(
        &draft.protected.encode_to_vec(),
        &context(&record.id, "protected"),
    )?;
    record.legal_basis_id = draft
        .legal_basis
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    record.urgent = draft.content.urgent;
    Ok(())
}

/// Replaces the sealed content and protected details of `record` with an empty draft,
/// sealed as any draft is (bound to the disclosure and the part), so the record still opens
/// and reads as a disclosure with nothing in it. What it keeps in the clear (legal basis,
/// urgency) stays.
pub(crate) fn seal_empty(
    cipher: &FieldCipher,
    record: &mut DisclosureRecord,
) -> Result<(), SealingError> {
    record.content_sealed = cipher.seal(
        &DraftContent::default().encode_to_vec(),
        &context(&record.id, "content"),
    )?;
    record.protected_sealed = cipher.seal(
        &ProtectedDetails::default().encode_to_vec(),
        &context(&record.id, "protected"),
    )?;
    Ok(())
}

/// The approved payload's canonical bytes, sealed for disclosure `id`.
pub(crate) fn seal_payload(
    cipher: &FieldCipher,
    id: &str,
    payload: &PolicePayload,
) -> Result<String, SealingError> {
    cipher.seal(&payload.canonical_bytes(), &context(id, "payload"))
}

/// The approved payload's canonical bytes, wiped when dropped (before approval there is
/// nothing sealed, which does not open).
pub(crate) fn open_payload(
    cipher: &FieldCipher,
    record: &DisclosureRecord,
) -> Result<impl std::ops::Deref<Target = Vec<u8>>, SealingError> {
    let sealed = record
        .decision
        .as_ref()
        .map_or("", |decision| decision.payload_sealed.as_str());
    cipher.open(sealed, &context(&record.id, "payload"))
}

fn context(id: &str, part: &str) -> String {
    format!("disclosure:{id}:{part}")
}
