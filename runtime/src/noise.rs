//! Synthetic noise for evaluation (spec §6): additive white Gaussian noise
//! with reproducible draws, and a Poisson–Gaussian noise-level profile.
//!
//! # Reproducibility contract
//!
//! For image number `image_index` of a run with seed `seed`, the generator is
//!
//! ```text
//! rand_chacha::ChaCha20Rng::seed_from_u64(seed ^ image_index.wrapping_mul(0x9E3779B97F4A7C15))
//! ```
//!
//! (`rand_chacha` 0.9 / `rand_core` 0.9 `SeedableRng::seed_from_u64`), and the
//! `i`-th sample (pixel order, i.e. the flat order of the slice) receives the
//! `i`-th draw `z_i: f64` of `rand_distr::StandardNormal` (`rand_distr` 0.5),
//! converted to `f32`. Any engine or tool that follows this gets bit-identical
//! noisy inputs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::StandardNormal;

/// Multiplier used to mix the image index into the seed (2⁶⁴ / φ, the
/// "golden ratio" constant).
pub const IMAGE_INDEX_MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// The `u64` passed to `ChaCha20Rng::seed_from_u64` for image `image_index`
/// of a run seeded with `seed`: `seed ^ image_index.wrapping_mul(0x9E3779B97F4A7C15)`.
pub fn derive_seed(seed: u64, image_index: u64) -> u64 {
    seed ^ image_index.wrapping_mul(IMAGE_INDEX_MIX)
}

/// The generator used for image `image_index` of a run seeded with `seed`
/// (see the module documentation).
pub fn noise_rng(seed: u64, image_index: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(derive_seed(seed, image_index))
}

/// Adds white Gaussian noise of standard deviation `sigma_255 / 255` to
/// `clean` (values on a `[0, 1]` scale), without clipping:
///
/// `noisy[i] = clean[i] + (sigma_255 / 255.0_f32) * (z_i as f32)`,
///
/// computed in `f32`, where `z_i` is the `i`-th `f64` draw of
/// `StandardNormal` from [`noise_rng`]`(seed, image_index)`. The result is
/// fully determined by `(clean, sigma_255, seed, image_index)`.
///
/// `sigma_255 = 0` returns `clean` unchanged (the draws are still made). A
/// non-finite `sigma_255` gives non-finite output; nothing panics.
pub fn add_gaussian_noise(clean: &[f32], sigma_255: f32, seed: u64, image_index: u64) -> Vec<f32> {
    let scale = sigma_255 / 255.0_f32;
    let mut rng = noise_rng(seed, image_index);
    clean
        .iter()
        .map(|&c| {
            let z: f64 = rng.sample(StandardNormal);
            c + scale * (z as f32)
        })
        .collect()
}

/// Per-pixel noise standard deviation of a Poisson–Gaussian (heteroscedastic)
/// noise profile: `σ(x) = sqrt(max(a·x + b, 0))` for each `x` (intensity on a
/// `[0, 1]` scale); `a` is the signal-dependent (Poisson) variance gain and
/// `b` the constant (Gaussian) variance, both in `[0, 1]`-scale units, so the
/// result is on the same `[0, 1]` scale as `x`. Computed in `f32`.
///
/// Negative variances are clamped to 0. A NaN variance (NaN `x`, `a` or `b`)
/// gives 0 as well, since `f32::max` ignores NaN; an infinite variance gives
/// `+∞`.
pub fn sigma_map_from_profile(x: &[f32], a: f32, b: f32) -> Vec<f32> {
    x.iter().map(|&v| (a * v + b).max(0.0).sqrt()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        let clean: Vec<f32> = (0..1000).map(|i| (i % 256) as f32 / 255.0).collect();
        let a = add_gaussian_noise(&clean, 25.0, 42, 3);
        let b = add_gaussian_noise(&clean, 25.0, 42, 3);
        assert_eq!(a, b);
        assert_eq!(a.len(), clean.len());
        assert_ne!(a, clean);
    }

    #[test]
    fn draws_follow_contract() {
        // The documented recipe reproduces the output exactly.
        let clean = vec![0.5f32; 64];
        let out = add_gaussian_noise(&clean, 50.0, 7, 11);
        let mut rng = ChaCha20Rng::seed_from_u64(7 ^ 11u64.wrapping_mul(0x9E3779B97F4A7C15));
        for (o, c) in out.iter().zip(&clean) {
            let z: f64 = rng.sample(StandardNormal);
            assert_eq!(*o, c + (50.0f32 / 255.0) * z as f32);
        }
        assert_eq!(derive_seed(7, 0), 7);
    }

    #[test]
    fn different_seeds_or_indices_differ() {
        let clean = vec![0.0f32; 256];
        let a = add_gaussian_noise(&clean, 25.0, 1, 0);
        let b = add_gaussian_noise(&clean, 25.0, 2, 0);
        let c = add_gaussian_noise(&clean, 25.0, 1, 1);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
    }

    #[test]
    fn prefix_stable() {
        // Pixel order: a shorter image gets a prefix of the same draws.
        let long = add_gaussian_noise(&[0.0; 100], 10.0, 5, 2);
        let short = add_gaussian_noise(&[0.0; 40], 10.0, 5, 2);
        assert_eq!(&long[..40], &short[..]);
    }

    #[test]
    fn sample_std_matches_sigma() {
        let n = 200_000;
        let clean = vec![0.5f32; n];
        for &sigma in &[25.0f32, 50.0] {
            let noisy = add_gaussian_noise(&clean, sigma, 1234, 0);
            let d: Vec<f64> = noisy.iter().map(|&v| f64::from(v) - 0.5).collect();
            let mean = d.iter().sum::<f64>() / n as f64;
            let var = d.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
            let target = f64::from(sigma) / 255.0;
            // Standard error of the std ≈ σ/sqrt(2n) ≈ 0.16 %; allow 1 %.
            assert!(
                (var.sqrt() / target - 1.0).abs() < 0.01,
                "std {} vs {}",
                var.sqrt(),
                target
            );
            assert!(mean.abs() < 5.0 * target / (n as f64).sqrt());
        }
    }

    #[test]
    fn no_clipping() {
        let clean = vec![0.0f32; 1000];
        let noisy = add_gaussian_noise(&clean, 50.0, 9, 0);
        assert!(noisy.iter().any(|&v| v < 0.0));
        let clean = vec![1.0f32; 1000];
        let noisy = add_gaussian_noise(&clean, 50.0, 9, 0);
        assert!(noisy.iter().any(|&v| v > 1.0));
    }

    #[test]
    fn zero_sigma_is_identity() {
        let clean: Vec<f32> = (0..50).map(|i| i as f32 / 49.0).collect();
        assert_eq!(add_gaussian_noise(&clean, 0.0, 3, 4), clean);
        assert!(add_gaussian_noise(&[], 25.0, 0, 0).is_empty());
    }

    #[test]
    fn sigma_profile() {
        let x = [0.0f32, 0.25, 1.0, f32::NAN];
        let s = sigma_map_from_profile(&x, 0.04, 0.0001);
        assert!((s[0] - 0.01).abs() < 1e-7);
        assert!((s[1] - (0.04f32 * 0.25 + 0.0001).sqrt()).abs() < 1e-7);
        assert!((s[2] - 0.0401f32.sqrt()).abs() < 1e-7);
        assert_eq!(s[3], 0.0);
        // Negative variance is clamped.
        let s = sigma_map_from_profile(&[0.0, 1.0], 0.01, -0.5);
        assert_eq!(s, vec![0.0, 0.0]);
    }
}
