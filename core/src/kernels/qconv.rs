//! The fast q16 convolution: one output row, a block of output channels at
//! a time, with 16-bit multiply-adds into 32-bit SIMD lanes (AVX2
//! `vpmaddwd` and `vpaddd`, AVX512-VNNI `vpdpwssd` where the CPU has it,
//! NEON `smlal`).
//!
//! The input rows an output row reads are copied once per row (on x86-64
//! two channels interleaved, the operand layout of `vpmaddwd`), then each
//! block of output channels runs over tiles of [`TILE`] columns, its `i32`
//! sums held in registers.
//!
//! The result is the exact integer `bias + Σ_ci Σ_taps x · w` of
//! [`super::fixed::conv_acc_row`]; integer sums do not depend on their
//! order, so every instruction set gives the same bits, as long as no
//! partial sum overflows. The reference keeps one `i32` partial sum per
//! input channel; these kernels keep one per *group* of input channels and
//! widen it into the `i64` accumulator when the group ends.
//!
//! **Why no `i32` partial sum overflows.** Per output row, `a(ci)` is the
//! largest `|x|` of the `k` input rows of channel `ci` the row reads
//! (measured while they are copied), and `L1(co, ci) = Σ_taps |w|` of a
//! channel pair. Every partial sum of output channel `co` over a group `G`
//! of input channels, in whatever order its products are added (and each
//! `vpmaddwd` pair sum), is at most `Σ_{ci∈G} L1(co, ci) · a(ci)` in
//! magnitude. The groups are built greedily, one *unit* after another, and a
//! group ends before the unit that would lift this bound above `i32::MAX`
//! for any channel of the block. A unit is an input channel (NEON) or a pair
//! of input channels (AVX2, whose `vpmaddwd` multiplies two channels' values
//! at once); a pair whose own bound exceeds `i32::MAX` is split into two
//! units, each with one channel's weights (the other's zeroed). One channel
//! alone is always within the bound: validated weights have
//! `L1 ≤ Q16_TAP_L1_MAX = 65535` ([`crate::model::Weights::Q16`]) and stored
//! activations `|x| ≤ 32768`, and `65535 · 32768 < 2^31`. So every unit fits
//! a group, and every group's partial sums fit an `i32`.

use core::ops::Range;

use super::fixed;
use super::Isa;
use crate::error::{Error, ErrorKind, Result};

/// Most output channels of one block.
const CB: usize = 8;
/// Output columns of one tile.
const TILE: usize = 16;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
/// Largest bound of a group's `i32` partial sums.
const LIMIT: i64 = i32::MAX as i64;

/// Columns computed per row: `w` rounded up to whole tiles.
fn padded(w: usize) -> usize {
    w.div_ceil(TILE) * TILE
}

/// Length of one copied input row: the tiles and the `k − 1` columns the
/// taps reach beyond them.
fn row_len(w: usize, k: usize) -> usize {
    padded(w) + k - 1
}

/// The `(i32, i64)` scratch values [`conv_acc_rows`] needs for a layer of
/// `cin` input channels and side `k` over rows at most `rs` values wide: on
/// targets without the fast kernels (Cortex-M), one row of each for the
/// reference kernel.
pub(crate) fn scratch(cin: usize, k: usize, rs: usize) -> (usize, usize) {
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return (rs, rs);
    }
    let units = 2 * cin.div_ceil(2);
    let i32s = cin.div_ceil(2) * k * row_len(rs, k) + units * k * k * CB + units + cin;
    (i32s.max(rs), (CB * padded(rs)).max(rs))
}

/// The accumulators of one output row of a q16 convolution (weights
/// `values` in `[cout][cin][k][k]` order, input rows read at
/// `at(ci, ky) + kx + x`): calls `each(co, acc)`, for every output channel
/// of `cos` in order, with the row's `w` values `bias(co) + Σ_ci Σ_taps x · w`
/// of [`fixed::conv_acc_row`]. Each channel's values do not depend on `cos`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_acc_rows(
    isa: Isa,
    values: &[i16],
    (cin, cout, k): (usize, usize, usize),
    cos: Range<usize>,
    input: &[i16],
    at: impl Fn(usize, usize) -> usize,
    w: usize,
    bias: impl Fn(usize) -> i64,
    s32: &mut [i32],
    s64: &mut [i64],
    mut each: impl FnMut(usize, &[i64]) -> Result<()>,
) -> Result<()> {
    let (n32, n64) = scratch(cin, k, w);
    if values.len() != cout * cin * k * k
        || s32.len() < n32
        || s64.len() < n64
        || cos.start > cos.end
        || cos.end > cout
    {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "q16 conv: weights, channels or scratch out of range",
        ));
    }
    // Every input row must hold the `w + k − 1` values the taps read.
    for ci in 0..cin {
        for ky in 0..k {
            if at(ci, ky) + w + k - 1 > input.len() {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "q16 conv: input rows out of range",
                ));
            }
        }
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let fast = matches!(k, 1 | 3 | 5 | 7);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `has_vnni` checked the CPU; lengths were checked above.
        Isa::Avx2Fma(_) if fast && has_vnni() => unsafe {
            vnni::run(
                values,
                (cin, cout, k),
                cos,
                input,
                &at,
                w,
                &bias,
                s32,
                s64,
                &mut each,
            )
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves AVX2; lengths were checked above.
        Isa::Avx2Fma(_) if fast => unsafe {
            avx2::run(
                values,
                (cin, cout, k),
                cos,
                input,
                &at,
                w,
                &bias,
                s32,
                s64,
                &mut each,
            )
        },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: NEON is part of every AArch64 CPU; lengths were checked above.
        Isa::Neon if fast => unsafe {
            neon::run(
                values,
                (cin, cout, k),
                cos,
                input,
                &at,
                w,
                &bias,
                s32,
                s64,
                &mut each,
            )
        },
        _ => {
            let (part, acc) = (&mut s32[..w], &mut s64[..w]);
            for co in cos {
                fixed::conv_acc_row(values, cin, k, co, input, &at, bias(co), part, acc);
                each(co, acc)?;
            }
            Ok(())
        }
    }
}

