pub mod cert;
pub mod clock;
pub mod lock;
pub mod paths;
pub mod rules;
pub mod secret;
pub mod settings;
pub mod thumbprint;
