//! Names the commit keyroll is built from, for `keyroll --version`
//! (`keyroll 0.1.0 (1a2b3c4d5e6f)`): KEYROLL_COMMIT when set (a packager's override), else
//! `git rev-parse` when building from this repository's clone, else the `sha1` cargo records in
//! `.cargo_vcs_info.json` of a published package, else "unknown commit". Never fails a build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KEYROLL_COMMIT");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let commit = std::env::var("KEYROLL_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git_commit(&root))
        .or_else(|| vcs_info(&root))
        .unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=KEYROLL_COMMIT={}", commit.trim());
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn git_commit(root: &Path) -> Option<String> {
    // Only this crate's own repository: a package unpacked inside another one (vendored,
    // say) must not take that repository's commit.
    let top = git(root, &["rev-parse", "--show-toplevel"])?;
    let same = |a: &Path, b: &Path| {
        std::fs::canonicalize(a)
            .ok()
            .is_some_and(|a| std::fs::canonicalize(b).ok() == Some(a))
    };
    if !same(Path::new(&top), root) {
        return None;
    }
    let commit = git(root, &["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs. In a worktree
    // these live in different folders; git says where.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        // A path that does not exist would make cargo rerun this script on every build.
        if let Some(path) = git(root, &["rev-parse", "--git-path", &name])
            .map(|p| root.join(p))
            .filter(|p| p.exists())
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(commit)
}

fn vcs_info(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join(".cargo_vcs_info.json")).ok()?;
    // {"git": {"sha1": "…"}, …}: a string search is enough for one field.
    let at = text.find("\"sha1\"")?;
    let value = text[at + 6..].split('"').nth(1)?;
    let short: String = value.chars().take(12).collect();
    (short.len() == 12 && short.chars().all(|c| c.is_ascii_hexdigit())).then_some(short)
}
