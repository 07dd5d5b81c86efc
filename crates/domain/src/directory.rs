//! The organisations of a deployment and their delegations, loaded from configuration, and the
//! effective-dated [`Delegation`] an administrator grants and revokes.
//!
//! The file's delegations seed a new deployment: each holds from [`SEED_DELEGATION_FROM`] with
//! no end. Which delegation lets a user decide on a date is [`delegation_on`] (pure).
//!
//! A municipality's `municipality_code` must be one of SCB's kommunkoder and a healthcare
//! provider's `county` one of the 21 counties, both as the national directory
//! ([`NationalDirectory`]) lists them; an organisation's `name` may be left out and is then the
//! national directory's (the municipality's name, e.g. `Bollnäs`, or the region's, e.g.
//! `Region Gävleborg`).

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    CountyCode, LegalBasisId, LegalRegistry, MunicipalityCode, NationalDirectory,
    NationalDirectoryError, Organisation, OrganisationCode, OrganisationKind, OtherAuthority,
    Recipient,
};
use serde::Deserialize;
use time::Date;
use time::macros::date;

/// The development default, embedded so a fresh checkout starts without files.
pub const DEVELOPMENT_DIRECTORY: &str = include_str!("../data/organisations.toml");

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory file is not valid: {0}")]
    Syntax(String),
    #[error("national directory is not valid: {0}")]
    National(#[from] NationalDirectoryError),
    #[error("organisations[{index}].{field}: {problem}")]
    Organisation {
        index: usize,
        field: &'static str,
        problem: String,
    },
    #[error("delegations[{index}].{field}: {problem}")]
    Delegation {
        index: usize,
        field: &'static str,
        problem: String,
    },
}

/// The date the directory file's delegations hold from when they seed a deployment: early
/// enough for every decision the deployment makes.
pub const SEED_DELEGATION_FROM: Date = date!(2000 - 01 - 01);

/// Why a delegation cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DelegationError {
    #[error("user must not be empty")]
    NoUser,
    #[error("legal_bases must name at least one legal basis")]
    NoLegalBasis,
    #[error("valid_to {to} is before valid_from {from}")]
    EndsBeforeStart { from: Date, to: Date },
}

/// A delegation: `user` of `organisation` may decide under `legal_bases` from `valid_from` to
/// `valid_to` (both inclusive; no end when `None`). Built only valid: a user, at least one
/// basis, and an end never before the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    id: String,
    organisation: OrganisationCode,
    user: String,
    legal_bases: BTreeSet<LegalBasisId>,
    valid_from: Date,
    valid_to: Option<Date>,
    granted_by: String,
    granted_at_unix_ms: i64,
}

/// What a [`Delegation`] is made of, checked by [`Delegation::new`].
#[derive(Clone, Debug)]
pub struct DelegationInput {
    pub id: String,
    pub organisation: OrganisationCode,
    pub user: String,
    pub legal_bases: BTreeSet<LegalBasisId>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub granted_by: String,
    pub granted_at_unix_ms: i64,
}

impl Delegation {
    pub fn new(input: DelegationInput) -> Result<Delegation, DelegationError> {
        let user = input.user.trim().to_owned();
        if user.is_empty() {
            return Err(DelegationError::NoUser);
        }
        if input.legal_bases.is_empty() {
            return Err(DelegationError::NoLegalBasis);
        }
        if let Some(to) = input.valid_to {
            check_end(input.valid_from, to)?;
        }
        Ok(Delegation {
            id: input.id,
            organisation: input.organisation,
            user,
            legal_bases: input.legal_bases,
            valid_from: input.valid_from,
            valid_to: input.valid_to,
            granted_by: input.granted_by,
            granted_at_unix_ms: input.granted_at_unix_ms,
        })
    }

