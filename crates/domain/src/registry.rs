//! Legal bases and the crime catalogue as effective-dated data (domain.md §3).
//!
//! Both are TOML files (`data/legal_bases.toml`, `data/crimes.toml`), embedded by default and
//! loadable from strings so a deployment can ship its own. Everything is validated at load:
//! unknown fields, malformed ids, overlapping versions of the same id, references to unknown
//! ids, duplicate checklist keys and a secrecy provision both broken and excluded are refused.
//! Each file's version is its content hash (`sha256:<hex>`), stamped on every assessment so a
//! past decision can be re-evaluated against the registry as it stood.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::{Date, Month};

use crate::organisation::{Recipient, SecrecyProvision, is_lowercase_identifier};
use crate::text_form::{string_enum, string_newtype};

/// The legal-bases file shipped with the crate.
pub const EMBEDDED_LEGAL_BASES_TOML: &str = include_str!("../data/legal_bases.toml");
/// The crime catalogue shipped with the crate.
pub const EMBEDDED_CRIMES_TOML: &str = include_str!("../data/crimes.toml");

const MAXIMUM_LEGAL_BASIS_ID_LENGTH: usize = 32;
const MAXIMUM_BRB_CHAPTER: u8 = 38;

/// Errors from loading the registry and from looking things up in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "legal basis id must be uppercase letters followed by '-' segments of digits with optional lowercase letters (at most 32 chars), got {0:?}"
    )]
    InvalidLegalBasisId(String),
    #[error(
        "crime id must be 2 to 64 lowercase ascii letters, digits or '-', starting with a letter, got {0:?}"
    )]
    InvalidCrimeId(String),
    #[error("unknown crime time {0:?}: expected future_risk, committed, any or not_applicable")]
    UnknownCrimeTimeRequirement(String),
    #[error("unknown source kind {0:?}: expected social_services or healthcare")]
    UnknownSourceKind(String),
    #[error("{file}: {message}")]
    Schema { file: &'static str, message: String },
    #[error("{file}: {entry}: {problem}")]
    InvalidEntry {
        file: &'static str,
        entry: String,
        problem: String,
    },
    #[error("unknown legal basis {0}")]
    UnknownLegalBasis(LegalBasisId),
    #[error("legal basis {id} is not in force on {date}")]
    LegalBasisNotInForce { id: LegalBasisId, date: Date },
    #[error("unknown crime {0}")]
    UnknownCrime(CrimeId),
    #[error("crime {id} is not in the catalogue on {date}")]
    CrimeNotInForce { id: CrimeId, date: Date },
}

string_newtype! {
    /// A legal basis id such as `OSL-10-18c` or `OSL-12-2`.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct LegalBasisId;
    /// Parses ids like `OSL-10-18c`: uppercase letters, then one or more `-` segments of
    /// digits optionally followed by lowercase letters; at most 32 characters.
    valid: is_legal_basis_id,
    invalid: RegistryError::InvalidLegalBasisId;
}

string_newtype! {
    /// A crime id such as `grov-kvinnofridskrankning`.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct CrimeId;
    /// Parses 2..=64 lowercase ASCII letters, digits and `-`, starting with a letter.
    valid: |input| is_lowercase_identifier(input, 2, 64),
    invalid: RegistryError::InvalidCrimeId;
}

string_enum! {
    /// Which crimes in time a basis covers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum CrimeTimeRequirement {
        /// A risk of a future crime (10 kap. 18 c § OSL).
        FutureRisk => "future_risk",
        /// A suspected, already committed crime (10 kap. 21–23 §§ OSL).
        Committed => "committed",
        /// Either.
        Any => "any",
        /// The basis does not concern a crime (consent, own work).
        NotApplicable => "not_applicable",
    }
    unknown: RegistryError::UnknownCrimeTimeRequirement;
}

string_enum! {
    /// The kind of activity the disclosing organisation carries on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum SourceKind {
        SocialServices => "social_services",
        Healthcare => "healthcare",
    }
    unknown: RegistryError::UnknownSourceKind;
}

/// Which crimes a basis covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrimeFilter {
    brb_chapters: Vec<u8>,
    acts: Vec<String>,
    min_penalty_months: Option<u16>,
}

/// One checklist item of a basis: a condition the decision maker must confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistItem {
    key: String,
    text_sv: String,
    justification_required: bool,
}

/// One version of a legal basis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalBasis {
    id: LegalBasisId,
    statute: String,
    title: String,
    valid_from: Date,
    valid_to: Option<Date>,
    breaks: Vec<SecrecyProvision>,
    excluded_secrecy: Vec<SecrecyProvision>,
    recipients: Vec<Recipient>,
    crime_time: CrimeTimeRequirement,
    crime_filter: Option<CrimeFilter>,
    requires_close_relative: bool,
    victim_max_age_exclusive: Option<u32>,
    subject_max_age_exclusive: Option<u32>,
    source_kinds: Option<Vec<SourceKind>>,
    requires_consent_record: bool,
    suggest_instead: Vec<LegalBasisId>,
    checklist: Vec<ChecklistItem>,
    sources: Vec<String>,
    verify: bool,
    note: String,
}

/// Where a crime is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrimeLaw {
    /// A chapter of brottsbalken (1962:700).
    BrottsbalkenChapter(u8),
    /// Another act, e.g. `lag (1982:316) om förbud mot könsstympning av kvinnor`.
    Act(String),
}

/// One version of a crime in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crime {
    id: CrimeId,
    name_sv: String,
    reference: String,
    law: CrimeLaw,
    valid_from: Date,
    valid_to: Option<Date>,
    minimum_penalty_months: u16,
    verify: bool,
    note: String,
}

/// The validated legal-basis registry and crime catalogue, with their content versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalRegistry {
    bases: Vec<LegalBasis>,
    crimes: Vec<Crime>,
    registry_version: String,
    catalogue_version: String,
}

impl SourceKind {
    /// The activity whose secrecy this is: 25:1 healthcare, 26:1 social services.
    pub fn from_secrecy(secrecy: SecrecyProvision) -> SourceKind {
        match secrecy {
            SecrecyProvision::Healthcare25_1 => SourceKind::Healthcare,
            SecrecyProvision::SocialServices26_1 => SourceKind::SocialServices,
        }
    }
}

impl CrimeFilter {
    /// Allowed brottsbalken chapters; with `acts` empty too, any crime is allowed.
    pub fn brb_chapters(&self) -> &[u8] {
        &self.brb_chapters
    }

    /// Allowed other acts (matched against a crime's `act`).
    pub fn acts(&self) -> &[String] {
        &self.acts
    }

    /// Minimum of the penalty scale the crime must carry, in months.
    pub fn min_penalty_months(&self) -> Option<u16> {
        self.min_penalty_months
    }

