//! Image quality metrics: PSNR and SSIM, as in the paper's evaluation
//! (spec §6).
//!
//! Both work on single-channel images whose samples are on a `[0, 1]` scale
//! (peak / data range 1) and accumulate in `f64`. Neither clips its inputs.
//!
//! SSIM follows Wang et al.'s reference implementation (and scikit-image's
//! `structural_similarity` with `gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False, data_range=1`): an 11×11 Gaussian window with
//! σ = 1.5 (normalised to sum 1), `C1 = 0.01²`, `C2 = 0.03²`, evaluated at
//! every position where the window lies fully inside the image (the "valid"
//! region, `(H−10)×(W−10)` positions), and averaged.

/// Side of the SSIM window (11).
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM Gaussian window (1.5).
pub const SSIM_SIGMA: f64 = 1.5;
/// SSIM stabilising constant `C1 = (0.01 · 1)²`.
pub const SSIM_C1: f64 = 0.01 * 0.01;
/// SSIM stabilising constant `C2 = (0.03 · 1)²`.
pub const SSIM_C2: f64 = 0.03 * 0.03;

/// Errors of the metric functions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// The two images have different numbers of samples.
    #[error("length mismatch: reference has {reference} samples, test has {test}")]
    LengthMismatch {
        /// Length of the reference.
        reference: usize,
        /// Length of the test image.
        test: usize,
    },
    /// The images are empty.
    #[error("empty images")]
    Empty,
    /// `width × height` does not match the length of the images (or
    /// overflows).
    #[error("{width}×{height} does not match the image length {len}")]
    ShapeMismatch {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
        /// Length of the images.
        len: usize,
    },
    /// The image is smaller than the SSIM window in at least one dimension.
    #[error("image {width}×{height} is smaller than the {window}×{window} SSIM window")]
    TooSmall {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
        /// Window side.
        window: usize,
    },
}

fn check_lengths(reference: &[f32], test: &[f32]) -> Result<(), MetricsError> {
    if reference.len() != test.len() {
        return Err(MetricsError::LengthMismatch {
            reference: reference.len(),
            test: test.len(),
        });
    }
    if reference.is_empty() {
        return Err(MetricsError::Empty);
    }
    Ok(())
}

/// Mean squared error `Σ (reference − test)² / n`, accumulated in `f64`.
///
/// NaN/∞ samples propagate into the result.
///
/// # Errors
///
/// [`MetricsError::LengthMismatch`] for different lengths,
/// [`MetricsError::Empty`] for empty inputs.
pub fn mse(reference: &[f32], test: &[f32]) -> Result<f64, MetricsError> {
    check_lengths(reference, test)?;
    let sum: f64 = reference
        .iter()
        .zip(test)
        .map(|(&r, &t)| {
            let d = f64::from(r) - f64::from(t);
            d * d
        })
        .sum();
    Ok(sum / reference.len() as f64)
}

/// Largest absolute difference `max |reference − test|` (0 for equal inputs).
///
/// # Errors
///
/// [`MetricsError::LengthMismatch`] for different lengths,
/// [`MetricsError::Empty`] for empty inputs.
pub fn max_abs_diff(reference: &[f32], test: &[f32]) -> Result<f32, MetricsError> {
    check_lengths(reference, test)?;
    Ok(reference
        .iter()
        .zip(test)
        .map(|(r, t)| (r - t).abs())
        .fold(0.0, f32::max))
}

/// Peak signal-to-noise ratio in dB with peak 1: `10 · log10(1 / MSE)`.
///
/// `test` is not clipped (the paper measures the unclipped output). The MSE is
/// accumulated in `f64`. Identical inputs (MSE 0) give `f64::INFINITY`;
/// NaN samples give NaN.
///
/// # Errors
///
/// [`MetricsError::LengthMismatch`] for different lengths,
/// [`MetricsError::Empty`] for empty inputs.
pub fn psnr(reference: &[f32], test: &[f32]) -> Result<f64, MetricsError> {
    let m = mse(reference, test)?;
    if m == 0.0 {
        return Ok(f64::INFINITY);
    }
    Ok(-10.0 * m.log10())
}

