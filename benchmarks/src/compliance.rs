//! The compliance benchmark's log: millions of entries shaped like a working system's, made
//! deterministically from their index (the same `LogShape` always gives the same log).
//!
//! - **The review month**: one organisation's month (October 2026) with `review_accesses`
//!   reads of its disclosures by its caseworkers (some at night, some by users with no relation
//!   to the case, some of protected persons), between the changes that relate users to those
//!   disclosures (created, submitted, approved, delivered).
//! - **The person**: one identity number, whose keyed reference appears in `person_entries`
//!   entries (disclosures about them and reads of those) spread over the whole log, as a
//!   subject report finds them.
//! - **The rest**: twenty organisations' changes and reads from January 2025 to September
//!   2026, about two million other persons.

use sha2::{Digest as _, Sha256};
use tryggdel_proto::audit::v1::{Actor, AuditEvent, ObjectRef, Outcome};

/// 2026-10-01 00:00 Europe/Stockholm.
pub const REVIEW_MONTH_START_MS: i64 = 1_790_805_600_000;
/// 2026-11-01 00:00 Europe/Stockholm.
pub const REVIEW_MONTH_END_MS: i64 = 1_793_487_600_000;
/// 2025-01-01 00:00 Europe/Stockholm.
const BACKGROUND_START_MS: i64 = 1_735_686_000_000;
/// The reviewed organisation.
pub const REVIEWED_ORGANISATION: &str = "bollnas-kommun";
/// Reads per disclosure of the review month, on average.
const READS_PER_DISCLOSURE: u64 = 50;
/// Changes per review-month disclosure that relate users to it.
const CHANGES: [&str; 4] = [
    "disclosure.draft_created",
    "disclosure.submitted",
    "disclosure.approved",
    "disclosure.delivered",
];
/// Persons of the background.
const BACKGROUND_PERSONS: u64 = 2_000_000;
const ORGANISATIONS: [&str; 20] = [
    "bollnas-kommun",
    "ovanakers-kommun",
    "soderhamns-kommun",
    "hudiksvalls-kommun",
    "ljusdals-kommun",
    "nordanstigs-kommun",
    "gavle-kommun",
    "sandvikens-kommun",
    "hofors-kommun",
    "ockelbo-kommun",
    "region-gavleborg",
    "region-uppsala",
    "uppsala-kommun",
    "enkopings-kommun",
    "tierps-kommun",
    "region-dalarna",
    "falu-kommun",
    "borlange-kommun",
    "mora-kommun",
    "leksands-kommun",
];
const REGIONS: [&str; 7] = [
    "nord",
    "mitt",
    "stockholm",
    "ost",
    "vast",
    "syd",
    "bergslagen",
];

/// What the log holds.
#[derive(Clone, Debug)]
pub struct LogShape {
    pub entries: u64,
    /// Reads in the review month (plus four changes per disclosure read).
    pub review_accesses: u64,
    /// Entries about the reported person.
    pub person_entries: u64,
    /// The reported person's keyed reference, as the services compute it.
    pub person_ref: String,
}

/// What an index of the log is.
enum Slot {
    Person(u64),
    ReviewChange(u64),
    ReviewRead(u64),
    Background(u64),
}

impl LogShape {
    /// Disclosures of the review month.
    fn review_disclosures(&self) -> u64 {
        (self.review_accesses / READS_PER_DISCLOSURE).max(1)
    }

    fn review_changes(&self) -> u64 {
        self.review_disclosures() * CHANGES.len() as u64
    }

    /// Every this many entries of the review month, one is a change.
    fn change_stride(&self) -> u64 {
        (self.review_entries() / self.review_changes()).max(2)
    }

    /// The review month's entries start here (the log's middle third).
    fn review_start(&self) -> u64 {
        self.entries / 3
    }

    fn review_entries(&self) -> u64 {
        (self.review_accesses + self.review_changes()).min(self.entries / 2)
    }

    fn person_stride(&self) -> u64 {
        (self.entries / self.person_entries.max(1)).max(2)
    }

    fn slot(&self, index: u64) -> Slot {
        let stride = self.person_stride();
        if index % stride == stride / 2 && index / stride < self.person_entries {
            return Slot::Person(index / stride);
        }
        let start = self.review_start();
        if index >= start && index < start + self.review_entries() {
            let offset = index - start;
            let stride = self.change_stride();
            return if offset.is_multiple_of(stride) && offset / stride < self.review_changes() {
                Slot::ReviewChange(offset / stride)
            } else {
                Slot::ReviewRead(offset)
            };
        }
        Slot::Background(index)
    }