/// Copies the `k` input rows of every channel pair, interleaved (`i32` =
/// channel `2p` in the low half, `2p + 1` in the high half, zero past
/// `cin`), into rows of `l` values (zeros past `w + k − 1`), and stores each
/// channel's largest `|x|` in `amax`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gather_pairs(
    cin: usize,
    k: usize,
    input: &[i16],
    at: &impl Fn(usize, usize) -> usize,
    w: usize,
    l: usize,
    xb: &mut [i32],
    amax: &mut [i32],
) {
    let n = w + k - 1;
    for p in 0..cin.div_ceil(2) {
        let (c0, c1) = (2 * p, 2 * p + 1);
        let (mut m0, mut m1) = (0i32, 0i32);
        for ky in 0..k {
            let dst = &mut xb[(p * k + ky) * l..][..l];
            let r0 = &input[at(c0, ky)..][..n];
            if c1 < cin {
                let r1 = &input[at(c1, ky)..][..n];
                for ((d, &a), &b) in dst.iter_mut().zip(r0).zip(r1) {
                    *d = (u32::from(a as u16) | u32::from(b as u16) << 16) as i32;
                    m0 = m0.max(i32::from(a).abs());
                    m1 = m1.max(i32::from(b).abs());
                }
            } else {
                for (d, &a) in dst.iter_mut().zip(r0) {
                    *d = i32::from(a as u16);
                    m0 = m0.max(i32::from(a).abs());
                }
            }
            dst[n..].fill(0);
        }
        amax[c0] = m0;
        if c1 < cin {
            amax[c1] = m1;
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
/// `Σ |w|` of one channel pair's taps.
#[inline(always)]
fn l1(w: &[i16]) -> i64 {
    i64::from(w.iter().map(|&v| i32::from(v).abs()).sum::<i32>())
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
/// Appends unit `n` with bounds `cost` to the groups: ends the group at
/// unit `n − 1` (its flag bit 0) when `cost` would lift any channel's bound
/// above [`LIMIT`].
#[inline(always)]
fn group<const C: usize>(units: &mut [i32], n: usize, run: &mut [i64; C], cost: &[i64; C]) {
    if n > 0 && run.iter().zip(cost).any(|(r, c)| r + c > LIMIT) {
        units[n - 1] |= 1;
        *run = *cost;
    } else {
        for (r, c) in run.iter_mut().zip(cost) {
            *r += c;
        }
    }
}

/// The units of output channels `co .. co + C` over channel pairs (see the
/// module docs): `units[u] = p << 1 | ends a group`, and the weights of unit
/// `u`, channel `j`, tap `t` at `wb[(u·C + j)·k² + t]`, two `i16` of
/// channels `2p` (low) and `2p + 1` (high). Returns the unit count.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn plan_pairs<const C: usize>(
    values: &[i16],
    cin: usize,
    kk: usize,
    co: usize,
    amax: &[i32],
    wb: &mut [i32],
    units: &mut [i32],
) -> usize {
    const ZERO: [i16; crate::model::MAX_KERNEL * crate::model::MAX_KERNEL] =
        [0; crate::model::MAX_KERNEL * crate::model::MAX_KERNEL];
    let mut run = [0i64; C];
    let mut n = 0;
    for p in 0..cin.div_ceil(2) {
        let (c0, c1) = (2 * p, 2 * p + 1);
        let taps = |j: usize| {
            let base = ((co + j) * cin + c0) * kk;
            let w0 = &values[base..][..kk];
            let w1 = if c1 < cin {
                &values[base + kk..][..kk]
            } else {
                &ZERO[..kk]
            };
            (w0, w1)
        };
        let a1 = if c1 < cin { amax[c1] } else { 0 };
        // The weights of unit n, packed as if the pair stays whole.
        let (mut cost0, mut cost1) = ([0i64; C], [0i64; C]);
        for (j, (x0, x1)) in cost0.iter_mut().zip(cost1.iter_mut()).enumerate() {
            let wu = &mut wb[(n * C + j) * kk..][..kk];
            let (l0, l1v) = if kk == 9 && c1 < cin {
                let base = ((co + j) * cin + c0) * kk;
                // SAFETY: AVX2 is enabled in this function.
                unsafe { pack9(&values[base..base + 18], wu) }
            } else {
                let (w0, w1) = taps(j);
                pack(w0, w1, (true, true), wu);
                (l1(w0), l1(w1))
            };
            (*x0, *x1) = (l0 * i64::from(amax[c0]), l1v * i64::from(a1));
        }
        if cost0.iter().zip(&cost1).all(|(x, y)| x + y <= LIMIT) {
            let c: [i64; C] = core::array::from_fn(|j| cost0[j] + cost1[j]);
            group(units, n, &mut run, &c);
            units[n] = (p << 1) as i32;
            n += 1;
            continue;
        }
        for (h, c) in [(true, false), (false, true)]
            .into_iter()
            .zip([cost0, cost1])
        {
            group(units, n, &mut run, &c);
            units[n] = (p << 1) as i32;
            for j in 0..C {
                let (w0, w1) = taps(j);
                pack(w0, w1, h, &mut wb[(n * C + j) * kk..][..kk]);
            }
            n += 1;
        }
    }
    units[n - 1] |= 1;
    n
}

/// Packs the taps of two channels into `i32` pairs (low `w0`, high `w1`),
/// each channel's weights or zeros as `keep` says.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pack(w0: &[i16], w1: &[i16], keep: (bool, bool), wu: &mut [i32]) {
    let (m0, m1) = (-i16::from(keep.0), -i16::from(keep.1));
    for ((d, &a), &b) in wu.iter_mut().zip(w0).zip(w1) {
        *d = (u32::from((a & m0) as u16) | u32::from((b & m1) as u16) << 16) as i32;
    }
}

/// [`pack`] of two channels of 3×3 taps, `w` their 18 consecutive weights,
/// with SSE registers; returns both channels' `Σ |w|`.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn pack9(w: &[i16], wu: &mut [i32]) -> (i64, i64) {
    use core::arch::x86_64::*;
    let (w, wu) = (&w[..18], &mut wu[..9]);
    // SAFETY: w holds 18 values, so both 8-value loads are inside it; wu
    // holds 9, so both 4-value stores are.
    let (a, b) = unsafe {
        let a = _mm_loadu_si128(w.as_ptr().cast());
        let b = _mm_loadu_si128(w.as_ptr().add(9).cast());
        _mm_storeu_si128(wu.as_mut_ptr().cast(), _mm_unpacklo_epi16(a, b));
        _mm_storeu_si128(wu.as_mut_ptr().add(4).cast(), _mm_unpackhi_epi16(a, b));
        (a, b)
    };
    wu[8] = (u32::from(w[8] as u16) | u32::from(w[17] as u16) << 16) as i32;
    // Σ |w| of the first 8 taps of each: pair sums, then the lanes added.
    let ones = _mm_set1_epi16(1);
    let sa = _mm_madd_epi16(_mm_abs_epi16(a), ones);
    let sb = _mm_madd_epi16(_mm_abs_epi16(b), ones);
    let s = _mm_hadd_epi32(sa, sb);
    let s = _mm_hadd_epi32(s, s);
    let last = |v: i16| i64::from(v.unsigned_abs());
    (
        i64::from(_mm_cvtsi128_si32(s)) + last(w[8]),
        i64::from(_mm_extract_epi32::<1>(s)) + last(w[17]),
    )
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
/// Runs the blocks of output channels, `B` of them per block (fewer in the
/// last ones, see [`block_size`]): fills a block's accumulator rows with its
/// biases, lets `step(co, cb, acc)` add the sums, and hands the rows to
/// `each`.
#[inline(always)]
fn blocks<const B: usize>(
    cos: Range<usize>,
    w: usize,
    bias: &impl Fn(usize) -> i64,
    acc: &mut [i64],
    each: &mut impl FnMut(usize, &[i64]) -> Result<()>,
    mut step: impl FnMut(usize, usize, &mut [i64]),
) -> Result<()> {
    let wp = padded(w);
    let mut co = cos.start;
    while co < cos.end {
        let cb = block_size::<B>(cos.end - co);
        for j in 0..cb {
            acc[j * wp..][..wp].fill(bias(co + j));
        }
        step(co, cb, acc);
        for j in 0..cb {
            each(co + j, &acc[j * wp..][..w])?;
        }
        co += cb;
    }
    Ok(())
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
/// The channels of the next block when `left` remain: `B`, or the largest
/// power of two below `left`.
#[inline(always)]
fn block_size<const B: usize>(left: usize) -> usize {
    if left >= B {
        B
    } else {
        1 << left.ilog2()
    }
}

/// The x86-64 kernels over channel pairs: `$name::run` is
/// [`conv_acc_rows`] with the target features `$feat`, blocks of up to `$b`
/// output channels, `$mac(acc, x, w)` adding the pair products of `x` and
/// `w` (16 `i16` each) to the 8 `i32` lanes of `acc`, and `$widen(d, s)`
/// adding the 8 `i32` lanes of `s` to the 8 `i64` at `d`.
#[cfg(target_arch = "x86_64")]
macro_rules! x86_pairs {
    ($name:ident, $feat:literal, $b:literal, $mac:expr, $widen:expr) => {
        mod $name {
            use core::arch::x86_64::*;

            use super::{blocks, gather_pairs, padded, plan_pairs, row_len, TILE};
            use crate::error::Result;

            /// [`super::conv_acc_rows`] with these target features.
            ///
            /// # Safety
            /// The CPU must support the target features; the lengths must be
            /// those [`super::conv_acc_rows`] checks.
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $feat)]
            pub unsafe fn run(
                values: &[i16],
                (cin, _, k): (usize, usize, usize),
                cos: core::ops::Range<usize>,
                input: &[i16],
                at: &impl Fn(usize, usize) -> usize,
                w: usize,
                bias: &impl Fn(usize) -> i64,
                s32: &mut [i32],
                s64: &mut [i64],
                each: &mut impl FnMut(usize, &[i64]) -> Result<()>,
            ) -> Result<()> {
                let (l, np, kk) = (row_len(w, k), cin.div_ceil(2), k * k);
                let (xb, rest) = s32.split_at_mut(np * k * l);
                let (wb, rest) = rest.split_at_mut(2 * np * kk * $b);
                let (units, rest) = rest.split_at_mut(2 * np);
                let amax = &mut rest[..cin];
                gather_pairs(cin, k, input, at, w, l, xb, amax);
                let wp = padded(w);
                blocks::<$b>(cos, w, bias, s64, each, |co, cb, acc| {
                    let a = (values, cin, k, co, &*amax, &*xb, l);
                    // SAFETY: the features are enabled in this function; `xb`
                    // holds `np·k` rows of `l ≥ wp + k − 1` values, `wb` and
                    // `units` room for `2·np` units, `acc` `cb` rows of `wp`.
                    unsafe {
                        match cb {
                            $b if k == 3 => block::<$b, 3>(a, wb, units, acc, wp),
                            $b => block::<$b, 0>(a, wb, units, acc, wp),
                            c if c == 4 => block::<4, 0>(a, wb, units, acc, wp),
                            2 => block::<2, 0>(a, wb, units, acc, wp),
                            _ => block::<1, 0>(a, wb, units, acc, wp),
                        }
                    }
                })
            }

            /// The weights, the channels and the copied rows of a block:
            /// `(values, cin, k, co, amax, xb, l)`.
            type Args<'a> = (&'a [i16], usize, usize, usize, &'a [i32], &'a [i32], usize);

            /// One block of `C` output channels from `co`; `K` is the kernel
            /// side `k` fixed at compile time, or 0.
            ///
            /// # Safety
            /// The target features; `xb` holds `⌈cin/2⌉·k` rows of
            /// `l ≥ wp + k − 1` values, `acc` `C` rows of `wp` values, `wp` is
            /// a multiple of [`TILE`], `wb` and `units` have room for
            /// `2·⌈cin/2⌉` units.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn block<const C: usize, const K: usize>(
                (values, cin, k, co, amax, xb, l): Args<'_>,
                wb: &mut [i32],
                units: &mut [i32],
                acc: &mut [i64],
                wp: usize,
            ) {
                // SAFETY: the features include AVX2.
                let n = unsafe { plan_pairs::<C>(values, cin, k * k, co, amax, wb, units) };
                let mut x = 0;
                while x < wp {
                    // SAFETY: forwarded from this function's contract;
                    // x + TILE <= wp.
                    unsafe {
                        tile::<C, K>(
                            xb.as_ptr(),
                            l,
                            k,
                            wb.as_ptr(),
                            &units[..n],
                            acc.as_mut_ptr(),
                            wp,
                            x,
                        )
                    };
                    x += TILE;
                }
            }

            /// Accumulators of columns `x .. x + TILE` of the block: per
            /// group, the `i32` sums of its units, widened into `acc`.
            ///
            /// # Safety
            /// As [`block`], `units` as [`plan_pairs`] wrote them, and
            /// `x + TILE <= wp`.
            #[allow(clippy::too_many_arguments)]
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn tile<const C: usize, const K: usize>(
                xb: *const i32,
                l: usize,
                k: usize,
                wb: *const i32,
                units: &[i32],
                acc: *mut i64,
                wp: usize,
                x: usize,
            ) {
                let k = if K > 0 { K } else { k };
                let kk = k * k;
                let mut s = [[_mm256_setzero_si256(); 2]; C];
                for (u, &info) in units.iter().enumerate() {
                    let p = (info >> 1) as usize;
                    // SAFETY: pair p < ⌈cin/2⌉ has k rows of l values in xb;
                    // unit u has k²·C weights in wb.
                    let (xr, wr) = unsafe { (xb.add(p * k * l + x), wb.add(u * kk * C)) };
                    for ky in 0..k {
                        for kx in 0..k {
                            // SAFETY: columns x + kx .. x + kx + 16 lie below
                            // wp + k − 1 <= l.
                            let (a0, a1) = unsafe {
                                let r = xr.add(ky * l + kx);
                                (
                                    _mm256_loadu_si256(r.cast()),
                                    _mm256_loadu_si256(r.add(8).cast()),
                                )
                            };
                            for (j, sj) in s.iter_mut().enumerate() {
                                // SAFETY: tap ky·k + kx < k², channel j < C.
                                let wv = unsafe { *wr.add(j * kk + ky * k + kx) };
                                let wv = _mm256_set1_epi32(wv);
                                sj[0] = $mac(sj[0], a0, wv);
                                sj[1] = $mac(sj[1], a1, wv);
                            }
                        }
                    }
                    if info & 1 != 0 {
                        for (j, sj) in s.iter_mut().enumerate() {
                            for (v, sv) in sj.iter_mut().enumerate() {
                                // SAFETY: row j < C of acc, columns
                                // x + 8v .. + 8 <= wp.
                                $widen(unsafe { acc.add(j * wp + x + 8 * v) }, *sv);
                                *sv = _mm256_setzero_si256();
                            }
                        }
                    }
                }
            }
        }
    };
}

