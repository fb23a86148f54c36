//! Pieces of a streamed document and the workers that read them: each piece parsed alone
//! by roxmltree behind a wrapper declaring its ancestors' namespaces, its keys read by the
//! tree reader's own code.

use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use roxmltree::Node;

use super::Fallback;
use crate::load::metadata::is_ds;
use crate::load::metadata::position::{Cut, Locator};
use crate::load::metadata::xml::{Found, XmlReader, xml_options};
use crate::load::signature::{PieceContext, Position};

/// An element under the root (or a nested container) cut out of the stream: its text behind
/// a wrapper that declares its ancestors' namespaces.
pub(super) struct Piece {
    /// Where its text (wrapper, element, wrapper's end tag) lies in the batch's text.
    pub(super) text: Range<usize>,
    pub(super) prefix: usize,
    pub(super) origin: (u32, u32),
    /// Set once the root's signature names a digest: the piece's canonical form is hashed.
    pub(super) canonical: Option<Arc<PieceContext>>,
    /// The containers' `validUntil` / `cacheDuration`, when they have any: every key read
    /// from the piece is bound by them too.
    pub(super) bounds: Option<Arc<crate::load::signature::Bounds>>,
}

pub(super) const WRAPPER: &str = "keyroll-piece";

/// A piece's text parsed (the wrapper and its one element), and where its nodes lie in the
/// document.
pub(super) struct Parsed<'t> {
    pub(super) doc: roxmltree::Document<'t>,
    locator: Locator<'t>,
}

impl<'t> Parsed<'t> {
    /// `text` is a wrapper start tag of `prefix` bytes, then an element that starts at
    /// `origin` in the document. Any error is left to the tree reader.
    pub(super) fn new(text: &'t str, prefix: usize, origin: (u32, u32)) -> Result<Self, Fallback> {
        Ok(Parsed {
            doc: roxmltree::Document::parse_with_options(text, xml_options())
                .map_err(|_| Fallback::Invalid)?,
            locator: Locator::piece(text, &text[..prefix], origin),
        })
    }

    /// As [`Parsed::new`], for `text` with [`cut_certificates`]' cuts taken out: `short`.
    fn cut(
        short: &'t str,
        text: &'t str,
        prefix: usize,
        origin: (u32, u32),
        cuts: Vec<Cut>,
    ) -> Result<Self, Fallback> {
        Ok(Parsed {
            doc: roxmltree::Document::parse_with_options(short, xml_options())
                .map_err(|_| Fallback::Invalid)?,
            locator: Locator::piece(text, &text[..prefix], origin).with_cuts(cuts),
        })
    }

    /// The element the piece is.
    pub(super) fn element(&self) -> Result<Node<'_, 't>, Fallback> {
        self.doc
            .root_element()
            .first_element_child()
            .ok_or(Fallback::Invalid)
    }

    pub(super) fn at(&self, node: Node<'_, '_>) -> Position {
        let (line, column) = self.locator.position(node.range().start);
        Position { line, column }
    }

    pub(super) fn locator(&self) -> &Locator<'t> {
        &self.locator
    }
}

/// What one piece yields.
#[derive(Default)]
pub(super) struct PieceOut {
    pub(super) found: Vec<Found>,
    pub(super) signatures: Vec<Position>,
    pub(super) id_carriers: Vec<(String, Position)>,
    pub(super) canonical: Vec<u8>,
}

/// Reads one piece; any error is left to the tree reader.
pub(super) fn read_piece(
    source: &str,
    batch_text: &str,
    piece: &Piece,
    root_ids: &[String],
) -> Result<PieceOut, Fallback> {
    let text = &batch_text[piece.text.clone()];
    // Certificates' base64 is most of an aggregate's bytes, and the tree parser reads text
    // one character at a time: it parses the piece without it. Not when the piece's
    // canonical form is needed (that is made from the tree, text included).
    let cut = match piece.canonical {
        None => cut_certificates(text),
        Some(_) => None,
    };
    let parsed = match cut {
        Some((ref short, cuts)) => Parsed::cut(short, text, piece.prefix, piece.origin, cuts)?,
        None => Parsed::new(text, piece.prefix, piece.origin)?,
    };
    let element = parsed.element()?;
    let at = |n: Node<'_, '_>| parsed.at(n);
    let mut out = PieceOut::default();
    XmlReader {
        source,
        locator: parsed.locator(),
    }
    .read_keys(element, &mut out.found)
    .map_err(|_| Fallback::Invalid)?;
    if let Some(bounds) = &piece.bounds {
        for found in &mut out.found {
            if let Found::Key(key) = found {
                key.bounds.tighten(bounds);
            }
        }
    }
    for node in element.descendants().filter(|n| n.is_element()) {
        if is_ds(node, "Signature") {
            out.signatures.push(at(node));
        }
        id_carriers(node, root_ids, &at, &mut out.id_carriers);
    }
    if let Some(context) = &piece.canonical {
        out.canonical = context.canonicalize(element);
    }
    Ok(out)
}

