//! Replays every input of `fuzz/corpus/ingest_*/` through its fuzz target on
//! stable Rust, then a little stable fuzzing on top: random edits of every
//! seed. Nothing may panic.

use atm_test_support::{edits, mutate, replay, seeds, text_edits};
use proptest::prelude::*;

#[test]
fn corpora_replay() {
    for (target, f) in [
        ("ingest_klines", atm_ingest::fuzzing::klines as fn(&[u8])),
        ("ingest_selections", atm_ingest::fuzzing::selections),
        ("ingest_ws", atm_ingest::fuzzing::ws_message),
        ("ingest_archive_log", atm_ingest::fuzzing::archive_log),
        ("ingest_archive_zip", atm_ingest::fuzzing::archive_zip),
    ] {
        replay(target, f);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn mutated_klines((i, e) in text_edits()) {
        let s = seeds("ingest_klines");
        atm_ingest::fuzzing::klines(&mutate(&s[i % s.len()], &e));
    }

    #[test]
    fn mutated_ws_messages((i, e) in text_edits()) {
        let s = seeds("ingest_ws");
        atm_ingest::fuzzing::ws_message(&mutate(&s[i % s.len()], &e));
    }

    #[test]
    fn mutated_selections((i, e) in edits()) {
        let s = seeds("ingest_selections");
        atm_ingest::fuzzing::selections(&mutate(&s[i % s.len()], &e));
    }

    #[test]
    fn mutated_archive_logs((i, e) in text_edits()) {
        let s = seeds("ingest_archive_log");
        atm_ingest::fuzzing::archive_log(&mutate(&s[i % s.len()], &e));
    }

    #[test]
    fn mutated_archive_zips((i, e) in edits()) {
        let s = seeds("ingest_archive_zip");
        atm_ingest::fuzzing::archive_zip(&mutate(&s[i % s.len()], &e));
    }
}
