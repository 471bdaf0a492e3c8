//! `n3net`: denoise images, evaluate and inspect N³Net models.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use n3net_core::{Isa, Plan};
use n3net_runtime::denoise::{denoise_plane, denoise_plane_with_progress, NoiseLevel};
use n3net_runtime::eval::evaluate;
use n3net_runtime::image_io::{read_image, write_image, BitDepth, Image};
use n3net_runtime::{onnx, reference, Model};

/// Neural Nearest Neighbors Networks (N³Net) image denoising.
///
/// Models are ONNX files written by `python/export_onnx.py` (the authors'
/// checkpoints converted, or the project's own models). Images are grey PNG
/// (8- or 16-bit; colour is converted to luma), binary PGM, or float32 `.npy`
/// (H×W, values on a [0, 1] scale).
#[derive(Parser)]
#[command(name = "n3net", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Denoise one image: `n3net denoise noisy.png clean.png --model m.onnx`.
    Denoise {
        /// Noisy input image (.png, .pgm or .npy).
        input: PathBuf,
        /// Output image (.png, .pgm or .npy; .npy keeps the exact float values).
        output: PathBuf,
        /// Model file (.onnx).
        #[arg(long, short)]
        model: PathBuf,
        /// Noise level σ on the 0–255 scale (required by noise-conditioned models).
        #[arg(long, short)]
        sigma: Option<f32>,
        /// Bits per sample of a PNG/PGM output.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(8..=16))]
        bits: u8,
    },
    /// Evaluate on a test set: adds seeded Gaussian noise, prints per-image
    /// and mean PSNR and SSIM.
    Eval {
        /// Model file (.onnx).
        #[arg(long, short)]
        model: PathBuf,
        /// Folder of clean test images.
        #[arg(long, short)]
        dataset: PathBuf,
        /// Noise level σ on the 0–255 scale.
        #[arg(long, short)]
        sigma: f32,
        /// Seed of the noise draws (image i uses a stream derived from seed and i).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Only the first N images (by file name).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Show a model's hyper-parameters, size, cost and workspace.
    Info {
        /// Model file (.onnx).
        model: PathBuf,
        /// Image height for the workspace figure.
        #[arg(long, default_value_t = 512)]
        height: usize,
        /// Image width for the workspace figure.
        #[arg(long, default_value_t = 512)]
        width: usize,
    },
    /// Compare the core with tract running the whole ONNX graph on the same
    /// input (the size the model was exported for); prints the max abs difference.
    Compare {
        /// Model file (.onnx).
        #[arg(long, short)]
        model: PathBuf,
        /// Input image (.png, .pgm or .npy) of the exported size.
        input: PathBuf,
        /// Fail if the max abs difference exceeds this.
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f32,
    },
}

fn load_model(path: &Path) -> anyhow::Result<Model> {
    onnx::load(path).with_context(|| format!("cannot load the model {}", path.display()))
}

fn read_grey(path: &Path) -> anyhow::Result<Image> {
    let img = read_image(path)?;
    if img.channels != 1 {
        bail!(
            "{}: expected one channel, found {}",
            path.display(),
            img.channels
        );
    }
    Ok(img)
}

fn noise_level(sigma: Option<f32>) -> NoiseLevel {
    sigma.map_or(NoiseLevel::Unknown, NoiseLevel::Sigma)
}

