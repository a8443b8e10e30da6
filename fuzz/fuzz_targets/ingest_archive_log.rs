//! Fuzz target: see `atm_ingest::fuzzing::archive_log`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atm_ingest::fuzzing::archive_log(data));
