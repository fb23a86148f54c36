//! Retries that must not make two of anything (issue 26, item 6). A fake GitHub creates the
//! object, then answers 502 or too late for the client's timeout, as GitHub's front end can;
//! each test counts what the fake holds afterwards. Comments and issues are looked for by
//! their hidden marker before being sent again; a pull request is sent again (GitHub refuses
//! a second one for the same head); POSTs that add to a set are sent again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyroll::act::github::{GitHub, GitHubError, NewPull, RepoName, RetryPolicy, Secret};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const REPO: &str = "/repos/contoso/identity-configs";
/// The client's timeout in these tests; a late answer comes after twice that.
const TIMEOUT: Duration = Duration::from_millis(400);

/// How the fake answers a creating POST after it has done what was asked.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Created, then 502.
    BadGateway,
    /// Created, then answered after the client gave up.
    Late,
    /// Not created: 502.
    LostBeforeCreating,
    /// Not created: 429 with Retry-After: 0 (GitHub refuses rate-limited calls unperformed).
    RateLimited,
}

#[derive(Default)]
struct State {
    /// The faults still to play, first first, on creating POSTs.
    faults: Vec<Fault>,
    /// Comments on issue 7 (bodies), issues (bodies), pull requests (heads).
    comments: Vec<String>,
    issues: Vec<String>,
    pulls: Vec<String>,
    labels: Vec<String>,
    /// Every request: `METHOD /path`.
    seen: Vec<String>,
    /// When set, listing comments or issues fails (404): the look cannot be made.
    listing_fails: bool,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn with(faults: &[Fault]) -> Fake {
        let fake = Fake::default();
        fake.0.lock().unwrap().faults = faults.to_vec();
        fake
    }

    async fn serve(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }

    fn seen(&self, call: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| *s == call)
            .count()
    }
}

fn issue(number: usize, body: &str) -> Value {
    json!({
        "number": number,
        "html_url": format!("https://github.com/contoso/identity-configs/issues/{number}"),
        "state": "open",
        "body": body,
    })
}

