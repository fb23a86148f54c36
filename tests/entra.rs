//! `keyroll entra check|apply` and `plan` against a fake Entra ID token endpoint, a fake
//! GitHub Actions OIDC token service and a fake Microsoft Graph (wiremock), through the
//! binary. Seed 004's timeline: AD FS generates its next certificate on 2014-07-05 and
//! promotes it on 2014-07-10; Entra ID must hold it by then.

mod kit;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use kit::Key;
use serde_json::{Value, json};
use time::macros::datetime;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
const SECRET: &str = "client-secret-value-do-not-print";
const ACCESS_TOKEN: &str = "graph-access-token-do-not-print";
const GET_PATH: &str = "/v1.0/domains/contoso.com/federationConfiguration";
const PATCH_PATH: &str = "/v1.0/domains/contoso.com/federationConfiguration/fed-config-1";

/// Seed 004's certificates: the current one expires on 2014-07-25; AD FS generates the
/// next 20 days before (2014-07-05) and promotes it 5 days later (2014-07-10).
struct Seed {
    old: Key,
    new: Key,
}

fn seed() -> Seed {
    Seed {
        old: Key::new(
            "ADFS Signing - adfs.contoso.com (2013)",
            datetime!(2013-07-25 0:00 UTC),
            datetime!(2014-07-25 0:00 UTC),
        ),
        new: Key::new(
            "ADFS Signing - adfs.contoso.com (2014)",
            datetime!(2014-07-05 0:00 UTC),
            datetime!(2015-07-05 0:00 UTC),
        ),
    }
}

/// A folder whose keyroll.toml has one issuer and one federated domain, no file target.
fn repo(server: &str, published: &[&Key]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keyroll.toml"),
        format!(
            "[[issuer]]\nname = \"adfs\"\nmetadata = [\"FederationMetadata.xml\"]\n\n[[federated_domain]]\ndomain = \"contoso.com\"\nissuer = \"adfs\"\ntenant = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\ngraph_url = \"{server}\"\nlogin_url = \"{server}\"\n"
        ),
    )
    .unwrap();
    write_metadata(dir.path(), published);
    dir
}

fn write_metadata(dir: &Path, published: &[&Key]) {
    std::fs::write(
        dir.join("FederationMetadata.xml"),
        kit::metadata("http://adfs.contoso.com/adfs/services/trust", published),
    )
    .unwrap();
}

/// The binary in `dir`, with only the credential given (never one from the environment the
/// tests run in).
fn keyroll(dir: &Path, args: &[&str], now: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyroll"));
    command
        .current_dir(dir)
        .args(args)
        .args(["--now", now, "--allow-http"]);
    for name in [
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "KEYROLL_ENTRA_CLIENT_CERTIFICATE",
        "KEYROLL_ENTRA_CLIENT_SECRET",
        "GITHUB_ACTIONS",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    // Every run: no credential given, nor the access token made from it, is printed (each
    // line of a PEM on its own too).
    let mut secrets = vec![ACCESS_TOKEN];
    for (name, value) in env {
        if *name != "ACTIONS_ID_TOKEN_REQUEST_URL" {
            secrets.extend(
                value
                    .lines()
                    .filter(|l| l.len() >= 16 && !l.starts_with("-----")),
            );
        }
    }
    assert_no_secret(&out, &secrets);
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Nothing secret reaches stdout or stderr.
fn assert_no_secret(out: &Output, secrets: &[&str]) {
    let all = text(out);
    for secret in secrets {
        assert!(!all.contains(secret), "{secret} printed:\n{all}");
    }
}

fn b64(key: &Key) -> String {
    key.base64()
}

/// Entra's `internalDomainFederation` as Graph returns it.
fn federation(signing: &Key, next: Option<&Key>) -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#domains('contoso.com')/federationConfiguration",
        "value": [{
            "@odata.type": "#microsoft.graph.internalDomainFederation",
            "id": "fed-config-1",
            "displayName": "Contoso AD FS",
            "issuerUri": "http://adfs.contoso.com/adfs/services/trust",
            "metadataExchangeUri": "https://adfs.contoso.com/adfs/services/trust/mex",
            "passiveSignInUri": "https://adfs.contoso.com/adfs/ls/",
            "preferredAuthenticationProtocol": "wsFed",
            "signingCertificate": b64(signing),
            "nextSigningCertificate": next.map(b64),
            "signingCertificateUpdateStatus": {
                "certificateUpdateResult": "couldNotAccessRemoteHost",
                "lastRunDateTime": "2014-07-06T01:00:00Z"
            }
        }]
    })
}

