//! The audit log export format and its offline verifier.