impl Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let method = request.method.as_str();
        let path = request.url.path().to_string();
        state.seen.push(format!("{method} {path}"));
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let creates = method == "POST";
        let fault = if creates && !state.faults.is_empty() {
            Some(state.faults.remove(0))
        } else {
            None
        };
        match fault {
            Some(Fault::LostBeforeCreating) => {
                return ResponseTemplate::new(502).set_body_string("Bad Gateway");
            }
            Some(Fault::RateLimited) => {
                return ResponseTemplate::new(429)
                    .insert_header("retry-after", "0")
                    .set_body_json(json!({"message": "secondary rate limit"}));
            }
            _ => {}
        }
        let answer = match (method, path.trim_start_matches(REPO)) {
            ("POST", "/issues/7/comments") => {
                state
                    .comments
                    .push(body["body"].as_str().unwrap().to_string());
                ResponseTemplate::new(201).set_body_json(json!({"id": state.comments.len()}))
            }
            ("GET", "/issues/7/comments") if !state.listing_fails => {
                // GitHub's listing filters on `since`; every test's comments are recent.
                assert!(request.url.query_pairs().any(|(k, _)| k == "since"));
                let list: Vec<Value> = state
                    .comments
                    .iter()
                    .enumerate()
                    .map(|(i, b)| json!({"id": i + 1, "body": b}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("POST", "/issues") => {
                state
                    .issues
                    .push(body["body"].as_str().unwrap().to_string());
                ResponseTemplate::new(201)
                    .set_body_json(issue(state.issues.len(), state.issues.last().unwrap()))
            }
            ("GET", "/issues") if !state.listing_fails => {
                // Newest first, as asked; a pull request in the list is not an issue.
                let mut list: Vec<Value> = state
                    .issues
                    .iter()
                    .enumerate()
                    .map(|(i, b)| issue(i + 1, b))
                    .rev()
                    .collect();
                list.push(json!({
                    "number": 99, "html_url": "https://github.com/contoso/identity-configs/pull/99",
                    "state": "open", "body": "", "pull_request": {}
                }));
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("POST", "/pulls") => {
                let head = body["head"].as_str().unwrap().to_string();
                if state.pulls.contains(&head) {
                    // What GitHub answers for a second pull request from the same head.
                    return ResponseTemplate::new(422).set_body_json(json!({
                        "message": "Validation Failed",
                        "errors": [{"message": format!("A pull request already exists for contoso:{head}.")}]
                    }));
                }
                state.pulls.push(head.clone());
                ResponseTemplate::new(201).set_body_json(json!({
                    "number": state.pulls.len(),
                    "html_url": "https://github.com/contoso/identity-configs/pull/1",
                    "state": "open", "title": "t", "head": {"ref": head, "sha": "0"}
                }))
            }
            ("POST", "/issues/7/labels") => {
                // A set: adding a label twice holds it once.
                for label in body["labels"].as_array().unwrap() {
                    let label = label.as_str().unwrap().to_string();
                    if !state.labels.contains(&label) {
                        state.labels.push(label);
                    }
                }
                ResponseTemplate::new(200).set_body_json(json!([]))
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
        };
        match fault {
            Some(Fault::BadGateway) => ResponseTemplate::new(502).set_body_string("Bad Gateway"),
            Some(Fault::Late) => answer.set_delay(TIMEOUT * 3),
            _ => answer,
        }
    }
}

fn client(server: &MockServer) -> GitHub {
    GitHub::new(
        &server.uri(),
        Some(Secret::new("test-token")),
        false,
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(20),
            max_wait: Duration::from_secs(5),
        },
    )
    .with_timeout(TIMEOUT)
}

fn repo() -> RepoName {
    RepoName::parse("contoso/identity-configs").unwrap()
}

const COMMENTS: &str = "POST /repos/contoso/identity-configs/issues/7/comments";
const LIST_COMMENTS: &str = "GET /repos/contoso/identity-configs/issues/7/comments";
const ISSUES: &str = "POST /repos/contoso/identity-configs/issues";
const LIST_ISSUES: &str = "GET /repos/contoso/identity-configs/issues";

#[tokio::test]
async fn a_comment_created_before_a_502_or_a_timeout_is_not_posted_twice() {
    for fault in [Fault::BadGateway, Fault::Late] {
        let fake = Fake::with(&[fault]);
        let server = fake.serve().await;
        client(&server)
            .comment(&repo(), 7, "keyroll closes this pull request")
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        let state = fake.0.lock().unwrap();
        assert_eq!(state.comments.len(), 1, "{fault:?}: {:?}", state.comments);
        assert!(
            state.comments[0]
                .starts_with("keyroll closes this pull request\n\n<!-- keyroll-request: ")
        );
        drop(state);
        assert_eq!(fake.seen(COMMENTS), 1, "{fault:?}");
        assert_eq!(fake.seen(LIST_COMMENTS), 1, "{fault:?}: looked for it once");
    }
}

#[tokio::test]
async fn a_comment_that_was_not_created_is_posted_again_after_looking() {
    let fake = Fake::with(&[Fault::LostBeforeCreating]);
    let server = fake.serve().await;
    client(&server).comment(&repo(), 7, "hello").await.unwrap();
    assert_eq!(fake.0.lock().unwrap().comments.len(), 1);
    assert_eq!(fake.seen(COMMENTS), 2);
    assert_eq!(fake.seen(LIST_COMMENTS), 1);

    // An earlier comment with the same text is not taken for this one: each call has its
    // own marker.
    let fake = Fake::with(&[Fault::LostBeforeCreating]);
    let server = fake.serve().await;
    let github = client(&server);
    fake.0.lock().unwrap().faults.clear();
    github.comment(&repo(), 7, "hello").await.unwrap();
    fake.0.lock().unwrap().faults = vec![Fault::LostBeforeCreating];
    github.comment(&repo(), 7, "hello").await.unwrap();
    assert_eq!(fake.0.lock().unwrap().comments.len(), 2);
    assert_eq!(fake.seen(COMMENTS), 3);
}

#[tokio::test]
async fn a_rate_limited_comment_is_sent_again_without_looking() {
    let fake = Fake::with(&[Fault::RateLimited]);
    let server = fake.serve().await;
    client(&server).comment(&repo(), 7, "hello").await.unwrap();
    assert_eq!(fake.0.lock().unwrap().comments.len(), 1);
    assert_eq!(fake.seen(COMMENTS), 2);
    assert_eq!(fake.seen(LIST_COMMENTS), 0);
}

#[tokio::test]
async fn when_the_comment_cannot_be_looked_for_it_is_not_sent_again() {
    let fake = Fake::with(&[Fault::BadGateway]);
    fake.0.lock().unwrap().listing_fails = true;
    let server = fake.serve().await;
    let error = client(&server)
        .comment(&repo(), 7, "hello")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GitHubError::Unconfirmed { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("HTTP 502")
            && text.contains("looking for it failed")
            && text.contains("HTTP 404")
            && text.contains("so it was not sent again"),
        "{text}"
    );
    assert_eq!(fake.seen(COMMENTS), 1);
    assert_eq!(fake.0.lock().unwrap().comments.len(), 1);
}

#[tokio::test]
async fn a_comment_too_long_for_a_marker_is_not_sent_again_after_a_502() {
    let fake = Fake::with(&[Fault::BadGateway]);
    let server = fake.serve().await;
    let body = "x".repeat(65_530);
    let error = client(&server)
        .comment(&repo(), 7, &body)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("it carries no marker to look for"),
        "{error}"
    );
    assert_eq!(fake.seen(COMMENTS), 1);
    assert_eq!(fake.seen(LIST_COMMENTS), 0);
    assert_eq!(fake.0.lock().unwrap().comments, [body]);
}

#[tokio::test]
async fn the_dashboard_issue_created_before_a_502_or_a_timeout_is_not_created_twice() {
    for fault in [Fault::BadGateway, Fault::Late] {
        let fake = Fake::with(&[fault]);
        // An older issue from another run with the same text is not this one.
        fake.0
            .lock()
            .unwrap()
            .issues
            .push("<!-- keyroll-dashboard -->\nbody".into());
        let server = fake.serve().await;
        let created = client(&server)
            .create_issue(
                &repo(),
                "keyroll dashboard",
                "<!-- keyroll-dashboard -->\nbody",
                &["keyroll-dashboard".into()],
            )
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"))
            .expect("sent");
        assert_eq!(created.number, 2, "{fault:?}: the one this call made");
        assert_eq!(fake.0.lock().unwrap().issues.len(), 2, "{fault:?}");
        assert_eq!(fake.seen(ISSUES), 1, "{fault:?}");
        assert_eq!(fake.seen(LIST_ISSUES), 1, "{fault:?}");
    }
}

#[tokio::test]
async fn a_dashboard_issue_that_was_not_created_is_created_after_looking() {
    let fake = Fake::with(&[Fault::LostBeforeCreating, Fault::LostBeforeCreating]);
    let server = fake.serve().await;
    let created = client(&server)
        .create_issue(&repo(), "t", "<!-- keyroll-dashboard -->\n", &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.number, 1);
    assert_eq!(fake.0.lock().unwrap().issues.len(), 1);
    assert_eq!(fake.seen(ISSUES), 3);
    assert_eq!(fake.seen(LIST_ISSUES), 2);
}

#[tokio::test]
async fn a_pull_request_created_before_a_502_is_refused_the_second_time_by_github() {
    // The client sends it again (GitHub's 422 is the check); `keyroll pr` then finds and
    // updates the open one (tests/pr.rs conflict_422_finds_and_updates_the_existing_pull_request).
    let fake = Fake::with(&[Fault::BadGateway]);
    let server = fake.serve().await;
    let new = NewPull {
        title: "t",
        body: "b",
        branch: "keyroll/contoso-adfs",
        base: "main",
        draft: false,
    };
    let error = client(&server)
        .create_pull(&repo(), &new)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(422), "{error}");
    assert!(error.to_string().contains("already exists"), "{error}");
    assert_eq!(fake.0.lock().unwrap().pulls.len(), 1);
    assert_eq!(fake.seen("POST /repos/contoso/identity-configs/pulls"), 2);
}

