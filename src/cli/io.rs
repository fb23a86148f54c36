//! Helpers every command shares: the environment, the async runtime, and output. What
//! reaches stdout, stderr or a runner's command file is redacted
//! ([`keyroll::model::secret::redact`]) on every path.

use anyhow::{Context as _, Result};
use std::io::Write as _;

use keyroll::model::secret::{RedactLines, redact};
use keyroll::render::sanitize::{json_controls, no_commands, printable};

/// An environment variable, `None` when unset or empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Which runtime a command's async work runs on.
pub enum Threads {
    /// This thread only (the repository commands).
    Current,
    /// This many worker threads (the organisation commands, whose look-ups run side by side).
    Workers(usize),
}

pub fn runtime(threads: Threads) -> Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        Threads::Current => tokio::runtime::Builder::new_current_thread(),
        Threads::Workers(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    Ok(builder.enable_all().build()?)
}

/// Reports for people (plan, inspect, pr, scan text): redacted, and no line of theirs reads
/// as a runner command whatever a config or metadata put at its start (a diff's context line
/// ` ::error::…` included; the runner trims leading blanks).
pub fn print(text: &str) -> Result<()> {
    print_raw(&no_commands(&redact(text)))
}

/// Output printed as it is but redacted: JSON, and the runner commands keyroll means
/// (`scan --format github`, each escaped by the runner's own rules).
pub fn print_as_is(text: &str) -> Result<()> {
    print_raw(&redact(text))
}

/// A closed pipe (`keyroll inspect … | head`) is not an error.
fn print_raw(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// A line on stderr (a warning, a note, what a run did), redacted.
pub fn say(line: &str) {
    eprintln!("{}", redact(line));
}

/// The run's error on stderr, redacted, with no line a runner would read as a command. An
/// error's text quotes outside text (an entityID, a file name, a TOML key or JSON field named
/// in a parser's message, a database server's or an API's message) that may hold line breaks:
/// every line break and control character in it is escaped (`\n`), so the error is one line.
/// The only line breaks printed are those between the problems of an error that lists
/// several ([`listed`]), each problem escaped on its own line.
pub fn say_error(error: &anyhow::Error) {
    let text = error.chain().map(cause_text).collect::<Vec<_>>().join(": ");
    eprintln!("error: {}", no_commands(&redact(&text)));
}

/// One cause of an error chain as `{:#}` prints it (causes are joined with ": "), escaped.
fn cause_text(cause: &(dyn std::error::Error + 'static)) -> String {
    listed(cause).unwrap_or_else(|| printable(&cause.to_string()).into_owned())
}

/// Several errors that end a command together (each already escaped), one per line, each
/// after the first with its own `error: `.
#[derive(Debug)]
pub struct ErrorLines(pub Vec<String>);

impl std::fmt::Display for ErrorLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\nerror: "))
    }
}

impl std::error::Error for ErrorLines {}

/// The text of an error that lists several problems, one per line as its `Display` has them,
/// each problem escaped: the lock's rows, the paths a scan could not read, the inputs a saved
/// plan no longer matches, found also inside the errors that carry them transparently.
fn listed(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    use keyroll::act::ActError;
    use keyroll::act::init::InitError;
    use keyroll::act::onboard::OnboardError;
    use keyroll::act::saved::{DRIFT, SavedError};
    use keyroll::load::LoadError;
    use keyroll::load::scan::ScanError;
    use keyroll::model::lock::LockError;
    fn lock(e: &LockError) -> Option<String> {
        let LockError::Rows(rows) = e else {
            return None;
        };
        Some(lines(rows.iter().map(ToString::to_string), ""))
    }
    fn scan(e: &ScanError) -> Option<String> {
        let ScanError::Several(errors) = e else {
            return None;
        };
        Some(format!(
            "{} paths could not be read:\n{}",
            errors.len(),
            lines(errors.iter().map(ToString::to_string), "  ")
        ))
    }
    fn act(e: &ActError) -> Option<String> {
        match e {
            ActError::Lock(e) => lock(e),
            _ => None,
        }
    }
    fn lines(items: impl Iterator<Item = String>, indent: &str) -> String {
        items
            .map(|item| format!("{indent}{}", printable(&item)))
            .collect::<Vec<_>>()
            .join("\n")
    }
    if let Some(e) = cause.downcast_ref::<ErrorLines>() {
        return Some(e.to_string());
    }
    if let Some(e) = cause.downcast_ref::<LockError>() {
        return lock(e);
    }
    if let Some(e) = cause.downcast_ref::<ScanError>() {
        return scan(e);
    }
    if let Some(e) = cause.downcast_ref::<ActError>() {
        return act(e);
    }
    if let Some(LoadError::Lock(e)) = cause.downcast_ref::<LoadError>() {
        return lock(e);
    }
    if let Some(InitError::Scan(e)) = cause.downcast_ref::<InitError>() {
        return scan(e);
    }
    if let Some(OnboardError::Init(InitError::Scan(e))) = cause.downcast_ref::<OnboardError>() {
        return scan(e);
    }
    match cause.downcast_ref::<SavedError>()? {
        SavedError::Drift { file, drift } => Some(format!(
            "{}: {DRIFT}:\n{}",
            printable(file),
            lines(drift.iter().map(ToString::to_string), "  ")
        )),
        SavedError::Lock(e) => lock(e),
        SavedError::Act(e) => act(e),
        _ => None,
    }
}

