//! What a run left in the databases, checked from outside the services: the audit log has
//! every event both services committed, each once, each service's events of one disclosure in
//! the order they were committed, every entry's bytes hash to its leaf, and every checkpoint —
//! whichever instance signed it — verifies and is consistent with the one before; the police
//! got each approved disclosure exactly once, with gap-free sequences per region.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sqlx::{Connection, PgConnection};
use tryggdel_merkle::checkpoint::CheckpointVerifier;
use tryggdel_merkle::{MerkleTree, hash_from_slice, leaf_hash, verify_consistency};

/// The databases of one run.
#[derive(Clone, Debug)]
pub struct RunDatabases {
    pub audit_url: String,
    pub notification_url: String,
    pub disclosure_url: String,
}

/// What the checks counted.
#[derive(Clone, Debug, Default)]
pub struct LogReport {
    pub entries: u64,
    pub checkpoints: usize,
    pub disclosure_events: usize,
    pub notification_events: usize,
    /// Events both services committed that the audit log holds (must equal both counts).
    pub events_in_log: usize,
    pub deliveries: usize,
    pub regions: usize,
    pub acknowledged: usize,
}

impl LogReport {
    pub fn describe(&self) -> String {
        format!(
            "{} audit entries (contiguous, each event once, leaves rehashed from the stored bytes), \
             {} checkpoints verified and pairwise consistent; {} disclosure and {} notification \
             outbox events all in the log in commit order per disclosure; {} deliveries, one per \
             approved disclosure, gap-free sequences in {} regions; {} acknowledged",
            self.entries,
            self.checkpoints,
            self.disclosure_events,
            self.notification_events,
            self.deliveries,
            self.regions,
            self.acknowledged
        )
    }
}

/// A connection to `url` that sees the tables of the service `schema` (each service keeps its
/// tables in a schema of its own name).
pub async fn connect(url: &str, schema: &str) -> anyhow::Result<PgConnection> {
    let mut connection = PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {}", crate::database::redacted(url)))?;
    anyhow::ensure!(
        schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "invalid schema name {schema:?}"
    );
    sqlx::query(&format!("SET search_path TO {schema}"))
        .execute(&mut connection)
        .await
        .with_context(|| format!("selecting the schema {schema}"))?;
    Ok(connection)
}

/// Events still on their way: to the audit log from both outboxes, approvals to the
/// notification service, receipts back to the disclosure service.
pub async fn backlog(databases: &RunDatabases) -> anyhow::Result<i64> {
    let mut total = 0;
    for (schema, url, sql) in [
        (
            "disclosure",
            &databases.disclosure_url,
            "SELECT count(*) FROM outbox WHERE audit_relayed_at IS NULL \
             OR (delivery_relayed_at IS NULL AND event_type = 'disclosure.approved')",
        ),
        (
            "notification",
            &databases.notification_url,
            "SELECT count(*) FROM outbox WHERE audit_relayed_at IS NULL \
             OR (disclosure_relayed_at IS NULL AND event_type = 'notification.acknowledged')",
        ),
    ] {
        let mut connection = connect(url, schema).await?;
        let (count,): (i64,) = sqlx::query_as(sql)
            .fetch_one(&mut connection)
            .await
            .context("counting outbox events not yet relayed")?;
        total += count;
        connection.close().await.ok();
    }
    Ok(total)
}

/// How long a wait may take, and how long it pauses between two looks.
struct Patience {
    started: Instant,
    timeout: Duration,
    pause: Duration,
}

impl Patience {
    fn new(timeout: Duration, pause: Duration) -> Patience {
        Patience {
            started: Instant::now(),
            timeout,
            pause,
        }
    }

    /// After a look that was not yet it: pauses, or fails with `why` once the time is up.
    async fn again(&self, why: impl FnOnce() -> String) -> anyhow::Result<()> {
        if self.started.elapsed() > self.timeout {
            bail!("{}", why());
        }
        tokio::time::sleep(self.pause).await;
        Ok(())
    }
}

