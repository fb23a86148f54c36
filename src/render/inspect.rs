//! `keyroll inspect`'s reports (text, and JSON written as it is made) and the certificate
//! JSON `keyroll thumbprint` shares.

use serde::Serialize;
use time::OffsetDateTime;

use crate::load::metadata::{MetadataDocument, PublishedKey};
use crate::model::cert::{Certificate, Validity, rfc3339};
use crate::model::thumbprint::Thumbprint;

/// `keyroll thumbprint --format json`.
#[derive(Debug, Serialize)]
pub struct CertificateJson<'a> {
    pub sha1: Thumbprint,
    pub sha256: String,
    pub subject: &'a str,
    pub issuer: &'a str,
    pub not_before: String,
    pub not_after: String,
}

impl<'a> CertificateJson<'a> {
    pub fn new(cert: &'a Certificate) -> Self {
        CertificateJson {
            sha1: cert.sha1,
            sha256: cert.sha256_hex(),
            subject: &cert.subject,
            issuer: &cert.issuer,
            not_before: rfc3339(cert.not_before),
            not_after: rfc3339(cert.not_after),
        }
    }
}

pub const INSPECT_SCHEMA: &str = "keyroll.inspect/v1";

/// `keyroll inspect --format json`; documented in docs/inspect-json.md. Fields are only ever
/// added; a breaking change bumps `schema`.
#[derive(Debug, Serialize)]
pub struct InspectJson<'a, Rows = InspectRows<'a>> {
    pub schema: &'static str,
    pub source: &'a str,
    pub kind: crate::load::metadata::DocumentKind,
    pub bytes: usize,
    pub sha256: &'a str,
    pub read_at: String,
    pub evaluated_at: String,
    pub signature: SignatureJson,
    pub certificates: Rows,
    pub notes: &'a [String],
}

/// The rows, made one at a time as they are written: 40,000 rows of an aggregate are never
/// all in memory at once. Serialized, they are an empty list: the document around them is
/// written by serde_json and the rows are written into its `certificates` list as text
/// ([`write_inspect_json`]).
#[derive(Debug)]
pub struct InspectRows<'a> {
    keys: &'a [PublishedKey],
    now: OffsetDateTime,
    warn_days: i64,
}

impl Serialize for InspectRows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        serializer.serialize_seq(Some(0))?.end()
    }
}

