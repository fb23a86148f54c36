//! Secrets: the GitHub token, a GitHub App's private key, the JWT and installation token made
//! from it. One type holds them all, and no formatting trait shows the value.
//!
//! Every secret made in this process is also registered, like the Actions runner's
//! `::add-mask::`: [`redact`] replaces each registered value (and the user information of any
//! URL) with `***`. keyroll runs everything it prints or sends as prose (error messages,
//! reports, summaries, outputs, pull request bodies) through it, so that a server echoing the
//! `Authorization` header back, or a metadata URL written as `https://user:pw@host/…`, shows
//! nothing.
//!
//! What keyroll stores is redacted the same way, where it is made: a metadata URL's user
//! information never reaches a saved plan, a snapshot's manifest or keyroll.lock (the fetch
//! alone uses it).

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;

/// Values shorter than this are not registered: masking a two-letter "secret" everywhere would
/// garble the output and protect nothing.
const MIN_REGISTERED: usize = 8;

static REGISTERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A secret value. `Debug` prints `Secret(***)`; there is no `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Trims surrounding white space (a pasted token often ends with a line break) and
    /// registers the value for [`redact`].
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into().trim().to_string();
        register(&value);
        Secret(value)
    }

    /// For clap's `value_parser`: an argument or environment variable holding a secret.
    pub fn parse_arg(value: &str) -> Result<Secret, std::convert::Infallible> {
        Ok(Secret::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Registers `value` for [`redact`]: the whole of it and, for a multi-line value such as a
/// PEM key, each of its lines (a server or a tool may echo one line of it).
fn register(value: &str) {
    let mut registered = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    let mut add = |v: &str| {
        if v.len() >= MIN_REGISTERED && !registered.iter().any(|r| r == v) {
            registered.push(v.to_string());
        }
    };
    add(value);
    for line in value.lines() {
        let line = line.trim();
        if !line.starts_with("-----") {
            add(line);
        }
    }
}

/// `text` with every registered secret and every URL's user information replaced by `***`.
pub fn redact(text: &str) -> String {
    redact_cow(text).into_owned()
}

/// [`redact`], copying `text` only when something in it is replaced.
fn redact_cow(text: &str) -> Cow<'_, str> {
    let mut secrets = REGISTERED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // Longest first: a key's whole text before its lines.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = Cow::Borrowed(text);
    for secret in &secrets {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), "***"));
        }
    }
    match out {
        Cow::Borrowed(text) => redact_urls_cow(text),
        Cow::Owned(text) => Cow::Owned(redact_urls_cow(&text).into_owned()),
    }
}

/// A writer that redacts (as [`redact`]) what passes through it, a run of whole lines at a
/// time, so that a large output is never held whole. Secrets never span lines: a key's
/// lines are registered one by one as well as whole.
pub struct RedactLines<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: std::io::Write> RedactLines<W> {
    const FLUSH_AT: usize = 64 * 1024;

    pub fn new(inner: W) -> Self {
        RedactLines {
            inner,
            pending: Vec::new(),
        }
    }

    fn write_lines(&mut self, upto: usize) -> std::io::Result<()> {
        // Taken out before they are written: after a failed write nothing is written twice.
        let rest = self.pending.split_off(upto);
        let lines = std::mem::replace(&mut self.pending, rest);
        Self::redacted(&mut self.inner, &lines)
    }

    fn redacted(inner: &mut W, lines: &[u8]) -> std::io::Result<()> {
        match std::str::from_utf8(lines) {
            Ok(text) => inner.write_all(redact_cow(text).as_bytes()),
            Err(_) => inner.write_all(redact(&String::from_utf8_lossy(lines)).as_bytes()),
        }
    }
}

impl<W: std::io::Write> std::io::Write for RedactLines<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // A large write with nothing pending: its whole lines go on straight from `bytes`
        // (inspect writes tens of megabytes a chunk at a time; copying them all through
        // `pending` was a tenth of the time spent writing).
        if bytes.len() >= Self::FLUSH_AT
            && let Some(last) = memchr::memrchr(b'\n', bytes)
        {
            let mut from = 0;
            if !self.pending.is_empty() {
                // Only the pending line's end joins it.
                let first = memchr::memchr(b'\n', bytes).unwrap_or(last);
                self.pending.extend_from_slice(&bytes[..=first]);
                self.write_lines(self.pending.len())?;
                from = first + 1;
            }
            if from <= last {
                Self::redacted(&mut self.inner, &bytes[from..=last])?;
            }
            self.pending.extend_from_slice(&bytes[last + 1..]);
            return Ok(bytes.len());
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= Self::FLUSH_AT
            && let Some(last) = memchr::memrchr(b'\n', &self.pending)
        {
            self.write_lines(last + 1)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.write_lines(self.pending.len())?;
        self.inner.flush()
    }
}

/// Replaces the user information of every `scheme://user[:password]@host` in `text` with
/// `***`: `https://user:pw@host/path` → `https://***@host/path`.
pub fn redact_urls(text: &str) -> String {
    redact_urls_cow(text).into_owned()
}

