//! Pieces of a streamed document and the workers that read them: each piece parsed alone
//! by roxmltree behind a wrapper declaring its ancestors' namespaces, its keys read by the
//! tree reader's own code.

use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use roxmltree::Node;

use super::Fallback;
use crate::metadata::is_ds;
use crate::metadata::position::Locator;
use crate::metadata::xml::{Found, XmlReader, xml_options};
use crate::signature::{PieceContext, Position};

/// An element under the root (or a nested container) cut out of the stream: its text behind
/// a wrapper that declares its ancestors' namespaces.
pub(super) struct Piece {
    /// Where its text (wrapper, element, wrapper's end tag) lies in the batch's text.
    pub(super) text: Range<usize>,
    pub(super) prefix: usize,
    pub(super) origin: (u32, u32),
    /// Set once the root's signature names a digest: the piece's canonical form is hashed.
    pub(super) canonical: Option<Arc<PieceContext>>,
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
    let parsed = Parsed::new(text, piece.prefix, piece.origin)?;
    let element = parsed.element()?;
    let at = |n: Node<'_, '_>| parsed.at(n);
    let mut out = PieceOut::default();
    XmlReader {
        source,
        locator: parsed.locator(),
    }
    .read_keys(element, &mut out.found)
    .map_err(|_| Fallback::Invalid)?;
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
        let read = BatchRead {
            number: batch.number,
            items,
            text,
        };
        if done.send(read).is_err() {
            return;
        }
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
