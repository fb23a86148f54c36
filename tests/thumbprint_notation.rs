//! `keyroll thumbprint --check` says which notation it read, and a truncated hex thumbprint
//! is refused rather than read as a JWKS x5t (issue 14).

use std::process::{Command, Output};

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["thumbprint", "--check"])
        .args(args)
        .output()
        .expect("run keyroll")
}

#[test]
fn twenty_seven_hex_digits_are_bad_length_not_an_x5t() {
    // The first 27 of the 40 hex digits of a real thumbprint.
    let out = check(&["57C2EF60E1C50F6E039E8ACAACE"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read as hex"), "{err}");
    assert!(err.contains("expected 40 hex digits, found 27"), "{err}");

    let out = check(&["--format", "json", "57C2EF60E1C50F6E039E8ACAACE"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["notation"], "hex");
    assert_eq!(json["thumbprint"], serde_json::Value::Null);
}

#[test]
fn text_output_names_the_notation_read() {
    let out = check(&["a3QN0BZS7s4nN-BdrjbF0Y_LdMM"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "6B740DD01652EECE2737E05DAE36C5D18FCB74C3\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read as x5t (base64url of SHA-1"), "{err}");

    let out = check(&["6b740dd01652eece2737e05dae36c5d18fcb74c3"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read as hex (40 hex digits"), "{err}");
}
