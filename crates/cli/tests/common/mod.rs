//! What the tests of the `tryggdel` binary share: free ports, output as text, and stopping a
//! running `tryggdel` the way an operator does.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::process::{Child, Command};

/// A port of 127.0.0.1 that nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sends SIGTERM to `child` and asserts that it stops cleanly (exit 0).
pub fn stop_with_sigterm(child: &mut Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
