//! The national directory: every Swedish municipality (kommun) and region, as data.
//!
//! `data/municipalities.toml` lists SCB's 290 kommunkoder with their names and counties, and
//! `data/regions.toml` the 21 counties (län) with the region that runs healthcare in each and
//! the police region serving it. Both are embedded and parsed once ([`NationalDirectory::embedded`]);
//! a deployment's organisation directory refers to them, so a municipality or healthcare
//! provider names a real kommun or county. At load, unknown fields, duplicate codes, blank
//! names, a municipality whose `county` is not its code's first two digits, a county without a
//! region, a county without municipalities, and a `police_region` that disagrees with
//! [`CountyCode::police_region`] are all refused.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::organisation::{CountyCode, MunicipalityCode, PoliceRegion};

/// The municipalities file shipped with the crate.
pub const EMBEDDED_MUNICIPALITIES_TOML: &str = include_str!("../data/municipalities.toml");
/// The regions file shipped with the crate.
pub const EMBEDDED_REGIONS_TOML: &str = include_str!("../data/regions.toml");

const MUNICIPALITIES_FILE: &str = "municipalities.toml";
const REGIONS_FILE: &str = "regions.toml";

/// Errors from loading the national directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NationalDirectoryError {
    #[error("{file}: {message}")]
    Schema { file: &'static str, message: String },
    #[error("{file}: {entry}: {problem}")]
    InvalidEntry {
        file: &'static str,
        entry: String,
        problem: String,
    },
}

/// A municipality (kommun) as SCB lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Municipality {
    code: MunicipalityCode,
    name: String,
}

/// A region (formerly landsting): the body that runs healthcare in one county.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region {
    county: CountyCode,
    county_name: String,
    name: String,
}

