//! Signing test metadata with an independent implementation: keys made by the `openssl`
//! CLI, documents signed by the Debian `xmlsec1` CLI (both installed by scripts/test; a
//! missing tool fails the test). Shared by tests/signature.rs and tests/continuity.rs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use keyroll::load::signature;
use keyroll::model::cert::Certificate;

pub const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const ID_ATTRS: [&str; 4] = [
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor",
];

// ---------------------------------------------------------------------------------------
// Test kit: tools, keys, templates.

pub fn run(tool: &str, args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {tool} ({e}): scripts/test installs it (Debian packages xmlsec1, openssl)"
            )
        })
}

/// A signing key and its self-signed certificate, made by `openssl req`.
pub struct Signer {
    pub key: PathBuf,
    pub cert: PathBuf,
    pub certificate: Certificate,
}

impl Signer {
    pub fn generate(name: &str, bits: u32) -> Signer {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("signature-keys");
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join(format!("{name}.key.pem"));
        let cert = dir.join(format!("{name}.cert.pem"));
        let out = run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                &format!("rsa:{bits}"),
                "-nodes",
                "-sha256",
                "-days",
                "3650",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ],
            &dir,
        );
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let certificate = Certificate::from_file_bytes(&std::fs::read(&cert).unwrap()).unwrap();
        Signer {
            key,
            cert,
            certificate,
        }
    }

    pub fn base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.certificate.der)
    }
}

/// The issuer's current key (signs), its next key (published only), an attacker's key, and
/// a 1024-bit legacy key. Generated once per test run.
pub struct Keys {
    pub current: Signer,
    pub next: Signer,
    pub attacker: Signer,
    pub weak: Signer,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        current: Signer::generate("keyroll-test-current", 2048),
        next: Signer::generate("keyroll-test-next", 2048),
        attacker: Signer::generate("keyroll-test-attacker", 2048),
        weak: Signer::generate("keyroll-test-weak", 1024),
    })
}

/// Signs a template (a document holding an empty `ds:Signature`) with `xmlsec1 --sign`.
pub fn xmlsec_sign(template: &str, signer: &Signer) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("template.xml"), template).unwrap();
    let key = format!(
        "{},{}",
        signer.key.to_str().unwrap(),
        signer.cert.to_str().unwrap()
    );
    let mut args = vec!["--sign", "--privkey-pem", &key];
    args.extend(ID_ATTRS);
    args.extend(["--output", "signed.xml", "template.xml"]);
    let out = run("xmlsec1", &args, dir.path());
    assert!(
        out.status.success(),
        "xmlsec1 --sign: {}\n{template}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.path().join("signed.xml")).unwrap()
}

/// xmlsec1's verdict: does the signature verify with the certificate in `KeyInfo`?
pub fn xmlsec_verifies(xml: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("doc.xml"), xml).unwrap();
    let mut args = vec!["--verify", "--insecure", "--enabled-key-data", "x509"];
    args.extend(ID_ATTRS);
    args.push("doc.xml");
    let out = run("xmlsec1", &args, dir.path());
    let text = String::from_utf8_lossy(&out.stderr);
    // Exit status 0 and "OK" go together; say so if they ever do not.
    assert_eq!(
        out.status.success(),
        text.lines().any(|l| l == "OK"),
        "xmlsec1 --verify: {text}"
    );
    out.status.success()
}

/// One Transform: algorithm and an optional InclusiveNamespaces PrefixList.
pub type Transform<'a> = (&'a str, Option<&'a str>);

pub struct Shape<'a> {
    pub c14n: &'a str,
    pub c14n_prefixes: Option<&'a str>,
    pub signature_method: &'a str,
    pub digest_method: &'a str,
    pub transforms: Vec<Transform<'a>>,
}

impl Default for Shape<'_> {
    /// What AD FS and Entra ID publish.
    fn default() -> Self {
        Shape {
            c14n: signature::EXC_C14N,
            c14n_prefixes: None,
            signature_method: signature::RSA_SHA256,
            digest_method: signature::SHA256,
            transforms: vec![
                (signature::ENVELOPED_SIGNATURE, None),
                (signature::EXC_C14N, None),
            ],
        }
    }
}

impl<'a> Shape<'a> {
    /// The default shape canonicalized with `c14n`, in SignedInfo and after the
    /// enveloped-signature transform alike.
    pub fn canonicalized(c14n: &'a str) -> Self {
        Shape {
            c14n,
            transforms: vec![(signature::ENVELOPED_SIGNATURE, None), (c14n, None)],
            ..Shape::default()
        }
    }