#[tokio::test]
async fn labels_added_before_a_502_are_added_again_and_held_once() {
    let fake = Fake::with(&[Fault::BadGateway]);
    let server = fake.serve().await;
    client(&server)
        .add_labels(&repo(), 7, &["keyroll".into()])
        .await
        .unwrap();
    assert_eq!(
        fake.seen("POST /repos/contoso/identity-configs/issues/7/labels"),
        2
    );
    assert_eq!(fake.0.lock().unwrap().labels, ["keyroll"]);
}

/// An answer cut off before its end (the connection closes mid-body) is an error naming
/// it, after the retries, never an empty answer: a listing read as empty would be "nothing
/// to do" (no repository, no pull request).
#[tokio::test]
async fn a_cut_off_answer_is_an_error_not_an_empty_one() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let served = Arc::new(Mutex::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            *count.lock().unwrap() += 1;
            // 2,000 bytes announced, 20 sent, then the connection closes.
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n[{\"name\": \"identity-",
            );
        }
    });
    let github = GitHub::new(
        &format!("http://{address}"),
        Some(Secret::new("test-token")),
        false,
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(10),
            max_wait: Duration::from_secs(5),
        },
    )
    .with_timeout(TIMEOUT);
    let error = github
        .org_repositories("contoso", 1)
        .await
        .err()
        .expect("a cut-off listing is an error");
    assert!(
        matches!(error, GitHubError::Transport { .. }) && error.to_string().contains("cut off"),
        "{error}"
    );
    // A GET is sent again: each attempt was cut off.
    assert_eq!(*served.lock().unwrap(), 3);
}

/// With `commits = "api"` the branch is moved by `PATCH git/refs`, which has no
/// compare-and-swap: keyroll reads the branch just before and moves it only while it is
/// still the head it checked. A person's push since is left as it is, and the error says so.
#[tokio::test]
async fn an_api_branch_that_moved_since_it_was_checked_is_not_moved() {
    use wiremock::matchers::{method, path};
    let server = MockServer::start().await;
    let reference = format!("{REPO}/git/ref/heads%2Fkeyroll%2Fcontoso");
    Mock::given(method("GET"))
        .and(path(reference.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": {"sha": "b".repeat(40)}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let github = client(&server);
    let repo = RepoName::parse("contoso/identity-configs").unwrap();
    let ours = "c".repeat(40);
    let error = github
        .set_branch(&repo, "keyroll/contoso", &ours, Some(&"a".repeat(40)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitHubError::Moved { .. })
            && error
                .to_string()
                .contains(&format!("now at {}", "b".repeat(40))),
        "{error}"
    );
    let patches = |requests: Vec<Request>| {
        requests
            .iter()
            .filter(|r| r.method.as_str() == "PATCH")
            .count()
    };
    assert_eq!(patches(server.received_requests().await.unwrap()), 0);
    // Still at the head checked: moved.
    github
        .set_branch(&repo, "keyroll/contoso", &ours, Some(&"b".repeat(40)))
        .await
        .unwrap();
    assert_eq!(patches(server.received_requests().await.unwrap()), 1);
}
