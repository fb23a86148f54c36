//! X.509 certificates: decoded once, with the facts keyroll shows and compares.

use ::time::OffsetDateTime;
use base64::Engine as _;
use serde::Serialize;
use sha1::Digest as _;
use x509_parser::nom::Parser as _;
use x509_parser::prelude::{X509CertificateParser, X509Name};

use crate::model::thumbprint::Thumbprint;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("invalid base64: {0}")]
    Base64(String),
    #[error(
        "the base64 decodes to PEM text, not to a DER certificate (the certificate was encoded twice)"
    )]
    PemInsideBase64,
    #[error("PEM block has no end line '-----END CERTIFICATE-----'")]
    UnterminatedPem,
    #[error("not a DER certificate: {0}")]
    Der(String),
    #[error("{0} bytes of data after the certificate")]
    TrailingData(usize),
    #[error("empty certificate")]
    Empty,
}

/// One certificate, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The DER encoding; empty once [`Certificate::without_der`] dropped it.
    pub der: Vec<u8>,
    pub sha1: Thumbprint,
    pub sha256: [u8; 32],
    /// RFC 4514 form, most specific RDN first (as Windows and OpenSSL `-nameopt RFC2253` show it).
    pub subject: String,
    pub issuer: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Where a certificate stands relative to "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validity {
    NotYetValid,
    Valid,
    Expiring,
    Expired,
}

impl Validity {
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::NotYetValid => "not-yet-valid",
            Validity::Valid => "valid",
            Validity::Expiring => "expiring",
            Validity::Expired => "expired",
        }
    }
}

impl Certificate {
    pub fn from_der(der: Vec<u8>) -> Result<Self, CertError> {
        if der.is_empty() {
            return Err(CertError::Empty);
        }
        if der.starts_with(b"-----BEGIN") {
            return Err(CertError::PemInsideBase64);
        }
        // Extensions are not looked at: left unparsed, as a byte range.
        let (rest, parsed) = X509CertificateParser::new()
            .with_deep_parse_extensions(false)
            .parse(&der)
            .map_err(|e| CertError::Der(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertError::TrailingData(rest.len()));
        }
        let subject = rfc4514(parsed.subject());
        let issuer = rfc4514(parsed.issuer());
        let not_before = parsed.validity().not_before.to_datetime();
        let not_after = parsed.validity().not_after.to_datetime();
        let sha1 = Thumbprint::from_bytes(sha1::Sha1::digest(&der).into());
        let sha256: [u8; 32] = sha2::Sha256::digest(&der).into();
        Ok(Certificate {
            der,
            sha1,
            sha256,
            subject,
            issuer,
            not_before,
            not_after,
        })
    }

    /// The certificate without its encoding, which nothing needs once it is read: what a key
    /// published in metadata keeps (an aggregate lists 40,000; their DER was a third of
    /// `inspect`'s memory). Signatures are checked with the signer's own certificate.
    pub fn without_der(mut self) -> Self {
        self.der = Vec::new();
        self
    }

    /// Base64 as found in metadata `X509Certificate` or JWKS `x5c`: whitespace allowed anywhere.
    pub fn from_base64(text: &str) -> Result<Self, CertError> {
        Certificate::from_der(decode_base64(text)?)
    }

