//! Issue 25's four holes in metadata trust, each as an attacker would use it, through the
//! binary on documents signed by the Debian `xmlsec1` CLI; and the downgrade, first-run and
//! retired-signer rules. Every refusal: exit 1, nothing written, a message naming why.

mod sigkit;

use std::path::Path;
use std::process::{Command, Output};

use sigkit::{ENTITY_ID, MD, Shape, Signer, entity, keys, signature_template, xmlsec_sign};
use time::OffsetDateTime;

const OTHER_ID: &str = "https://other.example.test/";

fn other_key() -> &'static Signer {
    static KEY: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();
    KEY.get_or_init(|| Signer::generate("keyroll-test-other-issuer", 2048))
}

/// `entity()` for `entity_id`, signed by `signer` (xmlsec1), listing `first` and `second`.
fn signed_as(entity_id: &str, signer: &Signer, first: &Signer, second: &Signer) -> String {
    let template = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        entity(
            "_a1",
            entity_id,
            &signature_template(&Shape::default(), "#_a1"),
            &first.base64(),
            &second.base64(),
        )
    );
    xmlsec_sign(&template, signer)
}

fn signed(signer: &Signer, first: &Signer, second: &Signer) -> String {
    signed_as(ENTITY_ID, signer, first, second)
}

fn unsigned_as(entity_id: &str, first: &Signer, second: &Signer) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        entity("_a1", entity_id, "", &first.base64(), &second.base64())
    )
}

fn unsigned(first: &Signer, second: &Signer) -> String {
    unsigned_as(ENTITY_ID, first, second)
}

fn key_descriptor(key: &Signer) -> String {
    format!(
        "<md:KeyDescriptor xmlns:md=\"{MD}\" use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
        key.base64()
    )
}

fn web_config(entries: &[(String, &str)]) -> String {
    let adds: String = entries
        .iter()
        .map(|(t, name)| format!("<add thumbprint=\"{t}\" name=\"{name}\" />\n"))
        .collect();
    format!(
        "<configuration><configSections><section name=\"system.identityModel\" type=\"x\" /></configSections><system.identityModel><identityConfiguration><issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\"><trustedIssuers>\n{adds}</trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>\n"
    )
}

fn sha1(key: &Signer) -> String {
    key.certificate.sha1.to_string()
}

struct Repo {
    dir: tempfile::TempDir,
    start: OffsetDateTime,
}

impl Repo {
    /// One issuer, `adfs`, whose current key Web.config trusts.
    fn new(issuer_extra: &str) -> Repo {
        let repo = Repo::bare();
        repo.write(
            "Web.config",
            &web_config(&[(sha1(&keys().current), "adfs")]),
        );
        repo.write(
            "keyroll.toml",
            &format!(
                "[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\nentity_id = \"{ENTITY_ID}\"\n{issuer_extra}\n[[target]]\nfiles = [\"Web.config\"]\nissuers = [\"adfs\"]\n\n[pr]\nrepository = \"o/r\"\n"
            ),
        );
        repo
    }