    /// Whether the crime's chapter or act is one the filter allows (ignores the penalty).
    pub fn allows_law_of(&self, crime: &Crime) -> bool {
        if self.brb_chapters.is_empty() && self.acts.is_empty() {
            return true;
        }
        match &crime.law {
            CrimeLaw::BrottsbalkenChapter(chapter) => self.brb_chapters.contains(chapter),
            CrimeLaw::Act(act) => self.acts.iter().any(|allowed| allowed == act),
        }
    }

    /// Human description, e.g. `brottsbalken chapters 3, 4, 6`.
    pub fn describe_laws(&self) -> String {
        let mut parts = Vec::new();
        if !self.brb_chapters.is_empty() {
            let chapters: Vec<String> = self.brb_chapters.iter().map(u8::to_string).collect();
            parts.push(format!("brottsbalken chapters {}", chapters.join(", ")));
        }
        parts.extend(self.acts.iter().cloned());
        if parts.is_empty() {
            "any crime".to_owned()
        } else {
            parts.join(" or ")
        }
    }
}

impl ChecklistItem {
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The Swedish wording shown to the caseworker and decision maker.
    pub fn text_sv(&self) -> &str {
        &self.text_sv
    }

    pub fn justification_required(&self) -> bool {
        self.justification_required
    }
}

impl LegalBasis {
    pub fn id(&self) -> &LegalBasisId {
        &self.id
    }

    /// E.g. `10 kap. 18 c § offentlighets- och sekretesslagen (2009:400)`.
    pub fn statute(&self) -> &str {
        &self.statute
    }

    /// Swedish title.
    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn valid_from(&self) -> Date {
        self.valid_from
    }

    /// Last day in force (inclusive); `None` while open.
    pub fn valid_to(&self) -> Option<Date> {
        self.valid_to
    }

    pub fn is_valid_on(&self, date: Date) -> bool {
        is_within(date, self.valid_from, self.valid_to)
    }

    /// Secrecy provisions this basis breaks; empty means any source secrecy except those in
    /// [`LegalBasis::excluded_secrecy`].
    pub fn breaks(&self) -> &[SecrecyProvision] {
        &self.breaks
    }

    /// Secrecy provisions the basis never breaks, e.g. those a general provision such as
    /// 10 kap. 15 a § OSL excludes from its scope. Never one of [`LegalBasis::breaks`].
    pub fn excluded_secrecy(&self) -> &[SecrecyProvision] {
        &self.excluded_secrecy
    }

    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    pub fn crime_time(&self) -> CrimeTimeRequirement {
        self.crime_time
    }

    pub fn crime_filter(&self) -> Option<&CrimeFilter> {
        self.crime_filter.as_ref()
    }

    pub fn requires_close_relative(&self) -> bool {
        self.requires_close_relative
    }

    /// The victim must be younger than this on the assessment date (e.g. 18).
    pub fn victim_max_age_exclusive(&self) -> Option<u32> {
        self.victim_max_age_exclusive
    }

    /// The subject (den enskilde) must be younger than this (e.g. 21).
    pub fn subject_max_age_exclusive(&self) -> Option<u32> {
        self.subject_max_age_exclusive
    }

    /// Restriction on the disclosing activity; `None` means any.
    pub fn source_kinds(&self) -> Option<&[SourceKind]> {
        self.source_kinds.as_deref()
    }

    pub fn requires_consent_record(&self) -> bool {
        self.requires_consent_record
    }

    /// Bases to point to when this one is refused for a committed crime.
    pub fn suggest_instead(&self) -> &[LegalBasisId] {
        &self.suggest_instead
    }

    pub fn checklist(&self) -> &[ChecklistItem] {
        &self.checklist
    }

    /// The public texts the entry was taken from (SFS, proposition, committee report), as
    /// written in the file; empty for entries that give their source only in `statute`/`note`.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Whether counsel still has to verify this entry against the SFS text.
    pub fn needs_verification(&self) -> bool {
        self.verify
    }

    pub fn note(&self) -> &str {
        &self.note
    }
}

impl Crime {
    pub fn id(&self) -> &CrimeId {
        &self.id
    }

    /// Swedish name, e.g. `Grov kvinnofridskränkning`.
    pub fn name_sv(&self) -> &str {
        &self.name_sv
    }

    /// E.g. `BrB 4:4 a andra stycket`.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    pub fn law(&self) -> &CrimeLaw {
        &self.law
    }

    /// The brottsbalken chapter, if the crime is in brottsbalken.
    pub fn brb_chapter(&self) -> Option<u8> {
        match self.law {
            CrimeLaw::BrottsbalkenChapter(chapter) => Some(chapter),
            CrimeLaw::Act(_) => None,
        }
    }

    pub fn valid_from(&self) -> Date {
        self.valid_from
    }

    pub fn valid_to(&self) -> Option<Date> {
        self.valid_to
    }

    pub fn is_valid_on(&self, date: Date) -> bool {
        is_within(date, self.valid_from, self.valid_to)
    }

    /// Minimum of the penalty scale in months; 0 = no special minimum.
    pub fn minimum_penalty_months(&self) -> u16 {
        self.minimum_penalty_months
    }

    pub fn needs_verification(&self) -> bool {
        self.verify
    }

    pub fn note(&self) -> &str {
        &self.note
    }
}

impl LegalRegistry {
    /// The registry built from the files shipped with the crate.
    pub fn embedded() -> Result<LegalRegistry, RegistryError> {
        LegalRegistry::from_toml(EMBEDDED_LEGAL_BASES_TOML, EMBEDDED_CRIMES_TOML)
    }

    /// Loads and validates a registry from the contents of the two TOML files.
    pub fn from_toml(legal_bases: &str, crimes: &str) -> Result<LegalRegistry, RegistryError> {
        let registry_version = content_version(legal_bases);
        let catalogue_version = content_version(crimes);
        let raw_bases: RawLegalBasesFile =
            toml::from_str(legal_bases).map_err(|error| RegistryError::Schema {
                file: LEGAL_BASES_FILE,
                message: error.to_string(),
            })?;
        let raw_crimes: RawCrimesFile =
            toml::from_str(crimes).map_err(|error| RegistryError::Schema {
                file: CRIMES_FILE,
                message: error.to_string(),
            })?;

        let crimes = raw_crimes
            .crime
            .into_iter()
            .enumerate()
            .map(|(index, raw)| convert_crime(index, raw))
            .collect::<Result<Vec<_>, _>>()?;
        check_no_overlap(
            CRIMES_FILE,
            "crime",
            crimes
                .iter()
                .map(|crime| (crime.id.as_str(), crime.valid_from, crime.valid_to)),
        )?;

        let bases = raw_bases
            .basis
            .into_iter()
            .enumerate()
            .map(|(index, raw)| convert_basis(index, raw))
            .collect::<Result<Vec<_>, _>>()?;
        check_no_overlap(
            LEGAL_BASES_FILE,
            "basis",
            bases
                .iter()
                .map(|basis| (basis.id.as_str(), basis.valid_from, basis.valid_to)),
        )?;
        check_basis_references(&bases, &crimes)?;

        Ok(LegalRegistry {
            bases,
            crimes,
            registry_version,
            catalogue_version,
        })
    }

