//! The Tryggdel command as a library: the development data directory, starting the system, and
//! the audit commands,
//! shared by the `tryggdel` binary and the end-to-end tests (which start the system exactly as
//! the README's start command does).
#![forbid(unsafe_code)]

pub mod audit;
pub mod client;
pub mod commands;
pub mod config;
pub mod demo;
pub mod devkit;
pub mod draft_file;
pub mod ops;
pub mod output;
pub mod serve;
pub mod system;
pub mod token;
