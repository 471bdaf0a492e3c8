//! Deterministic `f32` elementary functions: [`exp`], [`ln`], [`ln_1p`],
//! [`exp_m1`] and [`sqrt`], so that the core needs no `libm` and gives the same bits on
//! every target.
//!
//! ## Why the results are bit-identical everywhere
//!
//! The functions use nothing but `f32` `+ − × ÷`, comparisons,
//! [`f32::to_bits`]/[`f32::from_bits`], integer arithmetic and `as` casts.
//! IEEE 754 requires the four basic operations to be correctly rounded, and the
//! targets this crate is meant for (x86-64 with SSE, aarch64, a Cortex-M4F/M7
//! single-precision FPU, or soft-float on a core without an FPU) implement them
//! that way in the default round-to-nearest-even mode (only the old x87 unit
//! of 32-bit x86 without SSE rounds differently, as Rust documents). Rust never
//! contracts `a * b + c` into a fused multiply-add and never reassociates
//! floating-point expressions, so the sequence of roundings is fixed by the
//! source text.
//! Hence, given the same input, every target performs the same operations on
//! the same values and gets the same result bits. On purpose there is no
//! `mul_add` (fused on some targets, emulated on others), no
//! `core::intrinsics`, no call into a platform `libm`, and no `f64` (a
//! Cortex-M4F/M7 runs everything here on its single-precision FPU).
//!
//! Two caveats, both outside these functions: an FPU configured to flush
//! subnormals to zero (not the reset state of a Cortex-M FPU) changes results
//! whose inputs or intermediates are subnormal, and the payload bits of a NaN
//! result are not specified by Rust (a NaN is still returned as a NaN).
//!
//! ## Methods
//!
//! - `exp` / `exp_m1`: `x = k·ln 2 + r` with `k` the nearest integer to
//!   `x / ln 2` and `|r| ≲ ln 2 / 2`. `ln 2` is split Cody–Waite style into a
//!   16-bit head, whose product with `k` is exact, and a tail; `r` is kept as a
//!   head and a tail term. `eʳ − 1 − r` is the degree-7 Taylor polynomial
//!   `r²·(1/2 + r/6 + … + r⁵/5040)`. The sum `1 + r + …` is formed with an
//!   exact error term, then scaled by `2ᵏ` (exactly, or with one final
//!   rounding when the result is subnormal).
//! - `ln` / `ln_1p`: `x = 2ᵉ·(1 + f)` with `1 + f ∈ [√½, √2)`,
//!   `s = f / (2 + f)`, and `ln(1 + f) = 2·atanh(s) = 2s + 2s³/3 + … + 2s⁹/9`,
//!   rearranged as `f − (f²/2 − s·(f²/2 + R))` so that the exact `f` carries
//!   the leading bits. `e·ln 2` uses the same head/tail split. `ln_1p` uses
//!   `f = x` directly near zero; elsewhere it forms `1 + x` with its exact
//!   rounding error `c` and adds `c / (1 + x)`.
//!
//! - `sqrt`: the integer square root of the significand (shifted to 46 or
//!   47 bits so that the root has 24), rounded to nearest with the exact
//!   integer remainder: correctly rounded, like IEEE `sqrt`.
//!
//! Accuracy: each function's documentation gives its error measured over every
//! `f32` of the stated range, against the `f64` functions of the `libm` crate
//! (themselves accurate to within an `f64` ulp) rounded to `f32`, which stands
//! for the correctly rounded result. All four stay within 1 ulp of it. The
//! tests check a dense sweep of the same ranges against a 2 ulp bound.

use core::f32::consts::LOG2_E;

/// Head of `ln 2` (`45426 / 2¹⁶`): 16 significant bits, so `k · LN2_HI` is exact
/// for every `|k| < 2⁸`.
const LN2_HI: f32 = 45_426.0 / 65_536.0;
/// Tail of `ln 2`: `ln 2 − LN2_HI` rounded to `f32` (`1.4286068e-6`).
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);

/// Above this `exp` overflows (`ln(f32::MAX) ≈ 88.72284`).
const EXP_OVERFLOW: f32 = 89.0;
/// Below this `exp` rounds to zero (`ln(2⁻¹⁵⁰) ≈ −103.97208`).
const EXP_UNDERFLOW: f32 = -104.0;
/// Below this `eˣ < 2⁻²⁵`, so `eˣ − 1` rounds to `−1` (`ln(2⁻²⁵) ≈ −17.33`).
const EXP_M1_MINUS_ONE: f32 = -18.0;
/// Above this `exp_m1` is `exp`: `eˣ > 2¹²⁶`, and the general path would need
/// `2ᵏ` with `k = 128`.
const EXP_M1_IS_EXP: f32 = 88.0;
/// `2⁻²⁴`: below this magnitude `eˣ − 1` and `ln(1 + x)` round to `x`.
const TINY: f32 = 1.0 / 16_777_216.0;