    /// A certificate file: PEM, DER (`.cer`), or a bare base64 blob.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, CertError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.first() == Some(&0x30) {
            return Certificate::from_der(bytes.to_vec());
        }
        let text = String::from_utf8_lossy(bytes);
        if let Some(start) = text.find("-----BEGIN CERTIFICATE-----") {
            let body = &text[start + "-----BEGIN CERTIFICATE-----".len()..];
            let end = body
                .find("-----END CERTIFICATE-----")
                .ok_or(CertError::UnterminatedPem)?;
            return Certificate::from_base64(&body[..end]);
        }
        Certificate::from_base64(&text)
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode_upper(self.sha256)
    }

    pub fn validity_at(&self, now: OffsetDateTime, warn_days: i64) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid
        } else if now > self.not_after {
            Validity::Expired
        } else if self.not_after - now <= ::time::Duration::days(warn_days) {
            Validity::Expiring
        } else {
            Validity::Valid
        }
    }

    /// Valid now: the issuer could be signing tokens with it.
    pub fn is_current(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, CertError> {
    // Most certificates (every one in an AD FS document) hold no whitespace: decode them in
    // place rather than copying 40,000 of them character by character.
    let bytes = text.as_bytes();
    // ASCII whitespace is all at or below the space and base64 never is: a test of one
    // comparison per byte (vectorized) settles most certificates before the exact test.
    let compact: std::borrow::Cow<'_, [u8]> =
        if bytes.iter().fold(false, |low, &b| low | (b <= b' '))
            && bytes.iter().any(u8::is_ascii_whitespace)
        {
            // Wrapped lines are copied a line at a time, not byte by byte.
            let mut compact = Vec::with_capacity(bytes.len());
            for run in bytes.split(u8::is_ascii_whitespace) {
                compact.extend_from_slice(run);
            }
            compact.into()
        } else {
            bytes.into()
        };
    if compact.is_empty() {
        return Err(CertError::Empty);
    }
    let compact: &[u8] = &compact;
    // Canonical standard base64 (every real certificate) is decoded with SIMD (base64-simd;
    // its SIMD core, vsimd, was already built for the tests' JSON Schema checker). It accepts
    // exactly what the strict decoder below accepts (padding and unused bits checked), so
    // anything it refuses goes there: the same result, or the same error, as before.
    if let Ok(der) = base64_simd::STANDARD.decode_to_vec(compact) {
        return Ok(der);
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .or_else(|_| {
            // Some publishers drop the padding.
            let end = compact
                .iter()
                .rposition(|&b| b != b'=')
                .map_or(0, |i| i + 1);
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(&compact[..end])
        })
        .map_err(|e| CertError::Base64(e.to_string()))
}

/// RFC 3339 in UTC with a `Z`, the form every report uses.
pub fn rfc3339(time: OffsetDateTime) -> String {
    let utc = time.to_offset(::time::UtcOffset::UTC);
    // Whole seconds in years 0-9999 (every certificate's dates): written digit by digit, as
    // an aggregate's inspect writes 80,000 of them; anything else goes to the time crate.
    if utc.nanosecond() == 0 && (0..=9999).contains(&utc.year()) {
        let mut out = String::with_capacity(20);
        let mut push = |value: u32, digits: u32, after: char| {
            for place in (0..digits).rev() {
                let digit = value / 10u32.pow(place) % 10;
                out.push(char::from(b'0' + digit as u8));
            }
            out.push(after);
        };
        push(utc.year() as u32, 4, '-');
        push(u32::from(u8::from(utc.month())), 2, '-');
        push(u32::from(utc.day()), 2, 'T');
        push(u32::from(utc.hour()), 2, ':');
        push(u32::from(utc.minute()), 2, ':');
        push(u32::from(utc.second()), 2, 'Z');
        return out;
    }
    utc.format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| utc.to_string())
}

fn rfc4514(name: &X509Name<'_>) -> String {
    // Built in one string, most specific RDN first: 40,000 certificates of an aggregate are
    // read in one go, and a string per attribute, part and RDN was most of the time spent.
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::with_capacity(64);
    for (n, rdn) in rdns.iter().rev().enumerate() {
        if n > 0 {
            out.push(',');
        }
        for (i, attr) in rdn.iter().enumerate() {
            if i > 0 {
                out.push('+');
            }
            match short_name(attr.attr_type().as_bytes()) {
                Some(key) => out.push_str(key),
                None => out.push_str(&attr.attr_type().to_id_string()),
            }
            out.push('=');
            match attr.as_str() {
                Ok(s) => escape_dn_value(s, &mut out),
                Err(_) => match lenient_string(attr.attr_value()) {
                    Some(s) => escape_dn_value(&s, &mut out),
                    None => {
                        out.push('#');
                        out.push_str(&hex::encode(attr.attr_value().data));
                    }
                },
            }
        }
    }
    out
}

/// Real certificates break string-type rules (a `*` in a PrintableString); show the text
/// anyway, as Windows and OpenSSL do, rather than an opaque hex dump.
fn lenient_string(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<String> {
    let data = value.data;
    match value.tag().0 {
        // BMPString: UTF-16BE.
        0x1E => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        // UTF8String, PrintableString, T61String, IA5String, VisibleString.
        0x0C | 0x13 | 0x14 | 0x16 | 0x1A => Some(String::from_utf8_lossy(data).into_owned()),
        _ => None,
    }
}

/// The short names RFC 4514 lists; every other attribute is shown by its dotted OID.
/// Short names of attribute types, by the OID's DER content bytes.
fn short_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0A] => "O",
        [0x55, 0x04, 0x0B] => "OU",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x09] => "STREET",
        // 0.9.2342.19200300.100.1.25 and .1
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

