//! The console's Registerutdrag and Spärrar pages over HTTPS, on the whole system as `tryggdel
//! start` runs it: after the demo, Bollnäs's compliance officer finds the demo's disclosure in
//! the person's report (and downloads it as a PDF/A letter and as JSON); a hold placed on the
//! Spärrar page (an over-long one refused in Swedish) takes it out of the report, and ending
//! the hold brings it back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tryggdel::commands::Endpoints;
use tryggdel_system::RunningSystem;
use tryggdel_system::testing::{fast_relay, test_system};

/// The demo's subject: born 1985-03-14, birth number 123.
fn demo_person() -> String {
    tryggdel_domain::testing::personnummer_from(time::macros::date!(1985 - 03 - 14), 123)
}

/// A browser of the console: its CA trusted, its cookies kept, redirects not followed.
struct Browser {
    origin: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// An answer: status, where it redirects to, the content type and the body.
struct Answer {
    status: u16,
    location: String,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Browser {
    fn new(system: &RunningSystem) -> Browser {
        let ca = std::fs::read_to_string(system.data.ca_cert()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for certificate in tryggdel_tls::parse_certificates(&ca, "development CA").unwrap() {
            roots.add(certificate).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Browser {
            origin: format!("https://{}", system.console.local_addr),
            client: reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.client.get(format!("{}{path}", self.origin));
        self.send(request).await
    }

    /// A form post from the console's own page; the values need no escaping here.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let request = self
            .client
            .post(format!("{}{path}", self.origin))
            .header(reqwest::header::ORIGIN, self.origin.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.join("&"));
        self.send(request).await
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let request = if cookies.is_empty() {
            request
        } else {
            request.header(reqwest::header::COOKIE, cookies.join("; "))
        };
        let response = request.send().await.unwrap();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let location = header(reqwest::header::LOCATION);
        let content_type = header(reqwest::header::CONTENT_TYPE);
        for line in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = line.to_str().unwrap().split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        Answer {
            status: response.status().as_u16(),
            location,
            content_type,
            body: response.bytes().await.unwrap().to_vec(),
        }
    }
}

/// The value of the first field `name` on the page in `body`.
fn field(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    let end = start + body[start..].find('"').unwrap();
    body[start..end].to_owned()
}

/// The disclosure ids in a subject report's JSON.
fn reported(json: &[u8]) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_slice(json).unwrap();
    report["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|disclosure| disclosure["disclosure_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compliance_officer_reports_on_a_person_and_holds_a_disclosure_in_the_console() {
    tryggdel_tls::install_crypto_provider();
    let data = tempfile::tempdir().unwrap();
    let system = test_system(data.path())
        .notification(|settings| settings.relay = fast_relay())
        .disclosure(|settings| settings.relay = fast_relay())
        .start()
        .await
        .unwrap();
    let endpoint = |address: std::net::SocketAddr| format!("https://{address}");
    let demo = tryggdel::demo::run(
        &system.data,
        &Endpoints {
            disclosure: endpoint(system.disclosure.local_addr),
            notification: endpoint(system.notification.local_addr),
            audit: endpoint(system.audit.local_addr),
        },
    )
    .await
    .unwrap();
    let person = demo_person();

    let mut browser = Browser::new(&system);
    let signed_in = browser
        .post("/logga-in/utveckling", &[("user", "granskare-bollnas")])
        .await;
    assert_eq!(signed_in.status, 303);
    let form = browser.get("/granskning/registerutdrag").await;
    assert_eq!(form.status, 200);
    assert!(form.text().contains("href=\"/granskning/registerutdrag\""));
    let csrf = field(&form.text(), "csrf");
    let ask = [("csrf", csrf.as_str()), ("personnummer", person.as_str())];
    let shown = browser.post("/granskning/registerutdrag", &ask).await;
    assert_eq!(shown.status, 200);
    let page = shown.text();
    assert!(page.contains("Utlämnanden"), "{page}");
    assert!(page.contains("polisen/mitt"), "{page}");
    assert!(page.contains("Åtkomster till uppgifterna"), "{page}");
    let letter = browser.post("/granskning/registerutdrag/pdf", &ask).await;
    assert_eq!(letter.content_type, "application/pdf");
    assert!(letter.body.starts_with(b"%PDF-"));
    let json = browser.post("/granskning/registerutdrag/json", &ask).await;
    assert_eq!(
        reported(&json.body),
        std::slice::from_ref(&demo.disclosure_id)
    );

    // A hold on the Spärrar page: an over-long one refused in Swedish, then one that holds.
    let holds_path = format!("/sparrar?arende={}", demo.disclosure_id);
    let holds = browser.get(&holds_path).await;
    assert_eq!(holds.status, 200);
    assert!(holds.text().contains("Inga spärrar."));
    let request_id = field(&holds.text(), "request_id");
    let until = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    let place = |until: &'static str| {
        [
            ("csrf", csrf.as_str()),
            ("arende", demo.disclosure_id.as_str()),
            ("request_id", request_id.as_str()),
            ("legal_ground", "RB-23-18"),
            ("until", until),
        ]
    };
    let refused = browser.post("/sparrar/placera", &place("2099-01-01")).await;
    assert_eq!(refused.status, 200);
    assert!(refused.text().contains("Sista dag"), "{}", refused.text());
    assert!(
        refused.text().contains("hold_max_days"),
        "{}",
        refused.text()
    );
    let mut valid = place("");
    valid[4].1 = &until;
    let placed = browser.post("/sparrar/placera", &valid).await;
    assert_eq!(placed.status, 303);
    assert_eq!(placed.location, holds_path);
    let holds = browser.get(&holds_path).await;
    assert!(holds.text().contains("Gäller"), "{}", holds.text());
    let hold_id = field(&holds.text(), "hold_id");

    // Out of the report once the hold reaches the log, back once it has ended.
    let mut hidden = false;
    for _ in 0..100 {
        let json = browser.post("/granskning/registerutdrag/json", &ask).await;
        if reported(&json.body).is_empty() {
            hidden = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hidden, "the held disclosure is still in the report");
    let ended = browser
        .post(
            "/sparrar/avsluta",
            &[
                ("csrf", csrf.as_str()),
                ("arende", demo.disclosure_id.as_str()),
                ("hold_id", hold_id.as_str()),
                ("expected_version", "1"),
            ],
        )
        .await;
    assert_eq!(ended.status, 303);
    let mut back = false;
    for _ in 0..100 {
        let json = browser.post("/granskning/registerutdrag/json", &ask).await;
        if reported(&json.body) == std::slice::from_ref(&demo.disclosure_id) {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        back,
        "the disclosure is not back in the report after its hold ended"
    );
    system.stop().await.unwrap();
}
