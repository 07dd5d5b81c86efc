//! The audit log's side of the benchmarks: events as the disclosure relay reports them, and a
//! log bulk-loaded to millions of real entries (serialised and hashed exactly as the service
//! does, written with the store's own batch inserts — COPY on PostgreSQL —, closed by a
//! checkpoint signed with the log's key) for the service to open, verify and prove from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::RngCore as _;
use tryggdel_audit::entry::{EntryBody, KeyScope, body_from_event};
use tryggdel_audit::log::sealed_entry;
use tryggdel_audit::store::{AuditStore, NewEntry, PersonalKey, StoredCheckpoint};
use tryggdel_merkle::MerkleTree;
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner};
use tryggdel_proto::audit::v1::{Actor, AuditEvent, ObjectRef, Outcome};
use tryggdel_storage::Database;

/// Entries per transaction while bulk loading.
const LOAD_CHUNK: usize = 20_000;
/// How long the database may take over one chunk before the load gives up.
const CHUNK_DEADLINE: Duration = Duration::from_secs(120);

/// A random keyed person reference (`hmac-sha256:<64 hex>`), as disclosure computes them.
pub fn random_person_ref() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("hmac-sha256:{hex}")
}

/// A `disclosure.approved` event as disclosure's audit relay sends it: actor, disclosure,
/// legal basis and registry version, recipient, one person reference, trace id and details.
pub fn relay_event() -> AuditEvent {
    let disclosure_id = uuid::Uuid::now_v7().to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        action: "disclosure.approved".into(),
        occurred_at_unix_ms: i64::try_from(now).unwrap_or(i64::MAX),
        actor: Some(Actor {
            user_id: "beslut-bollnas".into(),
            roles: vec!["decision_maker".into()],
            organisation: "bollnas-kommun".into(),
            unit: "Enheten för våld i nära relationer".into(),
        }),
        objects: vec![ObjectRef {
            kind: "disclosure".into(),
            id: disclosure_id.clone(),
        }],
        disclosure_id,
        organisation: "bollnas-kommun".into(),
        legal_basis_id: "OSL-10-18c".into(),
        registry_version: "sha256:5d41402abc4b2a76b9719d911017c592ae7f4c1b".into(),
        purpose: "disclosure to the police to prevent crime".into(),
        recipient: "polisen/mitt".into(),
        outcome: Outcome::Success as i32,
        person_refs: vec![random_person_ref()],
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        details: [
            ("version".to_owned(), "3".to_owned()),
            (
                "payload_sha256".to_owned(),
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
            ),
        ]
        .into_iter()
        .collect(),
        ..AuditEvent::default()
    }
}

/// What a bulk load did.
#[derive(Clone, Debug)]
pub struct BulkLoad {
    pub entries: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub checkpoint: StoredCheckpoint,
}

/// Writes `count` real entries and a checkpoint over them, signed by `signer`, into the
/// audit database at `database_url` (migrated here if new), as the service would have.
pub async fn bulk_load(
    database_url: &str,
    signer: &CheckpointSigner,
    count: u64,
) -> anyhow::Result<BulkLoad> {
    bulk_load_with(database_url, signer, count, Arc::new(|_| relay_event())).await
}

/// Makes the event at an index of a bulk-loaded log.
pub type EventMaker = Arc<dyn Fn(u64) -> AuditEvent + Send + Sync>;