    /// The default shape signed with `signature_method` over `digest_method` digests.
    pub fn hashed(signature_method: &'a str, digest_method: &'a str) -> Self {
        Shape {
            signature_method,
            digest_method,
            ..Shape::default()
        }
    }
}

pub fn inclusive_namespaces(prefixes: Option<&str>) -> String {
    prefixes.map_or_else(String::new, |p| {
        format!(
            r#"<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="{p}"/>"#
        )
    })
}

/// An empty `ds:Signature` for xmlsec1 to fill in.
pub fn signature_template(shape: &Shape<'_>, uri: &str) -> String {
    let transforms: String = shape
        .transforms
        .iter()
        .map(|(algorithm, prefixes)| {
            format!(
                r#"<ds:Transform Algorithm="{algorithm}">{}</ds:Transform>"#,
                inclusive_namespaces(*prefixes)
            )
        })
        .collect();
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="{c14n}">{c14n_prefixes}</ds:CanonicalizationMethod>"#,
            r#"<ds:SignatureMethod Algorithm="{method}"/>"#,
            r#"<ds:Reference URI="{uri}"><ds:Transforms>{transforms}</ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference>"#,
            r#"</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>"#,
            r#"<ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo></ds:Signature>"#
        ),
        c14n = shape.c14n,
        c14n_prefixes = inclusive_namespaces(shape.c14n_prefixes),
        method = shape.signature_method,
        uri = uri,
        transforms = transforms,
        digest = shape.digest_method,
    )
}

/// Base64 wrapped at 64 columns, as many publishers write certificates.
pub fn wrapped(base64: &str) -> String {
    base64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// An AD FS-shaped entity (RoleDescriptor + IDPSSODescriptor, both KeyDescriptors), with
/// what canonicalization has to get right: namespaces declared on the root and used deep
/// down, an unused one, `xmlns=""`, unsorted and single-quoted attributes, character
/// references for tab / newline / CR, CDATA, a PI, a comment, xml:lang, and `&amp;`.
pub fn entity(id: &str, entity_id: &str, signature: &str, current: &str, next: &str) -> String {
    format!(
        r#"<EntityDescriptor ID="{id}" xml:lang="en" entityID="{entity_id}" validUntil="2031-01-01T00:00:00Z" cacheDuration="PT1H" xmlns="{MD}" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:unused="urn:keyroll:unused">{signature}
  <!-- a comment inside the signed element -->
  <RoleDescriptor xsi:type="fed:SecurityTokenServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>{current}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <fed:TokenTypesOffered><fed:TokenType Uri="urn:oasis:names:tc:SAML:2.0:assertion"/></fed:TokenTypesOffered>
  </RoleDescriptor>
  <IDPSSODescriptor WantAuthnRequestsSigned='false' protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <Extensions><ext:Note xmlns:ext="urn:keyroll:ext" z="1" ext:b="2" a="&#9;tab&#10;newline &quot;q&quot; &lt;"><![CDATA[x < y && y > z]]>&#13;</ext:Note><Plain xmlns="">no namespace</Plain></Extensions>
    <KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>
{next_wrapped}
</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>
    <?keyroll-test a processing instruction?>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://fs.example.test/adfs/ls/?a=1&amp;b=2"/>
  </IDPSSODescriptor>
  <Organization><OrganizationName xml:lang="en">Contoso &amp; Co &gt; Fabrikam</OrganizationName><OrganizationDisplayName xml:lang="en">Contoso</OrganizationDisplayName><OrganizationURL xml:lang="en">https://contoso.example</OrganizationURL></Organization>
</EntityDescriptor>"#,
        next_wrapped = wrapped(next),
    )
}

pub const ENTITY_ID: &str = "http://fs.example.test/adfs/services/trust";

/// A signed single-entity document of the given shape.
pub fn signed_entity(shape: &Shape<'_>, signer: &Signer) -> String {
    let k = keys();
    let template = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        entity(
            "_a1",
            ENTITY_ID,
            &signature_template(shape, "#_a1"),
            &signer.base64(),
            &k.next.base64(),
        )
    );
    xmlsec_sign(&template, signer)
}

pub fn adfs_like() -> &'static str {
    static SIGNED: OnceLock<String> = OnceLock::new();
    SIGNED.get_or_init(|| signed_entity(&Shape::default(), &keys().current))
}