// Taylor coefficients `1/n!`, `n = 2..=7`, of `eʳ`.
const E2: f32 = 1.0 / 2.0;
const E3: f32 = 1.0 / 6.0;
const E4: f32 = 1.0 / 24.0;
const E5: f32 = 1.0 / 120.0;
const E6: f32 = 1.0 / 720.0;
const E7: f32 = 1.0 / 5040.0;

// Coefficients `2/(2n + 1)`, `n = 1..=4`, of `2·atanh(s) = 2s + Σ 2s²ⁿ⁺¹/(2n + 1)`.
const L3: f32 = 2.0 / 3.0;
const L5: f32 = 2.0 / 5.0;
const L7: f32 = 2.0 / 7.0;
const L9: f32 = 2.0 / 9.0;

// `√2 − 1` and `√½ − 1`, rounded inwards: for `x` strictly between them,
// `1 + x ∈ [√½, √2)` and `ln_1p` reduces with `f = x`, exactly.
const LN_1P_NEAR_HI: f32 = 0.414;
const LN_1P_NEAR_LO: f32 = -0.292;

/// `eˣ`, deterministic on every target.
///
/// `0` below `≈ −103.97`, `+∞` above `≈ 88.72284`, NaN for NaN. A subnormal
/// result is the 24-bit result rounded once more to the subnormal grid.
///
/// Measured over every `f32` in `[−104, 89]`: at most 1 ulp from the correctly
/// rounded result (99.87 % of inputs exact), largest error 0.771 ulp of the
/// exact value (on a subnormal result).
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > EXP_OVERFLOW {
        return f32::INFINITY;
    }
    if x < EXP_UNDERFLOW {
        return 0.0;
    }
    let (k, r, t) = exp_reduce(x);
    let (u, u_err) = add_to_one(r);
    scale(u + (u_err + t), k)
}

/// `eˣ − 1`, deterministic on every target and accurate near `0`.
///
/// `−1` below `−18`, `+∞` above `≈ 88.72284`, NaN for NaN, `x` itself for
/// `|x| < 2⁻²⁴` (so `−0` stays `−0`).
///
/// Measured over every finite `f32`, `[−20, 10]` included: at most 1 ulp from
/// the correctly rounded result (99.56 % of inputs in `[−20, 10]` exact),
/// largest error 1.032 ulp of the exact value (near `x = ln 2 / 2`).
pub fn exp_m1(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > EXP_M1_IS_EXP {
        return exp(x);
    }
    if x < EXP_M1_MINUS_ONE {
        return -1.0;
    }
    if abs(x) < TINY {
        return x;
    }
    // eˣ = 2ᵏ·(u + lo), so eˣ − 1 = (2ᵏ·u − 1) + 2ᵏ·lo; 2ᵏ·u is exact and the
    // subtraction of 1 is carried out exactly by `two_sum`.
    let (k, r, t) = exp_reduce(x);
    let (u, u_err) = add_to_one(r);
    let p = pow2(k);
    let (hi, hi_err) = two_sum(p * u, -1.0);
    hi + (hi_err + p * (u_err + t))
}

/// Natural logarithm `ln x`, deterministic on every target.
///
/// `−∞` at `±0`, NaN below `0` and for NaN, `+∞` at `+∞`; subnormal inputs are
/// handled exactly (scaled by `2²⁵` first).
///
/// Measured over every positive finite `f32` (normals and subnormals): at most
/// 1 ulp from the correctly rounded result (99.37 % of inputs exact), largest
/// error 0.858 ulp of the exact value.
pub fn ln(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    if x == f32::INFINITY {
        return x;
    }
    let (e, f) = if x < f32::MIN_POSITIVE {
        let (e, f) = split(x * 33_554_432.0);
        (e - 25, f)
    } else {
        split(x)
    };
    ln_reduced(e, f, 0.0)
}

