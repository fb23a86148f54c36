//! The README shows the pull request body and the job summary of the embedded example as
//! real output; this test keeps them real. `KEYROLL_BLESS=1 cargo test --test readme`
//! rewrites them after a deliberate change (review the diff).

mod common;

use std::path::Path;
use std::process::Command;

use common::assert_ok;

fn section(readme: &str, name: &str) -> (usize, usize) {
    let start_marker = format!("<!-- readme-example:{name} -->\n");
    let start = readme.find(&start_marker).expect("start marker") + start_marker.len();
    let end = start
        + readme[start..]
            .find("<!-- /readme-example -->")
            .expect("end marker");
    (start, end)
}

#[test]
fn readme_shows_the_real_pr_body_and_job_summary_of_the_embedded_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let summary_file = dir.path().join("summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "pr",
            "--dry-run",
            "--format",
            "json",
            "--config",
            "examples/demo/keyroll.toml",
        ])
        .args(["--now", "2026-11-23T12:00:00Z", "--write-summary"])
        .arg(&summary_file)
        .env_remove("GITHUB_TOKEN")
        .current_dir(root)
        .output()
        .unwrap();
    assert_ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let body = report["issuers"][0]["proposal"]["body"]
        .as_str()
        .unwrap()
        .to_string();
    let summary = std::fs::read_to_string(&summary_file).unwrap();

    let readme_path = root.join("README.md");
    let mut readme = std::fs::read_to_string(&readme_path).unwrap();
    for (name, actual) in [("pr-body", &body), ("job-summary", &summary)] {
        let (start, end) = section(&readme, name);
        if std::env::var_os("KEYROLL_BLESS").is_some() {
            readme.replace_range(start..end, actual);
        } else {
            assert_eq!(
                &readme[start..end],
                actual.as_str(),
                "README's {name} is not what keyroll prints now (KEYROLL_BLESS=1 to update)"
            );
        }
    }
    if std::env::var_os("KEYROLL_BLESS").is_some() {
        std::fs::write(&readme_path, readme).unwrap();
    }
}