/// `text` without the base64 of its certificates, and where each was cut; None when nothing
/// was cut. Only where cutting cannot change what the parser reads or finds wrong: the piece
/// holds no comment, CDATA section, processing instruction or declaration (so every `<`
/// opens a tag: a `<X509Certificate` or `</p:X509Certificate` found is a tag, never text), and
/// the cut is the whole content of an `X509Certificate` element without attributes, nested
/// in no other, every byte of it printable ASCII or XML white space other than `&` and `]`
/// (so no reference, no `]]>`, nothing the parser would refuse or change but line ends,
/// which the base64 reading skips as it skips all white space).
pub(super) fn cut_certificates(text: &str) -> Option<(String, Vec<Cut>)> {
    const NAME: &[u8] = b"X509Certificate";
    let bytes = text.as_bytes();
    if memchr::memmem::find(bytes, b"<!").is_some() || memchr::memmem::find(bytes, b"<?").is_some()
    {
        return None;
    }
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let mut cuts: Vec<Cut> = Vec::new();
    let mut short = String::new();
    let mut copied = 0;
    let mut open = false;
    for found in memchr::memmem::find_iter(bytes, NAME) {
        // Back over `prefix:` (if any) to the `<` or `</` that must open the tag.
        let mut start = found;
        if start > 0 && bytes[start - 1] == b':' {
            start -= 1;
            let colon = start;
            while start > 0 && is_name_byte(bytes[start - 1]) {
                start -= 1;
            }
            if start == colon {
                return None;
            }
        }
        let end_tag = start >= 2 && bytes[start - 1] == b'/' && bytes[start - 2] == b'<';
        let start_tag = start >= 1 && bytes[start - 1] == b'<';
        let after = bytes.get(found + NAME.len()).copied();
        if !(start_tag || end_tag)
            || !matches!(after, Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r'))
        {
            // Another name that begins or ends the same way (`MyX509Certificate`).
            continue;
        }
        if end_tag {
            open = false;
            continue;
        }
        if after == Some(b'/') {
            // `<X509Certificate/>`: empty, nothing to cut, nothing left open.
            continue;
        }
        if open {
            // One inside another: its text is not the outer one's alone. Left to the parser.
            return None;
        }
        // Open until its end tag, even with attributes (then never cut, and a self-closing one
        // with attributes leaves the rest of the piece uncut: the safe side).
        open = true;
        if after != Some(b'>') {
            continue;
        }
        let content_start = found + NAME.len() + 1;
        let lt = memchr::memchr(b'<', &bytes[content_start..]).map(|i| content_start + i)?;
        if lt == content_start || bytes.get(lt + 1) != Some(&b'/') {
            continue;
        }
        let content = &bytes[content_start..lt];
        // Branch-free over the whole run, so it vectorizes.
        let plain = content.iter().fold(true, |ok, &b| {
            ok & (((0x20..0x7f).contains(&b) & (b != b'&') & (b != b']'))
                | (b == b'\t')
                | (b == b'\n')
                | (b == b'\r'))
        });
        if !plain {
            continue;
        }
        if short.is_empty() {
            short.reserve(text.len() / 4);
        }
        short.push_str(&text[copied..content_start]);
        copied = lt;
        let shift = cuts.last().map_or(0, |c| c.shift) + (lt - content_start);
        cuts.push(Cut {
            at: short.len(),
            shift,
            original: content_start..lt,
        });
    }
    if cuts.is_empty() {
        return None;
    }
    short.push_str(&text[copied..]);
    Some((short, cuts))
}

/// `(value, position)` for each of the root's IDs that `node` carries.
pub(super) fn id_carriers(
    node: Node<'_, '_>,
    root_ids: &[String],
    at: &dyn Fn(Node<'_, '_>) -> Position,
    out: &mut Vec<(String, Position)>,
) {
    for id in root_ids {
        if node
            .attributes()
            .any(|a| matches!(a.name(), "ID" | "Id" | "id") && a.value() == id)
        {
            out.push((id.clone(), at(node)));
        }
    }
}

/// A batch of items in document order, numbered, for a worker to read the pieces of, and
/// the pieces' text, one buffer (returned and reused: fresh memory for every piece had the
/// reading thread zeroing new pages a fifth of its time).
pub(super) struct Batch {
    pub(super) number: usize,
    pub(super) text: String,
    pub(super) items: Vec<Item>,
    pub(super) root_ids: Arc<Vec<String>>,
}

/// A batch read: in document order, each piece's result and what lies between pieces. The
/// pieces' text is freed by the worker that read it.
pub(super) struct BatchRead {
    pub(super) number: usize,
    pub(super) items: Vec<ItemRead>,
    /// The batch's text buffer, emptied, for the next batch.
    pub(super) text: String,
}

pub(super) enum ItemRead {
    Piece(Result<PieceOut, Fallback>),
    Between {
        canonical: Vec<u8>,
        carriers: Vec<(String, Position)>,
    },
}

/// Workers beside the thread that reads the stream (which also merges).
pub(super) fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
}

