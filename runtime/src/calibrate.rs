//! q16 calibration: the scale of every activation tensor, from f32 runs of
//! the model over a set of noisy images (Train400 by default).
//!
//! Each image gets seeded Gaussian noise at one of the calibration noise
//! levels (the model's σ when it was trained for one, a spread over
//! `[0, 75]` for noise-conditioned models), runs through the f32 stream,
//! and the largest magnitude of each tensor is kept
//! ([`n3net_core::exec::stream::Stream::activation_peaks`]). A tensor's
//! scale is `peak · margin / 32767`: values up to `margin` times the largest
//! one seen are representable, larger ones saturate. An N³ block's output
//! shares its input's scale (the larger of the two peaks).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use n3net_core::Precision;
use rayon::prelude::*;

use crate::denoise::{network_input, stream_planes_with, NoiseLevel};
use crate::eval::list_images;
use crate::image_io::read_image;
use crate::model::Model;
use crate::noise::add_gaussian_noise;

/// Noise levels of noise-conditioned models, cycled over the images.
pub const BLIND_SIGMAS: [f32; 5] = [5.0, 15.0, 25.0, 50.0, 75.0];

/// How to calibrate.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Folder of grey images (the first `images` by file name are used).
    pub dir: PathBuf,
    /// Images used.
    pub images: usize,
    /// Headroom over the largest value seen (≥ 1).
    pub margin: f32,
    /// Noise seed.
    pub seed: u64,
}

impl Calibration {
    /// Train400 under `data` (`N3NET_DATA`), 32 images, margin 1.25.
    pub fn train400(data: &Path) -> Self {
        Self {
            dir: data.join("train").join("Train400"),
            images: 32,
            margin: 1.25,
            seed: 0x5eed_ca1b,
        }
    }
}

/// The activation scales of `model` (f32) for q16, in the order of
/// [`n3net_core::Network::with_activation_scales`].
pub fn activation_scales(
    model: &Model,
    cal: &Calibration,
    progress: bool,
) -> anyhow::Result<Vec<f32>> {
    let net = model.network()?;
    if net.precision() != Precision::F32 {
        bail!(
            "calibration runs the f32 model; this one is {}",
            net.precision().name()
        );
    }
    if !(cal.margin.is_finite() && cal.margin >= 1.0) || cal.images == 0 {
        bail!("calibration needs at least one image and a margin >= 1");
    }
    let mut files = list_images(&cal.dir).context("calibration images")?;
    files.truncate(cal.images);
    let sigmas: Vec<f32> = match model.hyper.sigma {
        Some(s) if model.hyper.in_channels == 1 => vec![s],
        _ => BLIND_SIGMAS.to_vec(),
    };
    let bar = if progress {
        ProgressBar::new(files.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("calibrating [{bar:30}] {pos}/{len} images, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let peaks = files
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let img = read_image(path)?;
            if img.channels != 1 {
                bail!("{}: expected a grey image", path.display());
            }
            let sigma = sigmas[i % sigmas.len()];
            let noisy = add_gaussian_noise(&img.data, sigma, cal.seed, i as u64);
            let input = network_input(model, &noisy, NoiseLevel::Sigma(sigma))?;
            let (_, peaks) = stream_planes_with(&net, &input, img.height, img.width)
                .with_context(|| format!("calibrating on {}", path.display()))?;
            bar.inc(1);
            Ok(peaks)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    bar.finish_and_clear();
    let mut peak = vec![0.0f32; net.activation_count()];
    for p in &peaks {
        for (m, v) in peak.iter_mut().zip(p) {
            *m = m.max(*v);
        }
    }
    for (i, o) in net.n3_activations() {
        let m = peak[i].max(peak[o]);
        (peak[i], peak[o]) = (m, m);
    }
    Ok(peak
        .iter()
        .map(|&p| p.max(1e-6) * cal.margin / 32767.0)
        .collect())
}
