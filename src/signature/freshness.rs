//! The root's `validUntil` and `cacheDuration`: read and reported here; enforcing them is
//! the caller's (crate::decide::trust).

use roxmltree::Node;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::cert::rfc3339;

/// The root's `validUntil` and `cacheDuration`, as published.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Freshness {
    #[serde(serialize_with = "serialize_time")]
    pub valid_until: Option<OffsetDateTime>,
    /// An ISO 8601 / `xs:duration` such as `PT1H` or `P7D`, as written.
    pub cache_duration: Option<String>,
    /// Values present but not understood (`validUntil="tomorrow"`); a caller that enforces
    /// freshness should refuse a document with any.
    pub problems: Vec<String>,
}

fn serialize_time<S: Serializer>(
    value: &Option<OffsetDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(t) => serializer.serialize_some(&rfc3339(*t)),
        None => serializer.serialize_none(),
    }
}

pub(super) fn freshness(root: Node<'_, '_>) -> Freshness {
    let mut freshness = Freshness::default();
    if let Some(value) = root.attribute("validUntil") {
        match parse_date_time(value) {
            Some(t) => freshness.valid_until = Some(t),
            None => freshness
                .problems
                .push(format!("validUntil=\"{value}\" is not an xs:dateTime")),
        }
    }
    if let Some(value) = root.attribute("cacheDuration") {
        if is_duration(value) {
            freshness.cache_duration = Some(value.to_string());
        } else {
            freshness
                .problems
                .push(format!("cacheDuration=\"{value}\" is not an xs:duration"));
        }
    }
    freshness
}

/// `xs:dateTime`. SAML requires UTC; a value without a zone is read as UTC.
fn parse_date_time(value: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let value = value.trim();
    OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{value}Z"), &Rfc3339))
        .ok()
}

/// `xs:duration`: `-?P(nY)?(nM)?(nD)?(T(nH)?(nM)?(n(.n)?S)?)?` with at least one part, and
/// at least one after a `T`.
fn is_duration(value: &str) -> bool {
    let value = value.trim();
    let Some(rest) = value.strip_prefix('-').unwrap_or(value).strip_prefix('P') else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    // Each part: digits then its designator, designators in this order, each at most once.
    fn parts(s: &str, designators: &[char], fraction_on: Option<char>) -> Option<usize> {
        let mut count = 0;
        let mut allowed = designators;
        let mut rest = s;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
            let (number, tail) = rest.split_at(end);
            let designator = tail.chars().next()?;
            let position = allowed.iter().position(|&d| d == designator)?;
            let valid_number = match number.split_once('.') {
                None => !number.is_empty(),
                Some((whole, fraction)) => {
                    Some(designator) == fraction_on && !whole.is_empty() && !fraction.is_empty()
                }
            };
            if !valid_number {
                return None;
            }
            allowed = &allowed[position + 1..];
            rest = &tail[designator.len_utf8()..];
            count += 1;
        }
        Some(count)
    }
    let Some(date_parts) = parts(date, &['Y', 'M', 'D'], None) else {
        return false;
    };
    match time {
        None => date_parts > 0,
        Some(time) => matches!(parts(time, &['H', 'M', 'S'], Some('S')), Some(n) if n > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for ok in [
            "PT1H",
            "P7D",
            "P1Y2M3DT4H5M6.5S",
            "-P1D",
            "PT1393462294S",
            "P0D",
        ] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in [
            "", "P", "PT", "1H", "P1H", "PT1D", "P1.5D", "P1DT", "PT1M1H", "P1Y1Y", "tomorrow",
        ] {
            assert!(!is_duration(bad), "{bad}");
        }
    }

    #[test]
    fn date_times() {
        assert_eq!(
            parse_date_time("2014-04-17T18:02:33.910Z")
                .map(rfc3339)
                .as_deref(),
            Some("2014-04-17T18:02:33.91Z")
        );
        assert_eq!(
            parse_date_time("2014-02-22T00:39:43")
                .map(rfc3339)
                .as_deref(),
            Some("2014-02-22T00:39:43Z")
        );
        assert_eq!(
            parse_date_time("2014-02-22T01:39:43+01:00")
                .map(rfc3339)
                .as_deref(),
            Some("2014-02-22T00:39:43Z")
        );
        assert_eq!(parse_date_time("2014-02-22"), None);
    }
}
