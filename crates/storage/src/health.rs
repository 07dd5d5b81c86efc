//! Whether a service's database answers, and what a database error means for the caller.
//!
//! [`DatabaseHealth`] is the one state a service shares about its database: up, or down since
//! a probe found it unreachable. On PostgreSQL a background probe (`SELECT 1` on a connection
//! of its own, every [`PROBE_INTERVAL_UP`] while up and [`PROBE_INTERVAL_DOWN`] while down,
//! each within [`PROBE_TIMEOUT`]) moves it; while it is down the [`Database`](crate::Database)
//! hands out pools that refuse at once, so calls fail fast instead of waiting out a pool
//! timeout each. SQLite is a file of the service's own: it is always up, and its failures
//! (a full disk, a read-only directory) are told by [`outage`].
//!
//! [`outage`] is the one classification of a `sqlx::Error` into what a caller may retry: the
//! database unreachable, not answering within the deadline, a commit whose outcome is unknown,
//! a full disk or a read-only file. Anything else is a defect, not an outage.

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgPool};
use sqlx::sqlite::SqliteError;
use sqlx::{ConnectOptions, Connection, Executor};
use tokio::sync::watch;

/// How long any call may wait on the database by default (a pool's acquire timeout and the
/// server's `statement_timeout`).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);
/// How often the probe asks a database that is up.
pub const PROBE_INTERVAL_UP: Duration = Duration::from_millis(500);
/// How often the probe asks a database that is down: its return is seen within this.
pub const PROBE_INTERVAL_DOWN: Duration = Duration::from_millis(250);
/// How long one probe (connecting if need be, and `SELECT 1`) may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Probes in a row that must fail without a sign of the server being gone (no answer in time,
/// too many connections, any other refusal) before the database counts as down: a slow answer
/// under load is not an outage. A refused, reset or closed connection, or a server shutting
/// down or starting up, is at once.
const DOUBTS_BEFORE_DOWN: u32 = 3;

/// How a service uses its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// The longest any call waits on the database: for a connection, and (PostgreSQL) for a
    /// statement to finish.
    pub deadline: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> DatabaseOptions {
        DatabaseOptions {
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// The database's state as the probe last found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseState {
    Up,
    /// Unreachable, with the probe's reason (no addresses or credentials in it).
    Down {
        reason: String,
    },
}

impl DatabaseState {
    pub fn is_up(&self) -> bool {
        matches!(self, DatabaseState::Up)
    }
}

/// The shared state of one service's database (cheap to clone).
#[derive(Clone, Debug)]
pub struct DatabaseHealth {
    state: Arc<watch::Sender<DatabaseState>>,
}

impl DatabaseHealth {
    /// A database that is up until told otherwise.
    pub fn up() -> DatabaseHealth {
        DatabaseHealth {
            state: Arc::new(watch::Sender::new(DatabaseState::Up)),
        }
    }

    pub fn is_up(&self) -> bool {
        self.state.borrow().is_up()
    }

    pub fn state(&self) -> DatabaseState {
        self.state.borrow().clone()
    }

    /// Changes whenever the database goes down or comes back (not on every probe).
    pub fn subscribe(&self) -> watch::Receiver<DatabaseState> {
        self.state.subscribe()
    }

    /// Waits until the database is up (at once if it is).
    pub async fn until_up(&self) {
        let mut changes = self.state.subscribe();
        let _ = changes.wait_for(DatabaseState::is_up).await;
    }

    /// Waits for the next return of the database after an outage (never, if it never goes
    /// down): what a task backing off after failures waits for besides its timer.
    pub async fn recovered(&self) {
        let mut changes = self.state.subscribe();
        if changes
            .wait_for(|state| !state.is_up())
            .await
            .map(drop)
            .is_err()
        {
            return std::future::pending().await;
        }
        let _ = changes.wait_for(DatabaseState::is_up).await;
    }

    /// Records the probe's finding; true if it changed the state.
    pub fn set(&self, state: DatabaseState) -> bool {
        self.state.send_if_modified(|current| {
            if current.is_up() == state.is_up() {
                false
            } else {
                *current = state;
                true
            }
        })
    }
}

/// What a database error means for the caller, when it is an outage rather than a defect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// Refused, reset or closed connections, a server shutting down, a pool closed while the
    /// database is down.
    Unreachable,
    /// No connection or no answer within the deadline.
    Timeout,
    /// The connection was lost while a change was committing: it may or may not be applied.
    CommitOutcomeUnknown,
    /// The disk (or the server's) is full.
    DiskFull,
    /// The database file or server only reads.
    ReadOnly,
    /// The database file cannot be opened.
    CannotOpen,
    /// The disk failed to read or write.
    DiskError,
}