    /// `sha256:<hex>` of the legal-bases file bytes.
    pub fn registry_version(&self) -> &str {
        &self.registry_version
    }

    /// `sha256:<hex>` of the crime-catalogue file bytes.
    pub fn catalogue_version(&self) -> &str {
        &self.catalogue_version
    }

    /// Every version of every basis, in file order.
    pub fn legal_bases(&self) -> &[LegalBasis] {
        &self.bases
    }

    /// Every version of the basis with this id, in file order (empty if unknown).
    pub fn basis_versions(&self, id: &LegalBasisId) -> Vec<&LegalBasis> {
        self.bases.iter().filter(|basis| &basis.id == id).collect()
    }

    /// The version of the basis in force on `date`.
    pub fn basis_as_of(&self, id: &LegalBasisId, date: Date) -> Result<&LegalBasis, RegistryError> {
        let versions = self.basis_versions(id);
        if versions.is_empty() {
            return Err(RegistryError::UnknownLegalBasis(id.clone()));
        }
        versions
            .into_iter()
            .find(|basis| basis.is_valid_on(date))
            .ok_or_else(|| RegistryError::LegalBasisNotInForce {
                id: id.clone(),
                date,
            })
    }

    /// All bases in force on `date`.
    pub fn bases_as_of(&self, date: Date) -> Vec<&LegalBasis> {
        self.bases
            .iter()
            .filter(|basis| basis.is_valid_on(date))
            .collect()
    }

    /// Every version of every crime, in file order.
    pub fn crimes(&self) -> &[Crime] {
        &self.crimes
    }

    /// All crimes in the catalogue on `date`.
    pub fn crimes_as_of(&self, date: Date) -> Vec<&Crime> {
        self.crimes
            .iter()
            .filter(|crime| crime.is_valid_on(date))
            .collect()
    }

    /// The version of the crime in the catalogue on `date`.
    pub fn crime_as_of(&self, id: &CrimeId, date: Date) -> Result<&Crime, RegistryError> {
        let mut versions = self
            .crimes
            .iter()
            .filter(|crime| &crime.id == id)
            .peekable();
        if versions.peek().is_none() {
            return Err(RegistryError::UnknownCrime(id.clone()));
        }
        versions
            .find(|crime| crime.is_valid_on(date))
            .ok_or_else(|| RegistryError::CrimeNotInForce {
                id: id.clone(),
                date,
            })
    }

    /// The version to assess against on `date`, and whether it is in force then.
    ///
    /// When no version is in force, the nearest one is returned: the latest that started on
    /// or before `date`, else the earliest. Unknown id is an error.
    pub(crate) fn basis_for_assessment(
        &self,
        id: &LegalBasisId,
        date: Date,
    ) -> Result<(&LegalBasis, bool), RegistryError> {
        match self.basis_as_of(id, date) {
            Ok(basis) => Ok((basis, true)),
            Err(RegistryError::LegalBasisNotInForce { .. }) => {
                let versions = self.basis_versions(id);
                let latest_started = versions
                    .iter()
                    .filter(|basis| basis.valid_from <= date)
                    .max_by_key(|basis| basis.valid_from);
                let earliest = versions.iter().min_by_key(|basis| basis.valid_from);
                latest_started
                    .or(earliest)
                    .map(|basis| (*basis, false))
                    .ok_or_else(|| RegistryError::UnknownLegalBasis(id.clone()))
            }
            Err(other) => Err(other),
        }
    }
}

// ---- loading ------------------------------------------------------------------------------

