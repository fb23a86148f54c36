//! keyroll keeps the certificate thumbprints trusted by .NET/WIF applications in step with
//! their identity provider's signing keys.
//!
//! Data takes one path: source → keys → plan → patch → report → PR. Each step is a module.

pub mod cert;
pub mod clock;
pub mod fetch;
pub mod git;
pub mod github;
pub mod harness;
pub mod init;
pub mod lock;
pub mod metadata;
pub mod patch;
pub mod plan;
pub mod pr;
pub mod report;
pub mod rules;
pub mod sanitize;
pub mod scan;
pub mod secret;
pub mod settings;
pub mod thumbprint;