async fn mount_secret_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(format!("client_secret={SECRET}")))
        .and(body_string_contains("scope=http%3A%2F%2F127.0.0.1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN
        })))
        .mount(server)
        .await;
}

async fn mount_get(server: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(GET_PATH))
        .and(header(
            "authorization",
            format!("Bearer {ACCESS_TOKEN}").as_str(),
        ))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// A fake token endpoint taking the client secret, and a fake Graph answering the read with
/// `answer`: what most tests start from.
async fn graph_answering(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    mount_secret_token(&server).await;
    mount_get(&server, answer).await;
    server
}

fn secret_env() -> Vec<(&'static str, &'static str)> {
    vec![("KEYROLL_ENTRA_CLIENT_SECRET", SECRET)]
}

async fn graph_requests(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/v1.0/"))
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_timeline_in_step_then_missing_with_days_left_then_lockout() {
    let seed = seed();
    let server = MockServer::start().await;
    mount_secret_token(&server).await;
    // Entra ID holds the 2013 certificate and no next one: nobody ran the update.
    mount_get(
        &server,
        ResponseTemplate::new(200).set_body_json(federation(&seed.old, None)),
    )
    .await;
    let dir = repo(&server.uri(), &[&seed.old]);
    let env = secret_env();

    // 2014-07-01: AD FS publishes only the current certificate; Entra ID holds it.
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-01T00:00:00Z",
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("in step"), "{}", text(&out));
    assert!(
        text(&out).contains(
            "Entra ID's own update: couldNotAccessRemoteHost (last run 2014-07-06T01:00:00Z)"
        ),
        "{}",
        text(&out)
    );

    // 2014-07-06: AD FS generated its next certificate yesterday and promotes it on 07-10.
    write_metadata(dir.path(), &[&seed.old, &seed.new]);
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-06T00:00:00Z",
        &env,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let expected = format!(
        "next key missing: Entra ID does not hold {}, which AD FS promotes on 2014-07-10 (4 days left)",
        seed.new.hex()
    );
    assert!(text(&out).contains(&expected), "{}", text(&out));
    assert!(text(&out).contains(&format!(
        "AD FS     current {}  next {}",
        seed.old.hex(),
        seed.new.hex()
    )));
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-09T12:00:00Z",
        &env,
    );
    assert!(
        text(&out).contains("2014-07-10 (0 days left)"),
        "{}",
        text(&out)
    );

    // The JSON names the state, the date and the days left.
    let out = keyroll(
        dir.path(),
        &["entra", "check", "--format", "json"],
        "2014-07-08T00:00:00Z",
        &env,
    );
    assert_eq!(out.status.code(), Some(2));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let domain = &json["federated_domains"][0];
    assert_eq!(domain["verdict"]["state"], "next-missing");
    assert_eq!(domain["verdict"]["promotion"], "2014-07-10");
    assert_eq!(domain["verdict"]["days_left"], 2);
    assert_eq!(domain["entra_current"], seed.old.hex());
    assert_eq!(domain["entra_update_result"], "couldNotAccessRemoteHost");

    // `plan` shows the domain beside the files (here, the only target).
    let out = keyroll(dir.path(), &["plan"], "2014-07-06T00:00:00Z", &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("federated domain contoso.com (issuer adfs, Entra ID)"));
    assert!(text(&out).contains(&expected), "{}", text(&out));

    // 2014-07-10 noon: AD FS signs with the 2014 certificate, Entra ID does not hold it.
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-10T12:00:00Z",
        &env,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "lockout: AD FS signs with {} since 2014-07-10",
            seed.new.hex()
        )),
        "{}",
        text(&out)
    );
    let out = keyroll(dir.path(), &["plan"], "2014-07-10T12:00:00Z", &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("error: federated domain contoso.com: lockout"),
        "{}",
        text(&out)
    );

    // Only reads were sent.
    assert!(
        graph_requests(&server)
            .await
            .iter()
            .all(|r| r == &format!("GET {GET_PATH}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_sets_only_the_next_certificate_once_and_is_in_step_afterwards() {
    let seed = seed();
    let server = MockServer::start().await;
    mount_secret_token(&server).await;
    // Before the PATCH Entra ID lacks the next certificate; after it, it holds it.
    Mock::given(method("GET"))
        .and(path(GET_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(federation(&seed.old, None)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_get(
        &server,
        ResponseTemplate::new(200).set_body_json(federation(&seed.old, Some(&seed.new))),
    )
    .await;
    Mock::given(method("PATCH"))
        .and(path(PATCH_PATH))
        .and(header(
            "authorization",
            format!("Bearer {ACCESS_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let dir = repo(&server.uri(), &[&seed.old, &seed.new]);
    let env = secret_env();

    let out = keyroll(
        dir.path(),
        &["entra", "apply"],
        "2014-07-06T00:00:00Z",
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "set contoso.com's nextSigningCertificate to {}",
            seed.new.hex()
        )),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("in step"), "{}", text(&out));
    let patch = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "PATCH")
        .unwrap();
    let body: Value = serde_json::from_slice(&patch.body).unwrap();
    assert_eq!(body, json!({ "nextSigningCertificate": b64(&seed.new) }));

    // Again: Entra ID holds it, nothing is sent.
    let out = keyroll(
        dir.path(),
        &["entra", "apply"],
        "2014-07-06T00:00:00Z",
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret(&out, &[SECRET, ACCESS_TOKEN]);
    assert_eq!(
        graph_requests(&server).await,
        [
            format!("GET {GET_PATH}"),
            format!("PATCH {PATCH_PATH}"),
            format!("GET {GET_PATH}"),
            format!("GET {GET_PATH}"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actions_oidc_token_is_the_client_assertion() {
    let seed = seed();
    let server = MockServer::start().await;
    const REQUEST_TOKEN: &str = "actions-request-token-do-not-print";
    const OIDC_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.github-oidc-jwt-do-not-print.c2ln";
    Mock::given(method("GET"))
        .and(path("/oidc/token"))
        .and(query_param("api-version", "2.0"))
        .and(query_param("audience", "api://AzureADTokenExchange"))
        .and(header(
            "authorization",
            format!("Bearer {REQUEST_TOKEN}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "count": 1, "value": OIDC_JWT })),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .and(body_string_contains(
            "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
        ))
        .and(body_string_contains(format!("client_assertion={OIDC_JWT}")))
        .and(body_string_contains(format!("client_id={CLIENT_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "access_token": ACCESS_TOKEN })))
        .expect(1)
        .mount(&server)
        .await;
    mount_get(
        &server,
        ResponseTemplate::new(200).set_body_json(federation(&seed.old, Some(&seed.new))),
    )
    .await;
    let dir = repo(&server.uri(), &[&seed.old, &seed.new]);
    let oidc_url = format!("{}/oidc/token?api-version=2.0", server.uri());
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-06T00:00:00Z",
        &[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &oidc_url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN),
            // The OIDC token comes first: the secret is not used.
            ("KEYROLL_ENTRA_CLIENT_SECRET", SECRET),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("entra: signing in with the GitHub Actions OIDC token"),
        "{}",
        text(&out)
    );
    assert_no_secret(&out, &[REQUEST_TOKEN, OIDC_JWT, SECRET, ACCESS_TOKEN]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_signs_a_client_assertion_naming_it_by_x5t() {
    let seed = seed();
    let server = MockServer::start().await;
    // ring makes no RSA keys: a test key made once with `openssl genpkey` (PKCS#8).
    let key = rcgen::KeyPair::from_pem(include_str!("data/entra-client-test-key.pem")).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["keyroll-entra".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .and(body_string_contains("client_assertion="))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "access_token": ACCESS_TOKEN })),
        )
        .mount(&server)
        .await;
    mount_get(
        &server,
        ResponseTemplate::new(200).set_body_json(federation(&seed.old, None)),
    )
    .await;
    let dir = repo(&server.uri(), &[&seed.old]);
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-01T00:00:00Z",
        &[("KEYROLL_ENTRA_CLIENT_CERTIFICATE", &pem)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let token_request = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "POST")
        .unwrap();
    let form = String::from_utf8(token_request.body).unwrap();
    let assertion = form
        .split('&')
        .find_map(|p| p.strip_prefix("client_assertion="))
        .unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = assertion.split('.').collect();
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    let sha1 = keyroll::model::cert::Certificate::from_der(cert.der().to_vec())
        .unwrap()
        .sha1;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5t"], sha1.to_x5t());
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(
        claims["aud"],
        format!("{}/{TENANT}/oauth2/v2.0/token", server.uri())
    );
    // The signature verifies with the certificate's key.
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        x509_public_key(cert.der()),
    );
    public
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &b64.decode(parts[2]).unwrap(),
        )
        .unwrap();
    assert_no_secret(&out, &[ACCESS_TOKEN, assertion]);
    for line in key
        .serialize_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(!text(&out).contains(line));
    }
}

/// The subjectPublicKey bits of a certificate (what ring verifies with).
fn x509_public_key(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_certificate_ad_fs_no_longer_publishes_is_an_error() {
    let seed = seed();
    let gone = Key::new(
        "ADFS Signing (2012)",
        datetime!(2012-07-25 0:00 UTC),
        datetime!(2014-08-25 0:00 UTC),
    );
    let server = graph_answering(
        ResponseTemplate::new(200).set_body_json(federation(&gone, Some(&seed.old))),
    )
    .await;
    let dir = repo(&server.uri(), &[&seed.old]);
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-01T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "Entra ID's current certificate {} is not published by AD FS any more",
            gone.hex()
        )),
        "{}",
        text(&out)
    );
}

/// One bad Graph answer: the exit code, what the message must say, and that nothing
/// but the one read was sent.
async fn bad_answer(answer: ResponseTemplate, says: &[&str]) {
    let seed = seed();
    let server = MockServer::start().await;
    mount_secret_token(&server).await;
    mount_get(&server, answer).await;
    let dir = repo(&server.uri(), &[&seed.old, &seed.new]);
    for command in ["check", "apply"] {
        let out = keyroll(
            dir.path(),
            &["entra", command],
            "2014-07-06T00:00:00Z",
            &secret_env(),
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        for needle in says {
            assert!(text(&out).contains(needle), "{needle}:\n{}", text(&out));
        }
        assert_no_secret(&out, &[SECRET, ACCESS_TOKEN]);
    }
    assert!(
        graph_requests(&server)
            .await
            .iter()
            .all(|r| r == &format!("GET {GET_PATH}")),
        "{:?}",
        graph_requests(&server).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_names_the_missing_permission() {
    bad_answer(
        ResponseTemplate::new(403).set_body_json(json!({"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}})),
        &[
            "lacks the application permission Domain.Read.All",
            "Insufficient privileges",
            CLIENT_ID,
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_names_the_permission_and_echoes_no_token() {
    bad_answer(
        ResponseTemplate::new(401).set_body_json(json!({"error": {"code": "InvalidAuthenticationToken", "message": format!("Access token {ACCESS_TOKEN} is invalid")}})),
        &["Graph refused the token (401)", "Domain.Read.All"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_says_the_domain_is_not_federated() {
    bad_answer(
        ResponseTemplate::new(404).set_body_json(json!({"error": {"code": "Request_ResourceNotFound", "message": "Resource 'contoso.com' does not exist."}})),
        &["contoso.com: not a federated domain of tenant contoso.onmicrosoft.com"],
    )
    .await;
    bad_answer(
        ResponseTemplate::new(200).set_body_json(json!({"value": []})),
        &[
            "not a federated domain",
            "empty federationConfiguration list",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_beyond_the_longest_wait_names_retry_after() {
    bad_answer(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "3600")
            .set_body_json(
                json!({"error": {"code": "TooManyRequests", "message": "Too many requests"}}),
            ),
        &["throttling keyroll (429)", "retry after 3600 seconds"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_the_expected_fields_are_refused() {
    bad_answer(
        ResponseTemplate::new(200).set_body_json(json!({"value": [{"id": "fed-config-1"}]})),
        &["has no `signingCertificate`"],
    )
    .await;
    bad_answer(
        ResponseTemplate::new(200)
            .set_body_json(json!({"value": [{"signingCertificate": "MIIB"}]})),
        &["has no federation configuration `id`"],
    )
    .await;
    bad_answer(
        ResponseTemplate::new(200).set_body_json(json!({"items": []})),
        &["has no `value` list"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_with_a_short_retry_after_is_waited_out() {
    let seed = seed();
    let server = MockServer::start().await;
    mount_secret_token(&server).await;
    Mock::given(method("GET"))
        .and(path(GET_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_get(
        &server,
        ResponseTemplate::new(200).set_body_json(federation(&seed.old, Some(&seed.new))),
    )
    .await;
    let dir = repo(&server.uri(), &[&seed.old, &seed.new]);
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-06T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(graph_requests(&server).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_credential_check_fails_and_plan_shows_entra_not_read() {
    let seed = seed();
    let server = MockServer::start().await;
    let dir = repo(&server.uri(), &[&seed.old]);
    let out = keyroll(dir.path(), &["entra", "check"], "2014-07-01T00:00:00Z", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no credential"), "{}", text(&out));
    let out = keyroll(dir.path(), &["plan"], "2014-07-01T00:00:00Z", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Entra ID not read: no credential"),
        "{}",
        text(&out)
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn graph_and_login_urls_are_microsofts_hosts_or_a_loopback_fake() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keyroll.toml"),
        format!("[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\n\n[[federated_domain]]\ndomain = \"contoso.com\"\nissuer = \"adfs\"\ntenant = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\ngraph_url = \"http://graph.example.com\"\n"),
    )
    .unwrap();
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-01T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("keyroll.toml:10:1: federated_domain \"contoso.com\": graph_url \"http://graph.example.com\" is plain http to a host that is not loopback"),
        "{}",
        text(&out)
    );
    // keyroll.toml is repository content: a login or Graph URL naming another https host
    // would get the client secret or the access token. Only Microsoft's hosts.
    std::fs::write(
        dir.path().join("keyroll.toml"),
        format!("[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\n\n[[federated_domain]]\ndomain = \"contoso.com\"\nissuer = \"adfs\"\ntenant = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\nlogin_url = \"https://login.attacker.example\"\n"),
    )
    .unwrap();
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-01T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("login_url \"https://login.attacker.example\" is not one of Microsoft's hosts for it (login.microsoftonline.com, "),
        "{}",
        text(&out)
    );
    assert_no_secret(&out, &[SECRET]);
    std::fs::write(
        dir.path().join("keyroll.toml"),
        "[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\n\n[[federated_domain]]\ndomain = \"contoso.com\"\nissuer = \"adfx\"\ntenant = \"t\"\nclient_id = \"c\"\n",
    )
    .unwrap();
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-01T00:00:00Z",
        &secret_env(),
    );
    assert!(
        text(&out).contains("names issuer \"adfx\", which no [[issuer]] defines"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuers_promotion_threshold_moves_the_promotion_date() {
    let seed = seed();
    let server =
        graph_answering(ResponseTemplate::new(200).set_body_json(federation(&seed.old, None)))
            .await;
    let dir = repo(&server.uri(), &[&seed.old, &seed.new]);
    let toml = std::fs::read_to_string(dir.path().join("keyroll.toml")).unwrap();
    std::fs::write(
        dir.path().join("keyroll.toml"),
        toml.replacen(
            "metadata = [\"FederationMetadata.xml\"]\n",
            "metadata = [\"FederationMetadata.xml\"]\npromotion_threshold = \"10d\"\n",
            1,
        ),
    )
    .unwrap();
    // With 10 days, 2014-07-12 is before promotion (07-15), not a lockout.
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-12T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("which AD FS promotes on 2014-07-15 (3 days left)"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sign_in_quotes_entras_reason_and_sends_no_graph_request() {
    let seed = seed();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": format!("AADSTS7000215: Invalid client secret provided ({SECRET}).")
        })))
        .mount(&server)
        .await;
    let dir = repo(&server.uri(), &[&seed.old]);
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-01T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the token request to")
            && text(&out).contains("failed with HTTP 401: invalid_client: AADSTS7000215: Invalid client secret provided (***)"),
        "{}",
        text(&out)
    );
    assert!(graph_requests(&server).await.is_empty());
    let out = keyroll(
        dir.path(),
        &["entra", "check", "--domain", "fabrikam.com"],
        "2014-07-01T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("--domain fabrikam.com: no [[federated_domain]] has that domain"),
        "{}",
        text(&out)
    );
}

/// An organisation run's dashboard shows what each job's `keyroll entra check --format json`
/// found: a missing next key in its own section, a lockout among the failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_each_repositorys_entra_verdicts() {
    let seed = seed();
    let server =
        graph_answering(ResponseTemplate::new(200).set_body_json(federation(&seed.old, None)))
            .await;
    let dir = repo(&server.uri(), &[&seed.old, &seed.new]);
    let results = tempfile::tempdir().unwrap();
    for (folder, now) in [
        ("missing", "2014-07-06T00:00:00Z"),
        ("lockout", "2014-07-10T12:00:00Z"),
    ] {
        let out = keyroll(
            dir.path(),
            &["entra", "check", "--format", "json"],
            now,
            &secret_env(),
        );
        let job = results.path().join(folder);
        std::fs::create_dir_all(&job).unwrap();
        std::fs::write(job.join("repository.txt"), format!("contoso/{folder}\n")).unwrap();
        std::fs::write(job.join("entra.json"), &out.stdout).unwrap();
        std::fs::write(
            job.join("pr.json"),
            json!({"schema": "keyroll.pr/v1", "issuers": []}).to_string(),
        )
        .unwrap();
        std::fs::write(job.join("exit-code.txt"), "0\n").unwrap();
    }
    let summary = results.path().join("summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "dashboard",
            "--no-issue",
            "--now",
            "2014-07-10T12:00:00Z",
            "--results",
        ])
        .arg(results.path())
        .arg("--write-summary")
        .arg(&summary)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_REPOSITORY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(
        summary.contains(&format!(
            "| `contoso/missing` | `contoso.com: Entra ID lacks {}, which AD FS promotes on 2014-07-10 (4 days left)` |",
            seed.new.hex()
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "| `contoso/lockout` | `contoso.com (Entra ID): lockout: AD FS signs with {} since 2014-07-10, Entra ID holds it nowhere` |",
            seed.new.hex()
        )),
        "{summary}"
    );
    assert!(summary.contains("**1 failed**"), "{summary}");
    assert!(
        summary.contains("1 with a federated domain whose Entra ID copy lacks AD FS's next key."),
        "{summary}"
    );
}

/// Entra ID holds the old key as current and AD FS's current key only as its next
/// certificate; AD FS now publishes a third key. Writing the third into the next slot would
/// push out the key AD FS signs with (the lockout `entra apply` exists to prevent): apply
/// refuses, sends no PATCH, and says what to do first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_never_pushes_out_the_key_ad_fs_signs_with_from_the_next_slot() {
    let seed = seed();
    let third = Key::new(
        "ADFS Signing - adfs.contoso.com (2015)",
        datetime!(2014-07-20 0:00 UTC),
        datetime!(2015-07-20 0:00 UTC),
    );
    let server = graph_answering(
        ResponseTemplate::new(200).set_body_json(federation(&seed.old, Some(&seed.new))),
    )
    .await;
    let dir = repo(&server.uri(), &[&seed.old, &seed.new, &third]);
    // 2014-07-21: AD FS signs with the 2014 key (promoted on 07-10), the 2015 key is next.
    let out = keyroll(
        dir.path(),
        &["entra", "apply"],
        "2014-07-21T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "Entra ID holds {}, the key AD FS signs with, only as its next certificate, so AD FS's next key {} cannot be added",
            seed.new.hex(),
            third.hex()
        )),
        "{}",
        text(&out)
    );
    assert!(
        !graph_requests(&server)
            .await
            .iter()
            .any(|r| r.starts_with("PATCH")),
        "nothing is written"
    );
}

/// A next certificate in Entra ID that AD FS never published is trusted by Entra for the
/// domain (a planted backdoor): an error, never "in step".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_certificate_ad_fs_does_not_publish_is_an_error() {
    let seed = seed();
    let rogue = Key::new(
        "Not AD FS",
        datetime!(2014-01-01 0:00 UTC),
        datetime!(2016-01-01 0:00 UTC),
    );
    let server = graph_answering(
        ResponseTemplate::new(200).set_body_json(federation(&seed.old, Some(&rogue))),
    )
    .await;
    let dir = repo(&server.uri(), &[&seed.old]);
    for command in ["check", "apply"] {
        let out = keyroll(
            dir.path(),
            &["entra", command],
            "2014-07-01T00:00:00Z",
            &secret_env(),
        );
        assert_eq!(out.status.code(), Some(1), "{command}: {}", text(&out));
        assert!(
            text(&out).contains(&format!(
                "Entra ID trusts a next certificate AD FS does not publish: {}",
                rogue.hex()
            )),
            "{command}: {}",
            text(&out)
        );
    }
    assert!(
        !graph_requests(&server)
            .await
            .iter()
            .any(|r| r.starts_with("PATCH"))
    );
}

/// `--allow-http` (which `keyroll()` passes, for the loopback fakes) lets `entra` read the AD
/// FS metadata over plain http only from a loopback host: a key slipped into the document on the wire would be written into Entra ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_reads_metadata_over_http_only_from_loopback() {
    let seed = seed();
    let server =
        graph_answering(ResponseTemplate::new(200).set_body_json(federation(&seed.old, None)))
            .await;
    let dir = repo(&server.uri(), &[&seed.old]);
    let toml = std::fs::read_to_string(dir.path().join("keyroll.toml")).unwrap();
    // 192.0.2.1 (TEST-NET-1): never reached; the scheme is refused before any connection.
    std::fs::write(
        dir.path().join("keyroll.toml"),
        toml.replace(
            "metadata = [\"FederationMetadata.xml\"]",
            "metadata = [\"http://192.0.2.1/FederationMetadata/2007-06/FederationMetadata.xml\"]",
        ),
    )
    .unwrap();
    let out = keyroll(
        dir.path(),
        &["entra", "apply"],
        "2014-07-01T00:00:00Z",
        &secret_env(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "refusing plain http:// here: a key read from it would be written to Entra ID"
        ),
        "{}",
        text(&out)
    );
    assert!(
        !graph_requests(&server)
            .await
            .iter()
            .any(|r| r.starts_with("PATCH"))
    );
}

/// A next certificate AD FS withdrew (it left the metadata and its grace period ended),
/// listed again by an old document replayed, is not AD FS's next key for Entra ID either:
/// `entra check` stays in step instead of asking for it, unless the run accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_next_certificate_listed_again_is_not_asked_of_entra() {
    let seed = seed();
    let server =
        graph_answering(ResponseTemplate::new(200).set_body_json(federation(&seed.old, None)))
            .await;
    let dir = repo(&server.uri(), &[&seed.old, &seed.new]);
    let env = secret_env();
    let apply = |now: &str| {
        let out = keyroll(dir.path(), &["apply"], now, &[]);
        assert!(out.status.success(), "{}", text(&out));
    };
    apply("2014-07-06T00:00:00Z");
    // Withdrawn the next day; seven days' grace ends on 07-14.
    write_metadata(dir.path(), &[&seed.old]);
    apply("2014-07-07T00:00:00Z");
    apply("2014-07-15T00:00:00Z");
    // 07-16: the old document, replayed.
    write_metadata(dir.path(), &[&seed.old, &seed.new]);
    let out = keyroll(
        dir.path(),
        &["entra", "check"],
        "2014-07-16T00:00:00Z",
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("in step"), "{}", text(&out));
    let out = keyroll(
        dir.path(),
        &["entra", "check", "--accept-identity-change", "adfs"],
        "2014-07-16T00:00:00Z",
        &env,
    );
    assert!(
        text(&out).contains(&seed.new.hex()),
        "accepted, it is AD FS's next key again: {}",
        text(&out)
    );
}
