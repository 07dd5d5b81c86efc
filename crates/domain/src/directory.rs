//! The organisations of a deployment and their delegations, loaded from configuration.
//!
//! A municipality's `municipality_code` must be one of SCB's kommunkoder and a healthcare
//! provider's `county` one of the 21 counties, both as the national directory
//! ([`NationalDirectory`]) lists them; an organisation's `name` may be left out and is then the
//! national directory's (the municipality's name, e.g. `Bollnäs`, or the region's, e.g.
//! `Region Gävleborg`).

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    CountyCode, LegalBasisId, LegalRegistry, MunicipalityCode, NationalDirectory,
    NationalDirectoryError, Organisation, OrganisationCode, OrganisationKind,
};
use serde::Deserialize;

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
                "supervisor" => (OrganisationKind::Supervisor, None),
                other => {
                    return Err(organisation_error(
                        "kind",
                        format!(
                            "unknown kind {other:?} (municipality, healthcare_provider, police, supervisor)"
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
