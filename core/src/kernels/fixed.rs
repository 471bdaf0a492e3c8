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
//! clamped to `±2^46`; `|acc · m| < 2^47 · 2^15 = 2^62`.

use super::Isa;
use crate::error::{Error, ErrorKind, Result};

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
    (2 * z + d).div_euclid(2 * d)
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

/// [`conv_acc_row`] compiled for the instruction set `isa` (the compiler
/// vectorises it with AVX2 on x86-64): integer arithmetic, so the same
/// values with every instruction set.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_acc_row_with(
    isa: Isa,
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
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves AVX2; the body is safe code.
        Isa::Avx2Fma(_) => unsafe {
            avx2::conv_acc_row(values, cin, k, co, input, at, bias, part, acc)
        },
        _ => conv_acc_row(values, cin, k, co, input, at, bias, part, acc),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    /// # Safety
    /// The CPU must support AVX2.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub unsafe fn conv_acc_row(
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
        super::conv_acc_row(values, cin, k, co, input, at, bias, part, acc);
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
