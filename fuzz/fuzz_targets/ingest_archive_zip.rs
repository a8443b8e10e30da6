//! Fuzz target: see `atm_ingest::fuzzing::archive_zip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atm_ingest::fuzzing::archive_zip(data));
