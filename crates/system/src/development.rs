//! The names a development deployment uses: its token issuer, its CA and its audit log's
//! origin. Production mode refuses every one of them ([`crate::Config::check_mode`]).

/// The development identity provider's issuer.
pub const ISSUER: &str = "https://idp.dev.tryggdel.local";
/// The audience of every Tryggdel token.
pub const AUDIENCE: &str = "tryggdel";
/// The common name of the development CA (production mode refuses certificates under it).
pub const DEVELOPMENT_CA_NAME: &str = "Tryggdel development CA";
/// The development audit log's origin (its checkpoints' first line and key name).
pub const AUDIT_ORIGIN: &str = "audit.dev.tryggdel.local/log";
/// Where `tryggdel start` serves the console.
pub const DEVELOPMENT_CONSOLE_ORIGIN: &str = "https://127.0.0.1:8443";