/// [`redact_urls`], copying `text` only when it has user information to replace (a report
/// of 40,000 rows names as many URLs, almost never with any).
fn redact_urls_cow(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    // `text[copied..]` is not yet in `out`.
    let mut copied = 0;
    let mut from = 0;
    // memchr's vectorised search: a report of 40,000 rows is tens of megabytes.
    let scheme_end = memchr::memmem::Finder::new("://");
    while let Some(at) = scheme_end.find(&text.as_bytes()[from..]) {
        let authority = from + at + 3;
        let after = &text[authority..];
        // The authority ends at the first of these; user information ends at its last `@`.
        let end = after
            .find(|c: char| "/?#".contains(c) || c.is_whitespace() || "\"'<>()`".contains(c))
            .unwrap_or(after.len());
        match after[..end].rfind('@') {
            Some(userinfo_end) => {
                let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                out.push_str(&text[copied..authority]);
                out.push_str("***");
                copied = authority + userinfo_end;
                from = copied;
            }
            None => from = authority,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Every string in `value` (keys and values, at any depth) as [`redact`] gives it: for JSON
/// that is stored (a saved plan's changes) rather than printed through a redacting writer.
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            if let Cow::Owned(clean) = redact_cow(text) {
                *text = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => {
            // Keys are rewritten only when one holds a secret (never, in keyroll's own JSON).
            if map.keys().any(|k| matches!(redact_cow(k), Cow::Owned(_))) {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    redact_json(&mut v);
                    map.insert(redact(&k), v);
                }
            } else {
                map.values_mut().for_each(redact_json);
            }
        }
        _ => {}
    }
}

/// True for hosts whose traffic never leaves the machine: `localhost`, 127.0.0.0/8, `::1`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    // An IPv6 host comes in brackets.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a credential may be sent to `url`: over https, or over plain http to a loopback
/// host (tests, a local proxy). Err says why not, naming the URL without user information.
pub fn check_credential_transport(url: &str, what: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("{what} {}: not a valid URL: {e}", redact_urls(url)))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "refusing to send the token to {what} {} over plain http://: use https:// (plain http is allowed for localhost only)",
            redact_urls(url)
        )),
        other => Err(format!(
            "{what} {}: unsupported scheme {other}: (https:// expected)",
            redact_urls(url)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let s = Secret::new("ghs_abcdef0123456789");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
    }

    #[test]
    fn registered_secrets_are_redacted_wherever_they_appear() {
        let token = Secret::new("  ghs_redact_me_4711\n");
        assert_eq!(token.expose(), "ghs_redact_me_4711");
        assert_eq!(
            redact(
                r#"{"message":"Bad credentials","echo":"Authorization: Bearer ghs_redact_me_4711"}"#
            ),
            r#"{"message":"Bad credentials","echo":"Authorization: Bearer ***"}"#
        );
        let key = Secret::new(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEArj4QjRF1QiRU\nc2Vjb25kIGxpbmUgb2Yga2V5\n-----END RSA PRIVATE KEY-----\n",
        );
        // One line of the key, echoed alone, is masked too; the armour lines are no secret.
        assert_eq!(
            redact("bad key line: MIIEowIBAAKCAQEArj4QjRF1QiRU"),
            "bad key line: ***"
        );
        assert_eq!(redact(key.expose()), "***");
        assert_eq!(
            redact("-----BEGIN RSA PRIVATE KEY-----"),
            "-----BEGIN RSA PRIVATE KEY-----"
        );
        // Too short to register: not masked everywhere.
        Secret::new("abc");
        assert_eq!(redact("abcdef"), "abcdef");
    }

    /// Written in odd-sized pieces past several flushes, a secret and a URL with user
    /// information on their lines come out redacted, everything else byte for byte.
    #[test]
    fn redacting_writer_redacts_line_by_line() {
        use std::io::Write as _;
        let _token = Secret::new("ghs_stream_secret_0815");
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("  \"row {i}\": \"ünï ghs_stream_secret_0815\",\n"));
            if i % 1000 == 0 {
                text.push_str("  \"source\": \"https://user:pw@idp.example/m.xml\"\n");
            }
        }
        // Small pieces (gathered in `pending`) and large ones (passed straight on, after the
        // end of the line left pending), with pieces ending mid-line and mid-character.
        for size in [777, 70_001, 65_536] {
            let mut out = RedactLines::new(Vec::new());
            for piece in text.as_bytes().chunks(size) {
                out.write_all(piece).unwrap();
            }
            out.flush().unwrap();
            let written = String::from_utf8(out.inner).unwrap();
            assert_eq!(written, redact(&text), "pieces of {size} bytes");
            assert!(!written.contains("ghs_stream_secret_0815"));
            assert!(written.contains("https://***@idp.example/m.xml"));
            assert_eq!(written.matches("ünï ***").count(), 5000);
        }
    }

    /// The URL redaction as first written (a copy of the text, always): the lazy one
    /// borrows when nothing is replaced and otherwise gives the same text.
    fn redact_urls_reference(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("://") {
            let (before, after) = rest.split_at(at + 3);
            out.push_str(before);
            let end = after
                .find(|c: char| "/?#".contains(c) || c.is_whitespace() || "\"'<>()`".contains(c))
                .unwrap_or(after.len());
            match after[..end].rfind('@') {
                Some(userinfo_end) => {
                    out.push_str("***");
                    rest = &after[userinfo_end..];
                }
                None => rest = after,
            }
        }
        out.push_str(rest);
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn lazy_url_redaction_is_the_copying_one(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("://".to_string()),
                    proptest::strategy::Just("@".to_string()),
                    proptest::strategy::Just("https://u:p@h/".to_string()),
                    "[a-z:/@?# \"é\n]{0,6}",
                ],
                0..12,
            )
        ) {
            let text = parts.concat();
            let lazy = redact_urls_cow(&text);
            let reference = redact_urls_reference(&text);
            proptest::prop_assert_eq!(lazy.as_ref(), reference.as_str());
            proptest::prop_assert_eq!(matches!(lazy, Cow::Borrowed(_)), lazy.as_ref() == text);
        }
    }

    #[test]
    fn url_user_information_is_redacted() {
        assert_eq!(
            redact_urls("https://user:pw@idp.example.com/FederationMetadata.xml: timed out"),
            "https://***@idp.example.com/FederationMetadata.xml: timed out"
        );
        assert_eq!(
            redact_urls("error sending request for url (https://u:p@h:8443/x?y=1)"),
            "error sending request for url (https://***@h:8443/x?y=1)"
        );
        assert_eq!(
            redact_urls(
                "fetching from https://x-access-token:ghs_1@github.com/o/r.git and http://a@b"
            ),
            "fetching from https://***@github.com/o/r.git and http://***@b"
        );
        // An `@` after the host is not user information.
        assert_eq!(
            redact_urls("https://github.com/o/r/blob/main/a@b.txt, mail dev@example.com"),
            "https://github.com/o/r/blob/main/a@b.txt, mail dev@example.com"
        );
        assert_eq!(
            redact_urls("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
    }

    /// Stored JSON and appended runner files: every string redacted, nothing else touched.
    #[test]
    fn stored_json_and_appended_files_are_redacted() {
        let _token = Secret::new("ghs_stored_secret_0042");
        let mut value = serde_json::json!({
            "reason": "read from https://u:pw@idp.example/m.xml",
            "list": [1, "Bearer ghs_stored_secret_0042", {"deep": "ok"}],
            "https://a:b@c/": true,
        });
        redact_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "reason": "read from https://***@idp.example/m.xml",
                "list": [1, "Bearer ***", {"deep": "ok"}],
                "https://***@c/": true,
            })
        );
    }

    #[test]
    fn credentials_go_over_https_or_to_loopback_only() {
        for ok in [
            "https://api.github.com",
            "https://ghe.example.com/api/v3",
            "http://127.0.0.1:8080",
            "http://127.1.2.3/x",
            "http://localhost:3000",
            "http://[::1]:9000/api",
        ] {
            assert_eq!(
                check_credential_transport(ok, "the GitHub API"),
                Ok(()),
                "{ok}"
            );
        }
        for refused in [
            "http://api.github.com",
            "http://10.0.0.1/api/v3",
            "http://localhost.evil.example/",
            "http://[::2]/",
        ] {
            let error = check_credential_transport(refused, "the GitHub API").unwrap_err();
            assert!(error.contains("plain http://"), "{refused}: {error}");
        }
        let error =
            check_credential_transport("http://u:pw@ghe.example.com/o/r.git", "the git remote")
                .unwrap_err();
        assert!(
            error.contains("http://***@ghe.example.com/o/r.git"),
            "{error}"
        );
        assert!(!error.contains("pw"));
    }
}
