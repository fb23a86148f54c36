//! Replays every input the fuzzers found (tests/regressions/<target>/) through the same
//! harness on stable, so CI keeps them fixed without nightly. Also runs each harness over
//! the real fixtures, which seed the fuzz corpora.

use std::path::Path;

type Harness = fn(&[u8]);

const TARGETS: &[(&str, Harness)] = &[
    ("thumbprint_check", keyroll::harness::thumbprint_check),
    ("metadata_parse", keyroll::harness::metadata_parse),
    ("signature_verify", keyroll::harness::signature_verify),
    ("config_scan", keyroll::harness::config_scan),
    ("edit_engine", keyroll::harness::edit_engine),
];

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_none_or(|n| n != ".keep") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_saved_fuzz_input_passes_its_harness() {
    for (target, harness) in TARGETS {
        for path in files_in(&Path::new("tests/regressions").join(target)) {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| harness(&data));
            assert!(outcome.is_ok(), "{target}: {} fails again", path.display());
        }
    }
}

#[test]
fn every_fixture_passes_every_harness() {
    let fixtures: Vec<_> = ["tests/data/metadata", "tests/data/configs", "examples/demo"]
        .iter()
        .flat_map(|d| files_in(Path::new(d)))
        .collect();
    assert!(fixtures.len() > 40);
    for path in &fixtures {
        let data = std::fs::read(path).unwrap();
        for (target, harness) in TARGETS {
            let outcome = std::panic::catch_unwind(|| harness(&data));
            assert!(outcome.is_ok(), "{target}: {}", path.display());
        }
    }
}
