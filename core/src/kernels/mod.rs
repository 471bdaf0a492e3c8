//! Compute kernels: a plain reference version of each, and faster versions
//! picked at run time by [`Isa`].

pub mod act;
pub mod conv;
pub mod fixed;
mod qconv;

/// The instruction set a kernel may use.
///
/// [`Isa::detect`] picks the best one this CPU has; [`Isa::Generic`] is the plain
/// reference path, always available. Optimised kernels are tested against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Isa {
    /// Plain Rust, whatever the compiler makes of it for the target.
    Generic,
    /// x86-64 with AVX2, FMA and F16C (only constructed after checking the CPU).
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(Avx2Token),
    /// aarch64 Advanced SIMD (NEON), part of every AArch64 CPU.
    #[cfg(target_arch = "aarch64")]
    Neon,
}

/// Proof that the CPU supports AVX2, FMA and F16C; only [`Isa::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Avx2Token(());

impl Isa {
    /// The fastest instruction set this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if x86::has_avx2_fma() {
            return Isa::Avx2Fma(Avx2Token(()));
        }
        #[cfg(target_arch = "aarch64")]
        return Isa::Neon;
        #[cfg(not(target_arch = "aarch64"))]
        Isa::Generic
    }

    /// A short name for logs and benchmarks.
    pub fn name(&self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma(_) => "avx2+fma",
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => "neon",
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};

    /// The XCR0 register: which register states the OS saves.
    ///
    /// # Safety
    /// The CPU must support XSAVE and the OS must have enabled it (CPUID
    /// OSXSAVE), or XGETBV faults.
    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        // SAFETY: only called after CPUID reported OSXSAVE, so XGETBV exists.
        unsafe { core::arch::x86_64::_xgetbv(0) }
    }

    /// CPUID and XCR0: the CPU has AVX2, FMA and F16C and the OS saves the
    /// YMM state.
    pub fn has_avx2_fma() -> bool {
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86-64 CPU.
        let max: CpuidResult = unsafe { __cpuid(0) };
        if max.eax < 7 {
            return false;
        }
        #[allow(unused_unsafe)]
        // SAFETY: leaf 1 exists (max leaf >= 7).
        let l1 = unsafe { __cpuid(1) };
        let fma = l1.ecx & (1 << 12) != 0;
        let osxsave = l1.ecx & (1 << 27) != 0;
        let avx = l1.ecx & (1 << 28) != 0;
        let f16c = l1.ecx & (1 << 29) != 0;
        if !(fma && osxsave && avx && f16c) {
            return false;
        }
        // SAFETY: OSXSAVE is set, so XGETBV is available.
        let xcr0 = unsafe { xcr0() };
        if xcr0 & 0b110 != 0b110 {
            return false;
        }
        #[allow(unused_unsafe)]
        // SAFETY: leaf 7 exists (checked above).
        let l7 = unsafe { __cpuid_count(7, 0) };
        l7.ebx & (1 << 5) != 0
    }
}
