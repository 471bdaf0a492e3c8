//! The single-core f32 fused multiply-add peak of this machine, measured:
//! `cargo run --release -p n3net-core --example fma_peak`.
//!
//! Twelve independent chains of 8-lane FMAs (AVX2+FMA on x86-64; sixteen
//! chains of 4-lane FMAs with NEON on aarch64), enough to cover the FMA
//! latency on every core this targets, so the loop runs at the FMA units'
//! throughput. Prints the best of five runs in GMAC/s (one multiply-add per
//! lane per FMA), the figure `n3net bench` results are compared with.
//!
//! On x86-64 it also measures the 16-bit integer multiply-add rate of the
//! q16 convolution's AVX2 instructions (`vpmaddwd`, 16 products summed in
//! pairs, then `vpaddd`), in the same way: the most the q16 convolutions
//! can gain over f32 on a CPU without AVX-512 VNNI is this rate over the
//! f32 peak.

use std::hint::black_box;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod timing;

/// Iterations of the unrolled loop per run.
const ITERS: u64 = 40_000_000;

#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    /// Multiply-adds per loop iteration.
    pub const MACS_PER_ITER: u64 = 12 * 8;

    /// # Safety
    /// The CPU must support AVX and FMA.
    #[target_feature(enable = "avx,fma")]
    pub unsafe fn chains(iters: u64, m: f32, a: f32) -> f32 {
        let (vm, va) = (_mm256_set1_ps(m), _mm256_set1_ps(a));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, vm, va);
            }
        }
        let mut s = _mm256_setzero_ps();
        for v in acc {
            s = _mm256_add_ps(s, v);
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 floats; unaligned store.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
        lanes.iter().sum()
    }

    pub fn available() -> bool {
        is_x86_feature_detected!("avx") && is_x86_feature_detected!("fma")
    }

    /// 16-bit multiply-adds per loop iteration of [`madd_chains`].
    pub const INT16_MACS_PER_ITER: u64 = 12 * 16;

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn madd_chains(iters: u64, x: i16, w: i16) -> i32 {
        let (vw, vc) = (_mm256_set1_epi16(w), _mm256_set1_epi32(1));
        // Each chain feeds its sums back as the next products' inputs, so
        // that no two `vpmaddwd` are the same computation.
        let mut acc: [__m256i; 12] = core::array::from_fn(|i| _mm256_set1_epi16(x + i as i16));
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_add_epi32(_mm256_madd_epi16(*v, vw), vc);
            }
        }
        let mut s = _mm256_setzero_si256();
        for v in acc {
            s = _mm256_add_epi32(s, v);
        }
        _mm256_extract_epi32::<0>(s)
    }

    /// The int16 multiply-add chains, where the CPU has AVX2.
    pub fn int16(iters: u64, x: i16, w: i16) -> Option<i32> {
        // SAFETY: AVX2 was detected.
        is_x86_feature_detected!("avx2").then(|| unsafe { madd_chains(iters, x, w) })
    }

    pub fn run(iters: u64, m: f32, a: f32) -> f32 {
        // SAFETY: `main` checks `available()` first.
        unsafe { chains(iters, m, a) }
    }
}

#[cfg(target_arch = "aarch64")]
mod simd {
    use core::arch::aarch64::*;

    /// Multiply-adds per loop iteration.
    pub const MACS_PER_ITER: u64 = 16 * 4;

    pub fn available() -> bool {
        true
    }

    pub fn run(iters: u64, m: f32, a: f32) -> f32 {
        // SAFETY: NEON is part of every AArch64 CPU.
        unsafe {
            let (vm, va) = (vdupq_n_f32(m), vdupq_n_f32(a));
            let mut acc = [vdupq_n_f32(1.0); 16];
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = vfmaq_f32(va, *v, vm);
                }
            }
            acc.iter().map(|v| vaddvq_f32(*v)).sum()
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn main() {
    if !simd::available() {
        println!("fma_peak: this CPU has no FMA unit the benchmark knows");
        return;
    }
    let gmacs = best_rate(simd::MACS_PER_ITER, || {
        black_box(simd::run(
            black_box(ITERS),
            black_box(0.999_999),
            black_box(1e-7),
        ));
    });
    println!(
        "single-core f32 FMA peak: {gmacs:.2} GMAC/s ({:.2} GFLOP/s)",
        2.0 * gmacs
    );
    #[cfg(target_arch = "x86_64")]
    if simd::int16(1, 1, 1).is_some() {
        let int16 = best_rate(simd::INT16_MACS_PER_ITER, || {
            black_box(simd::int16(black_box(ITERS), black_box(3), black_box(5)));
        });
        println!(
            "single-core int16 multiply-add rate (vpmaddwd + vpaddd): {int16:.2} GMAC/s, \
             {:.2}× the f32 FMA peak",
            int16 / gmacs
        );
    }
}

/// Multiply-adds per second, in billions, of the best of five runs of
/// `run` ([`ITERS`] iterations of `per_iter` multiply-adds).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn best_rate(per_iter: u64, run: impl FnMut()) -> f64 {
    (ITERS * per_iter) as f64 / timing::best_of_five(run) / 1e9
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn main() {
    println!("fma_peak: no SIMD FMA kernel for this target");
}
