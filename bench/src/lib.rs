//! Inputs of the kernel micro-benchmarks (`cargo bench -p n3net-bench`):
//! deterministic pseudo-random values and the instruction sets to compare.
#![forbid(unsafe_code)]

use n3net_core::Isa;

/// Values in `[-0.5, 0.5)` from a fixed linear congruential sequence.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// The reference kernels, then the detected instruction set when it differs.
pub fn isas() -> Vec<Isa> {
    let best = Isa::detect();
    if best == Isa::Generic {
        vec![Isa::Generic]
    } else {
        vec![Isa::Generic, best]
    }
}
