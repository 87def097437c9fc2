#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| suite_fuzz::image_pipeline(data));