const LEGAL_BASES_FILE: &str = "legal bases file";
const CRIMES_FILE: &str = "crimes file";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLegalBasesFile {
    #[serde(default)]
    basis: Vec<RawLegalBasis>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLegalBasis {
    id: String,
    statute: String,
    title: String,
    valid_from: toml::value::Datetime,
    valid_to: Option<toml::value::Datetime>,
    breaks: Vec<String>,
    #[serde(default)]
    excluded_secrecy: Vec<String>,
    recipients: Vec<String>,
    crime_time: String,
    crime_filter: Option<RawCrimeFilter>,
    requires_close_relative: bool,
    victim_max_age_exclusive: Option<u32>,
    subject_max_age_exclusive: Option<u32>,
    source_kinds: Option<Vec<String>>,
    requires_consent_record: bool,
    #[serde(default)]
    suggest_instead: Vec<String>,
    #[serde(default)]
    checklist: Vec<RawChecklistItem>,
    #[serde(default)]
    sources: Vec<String>,
    verify: bool,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrimeFilter {
    #[serde(default)]
    brb_chapters: Vec<u8>,
    #[serde(default)]
    acts: Vec<String>,
    min_penalty_months: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecklistItem {
    key: String,
    text_sv: String,
    justification_required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrimesFile {
    #[serde(default)]
    crime: Vec<RawCrime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrime {
    id: String,
    name_sv: String,
    reference: String,
    chapter: Option<u8>,
    act: Option<String>,
    valid_from: toml::value::Datetime,
    valid_to: Option<toml::value::Datetime>,
    minimum_penalty_months: u16,
    verify: bool,
    #[serde(default)]
    note: String,
}

fn convert_basis(index: usize, raw: RawLegalBasis) -> Result<LegalBasis, RegistryError> {
    let invalid = invalid_entry(LEGAL_BASES_FILE, format!("basis[{index}] ({})", raw.id));

    let id = LegalBasisId::parse(&raw.id).map_err(|error| invalid(error.to_string()))?;
    let statute = non_blank(&raw.statute, "statute").map_err(&invalid)?;
    let title = non_blank(&raw.title, "title").map_err(&invalid)?;
    let (valid_from, valid_to) =
        validity_period(&raw.valid_from, raw.valid_to.as_ref()).map_err(&invalid)?;

    let breaks =
        parse_unique_list(&raw.breaks, "breaks", SecrecyProvision::parse).map_err(&invalid)?;
    let excluded_secrecy = parse_unique_list(
        &raw.excluded_secrecy,
        "excluded_secrecy",
        SecrecyProvision::parse,
    )
    .map_err(&invalid)?;
    if let Some(both) = excluded_secrecy
        .iter()
        .find(|secrecy| breaks.contains(secrecy))
    {
        return Err(invalid(format!(
            "excluded_secrecy: {both} is also in breaks; a basis cannot both break and exclude a secrecy provision"
        )));
    }
    let recipients =
        parse_unique_list(&raw.recipients, "recipients", Recipient::parse).map_err(&invalid)?;
    if recipients.is_empty() {
        return Err(invalid(
            "recipients must name at least one recipient".to_owned(),
        ));
    }
    let crime_time = CrimeTimeRequirement::parse(&raw.crime_time)
        .map_err(|error| invalid(format!("crime_time: {error}")))?;

    let crime_filter = raw
        .crime_filter
        .map(|filter| convert_crime_filter(filter).map_err(&invalid))
        .transpose()?;

    let source_kinds = raw
        .source_kinds
        .as_ref()
        .map(|kinds| parse_unique_list(kinds, "source_kinds", SourceKind::parse))
        .transpose()
        .map_err(&invalid)?;
    if source_kinds.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid(
            "source_kinds must be absent or name at least one kind".to_owned(),
        ));
    }

    let suggest_instead =
        parse_unique_list(&raw.suggest_instead, "suggest_instead", LegalBasisId::parse)
            .map_err(&invalid)?;
    if suggest_instead.contains(&id) {
        return Err(invalid(
            "suggest_instead must not name the basis itself".to_owned(),
        ));
    }

    let mut sources = Vec::with_capacity(raw.sources.len());
    for (source_index, source) in raw.sources.iter().enumerate() {
        let source = non_blank(source, &format!("sources[{source_index}]")).map_err(&invalid)?;
        if sources.contains(&source) {
            return Err(invalid(format!("sources: {source:?} is listed twice")));
        }
        sources.push(source);
    }

    let mut checklist = Vec::with_capacity(raw.checklist.len());
    let mut seen_keys = BTreeSet::new();
    for (item_index, item) in raw.checklist.into_iter().enumerate() {
        if !is_checklist_key(&item.key) {
            return Err(invalid(format!(
                "checklist[{item_index}].key must be lowercase ascii letters, digits and '_', starting with a letter, got {:?}",
                item.key
            )));
        }
        if !seen_keys.insert(item.key.clone()) {
            return Err(invalid(format!(
                "checklist[{item_index}].key {:?} is not unique within the basis",
                item.key
            )));
        }
        let text_sv = non_blank(&item.text_sv, &format!("checklist[{item_index}].text_sv"))
            .map_err(&invalid)?;
        checklist.push(ChecklistItem {
            key: item.key,
            text_sv,
            justification_required: item.justification_required,
        });
    }

    Ok(LegalBasis {
        id,
        statute,
        title,
        valid_from,
        valid_to,
        breaks,
        excluded_secrecy,
        recipients,
        crime_time,
        crime_filter,
        requires_close_relative: raw.requires_close_relative,
        victim_max_age_exclusive: raw.victim_max_age_exclusive,
        subject_max_age_exclusive: raw.subject_max_age_exclusive,
        source_kinds,
        requires_consent_record: raw.requires_consent_record,
        suggest_instead,
        checklist,
        sources,
        verify: raw.verify,
        note: raw.note.trim().to_owned(),
    })
}

fn convert_crime_filter(raw: RawCrimeFilter) -> Result<CrimeFilter, String> {
    let mut chapters = BTreeSet::new();
    for chapter in &raw.brb_chapters {
        if !(1..=MAXIMUM_BRB_CHAPTER).contains(chapter) {
            return Err(format!(
                "crime_filter.brb_chapters: {chapter} is not a brottsbalken chapter (1 to {MAXIMUM_BRB_CHAPTER})"
            ));
        }
        if !chapters.insert(*chapter) {
            return Err(format!(
                "crime_filter.brb_chapters: {chapter} is listed twice"
            ));
        }
    }
    let mut acts = Vec::with_capacity(raw.acts.len());
    for act in &raw.acts {
        let act = non_blank(act, "crime_filter.acts")?;
        if acts.contains(&act) {
            return Err(format!("crime_filter.acts: {act:?} is listed twice"));
        }
        acts.push(act);
    }
    Ok(CrimeFilter {
        brb_chapters: raw.brb_chapters,
        acts,
        min_penalty_months: raw.min_penalty_months,
    })
}

fn convert_crime(index: usize, raw: RawCrime) -> Result<Crime, RegistryError> {
    let invalid = invalid_entry(CRIMES_FILE, format!("crime[{index}] ({})", raw.id));
    let id = CrimeId::parse(&raw.id).map_err(|error| invalid(error.to_string()))?;
    let name_sv = non_blank(&raw.name_sv, "name_sv").map_err(&invalid)?;
    let reference = non_blank(&raw.reference, "reference").map_err(&invalid)?;
    let law = match (raw.chapter, raw.act.as_deref()) {
        (Some(chapter), None) => {
            if !(1..=MAXIMUM_BRB_CHAPTER).contains(&chapter) {
                return Err(invalid(format!(
                    "chapter {chapter} is not a brottsbalken chapter (1 to {MAXIMUM_BRB_CHAPTER})"
                )));
            }
            CrimeLaw::BrottsbalkenChapter(chapter)
        }
        (None, Some(act)) => CrimeLaw::Act(non_blank(act, "act").map_err(&invalid)?),
        _ => {
            return Err(invalid(
                "exactly one of chapter (brottsbalken) or act must be given".to_owned(),
            ));
        }
    };
    let (valid_from, valid_to) =
        validity_period(&raw.valid_from, raw.valid_to.as_ref()).map_err(&invalid)?;
    Ok(Crime {
        id,
        name_sv,
        reference,
        law,
        valid_from,
        valid_to,
        minimum_penalty_months: raw.minimum_penalty_months,
        verify: raw.verify,
        note: raw.note.trim().to_owned(),
    })
}

/// Every `suggest_instead` must name a basis in the file; every filter act must be the act of
/// some crime in the catalogue.
fn check_basis_references(bases: &[LegalBasis], crimes: &[Crime]) -> Result<(), RegistryError> {
    let known_ids: BTreeSet<&LegalBasisId> = bases.iter().map(|basis| &basis.id).collect();
    let known_acts: BTreeSet<&str> = crimes
        .iter()
        .filter_map(|crime| match &crime.law {
            CrimeLaw::Act(act) => Some(act.as_str()),
            CrimeLaw::BrottsbalkenChapter(_) => None,
        })
        .collect();
    for (index, basis) in bases.iter().enumerate() {
        let invalid = |problem: String| RegistryError::InvalidEntry {
            file: LEGAL_BASES_FILE,
            entry: format!("basis[{index}] ({})", basis.id),
            problem,
        };
        if let Some(unknown) = basis
            .suggest_instead
            .iter()
            .find(|suggested| !known_ids.contains(suggested))
        {
            return Err(invalid(format!(
                "suggest_instead names unknown legal basis {unknown}"
            )));
        }
        if let Some(filter) = &basis.crime_filter
            && let Some(unknown) = filter
                .acts
                .iter()
                .find(|act| !known_acts.contains(act.as_str()))
        {
            return Err(invalid(format!(
                "crime_filter.acts names {unknown:?}, which no crime in the catalogue belongs to"
            )));
        }
    }
    Ok(())
}

/// No two entries with the same id may have overlapping (inclusive) validity.
fn check_no_overlap<'a>(
    file: &'static str,
    entry_kind: &str,
    entries: impl Iterator<Item = (&'a str, Date, Option<Date>)>,
) -> Result<(), RegistryError> {
    let mut by_id: BTreeMap<&str, Vec<(Date, Option<Date>)>> = BTreeMap::new();
    for (id, from, to) in entries {
        let periods = by_id.entry(id).or_default();
        if let Some((other_from, other_to)) = periods
            .iter()
            .find(|(other_from, other_to)| periods_overlap(from, to, *other_from, *other_to))
        {
            return Err(RegistryError::InvalidEntry {
                file,
                entry: format!("{entry_kind} {id}"),
                problem: format!(
                    "validity {} overlaps another version of the same id ({})",
                    describe_period(from, to),
                    describe_period(*other_from, *other_to)
                ),
            });
        }
        periods.push((from, to));
    }
    Ok(())
}

fn periods_overlap(
    first_from: Date,
    first_to: Option<Date>,
    second_from: Date,
    second_to: Option<Date>,
) -> bool {
    let first_starts_before_second_ends = second_to.is_none_or(|end| first_from <= end);
    let second_starts_before_first_ends = first_to.is_none_or(|end| second_from <= end);
    first_starts_before_second_ends && second_starts_before_first_ends
}

fn describe_period(from: Date, to: Option<Date>) -> String {
    match to {
        Some(to) => format!("{from} to {to}"),
        None => format!("{from} onwards"),
    }
}

fn is_within(date: Date, from: Date, to: Option<Date>) -> bool {
    date >= from && to.is_none_or(|end| date <= end)
}

/// The error for a problem with entry `entry` of `file`.
fn invalid_entry(file: &'static str, entry: String) -> impl Fn(String) -> RegistryError {
    move |problem| RegistryError::InvalidEntry {
        file,
        entry: entry.clone(),
        problem,
    }
}

/// An entry's `valid_from` and optional `valid_to` as dates, the end not before the start.
fn validity_period(
    valid_from: &toml::value::Datetime,
    valid_to: Option<&toml::value::Datetime>,
) -> Result<(Date, Option<Date>), String> {
    let valid_from = toml_date(valid_from, "valid_from")?;
    let valid_to = valid_to
        .map(|date| toml_date(date, "valid_to"))
        .transpose()?;
    match valid_to {
        Some(valid_to) if valid_to < valid_from => Err(format!(
            "valid_to {valid_to} is before valid_from {valid_from}"
        )),
        _ => Ok((valid_from, valid_to)),
    }
}

fn toml_date(value: &toml::value::Datetime, field: &str) -> Result<Date, String> {
    let problem = || format!("{field} must be a plain date like 2021-08-01, got {value}");
    if value.time.is_some() || value.offset.is_some() {
        return Err(problem());
    }
    let date = value.date.ok_or_else(problem)?;
    let month = Month::try_from(date.month).map_err(|_| problem())?;
    Date::from_calendar_date(i32::from(date.year), month, date.day).map_err(|_| problem())
}

fn non_blank(value: &str, field: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Err(format!("{field} must not be blank"))
    } else {
        Ok(trimmed.to_owned())
    }
}

fn parse_unique_list<T: PartialEq, E: fmt::Display>(
    values: &[String],
    field: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, String> {
    let mut parsed = Vec::with_capacity(values.len());
    for value in values {
        let item = parse(value).map_err(|error| format!("{field}: {error}"))?;
        if parsed.contains(&item) {
            return Err(format!("{field}: {value:?} is listed twice"));
        }
        parsed.push(item);
    }
    Ok(parsed)
}

fn is_checklist_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .next()
            .is_some_and(|byte| byte.is_ascii_lowercase())
        && key
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

fn is_legal_basis_id(input: &str) -> bool {
    if input.is_empty() || input.len() > MAXIMUM_LEGAL_BASIS_ID_LENGTH {
        return false;
    }
    let mut segments = input.split('-');
    let prefix_ok = segments.next().is_some_and(|prefix| {
        !prefix.is_empty() && prefix.bytes().all(|byte| byte.is_ascii_uppercase())
    });
    let mut segment_count = 0;
    let rest_ok = segments.all(|segment| {
        segment_count += 1;
        let digit_count = segment.bytes().take_while(u8::is_ascii_digit).count();
        digit_count > 0
            && segment.as_bytes()[digit_count..]
                .iter()
                .all(u8::is_ascii_lowercase)
    });
    prefix_ok && rest_ok && segment_count > 0
}

fn content_version(file_contents: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(file_contents.as_bytes()))
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    fn registry() -> LegalRegistry {
        LegalRegistry::embedded().unwrap()
    }

    fn basis_id(id: &str) -> LegalBasisId {
        LegalBasisId::parse(id).unwrap()
    }

    fn crime_id(id: &str) -> CrimeId {
        CrimeId::parse(id).unwrap()
    }

    /// A minimal valid basis file with `extra` appended to the single basis table.
    fn one_basis(extra: &str) -> String {
        format!(
            r#"
[[basis]]
id = "OSL-10-18c"
statute = "s"
title = "t"
valid_from = 2021-08-01
breaks = ["OSL-25-1"]
recipients = ["polismyndigheten"]
crime_time = "future_risk"
requires_close_relative = true
requires_consent_record = false
verify = false
{extra}
"#
        )
    }

    const ONE_CRIME: &str = r#"
[[crime]]
id = "mord"
name_sv = "Mord"
reference = "BrB 3:1"
chapter = 3
valid_from = 1965-01-01
minimum_penalty_months = 120
verify = true
"#;

    fn load_error(bases: &str, crimes: &str) -> String {
        LegalRegistry::from_toml(bases, crimes)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn embedded_registry_loads_with_every_basis() {
        let registry = registry();
        let ids: BTreeSet<&str> = registry
            .legal_bases()
            .iter()
            .map(|basis| basis.id().as_str())
            .collect();
        let expected: BTreeSet<&str> = [
            "OSL-10-18c",
            "OSL-10-21",
            "OSL-10-23",
            "OSL-10-2",
            "OSL-12-2",
            "OSL-10-18a",
            "USKBM-2025b",
            "USKBM-2025e",
            "OSL-10-15a",
        ]
        .into_iter()
        .collect();
        assert_eq!(ids, expected);
    }

    /// Every law-enforcement authority the system knows, in declaration order.
    const ALL_LAW_ENFORCEMENT: [Recipient; 7] = [
        Recipient::Polismyndigheten,
        Recipient::Aklagarmyndigheten,
        Recipient::Sakerhetspolisen,
        Recipient::Ekobrottsmyndigheten,
        Recipient::Tullverket,
        Recipient::Kustbevakningen,
        Recipient::SkatteverketBrottsbekampning,
    ];

    fn checklist_keys(basis: &LegalBasis) -> Vec<&str> {
        basis.checklist().iter().map(ChecklistItem::key).collect()
    }

    #[test]
    fn osl_10_15a_is_the_december_2025_provision_with_its_weighing_and_exclusion() {
        let registry = registry();
        let id = basis_id("OSL-10-15a");
        assert_eq!(registry.basis_versions(&id).len(), 1);
        let basis = registry.basis_as_of(&id, date!(2025 - 12 - 01)).unwrap();
        assert_eq!(
            basis.statute(),
            "10 kap. 15 a § offentlighets- och sekretesslagen (2009:400)"
        );
        assert_eq!(basis.valid_from(), date!(2025 - 12 - 01));
        assert_eq!(basis.valid_to(), None);
        // Any secrecy protecting an individual, except the excluded healthcare secrecy.
        assert!(basis.breaks().is_empty());
        assert_eq!(
            basis.excluded_secrecy(),
            &[SecrecyProvision::Healthcare25_1]
        );
        assert_eq!(basis.recipients(), &ALL_LAW_ENFORCEMENT);
        assert_eq!(basis.crime_time(), CrimeTimeRequirement::Any);
        assert!(basis.crime_filter().is_none());
        assert!(!basis.requires_close_relative());
        assert_eq!(checklist_keys(basis), ["purpose", "interest_weighing"]);
        assert!(
            basis
                .checklist()
                .iter()
                .all(ChecklistItem::justification_required)
        );
        assert!(basis.checklist()[1].text_sv().contains("intresseavvägning"));
        assert!(basis.sources()[0].starts_with("prop. 2024/25:180"));
        assert!(basis.needs_verification());
        assert_eq!(
            registry.basis_as_of(&id, date!(2025 - 11 - 30)),
            Err(RegistryError::LegalBasisNotInForce {
                id: id.clone(),
                date: date!(2025 - 11 - 30)
            })
        );
    }

    #[test]
    fn the_duty_to_inform_law_enforcement_has_a_request_and_an_own_initiative_limb() {
        let registry = registry();
        for (id, keys) in [
            (
                "USKBM-2025b",
                vec!["request_received", "needed_by_recipient", "duty_applies"],
            ),
            (
                "USKBM-2025e",
                vec!["significance_for_law_enforcement", "duty_applies"],
            ),
        ] {
            let id = basis_id(id);
            let basis = registry.basis_as_of(&id, date!(2025 - 04 - 01)).unwrap();
            assert_eq!(basis.valid_from(), date!(2025 - 04 - 01), "{id}");
            assert!(
                basis.statute().starts_with(
                    "lagen om skyldighet att lämna uppgifter till de brottsbekämpande myndigheterna"
                ),
                "{id}"
            );
            assert_eq!(
                basis.breaks(),
                &[SecrecyProvision::SocialServices26_1],
                "{id}"
            );
            assert!(basis.excluded_secrecy().is_empty(), "{id}");
            assert_eq!(basis.recipients(), &ALL_LAW_ENFORCEMENT, "{id}");
            assert_eq!(basis.crime_time(), CrimeTimeRequirement::Any, "{id}");
            assert_eq!(checklist_keys(basis), keys, "{id}");
            assert!(
                basis
                    .checklist()
                    .iter()
                    .all(ChecklistItem::justification_required),
                "{id}"
            );
            assert!(basis.sources()[0].starts_with("prop. 2024/25:65"), "{id}");
            assert!(basis.needs_verification(), "{id}");
            assert!(
                registry
                    .basis_as_of(&id, date!(2025 - 03 - 31))
                    .is_err_and(|error| matches!(
                        error,
                        RegistryError::LegalBasisNotInForce { .. }
                    )),
                "{id}"
            );
        }
    }

    #[test]
    fn the_18c_recipient_is_still_only_the_police() {
        // The 2025 reforms widen other bases, never 18 c §.
        let registry = registry();
        let basis = registry
            .basis_as_of(&basis_id("OSL-10-18c"), date!(2026 - 01 - 01))
            .unwrap();
        assert_eq!(basis.recipients(), &[Recipient::Polismyndigheten]);
    }

    /// SoL (2001:453) was replaced by socialtjänstlagen (2025:400) on 2025-07-01: a version in
    /// force after 2025-06-30 must cite the new numbering, never the old law.
    #[test]
    fn no_version_in_force_after_june_2025_cites_the_repealed_socialtjanstlag() {
        let last_day_of_old_sol = date!(2025 - 06 - 30);
        for basis in registry().legal_bases() {
            let in_force_after = basis
                .valid_to()
                .is_none_or(|valid_to| valid_to > last_day_of_old_sol);
            if !in_force_after {
                continue;
            }
            let texts = [basis.statute(), basis.title(), basis.note()]
                .into_iter()
                .chain(basis.checklist().iter().map(ChecklistItem::text_sv));
            for text in texts {
                assert!(!text.contains("2001:453"), "{}: {text}", basis.id());
            }
        }
    }

    #[test]
    fn osl_10_18c_matches_the_provision() {
        let registry = registry();
        let basis = registry
            .basis_as_of(&basis_id("OSL-10-18c"), date!(2022 - 01 - 01))
            .unwrap();
        assert_eq!(basis.valid_from(), date!(2021 - 08 - 01));
        assert_eq!(
            basis.breaks(),
            &[
                SecrecyProvision::Healthcare25_1,
                SecrecyProvision::SocialServices26_1
            ]
        );
        assert_eq!(basis.recipients(), &[Recipient::Polismyndigheten]);
        assert_eq!(basis.crime_time(), CrimeTimeRequirement::FutureRisk);
        let filter = basis.crime_filter().unwrap();
        assert_eq!(filter.brb_chapters(), &[3, 4, 6]);
        assert_eq!(filter.min_penalty_months(), Some(12));
        assert!(basis.requires_close_relative());
        assert_eq!(
            basis.suggest_instead(),
            &[basis_id("OSL-10-21"), basis_id("OSL-10-23")]
        );
        let keys: Vec<&str> = basis.checklist().iter().map(ChecklistItem::key).collect();
        assert_eq!(
            keys,
            [
                "special_circumstances",
                "contributes_to_prevention",
                "not_unsuitable"
            ]
        );
        assert!(
            basis
                .checklist()
                .iter()
                .all(ChecklistItem::justification_required)
        );
        assert_eq!(
            basis.checklist()[0].text_sv(),
            "Det finns på grund av särskilda omständigheter risk för att den enskilde kommer att begå brottet mot den närstående"
        );
    }

    #[test]
    fn lookups_distinguish_unknown_from_not_in_force() {
        let registry = registry();
        assert_eq!(
            registry.basis_as_of(&basis_id("OSL-10-18c"), date!(2021 - 07 - 31)),
            Err(RegistryError::LegalBasisNotInForce {
                id: basis_id("OSL-10-18c"),
                date: date!(2021 - 07 - 31)
            })
        );
        assert_eq!(
            registry.basis_as_of(&basis_id("OSL-99-1"), date!(2022 - 01 - 01)),
            Err(RegistryError::UnknownLegalBasis(basis_id("OSL-99-1")))
        );
        assert_eq!(
            registry.crime_as_of(&crime_id("okand"), date!(2022 - 01 - 01)),
            Err(RegistryError::UnknownCrime(crime_id("okand")))
        );
        assert_eq!(
            registry.crime_as_of(&crime_id("olaga-forfoljelse"), date!(2010 - 01 - 01)),
            Err(RegistryError::CrimeNotInForce {
                id: crime_id("olaga-forfoljelse"),
                date: date!(2010 - 01 - 01)
            })
        );
        assert!(
            registry
                .bases_as_of(date!(2021 - 07 - 31))
                .iter()
                .all(|basis| basis.id().as_str() != "OSL-10-18c")
        );
        assert!(
            registry
                .bases_as_of(date!(2021 - 08 - 01))
                .iter()
                .any(|basis| basis.id().as_str() == "OSL-10-18c")
        );
    }

    #[test]
    fn grov_kvinnofridskrankning_minimum_changes_on_2022_01_01() {
        let registry = registry();
        let id = crime_id("grov-kvinnofridskrankning");
        assert_eq!(
            registry
                .crime_as_of(&id, date!(2021 - 12 - 31))
                .unwrap()
                .minimum_penalty_months(),
            9
        );
        assert_eq!(
            registry
                .crime_as_of(&id, date!(2022 - 01 - 01))
                .unwrap()
                .minimum_penalty_months(),
            12
        );
        assert_eq!(
            registry
                .crime_as_of(&id, date!(2022 - 01 - 01))
                .unwrap()
                .brb_chapter(),
            Some(4)
        );
    }

    #[test]
    fn seeded_catalogue_has_every_crime_of_the_domain_brief() {
        let registry = registry();
        let on = date!(2025 - 01 - 01);
        for (id, qualifies) in [
            ("mord", true),
            ("drap", true),
            ("grov-misshandel", true),
            ("synnerligen-grov-misshandel", true),
            ("manniskorov", true),
            ("manniskohandel", true),
            ("olaga-frihetsberovande", true),
            ("grov-fridskrankning", true),
            ("grov-kvinnofridskrankning", true),
            ("valdtakt", true),
            ("grov-valdtakt", true),
            ("valdtakt-mot-barn", true),
            ("grov-valdtakt-mot-barn", true),
            ("misshandel", false),
            ("olaga-hot", false),
            ("ofredande", false),
            ("olaga-forfoljelse", false),
        ] {
            let crime = registry.crime_as_of(&crime_id(id), on).unwrap();
            assert_eq!(crime.minimum_penalty_months() >= 12, qualifies, "{id}");
            assert!(matches!(crime.brb_chapter(), Some(3 | 4 | 6)), "{id}");
        }
    }

    #[test]
    fn versions_are_content_hashes() {
        let registry = registry();
        assert!(registry.registry_version().starts_with("sha256:"));
        assert_eq!(registry.registry_version().len(), "sha256:".len() + 64);
        assert_eq!(
            registry.registry_version(),
            content_version(EMBEDDED_LEGAL_BASES_TOML)
        );
        assert_eq!(
            registry.catalogue_version(),
            content_version(EMBEDDED_CRIMES_TOML)
        );
        let changed = format!("{EMBEDDED_LEGAL_BASES_TOML}\n# comment\n");
        let other = LegalRegistry::from_toml(&changed, EMBEDDED_CRIMES_TOML).unwrap();
        assert_ne!(other.registry_version(), registry.registry_version());
        assert_eq!(other.catalogue_version(), registry.catalogue_version());
        // sha256("") as a known vector.
        assert_eq!(
            content_version(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn minimal_files_load() {
        let registry = LegalRegistry::from_toml(&one_basis(""), ONE_CRIME).unwrap();
        assert_eq!(registry.legal_bases().len(), 1);
        assert_eq!(registry.crimes().len(), 1);
    }

    #[test]
    fn schema_errors_name_the_file_and_field() {
        let error = load_error(&one_basis("unexpected = 1"), ONE_CRIME);
        assert!(
            error.contains("legal bases file") && error.contains("unexpected"),
            "{error}"
        );
        let missing_statute = one_basis("").replace("statute = \"s\"\n", "");
        let error = load_error(&missing_statute, ONE_CRIME);
        assert!(error.contains("statute"), "{error}");
        let error = load_error(&one_basis(""), "[[crime]]\nid = 3\n");
        assert!(error.contains("crimes file"), "{error}");
    }

    #[test]
    fn malformed_ids_and_values_are_refused() {
        let bad_id = one_basis("").replace("OSL-10-18c", "osl-10-18c");
        assert!(load_error(&bad_id, ONE_CRIME).contains("legal basis id"));
        let bad_recipient = one_basis("").replace("polismyndigheten", "polisen");
        assert!(load_error(&bad_recipient, ONE_CRIME).contains("recipients"));
        let bad_time = one_basis("").replace("future_risk", "future");
        assert!(load_error(&bad_time, ONE_CRIME).contains("crime_time"));
        let bad_crime = ONE_CRIME.replace("\"mord\"", "\"Mord\"");
        assert!(load_error(&one_basis(""), &bad_crime).contains("crime id"));
        let datetime = one_basis("").replace("2021-08-01", "2021-08-01T00:00:00");
        assert!(load_error(&datetime, ONE_CRIME).contains("valid_from"));
        let reversed = one_basis("valid_to = 2021-01-01");
        assert!(load_error(&reversed, ONE_CRIME).contains("valid_to"));
    }

    #[test]
    fn excluded_secrecy_is_parsed_and_never_also_broken() {
        let excluding = one_basis("excluded_secrecy = [\"OSL-26-1\"]")
            .replace("breaks = [\"OSL-25-1\"]", "breaks = []");
        let registry = LegalRegistry::from_toml(&excluding, ONE_CRIME).unwrap();
        let basis = &registry.legal_bases()[0];
        assert!(basis.breaks().is_empty());
        assert_eq!(
            basis.excluded_secrecy(),
            &[SecrecyProvision::SocialServices26_1]
        );
        // Absent means none excluded.
        let plain = LegalRegistry::from_toml(&one_basis(""), ONE_CRIME).unwrap();
        assert!(plain.legal_bases()[0].excluded_secrecy().is_empty());

        let both = one_basis("excluded_secrecy = [\"OSL-25-1\"]");
        let error = load_error(&both, ONE_CRIME);
        assert!(
            error.contains("excluded_secrecy") && error.contains("also in breaks"),
            "{error}"
        );
        let unknown = one_basis("excluded_secrecy = [\"OSL-21-3\"]");
        assert!(load_error(&unknown, ONE_CRIME).contains("excluded_secrecy"));
        let twice = one_basis("excluded_secrecy = [\"OSL-26-1\", \"OSL-26-1\"]");
        assert!(load_error(&twice, ONE_CRIME).contains("listed twice"));
    }

    #[test]
    fn sources_are_kept_in_order_and_must_be_non_blank_and_unique() {
        let registry = LegalRegistry::from_toml(
            &one_basis("sources = [\" prop. 2020/21:163 \", \"SFS 2021:452\"]"),
            ONE_CRIME,
        )
        .unwrap();
        assert_eq!(
            registry.legal_bases()[0].sources(),
            &["prop. 2020/21:163".to_owned(), "SFS 2021:452".to_owned()]
        );
        let blank = one_basis("sources = [\"prop. 2020/21:163\", \" \"]");
        assert!(load_error(&blank, ONE_CRIME).contains("sources[1]"));
        let twice = one_basis("sources = [\"SFS 2021:452\", \"SFS 2021:452\"]");
        assert!(load_error(&twice, ONE_CRIME).contains("listed twice"));
    }

    #[test]
    fn overlapping_versions_are_refused_and_adjacent_ones_allowed() {
        let first = one_basis("valid_to = 2022-12-31");
        let adjacent = one_basis("").replace("2021-08-01", "2023-01-01");
        let registry = LegalRegistry::from_toml(&format!("{first}{adjacent}"), ONE_CRIME).unwrap();
        assert_eq!(registry.basis_versions(&basis_id("OSL-10-18c")).len(), 2);

        let overlapping = one_basis("").replace("2021-08-01", "2022-12-31");
        let error = load_error(&format!("{first}{overlapping}"), ONE_CRIME);
        assert!(error.contains("overlaps"), "{error}");

        let open_twice = format!("{}{}", one_basis(""), one_basis(""));
        assert!(load_error(&open_twice, ONE_CRIME).contains("overlaps"));

        let crime_overlap = format!("{ONE_CRIME}{ONE_CRIME}");
        let error = load_error(&one_basis(""), &crime_overlap);
        assert!(
            error.contains("crimes file") && error.contains("overlaps"),
            "{error}"
        );
    }

    #[test]
    fn unknown_references_are_refused() {
        let unknown_suggestion = one_basis("suggest_instead = [\"OSL-10-21\"]");
        let error = load_error(&unknown_suggestion, ONE_CRIME);
        assert!(error.contains("unknown legal basis OSL-10-21"), "{error}");

        let unknown_act = one_basis("[basis.crime_filter]\nacts = [\"lag (1999:1) om okänt\"]");
        let error = load_error(&unknown_act, ONE_CRIME);
        assert!(error.contains("crime_filter.acts"), "{error}");

        let bad_chapter = one_basis("[basis.crime_filter]\nbrb_chapters = [0]");
        assert!(load_error(&bad_chapter, ONE_CRIME).contains("brb_chapters"));
        let text_chapter = one_basis("[basis.crime_filter]\nbrb_chapters = [\"4a\"]");
        assert!(load_error(&text_chapter, ONE_CRIME).contains("legal bases file"));
    }

    #[test]
    fn checklist_keys_must_be_unique_and_well_formed() {
        let item = "[[basis.checklist]]\nkey = \"same\"\ntext_sv = \"Text\"\njustification_required = true\n";
        let error = load_error(&one_basis(&format!("{item}{item}")), ONE_CRIME);
        assert!(error.contains("not unique"), "{error}");
        let bad_key = item.replace("same", "Same Key");
        assert!(load_error(&one_basis(&bad_key), ONE_CRIME).contains("checklist[0].key"));
        let blank_text = item.replace("Text", "  ");
        assert!(load_error(&one_basis(&blank_text), ONE_CRIME).contains("text_sv"));
    }

    #[test]
    fn crime_needs_exactly_one_of_chapter_or_act() {
        let both = ONE_CRIME.replace("chapter = 3", "chapter = 3\nact = \"lag\"");
        assert!(load_error(&one_basis(""), &both).contains("exactly one"));
        let neither = ONE_CRIME.replace("chapter = 3\n", "");
        assert!(load_error(&one_basis(""), &neither).contains("exactly one"));
    }

    #[test]
    fn legal_basis_id_pattern() {
        for valid in [
            "OSL-10-18c",
            "OSL-12-2",
            "OSL-10-18a",
            "BRB-4-4ab",
            "SOL-5-11a",
        ] {
            assert!(LegalBasisId::parse(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "",
            "OSL",
            "OSL-",
            "OSL-10-",
            "osl-10-18c",
            "OSL-18C",
            "OSL-c18",
            "OSL--10",
            "-10-18",
            "OSL-10-18c-",
            "OSL 10 18c",
            "OSL-12345678901234567890123456789",
        ] {
            assert!(LegalBasisId::parse(invalid).is_err(), "{invalid}");
        }
    }

    proptest! {
        #[test]
        fn legal_basis_id_parse_never_panics(input in "[A-Za-z0-9\\-]{0,40}") {
            if let Ok(id) = LegalBasisId::parse(&input) {
                prop_assert_eq!(id.as_str(), input.as_str());
                prop_assert!(input.len() <= 32);
            }
        }

        #[test]
        fn generated_legal_basis_ids_parse(
            prefix in "[A-Z]{1,4}",
            segments in proptest::collection::vec("[0-9]{1,3}[a-z]{0,2}", 1..4),
        ) {
            let id = format!("{prefix}-{}", segments.join("-"));
            prop_assert_eq!(LegalBasisId::parse(&id).is_ok(), id.len() <= 32);
        }

        #[test]
        fn crime_id_parse_never_panics(input in "\\PC{0,70}") {
            let _ = CrimeId::parse(&input);
        }

        #[test]
        fn arbitrary_toml_never_panics(bases in "\\PC{0,200}", crimes in "\\PC{0,200}") {
            let _ = LegalRegistry::from_toml(&bases, &crimes);
        }
    }
}
