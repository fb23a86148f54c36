//! Finding a document's encoding and decoding it, strictly.

use std::borrow::Cow;

use encoding_rs::{DecoderResult, Encoding, UTF_8, UTF_16BE, UTF_16LE};

use super::MetadataError;
use super::position::line_column;

/// A document's text and the encoding it was read in.
pub struct Decoded<'a> {
    /// Without the byte-order mark. Borrowed when the bytes were UTF-8 already, so a 60 MB
    /// aggregate is not copied.
    pub text: Cow<'a, str>,
    pub encoding: &'static Encoding,
}

/// Decodes a document as XML 1.0 (appendix F) says a reader finds its encoding: a byte-order
/// mark first, then UTF-16 recognised by the bytes of `<?`, then the `encoding` its XML
/// declaration names, else UTF-8. JSON documents take the same path (a BOM, else UTF-8).
///
/// Labels are looked up as browsers do (the WHATWG Encoding Standard, via encoding_rs): so
/// `iso-8859-1` and `us-ascii` read as windows-1252, which differs from ISO-8859-1 only in
/// 0x80–0x9F, C1 control codes no metadata holds as text. Bytes that are not valid in the
/// encoding are an error at their line and column in the decoded text, never replaced.
pub fn decode<'a>(source: &str, bytes: &'a [u8]) -> Result<Decoded<'a>, MetadataError> {
    let read_error = |detail: String| MetadataError::Read {
        source_name: source.into(),
        detail,
    };
    if bytes.starts_with(b"\x00\x00\xFE\xFF") || bytes.starts_with(b"\xFF\xFE\x00\x00") {
        return Err(read_error(
            "UTF-32 documents are not supported; save it as UTF-8".into(),
        ));
    }
    if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
        return decode_strict(source, &bytes[bom_length..], encoding);
    }
    if bytes.starts_with(b"<\x00?\x00") {
        return decode_strict(source, bytes, UTF_16LE);
    }
    if bytes.starts_with(b"\x00<\x00?") {
        return decode_strict(source, bytes, UTF_16BE);
    }
    let Some((label, offset)) = declared_encoding(bytes) else {
        return decode_strict(source, bytes, UTF_8);
    };
    let at_label = |detail: String| {
        let (line, column) = line_column(&bytes[..offset]);
        MetadataError::Malformed {
            source_name: source.into(),
            line,
            column,
            detail,
        }
    };
    let Some(encoding) = Encoding::for_label_no_replacement(label) else {
        return Err(at_label(format!(
            "the XML declaration names encoding \"{}\", which keyroll cannot decode",
            String::from_utf8_lossy(label)
        )));
    };
    if encoding == UTF_16LE || encoding == UTF_16BE {
        return Err(at_label(format!(
            "the XML declaration names encoding \"{}\", but the document has no byte-order mark and is stored in single bytes",
            String::from_utf8_lossy(label)
        )));
    }
    decode_strict(source, bytes, encoding)
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start, and its byte
/// offset. The declaration is ASCII in every encoding this reads without a BOM.
pub(super) fn declared_encoding(bytes: &[u8]) -> Option<(&[u8], usize)> {
    if !bytes.starts_with(b"<?xml") {
        return None;
    }
    let window = &bytes[..bytes.len().min(1024)];
    let end = window.windows(2).position(|w| w == b"?>")?;
    let declaration = &window[..end];
    let key = declaration.windows(8).position(|w| w == b"encoding")?;
    let mut i = key + "encoding".len();
    let skip_space = |i: &mut usize| {
        while declaration.get(*i).is_some_and(|b| b.is_ascii_whitespace()) {
            *i += 1;
        }
    };
    skip_space(&mut i);
    if declaration.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    skip_space(&mut i);
    let quote = *declaration.get(i).filter(|q| matches!(q, b'"' | b'\''))?;
    let start = i + 1;
    let length = declaration[start..].iter().position(|&b| b == quote)?;
    Some((&declaration[start..start + length], start))
}

fn decode_strict<'a>(
    source: &str,
    body: &'a [u8],
    encoding: &'static Encoding,
) -> Result<Decoded<'a>, MetadataError> {
    if encoding == UTF_8 {
        return Ok(Decoded {
            text: Cow::Borrowed(utf8(source, body)?),
            encoding,
        });
    }
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(body.len())
        .ok_or_else(|| MetadataError::Read {
            source_name: source.into(),
            detail: "document too large to decode".into(),
        })?;
    let mut text = String::with_capacity(capacity);
    let (result, _read) = decoder.decode_to_string_without_replacement(body, &mut text, true);
    match result {
        DecoderResult::InputEmpty => Ok(Decoded {
            text: Cow::Owned(text),
            encoding,
        }),
        DecoderResult::Malformed(bad, _) => {
            // The text decoded so far ends where the bad bytes start.
            let (line, column) = line_column(text.as_bytes());
            Err(MetadataError::Malformed {
                source_name: source.into(),
                line,
                column,
                detail: format!(
                    "{} byte{} not valid {}",
                    bad,
                    if bad == 1 { " is" } else { "s are" },
                    encoding.name()
                ),
            })
        }
        DecoderResult::OutputFull => Err(MetadataError::Read {
            source_name: source.into(),
            detail: format!("could not decode the {} text", encoding.name()),
        }),
    }
}

fn utf8<'a>(source: &str, body: &'a [u8]) -> Result<&'a str, MetadataError> {
    std::str::from_utf8(body).map_err(|e| {
        let offset = e.valid_up_to();
        let (line, column) = line_column(&body[..offset]);
        MetadataError::Malformed {
            source_name: source.into(),
            line,
            column,
            detail: "not valid UTF-8".into(),
        }
    })
}
