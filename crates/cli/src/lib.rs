//! The Tryggdel command as a library: the client commands of each role, the audit commands,
//! the demo and the operation of one deployed service, shared by the `tryggdel` binary and the
//! end-to-end tests. Building and starting the services is `tryggdel-system`'s.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clearing;
pub mod clearing_run;
pub mod client;
pub mod commands;
pub mod delegation;
pub mod demo;
pub mod draft_file;
pub mod holds;
pub mod ops;
pub mod output;
pub mod report;
pub mod requests;
pub mod review;
pub mod statistics;
pub mod token;
pub mod witness;
