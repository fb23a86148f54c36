//! Escaping for text keyroll copies from places it does not control into what GitHub renders
//! or parses: certificate subjects from metadata, URLs and error messages from API answers,
//! into pull request bodies and job summaries (Markdown, where `[x](…)` is a link, `![](…)`
//! a remote image, `@team` a notification and `<img>` HTML), and into `$GITHUB_OUTPUT`
//! (where a line break starts a new output).

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
