//! Fixed-point (q16) arithmetic: int16 activations, integer accumulation and
//! the one requantisation step.
//!
//! A q16 tensor stores `q` with the real value `scale · q`, one `f32` scale
//! per tensor, `q` in `−32767..=32767` (−32768 is never produced, so negation
//! and products never overflow). Convolution weights are int16 with one scale
//! per output channel ([`crate::model::Weights::Q16`]).
//!
//! **Requantisation** (the only place where precision is dropped): an `i64`
//! accumulator `acc` in scale `s_acc` becomes a value in scale `s_out` by the
//! multiplier `M = s_acc / s_out`, held as `m · 2^−shift` with
//! `m ∈ [2^14, 2^15)` ([`Mult::new`]), and
//!
//! ```text
//! apply(acc) = floor((acc · m + 2^(shift−1)) / 2^shift)     round half up
//! requantize(acc) = clamp(apply(acc), −32767, 32767)        saturate, never wrap
//! ```
//!
//! Every multiplier is computed from the stored `f32` scales with IEEE `f64`
//! multiplications and divisions (correctly rounded on every target), so the
//! integers, and every output bit, are the same on x86-64, aarch64 and
//! Cortex-M.
//!
//! Bounds that rule out overflow: a convolution sums, per input channel,
//! `ksize²` products into an `i32` (the weights of one channel pair sum to at
//! most [`crate::model::Q16_TAP_L1_MAX`] in absolute value, so
//! `|Σ| ≤ 32767 · 65535 < 2^31`), then adds those partial sums into an `i64`
//! (at most [`crate::model::MAX_Q16_FAN_IN`] of them, `< 2^45`), plus a bias
//! clamped to `±2^46`; `|acc · m| < 2^47 · 2^15 = 2^62`. The SIMD kernels
//! (`kernels::qconv`) sum several input channels in one `i32` where a
//! bound computed from the weights and the input rows proves it safe.

use core::ops::Range;

use super::Isa;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ConvLayer, Weights};
use crate::tensor::Geom;

/// Largest stored magnitude.
pub const Q_MAX: i32 = 32767;

/// Bias clamp in accumulator units (see the module docs).
const BIAS_MAX: f64 = (1u64 << 46) as f64;

/// A positive real multiplier `m · 2^−shift`, `m ∈ [2^14, 2^15)`, or zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mult {
    m: i64,
    shift: u32,
}

impl Mult {
    /// The multiplier nearest to `real` (finite, > 0). Multipliers below
    /// `2^−48` become zero (no value of a bounded accumulator survives
    /// them); `real ≥ 2^13` is refused (a scale ratio that large means the
    /// calibration is broken).
    pub fn new(real: f64) -> Result<Self> {
        if !(real.is_finite() && real > 0.0) || real >= 8192.0 {
            return Err(Error::new(
                ErrorKind::InvalidModel,
                "q16 scale ratio out of range (scales must be finite, positive and comparable)",
            ));
        }
        let (mut r, mut shift) = (real, 0u32);
        while r < 16384.0 && shift <= 62 + 48 {
            r *= 2.0;
            shift += 1;
        }
        let mut m = round_f64(r);
        if m == 32768 {
            m = 16384;
            shift -= 1;
        }
        if shift > 62 {
            return Ok(Self { m: 0, shift: 1 });
        }
        Ok(Self { m, shift })
    }

    /// `m` and `shift`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(crate) fn parts(self) -> (i64, u32) {
        (self.m, self.shift)
    }

    /// `round(acc · M)`, ties toward +∞, without saturation; `|acc| < 2^47`.
    #[inline]
    pub fn apply(self, acc: i64) -> i64 {
        (acc * self.m + (1i64 << (self.shift - 1))) >> self.shift
    }
}

/// Clamps to the stored range `−32767..=32767`.
#[inline]
pub fn saturate(v: i64) -> i16 {
    v.clamp(-(Q_MAX as i64), Q_MAX as i64) as i16
}

/// [`Mult::apply`] then [`saturate`]: the requantisation of the module docs.
#[inline]
pub fn requantize(acc: i64, m: Mult) -> i16 {
    saturate(m.apply(acc))
}

/// Nearest integer, ties away from zero (truncating casts only: the same on
/// every target). For values well inside the `i64` range.
#[inline]
pub fn round_f64(v: f64) -> i64 {
    if v >= 0.0 {
        (v + 0.5) as i64
    } else {
        -((-v + 0.5) as i64)
    }
}

