//! Escaping for text keyroll copies from places it does not control into what GitHub renders
//! or parses: certificate subjects from metadata, URLs and error messages from API answers,
//! into pull request bodies and job summaries (Markdown, where `[x](…)` is a link, `![](…)`
//! a remote image, `@team` a notification and `<img>` HTML), and into `$GITHUB_OUTPUT`
//! (where a line break starts a new output); and into the lines keyroll prints, where a CI
//! runner reads a line starting with `::` as a workflow command (`::error`, `::add-mask::`,
//! `::stop-commands::`) and a terminal obeys escape sequences.

use std::borrow::Cow;

/// The text on one line: CR, LF and the other line and paragraph separators become a space,
/// other control characters are dropped.
pub fn one_line(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\r' | '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// Whether `c` ends a line somewhere: the runner reads its log as .NET does (a lone CR ends a
/// line), terminals and editors honour NEL and the Unicode separators.
fn breaks_line(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn escape_char(c: char, out: &mut String) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Text from outside (metadata, API answers, file contents and names) as it may appear inside
/// one line keyroll prints: every line break and control character escaped visibly (`\n`,
/// `\r`, `\t`, `\u{1b}`, `\u{2028}`), so the text can neither start a line of its own (a
/// runner command such as `::error`, or a forged `error:` line) nor drive the terminal.
/// Anything else, backslashes and invisible format characters such as U+200E included, is
/// left as it was: the output of ordinary text is unchanged.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || breaks_line(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() || breaks_line(c) {
            escape_char(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`printable`] for a block of lines keyroll put together around outside text (a diff of a
/// config, a pull request body, an error listing several problems): its own line ends (LF, or
/// CRLF as a Windows config has them) and tabs (a config's indentation) stay; a CR that ends
/// no line, NEL, the Unicode separators and every other control character are escaped.
pub fn printable_block(text: &str) -> Cow<'_, str> {
    let bad = |c: char| c != '\n' && c != '\t' && (c.is_control() || breaks_line(c));
    let crlf_only = |(i, c): (usize, char)| c == '\r' && text[i + 1..].starts_with('\n');
    if !text
        .char_indices()
        .any(|(i, c)| bad(c) && !crlf_only((i, c)))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            out.push(c);
        } else if bad(c) {
            escape_char(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text keyroll prints that is not meant as runner commands, with no line a runner would run:
/// a line whose first non-blank characters are `::` (the runner trims leading white space
/// before it looks) has its first colon written `\u{3a}`. Outside text escaped with
/// [`printable`] cannot start a line; this holds when it is the first thing on one (a
/// config's line in a diff, a file named `::error::x`). keyroll's own commands (`scan
/// --format github`, `::add-mask::`) are printed without it.
pub fn no_commands(text: &str) -> Cow<'_, str> {
    let is_command = |line: &str| line.trim_start().starts_with("::");
    if !text.split('\n').any(is_command) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if is_command(line) {
            let blank = line.len() - line.trim_start().len();
            out.push_str(&line[..blank]);
            out.push_str("\\u{3a}");
            out.push_str(&line[blank + 1..]);
        } else {
            out.push_str(line);
        }
    }
    Cow::Owned(out)
}

/// JSON text keyroll prints, with the characters serde_json leaves raw escaped as JSON
/// allows (`\u2028`): DEL, the C1 controls (NEL and the 8-bit CSI among them) and the Unicode
/// line and paragraph separators. serde_json escapes the C0 controls, CR and LF itself. In
/// keyroll's JSON these characters occur only inside strings, where the escape reads back
/// as the same character.
pub fn json_controls(json: &str) -> Cow<'_, str> {
    let raw = |c: char| matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}');
    // Every such character starts with one of three bytes (DEL; 0xC2 for U+0080..U+009F;
    // 0xE2 for U+2028/9): one vectorised search passes the usual text (inspect's JSON is
    // tens of megabytes) without decoding it.
    if memchr::memchr3(0x7f, 0xc2, 0xe2, json.as_bytes()).is_none() || !json.chars().any(raw) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 12);
    for c in json.chars() {
        if raw(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text made fit to sit inside an HTML comment (`<!-- keyroll: {...} -->`): a `-` that
/// follows another is written `\u002d`, JSON's own escape, so no `--` (which ends or breaks
/// a comment: `-->`, `--!>`) is left, and the JSON parses back to the same values. In valid
/// JSON two dashes in a row occur only inside strings, where the escape is allowed. Text
/// without `--` is returned as it was.
pub fn comment_json(json: &str) -> Cow<'_, str> {
    if !json.contains("--") {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 12);
    let mut after_dash = false;
    for c in json.chars() {
        if c == '-' && after_dash {
            out.push_str("\\u002d");
            // The escape ends in `d`: the next dash starts afresh.
            after_dash = false;
        } else {
            out.push(c);
            after_dash = c == '-';
        }
    }
    Cow::Owned(out)
}

/// Prefixes of GitHub's token formats: personal (classic and fine-grained), OAuth, user-to-
/// server, installation (`ghs_`, what an App or `GITHUB_TOKEN` holds) and refresh tokens.
const TOKEN_PREFIXES: &[&str] = &["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"];

/// Text another process wrote (a matrix job's stderr, its pr.json), with anything that looks
/// like a credential replaced by `***`: GitHub tokens by their prefixes, whatever follows
/// `Bearer ` and `Basic `, and the value of an `Authorization:` header. [`crate::model::secret::redact`]
/// knows only the secrets this process made; a job's output holds the job's own.
pub fn redact_token_like(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let starts_word = |at: usize| at == 0 || !is_word(lower.as_bytes()[at - 1]);
    // Spans of `text` to replace (start, end): the credential, never the word before it.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let credential_end = |from: usize| {
        from + text[from..]
            .find(|c: char| c.is_whitespace() || "\"'`,;<>()[]{}".contains(c))
            .unwrap_or(text.len() - from)
    };
    for prefix in TOKEN_PREFIXES {
        for (at, _) in lower.match_indices(prefix) {
            // GitHub's tokens are letters, digits and `_`: a URL's `@host` after one stays.
            let end = at
                + text[at..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(text.len() - at);
            if starts_word(at) && end > at + prefix.len() {
                spans.push((at, end));
            }
        }
    }
    for word in ["bearer", "basic", "authorization:"] {
        for (at, _) in lower.match_indices(word) {
            let after = at + word.len();
            // A header's value may name its scheme first: the credential is what follows it.
            let blank = text[after..].len() - text[after..].trim_start_matches([' ', '\t']).len();
            if !starts_word(at) || (word != "authorization:" && blank == 0) {
                continue;
            }
            let mut from = after + blank;
            if word == "authorization:" {
                let scheme_end = credential_end(from);
                let scheme = &lower[from..scheme_end];
                if matches!(scheme, "bearer" | "basic" | "token") {
                    let rest = &text[scheme_end..];
                    from = scheme_end + rest.len() - rest.trim_start_matches([' ', '\t']).len();
                }
            }
            let end = credential_end(from);
            // After a bare `Bearer`/`Basic` only what looks like a credential (long, with a
            // digit or base64/JWT punctuation), so that "the bearer of bad news" stays prose.
            let value = &text[from..end];
            let credential_like = value.len() >= 8
                && value
                    .chars()
                    .any(|c| c.is_ascii_digit() || "._=-+/".contains(c));
            if end > from && (word == "authorization:" || credential_like) {
                spans.push((from, end));
            }
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in spans {
        if end <= copied {
            continue;
        }
        let start = start.max(copied);
        out.push_str(&text[copied..start]);
        out.push_str("***");
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A Markdown code span holding `text` on one line: nothing inside renders (no link, image,
/// mention, emphasis or HTML), whatever the text holds. The fence is one backtick longer than
/// the longest run of backticks inside, as CommonMark allows.
pub fn md_code(text: &str) -> String {
    let line = one_line(text);
    let mut longest = 0;
    let mut run = 0;
    for c in line.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    if line.is_empty() {
        return "` `".into();
    }
    let fence = "`".repeat(longest + 1);
    // A span starting or ending with a backtick needs a space inside the fence; CommonMark
    // strips one space from each end when both are there.
    let pad = if line.starts_with('`') || line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{line}{pad}{fence}")
}

/// Prose from outside (an entityID, a config's issuer name, a reason quoting them) as
/// Markdown text on one line, rendered as written: the characters that make links, images,
/// HTML, code, emphasis and table cells are backslash-escaped, and `@` is followed by a
/// word joiner so no `@user` or `@org/team` notifies anyone.
pub fn md_text(text: &str) -> String {
    let line = one_line(text);
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("@\u{2060}"),
            c => out.push(c),
        }
    }
    out
}

/// [`md_code`] fit for a table cell: `|` escaped (GitHub splits cells before it reads code
/// spans, and drops the backslash of `\|` inside them).
pub fn md_cell(text: &str) -> String {
    md_code(text).replace('|', "\\|")
}

/// A URL fit for a Markdown link destination, or None when it is not http(s). Characters that
/// could end the destination or the line (spaces, parentheses, angle brackets, quotes,
/// backslashes, controls) and non-ASCII are percent-encoded.
pub fn md_url(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return None;
    }
    let mut out = String::new();
    for byte in url.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b':'
            | b'/'
            | b'?'
            | b'#'
            | b'@'
            | b'!'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b';'
            | b'='
            | b'%' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    Some(out)
}

/// One `$GITHUB_OUTPUT` entry. A value on one line is `name=value`; a value with a line
/// break uses the runner's `name<<DELIMITER` form, with a delimiter that is no line of the
/// value, so the value can never start another output.
pub fn output_entry(name: &str, value: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return format!("{name}={value}\n");
    }
    let lines: std::collections::HashSet<&str> = value.split(['\n', '\r']).collect();
    let delimiter = (0u32..)
        .map(|n| format!("KEYROLL_EOF_{n}"))
        .find(|d| !lines.contains(d.as_str()))
        .expect("some delimiter is free");
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_every_line_break_and_control_visibly() {
        assert_eq!(
            printable("a\nb\r\nc\rd\u{2028}e\u{2029}f\u{85}g\u{1b}[31mh\ti\u{7f}\u{0}"),
            "a\\nb\\r\\nc\\rd\\u{2028}e\\u{2029}f\\u{85}g\\u{1b}[31mh\\ti\\u{7f}\\u{0}"
        );
        // Ordinary text, Windows paths and invisible format characters stay as they were.
        for same in [
            "",
            "CN=adfs, O=Contoso",
            "C:\\inetpub\\web.config",
            "\u{200e}5d d3",
        ] {
            assert!(matches!(printable(same), Cow::Borrowed(_)), "{same:?}");
        }
    }

    #[test]
    fn printable_blocks_keep_their_own_line_ends_and_tabs_only() {
        let config = "<a>\r\n\t<b/>\r\n</a>\n";
        assert!(matches!(printable_block(config), Cow::Borrowed(_)));
        assert_eq!(
            printable_block("x\r::error::a\n y\u{2028}::b\u{85}\u{1b}\r\n"),
            "x\\r::error::a\n y\\u{2028}::b\\u{85}\\u{1b}\r\n"
        );
    }

    #[test]
    fn no_line_reads_as_a_runner_command() {
        assert_eq!(
            no_commands("ok\n::error::x\n   \t::warning::y\nz :: w\n"),
            "ok\n\\u{3a}:error::x\n   \t\\u{3a}:warning::y\nz :: w\n"
        );
        assert!(matches!(no_commands("a: b\n c::d\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn comment_json_leaves_no_double_dash_and_parses_back() {
        for name in ["a-->b", "--", "---!>", "x-y", "-", "a--b--c", "<!-- x -->"] {
            let json = serde_json::to_string(&serde_json::json!({ "issuer": name })).unwrap();
            let safe = comment_json(&json);
            assert!(!safe.contains("--"), "{safe}");
            let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
            assert_eq!(back["issuer"], name);
        }
        assert!(matches!(
            comment_json(r#"{"issuer":"contoso-adfs"}"#),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn token_like_text_is_redacted_and_prose_is_not() {
        let cases = [
            (
                "error: GitHub answered 401: Authorization: Bearer ghs_16C7e42F292c6912E7710c838347Ae178B4a",
                "error: GitHub answered 401: Authorization: Bearer ***",
            ),
            (
                "curl -H 'Authorization: token ghp_abcDEF123'",
                "curl -H 'Authorization: token ***'",
            ),
            (
                "authorization:Basic dXNlcjpwdw==",
                "authorization:Basic ***",
            ),
            ("x-authorization: abc.def", "x-authorization: ***"),
            (
                "jwt Bearer eyJhbGciOi.eyJ.sig, then",
                "jwt Bearer ***, then",
            ),
            ("Basic dXNlcjpwdw==", "Basic ***"),
            (
                "pat github_pat_11ABC_xyz and gho_x ghu_y ghr_z",
                "pat *** and *** *** ***",
            ),
            (
                "https://x:ghs_abc@github.com/o/r.git",
                "https://x:***@github.com/o/r.git",
            ),
            ("{\"echo\":\"ghs_abc\"}", "{\"echo\":\"***\"}"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_token_like(text), want, "{text}");
        }
        for prose in [
            "laughs_at nothing; the bearer of bad news",
            "Basic authentication is not used",
            "ghs_",
            "error: contoso-adfs: metadata failed",
        ] {
            assert!(
                matches!(redact_token_like(prose), Cow::Borrowed(_)),
                "{prose}"
            );
        }
    }

    #[test]
    fn json_controls_are_escaped_and_read_back() {
        let value = serde_json::json!({ "id": "a\u{2028}b\u{85}c\u{9b}d\u{7f}e\n" });
        let text = serde_json::to_string(&value).unwrap();
        let safe = json_controls(&text);
        assert_eq!(safe, r#"{"id":"a\u2028b\u0085c\u009bd\u007fe\n"}"#);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value
        );
        assert!(matches!(json_controls(r#"{"a":"é—∑"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn one_line_removes_every_kind_of_line_break() {
        assert_eq!(one_line("a\r\nb\nc\u{2028}d\u{85}e\u{7}f"), "a  b c d ef");
    }

    #[test]
    fn code_spans_hold_links_images_mentions_and_html_inert() {
        assert_eq!(
            md_code(
                "CN=[link](https://evil.example), @team ![](https://evil.example/x.png) <img src=x>"
            ),
            "`CN=[link](https://evil.example), @team ![](https://evil.example/x.png) <img src=x>`"
        );
        // Backticks inside cannot close the span.
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("a``b"), "```a``b```");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_code(""), "` `");
        // A CR or LF cannot end the table row.
        assert_eq!(md_code("CN=a\r| b |\nc"), "`CN=a | b | c`");
        assert_eq!(md_cell("CN=a|b"), "`CN=a\\|b`");
    }

    #[test]
    fn link_destinations_cannot_be_broken_out_of() {
        assert_eq!(
            md_url("https://github.com/o/r/pull/7").as_deref(),
            Some("https://github.com/o/r/pull/7")
        );
        assert_eq!(
            md_url("https://x/a) ![](https://evil/i.png").as_deref(),
            Some("https://x/a%29%20!%5B%5D%28https://evil/i.png")
        );
        assert_eq!(
            md_url("https://x/\n<b>").as_deref(),
            Some("https://x/%0A%3Cb%3E")
        );
        assert_eq!(md_url("javascript:alert(1)"), None);
    }

    #[test]
    fn output_values_cannot_inject_another_output() {
        assert_eq!(output_entry("changed", "true"), "changed=true\n");
        let entry = output_entry("pull-request-urls", "https://x/7\nchanged=true");
        assert_eq!(
            entry,
            "pull-request-urls<<KEYROLL_EOF_0\nhttps://x/7\nchanged=true\nKEYROLL_EOF_0\n"
        );
        // A value holding the first delimiter gets another one.
        let entry = output_entry("o", "a\nKEYROLL_EOF_0\nchanged=true");
        assert!(entry.starts_with("o<<KEYROLL_EOF_1\n"), "{entry}");
        assert!(entry.ends_with("\nKEYROLL_EOF_1\n"));
        assert_eq!(
            output_entry("o", "a\rb"),
            "o<<KEYROLL_EOF_0\na\rb\nKEYROLL_EOF_0\n"
        );
    }
}
