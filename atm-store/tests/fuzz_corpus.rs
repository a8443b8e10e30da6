//! Replays every input of `fuzz/corpus/<target>/` through its fuzz target on
//! stable Rust: crashes found by fuzzing stay fixed.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        f(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

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
    use proptest::prelude::*;

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
        std::fs::read_dir(dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect()
    }

    fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for &(pos, op, byte) in edits {
            if v.is_empty() {
                v.push(byte);
                continue;
            }
            let p = pos % v.len();
            match op % 4 {
                0 => v[p] ^= byte | 1,
                1 => v.truncate(p),
                2 => v.insert(p, byte),
                _ => v[p] = byte,
            }
        }
        v
    }

    fn edits() -> impl Strategy<Value = (usize, Vec<(usize, u8, u8)>)> {
        (any::<usize>(), proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6))
    }

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