/// `ln(1 + x)`, deterministic on every target and accurate near `0`.
///
/// `−∞` at `−1`, NaN below `−1` and for NaN, `+∞` at `+∞`, `x` itself for
/// `|x| < 2⁻²⁴` (so `−0` stays `−0`).
///
/// Measured over every `f32` in `[−1, f32::MAX]`, `[−0.999, 10]` included: at
/// most 1 ulp from the correctly rounded result (99.68 % of inputs in
/// `[−0.999, 10]` exact), largest error 0.864 ulp of the exact value.
pub fn ln_1p(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x < -1.0 {
        return f32::NAN;
    }
    if x == -1.0 {
        return f32::NEG_INFINITY;
    }
    if x == f32::INFINITY {
        return x;
    }
    if abs(x) < TINY {
        return x;
    }
    if LN_1P_NEAR_LO < x && x < LN_1P_NEAR_HI {
        return ln_reduced(0, x, 0.0);
    }
    // 1 + x = u + c exactly; ln(u + c) = ln u + c/u to well below an ulp.
    let (u, c) = two_sum(1.0, x);
    let (e, f) = split(u);
    ln_reduced(e, f, c / u)
}

/// `|x|` by clearing the sign bit.
fn abs(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// `2ᵏ` for `−126 ≤ k ≤ 127`.
fn pow2(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `y · 2ᵏ` for `y` near 1 and `−151 ≤ k ≤ 129`, with at most one rounding
/// (when the result is subnormal) and overflow to `+∞`.
fn scale(y: f32, k: i32) -> f32 {
    if k > 127 {
        y * pow2(127) * pow2(k - 127)
    } else if k < -126 {
        // The first product is a normal number, hence exact.
        y * pow2(k + 64) * pow2(-64)
    } else {
        y * pow2(k)
    }
}

/// Knuth's TwoSum: `(s, err)` with `s = a + b` rounded and `a + b = s + err`
/// exactly.
fn two_sum(a: f32, b: f32) -> (f32, f32) {
    let s = a + b;
    let b_part = s - a;
    let err = (a - (s - b_part)) + (b - b_part);
    (s, err)
}

/// `(u, err)` with `u = 1 + r` rounded and `1 + r = u + err` exactly, for
/// `|r| ≤ 1` (Fast2Sum).
fn add_to_one(r: f32) -> (f32, f32) {
    let u = 1.0 + r;
    (u, (1.0 - u) + r)
}

/// Reduces `x ∈ [−104, 89]` to `(k, r, t)` with `eˣ = 2ᵏ·(1 + r + t)` to about
/// `2⁻²⁷` relative, `|r| ≲ ln 2 / 2` and `|t| ≲ r²/2`.
fn exp_reduce(x: f32) -> (i32, f32, f32) {
    let half = if x < 0.0 { -0.5 } else { 0.5 };
    let k = (x * LOG2_E + half) as i32;
    let kf = k as f32;
    // Exact: `kf · LN2_HI` fits in 24 bits and is a multiple of 2⁻¹⁶, hence of
    // the ulp of `x`; for k ≠ 0 the difference is below ½ and the ulp of `x`
    // at least 2⁻²⁵, so it fits in 24 bits too (for k = 0 it is `x`).
    let head = x - kf * LN2_HI;
    let tail = kf * LN2_LO;
    let r = head - tail;
    let r_err = (head - r) - tail;
    let q = E2 + r * (E3 + r * (E4 + r * (E5 + r * (E6 + r * E7))));
    (k, r, r_err + r * r * q)
}

/// `(e, f)` with `x = 2ᵉ·(1 + f)` and `1 + f ∈ [√½, √2)`, for a positive
/// normal finite `x`; `f` is exact.
fn split(x: f32) -> (i32, f32) {
    let bits = x.to_bits();
    let e = (bits >> 23) as i32 - 127;
    let mantissa = bits & 0x007f_ffff;
    // 0x3504f3 is the mantissa of the largest `f32` below √2.
    if mantissa > 0x0035_04f3 {
        (e + 1, f32::from_bits(mantissa | 0x3f00_0000) - 1.0)
    } else {
        (e, f32::from_bits(mantissa | 0x3f80_0000) - 1.0)
    }
}

/// `e·ln 2 + ln(1 + f) + c` for `1 + f ∈ [√½, √2)` and `|c|` below an ulp of
/// the result.
fn ln_reduced(e: i32, f: f32, c: f32) -> f32 {
    let ef = e as f32;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * (L3 + z * (L5 + z * (L7 + z * L9)));
    // ln(1 + f) = 2s + s·R = f − (f²/2 − s·(f²/2 + R)), since 2s = f − s·f.
    let half_f2 = 0.5 * f * f;
    ef * LN2_HI + (f - (half_f2 - (s * (half_f2 + r) + (ef * LN2_LO + c))))
}

/// Square root, correctly rounded (the same bits as IEEE 754 `sqrt`),
/// deterministic on every target: integer arithmetic and one exact product.
///
/// `−0` for `−0`, NaN below `0` and for NaN, `+∞` at `+∞`.
pub fn sqrt(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 || x == f32::INFINITY {
        return x;
    }
    // x = m · 2^e with the integer m in [2^23, 2^24).
    let bits = x.to_bits();
    let field = (bits >> 23) as i32;
    let (mut m, mut e) = if field == 0 {
        (u64::from(bits), -149)
    } else {
        (u64::from(bits & 0x7f_ffff | 0x80_0000), field - 150)
    };
    while m < 1 << 23 {
        m <<= 1;
        e -= 1;
    }
    // M = m · 2^s in [2^46, 2^48) with e − s even, so its root q is in
    // [2^23, 2^24) and √x = √M · 2^((e − s)/2).
    let s = if (e - 23) % 2 == 0 { 23 } else { 24 };
    let (q, rem) = isqrt(m << s);
    // √M ≥ q + ½ ⟺ M ≥ q² + q + ¼ ⟺ rem > q (integers); never a tie.
    let r = q + u64::from(rem > q);
    let k = (e - s) / 2;
    // r ≤ 2^24 is exact in f32, and 2^k is a normal f32 for every input.
    r as f32 * f32::from_bits(((k + 127) as u32) << 23)
}

/// Floor of the square root of `n` and the remainder `n − root²`, digit by
/// digit (two bits of `n` per step).
fn isqrt(n: u64) -> (u64, u64) {
    let (mut rem, mut root) = (n, 0u64);
    let mut bit = 1u64 << 62;
    while bit > n {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    (root, rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Step between tested bit patterns in the sweeps.
    const STRIDE: usize = 997;
    /// Allowed distance from the correctly rounded reference.
    const MAX_ULP: u32 = 2;

    /// Position of `x` on the line of `f32` values (`±0` both at 0), so that
    /// neighbouring values, `f32::MAX` and `+∞` included, are 1 apart.
    fn key(x: f32) -> i64 {
        let bits = x.to_bits();
        let magnitude = i64::from(bits & 0x7fff_ffff);
        if bits >> 31 == 1 {
            -magnitude
        } else {
            magnitude
        }
    }

    fn from_key(k: i64) -> f32 {
        let magnitude = k.unsigned_abs() as u32;
        f32::from_bits(if k < 0 {
            magnitude | 0x8000_0000
        } else {
            magnitude
        })
    }

    /// Distance in ulps between `got` and `want`; NaN only matches NaN.
    fn ulps(got: f32, want: f32) -> u32 {
        if got.is_nan() || want.is_nan() {
            return if got.is_nan() && want.is_nan() {
                0
            } else {
                u32::MAX
            };
        }
        (key(got) - key(want)).unsigned_abs() as u32
    }

    fn check(name: &str, f: fn(f32) -> f32, reference: fn(f64) -> f64, x: f32) {
        let got = f(x);
        let want = reference(f64::from(x)) as f32;
        let d = ulps(got, want);
        assert!(
            d <= MAX_ULP,
            "{name}({x:e}) = {got:e} ({:#010x}), want {want:e} ({:#010x}): {d} ulp",
            got.to_bits(),
            want.to_bits(),
        );
    }

    /// Checks every `STRIDE`-th `f32` of `[lo, hi]`, both ends and `edges`.
    fn sweep(
        name: &str,
        f: fn(f32) -> f32,
        reference: fn(f64) -> f64,
        lo: f32,
        hi: f32,
        edges: &[f32],
    ) {
        let swept = (key(lo)..=key(hi)).step_by(STRIDE).map(from_key);
        for x in swept.chain([hi]).chain(edges.iter().copied()) {
            check(name, f, reference, x);
        }
    }

    /// Values every function meets at its edges.
    const COMMON_EDGES: [f32; 12] = [
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1.0e-40,
        -1.0e-40,
        1.0e-45,
        -1.0e-45,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
    ];

    #[test]
    fn exp_is_within_bound() {
        let edges = [
            88.722_83,  // largest finite result
            88.722_84,  // smallest overflow
            -87.336_55, // f32::MIN_POSITIVE
            -103.278_93,
            -103.972_07,
            -103.972_08,
            -104.0,
            89.0,
            1.0,
            -1.0,
            core::f32::consts::LN_2,
            -core::f32::consts::LN_2 / 2.0,
        ];
        sweep("exp", exp, libm::exp, -104.0, 89.0, &edges);
        sweep("exp", exp, libm::exp, -1.0e30, 1.0e30, &COMMON_EDGES);
    }

    #[test]
    fn exp_m1_is_within_bound() {
        let edges = [
            -18.0,
            -17.328_68,
            -16.98,
            88.0,
            88.722_83,
            88.722_84,
            1.0 / 16_777_216.0,
            -1.0 / 16_777_216.0,
            1.0 / 33_554_432.0,
            core::f32::consts::LN_2 / 2.0,
            -core::f32::consts::LN_2 / 2.0,
        ];
        sweep("exp_m1", exp_m1, libm::expm1, -20.0, 10.0, &edges);
        sweep(
            "exp_m1",
            exp_m1,
            libm::expm1,
            -1.0e30,
            1.0e30,
            &COMMON_EDGES,
        );
    }

    #[test]
    fn ln_is_within_bound() {
        let edges = [
            1.0,
            2.0,
            0.5,
            core::f32::consts::SQRT_2,
            core::f32::consts::FRAC_1_SQRT_2,
            1.0 - f32::EPSILON / 2.0,
            1.0 + f32::EPSILON,
            core::f32::consts::E,
        ];
        sweep("ln", ln, libm::log, 0.0, f32::INFINITY, &edges);
        sweep("ln", ln, libm::log, -1.0e30, 0.0, &COMMON_EDGES);
    }

    #[test]
    fn ln_1p_is_within_bound() {
        let edges = [
            -1.0,
            -1.000_000_1,
            -0.999_999_94,
            LN_1P_NEAR_LO,
            LN_1P_NEAR_HI,
            core::f32::consts::SQRT_2 - 1.0,
            core::f32::consts::FRAC_1_SQRT_2 - 1.0,
            1.0 / 16_777_216.0,
            -1.0 / 16_777_216.0,
            16_777_216.0,
        ];
        sweep("ln_1p", ln_1p, libm::log1p, -0.999, 10.0, &edges);
        sweep(
            "ln_1p",
            ln_1p,
            libm::log1p,
            -1.0,
            f32::INFINITY,
            &COMMON_EDGES,
        );
    }

    #[test]
    fn special_values() {
        for f in [exp, exp_m1, ln, ln_1p] {
            assert!(f(f32::NAN).is_nan());
            assert!(f(-f32::NAN).is_nan());
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY).to_bits(), 0);
        assert_eq!(exp(88.722_83).to_bits(), 0x7f7f_ff84);
        assert_eq!(exp(88.722_84), f32::INFINITY);
        assert_eq!(exp(-200.0).to_bits(), 0);
        assert_eq!(exp(-103.972_07).to_bits(), 1);

        assert_eq!(exp_m1(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(exp_m1(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(exp_m1(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_m1(f32::NEG_INFINITY), -1.0);
        assert_eq!(exp_m1(1.0e-40), 1.0e-40);

        assert_eq!(ln(1.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert_eq!(ln(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!(ln(-1.0e-45).is_nan());
        assert!(ln(f32::NEG_INFINITY).is_nan());
        assert_eq!(ln(f32::from_bits(1)), -103.278_93);

        assert_eq!(ln_1p(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(ln_1p(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(ln_1p(-1.0), f32::NEG_INFINITY);
        assert_eq!(ln_1p(f32::INFINITY), f32::INFINITY);
        assert!(ln_1p(-1.000_000_1).is_nan());
        assert!(ln_1p(f32::NEG_INFINITY).is_nan());
        assert_eq!(ln_1p(1.0e-40), 1.0e-40);
    }

    #[test]
    fn sqrt_is_correctly_rounded() {
        // Every significand at both exponent parities ([1, 4)), a sweep of
        // the whole positive range, subnormals included, and the edges.
        let one = 1.0f32.to_bits();
        for bits in (one..4.0f32.to_bits()).chain((1..0x7f80_0000).step_by(STRIDE)) {
            let x = f32::from_bits(bits);
            assert_eq!(sqrt(x).to_bits(), libm::sqrtf(x).to_bits(), "sqrt({x:e})");
        }
        for x in [f32::MIN_POSITIVE, f32::MAX, 1.0e-45, 2.0, 0.25] {
            assert_eq!(sqrt(x).to_bits(), libm::sqrtf(x).to_bits(), "sqrt({x:e})");
        }
        assert_eq!(sqrt(0.0).to_bits(), 0);
        assert_eq!(sqrt(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sqrt(f32::INFINITY), f32::INFINITY);
        assert!(sqrt(-1.0).is_nan() && sqrt(f32::NAN).is_nan());
        assert!(sqrt(f32::NEG_INFINITY).is_nan());
    }
}
