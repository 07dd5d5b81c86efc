//! The Tryggdel command as a library: the development data directory and starting the system,
//! shared by the `tryggdel` binary and the end-to-end tests (which start the system exactly as
//! the README's start command does).
#![forbid(unsafe_code)]

pub mod devkit;
pub mod system;