    /// The event at `index`.
    pub fn event(&self, index: u64) -> AuditEvent {
        let noise = mix(index);
        match self.slot(index) {
            Slot::Person(n) => self.person_event(n, noise),
            Slot::ReviewChange(n) => {
                let disclosure = n / CHANGES.len() as u64;
                let action = CHANGES[(n % CHANGES.len() as u64) as usize];
                let month = u64::try_from(REVIEW_MONTH_END_MS - REVIEW_MONTH_START_MS).unwrap_or(1);
                let at = REVIEW_MONTH_START_MS
                    + i64::try_from((disclosure * 60_000) % month).unwrap_or(0);
                review_change(disclosure, action, at)
            }
            Slot::ReviewRead(n) => {
                let disclosure = noise % self.review_disclosures();
                // Most reads by the drafter or the decision maker; one in 50 by a colleague
                // with no relation to the case.
                let user = match (noise >> 20) % 50 {
                    0 => format!("handlaggare-{}", 100 + (noise >> 30) % 60),
                    n if n % 2 == 0 => drafter(disclosure),
                    _ => decision_maker(disclosure),
                };
                // Office hours mostly; about one read in 40 in the night.
                let day = (n * 7) % 31;
                let minute = if (noise >> 40).is_multiple_of(40) {
                    (noise >> 8) % 300
                } else {
                    7 * 60 + (noise >> 8) % (10 * 60)
                };
                let at = REVIEW_MONTH_START_MS
                    + i64::try_from(day * 86_400_000 + minute * 60_000).unwrap_or(0);
                read_event(
                    REVIEWED_ORGANISATION,
                    &user,
                    &review_id(disclosure),
                    review_persons(disclosure),
                    at.min(REVIEW_MONTH_END_MS - 1),
                    disclosure.is_multiple_of(100),
                )
            }
            Slot::Background(n) => background_event(n, noise),
        }
    }

    /// Entries about the reported person: ten of every eleven are reads, the eleventh the
    /// approval of a disclosure about them.
    fn person_event(&self, n: u64, noise: u64) -> AuditEvent {
        let disclosure = format!("01900000-0000-7000-8000-{:012x}", 0xbeef_0000 + n / 11);
        let at = BACKGROUND_START_MS + i64::try_from(n * 86_400_000).unwrap_or(0);
        let persons = vec![
            self.person_ref.clone(),
            person_ref(noise % BACKGROUND_PERSONS),
        ];
        if n.is_multiple_of(11) {
            let mut event = change_event(
                "disclosure.approved",
                REVIEWED_ORGANISATION,
                "beslut-bollnas",
                &disclosure,
                persons,
                at,
            );
            event.recipient = "polisen/mitt".into();
            event.details.insert(
                "data_items".into(),
                "subject_identity_number,address".into(),
            );
            event
        } else {
            read_event(
                REVIEWED_ORGANISATION,
                "handlaggare-bollnas",
                &disclosure,
                persons,
                at,
                false,
            )
        }
    }
}

fn review_id(disclosure: u64) -> String {
    format!("01900000-0000-7000-9000-{disclosure:012x}")
}

fn drafter(disclosure: u64) -> String {
    format!("handlaggare-{}", disclosure % 40)
}

fn decision_maker(disclosure: u64) -> String {
    format!("beslut-{}", disclosure % 10)
}

fn review_persons(disclosure: u64) -> Vec<String> {
    vec![
        person_ref(BACKGROUND_PERSONS + 2 * disclosure),
        person_ref(BACKGROUND_PERSONS + 2 * disclosure + 1),
    ]
}

fn review_change(disclosure: u64, action: &str, at: i64) -> AuditEvent {
    let actor = match action {
        "disclosure.approved" => decision_maker(disclosure),
        "disclosure.delivered" => String::new(),
        _ => drafter(disclosure),
    };
    let mut event = change_event(
        action,
        REVIEWED_ORGANISATION,
        &actor,
        &review_id(disclosure),
        review_persons(disclosure),
        at,
    );
    event.recipient = format!("polisen/{}", REGIONS[(disclosure % 7) as usize]);
    if disclosure.is_multiple_of(100) {
        event
            .details
            .insert("protected_identity".into(), "true".into());
    }
    event
}

fn background_event(n: u64, noise: u64) -> AuditEvent {
    let organisation = ORGANISATIONS[(noise % ORGANISATIONS.len() as u64) as usize];
    let disclosure = format!("01800000-0000-7000-8000-{:012x}", (noise >> 8) % 400_000);
    let persons = vec![person_ref((noise >> 16) % BACKGROUND_PERSONS)];
    let span = REVIEW_MONTH_START_MS - BACKGROUND_START_MS;
    let at = BACKGROUND_START_MS
        + i64::try_from((n * 3_137) % u64::try_from(span).unwrap_or(1)).unwrap_or(0);
    let user = format!("handlaggare-{}", (noise >> 32) % 500);
    if (noise >> 48).is_multiple_of(5) {
        let action = CHANGES[((noise >> 52) % CHANGES.len() as u64) as usize];
        let mut event = change_event(action, organisation, &user, &disclosure, persons, at);
        event.recipient = format!("polisen/{}", REGIONS[((noise >> 56) % 7) as usize]);
        event
    } else {
        read_event(organisation, &user, &disclosure, persons, at, false)
    }
}

