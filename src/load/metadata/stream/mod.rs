//! SAML aggregates (`EntitiesDescriptor` roots) read as a stream: a pull parser (quick-xml)
//! walks the root and any nested `EntitiesDescriptor`, and every other element under them
//! (an `EntityDescriptor`, `Extensions`, a signature) is cut out as one piece of text and
//! parsed on its own by roxmltree, with its ancestors' namespace declarations in scope, on
//! every core. The keys are read from each piece by the very code that reads a whole tree
//! ([`XmlReader`]), and merged in document order; memory holds one batch of pieces, never
//! the document.
//!
//! The root's signature is checked as [`crate::load::signature`] checks a tree: the digest is
//! hashed piece by piece, in order, while the stream reads.
//!
//! Anything this reader does not handle as a tree would (a DTD, a processing instruction or
//! text between elements, a signature that is not the root's first child, any error) ends the
//! stream with a [`Fallback`]: the caller reads the document as one tree, which gives the
//! same result or reports the error at its position exactly as before.

mod pieces;
mod scope;
mod window;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, SyncSender};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use roxmltree::Node;

use super::position::Locator;
use super::xml::{
    DescriptorKeys, MAX_NAMESPACES_IN_SCOPE, XmlKeys, XmlReader, verify_signature, xml_options,
};
use super::{NS_DS, is_ds};
use crate::load::signature::{
    Bounds, Canonicalizer, Digester, Freshness, Position, Streamed, StreamedDigest, freshness,
    verify_streamed,
};
use pieces::{
    Batch, BatchRead, Item, ItemRead, Parsed, Piece, WRAPPER, id_carriers, read_batch, work,
    workers,
};
use scope::{
    Container, is_md_name, may_exceed_namespaces, normalize_line_ends, resolve, scope_of,
    wrapper_for, wrapper_in,
};
use window::Window;
#[doc(hidden)]
pub use window::unjoined_hashing_threads;

/// Why a document was not (or not wholly) read as a stream; the caller reads it as a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The root is not an `EntitiesDescriptor`: a single entity, read as a tree.
    NotAggregate,
    /// Something the stream leaves to the tree reader (named).
    Unusual(&'static str),
    /// An error: the tree reader names it and its position.
    Invalid,
}

/// An aggregate read as a stream.
pub struct StreamedXml {
    pub(super) keys: XmlKeys,
    /// Bytes read (a byte-order mark included) and their SHA-256.
    pub(super) bytes: usize,
    pub(super) sha256: [u8; 32],
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether a document that starts with `prefix` is UTF-8 XML the stream can read, and how
/// many bytes of byte-order mark to skip. Other encodings are decoded whole first.
pub fn streamable(prefix: &[u8]) -> Option<usize> {
    let (bom, rest) = match prefix.strip_prefix(UTF8_BOM) {
        Some(rest) => (UTF8_BOM.len(), rest),
        None => (0, prefix),
    };
    if bom == 0 {
        if encoding_rs::Encoding::for_bom(prefix).is_some()
            || prefix.starts_with(b"\x00\x00\xFE\xFF")
            || prefix.starts_with(b"<\x00")
            || prefix.starts_with(b"\x00<")
        {
            return None;
        }
        if let Some((label, _)) = super::decode::declared_encoding(prefix)
            && encoding_rs::Encoding::for_label_no_replacement(label) != Some(encoding_rs::UTF_8)
        {
            return None;
        }
    }
    let first = rest.iter().find(|b| !b.is_ascii_whitespace())?;
    (*first == b'<').then_some(bom)
}

/// Reads an aggregate from `input` (UTF-8, `skip` bytes of byte-order mark first).
/// Pieces are read on worker threads, a batch at a time, while this thread reads on; their
/// results are merged in document order as they come back. The queue is bounded, so memory
/// holds a few batches, never the document.
/// `size` is the document's length in bytes when known (the key list is sized from it).
pub fn read<R: std::io::Read>(
    source: &str,
    input: R,
    skip: usize,
    size: Option<usize>,
) -> Result<StreamedXml, Fallback> {
    if size.is_some_and(|n| n <= Window::<R>::SMALL) {
        // One batch or two: starting workers (and joining them) costs more than reading the
        // pieces here, and a parse that starts no thread leaves none behind.
        let (_, reads) = mpsc::channel::<BatchRead>();
        return read_with(source, input, skip, size, None, reads);
    }
    let workers = workers();
    let (queue, batches) = mpsc::sync_channel::<Batch>(workers * 2);
    let batches = Mutex::new(batches);
    let (done, reads) = mpsc::channel::<BatchRead>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let done = done.clone();
            let batches = &batches;
            scope.spawn(move || work(source, batches, &done));
        }
        drop(done);
        // The queue closes with the stream, on success or not: the workers finish and are
        // joined.
        read_with(source, input, skip, size, Some(queue), reads)
    })
}

