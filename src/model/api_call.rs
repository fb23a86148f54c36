//! One API call as made, or (in a dry run) as it would have been: what `pr`, `discover` and
//! `dashboard` report about their talk with GitHub.

use serde::Serialize;

/// One API call, as made or (in a dry run) as it would have been made.
#[derive(Debug, Clone, Serialize)]
pub struct ApiCall {
    pub method: String,
    pub path: String,
    /// False when a dry run (or a missing token) kept it from being sent.
    pub sent: bool,
    pub status: Option<u16>,
}
