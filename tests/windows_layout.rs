//! A repository laid out as Windows developers lay them out — folders whose case differs
//! from the references, `\` in `configSource`, CRLF, a UTF-8 BOM, a UTF-16 config — planned
//! and applied on Linux, with exactly the intended bytes changed and nothing else.

mod kit;

use std::path::Path;
use std::process::Command;

use kit::Key;
use time::macros::datetime;

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

fn utf16le(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    out
}

/// `after` is `before` with one run of text put in at one place, and nothing else changed.
fn one_insertion(before: &str, after: &str) -> String {
    let start = before
        .bytes()
        .zip(after.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let tail = before[start..]
        .bytes()
        .rev()
        .zip(after.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    assert_eq!(
        before.len() - start,
        tail,
        "more than one insertion:\n{after}"
    );
    after[start..after.len() - tail].to_string()
}

#[test]
fn a_windows_repository_is_planned_and_applied_on_linux_byte_for_byte() {
    let valid = |cn| {
        Key::new(
            cn,
            datetime!(2026-01-01 0:00 UTC),
            datetime!(2027-06-01 0:00 UTC),
        )
    };
    let (old, new) = (valid("old"), valid("new"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |path: &str, bytes: &[u8]| {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    };
    write(
        "metadata/idp.xml",
        kit::metadata("urn:idp", &[&old, &new]).as_bytes(),
    );
    // The reference says Configuration\IdentityModel.config; the folder is configuration/
    // and the file identitymodel.config, as IIS on Windows would not notice.
    let web = format!(
        "\u{feff}{}",
        crlf(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel\" />\n  </configSections>\n  <system.identityModel configSource=\"Configuration\\IdentityModel.config\" />\n</configuration>\n"
        )
    );
    write("Src/Contoso.Web/Web.config", web.as_bytes());
    let fragment = format!(
        "\u{feff}{}",
        crlf(&format!(
            "<system.identityModel>\n\t<identityConfiguration>\n\t\t<issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\">\n\t\t\t<trustedIssuers>\n\t\t\t\t<add thumbprint=\"{}\" name=\"idp\" />\n\t\t\t</trustedIssuers>\n\t\t</issuerNameRegistry>\n\t</identityConfiguration>\n</system.identityModel>\n",
            old.hex()
        ))
    );
    write(
        "Src/Contoso.Web/configuration/identitymodel.config",
        fragment.as_bytes(),
    );
    // Visual Studio saved this one as UTF-16.
    let api = crlf(&kit::wif45(&[kit::add(&old, "idp")]));
    write("Src/Contoso.Api/WEB.CONFIG", &utf16le(&api));
    write(
        "keyroll.toml",
        b"[[issuer]]\nname = \"idp\"\nmetadata = [\"metadata/idp.xml\"]\n\n[[target]]\nfiles = [\"src/**/web.config\"]\nissuers = [\"idp\"]\n",
    );

    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(args)
            .args(["--now", "2026-06-01T00:00:00Z"])
            .current_dir(root)
            .output()
            .unwrap()
    };
    let plan = run(&["plan", "--detailed-exitcode"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{text}");
    assert!(text.contains("2 files to change"), "{text}");
    let apply = run(&["apply"]);
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );

    // The parent Web.config is untouched; the fragment got one CRLF line, tab-indented.
    assert_eq!(
        std::fs::read(root.join("Src/Contoso.Web/Web.config")).unwrap(),
        web.as_bytes()
    );
    let after =
        std::fs::read_to_string(root.join("Src/Contoso.Web/configuration/identitymodel.config"))
            .unwrap();
    assert!(after.starts_with('\u{feff}'), "BOM kept");
    let old_line = format!("<add thumbprint=\"{}\" name=\"idp\" />", old.hex());
    let new_line = format!("<add thumbprint=\"{}\" name=\"idp\" />", new.hex());
    one_insertion(&fragment, &after);
    assert_eq!(
        after,
        fragment.replace(&old_line, &format!("{old_line}\r\n\t\t\t\t{new_line}"))
    );

    // The UTF-16 file is still UTF-16 with its BOM, one line more.
    let stored = std::fs::read(root.join("Src/Contoso.Api/WEB.CONFIG")).unwrap();
    assert_eq!(&stored[..2], &[0xFF, 0xFE]);
    let units: Vec<u16> = stored[2..]
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    let decoded = String::from_utf16(&units).unwrap();
    one_insertion(&api, &decoded);
    assert_eq!(
        decoded,
        api.replace(&old_line, &format!("{old_line}\r\n          {new_line}"))
    );

    // Nothing else in the tree changed, and the next plan is empty.
    assert!(!Path::new(&root.join("Src/Contoso.Web/Configuration")).exists());
    let again = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}
