//! keyroll keeps the certificate thumbprints trusted by .NET/WIF applications in step with
//! their identity provider's signing keys.
//!
//! Data takes one path, in three steps (docs/ARCHITECTURE.md): [`load`] reads the settings,
//! keyroll.lock, the issuers' metadata and the target files; [`decide`] turns them, purely,
//! into a [`plan::Plan`]; [`act`] writes it (`apply`) or [`pr`] publishes it, and [`report`]
//! renders it.

pub mod act;
pub mod decide;
pub mod harness;
pub mod load;
pub mod model;
pub mod render;
