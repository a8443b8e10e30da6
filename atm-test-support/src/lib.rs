//! # atm-test-support
//!
//! What atm's tests share, in one place instead of a copy per crate (a
//! dev-dependency only; nothing here ships).
//!
//! * [`seeds`] and [`replay`]: the inputs of a fuzz target's corpus
//!   (`fuzz/corpus/<target>/`), run on stable Rust by every crate's
//!   `tests/fuzz_corpus.rs`, so crashes found by fuzzing stay fixed.
//! * [`mutate`], [`edits`] and [`text_edits`]: a little stable-Rust fuzzing
//!   on top of the corpus: proptest picks a seed and a few edits (flip, set,
//!   truncate, insert) and the target must survive the result.
//!
//! ```
//! let v = atm_test_support::mutate(b"abc", &[(1, 1, 0)]); // truncate at 1
//! assert_eq!(v, b"a");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;

/// The corpus directory of fuzz target `target` (`fuzz/corpus/<target>`).
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every input of `target`'s corpus; panics (naming the directory) if it is
/// missing or empty, so a renamed corpus cannot pass silently.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    assert!(!seeds.is_empty(), "empty corpus {}", dir.display());
    seeds
}

/// Runs every input of `target`'s corpus through `f`; returns how many.
pub fn replay(target: &str, f: fn(&[u8])) -> usize {
    let seeds = seeds(target);
    for s in &seeds {
        f(s);
    }
    seeds.len()
}

/// `seed` after `edits`, each `(position, operation, byte)`: operation 0
/// flips bits (`^= byte | 1`), 1 truncates at the position, 2 inserts the
/// byte, 3 sets it. Positions wrap around the current length; an empty
/// input gets the byte.
pub fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
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

/// A seed index and 1 to 5 edits of any bytes (binary formats).
pub fn edits() -> impl Strategy<Value = (usize, Vec<(usize, u8, u8)>)> {
    (
        any::<usize>(),
        proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    )
}

/// A seed index and 1 to 5 edits whose bytes are printable ASCII (text
/// formats: JSON, CSV, HTTP requests), so most mutants still get past the
/// first byte-level check.
pub fn text_edits() -> impl Strategy<Value = (usize, Vec<(usize, u8, u8)>)> {
    (
        any::<usize>(),
        proptest::collection::vec((any::<usize>(), any::<u8>(), 32u8..127), 1..6),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_edit_does_what_it_says() {
        assert_eq!(mutate(b"abc", &[(0, 0, 0)]), b"`bc"); // 'a' ^ 1
        assert_eq!(mutate(b"abc", &[(4, 1, 0)]), b"a"); // 4 % 3 = 1
        assert_eq!(mutate(b"abc", &[(1, 2, b'X')]), b"aXbc");
        assert_eq!(mutate(b"abc", &[(2, 3, b'Z')]), b"abZ");
        assert_eq!(mutate(b"", &[(9, 1, b'Q')]), b"Q");
    }
}