/// Adds the 8 `i32` lanes of `s` to the 8 `i64` at `d`.
///
/// # Safety
/// AVX2; 8 writable values at `d`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn widen(d: *mut i64, s: core::arch::x86_64::__m256i) {
    use core::arch::x86_64::*;
    let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(s));
    let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(s));
    // SAFETY: forwarded from this function's contract.
    unsafe {
        _mm256_storeu_si256(d.cast(), _mm256_add_epi64(_mm256_loadu_si256(d.cast()), lo));
        let d = d.add(4).cast();
        _mm256_storeu_si256(d, _mm256_add_epi64(_mm256_loadu_si256(d), hi));
    }
}

#[cfg(target_arch = "x86_64")]
x86_pairs!(
    avx2,
    "avx2",
    4,
    |acc, x, w| _mm256_add_epi32(acc, _mm256_madd_epi16(x, w)),
    // SAFETY: AVX2 is enabled where this expands; the caller passes 8
    // writable values.
    |d, s| unsafe { super::widen(d, s) }
);

// The same with `vpdpwssd` (AVX512-VNNI on 256-bit vectors, EVEX-encoded),
// written out: the intrinsic needs a newer compiler than the one this crate
// supports, and the compiler would split it into `vpmaddwd` and `vpaddd`.
#[cfg(target_arch = "x86_64")]
x86_pairs!(
    vnni,
    "avx2",
    6,
    |mut acc: __m256i, x: __m256i, w: __m256i| {
        // SAFETY: only called after `has_vnni` found AVX512-VNNI and VL; the
        // instruction only reads and writes these registers.
        unsafe {
            core::arch::asm!(
                "vpdpwssd {a}, {x}, {w}",
                a = inout(ymm_reg) acc,
                x = in(ymm_reg) x,
                w = in(ymm_reg) w,
                options(pure, nomem, nostack, preserves_flags)
            )
        };
        acc
    },
    // SAFETY: AVX2 is enabled where this expands; the caller passes 8
    // writable values.
    |d, s| unsafe { super::widen(d, s) }
);

