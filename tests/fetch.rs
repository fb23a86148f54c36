//! The fetcher against local HTTP servers (wiremock, and a raw socket for chunked bodies).

use std::time::Duration;

use keyroll::load::fetch::{FetchError, FetchOptions, Fetcher, USER_AGENT};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn options() -> FetchOptions {
    FetchOptions {
        allow_http: true,
        backoff: Duration::from_millis(10),
        total_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

const JWKS: &str = include_str!("data/metadata/azuread-jwks.json");

#[tokio::test]
async fn success_sends_user_agent_and_returns_body() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/keys"))
        .and(header("user-agent", USER_AGENT))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .expect(1)
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(options()).unwrap();
    let got = fetcher
        .get(&format!("{}/keys", server.uri()))
        .await
        .unwrap();
    assert_eq!(got.bytes, JWKS.as_bytes());
    assert!(USER_AGENT.starts_with("keyroll/"));
}

#[tokio::test]
async fn not_found_is_reported_with_status_and_url_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}/missing.xml", server.uri());
    let err = Fetcher::new(options())
        .unwrap()
        .get(&url)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{url}: server answered HTTP 404 (1 attempt)")
    );
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .expect(1)
        .mount(&server)
        .await;
    let got = Fetcher::new(options())
        .unwrap()
        .get(&format!("{}/keys", server.uri()))
        .await
        .unwrap();
    assert_eq!(got.bytes.len(), JWKS.len());
}

#[tokio::test]
async fn persistent_server_error_gives_up_after_the_retry_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(FetchOptions {
        retries: 2,
        ..options()
    })
    .unwrap();
    let err = fetcher.get(&server.uri()).await.unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn slow_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(JWKS)
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(FetchOptions {
        total_timeout: Duration::from_millis(200),
        retries: 1,
        ..options()
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = fetcher.get(&server.uri()).await.unwrap_err();
    // The timeout is the deadline for the whole fetch: the first attempt used it up, so
    // there is no second one (a per-attempt bound would have taken twice as long).
    assert!(
        matches!(err, FetchError::Timeout { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn oversized_body_with_content_length_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 4096]))
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(FetchOptions {
        max_bytes: 1024,
        ..options()
    })
    .unwrap();
    let err = fetcher.get(&server.uri()).await.unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 1024, .. }),
        "{err:?}"
    );
}

/// A server that sends a chunked body with no Content-Length: the cap must hold while streaming.
#[tokio::test]
async fn oversized_chunked_body_is_cut_off_while_streaming() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 1024];
        let _ = socket.read(&mut request).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let chunk = vec![b'y'; 512];
        for _ in 0..8 {
            let head = format!("{:x}\r\n", chunk.len());
            if socket.write_all(head.as_bytes()).await.is_err()
                || socket.write_all(&chunk).await.is_err()
                || socket.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
        let _ = socket.write_all(b"0\r\n\r\n").await;
    });
    let fetcher = Fetcher::new(FetchOptions {
        max_bytes: 1500,
        ..options()
    })
    .unwrap();
    let err = fetcher
        .get(&format!("http://{addr}/big"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 1500, .. }),
        "{err:?}"
    );
    server.abort();
}

#[tokio::test]
async fn redirect_to_plain_http_elsewhere_is_refused() {
    let target = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .expect(0)
        .mount(&target)
        .await;
    let origin = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/keys", target.uri()).as_str()),
        )
        .mount(&origin)
        .await;
    let err = Fetcher::new(options())
        .unwrap()
        .get(&origin.uri())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Redirect { .. }), "{err:?}");
    assert!(err.to_string().contains("is not https"), "{err}");
}

#[tokio::test]
async fn same_origin_http_redirect_is_followed_when_http_is_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/old"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/new"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/new"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .mount(&server)
        .await;
    let got = Fetcher::new(options())
        .unwrap()
        .get(&format!("{}/old", server.uri()))
        .await
        .unwrap();
    assert!(got.final_url.ends_with("/new"));
}

#[tokio::test]
async fn plain_http_is_refused_by_default() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(FetchOptions::default()).unwrap();
    let err = fetcher.get(&server.uri()).await.unwrap_err();
    assert!(matches!(err, FetchError::InsecureScheme { .. }), "{err:?}");
}

#[tokio::test]
async fn connection_refused_names_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let fetcher = Fetcher::new(FetchOptions {
        retries: 1,
        ..options()
    })
    .unwrap();
    let url = format!("http://{addr}/metadata.xml");
    let err = fetcher.get(&url).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&url), "{err}");
}

#[tokio::test]
async fn openid_configuration_is_followed_to_its_jwks() {
    let server = MockServer::start().await;
    let config = serde_json::json!({
        "issuer": "https://sts.windows.net/tenant/",
        "jwks_uri": format!("{}/discovery/keys", server.uri()),
    });
    Mock::given(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(config))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/discovery/keys"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .expect(1)
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(options()).unwrap();
    let doc = keyroll::load::metadata::load(
        &format!("{}/.well-known/openid-configuration", server.uri()),
        &fetcher,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(
        doc.kind,
        keyroll::load::metadata::DocumentKind::OpenidConfiguration
    );
    let thumbprints: Vec<String> = doc
        .keys
        .iter()
        .map(|k| k.thumbprint().to_string())
        .collect();
    assert_eq!(
        thumbprints,
        [
            "6B740DD01652EECE2737E05DAE36C5D18FCB74C3",
            "D92E120951ACF1283D2D2E80A8B22AE83A56FA0F"
        ]
    );
    assert!(
        doc.keys
            .iter()
            .all(|k| k.entity_id.as_deref() == Some("https://sts.windows.net/tenant/"))
    );
}