impl InspectRows<'_> {
    /// Rows `first..` of `keys` into `out`, each after the separator serde_json's pretty
    /// printer puts before a list element two levels deep, and pretty-printed with its
    /// lines indented for that place: the bytes the printer would write for them.
    fn render(
        &self,
        first: usize,
        keys: &[PublishedKey],
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        for (i, key) in keys.iter().enumerate() {
            out.extend_from_slice(if first + i == 0 {
                b"\n    "
            } else {
                b",\n    "
            });
            write_row(key, self.now, self.warn_days, out)?;
        }
        Ok(())
    }

    /// Writes the rows, rendered on every core a chunk at a time: renderer `r` renders chunks
    /// r, r + threads, ... into buffers the writer hands back (memory reused, not faulted in
    /// afresh), one chunk ahead of the writer, so rendering and writing overlap.
    fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        // 256 rows (~230 KB of text) a chunk: as fast as 1,024, and ~6 MB less peak memory
        // for an aggregate (each renderer holds a few chunks' buffers).
        const CHUNK: usize = 256;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads == 1 || self.keys.len() < 256 {
            let mut text = Vec::new();
            self.render(0, self.keys, &mut text)?;
            return out.write_all(&text);
        }
        let chunks: Vec<&[PublishedKey]> = self.keys.chunks(CHUNK).collect();
        std::thread::scope(|scope| {
            let renderers: Vec<_> = (0..threads)
                .map(|r| {
                    let (send, rendered) = std::sync::mpsc::sync_channel(1);
                    let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
                    let chunks = &chunks;
                    scope.spawn(move || {
                        // A renderer holds at most BUFFERS buffers: past them it waits for the
                        // writer to hand one back. It is a chunk ahead, so a buffer asked for
                        // at once is rarely back yet; taking a new one each time made every
                        // chunk fresh memory (the kernel zeroing pages for tens of megabytes).
                        const BUFFERS: usize = 3;
                        let mut made = 0;
                        for (k, chunk) in chunks.iter().enumerate().skip(r).step_by(threads) {
                            let mut text = match returned.try_recv() {
                                Ok(text) => text,
                                Err(_) if made < BUFFERS => {
                                    made += 1;
                                    Vec::with_capacity(CHUNK * 1024)
                                }
                                // The writer holds the others and gives each back once
                                // written; it is gone (an error) when this fails.
                                Err(_) => match returned.recv() {
                                    Ok(text) => text,
                                    Err(_) => return,
                                },
                            };
                            text.clear();
                            let result = self.render(k * CHUNK, chunk, &mut text).map(|()| text);
                            // The writer stopped (an error, a closed pipe): so do we.
                            if send.send(result).is_err() {
                                return;
                            }
                        }
                    });
                    (rendered, give_back)
                })
                .collect();
            for k in 0..chunks.len() {
                let (rendered, give_back) = &renderers[k % threads];
                // A renderer that panicked sent nothing: the scope re-raises its panic.
                let Ok(text) = rendered.recv() else {
                    break;
                };
                let text = text?;
                out.write_all(&text)?;
                // The renderer may have finished: the buffer is then freed.
                let _ = give_back.send(text);
            }
            Ok(())
        })
    }
}

#[derive(Debug, Serialize)]
pub struct SignatureJson {
    pub present: bool,
    pub verified: bool,
    pub reference_uri: Option<String>,
    pub signer_sha1: Option<Thumbprint>,
    /// `{"status": "valid" | "unsigned" | "refused", "reason": ...}`; JWKS and OpenID
    /// documents: `"tls-only"` (they cannot be signed).
    pub verdict: serde_json::Value,
    /// Whether the signer is trusted is decided per issuer by `plan` (its history), not here.
    pub valid_until: Option<String>,
    pub cache_duration: Option<String>,
}

/// The document's signature verdict as JSON.
fn signature_verdict(doc: &MetadataDocument) -> serde_json::Value {
    match &doc.signature_report {
        _ if doc.kind != crate::load::metadata::DocumentKind::SamlMetadata => {
            serde_json::json!({"status": "tls-only"})
        }
        None => serde_json::json!({"status": "unsigned"}),
        Some(report) => {
            let mut v = serde_json::to_value(&report.verdict).unwrap_or_default();
            if doc.weak_signature {
                v["weak"] = serde_json::Value::Bool(true);
            }
            v
        }
    }
}

#[derive(Debug, Serialize)]
pub struct InspectRow<'a> {
    pub entity_id: Option<&'a str>,
    pub roles: &'a [String],
    #[serde(rename = "use")]
    pub uses: Vec<&'static str>,
    pub kid: Option<&'a str>,
    #[serde(flatten)]
    pub certificate: CertificateJson<'a>,
    pub status: Validity,
    pub location: &'a str,
}