fn read_with<R: std::io::Read>(
    source: &str,
    input: R,
    skip: usize,
    size: Option<usize>,
    queue: Option<SyncSender<Batch>>,
    reads: Receiver<BatchRead>,
) -> Result<StreamedXml, Fallback> {
    let mut stream = Stream {
        source,
        inline: queue.is_none(),
        queue,
        reads,
        sent: 0,
        merged: 0,
        waiting: BTreeMap::new(),
        reader: Reader::from_reader(Window::new(input, skip, size)),
        containers: Vec::new(),
        items: Vec::new(),
        text: String::with_capacity(Stream::<R>::BATCH_CAPACITY),
        spare: Vec::new(),
        skipped: 0,
        keys: size.map_or_else(DescriptorKeys::default, DescriptorKeys::for_document),
        root: None,
        root_ids: Vec::new(),
        root_signature: None,
        pending: Vec::new(),
        canonicalizer: None,
        digester: None,
        element_children: 0,
        signatures: Vec::new(),
        id_carriers: Vec::new(),
        freshness: Freshness::default(),
    };
    let config = stream.reader.config_mut();
    config.check_comments = true;
    // Pieces are skipped without quick-xml seeing their end tags; container end tags are
    // checked here instead.
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    config.trim_markup_names_in_closing_tags = true;
    stream.run()?;
    stream.finish()
}

/// The root: its start tag with the prolog before it, parsed on its own.
struct Root {
    text: String,
    range_start: u64,
    range_end: u64,
    at: Position,
}

/// The root's signature, kept as text to verify at the end.
struct RootSignature {
    text: String,
    prefix: usize,
    origin: (u32, u32),
}

struct Stream<'s, R: std::io::Read> {
    source: &'s str,
    /// Batches are read here, not by workers (a small document).
    inline: bool,
    /// Batches to the workers (`None` once closed), their results back, how many were
    /// sent and merged, and results that came back before an earlier batch's.
    queue: Option<SyncSender<Batch>>,
    reads: Receiver<BatchRead>,
    sent: usize,
    merged: usize,
    waiting: BTreeMap<usize, BatchRead>,
    reader: Reader<Window<R>>,
    containers: Vec<Container>,
    items: Vec<Item>,
    /// The current batch's pieces' text, and emptied buffers to reuse.
    text: String,
    spare: Vec<String>,
    /// Bytes skipped past (pieces' contents) that quick-xml never read.
    skipped: u64,
    keys: DescriptorKeys,
    root: Option<Root>,
    root_ids: Vec<String>,
    root_signature: Option<RootSignature>,
    /// Text between the root's start tag and its signature, canonicalized once the
    /// signature says how.
    pending: Vec<String>,
    canonicalizer: Option<Canonicalizer>,
    digester: Option<Digester>,
    /// Element children of the root seen so far.
    element_children: usize,
    /// Every `ds:Signature` but the root's, and the elements carrying the root's ID.
    signatures: Vec<Position>,
    id_carriers: Vec<(String, Position)>,
    /// The root's `validUntil` / `cacheDuration`.
    freshness: Freshness,
}

