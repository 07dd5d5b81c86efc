//! The console in a real browser: the whole system started on free ports, then the Node suite
//! of `tests/browser` (Playwright driving the system's Chromium, axe-core checking every page)
//! run against it. A second system, whose sessions end after [`SHORT_IDLE`], is there for the
//! expired-session scenario, so the main flow never races its idle timeout.
//!
//! Without Chromium, Node or the suite's `node_modules` the test says plainly that the browser
//! suite did not run and how to run it, and passes; under `TRYGGDEL_REQUIRE_BROWSER=1` (CI) it
//! fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tryggdel_system::testing::{fast_relay, test_system};
use tryggdel_system::{RunningSystem, SystemBuilder};

/// The idle timeout of the second system's sessions.
const SHORT_IDLE: Duration = Duration::from_secs(2);

/// The most the Node suite may take before it is stopped and the test fails.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// Where Debian's `chromium` package puts the browser; `TRYGGDEL_CHROMIUM` names another.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

const HOW_TO_RUN: &str = "install Debian's chromium (apt-get install chromium) and Node 20 or later, \
     run `npm ci --prefix tests/browser`, then `cargo test -p tryggdel-e2e --test browser` \
     (scripts/test.sh does the first two where it can)";

/// Writes a line where the test command's log sees it even when the test passes (libtest
/// captures `println!` of passing tests, not writes to the process's standard output).
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn suite_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("TRYGGDEL_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEBIAN_CHROMIUM))
}

/// Why the suite cannot run here, if it cannot.
fn missing() -> Option<String> {
    let browser = chromium();
    if !browser.is_file() {
        return Some(format!("no Chromium at {}", browser.display()));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    let version = match node {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => return Some("no `node` on the PATH".to_owned()),
    };
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok());
    if major.is_none_or(|major| major < 20) {
        return Some(format!("Node {version} is older than 20"));
    }
    let modules = suite_directory().join("node_modules");
    for package in ["playwright-core", "@axe-core/playwright", "axe-core"] {
        if !modules.join(package).join("package.json").is_file() {
            return Some(format!(
                "{} is not installed",
                modules.join(package).display()
            ));
        }
    }
    None
}

/// A system with relays fast enough for a person watching the screen.
fn system(data: &Path) -> SystemBuilder {
    test_system(data)
        .notification(|settings| settings.relay = fast_relay())
        .disclosure(|settings| settings.relay = fast_relay())
}

fn console_url(system: &RunningSystem) -> String {
    format!("https://{}", system.console.local_addr)
}

fn console_certificate(system: &RunningSystem) -> PathBuf {
    system.data.server_cert("console")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_across_the_four_roles_with_no_wcag_violations() {
    let required = std::env::var("TRYGGDEL_REQUIRE_BROWSER").as_deref() == Ok("1");
    if let Some(why) = missing() {
        assert!(
            !required,
            "TRYGGDEL_REQUIRE_BROWSER=1 but the browser suite cannot run: {why}; to run it: {HOW_TO_RUN}"
        );
        say(&format!(
            "browser suite did NOT run: {why}; to run it: {HOW_TO_RUN}"
        ));
        return;
    }

    let started = Instant::now();
    let main_data = tempfile::tempdir().unwrap();
    let short_data = tempfile::tempdir().unwrap();
    let main = system(main_data.path()).start().await.unwrap();
    let short = system(short_data.path())
        .console(|settings| settings.sessions.idle = SHORT_IDLE)
        .start()
        .await
        .unwrap();
    let systems_up = started.elapsed();

    // The suite's output goes straight to this process's, so it is seen as it runs.
    let mut suite = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .current_dir(suite_directory())
        .env("TRYGGDEL_CHROMIUM", chromium())
        .env("TRYGGDEL_CONSOLE_URL", console_url(&main))
        .env("TRYGGDEL_CONSOLE_CERT", console_certificate(&main))
        .env("TRYGGDEL_SHORT_SESSION_CONSOLE_URL", console_url(&short))
        .env(
            "TRYGGDEL_SHORT_SESSION_CONSOLE_CERT",
            console_certificate(&short),
        )
        .env(
            "TRYGGDEL_SHORT_SESSION_IDLE_MS",
            SHORT_IDLE.as_millis().to_string(),
        )
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let finished = tokio::time::timeout(SUITE_TIMEOUT, suite.wait()).await;

    main.stop().await.unwrap();
    short.stop().await.unwrap();
    let status = finished
        .unwrap_or_else(|_| panic!("the browser suite took longer than {SUITE_TIMEOUT:?}"))
        .expect("waiting for node");
    assert!(
        status.success(),
        "the browser suite failed ({status}); its output is above"
    );
    say(&format!(
        "browser suite: passed in Chromium ({}) in {:.1} s (systems up in {:.1} s)",
        chromium().display(),
        started.elapsed().as_secs_f64(),
        systems_up.as_secs_f64()
    ));
}