fn cmd_denoise(
    input: &Path,
    output: &Path,
    model: &Path,
    sigma: Option<f32>,
    bits: u8,
) -> anyhow::Result<()> {
    let model = load_model(model)?;
    if let (Some(s), Some(m)) = (sigma, model.hyper.sigma) {
        if model.hyper.in_channels == 1 && (s - m).abs() > 0.5 {
            eprintln!(
                "warning: this model was trained for σ = {m}, the image is said to have σ = {s}"
            );
        }
    }
    let img = read_grey(input)?;
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("denoising [{bar:30}] {pos}/{len} stages, {elapsed} elapsed")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let out = denoise_plane_with_progress(
        &model,
        &img.data,
        img.height,
        img.width,
        noise_level(sigma),
        &mut progress,
    )?;
    bar.finish_and_clear();
    let depth = match bits {
        8 => BitDepth::Eight,
        16 => BitDepth::Sixteen,
        b => bail!("--bits must be 8 or 16, got {b}"),
    };
    let out = Image::new(img.width, img.height, 1, out)?;
    write_image(output, &out, depth)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cmd_eval(
    model: &Path,
    dataset: &Path,
    sigma: f32,
    seed: u64,
    json: Option<&Path>,
    threads: Option<usize>,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let model = load_model(model)?;
    if let Some(t) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    let report = evaluate(&model, dataset, sigma, seed, limit, true)?;
    println!(
        "{:<16} {:>10} {:>11} {:>9} {:>7}",
        "image", "size", "noisy[dB]", "out[dB]", "SSIM"
    );
    for r in &report.images {
        let size = format!("{}x{}", r.size[0], r.size[1]);
        println!(
            "{:<16} {:>10} {:>11.3} {:>9.3} {:>7.4}",
            r.name, size, r.psnr_noisy, r.psnr, r.ssim
        );
    }
    println!(
        "mean over {} images (σ = {sigma}, seed {seed}): PSNR {:.3} dB (noisy {:.3} dB), SSIM {:.4}",
        report.images.len(),
        report.mean_psnr,
        report.mean_psnr_noisy,
        report.mean_ssim
    );
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn cmd_info(path: &Path, height: usize, width: usize) -> anyhow::Result<()> {
    let model = load_model(path)?;
    let net = model.network()?;
    let h = &model.hyper;
    println!("model            {}", path.display());
    println!("source           {}", h.source);
    println!(
        "trained σ        {}",
        h.sigma
            .map_or("not fixed (noise-level input)".into(), |s| s.to_string())
    );
    println!(
        "channels         in {} → out {}",
        h.in_channels, h.out_channels
    );
    println!(
        "N3 blocks        {} (DnCNN stages: {})",
        h.n3_blocks,
        h.n3_blocks + 1
    );
    println!(
        "DnCNN            depth {}, {} features, {}×{} kernels, batch-norm",
        h.dncnn_depth, h.dncnn_features, h.dncnn_kernel, h.dncnn_kernel
    );
    println!(
        "embedding CNN    depth {}, {} features, {} output channels, {}×{} kernels",
        h.embed_depth, h.embed_features, h.embed_out, h.embed_kernel, h.embed_kernel
    );
    println!(
        "N3               k {}, patch {} stride {}, window {}×{} patches, temperature bias {}, distance BN {}",
        h.k, h.patch_size, h.patch_stride, h.window, h.window, h.temp_bias, h.distance_bn
    );
    println!(
        "parameters       {} in the file, {} after batch-norm folding",
        model.source_parameters,
        net.parameters()
    );
    println!("multiply-adds    {} per pixel", net.macs_per_pixel());
    match Plan::new(&net, height, width, Isa::detect()) {
        Ok(plan) => println!(
            "workspace        {} bytes ({:.1} MiB) for {width}×{height}",
            plan.workspace_bytes(),
            plan.workspace_bytes() as f64 / (1 << 20) as f64
        ),
        Err(e) => println!("workspace        not available for {width}×{height}: {e}"),
    }
    Ok(())
}

fn cmd_compare(model_path: &Path, input: &Path, tolerance: f32) -> anyhow::Result<()> {
    let model = load_model(model_path)?;
    let img = read_grey(input)?;
    let ours = denoise_plane(
        &model,
        &img.data,
        img.height,
        img.width,
        NoiseLevel::Unknown,
    )?;
    let theirs = reference::run_tract(model_path, &img.data, 1, img.height, img.width)?;
    if ours.len() != theirs.len() {
        bail!(
            "tract returned {} values, the core {}",
            theirs.len(),
            ours.len()
        );
    }
    let diff = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "{}×{}: max |core − tract| = {diff:.3e}",
        img.width, img.height
    );
    if diff.is_nan() || diff > tolerance {
        bail!("difference {diff:.3e} exceeds the tolerance {tolerance:.1e}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Denoise {
            input,
            output,
            model,
            sigma,
            bits,
        } => cmd_denoise(input, output, model, *sigma, *bits),
        Command::Eval {
            model,
            dataset,
            sigma,
            seed,
            json,
            threads,
            limit,
        } => cmd_eval(
            model,
            dataset,
            *sigma,
            *seed,
            json.as_deref(),
            *threads,
            *limit,
        ),
        Command::Info {
            model,
            height,
            width,
        } => cmd_info(model, *height, *width),
        Command::Compare {
            model,
            input,
            tolerance,
        } => cmd_compare(model, input, *tolerance),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
