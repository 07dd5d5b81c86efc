//! Storage plumbing shared by the services: one connection pool type that speaks SQLite (the
//! embedded default) or PostgreSQL (production), chosen by URL at start, and the AEAD used to
//! encrypt protected personal data at rest.
//!
//! Invariants:
//! - This crate knows no table of any service: each service owns its schema and migrations,
//!   one directory per backend, and this crate only connects and runs them. The one shared
//!   convention is the shape of an `outbox` table, and [`write`] is the one way a change and
//!   its outbox events are stored together.
//! - Every query a service writes runs unchanged on both backends (`$1` placeholders, TEXT ids,
//!   BIGINT times and flags); the per-service conformance suites run on both to keep it so.
//!   What the `Any` driver cannot do at all (`COPY`) goes through [`Database::postgres_pool`],
//!   next to a portable twin for SQLite in the service that needs it.
//! - On PostgreSQL each service lives in its own schema; on SQLite in its own file.
//! - A database outage is an [`Outage`], told apart from a defect in one place ([`outage`]);
//!   once the probe has seen a PostgreSQL database down, its pools refuse at once until the
//!   probe finds it answering, and no call waits longer than the configured deadline for a
//!   connection or a statement.
//! - Sealed values are bound to their context (service, row id, field): a ciphertext moved to
//!   another row or field does not open.
#![forbid(unsafe_code)]

pub mod copy;
mod database;
mod health;
mod migrations;
mod outbox;
mod sealing;

pub use database::{Backend, Database, DatabaseError, Migrations, is_unique_violation};
pub use health::{
    CommitOutcomeUnknown, DEFAULT_DEADLINE, DatabaseHealth, DatabaseOptions, DatabaseState, Outage,
    PROBE_INTERVAL_DOWN, PROBE_INTERVAL_UP, PROBE_TIMEOUT, commit, commit_outcome_unknown, outage,
};
pub use migrations::{InvalidMigration, MigrationFile};
pub use outbox::{
    AnyQuery, Arguments, Change, Companion, OutboxDestination, OutboxEvent, PendingEvent, Written,
    events_without_audit_event, placeholders, record_events, set_audit_event, write, write_in,
};
pub use sealing::{FieldCipher, FieldKey, SealingError};
