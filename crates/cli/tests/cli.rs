//! The `tryggdel` binary as a newcomer runs it: `start` as the README says, then the demo
//! to the verified inclusion proof, then the commands of each role, including their refusals
//! and exit codes. Ends with SIGTERM and a clean stop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{free_port, stop_with_sigterm, text};

struct Started {
    child: Child,
    lines: mpsc::Receiver<String>,
    endpoints: [String; 6],
}

/// `tryggdel start` in a fresh data directory on free ports; returns once it is serving.
fn start(data: &Path) -> Started {
    let (disclosure, audit, notification) = (free_port(), free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tryggdel"))
        .args(["--data-dir", data.to_str().unwrap(), "start"])
        .args(["--disclosure-listen", &format!("127.0.0.1:{disclosure}")])
        .args(["--audit-listen", &format!("127.0.0.1:{audit}")])
        .args([
            "--notification-listen",
            &format!("127.0.0.1:{notification}"),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("tryggdel start printed its banner within 60 s");
        if line.starts_with("stop with Ctrl-C") {
            break;
        }
    }
    Started {
        child,
        lines,
        endpoints: [
            "--disclosure-endpoint".into(),
            format!("https://127.0.0.1:{disclosure}"),
            "--audit-endpoint".into(),
            format!("https://127.0.0.1:{audit}"),
            "--notification-endpoint".into(),
            format!("https://127.0.0.1:{notification}"),
        ],
    }
}

fn tryggdel(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tryggdel"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(args)
        .env_remove("TRYGGDEL_TOKEN")
        .env_remove("TRYGGDEL_ORG")
        .output()
        .unwrap()
}

fn token(data: &Path, role: &str, user: &str, org: &str) -> String {
    let output = tryggdel(
        data,
        &["dev-token", "--role", role, "--user", user, "--org", org],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).trim().to_owned()
}

#[test]
fn start_then_demo_then_every_role_and_a_clean_stop() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let mut started = start(&data);
    let endpoints: Vec<&str> = started.endpoints.iter().map(String::as_str).collect();

    // The demo plays the whole scenario to the verified inclusion proof.
    let mut demo = vec!["demo"];
    demo.extend(&endpoints);
    let output = tryggdel(&data, &demo);
    let out = text(&output.stdout);
    assert!(output.status.success(), "{out}{}", text(&output.stderr));
    assert!(out.contains("ACKNOWLEDGED by polis-mitt-1"), "{out}");
    // The disclosure's seven changes, and the reads of it the demo made (the access log; how
    // many depends on how often it looked before the receipt came).
    let verified: usize = out
        .split("inclusion verified for all ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no verified inclusion in {out}"));
    assert!(verified >= 7, "{out}");

    // A caseworker drafts from the template and submits; JSON output for scripts.
    let caseworker = token(&data, "caseworker", "handlaggare-bollnas", "bollnas-kommun");
    let template = tryggdel(&data, &["disclosure", "template"]);
    assert!(template.status.success());
    let draft_file = directory.path().join("draft.json");
    std::fs::write(&draft_file, &template.stdout).unwrap();
    let as_caseworker = |args: &[&str]| {
        let mut all = vec![
            "disclosure",
            "--org",
            "bollnas-kommun",
            "--token",
            &caseworker,
        ];
        all.extend(&endpoints);
        all.extend(args);
        tryggdel(&data, &all)
    };
    let drafted = as_caseworker(&["--json", "draft", "--file", draft_file.to_str().unwrap()]);
    assert!(drafted.status.success(), "{}", text(&drafted.stderr));
    let drafted: serde_json::Value = serde_json::from_slice(&drafted.stdout).unwrap();
    let id = drafted["id"].as_str().unwrap().to_owned();
    assert_eq!(drafted["state"], "DRAFT");
    // Without --json, draft prints the new id alone, for `id=$(tryggdel disclosure draft …)`.
    let plain = as_caseworker(&["draft", "--file", draft_file.to_str().unwrap()]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let printed = text(&plain.stdout);
    let plain_id = printed.strip_suffix('\n').unwrap_or(&printed);
    assert!(!plain_id.contains('\n'), "one line: {printed:?}");
    assert!(uuid::Uuid::parse_str(plain_id).is_ok(), "{printed:?}");
    assert_ne!(plain_id, id);
    let shown = as_caseworker(&["--json", "show", "--id", plain_id]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["id"], plain_id);
    // --json is global: also before the subcommand.
    let mut listed = vec!["--json", "disclosure", "--org", "bollnas-kommun", "--token"];
    listed.push(&caseworker);
    listed.extend(&endpoints);
    listed.push("list");
    let listed = tryggdel(&data, &listed);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|summary| summary["id"] == plain_id),
        "{listed}"
    );
    let assessed = as_caseworker(&["assess", "--id", &id]);
    assert!(
        text(&assessed.stdout).contains("PASSES"),
        "{}",
        text(&assessed.stdout)
    );
    let submitted = as_caseworker(&["submit", "--id", &id]);
    assert!(submitted.status.success(), "{}", text(&submitted.stderr));

    // Refusals: the documented exit codes and a message that says what to do.
    let approve_as_caseworker = as_caseworker(&["approve", "--id", &id]);
    assert_eq!(approve_as_caseworker.status.code(), Some(4));
    assert!(text(&approve_as_caseworker.stderr).contains("requires the role decision_maker"));
    let mut no_token = vec!["disclosure", "--org", "bollnas-kommun"];
    no_token.extend(&endpoints);
    no_token.push("list");
    let output = tryggdel(&data, &no_token);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        text(&output.stderr).contains("dev-token"),
        "{}",
        text(&output.stderr)
    );
    let mut expired = vec![
        "disclosure",
        "--org",
        "bollnas-kommun",
        "--token",
        "not.a.token",
    ];
    expired.extend(&endpoints);
    expired.push("list");
    assert_eq!(tryggdel(&data, &expired).status.code(), Some(3));
    let unknown = as_caseworker(&["show", "--id", "01a2061b-0000-7000-8000-000000000000"]);
    assert_eq!(unknown.status.code(), Some(5));
    assert_eq!(tryggdel(&data, &["no-such-command"]).status.code(), Some(1));

    // The decision maker approves; the police officer of region Mitt sees it and receipts it.
    let decider = token(&data, "decision_maker", "beslut-bollnas", "bollnas-kommun");
    let mut approve = vec!["disclosure", "--org", "bollnas-kommun", "--token", &decider];
    approve.extend(&endpoints);
    approve.extend(["approve", "--id", &id]);
    let approved = tryggdel(&data, &approve);
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let officer_token = text(
        &tryggdel(
            &data,
            &[
                "dev-token",
                "--role",
                "police_officer",
                "--user",
                "polis-mitt-2",
                "--org",
                "polisen",
                "--region",
                "mitt",
            ],
        )
        .stdout,
    )
    .trim()
    .to_owned();
    let as_officer = |args: &[&str]| {
        let mut all = vec!["police", "--org", "polisen", "--token", &officer_token];
        all.extend(&endpoints);
        all.extend(args);
        tryggdel(&data, &all)
    };
    let mut inbox = serde_json::Value::Null;
    for _ in 0..100 {
        let output = as_officer(&["--json", "inbox"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        inbox = serde_json::from_slice(&output.stdout).unwrap();
        if inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|delivery| delivery["disclosure_id"] == id.as_str())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|delivery| delivery["disclosure_id"] == id.as_str()),
        "{inbox}"
    );
    let acknowledged = as_officer(&["acknowledge", "--id", &id, "--reference", "5000-K777-26"]);
    assert!(
        text(&acknowledged.stdout).contains("5000-K777-26"),
        "{}",
        text(&acknowledged.stderr)
    );
    // Nothing to acknowledge as recalled while the organisation has not withdrawn it.
    let not_recalled = as_officer(&["acknowledge-recall", "--id", &id]);
    assert_eq!(not_recalled.status.code(), Some(5));
    assert!(
        text(&not_recalled.stderr).contains("not been recalled"),
        "{}",
        text(&not_recalled.stderr)
    );
    let asked = as_officer(&[
        "follow-up",
        "--id",
        &id,
        "--question",
        "Har han vapenlicens?",
    ]);
    assert!(asked.status.success(), "{}", text(&asked.stderr));
    let follow_ups = as_caseworker(&["follow-ups", "--id", &id]);
    assert!(text(&follow_ups.stdout).contains("Har han vapenlicens?"));
    let police_as_caseworker = {
        let mut all = vec!["police", "--org", "bollnas-kommun", "--token", &caseworker];
        all.extend(&endpoints);
        all.push("inbox");
        tryggdel(&data, &all)
    };
    assert_eq!(police_as_caseworker.status.code(), Some(4));

    // The compliance officer finds the person's entries by identity number.
    let officer = token(&data, "compliance_officer", "granskare-ivo", "ivo");
    let person = drafted_person(&draft_file);
    let mut query = vec![
        "audit", "query", "--org", "ivo", "--token", &officer, "--json",
    ];
    query.extend(&endpoints);
    query.extend(["--person", &person]);
    let found = tryggdel(&data, &query);
    assert!(found.status.success(), "{}", text(&found.stderr));
    let found: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    assert!(found.as_array().unwrap().len() >= 2, "{found}");
    let mut caseworker_query = vec![
        "audit",
        "query",
        "--org",
        "bollnas-kommun",
        "--token",
        &caseworker,
    ];
    caseworker_query.extend(&endpoints);
    assert_eq!(tryggdel(&data, &caseworker_query).status.code(), Some(4));

    // A subject report by Bollnäs's compliance officer lists the approved disclosure (JSON, and
    // a PDF/A letter); while the police's hold holds it is left out, after its end it is back.
    let dso = token(&data, "compliance_officer", "dso-bollnas", "bollnas-kommun");
    let subject_report = |format: &str, out: &Path| {
        let mut all = vec![
            "report",
            "subject",
            "--org",
            "bollnas-kommun",
            "--token",
            &dso,
        ];
        all.extend(&endpoints);
        all.extend(["--person", &person, "--format", format]);
        all.extend(["--out", out.to_str().unwrap()]);
        tryggdel(&data, &all)
    };
    let report_file = directory.path().join("registerutdrag.json");
    let reported_ids = || {
        let output = subject_report("json", &report_file);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
        report["disclosures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|disclosure| disclosure["disclosure_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(reported_ids().contains(&id));
    let letter = directory.path().join("registerutdrag.pdf");
    let output = subject_report("pdf", &letter);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(std::fs::read(&letter).unwrap().starts_with(b"%PDF-"));
    let as_police_hold = |args: &[&str]| {
        let mut all = vec!["hold", "--org", "polisen", "--token", &officer_token];
        all.extend(&endpoints);
        all.extend(args);
        tryggdel(&data, &all)
    };
    let until = (tryggdel_service_kit::today_in_sweden() + time::Duration::days(30)).to_string();
    let placed = as_police_hold(&[
        "--json",
        "place",
        "--disclosure-id",
        &id,
        "--ground",
        "RB-23-18",
        "--until",
        &until,
    ]);
    assert!(placed.status.success(), "{}", text(&placed.stderr));
    let placed: serde_json::Value = serde_json::from_slice(&placed.stdout).unwrap();
    assert_eq!(placed["issuer_organisation"], "polisen");
    let hold_id = placed["id"].as_str().unwrap().to_owned();
    let too_long = as_police_hold(&[
        "place",
        "--disclosure-id",
        &id,
        "--ground",
        "RB-23-18",
        "--until",
        "2099-01-01",
    ]);
    assert_eq!(too_long.status.code(), Some(5));
    assert!(text(&too_long.stderr).contains("hold_max_days"));
    // The outbox takes the hold to the log within its poll interval.
    let mut hidden = false;
    for _ in 0..100 {
        if !reported_ids().contains(&id) {
            hidden = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(hidden, "the held disclosure is still in the report");
    let listed = as_police_hold(&["list", "--disclosure-id", &id]);
    assert!(
        text(&listed.stdout).contains("active"),
        "{}",
        text(&listed.stderr)
    );
    let ended = as_police_hold(&["end", "--id", &hold_id, "--version", "1"]);
    assert!(ended.status.success(), "{}", text(&ended.stderr));
    let mut shown = false;
    for _ in 0..100 {
        if reported_ids().contains(&id) {
            shown = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        shown,
        "the disclosure is not back in the report after its hold ended"
    );

    // An admin grants, lists and revokes a delegation; a decision maker may not grant one.
    let admin = token(&data, "admin", "admin-bollnas", "bollnas-kommun");
    let as_admin = |token: &str, args: &[&str]| {
        let mut all = vec!["delegation", "--org", "bollnas-kommun", "--token", token];
        all.extend(&endpoints);
        all.extend(args);
        tryggdel(&data, &all)
    };
    let granted = as_admin(
        &admin,
        &[
            "--json",
            "grant",
            "--user",
            "beslut-anna",
            "--basis",
            "OSL-10-18c",
            "--from",
            "2026-01-01",
        ],
    );
    assert!(granted.status.success(), "{}", text(&granted.stderr));
    let granted: serde_json::Value = serde_json::from_slice(&granted.stdout).unwrap();
    let delegation_id = granted["id"].as_str().unwrap().to_owned();
    assert_eq!(granted["valid_from"], "2026-01-01");
    assert_eq!(granted["valid_to"], "");
    let listed = as_admin(&admin, &["list", "--as-of", "2026-06-01"]);
    let listed_text = text(&listed.stdout);
    assert!(listed_text.contains(&delegation_id), "{listed_text}");
    assert!(listed_text.contains("beslut-bollnas"), "{listed_text}");
    let revoked = as_admin(
        &admin,
        &["revoke", "--id", &delegation_id, "--to", "2026-03-31"],
    );
    assert!(
        text(&revoked.stdout).contains("2026-03-31"),
        "{}",
        text(&revoked.stderr)
    );
    let listed = as_admin(&admin, &["list", "--as-of", "2026-06-01"]);
    assert!(!text(&listed.stdout).contains(&delegation_id));
    let before_start = as_admin(
        &admin,
        &["revoke", "--id", &delegation_id, "--to", "2025-12-31"],
    );
    assert_eq!(before_start.status.code(), Some(5));
    let as_decider = as_admin(
        &decider,
        &["grant", "--user", "beslut-anna", "--basis", "OSL-10-18c"],
    );
    assert_eq!(as_decider.status.code(), Some(4));

    // Requests for information: an officer of region Syd asks Bollnäs; one request is
    // answered with an approved disclosure, another refused with its reason and weighing.
    let syd_token = text(
        &tryggdel(
            &data,
            &[
                "dev-token",
                "--role",
                "police_officer",
                "--user",
                "polis-syd-1",
                "--org",
                "polisen",
                "--region",
                "syd",
            ],
        )
        .stdout,
    )
    .trim()
    .to_owned();
    let request_as = |org: &str, token: &str, args: &[&str]| {
        let mut all = vec!["request", "--org", org, "--token", token];
        all.extend(&endpoints);
        all.extend(args);
        tryggdel(&data, &all)
    };
    // A deadline more than a year ahead is refused, naming the field.
    let far = request_as(
        "polisen",
        &syd_token,
        &[
            "send",
            "--to",
            "bollnas-kommun",
            "--what",
            "x",
            "--purpose",
            "y",
            "--ground",
            "z",
            "--reply-by",
            "2099-01-01",
        ],
    );
    assert_eq!(far.status.code(), Some(5));
    assert!(
        text(&far.stderr).contains("reply_by"),
        "{}",
        text(&far.stderr)
    );
    let soon = time::OffsetDateTime::now_utc() + Duration::from_secs(3 * 24 * 3600);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let send_soon = |request_id: &str| {
        let sent = request_as(
            "polisen",
            &syd_token,
            &[
                "--json",
                "send",
                "--to",
                "bollnas-kommun",
                "--about",
                &person,
                "--what",
                "Kända hot mot närstående",
                "--purpose",
                "Förhindra brott mot närstående",
                "--ground",
                "Uppgiftsskyldighet",
                "--reply-by",
                &soon,
                "--request-id",
                request_id,
            ],
        );
        assert!(sent.status.success(), "{}", text(&sent.stderr));
        let sent: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
        assert_eq!(sent["state"], "open");
        assert_eq!(sent["requester_inbox"], "syd");
        sent["id"].as_str().unwrap().to_owned()
    };
    let to_answer = send_soon("cli-begaran-1");
    let to_refuse = send_soon("cli-begaran-2");
    let queue = request_as("bollnas-kommun", &caseworker, &["list", "--state", "open"]);
    let queue = text(&queue.stdout);
    assert!(
        queue.contains(&to_answer) && queue.contains(&to_refuse),
        "{queue}"
    );
    let refused = request_as(
        "bollnas-kommun",
        &caseworker,
        &[
            "refuse",
            "--id",
            &to_refuse,
            "--reason",
            "Sekretessen står sig",
            "--weighing",
            "Avvägning dokumenterad",
        ],
    );
    assert!(
        text(&refused.stdout).contains("refused"),
        "{}",
        text(&refused.stderr)
    );
    let mut answer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&draft_file).unwrap()).unwrap();
    answer["answers_information_request_id"] = to_answer.clone().into();
    let answer_file = directory.path().join("answer.json");
    std::fs::write(&answer_file, answer.to_string()).unwrap();
    let answer_id =
        text(&as_caseworker(&["draft", "--file", answer_file.to_str().unwrap()]).stdout)
            .trim()
            .to_owned();
    assert!(
        as_caseworker(&["submit", "--id", &answer_id])
            .status
            .success()
    );
    let mut approve = vec!["disclosure", "--org", "bollnas-kommun", "--token", &decider];
    approve.extend(&endpoints);
    approve.extend(["approve", "--id", &answer_id]);
    assert!(tryggdel(&data, &approve).status.success());
    let shown = request_as(
        "polisen",
        &syd_token,
        &["--json", "show", "--id", &to_answer],
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["state"], "answered");
    assert_eq!(shown["answered_by_disclosure_id"], answer_id.as_str());
    let shown = request_as("polisen", &syd_token, &["show", "--id", &to_refuse]);
    let shown = text(&shown.stdout);
    assert!(shown.contains("Avvägning dokumenterad"), "{shown}");
    // The police of another region do not see Syd's requests.
    let mitt_list = request_as("polisen", &officer_token, &["list"]);
    assert!(!text(&mitt_list.stdout).contains(&to_answer));

    // SIGTERM stops it cleanly.
    stop_with_sigterm(&mut started.child);
    let rest: Vec<String> = started.lines.try_iter().collect();
    assert!(rest.iter().any(|line| line == "stopping"), "{rest:?}");
}

/// The subject's identity number in the draft file.
fn drafted_person(file: &Path) -> String {
    let draft: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    draft["subject"]["identity_number"]
        .as_str()
        .unwrap()
        .to_owned()
}