/// `v / scale` rounded (ties away from zero) and saturated: a real value
/// stored in a tensor of `scale`. NaN becomes 0.
#[inline]
pub fn quantize(v: f32, scale: f32) -> i16 {
    let q = v / scale;
    let r = if q >= 0.0 { q + 0.5 } else { q - 0.5 };
    // `as` truncates toward zero and saturates at the i32 range.
    saturate(i64::from(r as i32))
}

/// `round(z / d)` for `d > 0`, ties toward +∞.
#[inline]
pub fn round_div(z: i64, d: i64) -> i64 {
    if d > 0 && d & (d - 1) == 0 {
        // A power of two (the usual patch coverages 1, 2 and 4): the same
        // floor as the division, by an arithmetic shift.
        (2 * z + d) >> (d.trailing_zeros() + 1)
    } else {
        (2 * z + d).div_euclid(2 * d)
    }
}

/// The bias of output channel `co` in accumulator units `s_in · s_w`,
/// rounded and clamped to `±2^46`.
pub(crate) fn bias_acc(bias: f32, acc_scale: f64) -> i64 {
    let b = f64::from(bias) / acc_scale;
    round_f64(b.clamp(-BIAS_MAX, BIAS_MAX))
}

/// Quantises one convolution's weights, `[cout][cin][taps]` values, to
/// int16 with one scale per output channel, within the accumulator bound of
/// [`crate::model::Weights::Q16`]: the scale is the larger of
/// `max |w| / 32767` and `max_ci Σ_taps |w| / (65535 − taps)` (the margin
/// absorbs rounding), and `q = round(w / scale)`. A channel of zeros gets
/// scale 1.
pub fn quantize_weights(
    weight: &[f32],
    cout: usize,
    taps: usize,
    values: &mut [i16],
    scales: &mut [f32],
) -> Result<()> {
    let per = weight.len().checked_div(cout).unwrap_or(0);
    if taps == 0
        || taps >= 32768
        || per % taps != 0
        || values.len() != weight.len()
        || scales.len() != cout
        || !weight.iter().all(|w| w.is_finite())
    {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "quantize_weights: lengths, taps or non-finite weights",
        ));
    }
    for co in 0..cout {
        let w = &weight[co * per..][..per];
        let peak = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let l1 = w
            .chunks_exact(taps)
            .map(|pair| pair.iter().map(|v| v.abs()).sum::<f32>())
            .fold(0.0f32, f32::max);
        let s = (peak / Q_MAX as f32).max(l1 / (65535 - taps) as f32);
        let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
        scales[co] = s;
        for (q, &v) in values[co * per..][..per].iter_mut().zip(w) {
            *q = quantize(v, s);
        }
    }
    Ok(())
}

/// One output row of a q16 convolution, channel `co`: `acc` (the image
/// row's `w` values) receives `Σ_ci Σ_taps x · w` starting from `bias`,
/// with the per-input-channel partial sums in `part` (`i32`, see the module
/// docs). `input` rows are read at `at(ci, ky) + kx + x`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn conv_acc_row(
    values: &[i16],
    cin: usize,
    k: usize,
    co: usize,
    input: &[i16],
    at: impl Fn(usize, usize) -> usize,
    bias: i64,
    part: &mut [i32],
    acc: &mut [i64],
) {
    let w = acc.len();
    acc.fill(bias);
    for ci in 0..cin {
        let wk = &values[(co * cin + ci) * k * k..][..k * k];
        part.fill(0);
        for ky in 0..k {
            let base = at(ci, ky);
            for kx in 0..k {
                let wv = i32::from(wk[ky * k + kx]);
                if wv == 0 {
                    continue;
                }
                let irow = &input[base + kx..base + kx + w];
                for (p, &i) in part.iter_mut().zip(irow) {
                    *p += i32::from(i) * wv;
                }
            }
        }
        for (a, &p) in acc.iter_mut().zip(part.iter()) {
            *a += i64::from(p);
        }
    }
}

/// The `(i32, i64)` scratch lengths [`conv2d`] needs for `layer` over `g`.
pub fn conv2d_scratch(layer: &ConvLayer<'_>, g: Geom) -> (usize, usize) {
    super::qconv::scratch(layer.cin, layer.ksize, g.row_stride())
}

