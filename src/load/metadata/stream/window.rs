//! The bytes of a streamed document: read in chunks, hashed and line-counted as they go,
//! with only the piece being cut out kept.

use std::io::{self, BufRead, Read};
use std::ops::Range;

use sha2::Digest as _;

use super::Fallback;
use crate::load::metadata::position::Counter;

/// The bytes of the document still needed, read in chunks: everything from `keep` on (the
/// piece being cut out), and the SHA-256 and line count of all that went before.
pub(super) struct Window<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    /// Document offset of `buf[0]`.
    base: u64,
    pub(super) keep: u64,
    counter: Counter,
    hasher: Hasher,
    total: u64,
    /// Byte-order mark bytes still to drop (hashed, but not part of the text).
    skip: usize,
    eof: bool,
    /// Bytes asked of the input per read: [`Self::CHUNK`], or less for a small document.
    chunk: usize,
    /// The searcher for the last end tag skipped to (`</qname`).
    end_tag: Option<memchr::memmem::Finder<'static>>,
}

impl<R: Read> Window<R> {
    const CHUNK: usize = 256 * 1024;

    /// A document of at most this many bytes is hashed on the reading thread: a thread of its
    /// own costs more to start than hashing it does.
    pub(super) const SMALL: usize = 512 * 1024;

    /// `size`: the document's length when known. A small document is read in one chunk of
    /// its own size (not a zeroed 256 KiB one) and hashed in place.
    pub(super) fn new(inner: R, skip: usize, size: Option<usize>) -> Self {
        let small = size.filter(|&n| n <= Self::SMALL);
        // One byte more than the document, so the first read takes all of it.
        let chunk = small.map_or(Self::CHUNK, |n| (n + 1).clamp(4096, Self::CHUNK));
        Window {
            inner,
            buf: Vec::with_capacity(chunk * 2),
            pos: 0,
            base: 0,
            keep: 0,
            counter: Counter::default(),
            hasher: match small {
                Some(_) => Hasher::InPlace(sha2::Sha256::new()),
                None => Hasher::new(),
            },
            total: 0,
            skip,
            eof: false,
            chunk,
            end_tag: None,
        }
    }

    /// Line and column of a document offset at or after every offset asked for before.
    pub(super) fn position(&mut self, offset: u64) -> (u32, u32) {
        self.count_to(offset);
        (self.counter.line, self.counter.column)
    }

    pub(super) fn count_to(&mut self, offset: u64) {
        let from = (self.counter.offset - self.base) as usize;
        let to = (offset - self.base) as usize;
        if to > from {
            self.counter.advance(&self.buf[from..to]);
        }
    }

    pub(super) fn held(&self, range: Range<u64>) -> &[u8] {
        &self.buf[(range.start - self.base) as usize..(range.end - self.base) as usize]
    }

    /// Bytes read (a byte-order mark included) and their SHA-256.
    pub(super) fn finish(self) -> (usize, [u8; 32]) {
        (self.total as usize, self.hasher.finish())
    }