/// The `k` input rows of every channel, each into a row of `l` values
/// (zeros past `w + k − 1`), and each channel's largest `|x|` in `amax`.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gather(
    cin: usize,
    k: usize,
    input: &[i16],
    at: &impl Fn(usize, usize) -> usize,
    w: usize,
    l: usize,
    xb: &mut [i16],
    amax: &mut [i32],
) {
    let n = w + k - 1;
    for (ci, m) in amax[..cin].iter_mut().enumerate() {
        let mut peak = 0i32;
        for ky in 0..k {
            let dst = &mut xb[(ci * k + ky) * l..][..l];
            for (d, &a) in dst.iter_mut().zip(&input[at(ci, ky)..][..n]) {
                *d = a;
                peak = peak.max(i32::from(a).abs());
            }
            dst[n..].fill(0);
        }
        *m = peak;
    }
}

/// The units of output channels `co .. co + C`, one per input channel (see
/// the module docs): `units[u] = ci << 1 | ends a group`, and the weight of
/// unit `u`, tap `t`, channel `j` at `wb[(u·k² + t)·C + j]`. Returns the
/// unit count, `cin`.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn plan<const C: usize>(
    values: &[i16],
    cin: usize,
    kk: usize,
    co: usize,
    amax: &[i32],
    wb: &mut [i16],
    units: &mut [i32],
) -> usize {
    let mut run = [0i64; C];
    for ci in 0..cin {
        let cost: [i64; C] = core::array::from_fn(|j| {
            l1(&values[((co + j) * cin + ci) * kk..][..kk]) * i64::from(amax[ci])
        });
        group(units, ci, &mut run, &cost);
        units[ci] = (ci << 1) as i32;
        let wu = &mut wb[ci * kk * C..][..kk * C];
        for t in 0..kk {
            for j in 0..C {
                wu[t * C + j] = values[((co + j) * cin + ci) * kk + t];
            }
        }
    }
    units[cin - 1] |= 1;
    cin
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use core::arch::aarch64::*;

    use super::{blocks, gather, padded, plan, row_len, TILE};
    use crate::error::Result;

    /// Output channels of a block.
    const B: usize = 4;

    /// [`super::conv_acc_rows`] with NEON.
    ///
    /// # Safety
    /// The lengths must be those [`super::conv_acc_rows`] checks.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "neon")]
    pub unsafe fn run(
        values: &[i16],
        (cin, _, k): (usize, usize, usize),
        cos: core::ops::Range<usize>,
        input: &[i16],
        at: &impl Fn(usize, usize) -> usize,
        w: usize,
        bias: &impl Fn(usize) -> i64,
        s32: &mut [i32],
        s64: &mut [i64],
        each: &mut impl FnMut(usize, &[i64]) -> Result<()>,
    ) -> Result<()> {
        let (l, np, kk) = (row_len(w, k), cin.div_ceil(2), k * k);
        let (xb, rest) = s32.split_at_mut(np * k * l);
        let (wb, rest) = rest.split_at_mut(np * kk * B);
        let (units, rest) = rest.split_at_mut(cin);
        let amax = &mut rest[..cin];
        // SAFETY: the same memory as `i16` values, twice as many (`i16`
        // alignment divides `i32`'s, every bit pattern is a valid `i16`):
        // `cin·k·l ≤ 2·np·k·l` and `cin·k²·B ≤ 2·np·k²·B` fit.
        let (xb, wb) = unsafe {
            (
                core::slice::from_raw_parts_mut(xb.as_mut_ptr().cast::<i16>(), 2 * xb.len()),
                core::slice::from_raw_parts_mut(wb.as_mut_ptr().cast::<i16>(), 2 * wb.len()),
            )
        };
        gather(cin, k, input, at, w, l, xb, amax);
        let wp = padded(w);
        blocks::<B>(cos, w, bias, s64, each, |co, cb, acc| {
            let a = (values, cin, k, co, &*amax, &*xb, l);
            // SAFETY: `xb` holds `cin·k` rows of `l ≥ wp + k − 1` values,
            // `wb` and `units` room for `cin` units, `acc` `cb` rows of `wp`.
            unsafe {
                match cb {
                    B if k == 3 => block::<B, 3>(a, wb, units, acc, wp),
                    B => block::<B, 0>(a, wb, units, acc, wp),
                    2 => block::<2, 0>(a, wb, units, acc, wp),
                    _ => block::<1, 0>(a, wb, units, acc, wp),
                }
            }
        })
    }

    /// The weights, the channels and the copied rows of a block:
    /// `(values, cin, k, co, amax, xb, l)`.
    type Args<'a> = (&'a [i16], usize, usize, usize, &'a [i32], &'a [i16], usize);

    /// One block of `C` output channels from `co`; `K` is the kernel side
    /// `k` fixed at compile time, or 0.
    ///
    /// # Safety
    /// `xb` holds `cin·k` rows of `l ≥ wp + k − 1` values, `acc` `C` rows of
    /// `wp` values, `wp` is a multiple of [`TILE`], `wb` and `units` have
    /// room for `cin` units.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn block<const C: usize, const K: usize>(
        (values, cin, k, co, amax, xb, l): Args<'_>,
        wb: &mut [i16],
        units: &mut [i32],
        acc: &mut [i64],
        wp: usize,
    ) {
        let n = plan::<C>(values, cin, k * k, co, amax, wb, units);
        let mut x = 0;
        while x < wp {
            // SAFETY: forwarded from this function's contract; x + TILE <= wp.
            unsafe {
                tile::<C, K>(
                    xb.as_ptr(),
                    l,
                    k,
                    wb.as_ptr(),
                    &units[..n],
                    acc.as_mut_ptr(),
                    wp,
                    x,
                )
            };
            x += TILE;
        }
    }

    /// Accumulators of columns `x .. x + TILE` of the block: per group, the
    /// `i32` sums of its units, widened into `acc`.
    ///
    /// # Safety
    /// As [`block`], `units` as [`plan`] wrote them, and `x + TILE <= wp`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn tile<const C: usize, const K: usize>(
        xb: *const i16,
        l: usize,
        k: usize,
        wb: *const i16,
        units: &[i32],
        acc: *mut i64,
        wp: usize,
        x: usize,
    ) {
        let k = if K > 0 { K } else { k };
        let kk = k * k;
        let mut s = [[vdupq_n_s32(0); 4]; C];
        for (u, &info) in units.iter().enumerate() {
            let ci = (info >> 1) as usize;
            // SAFETY: channel ci < cin has k rows of l values in xb; unit u
            // has k²·C weights in wb.
            let (xr, wr) = unsafe { (xb.add(ci * k * l + x), wb.add(u * kk * C)) };
            for ky in 0..k {
                for kx in 0..k {
                    // SAFETY: columns x + kx .. x + kx + 16 lie below
                    // wp + k − 1 <= l.
                    let (a0, a1) = unsafe {
                        let r = xr.add(ky * l + kx);
                        (vld1q_s16(r), vld1q_s16(r.add(8)))
                    };
                    for (j, sj) in s.iter_mut().enumerate() {
                        // SAFETY: tap ky·k + kx < k², channel j < C.
                        let wv = unsafe { *wr.add((ky * k + kx) * C + j) };
                        sj[0] = vmlal_n_s16(sj[0], vget_low_s16(a0), wv);
                        sj[1] = vmlal_high_n_s16(sj[1], a0, wv);
                        sj[2] = vmlal_n_s16(sj[2], vget_low_s16(a1), wv);
                        sj[3] = vmlal_high_n_s16(sj[3], a1, wv);
                    }
                }
            }
            if info & 1 != 0 {
                for (j, sj) in s.iter_mut().enumerate() {
                    for (v, sv) in sj.iter_mut().enumerate() {
                        // SAFETY: row j < C of acc, columns x + 4v .. + 4 <= wp.
                        unsafe {
                            let d = acc.add(j * wp + x + 4 * v);
                            vst1q_s64(d, vaddw_s32(vld1q_s64(d), vget_low_s32(*sv)));
                            vst1q_s64(d.add(2), vaddw_high_s32(vld1q_s64(d.add(2)), *sv));
                        }
                        *sv = vdupq_n_s32(0);
                    }
                }
            }
        }
    }
}