fn change_event(
    action: &str,
    organisation: &str,
    user: &str,
    disclosure: &str,
    persons: Vec<String>,
    at: i64,
) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        action: action.into(),
        occurred_at_unix_ms: at,
        actor: Some(Actor {
            user_id: user.into(),
            roles: vec![if user.starts_with("beslut") {
                "decision_maker".into()
            } else {
                "caseworker".into()
            }],
            organisation: if user.is_empty() {
                String::new()
            } else {
                organisation.into()
            },
            unit: "Enheten för våld i nära relationer".into(),
        }),
        objects: vec![ObjectRef {
            kind: "disclosure".into(),
            id: disclosure.into(),
        }],
        disclosure_id: disclosure.into(),
        organisation: organisation.into(),
        legal_basis_id: "osl-10-18c".into(),
        registry_version: "sha256:5d41402abc4b2a76b9719d911017c592ae7f4c1b".into(),
        purpose: "to prevent a serious crime against a close relative".into(),
        outcome: Outcome::Success as i32,
        person_refs: persons,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        details: [("version".to_owned(), "3".to_owned())]
            .into_iter()
            .collect(),
        ..AuditEvent::default()
    }
}

fn read_event(
    organisation: &str,
    user: &str,
    disclosure: &str,
    persons: Vec<String>,
    at: i64,
    protected: bool,
) -> AuditEvent {
    let mut event = change_event(
        "disclosure.read",
        organisation,
        user,
        disclosure,
        persons,
        at,
    );
    if protected {
        event
            .details
            .insert("protected_identity".into(), "true".into());
    }
    event
}

