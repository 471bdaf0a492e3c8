//! The continuous nearest-neighbour relaxation (paper, section 3).
//!
//! From logits `l¹ = α / t` (α = −distance), for `j = 1..k`:
//! `wʲ = softmax(lʲ)` and `lʲ⁺¹ = lʲ + log(1 − wʲ)`. `wʲ` are the weights of the
//! `j`-th continuous neighbour; as `t → 0` they become one-hot on the exact
//! `j`-th nearest neighbour.

use crate::error::{Error, ErrorKind, Result};
use crate::kernels::Isa;
use crate::math::{exp, exp_m1, ln, ln_1p};

/// Lower bound of `log(1 − w)`: a candidate taken with weight exactly 1 gets
/// this finite logit penalty instead of `−∞`, so later softmaxes stay defined
/// even when every candidate has been taken.
pub const LOG1MEXP_FLOOR: f32 = -1.0e30;

/// `log(1 − exp(u))` for `u ≤ 0`, computed stably (Mächler's `log1mexp`):
/// `log1p(−exp(u))` below `ln ½`, `log(−expm1(u))` above. Never below
/// [`LOG1MEXP_FLOOR`], so it is finite as `exp(u) → 1`.
pub fn log1mexp(u: f32) -> f32 {
    log1mexp_given(u, exp(u))
}

/// [`log1mexp`] when `e = exp(u)` is already known (the softmax weight).
fn log1mexp_given(u: f32, e: f32) -> f32 {
    let v = if u < -core::f32::consts::LN_2 {
        ln_1p(-e)
    } else {
        ln(-exp_m1(u))
    };
    if v >= LOG1MEXP_FLOOR {
        v
    } else {
        LOG1MEXP_FLOOR
    }
}

/// Runs the `k` relaxation steps on `logits` (already divided by the
/// temperature; overwritten), writing `k` weight vectors of `logits.len()`
/// values each, one after the other, into `weights`.
///
/// Each weight vector sums to 1 (up to rounding). The softmax denominator
/// is summed in 8 interleaved partial sums (value `i` into sum `i mod 8`),
/// added up pairwise at the end, so that vector kernels
/// ([`relax_logits_with`]) give the same bits.
pub fn relax_logits(logits: &mut [f32], k: usize, weights: &mut [f32]) -> Result<()> {
    relax_logits_with(Isa::Generic, logits, k, weights)
}