    /// The document offset of the next unread byte.
    pub(super) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Reads one more chunk; `false` at the end of the input.
    pub(super) fn read_more(&mut self) -> io::Result<bool> {
        self.compact();
        let length = self.buf.len();
        self.buf.resize(length + self.chunk, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[length..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(length);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(length + n);
        self.hasher.update(&self.buf[length..length + n]);
        self.total += n as u64;
        self.eof = n == 0;
        let skipped = self.skip.min(n);
        if skipped > 0 {
            self.buf.drain(length..length + skipped);
            self.skip -= skipped;
        }
        Ok(n > 0)
    }

    /// Moves past the first end tag `</qname>` (whitespace allowed before `>`) and returns
    /// the offset after it, without tokenizing what lies before it. A `</qname>` inside a
    /// comment, CDATA section or nested element of the same name ends the piece in the wrong
    /// place; the piece then does not parse, and the document goes to the tree reader.
    pub(super) fn skip_past_end_tag(&mut self, qname: &str) -> Result<u64, Fallback> {
        // Kept from one piece to the next: an aggregate's pieces are nearly all one element
        // name, and building the searcher was as costly as a short search.
        let finder = match self.end_tag.take() {
            Some(finder) if &finder.needle()[2..] == qname.as_bytes() => finder,
            _ => memchr::memmem::Finder::new(format!("</{qname}").as_bytes()).into_owned(),
        };
        let found = self.skip_with(&finder);
        self.end_tag = Some(finder);
        found
    }

    fn skip_with(&mut self, finder: &memchr::memmem::Finder<'static>) -> Result<u64, Fallback> {
        let needle = finder.needle();
        let mut from = self.offset();
        loop {
            let start = (from - self.base) as usize;
            if let Some(i) = finder.find(&self.buf[start..]) {
                let mut j = start + i + needle.len();
                while j < self.buf.len() && matches!(self.buf[j], b' ' | b'\t' | b'\r' | b'\n') {
                    j += 1;
                }
                if j < self.buf.len() {
                    if self.buf[j] == b'>' {
                        self.pos = j + 1;
                        return Ok(self.offset());
                    }
                    from = self.base + (start + i + 1) as u64;
                    continue;
                }
                // The tag runs past what is read: look again from its start.
                from = self.base + (start + i) as u64;
            } else {
                from = self.base + self.buf.len().saturating_sub(needle.len()).max(start) as u64;
            }
            // Everything up to `from` is scanned; keep it (it is the piece) and read on.
            self.pos = (from - self.base) as usize;
            if !self.read_more().map_err(|_| Fallback::Invalid)? {
                return Err(Fallback::Invalid);
            }
        }
    }

    /// Drops what is neither kept nor unread, counting its lines first.
    pub(super) fn compact(&mut self) {
        let drop_to = ((self.keep.max(self.base) - self.base) as usize).min(self.pos);
        if drop_to < self.chunk / 4 {
            return;
        }
        let offset = self.base + drop_to as u64;
        if self.counter.offset < offset {
            self.count_to(offset);
        }
        self.buf.drain(..drop_to);
        self.base = offset;
        self.pos -= drop_to;
    }
}

impl<R: Read> Read for Window<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Window<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.buf.len() && !self.eof {
            self.read_more()?;
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos += amount;
    }
}

/// Hashing threads started and not yet joined, in this process. A thread's kernel task can
/// stay listed for a moment after `join` returns, so a test that wants to know whether every
/// thread was joined asks this, not `/proc`.
static UNJOINED_HASHERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Hashing threads started and not yet joined (see [`Hasher`]); for tests.
#[doc(hidden)]
pub fn unjoined_hashing_threads() -> usize {
    UNJOINED_HASHERS.load(std::sync::atomic::Ordering::SeqCst)
}

/// The document's SHA-256, computed on a thread of its own from copies of the chunks read:
/// the thread that reads the stream is its bottleneck, and hashing was a tenth of its time.
/// Where no thread can be started, the hash is computed in place. The thread ends with the
/// hasher on every path: `finish` joins it, and so does dropping a hasher that was never
/// finished (a parse that stops early, or falls back to the tree reader), so no thread
/// outlives the parse that started it.
enum Hasher {
    Thread {
        /// `None` once closed (the thread then finishes its hash and ends).
        chunks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
        /// Chunk buffers the thread is done with, reused (fresh memory costs page faults).
        spare: std::sync::mpsc::Receiver<Vec<u8>>,
        /// `None` once joined.
        digest: Option<std::thread::JoinHandle<[u8; 32]>>,
    },
    InPlace(sha2::Sha256),
}

impl Hasher {
    fn new() -> Self {
        use std::sync::mpsc;
        // A few chunks in flight: the reader never waits on the hash unless it is that far
        // ahead.
        let (chunks, received) = mpsc::sync_channel::<Vec<u8>>(4);
        let (done, spare) = mpsc::channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("keyroll-sha256".into())
            .spawn(move || {
                let mut hasher = sha2::Sha256::new();
                for mut chunk in received {
                    hasher.update(&chunk);
                    chunk.clear();
                    // The reader may be gone (it stopped early): the buffer is then freed.
                    let _ = done.send(chunk);
                }
                hasher.finalize().into()
            });
        match thread {
            Ok(digest) => {
                UNJOINED_HASHERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Hasher::Thread {
                    chunks: Some(chunks),
                    spare,
                    digest: Some(digest),
                }
            }
            Err(_) => Hasher::InPlace(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Thread {
                chunks: Some(chunks),
                spare,
                ..
            } => {
                let mut chunk = spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(bytes.len()));
                chunk.extend_from_slice(bytes);
                if let Err(std::sync::mpsc::SendError(chunk)) = chunks.send(chunk) {
                    // The thread is gone (it panicked): `finish` reports it.
                    drop(chunk);
                }
            }
            Hasher::Thread { chunks: None, .. } => {}
            Hasher::InPlace(hasher) => hasher.update(bytes),
        }
    }

    /// Closes the thread's queue and waits for it: its digest, or its panic (`Err`).
    fn join(&mut self) -> Option<std::thread::Result<[u8; 32]>> {
        match self {
            Hasher::Thread { chunks, digest, .. } => {
                chunks.take();
                let joined = digest.take().map(std::thread::JoinHandle::join);
                if joined.is_some() {
                    UNJOINED_HASHERS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
                joined
            }
            Hasher::InPlace(_) => None,
        }
    }

    fn finish(mut self) -> [u8; 32] {
        match self.join() {
            Some(joined) => joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => match &mut self {
                Hasher::InPlace(hasher) => std::mem::take(hasher).finalize().into(),
                Hasher::Thread { .. } => unreachable!("a thread hasher is joined once"),
            },
        }
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        // A hash nobody asked for: the thread's result (or panic) is not needed, only its end.
        let _ = self.join();
    }
}