/// A keyed-reference-shaped value for person `n` (not a real person's: the benchmark's
/// persons other than the reported one exist only here).
fn person_ref(n: u64) -> String {
    let digest = Sha256::digest(n.to_be_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("hmac-sha256:{hex}")
}

/// SplitMix64: a well-mixed 64-bit value of `index`.
fn mix(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Rows per INSERT while loading disclosures.
const DISCLOSURE_BATCH: u64 = 500;

/// Writes `count` decided disclosures of twenty organisations over 2025-2026 into the
/// disclosure service's database of `settings` (migrated here if new), as the service would
/// have left them: content sealed with its field key, the clear columns statistics read filled
/// in, most approved, delivered and acknowledged, some rejected or withdrawn. Returns how many.
pub async fn load_disclosures(
    settings: &tryggdel_disclosure::Settings,
    count: u64,
) -> anyhow::Result<u64> {
    use anyhow::Context as _;
    use prost::Message as _;

    let database = tryggdel_storage::Database::connect(
        &settings.database_url,
        "disclosure",
        &tryggdel_disclosure::MIGRATIONS,
    )
    .await
    .context("disclosure database")?;
    let cipher = tryggdel_storage::FieldCipher::new(&settings.field_key);
    let empty_content = tryggdel_proto::disclosure::v1::DraftContent::default().encode_to_vec();
    let empty_protected =
        tryggdel_proto::disclosure::v1::ProtectedDetails::default().encode_to_vec();
    const COLUMNS: &str = "id, organisation, police_region, state, version, urgent, \
        legal_basis_id, drafted_by, client_request_id, request_fingerprint, content_sealed, \
        protected_sealed, created_at, updated_at, submitted_by, submitted_at, decision_outcome, \
        decided_by, decided_at, decision_reason, payload_sha256, payload_sealed, \
        registry_version, catalogue_version, stat_crime_id, stat_recipient, stat_month, \
        clear_version";
    let per_row = COLUMNS.split(',').count();
    let bases = ["osl-10-18c", "osl-10-21", "osl-10-2", "osl-10-23"];
    let crimes = [
        "assault",
        "gross_violation",
        "unlawful_threat",
        "stalking",
        "rape",
    ];
    let mut first = 0;
    while first < count {
        let rows = (count - first).min(DISCLOSURE_BATCH);
        let placeholders: Vec<String> = (0..rows as usize)
            .map(|row| {
                format!(
                    "({})",
                    tryggdel_storage::placeholders(row * per_row + 1, per_row)
                )
            })
            .collect();
        let statement = format!(
            "INSERT INTO disclosures ({COLUMNS}) VALUES {}",
            placeholders.join(", ")
        );
        let mut deliveries = Vec::new();
        let mut query = sqlx::query(&statement);
        for n in first..first + rows {
            let noise = mix(n ^ 0x5eed);
            let id = format!("01850000-0000-7000-8000-{n:012x}");
            let organisation = ORGANISATIONS[(noise % ORGANISATIONS.len() as u64) as usize];
            let region = REGIONS[((noise >> 8) % REGIONS.len() as u64) as usize];
            let created =
                BACKGROUND_START_MS + i64::try_from((noise >> 16) % 600).unwrap_or(0) * 86_400_000;
            let decided = created + i64::try_from((noise >> 24) % 172_800).unwrap_or(0) * 1000;
            let (state, outcome) = match (noise >> 32) % 20 {
                0 => ("rejected", "rejected"),
                1 => ("withdrawn", ""),
                2 => ("delivered", "approved"),
                _ => ("acknowledged", "approved"),
            };
            if outcome == "approved" {
                let delivered = decided + i64::try_from((noise >> 40) % 600).unwrap_or(0) * 1000;
                let acknowledged = if state == "acknowledged" {
                    delivered + i64::try_from((noise >> 48) % 7_200).unwrap_or(0) * 1000
                } else {
                    0
                };
                deliveries.push((id.clone(), region, delivered, acknowledged));
            }
            let month = time::OffsetDateTime::from_unix_timestamp(created / 1000 + 7_200)
                .map(|at| format!("{:04}-{:02}", at.year(), u8::from(at.month())))
                .unwrap_or_default();
            let content = cipher
                .seal(&empty_content, &format!("disclosure:{id}:content"))
                .context("sealing")?;
            let protected = cipher
                .seal(&empty_protected, &format!("disclosure:{id}:protected"))
                .context("sealing")?;
            query = query
                .bind(id.clone())
                .bind(organisation)
                .bind(region)
                .bind(state)
                .bind(4i64)
                .bind(i64::from((noise >> 56).is_multiple_of(10)))
                .bind(bases[((noise >> 12) % bases.len() as u64) as usize])
                .bind("handlaggare-1")
                .bind(format!("load-{n}"))
                .bind("")
                .bind(content)
                .bind(protected)
                .bind(created)
                .bind(decided)
                .bind("handlaggare-1")
                .bind(created)
                .bind(outcome)
                .bind(if outcome.is_empty() { "" } else { "beslut-1" })
                .bind(if outcome.is_empty() { 0 } else { decided })
                .bind(if outcome == "rejected" {
                    "not proportionate"
                } else {
                    ""
                })
                .bind("")
                .bind("")
                .bind("")
                .bind("")
                .bind(crimes[((noise >> 20) % crimes.len() as u64) as usize])
                .bind(format!("polisen/{region}"))
                .bind(month)
                .bind(4i64);
        }
        let mut transaction = database
            .pool()
            .begin()
            .await
            .context("loading disclosures")?;
        query
            .execute(&mut *transaction)
            .await
            .context("inserting disclosures")?;
        for (id, region, delivered, acknowledged) in deliveries {
            sqlx::query(
                "INSERT INTO deliveries (disclosure_id, police_region, delivered_at, \
                 police_reference, acknowledged_by, acknowledged_at, receipt_key_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(region)
            .bind(delivered)
            .bind(if acknowledged > 0 { "K-1" } else { "" })
            .bind(if acknowledged > 0 { "polis-1" } else { "" })
            .bind(acknowledged)
            .bind("")
            .execute(&mut *transaction)
            .await
            .context("inserting deliveries")?;
        }
        transaction.commit().await.context("loading disclosures")?;
        first += rows;
    }
    if database.backend() == tryggdel_storage::Backend::Postgres {
        sqlx::query("ANALYZE")
            .execute(database.pool())
            .await
            .context("analysing the disclosure tables")?;
    }
    database.close().await;
    Ok(count)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn shape() -> LogShape {
        LogShape {
            entries: 300_000,
            review_accesses: 50_000,
            person_entries: 110,
            person_ref: "hmac-sha256:00".into(),
        }
    }

    #[test]
    fn the_log_has_its_parts_in_the_proportions_asked() {
        let shape = shape();
        let (mut person, mut review_reads, mut review_changes) = (0, 0, 0);
        for index in 0..shape.entries {
            let event = shape.event(index);
            if event.person_refs.contains(&shape.person_ref) {
                person += 1;
            }
            let in_month =
                (REVIEW_MONTH_START_MS..REVIEW_MONTH_END_MS).contains(&event.occurred_at_unix_ms);
            if in_month && event.organisation == REVIEWED_ORGANISATION {
                if event.action == "disclosure.read" {
                    review_reads += 1;
                } else {
                    review_changes += 1;
                }
            }
        }
        assert_eq!(person, 110);
        assert!(review_reads > 45_000, "{review_reads}");
        assert!(review_changes > 3_000, "{review_changes}");
    }
}
