//! Fuzz target: see `atm_sim::fuzzing::request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atm_sim::fuzzing::request(data));
