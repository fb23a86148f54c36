//! `validUntil` and `cacheDuration`: read and reported here (the root's, and the tightest
//! over a key's ancestors); enforcing them is the caller's (crate::decide::trust).

use roxmltree::Node;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::model::cert::rfc3339;

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

/// How long what a key's entity says may be used: the earliest `validUntil` and the shortest
/// `cacheDuration` over the `EntityDescriptor` / `EntitiesDescriptor` elements that hold it
/// (SAML metadata: an ancestor's bound applies to everything inside it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    pub valid_until: Option<OffsetDateTime>,
    pub cache_duration: Option<CacheDuration>,
}

/// A `cacheDuration` as written and as a length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDuration {
    pub text: String,
    pub length: time::Duration,
}

impl Bounds {
    pub fn is_empty(&self) -> bool {
        self.valid_until.is_none() && self.cache_duration.is_none()
    }

    /// This element's own bounds; `Err` names a value that is not understood (never read
    /// around: a document whose freshness cannot be told is refused).
    pub fn of_element(node: Node<'_, '_>) -> Result<Bounds, String> {
        let mut bounds = Bounds::default();
        if let Some(value) = node.attribute("validUntil") {
            bounds.valid_until = Some(
                parse_date_time(value)
                    .ok_or_else(|| format!("validUntil=\"{value}\" is not an xs:dateTime"))?,
            );
        }
        if let Some(value) = node.attribute("cacheDuration") {
            let length = parse_duration(value)
                .ok_or_else(|| format!("cacheDuration=\"{value}\" is not an xs:duration"))?;
            if length.is_negative() {
                return Err(format!("cacheDuration=\"{value}\" is negative"));
            }
            bounds.cache_duration = Some(CacheDuration {
                text: value.trim().to_string(),
                length,
            });
        }
        Ok(bounds)
    }

    /// The tightest of both: the earlier validUntil, the shorter cacheDuration.
    pub fn tighten(&mut self, other: &Bounds) {
        if let Some(until) = other.valid_until
            && self.valid_until.is_none_or(|mine| until < mine)
        {
            self.valid_until = Some(until);
        }
        if let Some(cache) = &other.cache_duration
            && self
                .cache_duration
                .as_ref()
                .is_none_or(|mine| cache.length < mine.length)
        {
            self.cache_duration = Some(cache.clone());
        }
    }
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

pub fn freshness(root: Node<'_, '_>) -> Freshness {
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
    parse_duration(value).is_some()
}

/// An `xs:duration` as a length. Years and months have no fixed length: a year is read as
/// 365 days and a month as 30, the shorter reading (a cache bound is not stretched).
pub fn parse_duration(value: &str) -> Option<time::Duration> {
    let value = value.trim();
    let (negative, unsigned) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let rest = unsigned.strip_prefix('P')?;
    let (date, time_part) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    // Each part: digits then its designator, designators in this order, each at most once;
    // a fraction only on seconds. Returns (count, seconds).
    fn parts(
        s: &str,
        designators: &[(char, f64)],
        fraction_on: Option<char>,
    ) -> Option<(usize, f64)> {
        let mut count = 0;
        let mut total = 0.0;
        let mut allowed = designators;
        let mut rest = s;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
            let (number, tail) = rest.split_at(end);
            let designator = tail.chars().next()?;
            let position = allowed.iter().position(|&(d, _)| d == designator)?;
            let valid_number = match number.split_once('.') {
                None => !number.is_empty(),
                Some((whole, fraction)) => {
                    Some(designator) == fraction_on && !whole.is_empty() && !fraction.is_empty()
                }
            };
            if !valid_number {
                return None;
            }
            total += number.parse::<f64>().ok()? * allowed[position].1;
            allowed = &allowed[position + 1..];
            rest = &tail[designator.len_utf8()..];
            count += 1;
        }
        Some((count, total))
    }
    const DAY: f64 = 86_400.0;
    let (date_parts, date_seconds) = parts(
        date,
        &[('Y', 365.0 * DAY), ('M', 30.0 * DAY), ('D', DAY)],
        None,
    )?;
    let seconds = match time_part {
        None if date_parts > 0 => date_seconds,
        None => return None,
        Some(t) => match parts(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)], Some('S'))? {
            (0, _) => return None,
            (_, s) => date_seconds + s,
        },
    };
    // Past what a time::Duration holds (hundreds of billions of years): the longest there is.
    let length = if seconds.is_finite() && seconds < i64::MAX as f64 / 2.0 {
        time::Duration::seconds_f64(seconds)
    } else {
        time::Duration::MAX
    };
    Some(if negative { -length } else { length })
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
    fn duration_lengths() {
        let d = |v| parse_duration(v).map(|d| d.whole_seconds());
        assert_eq!(d("PT1H"), Some(3600));
        assert_eq!(d("P7D"), Some(7 * 86_400));
        assert_eq!(d("P1Y2M3DT4H5M6.5S").map(|s| s > 400 * 86_400), Some(true));
        assert_eq!(d("-P1D"), Some(-86_400));
        assert_eq!(d("PT0.5S"), Some(0));
        assert_eq!(
            d("P99999999999999999999Y"),
            Some(time::Duration::MAX.whole_seconds())
        );
        assert_eq!(d("P1H"), None);
    }

    #[test]
    fn bounds_tighten_to_the_earliest_and_shortest() {
        let doc = roxmltree::Document::parse(
            r#"<a validUntil="2030-01-01T00:00:00Z" cacheDuration="P1D"><b validUntil="2029-01-01T00:00:00Z" cacheDuration="PT1H"/><c cacheDuration="-P1D"/><d validUntil="soon"/></a>"#,
        )
        .unwrap();
        let root = doc.root_element();
        let mut outer = Bounds::of_element(root).unwrap();
        let inner = Bounds::of_element(root.first_element_child().unwrap()).unwrap();
        outer.tighten(&inner);
        assert_eq!(
            outer.valid_until.map(rfc3339).as_deref(),
            Some("2029-01-01T00:00:00Z")
        );
        assert_eq!(outer.cache_duration.unwrap().text, "PT1H");
        let mut kids = root.children().filter(|n| n.is_element()).skip(1);
        assert!(
            Bounds::of_element(kids.next().unwrap())
                .unwrap_err()
                .contains("negative")
        );
        assert!(
            Bounds::of_element(kids.next().unwrap())
                .unwrap_err()
                .contains("soon")
        );
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
