//! Every thread a metadata parse starts ends with the parse, on every path: a stream that
//! stops early or falls back to the tree reader joins its hashing thread and its workers
//! before it returns (a detached thread was what LeakSanitizer reported in the metadata fuzz
//! target). Its own test binary: no other test's threads are running.

use keyroll::load::metadata;
use time::OffsetDateTime;

const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";

/// Threads of this process named like keyroll's hashing thread, still alive.
#[cfg(target_os = "linux")]
fn hashing_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "keyroll-sha256")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn a_stream_that_stops_early_leaves_no_thread_behind() {
    use std::time::{Duration, Instant};
    let entity = format!(
        "<EntityDescriptor entityID=\"https://e.example/\"><IDPSSODescriptor><KeyDescriptor><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></KeyDescriptor></IDPSSODescriptor></EntityDescriptor>",
        "A".repeat(2000)
    );
    let body = entity.repeat(400);
    let documents = [
        // Truncated: the stream reads far, then fails.
        format!("<EntitiesDescriptor xmlns=\"{MD}\">{body}"),
        // A processing instruction between entities: the stream falls back.
        format!("<EntitiesDescriptor xmlns=\"{MD}\">{body}<?pi?>{body}</EntitiesDescriptor>"),
        // Not an aggregate.
        format!("<EntityDescriptor xmlns=\"{MD}\" entityID=\"x\"/>"),
    ];
    for round in 0..100 {
        for doc in &documents {
            let _ = metadata::parse_streamed("t.xml", doc.as_bytes(), OffsetDateTime::UNIX_EPOCH);
            // Joined, exactly: every thread the parse started was waited for before it
            // returned. (A Drop that only closed the queue would leave it running.)
            assert_eq!(
                metadata::unjoined_hashing_threads(),
                0,
                "round {round}: a hashing thread outlived its parse"
            );
            // And gone: the kernel may list a joined thread for a moment after `join`
            // returns (it is still leaving), never for long.
            let deadline = Instant::now() + Duration::from_secs(2);
            while hashing_threads() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(
                hashing_threads(),
                0,
                "round {round}: a hashing thread still runs"
            );
        }
    }
}
