//! Rendering results for people (text tables) and machines (JSON with a versioned schema).

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::{Certificate, Validity, rfc3339};
use crate::metadata::{MetadataDocument, PublishedKey};
use crate::thumbprint::Thumbprint;

/// `keyroll thumbprint --format json`.
#[derive(Debug, Serialize)]
pub struct CertificateJson {
    pub sha1: Thumbprint,
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
}

impl CertificateJson {
    pub fn new(cert: &Certificate) -> Self {
        CertificateJson {
            sha1: cert.sha1,
            sha256: cert.sha256_hex(),
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
            not_before: rfc3339(cert.not_before),
            not_after: rfc3339(cert.not_after),
        }
    }
}

pub const INSPECT_SCHEMA: &str = "keyroll.inspect/v1";

/// `keyroll inspect --format json`; documented in docs/inspect-json.md. Fields are only ever
/// added; a breaking change bumps `schema`.
#[derive(Debug, Serialize)]
pub struct InspectJson<'a> {
    pub schema: &'static str,
    pub source: &'a str,
    pub kind: crate::metadata::DocumentKind,
    pub bytes: usize,
    pub sha256: &'a str,
    pub read_at: String,
    pub evaluated_at: String,
    pub signature: SignatureJson,
    pub certificates: Vec<InspectRow<'a>>,
    pub notes: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct SignatureJson {
    pub present: bool,
    pub verified: bool,
    pub reference_uri: Option<String>,
    pub signer_sha1: Option<Thumbprint>,
}

#[derive(Debug, Serialize)]
pub struct InspectRow<'a> {
    pub entity_id: Option<&'a str>,
    pub roles: &'a [String],
    #[serde(rename = "use")]
    pub uses: Vec<&'static str>,
    pub kid: Option<&'a str>,
    #[serde(flatten)]
    pub certificate: CertificateJson,
    pub status: Validity,
    pub location: &'a str,
}

impl<'a> InspectRow<'a> {
    fn new(key: &'a PublishedKey, now: OffsetDateTime, warn_days: i64) -> Self {
        InspectRow {
            entity_id: key.entity_id.as_deref(),
            roles: &key.roles,
            uses: key.uses.iter().map(|u| u.as_str()).collect(),
            kid: key.kid.as_deref(),
            certificate: CertificateJson::new(&key.certificate),
            status: key.certificate.validity_at(now, warn_days),
            location: &key.location,
        }
    }
}

pub fn inspect_json(doc: &MetadataDocument, now: OffsetDateTime, warn_days: i64) -> String {
    let json = InspectJson {
        schema: INSPECT_SCHEMA,
        source: &doc.source,
        kind: doc.kind,
        bytes: doc.bytes,
        sha256: &doc.sha256,
        read_at: rfc3339(doc.fetched_at),
        evaluated_at: rfc3339(now),
        signature: SignatureJson {
            present: doc.signature.is_some(),
            verified: doc.signature.as_ref().is_some_and(|s| s.verified),
            reference_uri: doc.signature.as_ref().and_then(|s| s.reference_uri.clone()),
            signer_sha1: doc.signature.as_ref().and_then(|s| s.signer_sha1),
        },
        certificates: doc
            .keys
            .iter()
            .map(|k| InspectRow::new(k, now, warn_days))
            .collect(),
        notes: &doc.notes,
    };
    serde_json::to_string_pretty(&json).expect("inspect JSON serializes") + "\n"
}

pub fn inspect_text(doc: &MetadataDocument, now: OffsetDateTime, warn_days: i64) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "source:    {}\nkind:      {}, {} bytes, SHA-256 {}\n",
        doc.source, doc.kind, doc.bytes, doc.sha256
    ));
    let signature = match &doc.signature {
        None => "none".to_string(),
        Some(s) => format!(
            "present, not verified (reference {}, signer {})",
            s.reference_uri.as_deref().unwrap_or("(none)"),
            s.signer_sha1
                .map(|t| t.to_string())
                .unwrap_or_else(|| "not embedded".into())
        ),
    };
    out.push_str(&format!("signature: {signature}\n"));
    out.push_str(&format!("as of:     {}\n", rfc3339(now)));

    let mut entity: Option<Option<&str>> = None;
    for key in &doc.keys {
        if entity != Some(key.entity_id.as_deref()) {
            entity = Some(key.entity_id.as_deref());
            out.push_str(&format!(
                "\nentity {}\n  {:<14} {:<22} {:<40}  {:<20}  {:<20}  SUBJECT\n",
                key.entity_id.as_deref().unwrap_or("(none named)"),
                "STATUS",
                "USE",
                "SHA-1",
                "NOT BEFORE",
                "NOT AFTER"
            ));
        }
        let cert = &key.certificate;
        let uses: Vec<&str> = key.uses.iter().map(|u| u.as_str()).collect();
        out.push_str(&format!(
            "  {:<14} {:<22} {:<40}  {:<20}  {:<20}  {}\n",
            cert.validity_at(now, warn_days).as_str(),
            uses.join(","),
            cert.sha1.to_string(),
            rfc3339(cert.not_before),
            rfc3339(cert.not_after),
            cert.subject
        ));
        let mut detail = format!(
            "  {:<14} SHA-256 {}  issuer {}",
            "",
            cert.sha256_hex(),
            cert.issuer
        );
        if !key.roles.is_empty() {
            detail.push_str(&format!("  roles {}", key.roles.join(",")));
        }
        if let Some(kid) = &key.kid {
            detail.push_str(&format!("  kid {kid}"));
        }
        out.push_str(&detail);
        out.push('\n');
    }
    for note in &doc.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}
