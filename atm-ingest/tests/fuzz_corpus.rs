//! Replays every input of `fuzz/corpus/ingest_*/` through its fuzz target
//! on stable Rust, then a little stable fuzzing on top: random edits of
//! every seed. Nothing may panic.

use std::path::Path;

use proptest::prelude::*;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!seeds.is_empty(), "empty corpus {}", dir.display());
    seeds
}

#[test]
fn corpora_replay() {
    for s in seeds("ingest_klines") {
        atm_ingest::fuzzing::klines(&s);
    }
    for s in seeds("ingest_selections") {
        atm_ingest::fuzzing::selections(&s);
    }
    for s in seeds("ingest_ws") {
        atm_ingest::fuzzing::ws_message(&s);
    }
    for s in seeds("ingest_archive_log") {
        atm_ingest::fuzzing::archive_log(&s);
    }
    for s in seeds("ingest_archive_zip") {
        atm_ingest::fuzzing::archive_zip(&s);
    }
}

fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for &(pos, op, byte) in edits {
        if v.is_empty() {
            v.push(byte);
            continue;
        }
        let p = pos % v.len();
        match op % 3 {
            0 => v[p] = byte,
            1 => v.truncate(p),
            _ => v.insert(p, byte),
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn mutated_klines(i in 0usize..64, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 32u8..127), 1..6)) {
        let s = seeds("ingest_klines");
        atm_ingest::fuzzing::klines(&mutate(&s[i % s.len()], &edits));
    }

    #[test]
    fn mutated_ws_messages(i in 0usize..64, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 32u8..127), 1..6)) {
        let s = seeds("ingest_ws");
        atm_ingest::fuzzing::ws_message(&mutate(&s[i % s.len()], &edits));
    }

    #[test]
    fn mutated_selections(i in 0usize..64, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
        let s = seeds("ingest_selections");
        atm_ingest::fuzzing::selections(&mutate(&s[i % s.len()], &edits));
    }

    #[test]
    fn mutated_archive_logs(i in 0usize..64, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 32u8..127), 1..6)) {
        let s = seeds("ingest_archive_log");
        atm_ingest::fuzzing::archive_log(&mutate(&s[i % s.len()], &edits));
    }

    #[test]
    fn mutated_archive_zips(i in 0usize..64, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
        let s = seeds("ingest_archive_zip");
        atm_ingest::fuzzing::archive_zip(&mutate(&s[i % s.len()], &edits));
    }
}
