//! SHA-1 certificate thumbprints: the one parser for CLI input, config values and JWKS `x5t`.
//!
//! WIF compares thumbprints after removing ASCII spaces only, case-insensitively. Anything
//! else a person pastes (U+200E from the Windows certificate dialog, NBSP, tabs) silently
//! never matches, so [`check`] names every such character instead of hiding it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::Serialize;

/// 20 bytes of SHA-1 over a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thumbprint([u8; 20]);

impl Thumbprint {
    pub const HEX_LEN: usize = 40;

    pub fn from_bytes(bytes: [u8; 20]) -> Self {
        Thumbprint(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    pub fn to_upper_hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    pub fn to_lower_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The JWKS `x5t` form: unpadded base64url of the 20 bytes.
    pub fn to_x5t(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Decodes a JWKS `x5t` value (base64url, padding optional).
    pub fn from_x5t(x5t: &str) -> Option<Self> {
        let trimmed = x5t.trim_end_matches('=');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .ok()?;
        let array: [u8; 20] = bytes.try_into().ok()?;
        Some(Thumbprint(array))
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_upper_hex())
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({})", self.to_upper_hex())
    }
}

impl Serialize for Thumbprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_upper_hex())
    }
}

/// Strict parse: exactly 40 hex digits, either case, nothing else.
impl FromStr for Thumbprint {
    type Err = CheckError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let report = check(text);
        if !report.removed.is_empty() {
            return Err(CheckError::Dirty(report.removed));
        }
        report.result
    }
}

/// One character of the input, located by its 1-based character position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CharNote {
    #[serde(rename = "code_point")]
    pub code_point: String,
    pub name: String,
    pub position: usize,
    #[serde(skip)]
    pub ch: char,
}

impl CharNote {
    fn new(ch: char, position: usize) -> Self {
        CharNote {
            code_point: format!("U+{:04X}", ch as u32),
            name: char_name(ch),
            position,
            ch,
        }
    }

    /// WIF itself removes ASCII spaces, so those are style, not breakage.
    pub fn is_ascii_space(&self) -> bool {
        self.ch == ' '
    }
}

impl fmt::Display for CharNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} at position {}",
            self.code_point, self.name, self.position
        )
    }
}

fn char_name(ch: char) -> String {
    match unicode_names2::name(ch) {
        Some(name) => name.to_string(),
        // Control characters have no Unicode name, only aliases.
        None => match ch {
            '\t' => "CHARACTER TABULATION".into(),
            '\n' => "LINE FEED".into(),
            '\r' => "CARRIAGE RETURN".into(),
            '\u{0B}' => "LINE TABULATION".into(),
            '\u{0C}' => "FORM FEED".into(),
            _ => "UNNAMED CHARACTER".into(),
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("{}", describe_stray(.0))]
    Stray(Vec<CharNote>),
    #[error("expected 40 hex digits, found {0}")]
    BadLength(usize),
    #[error("{}", describe_removed(.0))]
    Dirty(Vec<CharNote>),
    #[error("empty thumbprint")]
    Empty,
    /// Read as an `x5t` (explicit `--x5t`) but not 27 base64url characters of 20 bytes.
    #[error("expected a 27-character base64url x5t (20 bytes), found {0} characters")]
    NotX5t(usize),
}

fn describe_stray(notes: &[CharNote]) -> String {
    let parts: Vec<String> = notes
        .iter()
        .map(|n| {
            let hint = if n.ch == '?' {
                " (an ANSI save turns an invisible U+200E into '?': retype or re-copy the thumbprint)"
            } else {
                ""
            };
            format!("stray {n}{hint}")
        })
        .collect();
    parts.join("; ")
}

fn describe_removed(notes: &[CharNote]) -> String {
    let parts: Vec<String> = notes.iter().map(|n| format!("contains {n}")).collect();
    parts.join("; ")
}

/// Which notation the input was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Notation {
    Hex,
    X5t,
}

impl Notation {
    /// How the CLI names the notation it read, so that a person sees when a value was taken
    /// as an `x5t` rather than hex.
    pub fn describe(self) -> &'static str {
        match self {
            Notation::Hex => "hex (40 hex digits of SHA-1)",
            Notation::X5t => "x5t (base64url of SHA-1, as in a JWKS)",
        }
    }
}

impl fmt::Display for Notation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Notation::Hex => "hex",
            Notation::X5t => "x5t",
        })
    }
}

/// What [`check`] found in a pasted thumbprint.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Characters dropped: whitespace of any kind, invisible/format characters, `:`/`-`.
    pub removed: Vec<CharNote>,
    pub lowercase: bool,
    pub notation: Notation,
    pub result: Result<Thumbprint, CheckError>,
}

impl CheckReport {
    pub fn thumbprint(&self) -> Option<Thumbprint> {
        self.result.as_ref().ok().copied()
    }

    /// Characters WIF would not remove itself: the entry would silently never match.
    pub fn breaking_removals(&self) -> impl Iterator<Item = &CharNote> {
        self.removed.iter().filter(|n| !n.is_ascii_space())
    }
}

