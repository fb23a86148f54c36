//! Byte offsets to line and column, for error messages and key locations.

/// Line starts of a text, so that many positions can be turned into line and column without
/// rescanning from the start each time (roxmltree's `text_pos_at` does, which made reading a
/// 60 MB aggregate quadratic).
///
/// Columns count characters, so a line index alone is not enough: AD FS writes its whole
/// document on one line, and counting the characters from the line start for each of 20,000
/// KeyDescriptors was quadratic again. The index also keeps the number of characters before
/// every `BLOCK`-byte checkpoint; a column is then counted from the nearest checkpoint.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
    chars_before_block: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    const BLOCK: usize = 4096;

    pub fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1));
        let mut chars_before_block = Vec::with_capacity(bytes.len() / Self::BLOCK + 2);
        let mut chars = 0;
        for block in bytes.chunks(Self::BLOCK) {
            chars_before_block.push(chars);
            // ASCII (checked word by word) is one character per byte.
            chars += count_chars(block);
        }
        chars_before_block.push(chars);
        LineIndex {
            text,
            starts,
            chars_before_block,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = self.chars_before(offset) - self.chars_before(start);
        (line as u32, column as u32 + 1)
    }

    /// Characters that start before a byte offset.
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / Self::BLOCK;
        self.chars_before_block[block]
            + count_chars(&self.text.as_bytes()[block * Self::BLOCK..offset])
    }
}

/// Positions in a text that is one piece of a larger document: a slice cut out of a stream
/// and parsed behind a prefix (the namespace declarations its ancestors made). Offsets are
/// into the parsed text; positions are the document's.
pub struct Locator<'a> {
    index: LineIndex<'a>,
    /// Bytes and characters of the prefix, which is on the parsed text's first line.
    prefix_bytes: usize,
    prefix_chars: u32,
    /// Line and column in the document where the piece starts.
    origin: (u32, u32),
    /// Text cut out of the parsed text (certificates' base64, see [`Cut`]), in order: offsets
    /// into the parsed text are moved past them onto the text the index was made of.
    cuts: Vec<Cut>,
}

/// A run of text the parser did not see: it was cut at `at` in the parsed text, and lies at
/// `original` in the text the locator indexes; `shift` is every cut's length up to this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub at: usize,
    pub shift: usize,
    pub original: std::ops::Range<usize>,
}

impl<'a> Locator<'a> {
    /// The whole document.
    pub fn whole(text: &'a str) -> Self {
        Locator {
            index: LineIndex::new(text),
            prefix_bytes: 0,
            prefix_chars: 0,
            origin: (1, 1),
            cuts: Vec::new(),
        }
    }

    /// `text` is `prefix` followed by a piece that starts at `origin` in the document.
    pub fn piece(text: &'a str, prefix: &str, origin: (u32, u32)) -> Self {
        Locator {
            index: LineIndex::new(text),
            prefix_bytes: prefix.len(),
            prefix_chars: prefix.chars().count() as u32,
            origin,
            cuts: Vec::new(),
        }
    }

    /// The same piece, parsed with `cuts` taken out of `text` (the text this locator indexes).
    pub fn with_cuts(mut self, cuts: Vec<Cut>) -> Self {
        self.cuts = cuts;
        self
    }

    /// The text cut at an offset within `within` of the parsed text, if any was.
    pub fn cut_text(&self, within: std::ops::Range<usize>) -> Option<&'a str> {
        let i = self.cuts.partition_point(|c| c.at < within.start);
        let cut = self.cuts.get(i).filter(|c| c.at < within.end)?;
        self.index.text.get(cut.original.clone())
    }

    /// 1-based line and column in the document of an offset into the parsed text.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        // A node starting where text was cut (an end tag) lies after that text.
        let shift = match self.cuts.partition_point(|c| c.at <= offset) {
            0 => 0,
            n => self.cuts[n - 1].shift,
        };
        let offset = offset + shift;
        let (line, column) = self.index.position(offset.max(self.prefix_bytes));
        if line == 1 {
            (
                self.origin.0,
                self.origin.1 + column - 1 - self.prefix_chars,
            )
        } else {
            (self.origin.0 + line - 1, column)
        }
    }
}

/// Counts lines and columns over a document read front to back, so a stream can name the
/// position of any byte it still holds without keeping what came before.
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    /// Offset counted up to, and the line and column there.
    pub offset: u64,
    pub line: u32,
    pub column: u32,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            offset: 0,
            line: 1,
            column: 1,
        }
    }
}

impl Counter {
    /// Moves over `bytes`, the document's bytes from `self.offset` on.
    pub fn advance(&mut self, bytes: &[u8]) {
        let newlines = memchr::memchr_iter(b'\n', bytes).count();
        if newlines > 0 {
            let last = memchr::memrchr(b'\n', bytes).unwrap_or(0);
            self.line += newlines as u32;
            self.column = 1 + count_chars(&bytes[last + 1..]) as u32;
        } else {
            self.column += count_chars(bytes) as u32;
        }
        self.offset += bytes.len() as u64;
    }
}

/// UTF-8 characters in a byte slice: every byte that is not a continuation byte starts one.
/// ASCII (checked a word at a time) is one character per byte.
fn count_chars(bytes: &[u8]) -> usize {
    if bytes.is_ascii() {
        return bytes.len();
    }
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

pub fn line_column(prefix: &[u8]) -> (u32, u32) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&prefix[line_start..])
        .chars()
        .count()
        + 1;
    (line as u32, column as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every offset of a text with multi-byte characters across checkpoints: the index agrees
    /// with counting from the start.
    #[test]
    fn line_index_agrees_with_a_rescan() {
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(["a", "ä", "東", "😀", "\n", "x\r\n"][i % 6]);
            if i % 7 == 0 {
                text.push_str(&"b".repeat(i % 1500));
            }
        }
        let index = LineIndex::new(&text);
        // Walk the text once, counting as a person reading it would.
        let (mut line, mut column) = (1, 1);
        for (n, (offset, ch)) in text.char_indices().enumerate() {
            // Every 5th character: each look-up counts up to a checkpoint's width.
            if n % 5 == 0 {
                assert_eq!(index.position(offset), (line, column), "offset {offset}");
            }
            if ch == '\n' {
                (line, column) = (line + 1, 1);
            } else {
                column += 1;
            }
        }
        assert_eq!(index.position(text.len()), (line, column));
        assert_eq!(line_column(text.as_bytes()), (line, column));
    }

    /// One line of 16 MB, as AD FS writes its documents, and 20,000 positions on it: counting
    /// each column from the line start took minutes; from the nearest checkpoint, milliseconds.
    #[test]
    fn positions_on_one_long_line_are_not_rescanned() {
        let unit = "<md:KeyDescriptor use=\"signing\">é</md:KeyDescriptor>";
        let text = unit.repeat(16_000_000 / unit.len());
        let started = std::time::Instant::now();
        let index = LineIndex::new(&text);
        let step = text.len() / 20_000;
        let mut last = (0, 0);
        for i in 0..20_000 {
            let offset = (i * step) / unit.len() * unit.len();
            last = index.position(offset);
        }
        let elapsed = started.elapsed();
        let offset = (19_999 * step) / unit.len() * unit.len();
        let chars_per_unit = unit.chars().count();
        assert_eq!(last, (1, (offset / unit.len() * chars_per_unit) as u32 + 1));
        assert!(
            elapsed < std::time::Duration::from_secs(10),
            "20,000 positions on one 16 MB line took {elapsed:?}"
        );
    }
}
