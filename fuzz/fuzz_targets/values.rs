#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| liblease_fuzz::values(data));
