//! Noise levels: the C description, its checks, and the σ channel a
//! noise-conditioned model reads beside the image.

use n3net_core::math::sqrt;

use crate::error::{Code, Status, N3NET_ERR_NOISE_LEVEL};

/// `N3netNoise.kind`: no noise level (fixed-σ models only).
pub const N3NET_NOISE_NONE: u32 = 0;
/// `N3netNoise.kind`: one σ for the whole image, on the 0–255 scale of the
/// `[0, 1]`-normalised signal (`sigma / 255` in signal units).
pub const N3NET_NOISE_SIGMA: u32 = 1;
/// `N3netNoise.kind`: Poisson–Gaussian noise, variance `a·x + b` at a pixel of
/// normalised intensity `x` (the noisy value clamped to `[0, 1]`), as in a
/// DNG `NoiseProfile` or Android's `SENSOR_NOISE_PROFILE`.
pub const N3NET_NOISE_PROFILE: u32 = 2;

/// Largest σ accepted, on the 0–255 scale (the default model was trained up
/// to 75); a profile's σ at full scale, `sqrt(a + b)·255`, has the same bound.
pub const N3NET_MAX_SIGMA: f32 = 1000.0;

/// The noise of an image, as the model is told it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct N3netNoise {
    /// `N3NET_NOISE_NONE`, `N3NET_NOISE_SIGMA` or `N3NET_NOISE_PROFILE`.
    pub kind: u32,
    /// `N3NET_NOISE_SIGMA`: σ on the 0–255 scale, in `[0, N3NET_MAX_SIGMA]`.
    pub sigma: f32,
    /// `N3NET_NOISE_PROFILE`: signal-dependent variance gain, finite, ≥ 0.
    pub a: f32,
    /// `N3NET_NOISE_PROFILE`: constant variance, finite, ≥ 0.
    pub b: f32,
}

/// A checked noise level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Noise {
    /// A fixed-σ model: no σ channel.
    None,
    /// σ in signal units (σ/255).
    Sigma(f32),
    /// Variance `a·x + b`.
    Profile { a: f32, b: f32 },
}

impl Noise {
    /// Checks `noise` (`None` for a NULL pointer) against a model with
    /// `in_channels` inputs: a noise-conditioned model (2) needs a level, a
    /// fixed-σ model (1) takes none.
    pub(crate) fn new(noise: Option<N3netNoise>, in_channels: usize) -> Status<Self> {
        let bad = Err(Code(N3NET_ERR_NOISE_LEVEL));
        let n = noise.unwrap_or_default();
        let level = match n.kind {
            N3NET_NOISE_NONE => Noise::None,
            N3NET_NOISE_SIGMA => {
                if !(n.sigma >= 0.0 && n.sigma <= N3NET_MAX_SIGMA) {
                    return bad;
                }
                Noise::Sigma(n.sigma / 255.0)
            }
            N3NET_NOISE_PROFILE => {
                let max = N3NET_MAX_SIGMA / 255.0;
                if !(n.a >= 0.0 && n.b >= 0.0 && n.a + n.b <= max * max) {
                    return bad;
                }
                Noise::Profile { a: n.a, b: n.b }
            }
            _ => return bad,
        };
        match (in_channels, level) {
            (1, Noise::None) => Ok(level),
            (2, Noise::Sigma(_) | Noise::Profile { .. }) => Ok(level),
            _ => bad,
        }
    }

    /// Writes the σ channel (signal units) for the image values `x` into
    /// `out`; nothing for [`Noise::None`]. The same operations as the
    /// runtime's, so the bits agree with `n3net denoise`.
    pub(crate) fn fill(&self, x: &[f32], out: &mut [f32]) {
        match *self {
            Noise::None => {}
            Noise::Sigma(s) => out.fill(s),
            Noise::Profile { a, b } => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = sqrt((a * v.clamp(0.0, 1.0) + b).max(0.0));
                }
            }
        }
    }
}