fn escape_dn_value(value: &str, out: &mut String) {
    // Almost every value needs no escape: one pass over its bytes finds that out (every
    // character escaped is ASCII, and no byte of a longer UTF-8 sequence is).
    let bytes = value.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b'\\' | b'"' | b'+' | b',' | b';' | b'<' | b'>' | 0))
        && !matches!(bytes.first(), Some(b'#' | b' '))
        && bytes.last() != Some(&b' ')
    {
        out.push_str(value);
        return;
    }
    let last = value.chars().count().saturating_sub(1);
    for (i, ch) in value.chars().enumerate() {
        match ch {
            '\\' | '"' | '+' | ',' | ';' | '<' | '>' => {
                out.push('\\');
                out.push(ch);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(ch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20000))]
        /// The SIMD decoder takes only what the strict decoder takes, with the same bytes:
        /// over encodings of random bytes (each length's padding), with one character
        /// changed, cut short or with its padding dropped.
        #[test]
        fn simd_base64_is_the_strict_decoders(
            der in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            at in 0usize..96,
            to in proptest::prop_oneof![
                proptest::strategy::Just(b'='), proptest::strategy::Just(b'A'),
                proptest::strategy::Just(b'/'), proptest::strategy::Just(b'-'),
                proptest::num::u8::ANY
            ],
            how in 0u8..4,
        ) {
            use base64::Engine as _;
            let mut text = base64::engine::general_purpose::STANDARD.encode(&der).into_bytes();
            match how {
                0 => {}
                1 if !text.is_empty() => { let i = at % text.len(); text[i] = to; }
                2 => text.truncate(at.min(text.len())),
                _ => while text.last() == Some(&b'=') { text.pop(); },
            }
            let strict = base64::engine::general_purpose::STANDARD.decode(&text).ok();
            let simd = base64_simd::STANDARD.decode_to_vec(&text).ok();
            if simd.is_some() {
                proptest::prop_assert_eq!(&simd, &strict);
            }
            if how == 0 {
                proptest::prop_assert_eq!(simd, Some(der));
            }
        }

        /// The digit-by-digit RFC 3339 writer says what the time crate says, for whole
        /// seconds, fractions, far years and non-UTC offsets alike.
        #[test]
        fn rfc3339_is_the_time_crates(
            seconds in -62_167_219_200i64..253_402_300_800i64,
            nanos in proptest::prop_oneof![3 => proptest::strategy::Just(0u32), 1 => 0u32..1_000_000_000],
            offset in -86_399i32..86_400,
        ) {
            let utc = OffsetDateTime::from_unix_timestamp(seconds).unwrap()
                + ::time::Duration::nanoseconds(i64::from(nanos));
            let time = utc.to_offset(::time::UtcOffset::from_whole_seconds(offset).unwrap());
            let expected = utc
                .format(&::time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| utc.to_string());
            proptest::prop_assert_eq!(rfc3339(time), expected);
        }
    }

    #[test]
    fn base64_with_whitespace_without_padding_or_empty() {
        assert_eq!(decode_base64("TWFu").unwrap(), b"Man");
        // Whitespace anywhere, as metadata wraps certificates.
        assert_eq!(decode_base64(" TW\r\n\tFu\n").unwrap(), b"Man");
        // Padding dropped, or doubled by a careless publisher.
        assert_eq!(decode_base64("TWE").unwrap(), b"Ma");
        assert_eq!(decode_base64("TWE==").unwrap(), b"Ma");
        assert_eq!(decode_base64(" \n"), Err(CertError::Empty));
        assert!(matches!(decode_base64("TW!u"), Err(CertError::Base64(_))));
    }
}
