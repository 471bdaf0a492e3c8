//! The single-core f32 fused multiply-add peak of this machine, measured:
//! `cargo run --release -p n3net-core --example fma_peak`.
//!
//! Twelve independent chains of 8-lane FMAs (AVX2+FMA on x86-64; sixteen
//! chains of 4-lane FMAs with NEON on aarch64), enough to cover the FMA
//! latency on every core this targets, so the loop runs at the FMA units'
//! throughput. Prints the best of five runs in GMAC/s (one multiply-add per
//! lane per FMA), the figure `n3net bench` results are compared with.

use std::hint::black_box;
use std::time::Instant;

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
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        black_box(simd::run(
            black_box(ITERS),
            black_box(0.999_999),
            black_box(1e-7),
        ));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gmacs = (ITERS * simd::MACS_PER_ITER) as f64 / best / 1e9;
    println!(
        "single-core f32 FMA peak: {gmacs:.2} GMAC/s ({:.2} GFLOP/s)",
        2.0 * gmacs
    );
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn main() {
    println!("fma_peak: no SIMD FMA kernel for this target");
}
