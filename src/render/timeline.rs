//! The rollover as a picture: one Mermaid `gantt` block per issuer, drawn from the plan's
//! per-key data (validity, first seen, grace end, planned removal) and its `now`. GitHub
//! renders these blocks in pull requests, issues and job summaries; a reviewer sees where
//! "today" falls between the new key's publication and the old one's removal.
//!
//! Everything in it is a function of the plan: the same plan and `--now` give the same
//! bytes. Mermaid's own today marker (the reader's clock) is turned off for that reason.

use time::OffsetDateTime;

use crate::decide::plan::{IssuerReport, KeyReport};

/// AD FS promotes its next token-signing certificate this long after publishing it
/// (CertificatePromotionThreshold).
const ADFS_PROMOTION: time::Duration = time::Duration::days(5);

/// One key as the picture needs it, from a plan's [`KeyReport`] or a `pr --format json`
/// report's copy of one.
#[derive(Debug, Clone, Default)]
pub struct TimelineKey {
    pub sha1: String,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    pub published: bool,
    pub expired: bool,
    pub action: String,
    pub first_seen: Option<String>,
    pub grace_end: Option<String>,
    pub removal: Option<String>,
}

impl From<&KeyReport> for TimelineKey {
    fn from(k: &KeyReport) -> Self {
        TimelineKey {
            sha1: k.sha1.to_string(),
            subject: k.subject.clone(),
            not_before: k.not_before.clone(),
            not_after: k.not_after.clone(),
            published: k.published,
            expired: k.status == crate::decide::plan::KeyStatus::Expired,
            action: k.action.as_str().to_string(),
            first_seen: k.first_seen.clone(),
            grace_end: k.grace_end.clone(),
            removal: k.removal.clone(),
        }
    }
}

impl TimelineKey {
    /// A key as `keyroll pr --format json` writes it (see [`KeyReport`]'s fields).
    pub fn from_json(v: &serde_json::Value) -> TimelineKey {
        let s = |name: &str| v[name].as_str().map(str::to_string);
        TimelineKey {
            sha1: s("sha1").unwrap_or_default(),
            subject: s("subject").unwrap_or_default(),
            not_before: s("not_before").unwrap_or_default(),
            not_after: s("not_after").unwrap_or_default(),
            published: v["published"].as_bool().unwrap_or(false),
            expired: v["status"].as_str() == Some("expired"),
            action: s("action").unwrap_or_default(),
            first_seen: s("first_seen"),
            grace_end: s("grace_end"),
            removal: s("removal"),
        }
    }
}

/// The issuer's timeline from a plan's report.
pub fn issuer_timeline(issuer: &IssuerReport, now: OffsetDateTime) -> String {
    let keys: Vec<TimelineKey> = issuer.keys.iter().map(TimelineKey::from).collect();
    let adfs = issuer
        .entity_ids
        .iter()
        .any(|id| id.to_ascii_lowercase().contains("/adfs/"));
    timeline(&issuer.name, &keys, adfs, now)
}

/// A `### Timeline` part for Markdown: a ```` ```mermaid ```` `gantt` block with one bar
/// per key, or one line saying why there is no picture. `adfs` adds AD FS's expected
/// promotion of each newer key (also recognised by AD FS's certificate subjects).
pub fn timeline(issuer: &str, keys: &[TimelineKey], adfs: bool, now: OffsetDateTime) -> String {
    let adfs = adfs
        || keys
            .iter()
            .any(|k| k.subject.to_ascii_lowercase().contains("adfs signing"));
    // Oldest first, as the keys follow each other.
    let mut dated: Vec<(&TimelineKey, OffsetDateTime, OffsetDateTime)> = keys
        .iter()
        .filter_map(|k| Some((k, parse(&k.not_before)?, parse(&k.not_after)?)))
        .collect();
    dated.sort_by(|a, b| (a.1, &a.0.sha1).cmp(&(b.1, &b.0.sha1)));
    let has_marks = dated.iter().any(|(k, ..)| {
        [&k.grace_end, &k.removal]
            .iter()
            .any(|d| d.as_deref().and_then(parse).is_some())
    });
    if dated.is_empty() || (dated.len() == 1 && !has_marks) {
        return format!(
            "_No timeline for {}: {} to draw._\n",
            crate::render::sanitize::md_code(issuer),
            if dated.is_empty() {
                "no key with validity dates"
            } else {
                "a single key and no date of a rollover"
            }
        );
    }
    let oldest = dated.iter().map(|(_, nb, _)| *nb).min();
    let mut out = String::from("```mermaid\ngantt\n");
    out.push_str(&format!("    title Keys of {}\n", mermaid_text(issuer, 80)));
    out.push_str("    dateFormat YYYY-MM-DD\n    axisFormat %Y-%m-%d\n    todayMarker off\n");
    for (i, (key, not_before, not_after)) in dated.iter().enumerate() {
        let short: String = key.sha1.chars().take(8).collect();
        let short = mermaid_text(&short, 8);
        out.push_str(&format!("    section {short}\n"));
        let tag = match key.action.as_str() {
            "remove" => "crit, ",
            "add" => "active, ",
            _ if key.expired => "done, ",
            _ => "",
        };
        out.push_str(&format!(
            "    {short} {} ({}) :{tag}k{i}, {}, {}\n",
            mermaid_text(&key.subject, 60),
            mermaid_text(&key.action, 12),
            day(*not_before),
            day(*not_after)
        ));
        let mut mark = |label: &str, at: Option<OffsetDateTime>, id: &str| {
            if let Some(at) = at {
                out.push_str(&format!(
                    "    {label} {short} :milestone, {id}{i}, {}, 0d\n",
                    day(at)
                ));
            }
        };
        mark("first seen", key.first_seen.as_deref().and_then(parse), "f");
        if adfs && key.published && Some(*not_before) != oldest {
            mark("AD FS promotes", Some(*not_before + ADFS_PROMOTION), "p");
        }
        mark("grace ends", key.grace_end.as_deref().and_then(parse), "g");
        mark("removal", key.removal.as_deref().and_then(parse), "r");
    }
    out.push_str(&format!(
        "    section now\n    today :milestone, now, {}, 0d\n```\n",
        day(now)
    ));
    out
}

