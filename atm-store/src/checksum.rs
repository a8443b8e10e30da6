//! CRC-32C (Castagnoli), the checksum of every stored byte.
//!
//! Two implementations compute the same function:
//!
//! * the `crc32c` crate, built on SSE4.2's `crc32` instruction (part of the
//!   x86-64-v2 baseline the workspace compiles for), needs no CPU detection
//!   and runs at ~20 GB/s;
//! * `crc-fast`, which folds with (V)PCLMULQDQ and reaches ~50 GB/s on
//!   AVX-512 machines, but detects the CPU's features on first use. On
//!   virtual machines each `CPUID` traps to the hypervisor, so that first use
//!   costs ~35 µs: more than a short-lived `atm query` spends checksumming.
//!
//! [`crc32c`] therefore starts every process on the first and switches to the
//! second once the process has checksummed [`FAST_AFTER`] bytes, where the
//! detection has paid for itself: full scans, bulk writes and `verify` get
//! the fast path, a one-day range read never pays for it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes a process checksums with the detection-free implementation before
/// switching to the faster one (break-even is ~1.3 MB at the speeds above; memory bandwidth, not the
/// checksum, bounds both on large cold reads).
pub(crate) const FAST_AFTER: u64 = 1 << 20;

/// Buffers shorter than this always take the simple path: the fast one's
/// per-call dispatch is not worth it for headers and journal records.
const FAST_MIN_LEN: usize = 256;

static CHECKSUMMED: AtomicU64 = AtomicU64::new(0);

/// The CRC-32C of `data`.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    if data.len() >= FAST_MIN_LEN && CHECKSUMMED.fetch_add(data.len() as u64, Ordering::Relaxed) >= FAST_AFTER {
        // The checksum of a CRC-32 variant is its 32 low bits.
        return crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    }
    ::crc32c::crc32c(data)
}

/// Extends `crc` (the CRC-32C of some prefix) over `data`.
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_compute_crc32c() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let data: Vec<u8> = (0..3 * FAST_AFTER as usize / 2).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for chunk in [&data[..FAST_MIN_LEN], &data[..FAST_MIN_LEN + 3], &data[7..70_000], &data[..]] {
            let slow = ::crc32c::crc32c(chunk);
            assert_eq!(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, chunk) as u32, slow);
            // Called enough times to cross FAST_AFTER, so both paths run.
            for _ in 0..4 {
                assert_eq!(crc32c(chunk), slow);
            }
        }
        assert!(CHECKSUMMED.load(Ordering::Relaxed) >= FAST_AFTER);
        assert_eq!(crc32c_append(crc32c(b"1234"), b"56789"), 0xE306_9283);
    }
}
