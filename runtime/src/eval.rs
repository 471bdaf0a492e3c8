//! Evaluation on a test set, as the paper measured (spec §6): seeded Gaussian
//! noise added in float without clipping, PSNR (peak 1) and SSIM on the
//! unclipped output, means over the set.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::denoise::{denoise_plane, NoiseLevel};
use crate::image_io::read_image;
use crate::metrics::{psnr, ssim};
use crate::model::Model;
use crate::noise::add_gaussian_noise;

/// The result on one image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageResult {
    /// File name.
    pub name: String,
    /// Width × height.
    pub size: [usize; 2],
    /// PSNR of the noisy input [dB].
    pub psnr_noisy: f64,
    /// PSNR of the output [dB].
    pub psnr: f64,
    /// SSIM of the output.
    pub ssim: f64,
}

/// The result on a set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The model's source.
    pub model: String,
    /// The test set folder.
    pub dataset: String,
    /// σ on the 0–255 scale.
    pub sigma: f32,
    /// Noise seed.
    pub seed: u64,
    /// Per image, in file-name order.
    pub images: Vec<ImageResult>,
    /// Mean PSNR of the noisy inputs.
    pub mean_psnr_noisy: f64,
    /// Mean PSNR of the outputs.
    pub mean_psnr: f64,
    /// Mean SSIM of the outputs.
    pub mean_ssim: f64,
}

/// The images of a test set: PNG, PGM and NPY files, sorted by name. The
/// position in this list is the image index of the noise draw.
pub fn list_images(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the dataset folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            matches!(ext.as_str(), "png" | "pgm" | "npy")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no .png, .pgm or .npy images in {}", dir.display());
    }
    Ok(files)
}

/// Evaluates `model` on every image of `dir` at noise level `sigma`.
pub fn evaluate(
    model: &Model,
    dir: &Path,
    sigma: f32,
    seed: u64,
    limit: Option<usize>,
    progress: bool,
) -> anyhow::Result<Report> {
    if !(sigma.is_finite() && sigma >= 0.0) {
        bail!("sigma must be finite and >= 0, got {sigma}");
    }
    let mut files = list_images(dir)?;
    files.truncate(limit.unwrap_or(usize::MAX));
    let bar = if progress {
        ProgressBar::new(files.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} images, {elapsed} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("σ={sigma}"));
    let images = files
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let r = eval_one(model, path, i as u64, sigma, seed);
            bar.inc(1);
            r
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    bar.finish_and_clear();
    let n = images.len() as f64;
    Ok(Report {
        model: model.hyper.source.clone(),
        dataset: dir.display().to_string(),
        sigma,
        seed,
        mean_psnr_noisy: images.iter().map(|r| r.psnr_noisy).sum::<f64>() / n,
        mean_psnr: images.iter().map(|r| r.psnr).sum::<f64>() / n,
        mean_ssim: images.iter().map(|r| r.ssim).sum::<f64>() / n,
        images,
    })
}

fn eval_one(
    model: &Model,
    path: &Path,
    index: u64,
    sigma: f32,
    seed: u64,
) -> anyhow::Result<ImageResult> {
    let img = read_image(path)?;
    if img.channels != 1 {
        bail!("{}: expected a grey image", path.display());
    }
    let noisy = add_gaussian_noise(&img.data, sigma, seed, index);
    let out = denoise_plane(
        model,
        &noisy,
        img.height,
        img.width,
        NoiseLevel::Sigma(sigma),
    )
    .with_context(|| format!("denoising {}", path.display()))?;
    Ok(ImageResult {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size: [img.width, img.height],
        psnr_noisy: psnr(&img.data, &noisy)?,
        psnr: psnr(&img.data, &out)?,
        ssim: ssim(&img.data, &out, img.width, img.height)?,
    })
}