/// Output rows `rows` of the q16 convolution `layer` (q16 weights) of
/// `input` (scale `scales[0]`) into `output` (scale `scales[1]`), both of
/// geometry `g` with `g.pad ≥ ksize / 2`, as the streaming executor
/// computes them (no residual). `s32`, `s64`: scratch of
/// [`conv2d_scratch`] lengths.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    isa: Isa,
    layer: &ConvLayer<'_>,
    g: Geom,
    input: &[i16],
    output: &mut [i16],
    scales: [f32; 2],
    rows: Range<usize>,
    s32: &mut [i32],
    s64: &mut [i64],
) -> Result<()> {
    let Weights::Q16 { values, scales: ws } = layer.weight else {
        return Err(Error::new(
            ErrorKind::UnsupportedPrecision,
            "q16 conv2d needs q16 weights",
        ));
    };
    let (k, w, rs) = (layer.ksize, g.width, g.row_stride());
    let kp = k / 2;
    if k % 2 == 0
        || g.pad < kp
        || rows.end > g.height
        || ws.len() != layer.cout
        || layer.bias.len() != layer.cout
        || input.len() < g.len(layer.cin)
        || output.len() < g.len(layer.cout)
    {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "q16 conv2d: inconsistent shapes",
        ));
    }
    let [sx, sy] = scales.map(f64::from);
    for y in rows {
        let at = |ci: usize, ky: usize| ci * g.plane() + (y + g.pad - kp + ky) * rs + g.pad - kp;
        let bias = |co: usize| bias_acc(layer.bias[co], sx * f64::from(ws[co]));
        let dims = (layer.cin, layer.cout, k);
        super::qconv::conv_acc_rows(
            isa,
            values,
            dims,
            0..layer.cout,
            input,
            at,
            w,
            bias,
            s32,
            s64,
            |co, acc| {
                let m = Mult::new(sx * f64::from(ws[co]) / sy)?;
                let o = co * g.plane() + g.at(y, 0);
                finish_row(isa, acc, m, layer.relu, None, &mut output[o..o + w]);
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// Requantises one output row: `out[x] = saturate(v + res_mult.apply(r[x]))`
/// with `v = m.apply(acc[x])`, `max(v, 0)` when `relu`, the residual term
/// only with a residual row `r`.
pub(crate) fn finish_row(
    isa: Isa,
    acc: &[i64],
    m: Mult,
    relu: bool,
    res: Option<(&[i16], Mult)>,
    out: &mut [i16],
) {
    let n = out.len().min(acc.len());
    let done = match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves AVX2.
        Isa::Avx2Fma(_) => unsafe { avx2::finish_row(&acc[..n], m, relu, res, &mut out[..n]) },
        _ => 0,
    };
    for x in done..n {
        let mut v = m.apply(acc[x]);
        if relu {
            v = v.max(0);
        }
        if let Some((r, rm)) = res {
            v += rm.apply(i64::from(r[x]));
        }
        out[x] = saturate(v);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;

    use super::{Mult, Q_MAX};

    /// [`Mult::apply`] on four `i64` lanes (`|acc| < 2^47`): `acc · m` from
    /// the unsigned low and the signed high 32-bit halves of `acc` (both
    /// products exact), plus the rounding term, then an arithmetic shift
    /// made of a logical one: `(v + 2^63) >> s − 2^(63−s) = ⌊v / 2^s⌋`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn apply(acc: __m256i, m: &[__m256i; 3], shift: __m128i) -> __m256i {
        let lo = _mm256_mul_epu32(acc, m[0]);
        let hi = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), m[0]);
        let v = _mm256_add_epi64(_mm256_add_epi64(lo, _mm256_slli_epi64::<32>(hi)), m[1]);
        let sign = _mm256_set1_epi64x(i64::MIN);
        _mm256_sub_epi64(_mm256_srl_epi64(_mm256_xor_si256(v, sign), shift), m[2])
    }

    /// The broadcast constants of `apply`: `m`, `2^(s−1)`, `2^(63−s)`, and `s`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn consts(m: Mult) -> ([__m256i; 3], __m128i) {
        let (mv, s) = m.parts();
        (
            [
                _mm256_set1_epi64x(mv),
                _mm256_set1_epi64x(1 << (s - 1)),
                _mm256_set1_epi64x(1 << (63 - s)),
            ],
            _mm_cvtsi32_si128(s as i32),
        )
    }

    /// `max(v, lo)` on `i64` lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn max(v: __m256i, lo: __m256i) -> __m256i {
        _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v))
    }

    /// `min(v, hi)` on `i64` lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn min(v: __m256i, hi: __m256i) -> __m256i {
        _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi))
    }

    /// [`super::finish_row`] for the first multiple of 8 columns; returns
    /// how many it wrote.
    ///
    /// # Safety
    /// The CPU must support AVX2; `out` and `acc` (and a residual row) must
    /// have the same length.
    #[target_feature(enable = "avx2")]
    pub unsafe fn finish_row(
        acc: &[i64],
        m: Mult,
        relu: bool,
        res: Option<(&[i16], Mult)>,
        out: &mut [i16],
    ) -> usize {
        let n = out.len() / 8 * 8;
        let (mc, sh) = consts(m);
        let (rc, rsh) = consts(res.map_or(m, |r| r.1));
        let q = _mm256_set1_epi64x(Q_MAX.into());
        let neg = _mm256_set1_epi64x(-i64::from(Q_MAX));
        let order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        let mut x = 0;
        while x < n {
            let mut h = [_mm256_setzero_si256(); 2];
            for (i, hv) in h.iter_mut().enumerate() {
                // SAFETY: x + 4i + 4 <= n <= acc.len().
                let a = unsafe { _mm256_loadu_si256(acc.as_ptr().add(x + 4 * i).cast()) };
                let mut v = apply(a, &mc, sh);
                if relu {
                    v = max(v, _mm256_setzero_si256());
                }
                if let Some((r, _)) = res {
                    // SAFETY: x + 4i + 4 <= n <= r.len(): 8 bytes of i16.
                    let rv = unsafe { _mm_loadl_epi64(r.as_ptr().add(x + 4 * i).cast()) };
                    v = _mm256_add_epi64(v, apply(_mm256_cvtepi16_epi64(rv), &rc, rsh));
                }
                *hv = min(max(v, neg), q);
            }
            // Low halves of the 8 lanes in column order, then packed to i16
            // (the values are within ±32767, so nothing saturates).
            let ab = _mm256_blend_epi32::<0b1010_1010>(h[0], _mm256_slli_epi64::<32>(h[1]));
            let d = _mm256_permutevar8x32_epi32(ab, order);
            let p = _mm_packs_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256::<1>(d));
            // SAFETY: x + 8 <= n <= out.len().
            unsafe { _mm_storeu_si128(out.as_mut_ptr().add(x).cast(), p) };
            x += 8;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_are_exact_for_powers_of_two_and_close_otherwise() {
        let half = Mult::new(0.5).unwrap();
        assert_eq!(half.apply(3), 2); // 1.5 rounds up
        assert_eq!(half.apply(-3), -1); // -1.5 rounds up
        assert_eq!(half.apply(4), 2);
        for real in [1e-6, 0.001234, 0.3, 0.999_999, 1.0, 3.7, 1000.5] {
            let m = Mult::new(real).unwrap();
            let acc = 1_000_000_007i64;
            let got = m.apply(acc) as f64;
            let want = acc as f64 * real;
            assert!(
                (got - want).abs() <= want * 4e-5 + 1.0,
                "{real}: {got} vs {want}"
            );
        }
        assert_eq!(Mult::new(1e-30).unwrap().apply(1 << 46), 0);
        assert!(Mult::new(0.0).is_err());
        assert!(Mult::new(f64::NAN).is_err());
        assert!(Mult::new(8192.0).is_err());
    }

    #[test]
    fn the_extreme_accumulator_does_not_overflow() {
        let m = Mult::new(8191.9).unwrap();
        let acc = (1i64 << 47) - 1;
        assert!(m.apply(acc) > 0 && m.apply(-acc) < 0);
        assert_eq!(requantize(acc, m), 32767);
        assert_eq!(requantize(-acc, m), -32767);
    }

    #[test]
    fn round_div_by_powers_of_two_is_the_division() {
        for d in 1..=70i64 {
            let zs = (-3000..3000).chain([1 << 50, -(1 << 50), (1 << 50) + 7, -(1 << 50) - 7]);
            for z in zs {
                assert_eq!(round_div(z, d), (2 * z + d).div_euclid(2 * d), "{z} / {d}");
            }
        }
    }

    #[test]
    fn quantize_rounds_and_saturates() {
        assert_eq!(quantize(0.5, 1.0), 1);
        assert_eq!(quantize(-0.5, 1.0), -1);
        assert_eq!(quantize(0.49, 1.0), 0);
        assert_eq!(quantize(1e30, 1.0), 32767);
        assert_eq!(quantize(-1e30, 1.0), -32767);
        assert_eq!(quantize(f32::NAN, 1.0), 0);
        assert_eq!(round_div(5, 2), 3);
        assert_eq!(round_div(-5, 2), -2);
        assert_eq!(round_div(7, 3), 2);
        assert_eq!(round_div(-7, 3), -2);
    }
}