/// Waits until every outbox event has reached its receivers; answers how long that took.
pub async fn wait_for_drained(
    databases: &RunDatabases,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let patience = Patience::new(timeout, Duration::from_millis(100));
    loop {
        let backlog = backlog(databases).await?;
        if backlog == 0 {
            return Ok(patience.started.elapsed());
        }
        patience
            .again(|| format!("{backlog} outbox events still not relayed after {timeout:?}"))
            .await?;
    }
}

/// Waits until a signed checkpoint covers every entry (the log signs at most once per
/// checkpoint interval while it grows, so the last entries of a run wait for the next one).
pub async fn wait_for_checkpoint(
    databases: &RunDatabases,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let patience = Patience::new(timeout, Duration::from_millis(50));
    let mut audit = connect(&databases.audit_url, "audit").await?;
    loop {
        let (entries, signed): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM audit_entries), \
             (SELECT COALESCE(max(tree_size), 0) FROM audit_checkpoints)",
        )
        .fetch_one(&mut audit)
        .await
        .context("reading the audit log's size")?;
        if signed == entries {
            audit.close().await.ok();
            return Ok(patience.started.elapsed());
        }
        patience
            .again(|| {
                format!(
                    "after {timeout:?} the latest checkpoint covers {signed} of {entries} entries"
                )
            })
            .await?;
    }
}