/// `key`'s row ([`InspectRow`]) as serde_json's pretty printer writes it as an element of a
/// list two levels deep (its lines indented for that place), written field by field from the
/// key itself: the printer spent more time on 40,000 rows than on everything else after the
/// stream, and so did making each row's strings (the thumbprints' hex is written in place).
/// Strings go through serde_json's own escaping; unit tests hold the bytes to the derived
/// `Serialize`.
fn write_row(
    row: &PublishedKey,
    now: OffsetDateTime,
    warn_days: i64,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    fn key(out: &mut Vec<u8>, first: bool, name: &str) {
        out.extend_from_slice(if first { b"\n      \"" } else { b",\n      \"" });
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\": ");
    }
    fn string(out: &mut Vec<u8>, value: &str) -> Result<(), serde_json::Error> {
        serde_json::to_writer(&mut *out, value)
    }
    fn optional(out: &mut Vec<u8>, value: Option<&str>) -> Result<(), serde_json::Error> {
        match value {
            Some(value) => string(out, value),
            None => {
                out.extend_from_slice(b"null");
                Ok(())
            }
        }
    }
    /// Upper-case hex in quotes (as `hex::encode_upper` and serde_json write it).
    fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        out.push(b'"');
        for byte in bytes {
            out.push(DIGITS[usize::from(byte >> 4)]);
            out.push(DIGITS[usize::from(byte & 15)]);
        }
        out.push(b'"');
    }
    fn list<'s>(
        out: &mut Vec<u8>,
        values: impl ExactSizeIterator<Item = &'s str>,
    ) -> Result<(), serde_json::Error> {
        if values.len() == 0 {
            out.extend_from_slice(b"[]");
            return Ok(());
        }
        out.push(b'[');
        for (i, value) in values.enumerate() {
            out.extend_from_slice(if i == 0 {
                b"\n        "
            } else {
                b",\n        "
            });
            string(out, value)?;
        }
        out.extend_from_slice(b"\n      ]");
        Ok(())
    }
    let certificate = &*row.certificate;
    out.push(b'{');
    key(out, true, "entity_id");
    optional(out, row.entity_id.as_deref())?;
    key(out, false, "roles");
    list(out, row.roles.iter().map(String::as_str))?;
    key(out, false, "use");
    list(out, row.uses.iter().map(|u| u.as_str()))?;
    key(out, false, "kid");
    optional(out, row.kid.as_deref())?;
    key(out, false, "sha1");
    hex(out, certificate.sha1.as_bytes());
    key(out, false, "sha256");
    hex(out, &certificate.sha256);
    key(out, false, "subject");
    string(out, &certificate.subject)?;
    key(out, false, "issuer");
    string(out, &certificate.issuer)?;
    key(out, false, "not_before");
    string(out, &rfc3339(certificate.not_before))?;
    key(out, false, "not_after");
    string(out, &rfc3339(certificate.not_after))?;
    key(out, false, "status");
    string(out, certificate.validity_at(now, warn_days).as_str())?;
    key(out, false, "location");
    string(out, &row.location)?;
    out.extend_from_slice(b"\n    }");
    Ok(())
}

impl<'a> InspectRow<'a> {
    /// The row's derived form, which [`write_row`]'s bytes are held to.
    #[cfg(test)]
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
    let mut out = Vec::new();
    write_inspect_json(doc, now, warn_days, &mut out).expect("inspect JSON serializes");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// [`inspect_json`] written as it is made, row by row.
pub fn write_inspect_json(
    doc: &MetadataDocument,
    now: OffsetDateTime,
    warn_days: i64,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let rows = InspectRows {
        keys: &doc.keys,
        now,
        warn_days,
    };
    // The document with an empty `certificates` list, which the rows are written into: the
    // bytes serde_json's pretty printer writes for the whole document (a unit test holds the
    // two to each other). The list is at the top level, so its key is found unescaped once.
    let frame = serde_json::to_vec_pretty(&inspect_document(doc, now, &rows))?;
    const LIST: &[u8] = b"\n  \"certificates\": []";
    let list = memchr::memmem::find(&frame, LIST).expect("the document has a certificates list");
    let (head, tail) = frame.split_at(list + LIST.len() - 1);
    if rows.keys.is_empty() {
        return out.write_all(&frame).and_then(|()| out.write_all(b"\n"));
    }
    // An I/O error keeps its kind (a closed pipe is not a failure, main.rs).
    out.write_all(head)?;
    rows.write(out)?;
    out.write_all(b"\n  ")?;
    out.write_all(tail)?;
    out.write_all(b"\n")
}

/// The document around its rows.
fn inspect_document<Rows>(
    doc: &MetadataDocument,
    now: OffsetDateTime,
    rows: Rows,
) -> InspectJson<'_, Rows> {
    InspectJson {
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
            verdict: signature_verdict(doc),
            valid_until: doc.freshness.valid_until.map(rfc3339),
            cache_duration: doc.freshness.cache_duration.clone(),
        },
        certificates: rows,
        notes: &doc.notes,
    }
}