/// [`relax_logits`] with the kernel of instruction set `isa`: the same bits
/// with every one.
pub fn relax_logits_with(
    isa: Isa,
    logits: &mut [f32],
    k: usize,
    weights: &mut [f32],
) -> Result<()> {
    let n = logits.len();
    if n == 0 || k.checked_mul(n) != Some(weights.len()) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "relax: need k·n weights and n > 0",
        ));
    }
    if !logits.iter().all(|v| v.is_finite()) {
        return Err(Error::new(
            ErrorKind::NonFiniteInput,
            "relax: logits must be finite",
        ));
    }
    for w in weights.chunks_exact_mut(n) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` proves AVX2; `w` is as long as `logits`.
            Isa::Avx2Fma(_) => unsafe { avx2::step(logits, w) },
            _ => step(logits, w),
        }
    }
    Ok(())
}

/// One relaxation step from `from` on: the softmax of `logits` into `w`
/// and the logits of the next step, for values `from..` (the maximum `m`
/// and the log of the softmax denominator `log_sum` given).
#[inline]
fn step_tail(logits: &mut [f32], w: &mut [f32], m: f32, log_sum: f32, from: usize) {
    for (l, wi) in logits[from..].iter_mut().zip(&mut w[from..]) {
        let u = ((*l - m) - log_sum).min(0.0);
        *wi = exp(u);
        *l += log1mexp_given(u, *wi);
    }
}

/// The softmax denominator from its 8 partial sums.
#[inline]
fn add_partial_sums(acc: &[f32; 8]) -> f32 {
    let s4: [f32; 4] = core::array::from_fn(|l| acc[l] + acc[l + 4]);
    (s4[0] + s4[2]) + (s4[1] + s4[3])
}

/// One relaxation step (plain reference kernel).
fn step(logits: &mut [f32], w: &mut [f32]) {
    // Log-softmax relative to the maximum, so that logits far below zero
    // (candidates already taken) keep their differences.
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut acc = [0.0f32; 8];
    for (i, &l) in logits.iter().enumerate() {
        acc[i % 8] += exp(l - m);
    }
    let log_sum = ln(add_partial_sums(&acc));
    step_tail(logits, w, m, log_sum, 0);
}

/// The relaxation step with AVX2: `crate::math`'s functions evaluated
/// lane by lane with the same operations in the same order (no fused
/// multiply-adds), every branch a select.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;
    use core::f32::consts::{LN_2, LOG2_E};

    use super::{add_partial_sums, exp, ln, step_tail, LOG1MEXP_FLOOR};

    // The constants of `crate::math`.
    const LN2_HI: f32 = 45_426.0 / 65_536.0;
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
    const EXP_UNDERFLOW: f32 = -104.0;
    const EXP_M1_MINUS_ONE: f32 = -18.0;
    const TINY: f32 = 1.0 / 16_777_216.0;
    const E2: f32 = 1.0 / 2.0;
    const E3: f32 = 1.0 / 6.0;
    const E4: f32 = 1.0 / 24.0;
    const E5: f32 = 1.0 / 120.0;
    const E6: f32 = 1.0 / 720.0;
    const E7: f32 = 1.0 / 5040.0;
    const L3: f32 = 2.0 / 3.0;
    const L5: f32 = 2.0 / 5.0;
    const L7: f32 = 2.0 / 7.0;
    const L9: f32 = 2.0 / 9.0;
    const LN_1P_NEAR_LO: f32 = -0.292;

    /// One relaxation step, the same bits as `super::step`.
    ///
    /// # Safety
    /// AVX2 must be available; `w` must be as long as `logits`, whose
    /// values are finite.
    #[target_feature(enable = "avx2")]
    pub unsafe fn step(logits: &mut [f32], w: &mut [f32]) {
        let n = logits.len();
        let full = n - n % 8;
        let lp = logits.as_mut_ptr();
        let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
        for i in (0..full).step_by(8) {
            // SAFETY: i + 8 <= full <= n.
            mv = _mm256_max_ps(mv, unsafe { _mm256_loadu_ps(lp.add(i)) });
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 values.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mv) };
        let m = lanes
            .iter()
            .chain(&logits[full..])
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let mvec = _mm256_set1_ps(m);
        let mut acc = _mm256_setzero_ps();
        for i in (0..full).step_by(8) {
            // SAFETY: i + 8 <= full <= n.
            let l = unsafe { _mm256_loadu_ps(lp.add(i)) };
            acc = _mm256_add_ps(acc, exp_nonpositive(_mm256_sub_ps(l, mvec)));
        }
        // SAFETY: `lanes` holds 8 values.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        for (a, &l) in lanes.iter_mut().zip(&logits[full..]) {
            *a += exp(l - m);
        }
        let log_sum = ln(add_partial_sums(&lanes));
        let ls = _mm256_set1_ps(log_sum);
        let zero = _mm256_setzero_ps();
        for i in (0..full).step_by(8) {
            // SAFETY: i + 8 <= full <= n = w.len().
            unsafe {
                let l = _mm256_loadu_ps(lp.add(i));
                let u = _mm256_min_ps(_mm256_sub_ps(_mm256_sub_ps(l, mvec), ls), zero);
                let e = exp_nonpositive(u);
                _mm256_storeu_ps(w.as_mut_ptr().add(i), e);
                _mm256_storeu_ps(lp.add(i), _mm256_add_ps(l, log1mexp_given(u, e)));
            }
        }
        step_tail(logits, w, m, log_sum, full);
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn splat(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }

    /// `crate::math::exp`'s reduction: `(k, r, t)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn exp_reduce(x: __m256) -> (__m256i, __m256, __m256) {
        let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
        let half = _mm256_blendv_ps(splat(0.5), splat(-0.5), neg);
        let k = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(x, splat(LOG2_E)), half));
        let kf = _mm256_cvtepi32_ps(k);
        let head = _mm256_sub_ps(x, _mm256_mul_ps(kf, splat(LN2_HI)));
        let tail = _mm256_mul_ps(kf, splat(LN2_LO));
        let r = _mm256_sub_ps(head, tail);
        let r_err = _mm256_sub_ps(_mm256_sub_ps(head, r), tail);
        let mut q = _mm256_mul_ps(r, splat(E7));
        for c in [E6, E5, E4, E3] {
            q = _mm256_mul_ps(r, _mm256_add_ps(splat(c), q));
        }
        let q = _mm256_add_ps(splat(E2), q);
        let t = _mm256_add_ps(r_err, _mm256_mul_ps(_mm256_mul_ps(r, r), q));
        (k, r, t)
    }

    /// `2ᵏ` for `−126 ≤ k ≤ 127`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn pow2(k: __m256i) -> __m256 {
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            k,
            _mm256_set1_epi32(127),
        )))
    }

    /// `crate::math::add_to_one`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn add_to_one(r: __m256) -> (__m256, __m256) {
        let u = _mm256_add_ps(splat(1.0), r);
        (u, _mm256_add_ps(_mm256_sub_ps(splat(1.0), u), r))
    }

    /// `crate::math::two_sum`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn two_sum(a: __m256, b: __m256) -> (__m256, __m256) {
        let s = _mm256_add_ps(a, b);
        let b_part = _mm256_sub_ps(s, a);
        let err = _mm256_add_ps(
            _mm256_sub_ps(a, _mm256_sub_ps(s, b_part)),
            _mm256_sub_ps(b, b_part),
        );
        (s, err)
    }

    /// `crate::math::exp` of values `x ≤ 0` (not NaN).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn exp_nonpositive(x: __m256) -> __m256 {
        let (k, r, t) = exp_reduce(x);
        let (u, u_err) = add_to_one(r);
        let y = _mm256_add_ps(u, _mm256_add_ps(u_err, t));
        // `scale`: y·2ᵏ, or y·2ᵏ⁺⁶⁴·2⁻⁶⁴ below 2⁻¹²⁶ (here y·2ᵏ·1 is the
        // same product).
        let small = _mm256_cmpgt_epi32(_mm256_set1_epi32(-126), k);
        let ka = _mm256_add_epi32(k, _mm256_and_si256(small, _mm256_set1_epi32(64)));
        let kb = _mm256_blendv_ps(
            splat(1.0),
            splat(f32::from_bits(63 << 23)),
            _mm256_castsi256_ps(small),
        );
        let v = _mm256_mul_ps(_mm256_mul_ps(y, pow2(ka)), kb);
        let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(EXP_UNDERFLOW));
        _mm256_andnot_ps(under, v)
    }

    /// `|x|`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn abs(x: __m256) -> __m256 {
        _mm256_andnot_ps(splat(-0.0), x)
    }

    /// `crate::math::exp_m1` of values `x ≤ 0` (not NaN).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn exp_m1_nonpositive(x: __m256) -> __m256 {
        let (k, r, t) = exp_reduce(x);
        let (u, u_err) = add_to_one(r);
        let p = pow2(k);
        let (hi, hi_err) = two_sum(_mm256_mul_ps(p, u), splat(-1.0));
        let v = _mm256_add_ps(
            hi,
            _mm256_add_ps(hi_err, _mm256_mul_ps(p, _mm256_add_ps(u_err, t))),
        );
        let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(abs(x), splat(TINY));
        let v = _mm256_blendv_ps(v, x, tiny);
        let low = _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(EXP_M1_MINUS_ONE));
        _mm256_blendv_ps(v, splat(-1.0), low)
    }

    /// `crate::math::split` of positive normal values: `(e, f)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn split(x: __m256) -> (__m256i, __m256) {
        let bits = _mm256_castps_si256(x);
        let e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(127));
        let mantissa = _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff));
        let big = _mm256_cmpgt_epi32(mantissa, _mm256_set1_epi32(0x0035_04f3));
        let exponent = _mm256_blendv_epi8(
            _mm256_set1_epi32(0x3f80_0000),
            _mm256_set1_epi32(0x3f00_0000),
            big,
        );
        let f = _mm256_sub_ps(
            _mm256_castsi256_ps(_mm256_or_si256(mantissa, exponent)),
            splat(1.0),
        );
        (_mm256_sub_epi32(e, big), f)
    }

    /// `crate::math::ln_reduced`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn ln_reduced(e: __m256i, f: __m256, c: __m256) -> __m256 {
        let ef = _mm256_cvtepi32_ps(e);
        let s = _mm256_div_ps(f, _mm256_add_ps(splat(2.0), f));
        let z = _mm256_mul_ps(s, s);
        let mut r = _mm256_mul_ps(z, splat(L9));
        for c in [L7, L5] {
            r = _mm256_mul_ps(z, _mm256_add_ps(splat(c), r));
        }
        let r = _mm256_mul_ps(z, _mm256_add_ps(splat(L3), r));
        let half_f2 = _mm256_mul_ps(_mm256_mul_ps(splat(0.5), f), f);
        let inner = _mm256_add_ps(
            _mm256_mul_ps(s, _mm256_add_ps(half_f2, r)),
            _mm256_add_ps(_mm256_mul_ps(ef, splat(LN2_LO)), c),
        );
        _mm256_add_ps(
            _mm256_mul_ps(ef, splat(LN2_HI)),
            _mm256_sub_ps(f, _mm256_sub_ps(half_f2, inner)),
        )
    }

    /// `crate::math::ln` of values `0 ≤ x < ∞`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn ln_nonnegative(x: __m256) -> __m256 {
        let sub = _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(f32::MIN_POSITIVE));
        let xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, splat(33_554_432.0)), sub);
        let (e, f) = split(xs);
        let e = _mm256_sub_epi32(
            e,
            _mm256_and_si256(_mm256_castps_si256(sub), _mm256_set1_epi32(25)),
        );
        let v = ln_reduced(e, f, _mm256_setzero_ps());
        let zero = _mm256_cmp_ps::<_CMP_EQ_OQ>(x, _mm256_setzero_ps());
        _mm256_blendv_ps(v, splat(f32::NEG_INFINITY), zero)
    }

    /// `crate::math::ln_1p` of values `−1 < x ≤ 0`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn ln_1p_nonpositive(x: __m256) -> __m256 {
        let (u, c) = two_sum(splat(1.0), x);
        let (e, f) = split(u);
        let near = _mm256_cmp_ps::<_CMP_LT_OQ>(splat(LN_1P_NEAR_LO), x);
        let e = _mm256_andnot_si256(_mm256_castps_si256(near), e);
        let f = _mm256_blendv_ps(f, x, near);
        let c = _mm256_andnot_ps(near, _mm256_div_ps(c, u));
        let v = ln_reduced(e, f, c);
        let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(abs(x), splat(TINY));
        _mm256_blendv_ps(v, x, tiny)
    }

    /// `−x`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn neg(x: __m256) -> __m256 {
        _mm256_xor_ps(x, splat(-0.0))
    }

    /// `super::log1mexp_given` of `u ≤ 0` and `e = exp(u)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn log1mexp_given(u: __m256, e: __m256) -> __m256 {
        let low = _mm256_cmp_ps::<_CMP_LT_OQ>(u, splat(-LN_2));
        let bits = _mm256_movemask_ps(low);
        let v = if bits == 0xff {
            ln_1p_nonpositive(neg(e))
        } else if bits == 0 {
            ln_nonnegative(neg(exp_m1_nonpositive(u)))
        } else {
            _mm256_blendv_ps(
                ln_nonnegative(neg(exp_m1_nonpositive(u))),
                ln_1p_nonpositive(neg(e)),
                low,
            )
        };
        let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(v, splat(LOG1MEXP_FLOOR));
        _mm256_blendv_ps(splat(LOG1MEXP_FLOOR), v, keep)
    }
}

