//! Prism (`@stoplight/prism-cli`, installed by scripts/test into tests/contract/node_modules)
//! for the contract tests: started on a free loopback port, serving (`mock`) or guarding
//! (`proxy`) an OpenAPI description, and stopped when dropped. Its log holds every request
//! that breaks the description.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn contract_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract")
}

pub struct Prism {
    child: Child,
    pub log: PathBuf,
    pub port: u16,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The installed Prism; the test fails (never skips) when scripts/test has not run.
pub fn prism_bin() -> PathBuf {
    let dir = contract_dir();
    let prism = dir.join("node_modules/.bin/prism");
    assert!(
        prism.exists(),
        "Prism is missing under {}: run scripts/test, which installs it",
        dir.display()
    );
    prism
}

/// A description with every path moved under `prefix`: Prism ignores a description's
/// server path, so the copy it reads spells it out.
pub fn under_prefix(mut doc: serde_json::Value, prefix: &str) -> serde_json::Value {
    let paths = doc["paths"].as_object().unwrap().clone();
    doc["paths"] = paths
        .into_iter()
        .map(|(p, v)| (format!("{prefix}{p}"), v))
        .collect::<serde_json::Map<_, _>>()
        .into();
    doc
}

/// `prism <mode> -h 127.0.0.1 -p PORT <spec> [upstream]`, its log in `work`, waited for
/// until it listens (at most `wait`).
pub fn start(
    mode: &str,
    spec: &Path,
    upstream: Option<&str>,
    work: &Path,
    wait: Duration,
) -> Prism {
    let log = work.join("prism.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(prism_bin())
        .args([mode, "-h", "127.0.0.1", "-p", &port.to_string()])
        .arg(spec)
        .args(upstream)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("prism starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < wait, "Prism did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    Prism { child, log, port }
}