    fn bare() -> Repo {
        Repo {
            dir: tempfile::tempdir().unwrap(),
            // The test keys were made just now: act a day later.
            start: OffsetDateTime::now_utc() + time::Duration::days(1),
        }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn metadata(&self, text: &str) {
        self.write("md.xml", text);
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

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `args`, which must fail with exit 1 naming `why`, and checks nothing was written.
    fn refused(&self, day: i64, args: &[&str], why: &str) -> String {
        let config = self.read("Web.config");
        let lock = self.read("keyroll.lock");
        let out = self.run(day, args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        assert!(said.contains(why), "{args:?} should say {why:?}: {said}");
        assert_eq!(self.read("Web.config"), config, "{args:?}: nothing written");
        assert_eq!(self.read("keyroll.lock"), lock, "{args:?}: lock unchanged");
        said
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Hole 1: a KeyDescriptor slipped into the root's `ds:Signature` (a `ds:Object`, the
/// `ds:KeyInfo`, an extra child) is outside what the enveloped signature covers: the
/// signature still verifies (xmlsec1 agrees), so the document is refused as tampered, with a
/// signature required and the signer pinned, whether the tree reader (a processing
/// instruction before the root) or the stream (an aggregate) reads it.
#[test]
fn hole_1_a_key_inside_the_signature_is_refused_as_tampered() {
    let k = keys();
    let repo = Repo::new(&format!(
        "signature = \"required\"\nsigners = [\"{}\"]\n",
        sha1(&k.current)
    ));
    let good = signed(&k.current, &k.current, &k.next);
    let planted = key_descriptor(&k.attacker);
    let placements = [
        (
            "ds:Object",
            good.replacen(
                "</ds:Signature>",
                &format!("<ds:Object>{planted}</ds:Object></ds:Signature>"),
                1,
            ),
        ),
        (
            "ds:KeyInfo",
            good.replacen("</ds:KeyInfo>", &format!("{planted}</ds:KeyInfo>"), 1),
        ),
        (
            "extra child",
            good.replacen("</ds:Signature>", &format!("{planted}</ds:Signature>"), 1),
        ),
    ];
    for (place, doc) in &placements {
        assert_ne!(doc, &good, "{place}: planted");
        if *place == "ds:Object" {
            assert!(
                sigkit::xmlsec_verifies(doc),
                "the signature still verifies with the key in a ds:Object"
            );
        }
        for lead in [
            "",
            "<?keyroll a processing instruction?>\n<!-- and a comment -->\n",
        ] {
            let doc = doc.replacen("?>\n", &format!("?>\n{lead}"), 1);
            repo.metadata(&doc);
            let said = repo.refused(0, &["apply"], "inside the ds:Signature");
            assert!(said.contains("tampered"), "{said}");
            assert!(!said.contains(&sha1(&k.attacker)), "{place}: {said}");
            let out = repo.run(0, &["inspect", "md.xml"]);
            assert_eq!(out.status.code(), Some(1), "{place}: {}", text(&out));
        }
    }
    // The same key in an aggregate's root signature: the stream leaves it to the tree
    // reader, which refuses it the same way.
    let inner = good.split_once("?>\n").unwrap().1;
    let template = format!(
        "<?xml version=\"1.0\"?>\n<EntitiesDescriptor xmlns=\"{MD}\" ID=\"_fed\">{}{inner}</EntitiesDescriptor>\n",
        signature_template(&Shape::default(), "#_fed")
    );
    let aggregate = xmlsec_sign(&template, &k.current);
    let planted_aggregate = {
        let end = aggregate.find("</ds:Signature>").unwrap();
        format!(
            "{}<ds:Object>{planted}</ds:Object>{}",
            &aggregate[..end],
            &aggregate[end..]
        )
    };
    assert!(sigkit::xmlsec_verifies(&planted_aggregate));
    repo.metadata(&planted_aggregate);
    repo.refused(0, &["apply"], "inside the ds:Signature");
    // Untouched, both documents are fine.
    repo.metadata(&aggregate);
    let out = repo.run(0, &["plan"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Hole 2: issuer `other`'s token-signing key sits in the same registry as `adfs`'s. A
/// document for `adfs` listing only an attacker's key, signed with `other`'s key, must not
/// be vouched for by it.
#[test]
fn hole_2_another_issuers_key_never_vouches() {
    let k = keys();
    let other = other_key();
    let repo = Repo::bare();
    repo.write(
        "Web.config",
        &web_config(&[(sha1(&k.current), "adfs"), (sha1(other), "other")]),
    );
    repo.write(
        "keyroll.toml",
        &format!(
            "[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\nentity_id = \"{ENTITY_ID}\"\n\n[[issuer]]\nname = \"other\"\nmetadata = [\"other.xml\"]\nentity_id = \"{OTHER_ID}\"\n\n[[target]]\nfiles = [\"Web.config\"]\nissuers = [\"adfs\", \"other\"]\n\n[pr]\nrepository = \"o/r\"\n"
        ),
    );
    repo.write("other.xml", &signed_as(OTHER_ID, other, other, other));
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    let out = repo.run(0, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = text(&repo.run(0, &["plan"]));
    // Which rule made each signer trusted.
    assert!(
        plan.contains(&format!(
            "trusted: {} is trusted for this issuer in Web.config:2",
            sha1(&k.current)
        )),
        "{plan}"
    );

    // The attack: signed by `other`'s key, which Web.config trusts (for `other`).
    repo.metadata(&signed(other, &k.attacker, &k.attacker));
    let said = repo.refused(1, &["apply"], "never trusted with");
    assert!(said.contains(&sha1(other)), "{said}");
    assert!(
        said.contains("another issuer's key never vouches"),
        "{said}"
    );
    let out = repo.run(1, &["pr", "--dry-run", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Even when its entry carries this issuer's name: the key is `other`'s.
    repo.write(
        "Web.config",
        &web_config(&[(sha1(&k.current), "adfs"), (sha1(other), "adfs")]),
    );
    repo.refused(1, &["apply"], "never trusted with");
    repo.write(
        "Web.config",
        &web_config(&[(sha1(&k.current), "adfs"), (sha1(other), "other")]),
    );

    // On a first run (no keyroll.lock) it is no different.
    std::fs::remove_file(repo.path().join("keyroll.lock")).unwrap();
    repo.write(
        "Web.config",
        &web_config(&[(sha1(&k.current), "adfs"), (sha1(other), "other")]),
    );
    // `other`'s own first run goes ahead; nothing of `adfs`'s does.
    let out = repo.run(1, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("never trusted with"), "{}", text(&out));
    assert!(!repo.read("Web.config").contains(&sha1(&k.attacker)));
    let lock = repo.read("keyroll.lock");
    assert!(
        lock.contains("name = \"other\"") && !lock.contains("name = \"adfs\""),
        "{lock}"
    );
}

/// Hole 3: freshness holds for unsigned documents too, and for the validUntil of any element
/// holding the keys; `inspect` and `plan` show validUntil and cacheDuration.
#[test]
fn hole_3_a_stale_document_is_refused_signed_or_not() {
    let k = keys();
    let repo = Repo::new("");
    let stale = unsigned(&k.current, &k.next).replace(
        "validUntil=\"2031-01-01T00:00:00Z\"",
        "validUntil=\"2020-01-01T00:00:00Z\"",
    );
    repo.metadata(&stale);
    let said = repo.refused(0, &["apply"], "is stale");
    assert!(said.contains("2020-01-01T00:00:00Z"), "{said}");
    let inspect = text(&repo.run(0, &["inspect", "md.xml"]));
    assert!(
        inspect.contains("validUntil: 2020-01-01T00:00:00Z (PAST"),
        "{inspect}"
    );
    assert!(inspect.contains("cacheDuration: PT1H"), "{inspect}");

    // In an aggregate: the issuer's entity stale, another entity fresh; then the entity
    // fresh and the nested EntitiesDescriptor holding it stale.
    let body = |s: &str| s.split_once("?>\n").unwrap().1.to_string();
    let fresh_other = body(&unsigned_as(OTHER_ID, &k.attacker, &k.attacker));
    let aggregate = format!(
        "<?xml version=\"1.0\"?>\n<EntitiesDescriptor xmlns=\"{MD}\">{fresh_other}{}</EntitiesDescriptor>\n",
        body(&stale)
    );
    repo.metadata(&aggregate);
    repo.refused(0, &["apply"], "is stale");
    let nested = format!(
        "<?xml version=\"1.0\"?>\n<EntitiesDescriptor xmlns=\"{MD}\">{fresh_other}<EntitiesDescriptor validUntil=\"2021-06-01T00:00:00Z\">{}</EntitiesDescriptor></EntitiesDescriptor>\n",
        body(&unsigned(&k.current, &k.next))
    );
    repo.metadata(&nested);
    let said = repo.refused(0, &["apply"], "is stale");
    assert!(said.contains("2021-06-01T00:00:00Z"), "{said}");
    // Only the issuer's own entity counts: a stale neighbour does not block it.
    let neighbour = format!(
        "<?xml version=\"1.0\"?>\n<EntitiesDescriptor xmlns=\"{MD}\">{}{}</EntitiesDescriptor>\n",
        fresh_other.replace("2031-01-01", "2019-01-01"),
        body(&unsigned(&k.current, &k.next))
    );
    repo.metadata(&neighbour);
    let out = repo.run(0, &["plan"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("validUntil 2031-01-01T00:00:00Z; cacheDuration PT1H"),
        "{}",
        text(&out)
    );
}

/// cacheDuration is measured from when keyroll.lock first recorded the exact bytes: the same
/// document read past it is a warning naming when it should have been refreshed.
#[test]
fn a_document_served_unchanged_past_its_cache_duration_is_a_warning() {
    let k = keys();
    let repo = Repo::new("");
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    let out = repo.run(0, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    let lock = repo.read("keyroll.lock");
    assert!(lock.contains("[[issuer.document]]"), "{lock}");
    assert!(lock.contains("signed_since"), "{lock}");
    let out = repo.run(0, &["plan"]);
    assert!(!text(&out).contains("cacheDuration PT1H: keyroll first read"));
    let out = repo.run(2, &["plan", "--detailed-exitcode"]);
    let said = text(&out);
    assert!(
        said.contains("cacheDuration PT1H: keyroll first read these exact bytes on")
            && said.contains("should have been refreshed by"),
        "{said}"
    );
    // The warning changes nothing by itself.
    assert_eq!(out.status.code(), Some(0), "{said}");
}

fn edit_plan(repo: &Repo, edit: impl Fn(&mut serde_json::Value)) {
    let mut plan: serde_json::Value = serde_json::from_str(&repo.read("plan.json")).unwrap();
    edit(&mut plan);
    repo.write("plan.json", &serde_json::to_string_pretty(&plan).unwrap());
}

/// Hole 4: `apply plan.json` decides again and writes only that decision: an edited plan
/// (hashes recomputed) is refused, nothing written.
#[test]
fn hole_4_an_edited_saved_plan_is_refused() {
    let k = keys();
    let repo = Repo::new("");
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    let out = repo.run(0, &["plan", "--out", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let saved = repo.read("plan.json");
    let attacker = sha1(&k.attacker);
    let next = sha1(&k.next);

    let set_after = |plan: &mut serde_json::Value, after: String| {
        plan["files"][0]["after_sha256"] = keyroll::act::saved::sha256(after.as_bytes()).into();
        plan["files"][0]["after"] = after.into();
    };
    // Another key in the new bytes.
    edit_plan(&repo, |plan| {
        let after = plan["files"][0]["after"]
            .as_str()
            .unwrap()
            .replace(&next, &attacker);
        set_after(plan, after);
    });
    repo.refused(
        0,
        &["apply", "plan.json"],
        "deciding again from the same inputs",
    );
    // A config left trusting nothing.
    repo.write("plan.json", &saved);
    edit_plan(&repo, |plan| {
        let after = web_config(&[]);
        set_after(plan, after);
    });
    repo.refused(
        0,
        &["apply", "plan.json"],
        "deciding again from the same inputs",
    );
    // Malformed XML.
    repo.write("plan.json", &saved);
    edit_plan(&repo, |plan| {
        let after = plan["files"][0]["after"]
            .as_str()
            .unwrap()
            .replace("</trustedIssuers>", "");
        set_after(plan, after);
    });
    repo.refused(
        0,
        &["apply", "plan.json"],
        "deciding again from the same inputs",
    );
    // keyroll.lock made to "remember" the attacker's key as the issuer's.
    repo.write("plan.json", &saved);
    edit_plan(&repo, |plan| {
        let lock = plan["lock_after"]
            .as_str()
            .unwrap()
            .replace(&next, &attacker);
        plan["lock_after"] = lock.into();
    });
    repo.refused(
        0,
        &["apply", "plan.json"],
        "keyroll.lock's new text differs",
    );

    // The plan as made applies, and writes what it says.
    repo.write("plan.json", &saved);
    let out = repo.run(0, &["apply", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(repo.read("Web.config").contains(&next));
}

/// An issuer whose documents were signed: an unsigned one afterwards is a downgrade, an
/// identity change, even listing the same keys; `signature = "off"` lifts it.
#[test]
fn downgrade_from_signed_to_unsigned_is_an_identity_change() {
    let k = keys();
    let repo = Repo::new("");
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    assert!(repo.run(0, &["apply"]).status.success());

    repo.metadata(&unsigned(&k.current, &k.next));
    let said = repo.refused(1, &["apply"], "identity change, not a rollover");
    assert!(said.contains("downgrade"), "{said}");
    assert!(said.contains("signed since"), "{said}");
    repo.refused(1, &["plan"], "downgrade");

    // Accepted once, the record of signing goes: the next unsigned run is ordinary.
    let out = repo.run(1, &["apply", "--accept-identity-change", "adfs"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!repo.read("keyroll.lock").contains("signed_since"));
    let out = repo.run(2, &["plan"]);
    assert!(out.status.success(), "{}", text(&out));

    // signature = "off": the issuer's signing history is not enforced.
    let repo = Repo::new("signature = \"off\"\n");
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    assert!(repo.run(0, &["apply"]).status.success());
    repo.metadata(&unsigned(&k.current, &k.next));
    let out = repo.run(1, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// With no keyroll.lock yet, the keys the configs trust for the issuer stand in for its
/// history: metadata listing none of them is an identity change; stale extra entries beside
/// a listed key are not.
#[test]
fn first_run_metadata_listing_none_of_the_configs_keys_is_an_identity_change() {
    let k = keys();
    let repo = Repo::new("");
    repo.metadata(&unsigned(&k.attacker, &k.attacker));
    let said = repo.refused(0, &["apply"], "identity change, not a rollover");
    assert!(said.contains(&sha1(&k.current)), "{said}");
    assert!(said.contains("Web.config:2"), "{said}");

    // A stale extra entry beside the listed current key: an ordinary first run.
    repo.write(
        "Web.config",
        &web_config(&[
            (sha1(&k.current), "adfs"),
            ("0123456789ABCDEF0123456789ABCDEF01234567".into(), "adfs"),
        ]),
    );
    repo.metadata(&unsigned(&k.current, &k.next));
    let out = repo.run(0, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(repo.read("Web.config").contains(&sha1(&k.next)));
}

/// A key keyroll.lock records as retired (no longer published, kept in the configs through
/// its grace period) vouches for nothing.
#[test]
fn a_retired_key_no_longer_vouches() {
    let k = keys();
    let repo = Repo::new("");
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    assert!(repo.run(0, &["apply"]).status.success());
    // Promotion: the next key signs a document that lists only itself.
    repo.metadata(&signed(&k.next, &k.next, &k.next));
    let out = repo.run(6, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    let lock = repo.read("keyroll.lock");
    assert!(lock.contains("missing_since"), "{lock}");
    assert!(
        repo.read("Web.config").contains(&sha1(&k.current)),
        "in grace"
    );

    // The retired key's holder signs a document listing an attacker's key.
    repo.metadata(&signed(&k.current, &k.attacker, &k.attacker));
    let said = repo.refused(7, &["apply"], "retired");
    assert!(said.contains(&sha1(&k.current)), "{said}");
}

/// Byte offset of `line L, column C` (a key's location) in an ASCII document.
fn offset_of(text: &str, location: &str) -> usize {
    let (line, column) = location
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(", column "))
        .map(|(l, c)| (l.parse::<usize>().unwrap(), c.parse::<usize>().unwrap()))
        .unwrap_or_else(|| panic!("location {location}"));
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    line_start + column - 1
}

/// Byte ranges of every `ds:Signature` element (`ds:Signature` or, with a default
/// namespace, `Signature`, as these documents write it).
fn signature_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for (i, _) in text.match_indices('<') {
        let rest = &text[i + 1..];
        let (closing, rest) = match rest.strip_prefix('/') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let name_end = rest
            .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
            .unwrap_or(rest.len());
        if !matches!(&rest[..name_end], "Signature" | "ds:Signature") {
            continue;
        }
        if closing {
            let start = open.pop().unwrap();
            ranges.push(start..i + rest.find('>').unwrap() + 2);
        } else {
            open.push(i);
        }
    }
    ranges
}

/// The differential check: over signed documents (xmlsec1-signed, real ones, aggregates,
/// and each with a key planted inside its signature), keyroll never calls valid what
/// xmlsec1 refuses, and every key keyroll reads from a document it calls valid lies inside
/// the signed element and outside every `ds:Signature`.
#[test]
fn every_key_read_lies_inside_the_signed_element_and_outside_every_signature() {
    let k = keys();
    let single = signed(&k.current, &k.current, &k.next);
    let inner = single.split_once("?>\n").unwrap().1;
    let template = format!(
        "<?xml version=\"1.0\"?>\n<EntitiesDescriptor xmlns=\"{MD}\" ID=\"_fed\">{}{inner}{}</EntitiesDescriptor>\n",
        signature_template(&Shape::default(), "#_fed"),
        unsigned_as(OTHER_ID, &k.attacker, &k.next)
            .split_once("?>\n")
            .unwrap()
            .1
            .replace("ID=\"_a1\"", "ID=\"_a2\"")
    );
    let aggregate = xmlsec_sign(&template, &k.current);
    let mut documents: Vec<(String, String)> = vec![
        ("single".into(), single.clone()),
        ("aggregate".into(), aggregate.clone()),
    ];
    for name in [
        "adfs-v2-metadata.xml",
        "adfs-v3-metadata.xml",
        "azuread-common.xml",
    ] {
        let text =
            std::fs::read_to_string(Path::new("tests/data/signature/corpus").join(name)).unwrap();
        documents.push((name.into(), text));
    }
    for (name, doc) in documents.clone() {
        let Some(end) = signature_ranges(&doc).first().map(|r| {
            // Just before the signature's end tag.
            doc[..r.end].rfind("</").unwrap()
        }) else {
            continue;
        };
        let planted = format!(
            "{}<ds:Object xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">{}</ds:Object>{}",
            &doc[..end],
            key_descriptor(&k.attacker),
            &doc[end..]
        );
        documents.push((format!("{name} planted"), planted));
    }
    let mut valid = 0;
    for (name, doc) in &documents {
        let xmlsec = sigkit::xmlsec_verifies(doc);
        let read = keyroll::load::metadata::parse(name, doc.as_bytes(), OffsetDateTime::UNIX_EPOCH);
        let Ok(read) = read else {
            let error = read.unwrap_err().to_string();
            assert!(name.ends_with("planted"), "{name}: {error}");
            assert!(error.contains("inside the ds:Signature"), "{name}: {error}");
            continue;
        };
        assert!(!name.ends_with("planted"), "{name}: a planted key was read");
        let report = read.signature_report.as_ref().unwrap();
        if !report.is_valid() {
            continue;
        }
        assert!(xmlsec, "{name}: keyroll calls valid what xmlsec1 refuses");
        valid += 1;
        let signed = report.signed_element.as_ref().unwrap().range.clone();
        let signatures = signature_ranges(doc);
        assert!(!signatures.is_empty(), "{name}");
        for key in &read.keys {
            let at = offset_of(doc, &key.location);
            assert!(
                signed.contains(&at),
                "{name}: {} outside {signed:?}",
                key.location
            );
            assert!(
                signatures.iter().all(|s| !s.contains(&at)),
                "{name}: {} inside a signature",
                key.location
            );
        }
    }
    assert!(valid >= 4, "{valid} documents verified");
}

/// A saved plan is judged when it is applied, not only when it was made: its `as_of` is the
/// file's word. A document that went stale since, or a plan dated in the future (its grace
/// periods and expiries judged then), is refused, nothing written; and the errors `apply`
/// reports are the plan's as decided again, not the file's (emptied, they hid a failure).
#[test]
fn a_saved_plan_is_judged_at_the_time_it_is_applied() {
    let k = keys();
    let repo = Repo::new("");
    let valid_until = keyroll::model::cert::rfc3339(repo.start + time::Duration::days(3));
    let fresh_for_three_days = unsigned(&k.current, &k.next).replace(
        "validUntil=\"2031-01-01T00:00:00Z\"",
        &format!("validUntil=\"{valid_until}\""),
    );
    assert_ne!(fresh_for_three_days, unsigned(&k.current, &k.next));
    repo.metadata(&fresh_for_three_days);
    let out = repo.run(0, &["plan", "--out", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    // Five days later the document is stale: a plain apply refuses it, and so does the plan.
    repo.refused(5, &["apply"], "is stale");
    let said = repo.refused(5, &["apply", "plan.json"], "the plan is out of date");
    assert!(said.contains("is stale"), "{said}");
    // A plan made "in four days" applied today: refused.
    repo.metadata(&unsigned(&k.current, &k.next));
    let out = repo.run(4, &["plan", "--out", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    repo.refused(
        0,
        &["apply", "plan.json"],
        "a plan from the future is not applied",
    );

    // An issuer whose metadata is missing fails; its error emptied from the file still
    // fails the apply, and is named.
    let toml = repo.read("keyroll.toml");
    repo.write(
        "keyroll.toml",
        &format!(
            "{toml}\n[[issuer]]\nname = \"other\"\nmetadata = [\"missing.xml\"]\n\n[[target]]\nfiles = [\"Other.config\"]\nissuers = [\"other\"]\n"
        ),
    );
    repo.write("Other.config", &web_config(&[(sha1(&k.current), "other")]));
    let out = repo.run(0, &["plan", "--out", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    edit_plan(&repo, |plan| plan["errors"] = serde_json::json!([]));
    let out = repo.run(0, &["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("error: issuer other:") && text(&out).contains("missing.xml"),
        "{}",
        text(&out)
    );
    assert!(
        repo.read("Web.config").contains(&sha1(&k.next)),
        "adfs's change is written"
    );
}

/// A saved plan dated in the past writes keyroll.lock as of the day it is applied: a plan
/// made "six days ago" would otherwise record a key as gone from the metadata since then, and
/// the next run would remove it with its seven-day grace period almost over.
#[test]
fn a_backdated_saved_plan_does_not_shorten_a_grace_period() {
    let k = keys();
    let repo = Repo::new("");
    repo.metadata(&unsigned(&k.current, &k.next));
    let out = repo.run(10, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(repo.read("Web.config").contains(&sha1(&k.next)));

    // Day 20: the current key leaves the metadata. The plan is made "on day 14".
    repo.metadata(&unsigned(&k.next, &k.next));
    let out = repo.run(14, &["plan", "--out", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = repo.run(20, &["apply", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let day_20 = keyroll::model::cert::rfc3339(repo.start + time::Duration::days(20));
    let lock = repo.read("keyroll.lock");
    assert!(
        lock.contains(&format!("missing_since = {day_20}"))
            || lock.contains(&format!("missing_since = \"{day_20}\"")),
        "the key left on the day the plan was applied: {lock}"
    );
    // Day 22: inside the grace period that began on day 20, the key stays.
    let out = repo.run(22, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        repo.read("Web.config").contains(&sha1(&k.current)),
        "{}",
        text(&out)
    );
}

/// `entity()` signed by `signer`, listing `keys` (two or three).
fn signed_listing(signer: &Signer, keys: &[&Signer]) -> String {
    let mut template = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        entity(
            "_a1",
            ENTITY_ID,
            &signature_template(&Shape::default(), "#_a1"),
            &keys[0].base64(),
            &keys[1].base64(),
        )
    );
    for key in &keys[2..] {
        let at = template.find("  </RoleDescriptor>").unwrap();
        template.insert_str(at, &key_descriptor(key));
    }
    xmlsec_sign(&template, signer)
}

/// Hole 2 through the document itself: Web.config also trusts a partner keyroll.toml does
/// not name. A document signed with the partner's key that lists that key (and the issuer's,
/// to look continuous) must not make it "this issuer's" and so vouch for itself: a signer
/// vouches only on evidence the document did not supply. On a first run the registry's
/// names do not say the partner's entry is the issuer's; after one, keyroll.lock's keys
/// carry the issuer's name, in this registry or another.
#[test]
fn a_document_never_vouches_for_itself_by_listing_its_signer() {
    let k = keys();
    let partner = other_key();
    let repo = Repo::new("");
    let both = web_config(&[(sha1(&k.current), "adfs"), (sha1(partner), "partner")]);
    repo.write("Web.config", &both);
    let forged = signed_listing(partner, &[partner, &k.attacker, &k.current]);

    // First run, no keyroll.lock: refused, nothing written.
    repo.metadata(&forged);
    let said = repo.refused(0, &["apply"], "never trusted with");
    assert!(said.contains(&sha1(partner)), "{said}");
    assert!(!repo.read("Web.config").contains(&sha1(&k.attacker)));

    // The issuer's own document, signed by the key Web.config trusts under its name, goes
    // ahead on a first run.
    repo.metadata(&signed(&k.current, &k.current, &k.next));
    let out = repo.run(0, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(repo.read("Web.config").contains(&sha1(&k.next)));

    // After it, in the same registry and in another one the target covers.
    repo.metadata(&forged);
    let said = repo.refused(1, &["apply"], "never trusted with");
    assert!(said.contains(&sha1(partner)), "{said}");
    let two_registries = repo.read("Web.config").replace(
        &format!(
            "<add thumbprint=\"{}\" name=\"partner\" />\n",
            sha1(partner)
        ),
        "",
    );
    let two_registries = two_registries.replace(
        "</system.identityModel>",
        &format!(
            "<identityConfiguration name=\"partners\"><issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\"><trustedIssuers>\n<add thumbprint=\"{}\" name=\"partner\" />\n</trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel>",
            sha1(partner)
        ),
    );
    repo.write("Web.config", &two_registries);
    let said = repo.refused(1, &["apply"], "never trusted with");
    assert!(said.contains(&sha1(partner)), "{said}");
    assert!(!repo.read("Web.config").contains(&sha1(&k.attacker)));
}