/// The normalised 1-D Gaussian window: `w[i] ∝ exp(−(i−5)² / (2·1.5²))`,
/// `i = 0..11`, summing to 1 (the 2-D window is its outer product).
pub fn ssim_gaussian_window() -> [f64; SSIM_WINDOW] {
    let mut w = [0.0f64; SSIM_WINDOW];
    let r = (SSIM_WINDOW / 2) as f64;
    for (i, v) in w.iter_mut().enumerate() {
        let x = i as f64 - r;
        *v = (-0.5 * x * x / (SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let s: f64 = w.iter().sum();
    for v in &mut w {
        *v /= s;
    }
    w
}

/// Mean structural similarity (SSIM) of two single-channel `width × height`
/// row-major images with data range 1.
///
/// Local statistics use an 11×11 Gaussian window (σ = 1.5, normalised) applied
/// separably in `f64`, population (not sample) covariances, `C1 = 0.01²`,
/// `C2 = 0.03²`:
///
/// `SSIM = ((2 μx μy + C1)(2 σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2))`
///
/// evaluated at every window position fully inside the image and averaged
/// (this equals scikit-image's `structural_similarity(..., gaussian_weights=True,
/// sigma=1.5, use_sample_covariance=False, data_range=1)` and Wang et al.'s
/// `ssim_index.m`). Inputs are not clipped. Identical images give exactly 1;
/// NaN samples give NaN.
///
/// # Errors
///
/// [`MetricsError::LengthMismatch`] / [`MetricsError::Empty`] as for [`psnr`];
/// [`MetricsError::ShapeMismatch`] when `width * height` differs from the
/// length; [`MetricsError::TooSmall`] when `width` or `height` is below 11.
pub fn ssim(
    reference: &[f32],
    test: &[f32],
    width: usize,
    height: usize,
) -> Result<f64, MetricsError> {
    check_lengths(reference, test)?;
    if width.checked_mul(height) != Some(reference.len()) {
        return Err(MetricsError::ShapeMismatch {
            width,
            height,
            len: reference.len(),
        });
    }
    if width < SSIM_WINDOW || height < SSIM_WINDOW {
        return Err(MetricsError::TooSmall {
            width,
            height,
            window: SSIM_WINDOW,
        });
    }
    let w = ssim_gaussian_window();
    let ow = width - SSIM_WINDOW + 1; // valid output width
    let oh = height - SSIM_WINDOW + 1; // valid output height

    // Horizontal pass over every row: five filtered maps of size height × ow,
    // interleaved as [x, y, xx, yy, xy].
    let mut hmaps = vec![[0.0f64; 5]; height * ow];
    for yy in 0..height {
        let rrow = &reference[yy * width..(yy + 1) * width];
        let trow = &test[yy * width..(yy + 1) * width];
        let out = &mut hmaps[yy * ow..(yy + 1) * ow];
        for (j, o) in out.iter_mut().enumerate() {
            let mut acc = [0.0f64; 5];
            for (k, &wk) in w.iter().enumerate() {
                let x = f64::from(rrow[j + k]);
                let y = f64::from(trow[j + k]);
                acc[0] += wk * x;
                acc[1] += wk * y;
                acc[2] += wk * x * x;
                acc[3] += wk * y * y;
                acc[4] += wk * x * y;
            }
            *o = acc;
        }
    }

    // Vertical pass on the valid rows, SSIM per position, mean.
    let mut total = 0.0f64;
    let mut col = vec![[0.0f64; 5]; ow];
    for i in 0..oh {
        for c in col.iter_mut() {
            *c = [0.0; 5];
        }
        for (k, &wk) in w.iter().enumerate() {
            let row = &hmaps[(i + k) * ow..(i + k + 1) * ow];
            for (c, h) in col.iter_mut().zip(row) {
                for q in 0..5 {
                    c[q] += wk * h[q];
                }
            }
        }
        for c in &col {
            total += ssim_from_moments(c);
        }
    }
    Ok(total / (ow * oh) as f64)
}

/// SSIM at one position from the windowed moments `[E x, E y, E x², E y², E xy]`.
fn ssim_from_moments(m: &[f64; 5]) -> f64 {
    let (ux, uy) = (m[0], m[1]);
    let vx = m[2] - ux * ux;
    let vy = m[3] - uy * uy;
    let vxy = m[4] - ux * uy;
    ((2.0 * ux * uy + SSIM_C1) * (2.0 * vxy + SSIM_C2))
        / ((ux * ux + uy * uy + SSIM_C1) * (vx + vy + SSIM_C2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic pseudo-random generator (LCG) for test images.
    fn lcg_image(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32) / ((1u64 << 24) as f32)
            })
            .collect()
    }

    /// Direct 2-D SSIM: explicit 11×11 window at every valid position.
    fn ssim_brute(r: &[f32], t: &[f32], w: usize, h: usize) -> f64 {
        let g = ssim_gaussian_window();
        let mut total = 0.0;
        let mut count = 0usize;
        for i in 0..=h - SSIM_WINDOW {
            for j in 0..=w - SSIM_WINDOW {
                let mut m = [0.0f64; 5];
                for a in 0..SSIM_WINDOW {
                    for b in 0..SSIM_WINDOW {
                        let wt = g[a] * g[b];
                        let x = f64::from(r[(i + a) * w + j + b]);
                        let y = f64::from(t[(i + a) * w + j + b]);
                        m[0] += wt * x;
                        m[1] += wt * y;
                        m[2] += wt * x * x;
                        m[3] += wt * y * y;
                        m[4] += wt * x * y;
                    }
                }
                let (ux, uy) = (m[0], m[1]);
                let (vx, vy, vxy) = (m[2] - ux * ux, m[3] - uy * uy, m[4] - ux * uy);
                total += ((2.0 * ux * uy + SSIM_C1) * (2.0 * vxy + SSIM_C2))
                    / ((ux * ux + uy * uy + SSIM_C1) * (vx + vy + SSIM_C2));
                count += 1;
            }
        }
        total / count as f64
    }

    #[test]
    fn window_is_normalised_and_symmetric() {
        let w = ssim_gaussian_window();
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        for i in 0..SSIM_WINDOW {
            assert_eq!(w[i], w[SSIM_WINDOW - 1 - i]);
        }
        assert!(w[5] > w[4] && w[4] > w[0]);
    }

    #[test]
    fn psnr_known_mse() {
        // Constant difference 0.1 -> MSE 0.01 -> PSNR 20 dB.
        let r = vec![0.5f32; 100];
        let t: Vec<f32> = r.iter().map(|&v| v + 0.1).collect();
        let d = f64::from(0.6f32) - f64::from(0.5f32);
        let expect = -10.0 * (d * d).log10();
        let p = psnr(&r, &t).unwrap();
        assert!((p - expect).abs() < 1e-9, "{p} vs {expect}");
        assert!((p - 20.0).abs() < 1e-5);

        // Half the samples off by 0.5 (exact in f32): MSE 0.125.
        let r = vec![0.0f32; 8];
        let t = vec![0.5f32, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0];
        let p = psnr(&r, &t).unwrap();
        assert!((p - 10.0 * 8f64.log10()).abs() < 1e-12);
    }

    #[test]
    fn psnr_does_not_clip() {
        // Output outside [0,1] counts fully.
        let r = vec![1.0f32; 4];
        let t = vec![2.0f32; 4];
        assert_eq!(psnr(&r, &t).unwrap(), 0.0);
    }

    #[test]
    fn psnr_identical_is_infinite() {
        let r = lcg_image(64, 3);
        assert_eq!(psnr(&r, &r).unwrap(), f64::INFINITY);
    }

    #[test]
    fn psnr_errors() {
        assert_eq!(
            psnr(&[0.0; 3], &[0.0; 4]),
            Err(MetricsError::LengthMismatch {
                reference: 3,
                test: 4
            })
        );
        assert_eq!(psnr(&[], &[]), Err(MetricsError::Empty));
        assert!(psnr(&[f32::NAN], &[0.0]).unwrap().is_nan());
    }

    #[test]
    fn ssim_identical_is_one() {
        let (w, h) = (23, 17);
        let r = lcg_image(w * h, 1);
        let s = ssim(&r, &r, w, h).unwrap();
        assert!((s - 1.0).abs() < 1e-12, "{s}");
    }

    #[test]
    fn ssim_matches_brute_force() {
        let (w, h) = (29, 19);
        let r = lcg_image(w * h, 7);
        let t: Vec<f32> = r
            .iter()
            .zip(lcg_image(w * h, 11))
            .map(|(&a, n)| a + 0.3 * (n - 0.5))
            .collect();
        let fast = ssim(&r, &t, w, h).unwrap();
        let slow = ssim_brute(&r, &t, w, h);
        assert!((fast - slow).abs() < 1e-12, "{fast} vs {slow}");
        assert!(fast > 0.0 && fast < 1.0);

        // Exactly window-sized image: a single position.
        let (w, h) = (11, 11);
        let r = lcg_image(w * h, 5);
        let t = lcg_image(w * h, 6);
        let fast = ssim(&r, &t, w, h).unwrap();
        assert!((fast - ssim_brute(&r, &t, w, h)).abs() < 1e-12);
    }

    #[test]
    fn ssim_constant_images_closed_form() {
        // Constant a vs constant b: variances vanish, SSIM = (2ab+C1)/(a²+b²+C1).
        let (w, h) = (15, 12);
        let (a, b) = (0.25f32, 0.75f32);
        let r = vec![a; w * h];
        let t = vec![b; w * h];
        let (a, b) = (f64::from(a), f64::from(b));
        let expect = (2.0 * a * b + SSIM_C1) / (a * a + b * b + SSIM_C1);
        let s = ssim(&r, &t, w, h).unwrap();
        assert!((s - expect).abs() < 1e-12, "{s} vs {expect}");
    }

    #[test]
    fn ssim_errors() {
        let r = vec![0.0f32; 120];
        assert_eq!(
            ssim(&r, &r[..119], 12, 10),
            Err(MetricsError::LengthMismatch {
                reference: 120,
                test: 119
            })
        );
        assert_eq!(
            ssim(&r, &r, 12, 11),
            Err(MetricsError::ShapeMismatch {
                width: 12,
                height: 11,
                len: 120
            })
        );
        assert_eq!(
            ssim(&r, &r, 12, 10),
            Err(MetricsError::TooSmall {
                width: 12,
                height: 10,
                window: 11
            })
        );
        assert!(ssim(&r, &r, usize::MAX, 2).is_err());
        assert_eq!(ssim(&[], &[], 0, 0), Err(MetricsError::Empty));
    }
}