/// Whether the CPU runs AVX-512 VNNI on 256-bit vectors (AVX512F, VL, BW
/// and VNNI, with the OS saving the AVX-512 state), detected once.
#[cfg(target_arch = "x86_64")]
fn has_vnni() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    use core::sync::atomic::{AtomicU8, Ordering};

    /// # Safety
    /// The CPU must support XSAVE with OSXSAVE set.
    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        // SAFETY: forwarded from this function's contract.
        unsafe { core::arch::x86_64::_xgetbv(0) }
    }

    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        1 => return false,
        2 => return true,
        _ => {}
    }
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU.
    let max = unsafe { __cpuid(0) }.eax;
    let yes = max >= 7 && {
        #[allow(unused_unsafe)]
        // SAFETY: leaf 1 exists.
        let l1 = unsafe { __cpuid(1) };
        // OSXSAVE, then XCR0: SSE, AVX, opmask, ZMM upper halves, ZMM16-31.
        // SAFETY: OSXSAVE is checked first, so XGETBV exists.
        l1.ecx & (1 << 27) != 0 && unsafe { xcr0() } & 0xe6 == 0xe6 && {
            #[allow(unused_unsafe)]
            // SAFETY: leaf 7 exists (max >= 7).
            let l7 = unsafe { __cpuid_count(7, 0) };
            let ebx = (1 << 16) | (1 << 30) | (1 << 31);
            l7.ebx & ebx == ebx && l7.ecx & (1 << 11) != 0
        }
    };
    KNOWN.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
    yes
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        /// Uniform in `-m ..= m`.
        fn sym(&mut self, m: i32) -> i16 {
            ((self.next() % (2 * m as u64 + 1)) as i32 - m) as i16
        }
    }

    const IN: usize = 8192;
    const OUT: usize = 4096;

    /// A layer's weights: per channel pair random taps, the extreme
    /// `Σ |w| = 65535` (two taps of ±32767 and one of ±1), or zeros.
    fn weights(rng: &mut Rng, values: &mut [i16], kk: usize) {
        for pair in values.chunks_exact_mut(kk) {
            match rng.next() % 4 {
                0 if kk >= 3 => {
                    pair.fill(0);
                    for (i, v) in [32767i16, 32767, 1].into_iter().enumerate() {
                        let t = (i + rng.next() as usize) % kk;
                        let t = (t..kk).chain(0..t).find(|&t| pair[t] == 0).unwrap_or(t);
                        pair[t] = if rng.next() % 2 == 0 { v } else { -v };
                    }
                }
                1 => pair.fill(0),
                _ => {
                    let m = (65535 / kk).min(32767) as i32;
                    for v in pair.iter_mut() {
                        *v = rng.sym(m);
                    }
                }
            }
        }
    }

    /// Input rows: random over the whole range, at ±32767, or small.
    fn activations(rng: &mut Rng, input: &mut [i16]) {
        let mode = rng.next() % 3;
        for v in input.iter_mut() {
            *v = match mode {
                0 => rng.sym(32767),
                1 => {
                    if rng.next() % 2 == 0 {
                        32767
                    } else {
                        -32767
                    }
                }
                _ => rng.sym(300),
            };
        }
    }

    /// A layer and its input rows `(ci, ky)` at `(ci·k + ky)·stride`.
    struct Case<'a> {
        values: &'a [i16],
        dims: (usize, usize, usize),
        input: &'a [i16],
        stride: usize,
        w: usize,
        /// The output channels are computed in two calls, `..split` and
        /// `split..` (the reference: in one).
        split: usize,
    }

    /// `conv_acc_rows` of `isa` into `out` (`cout` rows of `w`); input rows
    /// `(ci, ky)` at `(ci·k + ky)·stride`.
    fn with_isa(isa: Isa) -> impl Fn(&Case<'_>, &mut [i64]) {
        move |c, out| {
            let (values, (cin, cout, k), input, stride, w) =
                (c.values, c.dims, c.input, c.stride, c.w);
            let (mut s32, mut s64) = ([0i32; 40000], [0i64; 4096]);
            let at = |ci: usize, ky: usize| (ci * k + ky) * stride;
            let bias = |co: usize| (co as i64 - 3) * 1_000_000_007;
            let parts = if isa == Isa::Generic {
                [0..cout, cout..cout]
            } else {
                [0..c.split, c.split..cout]
            };
            for cos in parts {
                conv_acc_rows(
                    isa,
                    values,
                    (cin, cout, k),
                    cos,
                    input,
                    at,
                    w,
                    bias,
                    &mut s32,
                    &mut s64,
                    |co, acc| {
                        out[co * w..][..w].copy_from_slice(acc);
                        Ok(())
                    },
                )
                .unwrap();
            }
        }
    }

    /// Random layers, widths and values: `kernel` and the reference agree
    /// exactly.
    fn agrees(kernel: &dyn Fn(&Case<'_>, &mut [i64])) {
        let mut rng = Rng(99);
        let mut values = [0i16; 13 * 70 * 25];
        let mut input = [0i16; IN];
        let reference = with_isa(Isa::Generic);
        let mut ran = 0;
        for case in 0..300 {
            let k = [3, 3, 1, 5, 7][case % 5];
            let cin = [1, 2, 3, 5, 8, 17, 64, 70][rng.next() as usize % 8];
            let cout = [1, 2, 3, 4, 5, 8, 9, 13][rng.next() as usize % 8];
            let w = [1, 2, 7, 8, 15, 16, 17, 33, 40, 61][rng.next() as usize % 10];
            let stride = w + k - 1 + (rng.next() % 3) as usize;
            if cin * k * stride > IN || cout * w > OUT || cout * cin * k * k > values.len() {
                continue;
            }
            let vals = &mut values[..cout * cin * k * k];
            weights(&mut rng, vals, k * k);
            activations(&mut rng, &mut input[..cin * k * stride]);
            let (mut want, mut got) = ([0i64; OUT], [0i64; OUT]);
            let x = &input[..cin * k * stride];
            let c = Case {
                values: vals,
                dims: (cin, cout, k),
                input: x,
                stride,
                w,
                split: rng.next() as usize % (cout + 1),
            };
            reference(&c, &mut want);
            kernel(&c, &mut got);
            assert!(
                want[..cout * w] == got[..cout * w],
                "case {case}: cin {cin} cout {cout} k {k} w {w}"
            );
            ran += 1;
        }
        assert!(ran > 200, "{ran} cases");
    }

    #[test]
    fn the_detected_kernel_matches_the_reference_exactly() {
        agrees(&with_isa(Isa::detect()));
    }

    #[cfg(target_arch = "x86_64")]
    fn x86(vnni: bool) -> impl Fn(&Case<'_>, &mut [i64]) {
        move |c, out| {
            let (values, (cin, cout, k), input, stride, w) =
                (c.values, c.dims, c.input, c.stride, c.w);
            let (mut s32, mut s64) = ([0i32; 40000], [0i64; 4096]);
            let at = |ci: usize, ky: usize| (ci * k + ky) * stride;
            let bias = |co: usize| (co as i64 - 3) * 1_000_000_007;
            let mut each = |co: usize, acc: &[i64]| {
                out[co * w..][..w].copy_from_slice(acc);
                Ok(())
            };
            let dims = (cin, cout, k);
            for cos in [0..c.split, c.split..cout] {
                let (a, b) = (&mut s32[..], &mut s64[..]);
                // SAFETY: the callers checked the CPU; the buffers are the
                // lengths `conv_acc_rows` checks (the same test runs it).
                unsafe {
                    if vnni {
                        vnni::run(values, dims, cos, input, &at, w, &bias, a, b, &mut each)
                    } else {
                        avx2::run(values, dims, cos, input, &at, w, &bias, a, b, &mut each)
                    }
                }
                .unwrap();
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_vnni_kernels_match_the_reference_exactly() {
        if let Isa::Avx2Fma(_) = Isa::detect() {
            agrees(&x86(false));
            if has_vnni() {
                agrees(&x86(true));
            }
        }
    }

    #[test]
    fn requantised_rows_match_the_reference_exactly() {
        let mut rng = Rng(5);
        for case in 0..400 {
            let n = 1 + (rng.next() % 70) as usize;
            let mut acc = [0i64; 70];
            for a in acc[..n].iter_mut() {
                let big = (rng.next() << 16 | rng.next()) as i64 % (1 << 47);
                *a = match rng.next() % 3 {
                    0 => big,
                    1 => i64::from(rng.sym(32767)) * 3,
                    _ => -big,
                };
            }
            let mut r = [0i16; 70];
            for v in r[..n].iter_mut() {
                *v = rng.sym(32767);
            }
            let real = |rng: &mut Rng| 2f64.powf((rng.next() % 6000) as f64 / 100.0 - 47.0);
            let m = fixed::Mult::new(real(&mut rng)).unwrap();
            let rm = fixed::Mult::new(real(&mut rng).min(8000.0)).unwrap();
            let relu = case % 2 == 0;
            let res = (case % 3 != 0).then_some((&r[..n], rm));
            let (mut want, mut got) = ([0i16; 70], [0i16; 70]);
            fixed::finish_row(Isa::Generic, &acc[..n], m, relu, res, &mut want[..n]);
            fixed::finish_row(Isa::detect(), &acc[..n], m, relu, res, &mut got[..n]);
            assert_eq!(want[..n], got[..n], "case {case}");
        }
    }
}