    /// The same delegation ending on `valid_to` (inclusive); refused before its start.
    pub fn ending_on(&self, valid_to: Date) -> Result<Delegation, DelegationError> {
        check_end(self.valid_from, valid_to)?;
        Ok(Delegation {
            valid_to: Some(valid_to),
            ..self.clone()
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn organisation(&self) -> &OrganisationCode {
        &self.organisation
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn legal_bases(&self) -> &BTreeSet<LegalBasisId> {
        &self.legal_bases
    }

    pub fn valid_from(&self) -> Date {
        self.valid_from
    }

    pub fn valid_to(&self) -> Option<Date> {
        self.valid_to
    }

    pub fn granted_by(&self) -> &str {
        &self.granted_by
    }

    pub fn granted_at_unix_ms(&self) -> i64 {
        self.granted_at_unix_ms
    }

    /// Whether the delegation holds on `date`.
    pub fn is_valid_on(&self, date: Date) -> bool {
        self.valid_from <= date && self.valid_to.is_none_or(|to| date <= to)
    }

    /// Whether it lets `user` of `organisation` decide under `basis` on `date`.
    pub fn covers(
        &self,
        organisation: &OrganisationCode,
        user: &str,
        basis: &LegalBasisId,
        date: Date,
    ) -> bool {
        &self.organisation == organisation
            && self.user == user
            && self.legal_bases.contains(basis)
            && self.is_valid_on(date)
    }
}

/// An end date is never before the start.
fn check_end(from: Date, to: Date) -> Result<(), DelegationError> {
    if to < from {
        return Err(DelegationError::EndsBeforeStart { from, to });
    }
    Ok(())
}

/// The delegation that lets `user` of `organisation` decide under `basis` on `date`, if any
/// (the one granted first when several do).
pub fn delegation_on<'a>(
    delegations: &'a [Delegation],
    organisation: &OrganisationCode,
    user: &str,
    basis: &LegalBasisId,
    date: Date,
) -> Option<&'a Delegation> {
    delegations
        .iter()
        .filter(|delegation| delegation.covers(organisation, user, basis, date))
        .min_by_key(|delegation| (delegation.granted_at_unix_ms, delegation.id.as_str()))
}

/// Registered organisations and who holds which delegation in each.
#[derive(Clone, Debug)]
pub struct Directory {
    organisations: BTreeMap<OrganisationCode, Organisation>,
    /// (organisation, user) → legal bases the user may decide under.
    delegations: BTreeMap<(OrganisationCode, String), BTreeSet<LegalBasisId>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    #[serde(default)]
    organisations: Vec<OrganisationEntry>,
    #[serde(default)]
    delegations: Vec<DelegationEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationEntry {
    code: String,
    name: Option<String>,
    kind: String,
    municipality_code: Option<String>,
    county: Option<String>,
    /// For kind `law_enforcement`: the authority's recipient code, e.g. `aklagarmyndigheten`.
    authority: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegationEntry {
    organisation: String,
    user: String,
    legal_bases: Vec<String>,
}

impl Directory {
    /// Parses and checks a directory file: organisation codes and kinds valid and unique,
    /// municipalities and counties as the national directory lists them, delegations only in
    /// registered organisations that hold a secrecy, under legal bases the registry knows.
    pub fn from_toml(text: &str, registry: &LegalRegistry) -> Result<Directory, DirectoryError> {
        let national = NationalDirectory::embedded()?;
        let file: DirectoryFile =
            toml::from_str(text).map_err(|error| DirectoryError::Syntax(error.to_string()))?;
        let mut organisations = BTreeMap::new();
        for (index, entry) in file.organisations.into_iter().enumerate() {
            let organisation_error = |field, problem: String| DirectoryError::Organisation {
                index,
                field,
                problem,
            };
            let code = OrganisationCode::parse(&entry.code)
                .map_err(|error| organisation_error("code", error.to_string()))?;
            if entry
                .name
                .as_deref()
                .is_some_and(|name| name.trim().is_empty())
            {
                return Err(organisation_error("name", "must not be empty".into()));
            }
            // The kind, and the name the national directory gives it (if any).
            let (kind, national_name) = match entry.kind.as_str() {
                "municipality" => {
                    let text = entry.municipality_code.ok_or_else(|| {
                        organisation_error(
                            "municipality_code",
                            "required for a municipality".into(),
                        )
                    })?;
                    let municipality_code = MunicipalityCode::parse(&text).map_err(|error| {
                        organisation_error("municipality_code", error.to_string())
                    })?;
                    let municipality =
                        national.municipality(municipality_code).ok_or_else(|| {
                            organisation_error(
                                "municipality_code",
                                format!(
                                    "{municipality_code} is not a municipality in SCB's list of kommunkoder"
                                ),
                            )
                        })?;
                    (
                        OrganisationKind::Municipality { municipality_code },
                        Some(municipality.name()),
                    )
                }
                "healthcare_provider" => {
                    let text = entry.county.ok_or_else(|| {
                        organisation_error("county", "required for a healthcare provider".into())
                    })?;
                    let county = CountyCode::parse(&text)
                        .map_err(|error| organisation_error("county", error.to_string()))?;
                    let region = national.region(county).ok_or_else(|| {
                        organisation_error(
                            "county",
                            format!("county {county} has no region in the national directory"),
                        )
                    })?;
                    (
                        OrganisationKind::HealthcareProvider { county },
                        Some(region.name()),
                    )
                }
                "police" => (OrganisationKind::Police, None),
                "law_enforcement" => {
                    let text = entry.authority.ok_or_else(|| {
                        organisation_error(
                            "authority",
                            "required for a law-enforcement authority".into(),
                        )
                    })?;
                    let recipient = Recipient::parse(&text)
                        .map_err(|error| organisation_error("authority", error.to_string()))?;
                    let authority = OtherAuthority::new(recipient).ok_or_else(|| {
                        organisation_error(
                            "authority",
                            "Polismyndigheten is kind \"police\"".into(),
                        )
                    })?;
                    (OrganisationKind::LawEnforcement { authority }, None)
                }
                "supervisor" => (OrganisationKind::Supervisor, None),
                other => {
                    return Err(organisation_error(
                        "kind",
                        format!(
                            "unknown kind {other:?} (municipality, healthcare_provider, police, law_enforcement, supervisor)"
                        ),
                    ));
                }
            };
            if organisations.contains_key(&code) {
                return Err(organisation_error(
                    "code",
                    format!("{code} is listed twice"),
                ));
            }
            let name = match (entry.name.as_deref(), national_name) {
                (Some(name), _) | (None, Some(name)) => name,
                (None, None) => {
                    return Err(organisation_error(
                        "name",
                        format!("required for a {} organisation", entry.kind),
                    ));
                }
            };
            let organisation = Organisation::new(code.clone(), name, kind)
                .map_err(|error| organisation_error("name", error.to_string()))?;
            organisations.insert(code, organisation);
        }
        let mut delegations: BTreeMap<(OrganisationCode, String), BTreeSet<LegalBasisId>> =
            BTreeMap::new();
        for (index, entry) in file.delegations.into_iter().enumerate() {
            let delegation_error = |field, problem: String| DirectoryError::Delegation {
                index,
                field,
                problem,
            };
            let code = OrganisationCode::parse(&entry.organisation)
                .map_err(|error| delegation_error("organisation", error.to_string()))?;
            let organisation = organisations.get(&code).ok_or_else(|| {
                delegation_error("organisation", format!("{code} is not registered"))
            })?;
            if organisation.secrecy().is_none() {
                return Err(delegation_error(
                    "organisation",
                    format!("{code} holds no secrecy that a disclosure could break"),
                ));
            }
            if entry.user.trim().is_empty() {
                return Err(delegation_error("user", "must not be empty".into()));
            }
            let bases = delegations
                .entry((code, entry.user.trim().to_owned()))
                .or_default();
            for text in &entry.legal_bases {
                let id = LegalBasisId::parse(text)
                    .map_err(|error| delegation_error("legal_bases", error.to_string()))?;
                if registry.basis_versions(&id).is_empty() {
                    return Err(delegation_error(
                        "legal_bases",
                        format!("{id} is not in the legal-basis registry"),
                    ));
                }
                bases.insert(id);
            }
        }
        Ok(Directory {
            organisations,
            delegations,
        })
    }

    /// The codes of every registered organisation.
    pub fn codes(&self) -> Vec<String> {
        self.organisations
            .keys()
            .map(|code| code.as_str().to_owned())
            .collect()
    }

    pub fn organisation(&self, code: &OrganisationCode) -> Option<&Organisation> {
        self.organisations.get(code)
    }

    /// The file's delegations, as they seed a new deployment: each from
    /// [`SEED_DELEGATION_FROM`], with no end, granted by `granted_by` at `granted_at_unix_ms`
    /// and given its id by `id`.
    pub fn seed_delegations(
        &self,
        granted_by: &str,
        granted_at_unix_ms: i64,
        mut id: impl FnMut() -> String,
    ) -> Vec<Delegation> {
        self.delegations
            .iter()
            .filter_map(|((organisation, user), bases)| {
                Delegation::new(DelegationInput {
                    id: id(),
                    organisation: organisation.clone(),
                    user: user.clone(),
                    legal_bases: bases.clone(),
                    valid_from: SEED_DELEGATION_FROM,
                    valid_to: None,
                    granted_by: granted_by.to_owned(),
                    granted_at_unix_ms,
                })
                .ok()
            })
            .collect()
    }

    /// Whether `user` of `organisation` holds the delegation to decide under `basis`.
    pub fn holds_delegation(
        &self,
        organisation: &OrganisationCode,
        user: &str,
        basis: &LegalBasisId,
    ) -> bool {
        self.delegations
            .get(&(organisation.clone(), user.to_owned()))
            .is_some_and(|bases| bases.contains(basis))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::PoliceRegion;
    use time::macros::date;

    fn registry() -> LegalRegistry {
        LegalRegistry::embedded().unwrap()
    }

    #[test]
    fn development_directory_loads_and_routes_bollnas_to_mitt() {
        let directory = Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry()).unwrap();
        let bollnas = directory
            .organisation(&OrganisationCode::parse("bollnas-kommun").unwrap())
            .unwrap();
        assert_eq!(bollnas.police_region(), Some(PoliceRegion::Mitt));
        let basis = LegalBasisId::parse("OSL-10-18c").unwrap();
        assert!(directory.holds_delegation(bollnas.code(), "beslut-bollnas", &basis));
        assert!(!directory.holds_delegation(bollnas.code(), "handlaggare-bollnas", &basis));
    }

    fn delegation(id: &str, user: &str, from: Date, to: Option<Date>) -> Delegation {
        Delegation::new(DelegationInput {
            id: id.into(),
            organisation: OrganisationCode::parse("bollnas-kommun").unwrap(),
            user: user.into(),
            legal_bases: [LegalBasisId::parse("OSL-10-18c").unwrap()]
                .into_iter()
                .collect(),
            valid_from: from,
            valid_to: to,
            granted_by: "admin".into(),
            granted_at_unix_ms: 1,
        })
        .unwrap()
    }

    #[test]
    fn the_delegation_on_a_date_is_the_one_valid_that_day() {
        let organisation = OrganisationCode::parse("bollnas-kommun").unwrap();
        let basis = LegalBasisId::parse("OSL-10-18c").unwrap();
        let a = delegation("a", "anna", date!(2026 - 03 - 01), None)
            .ending_on(date!(2026 - 03 - 31))
            .unwrap();
        let b = delegation("b", "bertil", date!(2026 - 04 - 01), None);
        let all = [a, b];
        let on = |user: &str, day: Date| {
            delegation_on(&all, &organisation, user, &basis, day).map(Delegation::id)
        };
        assert_eq!(on("anna", date!(2026 - 03 - 01)), Some("a"));
        assert_eq!(on("anna", date!(2026 - 03 - 31)), Some("a"));
        assert_eq!(on("anna", date!(2026 - 04 - 01)), None);
        assert_eq!(on("anna", date!(2026 - 02 - 28)), None);
        assert_eq!(on("bertil", date!(2026 - 03 - 31)), None);
        assert_eq!(on("bertil", date!(2030 - 01 - 01)), Some("b"));
        let other_basis = LegalBasisId::parse("OSL-25-12").unwrap();
        assert!(
            delegation_on(
                &all,
                &organisation,
                "bertil",
                &other_basis,
                date!(2030 - 01 - 01)
            )
            .is_none()
        );
    }

    #[test]
    fn a_delegation_never_ends_before_it_starts() {
        let a = delegation("a", "anna", date!(2026 - 03 - 10), None);
        assert_eq!(
            a.ending_on(date!(2026 - 03 - 09)).unwrap_err(),
            DelegationError::EndsBeforeStart {
                from: date!(2026 - 03 - 10),
                to: date!(2026 - 03 - 09)
            }
        );
        assert!(
            a.ending_on(date!(2026 - 03 - 10))
                .unwrap()
                .is_valid_on(date!(2026 - 03 - 10))
        );
        let mut input = DelegationInput {
            id: "x".into(),
            organisation: OrganisationCode::parse("bollnas-kommun").unwrap(),
            user: " ".into(),
            legal_bases: BTreeSet::new(),
            valid_from: date!(2026 - 03 - 10),
            valid_to: None,
            granted_by: "admin".into(),
            granted_at_unix_ms: 0,
        };
        assert_eq!(
            Delegation::new(input.clone()).unwrap_err(),
            DelegationError::NoUser
        );
        input.user = "anna".into();
        assert_eq!(
            Delegation::new(input).unwrap_err(),
            DelegationError::NoLegalBasis
        );
    }

    #[test]
    fn the_file_seeds_open_ended_delegations() {
        let directory = Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry()).unwrap();
        let mut next = 0;
        let seeded = directory.seed_delegations("directory", 5, || {
            next += 1;
            format!("seed-{next}")
        });
        assert!(!seeded.is_empty());
        let bollnas = OrganisationCode::parse("bollnas-kommun").unwrap();
        let basis = LegalBasisId::parse("OSL-10-18c").unwrap();
        let held = delegation_on(
            &seeded,
            &bollnas,
            "beslut-bollnas",
            &basis,
            SEED_DELEGATION_FROM,
        )
        .unwrap();
        assert_eq!(held.valid_to(), None);
        assert_eq!(held.granted_by(), "directory");
    }

    #[test]
    fn bad_entries_name_their_field() {
        let registry = registry();
        let error = Directory::from_toml(
            "[[organisations]]\ncode = \"x-kommun\"\nname = \"X\"\nkind = \"municipality\"\nmunicipality_code = \"9999\"\n",
            &registry,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("organisations[0].municipality_code")
        );
        let error = Directory::from_toml(
            "[[delegations]]\norganisation = \"nowhere\"\nuser = \"u\"\nlegal_bases = []\n",
            &registry,
        )
        .unwrap_err();
        assert!(error.to_string().contains("not registered"));
        let error = Directory::from_toml(
            "[[organisations]]\ncode = \"a-kommun\"\nname = \"A\"\nkind = \"municipality\"\nmunicipality_code = \"2183\"\n[[delegations]]\norganisation = \"a-kommun\"\nuser = \"u\"\nlegal_bases = [\"OSL-99-1\"]\n",
            &registry,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("not in the legal-basis registry")
        );
    }

    #[test]
    fn an_unknown_kommunkod_is_refused_naming_it() {
        // 0199 and 2199 are well-formed (a valid county, four digits) but no municipality.
        for code in ["0199", "2199", "1917"] {
            let error = Directory::from_toml(
                &format!(
                    "[[organisations]]\ncode = \"x-kommun\"\nname = \"X kommun\"\nkind = \"municipality\"\nmunicipality_code = \"{code}\"\n"
                ),
                &registry(),
            )
            .unwrap_err()
            .to_string();
            assert_eq!(
                error,
                format!(
                    "organisations[0].municipality_code: {code} is not a municipality in SCB's list of kommunkoder"
                )
            );
        }
    }

    #[test]
    fn a_healthcare_providers_county_must_be_one_of_the_21() {
        for county in ["11", "00", "26"] {
            let error = Directory::from_toml(
                &format!(
                    "[[organisations]]\ncode = \"region-x\"\nname = \"Region X\"\nkind = \"healthcare_provider\"\ncounty = \"{county}\"\n"
                ),
                &registry(),
            )
            .unwrap_err()
            .to_string();
            assert!(error.starts_with("organisations[0].county: "), "{error}");
            assert!(error.contains(county), "{error}");
        }
    }

    #[test]
    fn every_municipality_of_the_national_directory_may_be_registered() {
        let national = NationalDirectory::embedded().unwrap();
        let text: String = national
            .municipalities()
            .map(|municipality| {
                format!(
                    "[[organisations]]\ncode = \"kommun-{code}\"\nkind = \"municipality\"\nmunicipality_code = \"{code}\"\n",
                    code = municipality.code()
                )
            })
            .collect();
        let directory = Directory::from_toml(&text, &registry()).unwrap();
        assert_eq!(directory.codes().len(), 290);
        for municipality in national.municipalities() {
            let code = OrganisationCode::parse(&format!("kommun-{}", municipality.code())).unwrap();
            let organisation = directory.organisation(&code).unwrap();
            assert_eq!(organisation.name(), municipality.name());
            assert_eq!(
                organisation.police_region(),
                Some(municipality.police_region())
            );
        }
    }

    #[test]
    fn an_omitted_name_is_taken_from_the_national_directory() {
        let directory = Directory::from_toml(
            "[[organisations]]\ncode = \"umea-kommun\"\nkind = \"municipality\"\nmunicipality_code = \"2480\"\n\
             [[organisations]]\ncode = \"vgr\"\nkind = \"healthcare_provider\"\ncounty = \"14\"\n\
             [[organisations]]\ncode = \"orebro-kommun\"\nname = \" Örebro kommun, socialtjänsten \"\nkind = \"municipality\"\nmunicipality_code = \"1880\"\n",
            &registry(),
        )
        .unwrap();
        let organisation = |code: &str| {
            directory
                .organisation(&OrganisationCode::parse(code).unwrap())
                .unwrap()
        };
        assert_eq!(organisation("umea-kommun").name(), "Umeå");
        assert_eq!(
            organisation("umea-kommun").police_region(),
            Some(PoliceRegion::Nord)
        );
        assert_eq!(organisation("vgr").name(), "Västra Götalandsregionen");
        assert_eq!(
            organisation("vgr").police_region(),
            Some(PoliceRegion::Vast)
        );
        assert_eq!(
            organisation("orebro-kommun").name(),
            "Örebro kommun, socialtjänsten"
        );
        assert_eq!(
            organisation("orebro-kommun").police_region(),
            Some(PoliceRegion::Bergslagen)
        );
        // Police and supervisors are not in the national directory: their name is required.
        let error = Directory::from_toml(
            "[[organisations]]\ncode = \"polisen\"\nkind = \"police\"\n",
            &registry(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "organisations[0].name: required for a police organisation"
        );
        let error = Directory::from_toml(
            "[[organisations]]\ncode = \"ivo\"\nname = \" \"\nkind = \"supervisor\"\n",
            &registry(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(error, "organisations[0].name: must not be empty");
    }
}
