#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| suite_fuzz::s3_event(data));
