//! Counter-based randomness: every random number the simulator uses is a
//! pure function of the seed and a few integers (symbol, level, index, salt),
//! so any kline of any symbol at any time can be computed without generating
//! anything before it, in any order, on any thread.

/// Mixes `x` into 64 well-distributed bits (SplitMix64's finaliser).
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Hashes a tuple of integers.
#[inline]
pub fn hash(parts: &[u64]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for &p in parts {
        h = mix(h ^ p
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(0x632b_e59b_d9b4_e019));
    }
    h
}

/// Hashes a string (FNV-1a, then mixed), for symbol names.
pub fn hash_str(s: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// A uniform number in `[0, 1)` from 53 bits of `h`.
#[inline]
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// An approximately standard normal number from `h` (Irwin-Hall with four
/// uniforms: mean 0, variance 1, tails cut at ±3.46, plenty for prices).
#[inline]
pub fn normal(h: u64) -> f64 {
    let a = (h & 0xffff) as f64
        + ((h >> 16) & 0xffff) as f64
        + ((h >> 32) & 0xffff) as f64
        + (h >> 48) as f64;
    (a / 65536.0 - 2.0) * 3f64.sqrt()
}

/// Smooth value noise in `[-1, 1]` at real position `x`: random values at
/// integer points, joined by a smoothstep, so nearby points are correlated.
pub fn value_noise(key: u64, x: f64) -> f64 {
    let i = x.floor();
    let t = x - i;
    let t = t * t * (3.0 - 2.0 * t);
    let a = unit(hash(&[key, i as i64 as u64])) * 2.0 - 1.0;
    let b = unit(hash(&[key, (i as i64 + 1) as u64])) * 2.0 - 1.0;
    a + (b - a) * t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_has_unit_variance() {
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|i| normal(hash(&[7, i]))).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
    }

    #[test]
    fn unit_and_noise_stay_in_range() {
        for i in 0..10_000u64 {
            let u = unit(hash(&[1, i]));
            assert!((0.0..1.0).contains(&u));
            let v = value_noise(3, i as f64 * 0.37);
            assert!((-1.0..=1.0).contains(&v));
        }
        assert_ne!(hash(&[1, 2]), hash(&[2, 1]));
        assert_eq!(hash_str("BTCUSDT"), hash_str("BTCUSDT"));
    }
}
