//! What a scan finds: a finding's severity and its code, the stable ids reports, SARIF
//! and decisions share.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a finding is about. The kebab-case name is the stable id in JSON, SARIF and
/// annotations; decisions match on the variant, never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    Dirty,
    BadLength,
    Duplicate,
    Lowercase,
    Spaced,
    Placeholder,
    Expired,
    Expiring,
    Withdrawn,
    Transform,
    Malformed,
    UnsupportedEncoding,
    ConfigSourceMissing,
    ConfigSourceOutside,
    ConfigSourceAmbiguous,
    /// A `configSource` .NET refuses (`/`, white space, rooted, above the config's folder).
    ConfigSourceInvalid,
    /// A configuration error WIF stops the app with (its id, e.g. ID7010, in the message).
    LoadError,
    /// `system.identityModel*` used but not declared in `<configSections>`.
    UndeclaredSection,
    /// A config transform that changes what WIF trusts in a way keyroll does not interpret.
    UninterpretedTransform,
    /// A symbolic link to outside the folder scanned, or to nothing: not followed.
    UnfollowedLink,
    /// An issuer name registry whose trusted thumbprints live in a database table.
    DatabaseRegistry,
}

impl Code {
    pub const ALL: [Code; 21] = [
        Code::Dirty,
        Code::BadLength,
        Code::Duplicate,
        Code::Lowercase,
        Code::Spaced,
        Code::Placeholder,
        Code::Expired,
        Code::Expiring,
        Code::Withdrawn,
        Code::Transform,
        Code::Malformed,
        Code::UnsupportedEncoding,
        Code::ConfigSourceMissing,
        Code::ConfigSourceOutside,
        Code::ConfigSourceAmbiguous,
        Code::ConfigSourceInvalid,
        Code::LoadError,
        Code::UndeclaredSection,
        Code::UninterpretedTransform,
        Code::UnfollowedLink,
        Code::DatabaseRegistry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Dirty => "dirty",
            Code::BadLength => "bad-length",
            Code::Duplicate => "duplicate",
            Code::Lowercase => "lowercase",
            Code::Spaced => "spaced",
            Code::Placeholder => "placeholder",
            Code::Expired => "expired",
            Code::Expiring => "expiring",
            Code::Withdrawn => "withdrawn",
            Code::Transform => "transform",
            Code::Malformed => "malformed",
            Code::UnsupportedEncoding => "unsupported-encoding",
            Code::ConfigSourceMissing => "config-source-missing",
            Code::ConfigSourceOutside => "config-source-outside",
            Code::ConfigSourceAmbiguous => "config-source-ambiguous",
            Code::ConfigSourceInvalid => "config-source-invalid",
            Code::LoadError => "load-error",
            Code::UndeclaredSection => "undeclared-section",
            Code::UninterpretedTransform => "uninterpreted-transform",
            Code::UnfollowedLink => "unfollowed-link",
            Code::DatabaseRegistry => "database-registry",
        }
    }

    /// One line for SARIF rule metadata and `--help`.
    pub fn description(self) -> &'static str {
        match self {
            Code::Dirty => {
                "Characters WIF does not remove (anything but U+0020): the entry never matches"
            }
            Code::BadLength => "Not a 40-hex-digit SHA-1 thumbprint",
            Code::Duplicate => {
                "Two entries equal after WIF's normalization: the configuration fails to load"
            }
            Code::Lowercase => "Lowercase hex (style only)",
            Code::Spaced => "Spaces between byte pairs (style only: WIF removes U+0020)",
            Code::Placeholder => "A deploy-time placeholder; never edited",
            Code::Expired => "The trusted certificate has expired",
            Code::Expiring => "The trusted certificate expires soon",
            Code::Withdrawn => "An entry withdrawn by a later <remove> or <clear/>",
            Code::Transform => "An entry inside a config transform file",
            Code::Malformed => "The file is not well-formed XML",
            Code::UnsupportedEncoding => "The file is not UTF-8",
            Code::ConfigSourceMissing => {
                "A configSource reference names a file that does not exist"
            }
            Code::ConfigSourceOutside => "A configSource reference leaves the repository",
            Code::ConfigSourceAmbiguous => {
                "A configSource reference matches several files that differ only in case"
            }
            Code::ConfigSourceInvalid => {
                "A configSource .NET refuses ('/', white space, rooted, above the config's folder): the app does not start"
            }
            Code::LoadError => "WIF refuses to load this configuration (its error id is named)",
            Code::UndeclaredSection => {
                "A WIF section is used but not declared in <configSections>: the app does not start"
            }
            Code::UninterpretedTransform => {
                "A config transform changes the trusted keys in a way keyroll does not interpret"
            }
            Code::UnfollowedLink => {
                "A symbolic link that leaves the folder scanned, or leads nowhere: not followed"
            }
            Code::DatabaseRegistry => {
                "The trusted thumbprints live in a database table: a [[database]] target keeps them in step"
            }
        }
    }

    /// The entry's value is not what WIF will compare with a certificate's thumbprint
    /// unless rewritten (dirty), or is only untidy (spaced).
    pub fn is_unclean(self) -> bool {
        matches!(self, Code::Dirty | Code::Spaced)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
