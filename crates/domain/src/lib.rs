//! tryggdel-domain: the pure domain of Tryggdel, the service through which Swedish social
//! services and healthcare disclose information to the police under 10 kap. 18 c § OSL.
//!
//! Modules:
//! - [`calendar`]: the Swedish calendar day of an instant, the day whose law applies.
//! - [`clearing`]: clearing decisions (gallringsbeslut) parsed from TOML.
//! - [`identity`]: personnummer and samordningsnummer, validated and always masked when printed.
//! - [`organisation`]: organisations, the secrecy they are under, and routing to the seven
//!   police regions.
//! - [`registry`]: legal bases and the crime catalogue as effective-dated, content-versioned data.
//! - [`assessment`]: assessing a draft against a basis as the registry stood on a date.
//! - [`lifecycle`]: the disclosure state machine as a pure function.
//! - [`payload`]: what goes to the police and the SHA-256 an approval binds.
//! - [`directory`]: the organisations of a deployment and their delegations.
//! - [`national`]: every Swedish municipality and region (SCB's codes) as embedded data,
//!   each routed to its police region; a deployment's organisations refer to them.
//! - [`person_ref`]: keyed hashes that let the audit log find a person without naming them.
//! - [`receipt`]: the police's signed receipt of a disclosure.
//!
//! Invariants:
//! - No I/O: no network, no database, no files except data handed in as strings or bytes
//!   (the default registry is embedded at compile time).
//! - Parse, don't validate: every value type has private fields and is built only through a
//!   `parse`/`new` that refuses invalid input, including when deserialised.
//! - No panics outside tests.
//! - Identity numbers and protected data never appear in `Debug`, `Display` or error messages.
//! - Legal rules live in the registry data, not in code; every assessment is stamped with the
//!   registry and catalogue versions it used.
//! - An assessment that passes permits a disclosure; it never decides one.

#![forbid(unsafe_code)]

pub mod assessment;
pub mod calendar;
pub mod clearing;
pub mod directory;
pub mod identity;
pub mod inbox;
pub mod lifecycle;
pub mod national;
pub mod organisation;
pub mod payload;
pub mod person_ref;
pub mod receipt;
pub mod registry;

mod serde_support;
mod text_form;

/// Valid values for tests in this and other crates (identity numbers, a receipt statement),
/// never a real person's. Enabled by the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    pub use crate::clearing::testing::*;
    pub use crate::identity::testing::*;
    pub use crate::receipt::testing::*;
}

pub use assessment::{
    Assessment, AssessmentInputError, CaseFacts, ChecklistAnswer, ConditionOutcome,
    ConditionResult, ConsentRecord, CrimeTime, Relation, assess,
};
pub use calendar::{SWEDISH_TIME_ZONE, end_of_swedish_day_unix_ms, swedish_date, swedish_time};
pub use clearing::{
    CLEARING_DECISION_FORMAT, ClearingDataKind, ClearingDecision, ClearingDecisionError,
};
pub use directory::{
    DEVELOPMENT_DIRECTORY, Delegation, DelegationError, DelegationInput, Directory, DirectoryError,
    SEED_DELEGATION_FROM, delegation_on,
};
pub use identity::{IdentityKind, IdentityNumber, IdentityNumberError};
pub use inbox::{Inbox, OtherAuthority};
pub use lifecycle::{DisclosureState, LifecycleAction, TransitionError, transition};
pub use national::{Municipality, NationalDirectory, NationalDirectoryError, Region};
pub use organisation::{
    CountyCode, MunicipalityCode, Organisation, OrganisationCode, OrganisationError,
    OrganisationKind, PoliceRegion, Recipient, SecrecyProvision,
};
pub use payload::{DataItem, PayloadError, PolicePayload, PolicePayloadInput};
pub use person_ref::{PersonKey, PersonKeyError, PersonRef};
pub use receipt::{
    RECEIPT_FORMAT, ReceiptError, ReceiptStatement, SignedReceipt, receipt_key_id, sign_receipt,
    verify_receipt,
};
pub use registry::{
    ChecklistItem, Crime, CrimeFilter, CrimeId, CrimeLaw, CrimeTimeRequirement, LegalBasis,
    LegalBasisId, LegalRegistry, RegistryError, SourceKind,
};