/// Takes batches until the stream closes the queue.
pub(super) fn work(source: &str, queue: &Mutex<Receiver<Batch>>, done: &Sender<BatchRead>) {
    loop {
        let batch = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(batch) = batch else { return };
        if done.send(read_batch(source, batch)).is_err() {
            return;
        }
    }
}

/// One batch's pieces read, on a worker or (a small document) on the reading thread.
pub(super) fn read_batch(source: &str, batch: Batch) -> BatchRead {
    let items = batch
        .items
        .into_iter()
        .map(|item| match item {
            Item::Piece(piece) => {
                ItemRead::Piece(read_piece(source, &batch.text, &piece, &batch.root_ids))
            }
            Item::Between {
                canonical,
                carriers,
            } => ItemRead::Between {
                canonical,
                carriers,
            },
        })
        .collect();
    let mut text = batch.text;
    text.clear();
    BatchRead {
        number: batch.number,
        items,
        text,
    }
}

/// In document order: pieces, and what lies between them (containers' tags, text): its
/// canonical bytes and the elements there that carry the root's ID.
pub(super) enum Item {
    Piece(Piece),
    Between {
        canonical: Vec<u8>,
        carriers: Vec<(String, Position)>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_cut_only_where_nothing_else_changes() {
        let text = "<w><ds:X509Certificate>QUJD\r\nREVG</ds:X509Certificate><X509Certificate>R0g=</X509Certificate></w>";
        let (short, cuts) = cut_certificates(text).expect("plain base64 is cut");
        assert_eq!(
            short,
            "<w><ds:X509Certificate></ds:X509Certificate><X509Certificate></X509Certificate></w>"
        );
        let originals: Vec<&str> = cuts.iter().map(|c| &text[c.original.clone()]).collect();
        assert_eq!(originals, ["QUJD\r\nREVG", "R0g="]);
        assert_eq!(cuts[1].shift, 10 + 4);
        for unsafe_text in [
            "<w><!-- c --><ds:X509Certificate>QUJD</ds:X509Certificate></w>",
            "<w><?pi?><ds:X509Certificate>QUJD</ds:X509Certificate></w>",
            "<w><ds:X509Certificate>QU&#65;JD</ds:X509Certificate></w>",
            "<w><ds:X509Certificate>QUJD]</ds:X509Certificate></w>",
            "<w><ds:X509Certificate>QUJDé</ds:X509Certificate></w>",
            "<w><ds:X509Certificate>QU\u{1}JD</ds:X509Certificate></w>",
            "<w><ds:X509Certificate a='1'>QUJD</ds:X509Certificate></w>",
            "<w><ds:X509Certificate>QU<b/>JD</ds:X509Certificate></w>",
            "<w><ds:MyX509Certificate>QUJD</ds:MyX509Certificate></w>",
            "<w><ds:X509Certificate><ds:X509Certificate>QUJD</ds:X509Certificate></ds:X509Certificate></w>",
        ] {
            assert_eq!(cut_certificates(unsafe_text), None, "{unsafe_text}");
        }
    }
}
