//! Refusals at the edge, for whoever runs a service: a refused TLS handshake and a refused
//! caller (token, or certificate and token together) are each logged at WARN with the reason
//! and the peer's address, never the token, and counted:
//! `tryggdel.tls.handshake_failures{reason}` and `tryggdel.auth.refusals{reason}`.
//!
//! A burst from one peer must not flood the log: per peer address and reason at most one line
//! every [`LOG_INTERVAL`], and the next line says how many were left out since the last one
//! (`suppressed`). The counters count every refusal.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter};
use tryggdel_tls::HandshakeFailure;

/// At most one log line per peer address and reason in this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Peer addresses and reasons remembered at once; beyond this, peers without a line in the
/// current interval share one allowance per reason, so many peers cannot flood the log or
/// grow the memory either.
const MAX_TRACKED: usize = 4096;

/// Logs and counts refusals (see the module documentation).
pub struct Refusals {
    handshake_failures: Counter<u64>,
    auth_refusals: Counter<u64>,
    log: LogAllowance,
}

/// Which lines may be written now: per (peer address, reason), when the last line was and how
/// many were left out since.
struct LogAllowance {
    interval: Duration,
    windows: Mutex<HashMap<(Option<IpAddr>, &'static str), Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    logged_at: Instant,
    suppressed: u64,
}

impl Refusals {
    /// Refusals counted with instruments of `meter` (see [`crate::metrics::meter`]).
    pub fn new(meter: &Meter) -> Refusals {
        Refusals {
            handshake_failures: meter
                .u64_counter("tryggdel.tls.handshake_failures")
                .with_unit("{handshake}")
                .with_description("TLS handshakes the listener refused, by reason")
                .build(),
            auth_refusals: meter
                .u64_counter("tryggdel.auth.refusals")
                .with_unit("{request}")
                .with_description("Calls refused when authenticating the caller, by reason")
                .build(),
            log: LogAllowance::new(LOG_INTERVAL),
        }
    }

    /// A refused TLS handshake.
    pub fn handshake_failed(&self, failure: &HandshakeFailure) {
        let reason = failure.reason.as_str();
        self.handshake_failures
            .add(1, &[KeyValue::new("reason", reason)]);
        if let Some(suppressed) = self
            .log
            .admit(Some(failure.peer.ip()), reason, Instant::now())
        {
            tracing::warn!(
                peer = %failure.peer,
                reason,
                suppressed,
                "tls handshake refused"
            );
        }
    }

    /// A caller refused while authenticating, from `peer`, for `reason` (a short fixed name
    /// such as `expired`), explained by `detail` (never the token).
    pub fn caller_refused(&self, peer: Option<SocketAddr>, reason: &'static str, detail: &str) {
        self.auth_refusals
            .add(1, &[KeyValue::new("reason", reason)]);
        if let Some(suppressed) = self
            .log
            .admit(peer.map(|peer| peer.ip()), reason, Instant::now())
        {
            let peer = peer.map_or_else(|| "unknown".to_owned(), |peer| peer.to_string());
            tracing::warn!(peer = %peer, reason, detail, suppressed, "caller refused");
        }
    }
}

impl LogAllowance {
    fn new(interval: Duration) -> LogAllowance {
        LogAllowance {
            interval,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a line for `peer` and `reason` may be written at `now`: `Some(left out since
    /// the last line)`, or None (this one is left out and counted).
    fn admit(&self, peer: Option<IpAddr>, reason: &'static str, now: Instant) -> Option<u64> {
        // A panic elsewhere while holding the lock leaves the counts usable.
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = (peer, reason);
        if !windows.contains_key(&key) && windows.len() >= MAX_TRACKED {
            windows.retain(|_, window| now.duration_since(window.logged_at) < self.interval);
            if windows.len() >= MAX_TRACKED {
                key = (None, reason);
            }
        }
        match windows.get_mut(&key) {
            Some(window) if now.duration_since(window.logged_at) < self.interval => {
                window.suppressed += 1;
                None
            }
            Some(window) => {
                let suppressed = window.suppressed;
                *window = Window {
                    logged_at: now,
                    suppressed: 0,
                };
                Some(suppressed)
            }
            None => {
                windows.insert(
                    key,
                    Window {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn address(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn one_line_per_peer_and_reason_per_interval_then_the_count_left_out() {
        let allowance = LogAllowance::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(allowance.admit(address(1), "expired", start), Some(0));
        for second in 1..10 {
            let now = start + Duration::from_secs(second);
            assert_eq!(allowance.admit(address(1), "expired", now), None);
        }
        // Another reason, another peer: their own lines.
        assert_eq!(allowance.admit(address(1), "unknown_key", start), Some(0));
        assert_eq!(allowance.admit(address(2), "expired", start), Some(0));
        assert_eq!(allowance.admit(None, "expired", start), Some(0));
        // After the interval: a line again, saying how many were left out.
        let later = start + Duration::from_secs(10);
        assert_eq!(allowance.admit(address(1), "expired", later), Some(9));
        assert_eq!(allowance.admit(address(1), "expired", later), None);
        let much_later = later + Duration::from_secs(60);
        assert_eq!(allowance.admit(address(1), "expired", much_later), Some(1));
    }

    #[test]
    fn many_peers_share_one_allowance_once_the_table_is_full() {
        let allowance = LogAllowance::new(Duration::from_secs(10));
        let start = Instant::now();
        for index in 0..MAX_TRACKED {
            let peer = Some(IpAddr::from(u32::try_from(index).unwrap().to_be_bytes()));
            assert_eq!(allowance.admit(peer, "expired", start), Some(0));
        }
        // Full: newcomers share the reason's overflow allowance.
        let newcomer = |last: u8| Some(IpAddr::from([198, 51, 100, last]));
        assert_eq!(allowance.admit(newcomer(1), "expired", start), Some(0));
        assert_eq!(allowance.admit(newcomer(2), "expired", start), None);
        assert_eq!(allowance.admit(newcomer(3), "expired", start), None);
        // Once the old windows have passed they make room again.
        let later = start + Duration::from_secs(10);
        assert_eq!(allowance.admit(newcomer(4), "expired", later), Some(0));
        assert!(allowance.windows.lock().unwrap().len() <= 2);
    }
}