/// Characters people paste by accident that render as nothing.
pub fn is_invisible(ch: char) -> bool {
    matches!(ch,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}'
    ) || (ch.is_control() && !ch.is_whitespace())
}

/// Normalizes what a person pasted and says what it removed or could not accept.
///
/// An input whose visible characters are all hex digits (with `:`/`-` separators) is read as
/// hex, whatever its length: a truncated hex thumbprint is `bad-length`. 27 hex digits are
/// also valid base64url, so reading them as an `x5t` would turn a short paste into an
/// unrelated thumbprint. The `x5t` reading is tried only when a character rules hex out.
pub fn check(text: &str) -> CheckReport {
    let scanned = Scanned::new(text);
    if !scanned.could_be_hex()
        && let Some(report) = scanned.x5t_report()
    {
        return report;
    }
    scanned.into_hex_report()
}

/// Reads the input as a JWKS `x5t` only (the CLI's explicit `--x5t`): base64url, 27
/// characters, or 28 with its `=` padding, that decode to 20 bytes.
pub fn check_x5t(text: &str) -> CheckReport {
    let scanned = Scanned::new(text);
    let length = scanned.visible.chars().count();
    match scanned.x5t_report() {
        Some(report) => report,
        None => CheckReport {
            removed: scanned.invisible(),
            lowercase: false,
            notation: Notation::X5t,
            result: Err(if length == 0 {
                CheckError::Empty
            } else {
                CheckError::NotX5t(length)
            }),
        },
    }
}

/// One pass over the input: what was dropped, what is left.
struct Scanned {
    removed: Vec<CharNote>,
    stray: Vec<CharNote>,
    hex_digits: String,
    /// What is left after dropping only whitespace and invisibles, for the x5t reading.
    visible: String,
    lowercase: bool,
}

impl Scanned {
    fn new(text: &str) -> Self {
        let mut scanned = Scanned {
            removed: Vec::new(),
            stray: Vec::new(),
            hex_digits: String::with_capacity(40),
            visible: String::new(),
            lowercase: false,
        };
        for (index, ch) in text.chars().enumerate() {
            let position = index + 1;
            if ch.is_whitespace() || is_invisible(ch) {
                scanned.removed.push(CharNote::new(ch, position));
                continue;
            }
            scanned.visible.push(ch);
            if ch.is_ascii_hexdigit() {
                scanned.lowercase |= ch.is_ascii_lowercase();
                scanned.hex_digits.push(ch.to_ascii_uppercase());
            } else if ch == ':' || ch == '-' {
                scanned.removed.push(CharNote::new(ch, position));
            } else {
                scanned.stray.push(CharNote::new(ch, position));
            }
        }
        scanned
    }

    /// Nothing but hex digits and separators: hex, of whatever length.
    fn could_be_hex(&self) -> bool {
        self.stray.is_empty()
    }

    /// Whitespace and invisibles only (the separators belong to an x5t's alphabet).
    fn invisible(&self) -> Vec<CharNote> {
        self.removed
            .iter()
            .filter(|n| n.ch != '-' && n.ch != ':')
            .cloned()
            .collect()
    }

    fn into_hex_report(self) -> CheckReport {
        let result = if !self.stray.is_empty() {
            Err(CheckError::Stray(self.stray))
        } else if self.hex_digits.is_empty() {
            Err(CheckError::Empty)
        } else if self.hex_digits.len() != Thumbprint::HEX_LEN {
            Err(CheckError::BadLength(self.hex_digits.len()))
        } else {
            let mut bytes = [0u8; 20];
            // Cannot fail: 40 ASCII hex digits.
            hex::decode_to_slice(&self.hex_digits, &mut bytes).expect("validated hex");
            Ok(Thumbprint(bytes))
        };
        CheckReport {
            removed: self.removed,
            lowercase: self.lowercase,
            notation: Notation::Hex,
            result,
        }
    }

