//! Replays every input of `fuzz/corpus/<target>/` through its fuzz target on
//! stable Rust: crashes found by fuzzing stay fixed.

use atm_test_support::replay;

#[test]
fn csv_corpus() {
    replay("csv", atm_store::fuzzing::csv);
}

#[test]
fn journal_corpus() {
    replay("journal", atm_store::fuzzing::journal);
}

#[test]
fn registry_corpus() {
    replay("registry", atm_store::fuzzing::registry);
}

#[test]
fn export_manifest_corpus() {
    replay("export_manifest", atm_store::fuzzing::export_manifest);
}

#[test]
fn series_file_corpus() {
    replay("series_file", atm_store::fuzzing::series_file);
}

/// A little stable-Rust fuzzing on top of the corpus: random byte flips,
/// truncations and insertions of every seed, through every target.
mod mutations {
    use atm_test_support::{edits, mutate, seeds};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn parsers_survive_mutations((which, e) in edits()) {
            for (target, f) in [
                ("csv", atm_store::fuzzing::csv as fn(&[u8])),
                ("journal", atm_store::fuzzing::journal),
                ("registry", atm_store::fuzzing::registry),
                ("export_manifest", atm_store::fuzzing::export_manifest),
            ] {
                let s = seeds(target);
                f(&mutate(&s[which % s.len()], &e));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn damaged_series_files_are_never_served((which, e) in edits()) {
            let s = seeds("series_file");
            atm_store::fuzzing::series_file(&mutate(&s[which % s.len()], &e));
        }
    }
}