/// The certificates for people. The metadata's own text (entity IDs, subjects, kids, notes
/// quoting it) is escaped with [`printable`] where it is embedded: an entityID holding
/// `&#10;::error::` cannot start a line of its own.
pub fn inspect_text(doc: &MetadataDocument, now: OffsetDateTime, warn_days: i64) -> String {
    use crate::render::sanitize::printable;
    let mut out = document_header(doc, now);
    out.push_str(&keys_text(doc, now, warn_days));
    for note in &doc.notes {
        out.push_str(&format!("note: {}\n", printable(note)));
    }
    out
}

/// What the document is: its source, kind, freshness and signature, and the time it is
/// judged at.
fn document_header(doc: &MetadataDocument, now: OffsetDateTime) -> String {
    use crate::render::sanitize::printable;
    let mut out = String::new();
    out.push_str(&format!(
        "source:    {}\nkind:      {}, {} bytes, SHA-256 {}\n",
        printable(&doc.source),
        doc.kind,
        doc.bytes,
        doc.sha256
    ));
    let signature = match (&doc.signature, &doc.signature_report) {
        _ if doc.kind != crate::load::metadata::DocumentKind::SamlMetadata => {
            "unsigned (TLS only)".to_string()
        }
        (None, _) | (_, None) => "none".to_string(),
        (Some(s), Some(report)) => format!(
            "{} (reference {}, signer {}{}); whether the signer is trusted, `plan` decides from the issuer's history",
            printable(&report.verdict.to_string()),
            printable(s.reference_uri.as_deref().unwrap_or("(none)")),
            s.signer_sha1
                .map(|t| t.to_string())
                .unwrap_or_else(|| "not embedded".into()),
            if doc.weak_signature {
                "; SHA-1 or a short key: accepted only with allow_sha1"
            } else {
                ""
            }
        ),
    };
    let freshness = Some(&doc.freshness);
    if let Some(until) = freshness.and_then(|f| f.valid_until) {
        out.push_str(&format!(
            "validUntil: {}{}\n",
            rfc3339(until),
            if now > until {
                " (PAST: plan refuses this document)"
            } else {
                ""
            }
        ));
    }
    if let Some(duration) = freshness.and_then(|f| f.cache_duration.as_deref()) {
        out.push_str(&format!("cacheDuration: {}\n", printable(duration)));
    }
    out.push_str(&format!("signature: {signature}\n"));
    out.push_str(&format!("as of:     {}\n", rfc3339(now)));
    out
}

