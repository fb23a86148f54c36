//! The one place keyroll reads the time, so `--now` can replace it for tests and what-if runs.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Fixed(OffsetDateTime),
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        match self {
            Clock::System => OffsetDateTime::now_utc(),
            Clock::Fixed(at) => *at,
        }
    }
}

/// Parses `--now`: RFC 3339, e.g. `2026-11-23T12:00:00Z`.
pub fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("'{text}' is not an RFC 3339 time (e.g. 2026-11-23T12:00:00Z): {e}"))
}
