//! Persistence of deliveries, receipts, escalations, follow-up questions and the outbox, on
//! SQLite or PostgreSQL through sqlx `Any` (the same SQL on both).
//!
//! Every change writes its outbox event in the same transaction. Changes that may race
//! (a second Deliver, two acknowledgements, an acknowledgement against an escalation, two
//! replicas escalating) are settled by the database: a unique key or a conditional UPDATE
//! decides the winner, and the loser reads what won.
//!
//! - [`records`]: the rows as typed values, decoded at this edge (nothing above the store
//!   reads a column).
//! - [`queries`]: [`NotificationStore`] and its statements on deliveries, escalations and
//!   follow-up questions, each with its outbox event.
//! - [`outbox`]: what an outbox event carries, its types, and the relays' reads and marks.

pub mod outbox;
pub mod queries;
pub mod records;

use tryggdel_storage::Migrations;

pub use outbox::{
    EVENT_ACKNOWLEDGED, EVENT_DELIVERED, EVENT_ESCALATED, EVENT_FOLLOW_UP_ASKED, EVENT_READ,
    EVENT_RECALL_ACKNOWLEDGED, EVENT_RECALLED, OutboxActor, OutboxPayload, OutboxReceipt,
    READ_DISCLOSURES,
};
pub use queries::NotificationStore;
pub use records::{
    DeliverOutcome, DeliveryRow, EscalationRow, FollowUpRow, NewDelivery, OpenDeliveries,
    RecallAcknowledgement, StoreError, StoredRecall, StoredReceipt, payload_context,
    question_context, recall_reason_context,
};
pub use tryggdel_storage::OutboxEvent;

/// The notification service's migrations on both backends.
pub const MIGRATIONS: Migrations = tryggdel_storage::migrations!([
    "0001_notifications.sql",
    "0002_outbox_audit_event.sql",
    "0003_outbox_without_audit_event.sql",
    "0004_recalls.sql",
    "0005_delivery_person_refs.sql",
]);