/// The document's keys, grouped under the entity that publishes them: one row per
/// certificate and a line of its details.
fn keys_text(doc: &MetadataDocument, now: OffsetDateTime, warn_days: i64) -> String {
    use crate::render::sanitize::printable;
    let mut out = String::new();
    let mut entity: Option<Option<&str>> = None;
    for key in &doc.keys {
        if entity != Some(key.entity_id.as_deref()) {
            entity = Some(key.entity_id.as_deref());
            out.push_str(&format!(
                "\nentity {}\n  {:<14} {:<22} {:<40}  {:<20}  {:<20}  SUBJECT\n",
                printable(key.entity_id.as_deref().unwrap_or("(none named)")),
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
            printable(&cert.subject)
        ));
        let mut detail = format!(
            "  {:<14} SHA-256 {}  issuer {}",
            "",
            cert.sha256_hex(),
            printable(&cert.issuer)
        );
        if !key.roles.is_empty() {
            detail.push_str(&format!("  roles {}", printable(&key.roles.join(","))));
        }
        if let Some(kid) = &key.kid {
            detail.push_str(&format!("  kid {}", printable(kid)));
        }
        out.push_str(&detail);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows rendered on several threads and spliced in as raw JSON give the very bytes of
    /// the document serialized row by row.
    #[test]
    fn inspect_json_rows_rendered_in_parallel_are_the_serial_rows() {
        let cert = std::fs::read_to_string("tests/data/metadata/adfs-v3-metadata.xml").unwrap();
        let cert = cert
            .split("X509Certificate>")
            .nth(1)
            .unwrap()
            .trim_end_matches("</ds:")
            .trim_end_matches('<')
            .to_string();
        let cert = cert.split('<').next().unwrap();
        let mut xml =
            String::from(r#"<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">"#);
        for i in 0..5000 {
            xml.push_str(&format!(
                r#"<EntityDescriptor entityID="https://e{i}.example/&quot;q&quot;"><SPSSODescriptor protocolSupportEnumeration="p"><KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>{cert}</X509Certificate></X509Data></KeyInfo></KeyDescriptor></SPSSODescriptor></EntityDescriptor>"#
            ));
        }
        xml.push_str("</EntitiesDescriptor>");
        let now = OffsetDateTime::UNIX_EPOCH;
        let doc = crate::load::metadata::parse("agg.xml", xml.as_bytes(), now).unwrap();
        assert_eq!(doc.keys.len(), 5000);
        let serial: Vec<InspectRow<'_>> = doc
            .keys
            .iter()
            .map(|k| InspectRow::new(k, now, 30))
            .collect();
        let expected =
            serde_json::to_string_pretty(&inspect_document(&doc, now, serial)).unwrap() + "\n";
        assert_eq!(inspect_json(&doc, now, 30), expected);
    }

    /// A row written field by field is the derived `Serialize` pretty-printed and indented for
    /// its place, whatever its strings hold and however many roles and uses it has.
    #[test]
    fn inspect_rows_written_by_hand_are_the_derived_serialization() {
        use crate::load::metadata::KeyUse;
        let xml = std::fs::read_to_string("tests/data/metadata/adfs-v3-metadata.xml").unwrap();
        let text = xml.split("X509Certificate>").nth(1).unwrap();
        let text = text.split('<').next().unwrap();
        let certificate = crate::model::cert::Certificate::from_base64(text).unwrap();
        let strings = [
            "plain",
            "",
            "quote \" backslash \\ slash /",
            "control \u{1} \u{1f} tab\t line\n return\r",
            "unicode é ∑ 🔑 \u{2028}",
        ];
        let mut rows = 0;
        for (i, text) in strings.iter().enumerate() {
            let roles: Vec<String> = strings[..i].iter().map(|s| s.to_string()).collect();
            let uses = [KeyUse::Signing, KeyUse::Encryption, KeyUse::Unspecified];
            for entity_id in [None, Some(text.to_string())] {
                let key = PublishedKey {
                    entity_id,
                    roles: roles.clone(),
                    uses: uses[..i % 4].iter().copied().collect(),
                    kid: (i % 2 == 0).then(|| text.to_string()),
                    location: text.to_string(),
                    certificate: std::sync::Arc::new(certificate.clone()),
                    bounds: Default::default(),
                };
                for now in [OffsetDateTime::UNIX_EPOCH, OffsetDateTime::now_utc()] {
                    let row = InspectRow::new(&key, now, 30);
                    let expected = serde_json::to_string_pretty(&row)
                        .unwrap()
                        .replace('\n', "\n    ");
                    let mut written = Vec::new();
                    write_row(&key, now, 30, &mut written).unwrap();
                    assert_eq!(String::from_utf8(written).unwrap(), expected);
                    rows += 1;
                }
            }
        }
        assert_eq!(rows, 20);
    }
}
