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
    if data.len() >= FAST_MIN_LEN
        && CHECKSUMMED.fetch_add(data.len() as u64, Ordering::Relaxed) >= FAST_AFTER
    {
        // The checksum of a CRC-32 variant is its 32 low bits.
        return crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    }
    ::crc32c::crc32c(data)
}

/// A caller about to checksum `bytes` in one go (a long scan) says so: from
/// [`FAST_AFTER`] bytes on, the fast implementation starts at once instead
/// of after the first MiB, which the detection-free one would take ~70 µs
/// longer over.
pub(crate) fn expect(bytes: u64) {
    if bytes >= FAST_AFTER {
        CHECKSUMMED.fetch_max(FAST_AFTER, Ordering::Relaxed);
    }
}

/// Extends `crc` (the CRC-32C of some prefix) over `data`.
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, data)
}

/// CRC-32C's polynomial, bit-reflected (the coefficient of x^0 is bit 31).
const POLY: u32 = 0x82F6_3B78;

/// Longest buffer [`crc32c_patch`] patches: a block's column of `f64`.
const PATCH_MAX_LEN: usize = crate::layout::BLOCK_SLOTS as usize * 8;

/// `a(x)·b(x) mod P(x)` in the reflected representation.
fn mul_mod_p(a: u32, mut b: u32) -> u32 {
    // Branch-free: the bits of `a` are data, and mispredicted branches
    // would cost more than the arithmetic.
    let mut product = 0;
    for i in (0..32).rev() {
        product ^= b & ((a >> i) & 1).wrapping_neg();
        b = (b >> 1) ^ (POLY & (b & 1).wrapping_neg());
    }
    product
}

/// `x^(8n) mod P(x)` for every `n` up to [`PATCH_MAX_LEN`]: appending `n`
/// zero bytes to a message multiplies its raw CRC by it.
fn zero_bytes_table() -> &'static [u32] {
    static TABLE: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let x8 = 1u32 << (31 - 8);
        let mut p = 1u32 << 31; // x^0
        (0..=PATCH_MAX_LEN)
            .map(|_| {
                let v = p;
                p = mul_mod_p(x8, p);
                v
            })
            .collect()
    })
}

/// The CRC-32C of `len` zero bytes (a block's column that was never
/// written), without reading them: the initial register, moved past `len`
/// zero bytes, inverted.
pub(crate) fn crc32c_zeros(len: usize) -> u32 {
    debug_assert!(len <= PATCH_MAX_LEN);
    !mul_mod_p(zero_bytes_table()[len], !0)
}

/// The CRC-32C of a `len`-byte buffer whose bytes `at..at + old.len()`
/// changed from `old` to `new`, given its CRC before the change: CRC-32C is
/// linear, so the change's own CRC, moved past the bytes that follow it,
/// is folded in, without reading the rest of the buffer.
///
/// `len` is at most one block's column (32 KiB) and `old` at most 8 bytes.
pub(crate) fn crc32c_patch(crc: u32, len: usize, at: usize, old: &[u8], new: &[u8]) -> u32 {
    debug_assert!(
        old.len() == new.len() && old.len() <= 8 && at + old.len() <= len && len <= PATCH_MAX_LEN
    );
    let mut delta = [0u8; 8];
    for (d, (o, n)) in delta.iter_mut().zip(old.iter().zip(new)) {
        *d = o ^ n;
    }
    let delta = &delta[..old.len()];
    if delta.iter().all(|&d| d == 0) {
        return crc;
    }
    // The raw CRC (no initial or final inversion) of the change.
    let raw = !::crc32c::crc32c_append(!0, delta);
    crc ^ mul_mod_p(zero_bytes_table()[len - at - delta.len()], raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_compute_crc32c() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let data: Vec<u8> = (0..3 * FAST_AFTER as usize / 2)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for chunk in [
            &data[..FAST_MIN_LEN],
            &data[..FAST_MIN_LEN + 3],
            &data[7..70_000],
            &data[..],
        ] {
            let slow = ::crc32c::crc32c(chunk);
            assert_eq!(
                crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, chunk) as u32,
                slow
            );
            // Called enough times to cross FAST_AFTER, so both paths run.
            for _ in 0..4 {
                assert_eq!(crc32c(chunk), slow);
            }
        }
        assert!(CHECKSUMMED.load(Ordering::Relaxed) >= FAST_AFTER);
        assert_eq!(crc32c_append(crc32c(b"1234"), b"56789"), 0xE306_9283);
    }

    #[test]
    fn the_crc_of_zeros_is_computed_without_reading_them() {
        for len in [0, 1, 7, 512, 4096, 16_384, PATCH_MAX_LEN] {
            assert_eq!(
                crc32c_zeros(len),
                ::crc32c::crc32c(&vec![0u8; len]),
                "len {len}"
            );
        }
    }

    #[test]
    fn a_patched_crc_equals_the_crc_of_the_patched_buffer() {
        let mut buf: Vec<u8> = (0..PATCH_MAX_LEN)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for (len, at, width) in [
            (16_384, 0, 4),
            (16_384, 16_380, 4),
            (32_768, 12_344, 8),
            (512, 504, 8),
            (512, 0, 8),
            (4, 0, 4),
            (9, 3, 1),
        ] {
            let data = &mut buf[..len];
            let crc = crc32c(data);
            let old = data[at..at + width].to_vec();
            let new: Vec<u8> = old.iter().map(|b| b.wrapping_mul(7) ^ 0x5a).collect();
            data[at..at + width].copy_from_slice(&new);
            assert_eq!(
                crc32c_patch(crc, len, at, &old, &new),
                crc32c(data),
                "len {len} at {at}"
            );
            assert_eq!(
                crc32c_patch(crc, len, at, &old, &old),
                crc,
                "no change, same CRC"
            );
        }
    }
}
