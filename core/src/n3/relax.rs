//! The continuous nearest-neighbour relaxation (paper, section 3).
//!
//! From logits `l¹ = α / t` (α = −distance), for `j = 1..k`:
//! `wʲ = softmax(lʲ)` and `lʲ⁺¹ = lʲ + log(1 − wʲ)`. `wʲ` are the weights of the
//! `j`-th continuous neighbour; as `t → 0` they become one-hot on the exact
//! `j`-th nearest neighbour.

use crate::math::{exp, exp_m1, ln, ln_1p};

use crate::error::{Error, ErrorKind, Result};

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
/// Each weight vector sums to 1 (up to rounding).
pub fn relax_logits(logits: &mut [f32], k: usize, weights: &mut [f32]) -> Result<()> {
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
        // Log-softmax relative to the maximum, so that logits far below zero
        // (candidates already taken) keep their differences.
        let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = logits.iter().map(|&l| exp(l - m)).sum();
        let log_sum = ln(sum);
        for (l, wi) in logits.iter_mut().zip(w.iter_mut()) {
            let u = ((*l - m) - log_sum).min(0.0);
            *wi = exp(u);
            *l += log1mexp_given(u, *wi);
        }
    }
    Ok(())
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

    #[test]
    fn bad_arguments_are_errors() {
        let mut w = [0.0; 4];
        assert!(relax_logits(&mut [], 1, &mut []).is_err());
        assert!(relax_logits(&mut [0.0, 1.0], 3, &mut w).is_err());
        assert!(relax_logits(&mut [f32::NAN, 1.0], 2, &mut w).is_err());
        assert!(continuous_knn(&[1.0, 2.0], 0.0, 2, &mut [0.0; 2], &mut w).is_err());
    }
}
