//! Fuzz target: see `atm_store::fuzzing::export_manifest`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atm_store::fuzzing::export_manifest(data));