impl Outage {
    /// What the caller is told.
    pub fn message(self) -> &'static str {
        match self {
            Outage::Unreachable => "the database is unavailable; retry later",
            Outage::Timeout => "the database did not answer within the deadline; retry later",
            Outage::CommitOutcomeUnknown => {
                "the database connection was lost while committing: the change may or may not \
                 have been applied; retry with the same request id"
            }
            Outage::DiskFull => {
                "the database's disk is full: nothing was written; retry once space is freed"
            }
            Outage::ReadOnly => {
                "the database is read-only (check the data directory's permissions and mount): \
                 nothing was written"
            }
            Outage::CannotOpen => {
                "the database file cannot be opened (check that the data directory exists and \
                 is writable): nothing was written"
            }
            Outage::DiskError => {
                "the database's disk failed to read or write: nothing was written; retry later"
            }
        }
    }
}

/// The error of a commit whose outcome is unknown, carried inside `sqlx::Error::Io` so the
/// functions that return `sqlx::Error` keep their type (see [`commit_outcome_unknown`]).
#[derive(Debug, thiserror::Error)]
#[error("the outcome of the commit is unknown")]
pub struct CommitOutcomeUnknown {
    #[source]
    pub cause: sqlx::Error,
}

/// The outage `error` is, or None for a defect (a constraint, a bad statement, a row that does
/// not decode) that a retry would not mend.
pub fn outage(error: &sqlx::Error) -> Option<Outage> {
    match error {
        sqlx::Error::Io(io) => {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<CommitOutcomeUnknown>())
            {
                Some(Outage::CommitOutcomeUnknown)
            } else {
                Some(Outage::Unreachable)
            }
        }
        sqlx::Error::Tls(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Some(Outage::Unreachable)
        }
        sqlx::Error::PoolTimedOut => Some(Outage::Timeout),
        sqlx::Error::Database(database) => {
            if let Some(postgres) = database.try_downcast_ref::<PgDatabaseError>() {
                postgres_outage(postgres.code())
            } else if database.try_downcast_ref::<SqliteError>().is_some() {
                // The extended result code, in decimal.
                database
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .and_then(sqlite_outage)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// PostgreSQL's SQLSTATEs that mean the server cannot serve now.
fn postgres_outage(code: &str) -> Option<Outage> {
    match code {
        // connection_exception and its subclasses
        _ if code.starts_with("08") => Some(Outage::Unreachable),
        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
        "57P01" | "57P02" | "57P03" | "53300" => Some(Outage::Unreachable),
        // query_canceled (the statement timeout), lock_not_available
        "57014" | "55P03" => Some(Outage::Timeout),
        "53100" => Some(Outage::DiskFull),
        // read_only_sql_transaction: a standby, or a server made read-only
        "25006" => Some(Outage::ReadOnly),
        _ => None,
    }
}

/// SQLite's result codes (extended: the primary code is the low byte) that mean the file
/// cannot be written now.
fn sqlite_outage(code: i32) -> Option<Outage> {
    match code & 0xff {
        // SQLITE_FULL
        13 => Some(Outage::DiskFull),
        // SQLITE_READONLY
        8 => Some(Outage::ReadOnly),
        // SQLITE_CANTOPEN
        14 => Some(Outage::CannotOpen),
        // SQLITE_IOERR
        10 => Some(Outage::DiskError),
        // SQLITE_BUSY, SQLITE_LOCKED: the busy timeout passed
        5 | 6 => Some(Outage::Timeout),
        _ => None,
    }
}

/// `error`, from a commit (or a one-statement change sent on a live connection), marked as of
/// unknown outcome when it is a lost connection: the server may have committed before the
/// answer was lost. Any other error is returned as it is (the change was not applied).
pub fn commit_outcome_unknown(error: sqlx::Error) -> sqlx::Error {
    match outage(&error) {
        // A statement cancelled at the deadline (a Timeout) was rolled back: its outcome is known.
        Some(Outage::Unreachable) if !is_pool_error(&error) => {
            sqlx::Error::Io(std::io::Error::other(CommitOutcomeUnknown { cause: error }))
        }
        _ => error,
    }
}

/// Errors of asking the pool for a connection: nothing was sent.
fn is_pool_error(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
}

/// Commits `transaction`; a connection lost on the way is [`Outage::CommitOutcomeUnknown`].
pub async fn commit<DB: sqlx::Database>(
    transaction: sqlx::Transaction<'_, DB>,
) -> Result<(), sqlx::Error> {
    transaction.commit().await.map_err(commit_outcome_unknown)
}

/// A socket that does not exist: connecting to it fails at once with an error the pools do not
/// retry (they retry a refused connection until their acquire timeout).
const NOWHERE: &str = "/nonexistent/tryggdel-database-down";

/// The real pools of a PostgreSQL database, and how they connect while it is up and while it is
/// down. A call that was already waiting for a connection when the database went away would
/// otherwise go on trying the refused server until the deadline; pointed nowhere, its next try
/// (within a fifth of the deadline) fails instead.
pub(crate) struct PoolGate {
    pub any: AnyPool,
    /// The access records' pool, on the same server as `any`.
    pub records: AnyPool,
    pub any_options: AnyConnectOptions,
    pub native: PgPool,
    pub native_options: PgConnectOptions,
}

impl PoolGate {
    fn close(&self) {
        if let Ok(nowhere) = format!("postgres://tryggdel@localhost/down?host={NOWHERE}")
            .parse::<AnyConnectOptions>()
        {
            self.records.set_connect_options(nowhere.clone());
            self.any.set_connect_options(nowhere);
        }
        self.native
            .set_connect_options(self.native_options.clone().socket(NOWHERE));
    }

    fn open(&self) {
        self.any.set_connect_options(self.any_options.clone());
        self.records.set_connect_options(self.any_options.clone());
        self.native.set_connect_options(self.native_options.clone());
    }
}

/// Probes a PostgreSQL server until `stop` changes (or its sender is dropped), setting
/// `health` and opening or closing `gate` with it.
pub(crate) async fn probe_postgres(
    health: DatabaseHealth,
    options: PgConnectOptions,
    gate: PoolGate,
    mut stop: watch::Receiver<bool>,
) {
    let mut connection: Option<PgConnection> = None;
    let mut doubts = 0;
    loop {
        let interval = if health.is_up() {
            PROBE_INTERVAL_UP
        } else {
            PROBE_INTERVAL_DOWN
        };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
        let answered = tokio::time::timeout(PROBE_TIMEOUT, probe_once(&mut connection, &options));
        let (reason, gone) = match answered.await {
            Ok(Ok(())) => {
                doubts = 0;
                if health.set(DatabaseState::Up) {
                    gate.open();
                }
                continue;
            }
            Ok(Err(error)) => (describe(&error), is_gone(&error)),
            Err(_) => (
                format!("no answer within {} ms", PROBE_TIMEOUT.as_millis()),
                false,
            ),
        };
        connection = None;
        doubts += 1;
        if !gone && doubts < DOUBTS_BEFORE_DOWN {
            continue;
        }
        let reason = if gone {
            reason
        } else {
            format!("{reason}, {doubts} times in a row")
        };
        if health.set(DatabaseState::Down { reason }) {
            gate.close();
        }
    }
    if let Some(connection) = connection {
        let _ = connection.close().await;
    }
}

/// True when `error` shows the server gone: no connection, or one it is ending.
fn is_gone(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

async fn probe_once(
    connection: &mut Option<PgConnection>,
    options: &PgConnectOptions,
) -> Result<(), sqlx::Error> {
    if connection.is_none() {
        *connection = Some(options.connect().await?);
    }
    match connection {
        Some(connection) => connection.execute("SELECT 1").await.map(drop),
        None => Ok(()),
    }
}

/// The probe's finding in words: the kind of failure, never an address or a user.
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => format!("connection failed: {}", io.kind()),
        sqlx::Error::Tls(_) => "tls failed".to_owned(),
        sqlx::Error::Database(database) => match database.code() {
            Some(code) => format!("the server refused: sqlstate {code}"),
            None => "the server refused".to_owned(),
        },
        other => other.to_string().chars().take(80).collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(kind))
    }

    #[test]
    fn lost_connections_and_pool_timeouts_are_outages() {
        assert_eq!(
            outage(&io(std::io::ErrorKind::ConnectionRefused)),
            Some(Outage::Unreachable)
        );
        assert_eq!(
            outage(&io(std::io::ErrorKind::ConnectionReset)),
            Some(Outage::Unreachable)
        );
        assert_eq!(outage(&sqlx::Error::PoolTimedOut), Some(Outage::Timeout));
        assert_eq!(outage(&sqlx::Error::PoolClosed), Some(Outage::Unreachable));
        assert_eq!(
            outage(&sqlx::Error::WorkerCrashed),
            Some(Outage::Unreachable)
        );
    }

    #[test]
    fn only_a_lost_connection_takes_the_database_down_at_once() {
        assert!(is_gone(&io(std::io::ErrorKind::ConnectionRefused)));
        assert!(is_gone(&io(std::io::ErrorKind::UnexpectedEof)));
        assert!(!is_gone(&sqlx::Error::PoolTimedOut));
        assert!(!is_gone(&sqlx::Error::Protocol("odd".into())));
    }

    #[test]
    fn defects_are_not_outages() {
        assert_eq!(outage(&sqlx::Error::RowNotFound), None);
        assert_eq!(
            outage(&sqlx::Error::Protocol("nothing written".into())),
            None
        );
        assert_eq!(outage(&sqlx::Error::ColumnNotFound("state".into())), None);
    }

    #[test]
    fn postgres_codes_of_a_server_that_cannot_serve() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03", "53300"] {
            assert_eq!(postgres_outage(code), Some(Outage::Unreachable), "{code}");
        }
        assert_eq!(postgres_outage("57014"), Some(Outage::Timeout));
        assert_eq!(postgres_outage("53100"), Some(Outage::DiskFull));
        assert_eq!(postgres_outage("25006"), Some(Outage::ReadOnly));
        // unique_violation, syntax error, serialization failure: defects or the caller's.
        for code in ["23505", "42601", "40001", "22P02"] {
            assert_eq!(postgres_outage(code), None, "{code}");
        }
    }

    #[test]
    fn sqlite_codes_primary_and_extended() {
        assert_eq!(sqlite_outage(13), Some(Outage::DiskFull));
        assert_eq!(sqlite_outage(8), Some(Outage::ReadOnly));
        // SQLITE_READONLY_DBMOVED, SQLITE_READONLY_DIRECTORY
        assert_eq!(sqlite_outage(1032), Some(Outage::ReadOnly));
        assert_eq!(sqlite_outage(1544), Some(Outage::ReadOnly));
        assert_eq!(sqlite_outage(14), Some(Outage::CannotOpen));
        // SQLITE_IOERR_WRITE
        assert_eq!(sqlite_outage(778), Some(Outage::DiskError));
        assert_eq!(sqlite_outage(5), Some(Outage::Timeout));
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_ERROR
        assert_eq!(sqlite_outage(2067), None);
        assert_eq!(sqlite_outage(1), None);
    }

    #[test]
    fn a_commit_on_a_lost_connection_has_an_unknown_outcome() {
        let lost = commit_outcome_unknown(io(std::io::ErrorKind::ConnectionReset));
        assert_eq!(outage(&lost), Some(Outage::CommitOutcomeUnknown));
        assert!(
            Outage::CommitOutcomeUnknown
                .message()
                .contains("may or may not have been applied; retry with the same request id")
        );
        // Never sent: the pool had no connection to give.
        let never_sent = commit_outcome_unknown(sqlx::Error::PoolTimedOut);
        assert_eq!(outage(&never_sent), Some(Outage::Timeout));
        // A defect stays one.
        let defect = commit_outcome_unknown(sqlx::Error::RowNotFound);
        assert_eq!(outage(&defect), None);
    }

    #[tokio::test]
    async fn health_changes_only_on_transitions() {
        let health = DatabaseHealth::up();
        let mut changes = health.subscribe();
        assert!(!health.set(DatabaseState::Up));
        assert!(health.set(DatabaseState::Down {
            reason: "refused".into()
        }));
        assert!(!health.set(DatabaseState::Down {
            reason: "refused again".into()
        }));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        let recovered = health.recovered();
        futures::pin_mut!(recovered);
        assert!(futures::poll!(recovered.as_mut()).is_pending());
        assert!(health.set(DatabaseState::Up));
        tokio::time::timeout(Duration::from_secs(1), recovered)
            .await
            .unwrap();
        assert!(health.is_up());
        tokio::time::timeout(Duration::from_secs(1), health.until_up())
            .await
            .unwrap();
    }
}
