//! Contract test: every Microsoft Graph request `keyroll entra check` and `entra apply` send,
//! validated against Microsoft's Graph v1.0 OpenAPI description (the federationConfiguration
//! paths and what they reference, kept verbatim with their provenance in
//! tests/contract/graph/). Prism runs as a validating proxy in front of a fake Graph
//! (wiremock), which gives the states; Prism logs every request that breaks the description,
//! and any such violation fails the test.
//!
//! Prism is installed by `scripts/test` into tests/contract/node_modules (pinned in
//! tests/contract/package.json); without it this test fails, it never skips.

mod kit;
mod prism;

use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kit::Key;
use prism::{Prism, contract_dir};
use serde_json::json;
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "contoso.onmicrosoft.com";
const GET_PATH: &str = "/v1.0/domains/contoso.com/federationConfiguration";
const PATCH_PATH: &str = "/v1.0/domains/contoso.com/federationConfiguration/fed-config-1";

/// Prism proxying to `upstream`, validating against the kept Graph description with its paths
/// moved under `/v1.0` (Prism ignores the description's server path
/// `https://graph.microsoft.com/v1.0/`, so the copy it reads spells it out).
fn start_prism(upstream: &str, work: &Path) -> Prism {
    let text = std::fs::read_to_string(
        contract_dir().join("graph/graph-v1.0-federationConfiguration.yaml"),
    )
    .unwrap();
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(
        doc["paths"].as_object().unwrap().len(),
        2,
        "only the paths keyroll uses are kept"
    );
    let spec = work.join("graph.json");
    std::fs::write(
        &spec,
        serde_json::to_vec(&prism::under_prefix(doc, "/v1.0")).unwrap(),
    )
    .unwrap();
    prism::start(
        "proxy",
        &spec,
        Some(upstream),
        work,
        Duration::from_secs(120),
    )
}

fn federation(signing: &Key, next: Option<&Key>) -> serde_json::Value {
    json!({ "value": [{
        "@odata.type": "#microsoft.graph.internalDomainFederation",
        "id": "fed-config-1",
        "issuerUri": "http://adfs.contoso.com/adfs/services/trust",
        "signingCertificate": signing.base64(),
        "nextSigningCertificate": next.map(Key::base64),
        "signingCertificateUpdateStatus": {
            "certificateUpdateResult": "success", "lastRunDateTime": "2014-07-06T01:00:00Z"
        }
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graph_request_keyroll_sends_is_one_graphs_description_accepts() {
    let old = Key::new(
        "ADFS Signing (2013)",
        datetime!(2013-07-25 0:00 UTC),
        datetime!(2014-07-25 0:00 UTC),
    );
    let new = Key::new(
        "ADFS Signing (2014)",
        datetime!(2014-07-05 0:00 UTC),
        datetime!(2015-07-05 0:00 UTC),
    );
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "access_token": "contract-access-token" })),
        )
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path(GET_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(federation(&old, None)))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path(GET_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(federation(&old, Some(&new))))
        .mount(&graph)
        .await;
    Mock::given(method("PATCH"))
        .and(path(PATCH_PATH))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&graph)
        .await;

    let work = tempfile::tempdir().unwrap();
    let prism = start_prism(&graph.uri(), work.path());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keyroll.toml"),
        format!(
            "[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\n\n[[federated_domain]]\ndomain = \"contoso.com\"\nissuer = \"adfs\"\ntenant = \"{TENANT}\"\nclient_id = \"0a1b2c3d-4e5f-6789-abcd-ef0123456789\"\ngraph_url = \"http://127.0.0.1:{}\"\nlogin_url = \"{}\"\n",
            prism.port,
            graph.uri()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("md.xml"),
        kit::metadata("http://adfs.contoso.com/adfs/services/trust", &[&old, &new]),
    )
    .unwrap();
    let run = |command: &str| {
        Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .current_dir(dir.path())
            .args([
                "entra",
                command,
                "--allow-http",
                "--now",
                "2014-07-06T00:00:00Z",
            ])
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
            .env_remove("KEYROLL_ENTRA_CLIENT_CERTIFICATE")
            .env("KEYROLL_ENTRA_CLIENT_SECRET", "contract-client-secret")
            .output()
            .unwrap()
    };
    let check = run("check");
    let apply = run("apply");
    std::thread::sleep(Duration::from_millis(300));
    let mut log = String::new();
    std::fs::File::open(&prism.log)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let said = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let violations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Violation: request") || l.contains("Request did not pass"))
        .collect();
    assert!(
        violations.is_empty(),
        "keyroll sent requests Graph's description rejects:\n{}\n\ncheck: {}\napply: {}",
        violations.join("\n"),
        said(&check),
        said(&apply)
    );
    assert_eq!(check.status.code(), Some(2), "{}", said(&check));
    assert_eq!(apply.status.code(), Some(0), "{}\n{log}", said(&apply));
    // Every Graph request went through Prism to the fake: two reads, the PATCH, a read back.
    let through: Vec<String> = graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/v1.0/"))
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        through,
        [
            format!("GET {GET_PATH}"),
            format!("GET {GET_PATH}"),
            format!("PATCH {PATCH_PATH}"),
            format!("GET {GET_PATH}"),
        ],
        "{log}"
    );
}