/// Every municipality and region of Sweden, each routed to one of the seven police regions.
#[derive(Debug, Clone)]
pub struct NationalDirectory {
    municipalities: BTreeMap<MunicipalityCode, Municipality>,
    regions: BTreeMap<CountyCode, Region>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MunicipalitiesFile {
    municipalities: Vec<MunicipalityEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MunicipalityEntry {
    code: MunicipalityCode,
    name: String,
    county: CountyCode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionsFile {
    regions: Vec<RegionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionEntry {
    county: CountyCode,
    county_name: String,
    name: String,
    police_region: PoliceRegion,
}

static EMBEDDED: LazyLock<Result<NationalDirectory, NationalDirectoryError>> =
    LazyLock::new(|| {
        NationalDirectory::from_toml(EMBEDDED_MUNICIPALITIES_TOML, EMBEDDED_REGIONS_TOML)
    });

impl Municipality {
    /// SCB's kommunkod, e.g. `2183`.
    pub fn code(&self) -> MunicipalityCode {
        self.code
    }

    /// SCB's name, e.g. `Bollnäs`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The county (län) the municipality lies in.
    pub fn county(&self) -> CountyCode {
        self.code.county()
    }

    /// The police region a disclosure from this municipality goes to.
    pub fn police_region(&self) -> PoliceRegion {
        self.county().police_region()
    }
}

impl Region {
    /// The county the region serves, e.g. `21`.
    pub fn county(&self) -> CountyCode {
        self.county
    }

    /// The county's name, e.g. `Gävleborgs län`.
    pub fn county_name(&self) -> &str {
        &self.county_name
    }

    /// The region's name, e.g. `Region Gävleborg`, `Västra Götalandsregionen`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The police region serving the region's county.
    pub fn police_region(&self) -> PoliceRegion {
        self.county.police_region()
    }
}

impl NationalDirectory {
    /// The directory built from the files shipped with the crate, parsed on first use.
    pub fn embedded() -> Result<&'static NationalDirectory, NationalDirectoryError> {
        EMBEDDED.as_ref().map_err(Clone::clone)
    }

    /// Loads and validates the directory from the contents of the two TOML files.
    pub fn from_toml(
        municipalities: &str,
        regions: &str,
    ) -> Result<NationalDirectory, NationalDirectoryError> {
        let regions = load_regions(regions)?;
        let municipalities = load_municipalities(municipalities, &regions)?;
        if let Some(county) = regions
            .keys()
            .find(|county| !municipalities.values().any(|m| m.county() == **county))
        {
            return Err(NationalDirectoryError::InvalidEntry {
                file: MUNICIPALITIES_FILE,
                entry: format!("county {county}"),
                problem: "has no municipality".into(),
            });
        }
        Ok(NationalDirectory {
            municipalities,
            regions,
        })
    }

    /// The municipality with this kommunkod, if it is one of Sweden's.
    pub fn municipality(&self, code: MunicipalityCode) -> Option<&Municipality> {
        self.municipalities.get(&code)
    }

    /// The region of this county. Every valid county has one.
    pub fn region(&self, county: CountyCode) -> Option<&Region> {
        self.regions.get(&county)
    }

    /// Every municipality, in kommunkod order.
    pub fn municipalities(&self) -> impl Iterator<Item = &Municipality> {
        self.municipalities.values()
    }

    /// The municipalities of one county, in kommunkod order.
    pub fn municipalities_in(&self, county: CountyCode) -> impl Iterator<Item = &Municipality> {
        self.municipalities
            .values()
            .filter(move |municipality| municipality.county() == county)
    }

    /// Every region, in county order.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }
}

fn load_regions(text: &str) -> Result<BTreeMap<CountyCode, Region>, NationalDirectoryError> {
    let file: RegionsFile =
        toml::from_str(text).map_err(|error| NationalDirectoryError::Schema {
            file: REGIONS_FILE,
            message: error.to_string(),
        })?;
    let mut regions = BTreeMap::new();
    for entry in file.regions {
        let invalid = |problem: String| NationalDirectoryError::InvalidEntry {
            file: REGIONS_FILE,
            entry: format!("county {}", entry.county),
            problem,
        };
        let name = non_blank(&entry.name).ok_or_else(|| invalid("name is blank".into()))?;
        let county_name =
            non_blank(&entry.county_name).ok_or_else(|| invalid("county_name is blank".into()))?;
        let routed = entry.county.police_region();
        if entry.police_region != routed {
            return Err(invalid(format!(
                "police_region is {} but the county is routed to {routed}",
                entry.police_region
            )));
        }
        let region = Region {
            county: entry.county,
            county_name,
            name,
        };
        if regions.insert(entry.county, region).is_some() {
            return Err(invalid("is listed twice".into()));
        }
    }
    if let Some(county) = CountyCode::all().find(|county| !regions.contains_key(county)) {
        return Err(NationalDirectoryError::InvalidEntry {
            file: REGIONS_FILE,
            entry: format!("county {county}"),
            problem: "has no region".into(),
        });
    }
    Ok(regions)
}

fn load_municipalities(
    text: &str,
    regions: &BTreeMap<CountyCode, Region>,
) -> Result<BTreeMap<MunicipalityCode, Municipality>, NationalDirectoryError> {
    let file: MunicipalitiesFile =
        toml::from_str(text).map_err(|error| NationalDirectoryError::Schema {
            file: MUNICIPALITIES_FILE,
            message: error.to_string(),
        })?;
    let mut municipalities = BTreeMap::new();
    for entry in file.municipalities {
        let invalid = |problem: String| NationalDirectoryError::InvalidEntry {
            file: MUNICIPALITIES_FILE,
            entry: format!("municipality {}", entry.code),
            problem,
        };
        let name = non_blank(&entry.name).ok_or_else(|| invalid("name is blank".into()))?;
        if entry.code.county() != entry.county {
            return Err(invalid(format!(
                "county is {} but the code's county is {}",
                entry.county,
                entry.code.county()
            )));
        }
        if !regions.contains_key(&entry.county) {
            return Err(invalid(format!(
                "county {} has no region in {REGIONS_FILE}",
                entry.county
            )));
        }
        let municipality = Municipality {
            code: entry.code,
            name,
        };
        if municipalities.insert(entry.code, municipality).is_some() {
            return Err(invalid("is listed twice".into()));
        }
    }
    Ok(municipalities)
}

/// The trimmed text, or `None` when nothing is left.
fn non_blank(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn national() -> &'static NationalDirectory {
        NationalDirectory::embedded().unwrap()
    }

    fn municipality(code: &str) -> &'static Municipality {
        national()
            .municipality(MunicipalityCode::parse(code).unwrap())
            .unwrap()
    }

    fn region(county: &str) -> &'static Region {
        national()
            .region(CountyCode::parse(county).unwrap())
            .unwrap()
    }

    #[test]
    fn all_290_municipalities_and_21_regions_route_to_one_of_the_seven_police_regions() {
        let national = national();
        assert_eq!(national.municipalities().count(), 290);
        assert_eq!(national.regions().count(), 21);
        let mut served = std::collections::BTreeSet::new();
        for municipality in national.municipalities() {
            assert!(PoliceRegion::ALL.contains(&municipality.police_region()));
            assert_eq!(
                municipality.code().to_string()[..2],
                municipality.county().to_string(),
            );
            let region = national.region(municipality.county()).unwrap();
            assert_eq!(municipality.police_region(), region.police_region());
            served.insert(municipality.police_region());
        }
        assert_eq!(
            served.len(),
            PoliceRegion::ALL.len(),
            "every police region serves someone"
        );
        for county in CountyCode::all() {
            let region = national.region(county).unwrap();
            assert_eq!(region.county(), county);
            assert!(
                national.municipalities_in(county).next().is_some(),
                "{county}"
            );
        }
    }