/// The timelines of a plan's issuers (those that loaded), each under a heading.
pub fn plan_timelines(issuers: &[IssuerReport], now: OffsetDateTime) -> String {
    issuers
        .iter()
        .filter(|i| i.error.is_none())
        .map(|i| issuer_timeline(i, now))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse(text: &str) -> Option<OffsetDateTime> {
    crate::model::clock::parse_rfc3339(text).ok()
}

/// The day of `t` (UTC) as the block's `dateFormat` reads it.
fn day(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Text from outside (issuer names, certificate subjects) as a Mermaid `gantt` label or
/// title: on one line, at most `max` characters, and every character outside a small safe
/// set written as Mermaid's numeric entity `#N;`. So `:` cannot end the label, `#` cannot
/// start a comment, `;` cannot end the statement, `%%` cannot start a directive, quotes and
/// `<`/`>`/`&` cannot reach the SVG as markup, and a backtick cannot close the Markdown fence.
pub fn mermaid_text(text: &str, max: usize) -> String {
    let line = crate::render::sanitize::one_line(text);
    let mut out = String::new();
    for (n, c) in line.trim().chars().enumerate() {
        if n == max {
            out.push_str("#8230;");
            break;
        }
        if c.is_ascii_alphanumeric() || " .,_=/()+-".contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("#{};", c as u32));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_no_character_mermaid_or_markdown_would_read() {
        let text = mermaid_text("CN=ADFS: fs#1; \"x\" <b>&`%%{init}`", 200);
        // With every entity `#N;` taken out, nothing Mermaid or Markdown reads is left.
        let mut raw = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find('#') {
            raw.push_str(&rest[..start]);
            let end = rest[start..].find(';').expect("an entity ends with ;") + start;
            assert!(rest[start + 1..end].chars().all(|c| c.is_ascii_digit()));
            rest = &rest[end + 1..];
        }
        raw.push_str(rest);
        for c in [':', ';', '#', '"', '<', '>', '&', '`', '%', '{', '}', '\n'] {
            assert!(!raw.contains(c), "{c:?} left in {text:?}");
        }
        // Every `#` starts one of our entities.
        assert_eq!(
            text,
            "CN=ADFS#58; fs#35;1#59; #34;x#34; #60;b#62;#38;#96;#37;#37;#123;init#125;#96;"
        );
    }

    #[test]
    fn labels_are_one_line_and_cut() {
        assert_eq!(mermaid_text("a\nb\r\nc", 80), "a b  c");
        assert_eq!(mermaid_text("abcdef", 3), "abc#8230;");
        assert_eq!(mermaid_text("Zürich", 80), "Z#252;rich");
    }

    fn key(sha1: &str, from: &str, to: &str) -> TimelineKey {
        TimelineKey {
            sha1: sha1.into(),
            subject: "CN=ADFS Signing - fs.example.com".into(),
            not_before: from.into(),
            not_after: to.into(),
            published: true,
            action: "keep".into(),
            ..TimelineKey::default()
        }
    }

    #[test]
    fn one_bar_per_key_marks_and_today_deterministically() {
        let now = parse("2026-12-07T12:00:00Z").unwrap();
        let mut new = key(
            "AAAA1111BBBB",
            "2026-12-01T00:00:00Z",
            "2027-12-01T00:00:00Z",
        );
        new.action = "add".into();
        new.first_seen = Some("2026-12-02T08:00:00Z".into());
        let old = key(
            "CCCC2222DDDD",
            "2025-12-21T00:00:00Z",
            "2026-12-21T00:00:00Z",
        );
        let a = timeline("adfs: \"main\"", &[old.clone(), new.clone()], false, now);
        assert_eq!(a, timeline("adfs: \"main\"", &[old, new], false, now));
        assert!(a.starts_with("```mermaid\ngantt\n"), "{a}");
        assert!(a.contains("title Keys of adfs#58; #34;main#34;\n"), "{a}");
        assert_eq!(a.matches(":active, k").count() + a.matches(":k").count(), 2);
        assert!(
            a.contains("AD FS promotes AAAA1111 :milestone, p1, 2026-12-06, 0d"),
            "{a}"
        );
        assert!(
            a.contains("first seen AAAA1111 :milestone, f1, 2026-12-02, 0d"),
            "{a}"
        );
        assert!(a.contains("today :milestone, now, 2026-12-07, 0d"), "{a}");
        assert!(a.contains("todayMarker off"));
    }

    #[test]
    fn a_single_key_without_rollover_dates_is_no_picture() {
        let now = parse("2026-12-07T12:00:00Z").unwrap();
        let one = key("AAAA", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
        let text = timeline("entra", &[one], false, now);
        assert!(!text.contains("```mermaid"), "{text}");
        assert!(text.contains("No timeline for `entra`"), "{text}");
        let undated = key("AAAA", "", "");
        assert!(timeline("x", &[undated], false, now).contains("no key with validity dates"));
    }
}