/// Runs every check; the first that fails is the error.
pub async fn check(
    databases: &RunDatabases,
    verifier: &CheckpointVerifier,
) -> anyhow::Result<LogReport> {
    let mut report = LogReport::default();
    let mut audit = connect(&databases.audit_url, "audit").await?;

    // Entries: contiguous indices, one per event id, bytes that hash to their leaf.
    let rows: Vec<(i64, String, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT idx, event_id, entry, leaf_hash FROM audit_entries ORDER BY idx")
            .fetch_all(&mut audit)
            .await
            .context("reading the audit log")?;
    let mut index_of_event: HashMap<String, u64> = HashMap::with_capacity(rows.len());
    let mut tree = MerkleTree::new();
    for (expected, (index, event_id, bytes, stored_leaf)) in rows.iter().enumerate() {
        ensure!(
            *index == expected as i64,
            "audit entry {expected} is missing (index {index} in its place)"
        );
        let leaf = leaf_hash(bytes);
        let stored = hash_from_slice(stored_leaf)
            .map_err(|_| anyhow::anyhow!("entry {index}: stored leaf hash is not 32 bytes"))?;
        ensure!(
            leaf == stored,
            "entry {index}: its bytes do not hash to its leaf hash"
        );
        tree.push(leaf);
        if index_of_event
            .insert(event_id.clone(), expected as u64)
            .is_some()
        {
            bail!("event {event_id} is in the audit log twice");
        }
    }
    report.entries = tree.len();

    // Checkpoints: each verifies, matches the tree, and is consistent with the one before.
    let checkpoints: Vec<(i64, Vec<u8>, String)> = sqlx::query_as(
        "SELECT tree_size, root_hash, note FROM audit_checkpoints ORDER BY tree_size",
    )
    .fetch_all(&mut audit)
    .await
    .context("reading the checkpoints")?;
    audit.close().await.ok();
    let mut previous: Option<(u64, tryggdel_merkle::Hash)> = None;
    for (size, root, note) in &checkpoints {
        let size = u64::try_from(*size).context("negative checkpoint size")?;
        let signed = verifier
            .verify(note)
            .with_context(|| format!("the checkpoint at size {size} does not verify"))?;
        let root = hash_from_slice(root)
            .map_err(|_| anyhow::anyhow!("checkpoint {size}: root is not 32 bytes"))?;
        ensure!(
            signed.size() == size && *signed.root() == root,
            "checkpoint {size}: the stored columns differ from the signed note"
        );
        ensure!(
            size <= tree.len(),
            "checkpoint {size} covers more than the {} stored entries",
            tree.len()
        );
        ensure!(
            tree.root_at(size)? == root,
            "the entries do not reproduce the signed root at size {size}"
        );
        if let Some((first, first_root)) = previous
            && first > 0
            && first < size
        {
            let proof = tree.consistency_proof(first, size)?;
            verify_consistency(first, size, &first_root, &root, &proof).map_err(|error| {
                anyhow::anyhow!("checkpoints {first} and {size} are not consistent: {error}")
            })?;
        }
        previous = Some((size, root));
    }
    report.checkpoints = checkpoints.len();
    let last = previous.map(|(size, _)| size).unwrap_or(0);
    ensure!(
        last == tree.len(),
        "the latest checkpoint covers {last} of {} entries",
        tree.len()
    );

    // Every outbox event is in the log, and a disclosure's changes in commit order per
    // (service, disclosure). Reads (the access log's `*.read` and `*.listed` events) change
    // nothing and are written concurrently, so only their presence is checked.
    for (service, url) in [
        ("disclosure", &databases.disclosure_url),
        ("notification", &databases.notification_url),
    ] {
        let mut connection = connect(url, service).await?;
        let events: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT seq, event_id, disclosure_id, event_type FROM outbox ORDER BY seq",
        )
        .fetch_all(&mut connection)
        .await
        .with_context(|| format!("reading the {service} outbox"))?;
        connection.close().await.ok();
        let mut last_index: HashMap<&str, (u64, i64)> = HashMap::new();
        for (seq, event_id, disclosure_id, event_type) in &events {
            let index = *index_of_event.get(event_id).with_context(|| {
                format!("{service} event {event_id} (outbox seq {seq}) is not in the audit log")
            })?;
            if event_type.ends_with(".read") || event_type.ends_with(".listed") {
                report.events_in_log += 1;
                continue;
            }
            if let Some((before, before_seq)) = last_index.get(disclosure_id.as_str())
                && *before > index
            {
                bail!(
                    "{service} events of disclosure {disclosure_id} are out of order in the log: \
                     seq {before_seq} at index {before}, later seq {seq} at index {index}"
                );
            }
            last_index.insert(disclosure_id, (index, *seq));
            report.events_in_log += 1;
        }
        match service {
            "disclosure" => report.disclosure_events = events.len(),
            _ => report.notification_events = events.len(),
        }
    }

    // Deliveries: one per approved disclosure, gap-free per region, and what the disclosure
    // service recorded agrees.
    let mut notification = connect(&databases.notification_url, "notification").await?;
    let deliveries: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT disclosure_id, police_region, sequence, acknowledged_at FROM deliveries \
         ORDER BY police_region, sequence",
    )
    .fetch_all(&mut notification)
    .await
    .context("reading the deliveries")?;
    notification.close().await.ok();
    let mut by_region: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (_, region, sequence, _) in &deliveries {
        by_region.entry(region).or_default().push(*sequence);
    }
    for (region, sequences) in &by_region {
        for (position, sequence) in sequences.iter().enumerate() {
            ensure!(
                *sequence == position as i64 + 1,
                "region {region}: sequence {} is followed by {sequence}",
                position
            );
        }
    }
    let mut disclosure = connect(&databases.disclosure_url, "disclosure").await?;
    let approved: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, state FROM disclosures WHERE state IN ('approved', 'delivered', 'acknowledged')",
    )
    .fetch_all(&mut disclosure)
    .await
    .context("reading the disclosures")?;
    disclosure.close().await.ok();
    let delivered: HashSet<&str> = deliveries.iter().map(|(id, ..)| id.as_str()).collect();
    for (id, state) in &approved {
        ensure!(
            delivered.contains(id.as_str()),
            "disclosure {id} is {state} but the police never got it"
        );
    }
    ensure!(
        delivered.len() == approved.len(),
        "{} deliveries for {} approved disclosures",
        delivered.len(),
        approved.len()
    );
    report.deliveries = deliveries.len();
    report.regions = by_region.len();
    report.acknowledged = deliveries
        .iter()
        .filter(|(.., acknowledged)| acknowledged.is_some())
        .count();
    Ok(report)
}
