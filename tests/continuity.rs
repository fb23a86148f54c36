//! Identity continuity over an AD FS rollover, through the binary, with metadata signed by
//! the Debian `xmlsec1` CLI: the next key arrives in a document signed by the current key
//! (added); days later the document is signed by the new key (still trusted, continuity
//! holds); a document that suddenly lists only an unrelated key is refused by `apply` and by
//! `pr`, signed by that key or unsigned, unless the run accepts an identity change.

mod sigkit;

use std::path::Path;
use std::process::{Command, Output};

use sigkit::{ENTITY_ID, Shape, Signer, entity, keys, signature_template, xmlsec_sign};
use time::OffsetDateTime;

fn signed(signer: &Signer, first: &Signer, second: &Signer) -> String {
    let template = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        entity(
            "_a1",
            ENTITY_ID,
            &signature_template(&Shape::default(), "#_a1"),
            &first.base64(),
            &second.base64(),
        )
    );
    xmlsec_sign(&template, signer)
}

fn unsigned(first: &Signer, second: &Signer) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        entity("_a1", ENTITY_ID, "", &first.base64(), &second.base64())
    )
}

struct Repo {
    dir: tempfile::TempDir,
    start: OffsetDateTime,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let current = &keys().current;
        std::fs::write(
            dir.path().join("Web.config"),
            format!(
                "<configuration><configSections><section name=\"system.identityModel\" type=\"x\" /></configSections><system.identityModel><identityConfiguration><issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\"><trustedIssuers>\n<add thumbprint=\"{}\" name=\"adfs\" />\n</trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>\n",
                current.certificate.sha1
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("keyroll.toml"),
            format!(
                "[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\nentity_id = \"{ENTITY_ID}\"\n\n[[target]]\nfiles = [\"Web.config\"]\nissuers = [\"adfs\"]\n\n[pr]\nrepository = \"o/r\"\n"
            ),
        )
        .unwrap();
        Repo {
            dir,
            // The test keys were made just now: act a day later.
            start: OffsetDateTime::now_utc() + time::Duration::days(1),
        }
    }

    fn metadata(&self, text: &str) {
        std::fs::write(self.dir.path().join("md.xml"), text).unwrap();
    }

    fn run(&self, day: i64, args: &[&str]) -> Output {
        let now = self.start + time::Duration::days(day);
        Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(args)
            .args(["--now", &keyroll::model::cert::rfc3339(now)])
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    fn config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("Web.config")).unwrap()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn rollover_signed_by_the_current_key_then_by_the_new_one_keeps_continuity() {
    let k = keys();
    let repo = Repo::new();
    // AD FS publishes its next key, in a document signed by the current one.
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    let out = repo.run(0, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(repo.config().contains(&k.next.certificate.sha1.to_string()));
    let plan = repo.run(0, &["plan"]);
    assert!(
        text(&plan).contains(&format!(
            "signed by {} (rsa-sha256), signature valid; trusted: {} is trusted for this issuer in Web.config:2",
            k.current.certificate.sha1, k.current.certificate.sha1
        )),
        "{}",
        text(&plan)
    );

    // Five days later the next key is primary and signs the document.
    repo.metadata(&signed(&k.next, &k.current, &k.next));
    let out = repo.run(5, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("signed by {}", k.next.certificate.sha1)),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unrelated_key_signing_its_own_takeover_is_refused_by_apply_and_pr() {
    let k = keys();
    let repo = Repo::new();
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    assert!(repo.run(0, &["apply"]).status.success());
    let before = repo.config();
    let lock = std::fs::read_to_string(repo.path().join("keyroll.lock")).unwrap();

    // A hijacked host serves a document listing only the attacker's key, signed by it.
    repo.metadata(&signed(&k.attacker, &k.attacker, &k.attacker));
    let out = repo.run(1, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("a key this issuer was never trusted with"),
        "{}",
        text(&out)
    );
    assert_eq!(repo.config(), before, "nothing written");
    assert_eq!(
        std::fs::read_to_string(repo.path().join("keyroll.lock")).unwrap(),
        lock
    );
    let out = repo.run(1, &["pr", "--dry-run", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["issuers"][0]["operation"], "failed");
    assert!(json["issuers"][0]["proposal"].is_null());
}

#[test]
fn an_unsigned_document_with_only_unknown_keys_is_an_identity_change() {
    let k = keys();
    let repo = Repo::new();
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    assert!(repo.run(0, &["apply"]).status.success());
    let before = repo.config();

    repo.metadata(&unsigned(&k.attacker, &k.attacker));
    let out = repo.run(1, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("identity change, not a rollover"),
        "{}",
        text(&out)
    );
    assert_eq!(repo.config(), before);

    // Accepted for one run, the PR says what it is.
    let out = repo.run(
        1,
        &[
            "pr",
            "--dry-run",
            "--format",
            "json",
            "--accept-identity-change",
            "adfs",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let title = json["issuers"][0]["proposal"]["title"].as_str().unwrap();
    assert!(title.contains("IDENTITY CHANGE of adfs"), "{title}");
}

#[test]
fn a_broken_signature_or_a_required_but_missing_one_changes_nothing() {
    let k = keys();
    let repo = Repo::new();
    // One byte changed inside the signed content: the digest no longer matches.
    let tampered = signed(&k.current, &k.current, &k.next).replacen("Contoso", "Contosa", 1);
    repo.metadata(&tampered);
    let out = repo.run(0, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("signature refused"), "{}", text(&out));
    assert!(!repo.config().contains(&k.next.certificate.sha1.to_string()));

    let toml = std::fs::read_to_string(repo.path().join("keyroll.toml")).unwrap();
    std::fs::write(
        repo.path().join("keyroll.toml"),
        toml.replace("entity_id =", "signature = \"required\"\nentity_id ="),
    )
    .unwrap();
    repo.metadata(&unsigned(&k.current, &k.next));
    let out = repo.run(0, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("requires a signed document"),
        "{}",
        text(&out)
    );
}
