//! Findings of this round's attacker reviews, each through the binary on the embedded demo:
//! a registry whose keys a deploy tool fills in gets no key added beside its placeholder (the
//! deploy would make a duplicate WIF refuses); text from metadata reaches a pull request body
//! as text, never as a link, image, HTML or @mention; keyroll.toml's `[pr] api_url` never
//! overrides the runner's GITHUB_API_URL, which gets the token.

mod common;

use std::path::Path;
use std::process::{Command, Output};

const NOW: &str = "2026-11-23T12:00:00Z";

fn keyroll(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyroll"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_API_URL")
        .env_remove("GITHUB_SERVER_URL")
        .env("KEYROLL_TEST_FAST_RETRY", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

/// `keyroll <command> --config keyroll.toml --now NOW` in the demo copy `dir`.
fn in_demo(dir: &Path, command: &str) -> Output {
    keyroll(
        dir,
        &[command, "--config", "keyroll.toml", "--now", NOW],
        &[],
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::demo_dir(), dir.path());
    dir
}

#[test]
fn no_key_is_added_beside_a_deploy_time_placeholder() {
    let dir = demo();
    let config = dir.path().join("src/Contoso.Web/Web.config");
    let text_before = std::fs::read_to_string(&config).unwrap();
    // Every entry of the registry becomes the deploy's placeholder.
    let re_add = regex_lite_adds(&text_before);
    assert!(!re_add.is_empty(), "the demo's Web.config trusts keys");
    let mut with_placeholder = text_before.clone();
    for (i, add) in re_add.iter().enumerate() {
        let replacement = if i == 0 {
            "<add thumbprint=\"#{AdfsThumbprint}\" name=\"http://adfs.contoso.com/adfs/services/trust\" />".to_string()
        } else {
            String::new()
        };
        with_placeholder = with_placeholder.replacen(add, &replacement, 1);
    }
    std::fs::write(&config, &with_placeholder).unwrap();
    let out = in_demo(dir.path(), "apply");
    let said = text(&out);
    assert!(
        said.contains(
            "this registry's keys are filled in at deploy time (placeholder #{AdfsThumbprint}"
        ),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        with_placeholder,
        "nothing added beside the placeholder"
    );
}

/// The `<add …/>` elements of a config, as written.
fn regex_lite_adds(text: &str) -> Vec<String> {
    let mut adds = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("<add thumbprint=") {
        let end = rest[at..].find("/>").unwrap() + at + 2;
        adds.push(rest[at..end].to_string());
        rest = &rest[end..];
    }
    adds
}

#[test]
fn metadata_text_in_a_pull_request_body_is_never_markup() {
    let dir = demo();
    let metadata = dir.path().join("metadata/FederationMetadata.xml");
    let xml = std::fs::read_to_string(&metadata).unwrap();
    let original = "entityID=\"http://adfs.contoso.com/adfs/services/trust\"";
    assert!(xml.contains(original));
    let hostile = "http://adfs.contoso.com/x [click](https://evil.example/) ![t](https://evil.example/t.png) &lt;img src=x&gt; @contoso/admins";
    std::fs::write(
        &metadata,
        xml.replace(original, &format!("entityID=\"{hostile}\"")),
    )
    .unwrap();
    // keyroll.toml no longer pins the entityID, and the configs have no name for new keys:
    // the new entry's name is the entityID, quoted in the change's note.
    let toml: String = std::fs::read_to_string(dir.path().join("keyroll.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("entity_id"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("keyroll.toml"), toml).unwrap();
    // And a config's own name for the issuer, which a new entry copies (the change's note
    // quotes it).
    let config = dir.path().join("src/Contoso.Web/Web.config");
    let text_before = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_before.replace(
            "name=\"http://adfs.contoso.com/adfs/services/trust\"",
            &format!("name=\"{hostile}\""),
        ),
    )
    .unwrap();
    let out = keyroll(
        dir.path(),
        &["pr", "--dry-run", "--config", "keyroll.toml", "--now", NOW],
        &[],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let body = said
        .split("--- pull request body")
        .nth(1)
        .unwrap_or_else(|| panic!("{said}"));
    // Code spans and fenced blocks (the diff) render as written: what is outside them must
    // not be markup.
    let mut fenced = false;
    let prose: String = body
        .lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .map(|line| {
            line.split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(_, part)| part)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        prose.contains("evil.example"),
        "the hostile text is quoted:\n{body}"
    );
    // Markup that is not backslash-escaped.
    let unescaped = |pattern: &str| {
        prose
            .match_indices(pattern)
            .any(|(i, _)| !prose[..i].ends_with('\\'))
    };
    for markup in ["](https://evil", "![", "<img", "@contoso/admins"] {
        assert!(!unescaped(markup), "{markup:?} in the body:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyroll_toml_never_overrides_the_runners_api_url() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let dir = demo();
    let toml = std::fs::read_to_string(dir.path().join("keyroll.toml")).unwrap();
    let toml = toml.replace(
        "[pr]\n",
        "[pr]\napi_url = \"https://api.attacker.example\"\n",
    );
    assert!(
        toml.contains("api.attacker.example"),
        "the demo has a [pr] table"
    );
    std::fs::write(dir.path().join("keyroll.toml"), toml).unwrap();
    // The runner's API: a dry run with a token reads the open pull requests there.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    let (root, api) = (dir.path().to_path_buf(), server.uri());
    let out = tokio::task::spawn_blocking(move || {
        keyroll(
            &root,
            &[
                "pr",
                "--dry-run",
                "--token",
                "test-token-123",
                "--config",
                "keyroll.toml",
                "--now",
                NOW,
            ],
            &[
                ("GITHUB_API_URL", &api),
                ("GITHUB_REPOSITORY", "contoso/identity-configs"),
            ],
        )
    })
    .await
    .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("attacker.example"), "{said}");
    let asked = server.received_requests().await.unwrap();
    assert!(!asked.is_empty(), "the runner's API was asked: {said}");
}

/// Two pasted copies of one key and no clean one (WIF reads them as two keys, so the file
/// loads): the first is cleaned and the second dropped, and the new key is added. Cleaning
/// both made two equal entries, which the write check refused, so the file was never rolled.
#[test]
fn two_pasted_copies_of_a_key_are_cleaned_into_one_and_the_roll_goes_on() {
    let dir = demo();
    let config = dir.path().join("src/Contoso.Web/Web.config");
    let text_before = std::fs::read_to_string(&config).unwrap();
    let clean = "<add thumbprint=\"5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379\" name=\"http://adfs.contoso.com/adfs/services/trust\" />";
    assert!(text_before.contains(clean));
    let pasted = text_before.replacen(
        clean,
        &format!(
            "{}\n          {}",
            clean.replace("\"5DD3", "\"&#x200E;5DD3"),
            clean.replace("379\"", "379&#x200E;\"")
        ),
        1,
    );
    std::fs::write(&config, &pasted).unwrap();
    let out = in_demo(dir.path(), "apply");
    assert!(out.status.success(), "{}", text(&out));
    let after = std::fs::read_to_string(&config).unwrap();
    assert_eq!(
        after
            .matches("5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379")
            .count(),
        1,
        "{after}"
    );
    assert!(!after.contains("&#x200E;"), "{after}");
    assert!(
        after.contains("81CB9F506E54F19731D89F749FBBCE8FE6476295"),
        "{after}"
    );
}

/// A Release transform that inserts a whole `<location>` holding a trust set: what the
/// published app trusts is not computed, so the file is an error naming it (it was skipped
/// without a word, and the published app kept only the old key).
#[test]
fn a_transform_inserting_a_location_with_a_registry_is_an_error_naming_it() {
    let dir = demo();
    std::fs::write(
        dir.path().join("src/Contoso.Web/Web.Release.config"),
        "<?xml version=\"1.0\"?>\n<configuration xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\">\n  <location path=\".\" xdt:Transform=\"Insert\">\n    <system.identityModel>\n      <identityConfiguration name=\"prod\">\n        <issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\">\n          <trustedIssuers>\n            <add thumbprint=\"5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379\" name=\"http://adfs.contoso.com/adfs/services/trust\" />\n          </trustedIssuers>\n        </issuerNameRegistry>\n      </identityConfiguration>\n    </system.identityModel>\n  </location>\n</configuration>\n",
    )
    .unwrap();
    let out = in_demo(dir.path(), "plan");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("src/Contoso.Web/Web.Release.config:4:5: uninterpreted-transform: xdt:Transform=\"Insert\" on <location> around <system.identityModel>"),
        "{}",
        text(&out)
    );
}

/// A single-quoted registry whose issuer name holds a `"`: the new entry keeps it inside its
/// single-quoted attribute (the quote conversion used to turn it into a `'` that ended the
/// attribute, the write check refused the file, and it was never rolled).
#[test]
fn a_double_quote_in_a_name_survives_a_single_quoted_registry() {
    let dir = demo();
    let config = dir.path().join("src/Contoso.Web/Web.config");
    let before = std::fs::read_to_string(&config).unwrap();
    let original = "<add thumbprint=\"5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379\" name=\"http://adfs.contoso.com/adfs/services/trust\" />";
    assert!(before.contains(original));
    std::fs::write(
        &config,
        before.replace(
            original,
            "<add thumbprint='5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379' name='Contoso \"ADFS\"' />",
        ),
    )
    .unwrap();
    let out = in_demo(dir.path(), "apply");
    assert!(out.status.success(), "{}", text(&out));
    let after = std::fs::read_to_string(&config).unwrap();
    assert!(
        after.contains(
            "<add thumbprint='81CB9F506E54F19731D89F749FBBCE8FE6476295' name='Contoso \"ADFS\"' />"
        ),
        "{after}"
    );
}

/// The force-push has a lease: keyroll pushes its branch only while the remote still holds
/// the head it checked (absent, or the commit it read). A commit a person pushed in between
/// is never overwritten; the push fails naming both heads, and nothing changes remotely.
#[test]
fn a_branch_that_moved_since_it_was_read_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (work, remote) = (dir.path().join("work"), dir.path().join("remote.git"));
    std::fs::create_dir_all(&work).unwrap();
    common::git(dir.path(), &["init", "-q", "--bare", "remote.git"]);
    common::git(&work, &["init", "-q"]);
    std::fs::write(work.join("Web.config"), "<configuration/>\n").unwrap();
    common::git(&work, &["add", "-A"]);
    common::git(&work, &["commit", "-q", "-m", "base"]);
    let url = remote.to_str().unwrap();
    common::git(&work, &["push", "-q", url, "main", "main:keyroll/contoso"]);
    let base = git2::Oid::from_str(&common::git(&work, &["rev-parse", "HEAD"])).unwrap();
    // A person's commit on keyroll's branch, pushed after keyroll read the branch at `base`.
    common::git(
        &work,
        &["commit", "-q", "--allow-empty", "-m", "a person's fix"],
    );
    common::git(&work, &["push", "-q", url, "HEAD:keyroll/contoso"]);
    let theirs = common::git(&work, &["rev-parse", "HEAD"]);

    let repo = keyroll::load::git::GitRepo::discover(&work).unwrap();
    let identity = keyroll::act::git::Identity {
        name: "keyroll".into(),
        email: "keyroll@example.com".into(),
    };
    let ours = repo
        .commit_files(
            base,
            &[("Web.config".into(), b"<configuration />\n".to_vec())],
            "keyroll: roll",
            &identity,
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
    let remote_head = |branch: &str| common::git(&remote, &["rev-parse", branch]);

    let error = repo
        .push(url, "keyroll/contoso", ours, Some(base), None)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("changed on the remote since keyroll read it")
            && error.contains(&base.to_string())
            && error.contains(&theirs),
        "{error}"
    );
    assert_eq!(remote_head("keyroll/contoso"), theirs, "nothing was pushed");
    // Expected absent, but it exists: refused too.
    let error = repo
        .push(url, "keyroll/contoso", ours, None, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("(absent;"), "{error}");
    assert_eq!(remote_head("keyroll/contoso"), theirs);

    // With the head the remote holds, the push goes ahead (a force-push: ours is not a
    // descendant of theirs); a new branch expected absent is created.
    let theirs_oid = git2::Oid::from_str(&theirs).unwrap();
    repo.push(url, "keyroll/contoso", ours, Some(theirs_oid), None)
        .unwrap();
    assert_eq!(remote_head("keyroll/contoso"), ours.to_string());
    repo.push(url, "keyroll/fabrikam", ours, None, None)
        .unwrap();
    assert_eq!(remote_head("keyroll/fabrikam"), ours.to_string());
}
