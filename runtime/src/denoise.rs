//! Running a [`Model`] on an image through the core.

use anyhow::{bail, Context};
use n3net_core::{Isa, Plan};

use crate::model::Model;
use crate::noise::sigma_map_from_profile;

/// The noise level given to a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseLevel {
    /// Not given: only valid for models trained on one fixed σ.
    Unknown,
    /// A constant σ on the 0–255 scale.
    Sigma(f32),
    /// A Poisson–Gaussian profile: the noise variance at a pixel of
    /// intensity `x ∈ [0, 1]` is `σ²(x) = a·x + b` (both on the `[0, 1]`
    /// scale, the form of DNG's `NoiseProfile` and Android's
    /// `SENSOR_NOISE_PROFILE`). The intensity used is the noisy pixel value
    /// clamped to `[0, 1]`.
    Profile {
        /// Signal-dependent (shot-noise) variance gain.
        a: f32,
        /// Signal-independent (read-noise) variance.
        b: f32,
    },
}

/// Builds the network input: the image, plus a σ map (σ/255 per pixel) for a
/// noise-conditioned model with two input channels.
pub fn network_input(model: &Model, image: &[f32], noise: NoiseLevel) -> anyhow::Result<Vec<f32>> {
    match (model.hyper.in_channels, noise) {
        (1, _) => Ok(image.to_vec()),
        (2, NoiseLevel::Sigma(s)) => {
            if !(s.is_finite() && s >= 0.0) {
                bail!("the noise level must be finite and >= 0, got {s}");
            }
            let mut v = image.to_vec();
            v.extend(std::iter::repeat_n(s / 255.0, image.len()));
            Ok(v)
        }
        (2, NoiseLevel::Profile { a, b }) => {
            if !(a.is_finite() && b.is_finite() && a >= 0.0 && b >= 0.0) {
                bail!("the noise profile A,B must be finite and >= 0, got {a},{b}");
            }
            let clamped: Vec<f32> = image.iter().map(|&x| x.clamp(0.0, 1.0)).collect();
            let mut v = image.to_vec();
            v.extend(sigma_map_from_profile(&clamped, a, b));
            Ok(v)
        }
        (2, NoiseLevel::Unknown) => {
            bail!("this model is noise-level conditioned: give --sigma or --noise-profile")
        }
        (c, _) => bail!("models with {c} input channels are not supported by this tool"),
    }
}

/// Denoises one `height × width` grey plane with `model`.
pub fn denoise_plane(
    model: &Model,
    image: &[f32],
    height: usize,
    width: usize,
    noise: NoiseLevel,
) -> anyhow::Result<Vec<f32>> {
    denoise_plane_with_progress(model, image, height, width, noise, &mut |_, _| {})
}

/// [`denoise_plane`], reporting `(done, total)` steps as it goes.
pub fn denoise_plane_with_progress(
    model: &Model,
    image: &[f32],
    height: usize,
    width: usize,
    noise: NoiseLevel,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<Vec<f32>> {
    if image.len() != height * width {
        bail!("image length {} is not {height}×{width}", image.len());
    }
    let net = model.network()?;
    let plan = Plan::new(&net, height, width, Isa::detect())
        .with_context(|| format!("cannot run a {width}×{height} image"))?;
    let input = network_input(model, image, noise)?;
    let mut output = vec![0.0; net.cout() * height * width];
    let mut ws = vec![0u8; plan.workspace_bytes()];
    plan.run_with_progress(&input, &mut output, &mut ws, progress)?;
    Ok(output)
}
