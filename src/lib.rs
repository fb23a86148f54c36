//! keyroll keeps the certificate thumbprints trusted by .NET/WIF applications in step with
//! their identity provider's signing keys.
//!
//! Data takes one path, in three steps (docs/ARCHITECTURE.md): [`load`] reads the settings,
//! keyroll.lock, the issuers' metadata and the target files; [`decide`] turns them, purely,
//! into a [`plan::Plan`]; [`act`] writes it (`apply`) or [`pr`] publishes it, and [`report`]
//! renders it.

pub mod act;
pub mod cert;
pub mod clock;
pub mod dashboard;
pub mod decide;
pub mod discover;
pub mod fetch;
pub mod git;
pub mod github;
pub mod harness;
pub mod init;
pub mod load;
pub mod lock;
pub mod metadata;
pub mod onboard;
pub mod patch;
pub mod paths;
pub mod plan;
pub mod pr;
pub mod report;
pub mod rules;
pub mod sanitize;
pub mod saved;
pub mod scan;
pub mod secret;
pub mod settings;
pub mod signature;
pub mod snapshot;
pub mod thumbprint;
pub mod write;