impl<R: std::io::Read> Stream<'_, R> {
    /// Small enough that the workers start early and the reading thread keeps ahead.
    /// (128 KiB was tried: the parse took 40% longer.)
    const BATCH_BYTES: usize = 512 * 1024;
    /// A batch's text buffer, made at its full size: a batch ends with the piece that takes
    /// it past [`Self::BATCH_BYTES`], so most fit without growing. The first batch used to
    /// grow to 1 MiB piece by piece (fresh memory at each step) while the workers waited.
    const BATCH_CAPACITY: usize = Self::BATCH_BYTES + 64 * 1024;

    fn window(&mut self) -> &mut Window<R> {
        self.reader.get_mut()
    }

    fn run(&mut self) -> Result<(), Fallback> {
        let mut buf = Vec::new();
        loop {
            // quick-xml's count (it knows when it has read the `<` of the next tag already)
            // plus what was skipped past without quick-xml reading it.
            let start = self.reader.buffer_position() + self.skipped;
            if self.root.is_some() {
                self.window().keep = start;
            }
            buf.clear();
            let event = self
                .reader
                .read_event_into(&mut buf)
                .map_err(|_| Fallback::Invalid)?;
            let end = self.reader.buffer_position() + self.skipped;
            let depth = self.containers.len();
            match event {
                Event::Eof => {
                    return if self.root.is_some() && depth == 0 {
                        Ok(())
                    } else {
                        Err(Fallback::Invalid)
                    };
                }
                Event::Decl(_) => {}
                Event::DocType(_) => return Err(Fallback::Invalid),
                Event::PI(_) => return Err(Fallback::Unusual("a processing instruction")),
                Event::Comment(comment) => {
                    std::str::from_utf8(&comment).map_err(|_| Fallback::Invalid)?;
                }
                Event::Text(text) => {
                    if !text
                        .iter()
                        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                    {
                        return Err(if depth == 0 {
                            Fallback::Invalid
                        } else {
                            Fallback::Unusual("text between elements")
                        });
                    }
                    if depth > 0 {
                        let text = normalize_line_ends(std::str::from_utf8(&text).unwrap_or(""));
                        self.between(text);
                    }
                }
                Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(if depth == 0 {
                        Fallback::Invalid
                    } else {
                        Fallback::Unusual("text between elements")
                    });
                }
                Event::Start(start_tag) if depth == 0 => {
                    let start_tag = start_tag.into_owned();
                    self.open_root(&start_tag, start, end)?;
                }
                Event::Empty(_) if depth == 0 => return Err(Fallback::NotAggregate),
                Event::Start(child) => {
                    let child = child.into_owned();
                    self.child(&child, start, end, false)?;
                }
                Event::Empty(child) => {
                    let child = child.into_owned();
                    self.child(&child, start, end, true)?;
                }
                Event::End(tag) => {
                    // quick-xml cannot check end tags: it never saw the pieces' own.
                    let open = self.containers.last().ok_or(Fallback::Invalid)?;
                    if tag.name().as_ref() != open.qname.as_bytes() {
                        return Err(Fallback::Invalid);
                    }
                    self.close_container(end)?;
                }
            }
            if self.text.len() >= Self::BATCH_BYTES {
                self.flush()?;
            }
        }
    }

    /// An element inside the root or a nested container: another container, the root's
    /// signature, or a piece.
    fn child(
        &mut self,
        child: &BytesStart<'_>,
        start: u64,
        end: u64,
        is_empty: bool,
    ) -> Result<(), Fallback> {
        let depth = self.containers.len();
        let (scope, own) = scope_of(child, &self.containers[depth - 1].scope)?;
        let declared = self.containers[depth - 1].declared + own;
        if declared > MAX_NAMESPACES_IN_SCOPE {
            return Err(Fallback::Unusual("too many namespace declarations"));
        }
        let qname = std::str::from_utf8(child.name().as_ref())
            .map_err(|_| Fallback::Invalid)?
            .to_string();
        let (ns, local) = resolve(&qname, &scope)?;
        if depth == 1 {
            self.element_children += 1;
        }
        if is_md_name(&ns, local, "EntitiesDescriptor") {
            return self.open_container(&qname, (scope, declared), start, end, is_empty);
        }
        let end = if is_empty {
            end
        } else {
            // quick-xml has read up to the start tag's end; the window moves on alone.
            let from = self.reader.buffer_position() + self.skipped;
            let end = self.window().skip_past_end_tag(&qname)?;
            self.skipped += end - from;
            end
        };
        if depth == 1 && ns.as_deref() == Some(NS_DS) && local == "Signature" {
            self.root_signature(start, end)
        } else {
            self.piece(start, end)
        }
    }

    fn open_root(
        &mut self,
        start_tag: &BytesStart<'_>,
        start: u64,
        end: u64,
    ) -> Result<(), Fallback> {
        let (scope, declared) = scope_of(start_tag, &Arc::new(BTreeMap::new()))?;
        if declared > MAX_NAMESPACES_IN_SCOPE {
            return Err(Fallback::Unusual("too many namespace declarations"));
        }
        let qname = std::str::from_utf8(start_tag.name().as_ref())
            .map_err(|_| Fallback::Invalid)?
            .to_string();
        let (ns, local) = resolve(&qname, &scope)?;
        if !is_md_name(&ns, local, "EntitiesDescriptor") {
            return Err(Fallback::NotAggregate);
        }
        // The prolog comes along: the tree reader checks the declaration and finds a DTD.
        let prolog_and_tag = std::str::from_utf8(self.reader.get_ref().held(0..end))
            .map_err(|_| Fallback::Invalid)?;
        let text = format!("{prolog_and_tag}</{qname}>");
        let (line, column) = self.window().position(start);
        let bounds;
        {
            let doc = roxmltree::Document::parse_with_options(&text, xml_options())
                .map_err(|_| Fallback::Invalid)?;
            let root = doc.root_element();
            // A value not understood: the tree reader names it.
            bounds = Arc::new(Bounds::of_element(root).map_err(|_| Fallback::Invalid)?);
            self.freshness = freshness(root);
            self.root_ids = root
                .attributes()
                .filter(|a| matches!(a.name(), "ID" | "Id" | "id"))
                .map(|a| a.value().to_string())
                .collect();
            self.root_ids.dedup();
            if !self.root_ids.is_empty() {
                let at = Position { line, column };
                let ids = self.root_ids.clone();
                id_carriers(root, &ids, &|_| at, &mut self.id_carriers);
            }
        }
        self.root = Some(Root {
            text,
            range_start: start,
            range_end: start,
            at: Position { line, column },
        });
        self.containers.push(Container {
            qname,
            wrapper: wrapper_for(&scope),
            scope,
            bounds,
            declared,
        });
        self.window().keep = end;
        Ok(())
    }

    fn open_container(
        &mut self,
        qname: &str,
        (scope, declared): (Arc<BTreeMap<String, String>>, usize),
        start: u64,
        end: u64,
        is_empty: bool,
    ) -> Result<(), Fallback> {
        let parent = self.containers.last().ok_or(Fallback::Invalid)?;
        let tag = std::str::from_utf8(self.reader.get_ref().held(start..end))
            .map_err(|_| Fallback::Invalid)?;
        let close = if is_empty {
            String::new()
        } else {
            format!("</{qname}>")
        };
        let wrapper = wrapper_in(parent, tag);
        let text = format!("{wrapper}{tag}{close}</{WRAPPER}>");
        let prefix = wrapper.len();
        let origin = self.window().position(start);
        let parsed = Parsed::new(&text, prefix, origin)?;
        let element = parsed.element()?;
        let own = Bounds::of_element(element).map_err(|_| Fallback::Invalid)?;
        let parent_bounds = &self.containers.last().ok_or(Fallback::Invalid)?.bounds;
        let bounds = if own.is_empty() {
            Arc::clone(parent_bounds)
        } else {
            let mut bounds = (**parent_bounds).clone();
            bounds.tighten(&own);
            Arc::new(bounds)
        };
        let at = |n: Node<'_, '_>| parsed.at(n);
        let ids = self.root_ids.clone();
        let mut carriers = Vec::new();
        id_carriers(element, &ids, &at, &mut carriers);
        let mut canonical = Vec::new();
        if let Some(canonicalizer) = self.canonicalizer.as_mut() {
            canonical = canonicalizer.open(element);
            if is_empty {
                canonical.extend(canonicalizer.close(qname));
            }
        }
        self.items.push(Item::Between {
            canonical,
            carriers,
        });
        if !is_empty {
            self.containers.push(Container {
                qname: qname.to_string(),
                wrapper: wrapper_for(&scope),
                scope,
                bounds,
                declared,
            });
        }
        Ok(())
    }

    fn close_container(&mut self, end: u64) -> Result<(), Fallback> {
        let container = self.containers.pop().ok_or(Fallback::Invalid)?;
        if let Some(canonicalizer) = self.canonicalizer.as_mut() {
            let canonical = canonicalizer.close(&container.qname);
            self.items.push(Item::Between {
                canonical,
                carriers: Vec::new(),
            });
        }
        if self.containers.is_empty()
            && let Some(root) = self.root.as_mut()
        {
            root.range_end = end;
        }
        Ok(())
    }

    /// Whitespace between elements.
    fn between(&mut self, text: String) {
        if let Some(canonicalizer) = &self.canonicalizer {
            let canonical = canonicalizer.text(&text);
            self.items.push(Item::Between {
                canonical,
                carriers: Vec::new(),
            });
        } else if self.root_signature.is_none() && self.element_children == 0 {
            self.pending.push(text);
        }
    }

    fn piece_text(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<(String, usize, (u32, u32)), Fallback> {
        let origin = self.window().position(start);
        let container = self.containers.last().ok_or(Fallback::Invalid)?;
        let slice = std::str::from_utf8(self.reader.get_ref().held(start..end))
            .map_err(|_| Fallback::Invalid)?;
        if may_exceed_namespaces(container.declared, slice) {
            return Err(Fallback::Unusual("too many namespace declarations"));
        }
        let wrapper = wrapper_in(container, slice);
        let mut text = String::with_capacity(wrapper.len() + slice.len() + WRAPPER.len() + 3);
        text.push_str(&wrapper);
        text.push_str(slice);
        text.push_str("</");
        text.push_str(WRAPPER);
        text.push('>');
        Ok((text, wrapper.len(), origin))
    }

    fn piece(&mut self, start: u64, end: u64) -> Result<(), Fallback> {
        let origin = self.window().position(start);
        let container = self.containers.last().ok_or(Fallback::Invalid)?;
        let bounds = &container.bounds;
        let slice = std::str::from_utf8(self.reader.get_ref().held(start..end))
            .map_err(|_| Fallback::Invalid)?;
        if may_exceed_namespaces(container.declared, slice) {
            return Err(Fallback::Unusual("too many namespace declarations"));
        }
        let wrapper = wrapper_in(container, slice);
        let from = self.text.len();
        self.text.push_str(&wrapper);
        self.text.push_str(slice);
        self.text.push_str("</");
        self.text.push_str(WRAPPER);
        self.text.push('>');
        let canonical = self.canonicalizer.as_ref().map(Canonicalizer::context);
        self.items.push(Item::Piece(Piece {
            text: from..self.text.len(),
            prefix: wrapper.len(),
            origin,
            canonical,
            bounds: (!bounds.is_empty()).then(|| Arc::clone(bounds)),
        }));
        Ok(())
    }

    /// The root's own `ds:Signature`: read now, since its Reference says how to digest what
    /// follows. Only as the root's first child element (where the SAML schema puts it).
    fn root_signature(&mut self, start: u64, end: u64) -> Result<(), Fallback> {
        if self.root_signature.is_some() {
            return Err(Fallback::Unusual("several signatures on the root"));
        }
        if self.element_children > 1 {
            return Err(Fallback::Unusual("a root signature after other elements"));
        }
        let (text, prefix, origin) = self.piece_text(start, end)?;
        let root = self.root.as_ref().ok_or(Fallback::Invalid)?;
        {
            let parsed = Parsed::new(&text, prefix, origin)?;
            let signature = parsed.element()?;
            let at = |n: Node<'_, '_>| parsed.at(n);
            let ids = self.root_ids.clone();
            for node in signature.descendants().filter(|n| n.is_element()) {
                if is_ds(node, "Signature") && node != signature {
                    return Err(Fallback::Unusual("a signature inside the root's signature"));
                }
                // A key inside the signature is refused as tampered; the tree reader names
                // it and its position (see `XmlReader::read_keys`).
                if super::is_md(node, "KeyDescriptor") {
                    return Err(Fallback::Invalid);
                }
                id_carriers(node, &ids, &at, &mut self.id_carriers);
            }
            if let Some(mut canonicalizer) = Canonicalizer::for_signature(signature, &at) {
                let root_doc = roxmltree::Document::parse_with_options(&root.text, xml_options())
                    .map_err(|_| Fallback::Invalid)?;
                let mut digester = canonicalizer.digester();
                digester.update(&canonicalizer.open(root_doc.root_element()));
                for text in self.pending.drain(..) {
                    digester.update(&canonicalizer.text(&text));
                }
                self.canonicalizer = Some(canonicalizer);
                self.digester = Some(digester);
            }
        }
        self.root_signature = Some(RootSignature {
            text,
            prefix,
            origin,
        });
        Ok(())
    }

    /// Sends the batch to the workers, and merges what has come back.
    fn flush(&mut self) -> Result<(), Fallback> {
        if !self.items.is_empty() {
            let next = self
                .spare
                .pop()
                .unwrap_or_else(|| String::with_capacity(Self::BATCH_CAPACITY));
            let batch = Batch {
                number: self.sent,
                text: std::mem::replace(&mut self.text, next),
                items: std::mem::take(&mut self.items),
                root_ids: Arc::new(self.root_ids.clone()),
            };
            self.sent += 1;
            if self.inline {
                let read = read_batch(self.source, batch);
                return self.take_in(read);
            }
            let queue = self.queue.as_ref().ok_or(Fallback::Invalid)?;
            queue.send(batch).map_err(|_| Fallback::Invalid)?;
        }
        while let Ok(read) = self.reads.try_recv() {
            self.take_in(read)?;
        }
        Ok(())
    }

    /// Every batch sent, merged.
    fn drain(&mut self) -> Result<(), Fallback> {
        self.flush()?;
        self.queue = None;
        while self.merged < self.sent {
            let read = self.reads.recv().map_err(|_| Fallback::Invalid)?;
            self.take_in(read)?;
        }
        Ok(())
    }

    /// Merges `read`, and any waiting batches it lets go, in document order.
    fn take_in(&mut self, read: BatchRead) -> Result<(), Fallback> {
        self.waiting.insert(read.number, read);
        while let Some(read) = self.waiting.remove(&self.merged) {
            self.merge(read)?;
            self.merged += 1;
        }
        Ok(())
    }

    fn merge(&mut self, read: BatchRead) -> Result<(), Fallback> {
        self.spare.push(read.text);
        for item in read.items {
            match item {
                ItemRead::Piece(out) => {
                    let out = out?;
                    self.keys.merge(out.found);
                    self.signatures.extend(out.signatures);
                    self.id_carriers.extend(out.id_carriers);
                    if let Some(digester) = self.digester.as_mut() {
                        digester.update(&out.canonical);
                    }
                }
                ItemRead::Between {
                    canonical,
                    carriers,
                } => {
                    self.id_carriers.extend(carriers);
                    if let Some(digester) = self.digester.as_mut() {
                        digester.update(&canonical);
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<StreamedXml, Fallback> {
        self.drain()?;
        let root = self.root.take().ok_or(Fallback::Invalid)?;
        let Some(signature) = self.root_signature.take() else {
            if !self.signatures.is_empty() {
                // Reported as found but not on the root: the tree reader describes it.
                return Err(Fallback::Unusual("signatures only inside the root"));
            }
            let (bytes, sha256) = self.reader.into_inner().finish();
            return Ok(StreamedXml {
                keys: XmlKeys {
                    freshness: self.freshness,
                    ..self.keys.finish(None, None)
                },
                bytes,
                sha256,
            });
        };
        let digest: Option<StreamedDigest> = self.digester.take().map(Digester::finish);
        let root_doc = roxmltree::Document::parse_with_options(&root.text, xml_options())
            .map_err(|_| Fallback::Invalid)?;
        let parsed = Parsed::new(&signature.text, signature.prefix, signature.origin)?;
        let signature_node = parsed.element()?;
        let root_locator = Locator::whole(&root.text);
        let at = |n: Node<'_, '_>| {
            if std::ptr::eq(n.document(), &parsed.doc) {
                return parsed.at(n);
            }
            let (line, column) = root_locator.position(n.range().start);
            Position { line, column }
        };
        let info = XmlReader {
            source: self.source,
            locator: parsed.locator(),
        }
        .signature_info(parsed.doc.root_element())
        .map_err(|_| Fallback::Invalid)?;
        let streamed = Streamed {
            root: root_doc.root_element(),
            root_range: root.range_start as usize..root.range_end as usize,
            root_at: root.at,
            signature: signature_node,
            at: &at,
            nested_signatures: std::mem::take(&mut self.signatures),
            id_carriers: std::mem::take(&mut self.id_carriers),
            digest: digest.as_ref(),
        };
        let report = verify_signature(|policy| verify_streamed(&streamed, policy))
            .ok_or(Fallback::Unusual("a signature the stream could not digest"))?;
        let (bytes, sha256) = self.reader.into_inner().finish();
        Ok(StreamedXml {
            keys: XmlKeys {
                freshness: self.freshness,
                ..self.keys.finish(info, Some(report))
            },
            bytes,
            sha256,
        })
    }
}