/// [`bulk_load`] of the events `make` gives for indices `0..count`.
pub async fn bulk_load_with(
    database_url: &str,
    signer: &CheckpointSigner,
    count: u64,
    make: EventMaker,
) -> anyhow::Result<BulkLoad> {
    let started = Instant::now();
    // A chunk's statements may take longer than a call may (the services' deadline).
    let database = Database::connect_with(
        database_url,
        "audit",
        &tryggdel_audit::MIGRATIONS,
        tryggdel_storage::DatabaseOptions {
            deadline: CHUNK_DEADLINE,
        },
    )
    .await
    .context("audit database")?;
    let store = AuditStore::new(database.clone());
    let mut tree = MerkleTree::new();
    let mut bytes_written = 0u64;
    let mut timings = [Duration::ZERO; 3];
    // The next chunk's bodies are generated (on a blocking thread) while the database takes
    // the previous one; then their persons' and disclosures' keys are made as the log makes
    // them, and the entries sealed and hashed.
    let generate = |first: u64| {
        let chunk = (count - first).min(LOAD_CHUNK as u64);
        let make = make.clone();
        (
            first + chunk,
            tokio::task::spawn_blocking(move || bodies(first, chunk, &make)),
        )
    };
    let mut pending = (count > 0).then(|| generate(0));
    while let Some((next, generating)) = pending.take() {
        let bodies = generating.await.context("generating entries")??;
        if next < count {
            pending = Some(generate(next));
        }
        let first = next - bodies.len() as u64;
        let phase = Instant::now();
        let scopes: Vec<KeyScope> = bodies.iter().flat_map(EntryBody::key_scopes).collect();
        let keys = tokio::time::timeout(CHUNK_DEADLINE, store.personal_keys(&scopes))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "bulk load: making keys took over {} s",
                    CHUNK_DEADLINE.as_secs()
                )
            })?
            .context("bulk load: personal keys")?;
        timings[0] += phase.elapsed();
        let phase = Instant::now();
        let entries = tokio::task::spawn_blocking(move || seal(first, bodies, &keys))
            .await
            .context("sealing entries")??;
        timings[1] += phase.elapsed();
        let phase = Instant::now();
        for entry in &entries {
            tree.push(entry.leaf_hash);
            bytes_written += entry.bytes.len() as u64;
        }
        write_chunk(&store, &entries, first, next).await?;
        timings[2] += phase.elapsed();
    }
    println!(
        "bulk load: {:.1} s making keys, {:.1} s sealing and hashing, {:.1} s writing",
        timings[0].as_secs_f64(),
        timings[1].as_secs_f64(),
        timings[2].as_secs_f64()
    );
    let root = tree.root();
    let note = signer
        .sign(&Checkpoint::new(signer.name(), count, root).context("checkpoint")?)
        .context("signing the checkpoint")?;
    let checkpoint = StoredCheckpoint {
        tree_size: count,
        root,
        note,
        signed_at: time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
    };
    let mut writer = store.begin_write().await.context("bulk load")?;
    writer
        .insert_checkpoint(&checkpoint)
        .await
        .context("bulk load: checkpoint")?;
    writer.commit().await.context("bulk load: commit")?;
    if database.backend() == tryggdel_storage::Backend::Postgres {
        // Fresh statistics and visibility map, as a log that grew slowly would have them from
        // autovacuum (which vacuums a table after inserts too): index-only scans, such as the
        // review's lookups of a case's relations, then read the index alone. The connection
        // has the bulk loader's deadline, not a call's.
        sqlx::query("VACUUM ANALYZE")
            .execute(database.pool())
            .await
            .context("vacuuming and analysing the audit tables")?;
    }
    database.close().await;
    Ok(BulkLoad {
        entries: count,
        bytes: bytes_written,
        elapsed: started.elapsed(),
        checkpoint,
    })
}

/// Times a chunk's write is tried before the load fails.
const WRITE_ATTEMPTS: u32 = 3;

/// Writes the chunk `entries` (indices `first..next`) in one transaction. A write that stalls
/// is given up after [`CHUNK_DEADLINE`] (its connection closed, its transaction rolled back) and
/// tried again, unless it committed after all. Stalls happen: sqlx 0.8's TLS socket can wait
/// for the server to send while the server waits for the rest of a COPY, when the socket's
/// send buffer fills (sqlx issue 4248, fixed in sqlx 0.9.1).
async fn write_chunk(
    store: &AuditStore,
    entries: &[NewEntry],
    first: u64,
    next: u64,
) -> anyhow::Result<()> {
    for attempt in 1..=WRITE_ATTEMPTS {
        let written = tokio::time::timeout(CHUNK_DEADLINE, async {
            let mut writer = store.begin_write().await.context("bulk load")?;
            writer
                .insert_entries(entries)
                .await
                .context("bulk load: inserting entries")?;
            writer.commit().await.context("bulk load: commit")
        })
        .await;
        match written {
            Ok(result) => return result,
            Err(_) if store.entry(next - 1).await.context("bulk load")?.is_some() => {
                return Ok(());
            }
            Err(_) => eprintln!(
                "bulk load: writing entries {first}..{next} stalled for {} s (attempt \
                 {attempt} of {WRITE_ATTEMPTS}); nothing of it was committed",
                CHUNK_DEADLINE.as_secs()
            ),
        }
    }
    anyhow::bail!(
        "bulk load: writing entries {first}..{next} stalled {WRITE_ATTEMPTS} times, {} s each",
        CHUNK_DEADLINE.as_secs()
    )
}

/// The bodies of entries `first..first + count` of `make`, validated as the log does.
fn bodies(first: u64, count: u64, make: &EventMaker) -> anyhow::Result<Vec<EntryBody>> {
    (first..first + count)
        .map(|index| {
            body_from_event("event", &make(index), "disclosure")
                .map_err(|error| anyhow::anyhow!("benchmark event refused: {error}"))
        })
        .collect()
}

/// `bodies` as the entries from index `first` on, sealed under `keys` and hashed exactly as
/// the sequencer writes them.
fn seal(
    first: u64,
    bodies: Vec<EntryBody>,
    keys: &HashMap<KeyScope, PersonalKey>,
) -> anyhow::Result<Vec<NewEntry>> {
    let recorded_at =
        i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(i64::MAX);
    bodies
        .into_iter()
        .zip(first..)
        .map(|(body, index)| sealed_entry(body, index, recorded_at, keys))
        .collect()
}
