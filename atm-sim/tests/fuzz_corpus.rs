//! Replays every input of `fuzz/corpus/sim_*/` through its fuzz target on
//! stable Rust, then a little stable fuzzing on top: random edits of every
//! seed. Nothing may panic.

use atm_test_support::{edits, mutate, replay, seeds, text_edits};
use proptest::prelude::*;

#[test]
fn corpora_replay() {
    for (target, f) in [
        ("sim_request", atm_sim::fuzzing::request as fn(&[u8])),
        ("sim_ws_control", atm_sim::fuzzing::ws_control),
        ("sim_specs", atm_sim::fuzzing::specs),
    ] {
        replay(target, f);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mutated_requests((i, e) in text_edits()) {
        let s = seeds("sim_request");
        atm_sim::fuzzing::request(&mutate(&s[i % s.len()], &e));
    }

    #[test]
    fn mutated_ws_control((i, e) in text_edits()) {
        let s = seeds("sim_ws_control");
        atm_sim::fuzzing::ws_control(&mutate(&s[i % s.len()], &e));
    }

    #[test]
    fn mutated_specs((i, e) in edits()) {
        let s = seeds("sim_specs");
        atm_sim::fuzzing::specs(&mutate(&s[i % s.len()], &e));
    }
}