    #[test]
    fn spot_checks_route_as_the_police_divide_the_country() {
        for (code, name, county, region_name, police) in [
            (
                "0180",
                "Stockholm",
                "01",
                "Region Stockholm",
                PoliceRegion::Stockholm,
            ),
            (
                "0980",
                "Gotland",
                "09",
                "Region Gotland",
                PoliceRegion::Stockholm,
            ),
            (
                "2183",
                "Bollnäs",
                "21",
                "Region Gävleborg",
                PoliceRegion::Mitt,
            ),
            (
                "0330",
                "Knivsta",
                "03",
                "Region Uppsala",
                PoliceRegion::Mitt,
            ),
            ("0331", "Heby", "03", "Region Uppsala", PoliceRegion::Mitt),
            ("1280", "Malmö", "12", "Region Skåne", PoliceRegion::Syd),
            (
                "0680",
                "Jönköping",
                "06",
                "Region Jönköpings län",
                PoliceRegion::Ost,
            ),
            (
                "2480",
                "Umeå",
                "24",
                "Region Västerbotten",
                PoliceRegion::Nord,
            ),
            (
                "1480",
                "Göteborg",
                "14",
                "Västra Götalandsregionen",
                PoliceRegion::Vast,
            ),
            (
                "1880",
                "Örebro",
                "18",
                "Region Örebro län",
                PoliceRegion::Bergslagen,
            ),
        ] {
            let municipality = municipality(code);
            assert_eq!(municipality.name(), name);
            assert_eq!(municipality.county().to_string(), county);
            assert_eq!(municipality.police_region(), police, "{code}");
            let region = region(county);
            assert_eq!(region.name(), region_name);
            assert_eq!(region.police_region(), police, "{county}");
        }
        assert_eq!(region("21").county_name(), "Gävleborgs län");
    }

    #[test]
    fn codes_that_are_well_formed_but_no_municipality_are_not_found() {
        for code in ["0100", "0199", "2199", "1917", "2585"] {
            let code = MunicipalityCode::parse(code).unwrap();
            assert!(national().municipality(code).is_none(), "{code}");
        }
    }

    #[test]
    fn municipalities_per_county_match_scb() {
        let expected = [
            ("01", 26),
            ("03", 8),
            ("04", 9),
            ("05", 13),
            ("06", 13),
            ("07", 8),
            ("08", 12),
            ("09", 1),
            ("10", 5),
            ("12", 33),
            ("13", 6),
            ("14", 49),
            ("17", 16),
            ("18", 12),
            ("19", 10),
            ("20", 15),
            ("21", 10),
            ("22", 7),
            ("23", 8),
            ("24", 15),
            ("25", 14),
        ];
        for (county, count) in expected {
            let county = CountyCode::parse(county).unwrap();
            assert_eq!(
                national().municipalities_in(county).count(),
                count,
                "{county}"
            );
        }
    }

    fn load(municipalities: &str) -> Result<NationalDirectory, NationalDirectoryError> {
        let mut text = String::from(EMBEDDED_MUNICIPALITIES_TOML);
        text = text.replacen(
            "municipalities = [",
            &format!("municipalities = [\n{municipalities}"),
            1,
        );
        NationalDirectory::from_toml(&text, EMBEDDED_REGIONS_TOML)
    }

    #[test]
    fn bad_municipality_rows_are_refused_naming_the_code() {
        for (row, problem) in [
            (
                r#"{ code = "0180", name = "Stockholm", county = "01" },"#,
                "municipality 0180: is listed twice",
            ),
            (
                r#"{ code = "0199", name = "Nowhere", county = "03" },"#,
                "municipality 0199: county is 03 but the code's county is 01",
            ),
            (
                r#"{ code = "0199", name = "  ", county = "01" },"#,
                "municipality 0199: name is blank",
            ),
        ] {
            let error = load(row).unwrap_err().to_string();
            assert_eq!(error, format!("municipalities.toml: {problem}"));
        }
        for row in [
            r#"{ code = "1183", name = "X", county = "11" },"#,
            r#"{ code = "0199", name = "X", county = "01", extra = 1 },"#,
        ] {
            let error = load(row).unwrap_err().to_string();
            assert!(error.starts_with("municipalities.toml: "), "{error}");
        }
    }

    #[test]
    fn regions_must_cover_every_county_and_agree_with_the_police_routing() {
        let wrong_police = EMBEDDED_REGIONS_TOML.replacen(
            r#"name = "Region Gävleborg", police_region = "mitt""#,
            r#"name = "Region Gävleborg", police_region = "nord""#,
            1,
        );
        assert_ne!(wrong_police, EMBEDDED_REGIONS_TOML);
        let error = NationalDirectory::from_toml(EMBEDDED_MUNICIPALITIES_TOML, &wrong_police)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "regions.toml: county 21: police_region is nord but the county is routed to mitt"
        );
        let without_gotland: String = EMBEDDED_REGIONS_TOML
            .lines()
            .filter(|line| !line.contains(r#"county = "09""#))
            .map(|line| format!("{line}\n"))
            .collect();
        let error = NationalDirectory::from_toml(EMBEDDED_MUNICIPALITIES_TOML, &without_gotland)
            .unwrap_err()
            .to_string();
        assert_eq!(error, "regions.toml: county 09: has no region");
        let without_gotlands_municipality: String = EMBEDDED_MUNICIPALITIES_TOML
            .lines()
            .filter(|line| !line.contains(r#"code = "0980""#))
            .map(|line| format!("{line}\n"))
            .collect();
        let error =
            NationalDirectory::from_toml(&without_gotlands_municipality, EMBEDDED_REGIONS_TOML)
                .unwrap_err()
                .to_string();
        assert_eq!(error, "municipalities.toml: county 09: has no municipality");
    }
}