/// The whole relaxation from squared distances: logits `−d / t`, then
/// [`relax_logits`]. `logits` is scratch of `distances.len()` values.
///
/// ```
/// use n3net_core::n3::relax::continuous_knn;
/// let d = [4.0, 1.0, 9.0, 0.25];
/// let (mut l, mut w) = ([0.0; 4], [0.0; 8]);
/// continuous_knn(&d, 1e-3, 2, &mut l, &mut w).unwrap();
/// // Nearly hard KNN at a tiny temperature: first the 4th, then the 2nd point.
/// assert!(w[3] > 0.999 && w[4 + 1] > 0.999);
/// let s: f32 = w[..4].iter().sum();
/// assert!((s - 1.0).abs() < 1e-6);
/// ```
pub fn continuous_knn(
    distances: &[f32],
    temperature: f32,
    k: usize,
    logits: &mut [f32],
    weights: &mut [f32],
) -> Result<()> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "relax: temperature must be finite and > 0",
        ));
    }
    if logits.len() != distances.len() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "relax: logits scratch length",
        ));
    }
    for (l, d) in logits.iter_mut().zip(distances) {
        *l = -*d / temperature;
    }
    relax_logits(logits, k, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(state: &mut u64) -> f32 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 40) as f32) / (1u64 << 24) as f32
    }

    #[test]
    fn weights_sum_to_one() {
        let mut s = 7;
        for &(n, k, t) in &[
            (224usize, 7usize, 0.5f32),
            (10, 3, 10.0),
            (3, 7, 0.01),
            (1, 2, 1.0),
        ] {
            let d: [f32; 224] = core::array::from_fn(|_| 10.0 * lcg(&mut s));
            let mut l = [0.0; 224];
            let mut w = [0.0; 224 * 7];
            continuous_knn(&d[..n], t, k, &mut l[..n], &mut w[..n * k]).unwrap();
            for wj in w[..n * k].chunks(n) {
                let sum: f32 = wj.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
                assert!(wj.iter().all(|v| v.is_finite() && *v >= 0.0));
            }
        }
    }

    #[test]
    fn zero_temperature_is_hard_knn() {
        let mut s = 11;
        let d: [f32; 50] = core::array::from_fn(|_| lcg(&mut s));
        let mut order: [usize; 50] = core::array::from_fn(|i| i);
        order.sort_unstable_by(|&a, &b| d[a].partial_cmp(&d[b]).unwrap());
        let k = 7;
        let (mut l, mut w) = ([0.0; 50], [0.0; 350]);
        continuous_knn(&d, 1e-6, k, &mut l, &mut w).unwrap();
        for j in 0..k {
            let wj = &w[j * 50..(j + 1) * 50];
            let arg = (0..50)
                .max_by(|&a, &b| wj[a].partial_cmp(&wj[b]).unwrap())
                .unwrap();
            assert_eq!(arg, order[j], "neighbour {j}");
            assert!(wj[arg] > 0.999_999);
        }
    }

    #[test]
    fn log1mexp_is_stable_near_one() {
        for &u in &[
            -1e-30f32, -1e-12, -1e-7, -0.1, -0.69, -0.7, -5.0, -80.0, -1e4,
        ] {
            let v = log1mexp(u);
            assert!(v.is_finite(), "u {u}");
            let naive = libm::log(1.0 - libm::exp(u as f64)) as f32;
            if naive.is_finite() {
                assert!(
                    (v - naive).abs() <= 1e-5 * naive.abs().max(1.0),
                    "u {u}: {v} vs {naive}"
                );
            }
        }
        // w = 1 exactly: finite floor, not -inf.
        assert_eq!(log1mexp(0.0), LOG1MEXP_FLOOR);
        assert!(log1mexp(-1e-30) < -60.0);
    }

    /// Logits of every kind a relaxation meets: spread, tied, tiny, far
    /// below the others (taken candidates) and zero.
    fn logits(s: &mut u64, n: usize, out: &mut [f32]) {
        for (i, l) in out[..n].iter_mut().enumerate() {
            let v = lcg(s);
            *l = match i % 7 {
                0 => -200.0 * v,
                1 => -1e-9 * v,
                2 => 0.0,
                3 => LOG1MEXP_FLOOR * v,
                4 => 30.0 * v - 15.0,
                5 => -3.0,
                _ => -1e-40 * v,
            };
        }
    }

    #[test]
    fn every_isa_relaxes_to_the_same_bits() {
        let mut s = 13;
        let isa = Isa::detect();
        for &(n, k) in &[
            (224usize, 7usize),
            (224, 7),
            (31, 7),
            (8, 3),
            (5, 2),
            (1, 1),
            (17, 7),
        ] {
            for scale in [1.0f32, 1e-3, 1e3] {
                let mut a = [0.0f32; 224];
                logits(&mut s, n, &mut a);
                for v in a[..n].iter_mut() {
                    *v *= scale;
                }
                let mut b = a;
                let (mut wa, mut wb) = ([0.0f32; 224 * 7], [0.0f32; 224 * 7]);
                relax_logits(&mut a[..n], k, &mut wa[..n * k]).unwrap();
                relax_logits_with(isa, &mut b[..n], k, &mut wb[..n * k]).unwrap();
                let same =
                    |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same(&wa[..n * k], &wb[..n * k]), "weights n {n} k {k}");
                assert!(same(&a[..n], &b[..n]), "logits n {n} k {k}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_functions_are_the_scalar_ones() {
        use core::arch::x86_64::*;
        if !matches!(Isa::detect(), Isa::Avx2Fma(_)) {
            return;
        }
        let check = |xs: &[f32; 8]| {
            let mut got = [[0.0f32; 8]; 4];
            // SAFETY: AVX2 was detected; every array holds 8 values.
            unsafe {
                let x = _mm256_loadu_ps(xs.as_ptr());
                let neg = _mm256_xor_ps(x, _mm256_set1_ps(-0.0));
                _mm256_storeu_ps(got[0].as_mut_ptr(), avx2::exp_nonpositive(x));
                _mm256_storeu_ps(got[1].as_mut_ptr(), avx2::exp_m1_nonpositive(x));
                _mm256_storeu_ps(got[2].as_mut_ptr(), avx2::ln_nonnegative(neg));
                let y = _mm256_max_ps(x, _mm256_set1_ps(-0.999_99));
                _mm256_storeu_ps(got[3].as_mut_ptr(), avx2::ln_1p_nonpositive(y));
            }
            for (l, &x) in xs.iter().enumerate() {
                let want = [exp(x), exp_m1(x), ln(-x), ln_1p(x.max(-0.999_99))];
                for (f, w) in want.iter().enumerate() {
                    assert_eq!(got[f][l].to_bits(), w.to_bits(), "function {f} at {x:e}");
                }
            }
        };
        // Every 97th f32 from −0 down to −∞, and small magnitudes densely.
        let mut xs = [0.0f32; 8];
        let mut at = 0;
        let mut bits = 0x8000_0000u32;
        while bits < 0xff80_0000 {
            xs[at] = f32::from_bits(bits);
            at += 1;
            if at == 8 {
                check(&xs);
                at = 0;
            }
            bits += if bits < 0xbf80_0000 { 97 } else { 9973 };
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let mut w = [0.0; 4];
        assert!(relax_logits(&mut [], 1, &mut []).is_err());
        assert!(relax_logits(&mut [0.0, 1.0], 3, &mut w).is_err());
        assert!(relax_logits(&mut [f32::NAN, 1.0], 2, &mut w).is_err());
        assert!(continuous_knn(&[1.0, 2.0], 0.0, 2, &mut [0.0; 2], &mut w).is_err());
    }
}