/// Writes to stdout as `write` makes the output, redacted line by line: no copy of a long
/// report is held (an aggregate's inspect JSON is tens of megabytes). A closed pipe is not a
/// failure.
pub fn write_stdout(
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    let stdout = std::io::stdout().lock();
    // serde_json writes a few bytes at a time: buffered before the escaping and redaction.
    let mut out = std::io::BufWriter::with_capacity(
        64 * 1024,
        JsonControls::new(RedactLines::new(std::io::BufWriter::new(stdout))),
    );
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// A writer passing whole lines of JSON on with [`json_controls`] applied (a character is never
/// cut in two: lines end at a `\n` byte, which no UTF-8 sequence holds).
struct JsonControls<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: std::io::Write> JsonControls<W> {
    fn new(inner: W) -> Self {
        JsonControls {
            inner,
            pending: Vec::new(),
        }
    }

    fn emit(inner: &mut W, bytes: &[u8]) -> std::io::Result<()> {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        inner.write_all(json_controls(&text).as_bytes())
    }
}

impl<W: std::io::Write> std::io::Write for JsonControls<W> {
    /// Whole lines are passed on straight from `buf` (inspect writes tens of megabytes: no
    /// copy); only an unfinished last line waits in `pending`.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(last) = memchr::memrchr(b'\n', buf) else {
            self.pending.extend_from_slice(buf);
            return Ok(buf.len());
        };
        let mut from = 0;
        if !self.pending.is_empty() {
            // Only the pending line's end joins it: the lines after it are not copied.
            let first = memchr::memchr(b'\n', buf).unwrap_or(last);
            self.pending.extend_from_slice(&buf[..=first]);
            // Taken before it is written: after a failed write nothing is written twice.
            let mut lines = std::mem::take(&mut self.pending);
            Self::emit(&mut self.inner, &lines)?;
            lines.clear();
            self.pending = lines;
            from = first + 1;
        }
        if from <= last {
            Self::emit(&mut self.inner, &buf[from..=last])?;
        }
        self.pending.extend_from_slice(&buf[last + 1..]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.pending);
        Self::emit(&mut self.inner, &rest)?;
        self.inner.flush()
    }
}

/// `n` and `word`, plural unless `n` is 1: "1 error", "2 errors".
pub fn count(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Appends `text`, redacted, to `path` (created if missing): how every command writes the
/// Actions runner's command files (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`), which the
/// runner keeps and shows; so no token or URL password that reached the text by an error
/// message or an echoing server is written there.
pub fn append(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(redact(text).as_bytes()))
        .with_context(|| format!("appending to {}", path.display()))
}

/// The GitHub client's retries. Tests shorten the waits (`KEYROLL_TEST_FAST_RETRY=1`); real
/// runs keep GitHub's.
pub fn retry_policy() -> keyroll::act::github::RetryPolicy {
    use keyroll::act::github::RetryPolicy;
    if env("KEYROLL_TEST_FAST_RETRY").is_some() {
        RetryPolicy {
            attempts: 2,
            backoff: std::time::Duration::from_millis(10),
            max_wait: std::time::Duration::from_secs(1),
        }
    } else {
        RetryPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn appended_text_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        // A token keyroll was given is registered for redaction as it is read.
        keyroll::model::secret::Secret::new("ghs_stored_secret_0042");
        super::append(&file, "a=ghs_stored_secret_0042\n").unwrap();
        super::append(&file, "b=https://x:y@h/\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "a=***\nb=https://***@h/\n"
        );
    }

    /// Written in pieces of any size, cut mid-line or mid-character, the JSON comes out as
    /// `json_controls` makes it of the whole text.
    #[test]
    fn json_controls_writer_is_the_whole_texts_escape() {
        use std::io::Write as _;
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(&format!("    \"row {i}\": \"é \u{2028} \u{85} 🔑\",\n"));
        }
        let expected = keyroll::render::sanitize::json_controls(&text).into_owned();
        for size in [1, 7, 4096, 65_537, 200_000] {
            let mut out = super::JsonControls::new(Vec::new());
            for piece in text.as_bytes().chunks(size) {
                out.write_all(piece).unwrap();
            }
            out.flush().unwrap();
            assert_eq!(
                String::from_utf8(out.inner).unwrap(),
                expected,
                "pieces of {size}"
            );
        }
    }
}
