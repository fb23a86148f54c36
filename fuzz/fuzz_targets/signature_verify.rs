#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyroll::harness::signature_verify(data));