    /// 27 base64url characters (28 with padding) that decode to 20 bytes.
    fn x5t_report(&self) -> Option<CheckReport> {
        if !(27..=28).contains(&self.visible.len()) {
            return None;
        }
        let thumbprint = Thumbprint::from_x5t(&self.visible)?;
        Some(CheckReport {
            removed: self.invisible(),
            lowercase: false,
            notation: Notation::X5t,
            result: Ok(thumbprint),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADFS: &str = "6B740DD01652EECE2737E05DAE36C5D18FCB74C3";

    #[test]
    fn left_to_right_mark_is_removed_and_named() {
        let report = check(&format!("\u{200E}{ADFS}"));
        assert_eq!(report.thumbprint().unwrap().to_string(), ADFS);
        assert_eq!(report.removed.len(), 1);
        assert_eq!(
            report.removed[0].to_string(),
            "U+200E LEFT-TO-RIGHT MARK at position 1"
        );
        assert_eq!(report.breaking_removals().count(), 1);
    }

    #[test]
    fn nbsp_and_spaced_lowercase_pairs() {
        let spaced = "6b 74 0d d0 16 52 ee ce 27 37 e0 5d ae 36 c5 d1 8f cb 74\u{00A0}c3";
        let report = check(spaced);
        assert_eq!(report.thumbprint().unwrap().to_string(), ADFS);
        assert!(report.lowercase);
        let nbsp: Vec<_> = report.breaking_removals().collect();
        assert_eq!(nbsp.len(), 1);
        assert_eq!(nbsp[0].code_point, "U+00A0");
        assert_eq!(nbsp[0].name, "NO-BREAK SPACE");
        assert_eq!(nbsp[0].position, 57);
        assert_eq!(report.removed.iter().filter(|n| n.ch == ' ').count(), 18);
    }

    #[test]
    fn question_mark_from_ansi_save_is_an_error() {
        let report = check(&format!("?{ADFS}"));
        let err = report.result.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("stray U+003F QUESTION MARK at position 1"),
            "{err}"
        );
    }

    #[test]
    fn wrong_length_is_an_error() {
        let report = check(&ADFS[..38]);
        assert_eq!(report.result.unwrap_err(), CheckError::BadLength(38));
    }

    #[test]
    fn colon_separators_are_dropped() {
        let with_colons: Vec<String> = ADFS
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into())
            .collect();
        let report = check(&with_colons.join(":"));
        assert_eq!(report.thumbprint().unwrap().to_string(), ADFS);
    }

    #[test]
    fn x5t_is_accepted() {
        let report = check("a3QN0BZS7s4nN-BdrjbF0Y_LdMM");
        assert_eq!(report.notation, Notation::X5t);
        assert_eq!(report.thumbprint().unwrap().to_string(), ADFS);
        assert!(report.removed.is_empty());
        assert_eq!(
            report.thumbprint().unwrap().to_x5t(),
            "a3QN0BZS7s4nN-BdrjbF0Y_LdMM"
        );
    }

    #[test]
    fn truncated_hex_is_bad_length_never_an_x5t() {
        // The first 27 hex digits of a thumbprint are also 27 valid base64url characters.
        let report = check("57C2EF60E1C50F6E039E8ACAACE");
        assert_eq!(report.notation, Notation::Hex);
        assert_eq!(report.result.unwrap_err(), CheckError::BadLength(27));
        // Every truncation of a real thumbprint, and its lowercase form, is refused as hex.
        for len in 1..Thumbprint::HEX_LEN {
            for text in [ADFS[..len].to_string(), ADFS[..len].to_lowercase()] {
                let report = check(&text);
                assert_eq!(report.notation, Notation::Hex, "{text}");
                assert_eq!(report.result, Err(CheckError::BadLength(len)), "{text}");
            }
        }
        // Dash separators keep it hex too: 26 digits and 12 dashes are 38 characters.
        let dashed: Vec<&str> = ADFS.as_bytes()[..26]
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let report = check(&dashed.join("-"));
        assert_eq!(report.result.unwrap_err(), CheckError::BadLength(26));
    }

    #[test]
    fn x5t_only_when_a_character_rules_hex_out() {
        // `-` and `_` and letters past F: base64url, never hex.
        let report = check("  a3QN0BZS7s4nN-BdrjbF0Y_LdMM\n");
        assert_eq!(report.notation, Notation::X5t);
        assert_eq!(report.thumbprint().unwrap().to_string(), ADFS);
        assert_eq!(report.removed.len(), 3, "{:?}", report.removed);
        // With its padding.
        let report = check("a3QN0BZS7s4nN-BdrjbF0Y_LdMM=");
        assert_eq!(report.thumbprint().unwrap().to_string(), ADFS);
        // Not 27 characters: the hex reading names the stray characters.
        let report = check("a3QN0BZS7s4nN-BdrjbF0Y_LdM");
        assert_eq!(report.notation, Notation::Hex);
        assert!(matches!(report.result, Err(CheckError::Stray(_))));
    }

    #[test]
    fn explicit_x5t_reads_even_an_all_hex_value() {
        let thumbprint = Thumbprint::from_x5t("57C2EF60E1C50F6E039E8ACAACE").unwrap();
        let report = check_x5t("57C2EF60E1C50F6E039E8ACAACE");
        assert_eq!(report.notation, Notation::X5t);
        assert_eq!(report.thumbprint(), Some(thumbprint));
        let report = check_x5t(ADFS);
        assert_eq!(report.result.unwrap_err(), CheckError::NotX5t(40));
        assert_eq!(check_x5t(" ").result.unwrap_err(), CheckError::Empty);
    }

    #[test]
    fn notation_is_named() {
        assert_eq!(Notation::Hex.to_string(), "hex");
        assert_eq!(Notation::X5t.to_string(), "x5t");
        assert!(Notation::X5t.describe().contains("base64url"));
    }

    #[test]
    fn strict_parse_refuses_invisible_characters() {
        assert!(ADFS.parse::<Thumbprint>().is_ok());
        assert!(format!("\u{FEFF}{ADFS}").parse::<Thumbprint>().is_err());
    }
}
