//! `n3net`: denoise images, evaluate and inspect N³Net models.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use n3net_core::exec::stream::Stream;
use n3net_core::{Isa, Network, Plan, Precision};
use n3net_runtime::bench;
use n3net_runtime::blob::{write_blob_as, Quant};
use n3net_runtime::calibrate::{activation_scales, Calibration};
use n3net_runtime::denoise::{
    denoise_file, denoise_plane, network_input, NoiseLevel, StripeOptions,
};
use n3net_runtime::eval::{evaluate, list_images};
use n3net_runtime::image_io::{read_image, write_npy_f32, BitDepth, Image};
use n3net_runtime::metrics::max_abs_diff;
use n3net_runtime::noise::add_gaussian_noise;
use n3net_runtime::{reference, Model};

/// `println!` that returns the write error instead of panicking, so that a
/// closed pipe (`n3net info | head`) ends the command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// Neural Nearest Neighbors Networks (N³Net) image denoising.
///
/// Models are ONNX files written by `python/export_onnx.py` (the authors'
/// checkpoints converted, or the project's own models), or weight blobs
/// (`.n3b`) written from them by `n3net convert`. Images are grey PNG
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
    /// Denoise one image: `n3net denoise noisy.png clean.png --sigma 25`.
    ///
    /// The image is streamed: rows are decoded, run through the network in
    /// column stripes and encoded as they become final, in memory that does
    /// not grow with the image (see --max-memory).
    Denoise(DenoiseArgs),
    /// Evaluate on a test set: adds seeded Gaussian noise, prints per-image
    /// and mean PSNR and SSIM.
    Eval {
        /// Model file (.onnx or .n3b); default: the built-in default model.
        #[arg(long, short)]
        model: Option<PathBuf>,
        #[command(flatten)]
        draws: Draws,
        /// Write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Only the first N images (by file name).
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        precision: PrecisionArgs,
    },
    /// Show a model's hyper-parameters, size, cost and workspace.
    Info {
        /// Model file (.onnx or .n3b); default: the built-in default model.
        model: Option<PathBuf>,
        /// Image height for the workspace figure.
        #[arg(long, default_value_t = 512)]
        height: usize,
        /// Image width for the workspace figure.
        #[arg(long, default_value_t = 512)]
        width: usize,
        /// Also the workspace of column stripes this many columns wide.
        #[arg(long)]
        stripe: Option<usize>,
    },
    /// Compare the core with tract running the whole ONNX graph on the same
    /// input (the size the model was exported for); prints the max abs difference.
    Compare {
        /// Model file (.onnx).
        #[arg(long, short)]
        model: PathBuf,
        /// Input image (.png, .pgm or .npy) of the exported size.
        input: PathBuf,
        /// Noise level σ (0–255) for a noise-conditioned model.
        #[arg(long, short)]
        sigma: Option<f32>,
        /// Fail if the max abs difference exceeds this.
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f32,
    },
    /// Convert a model (.onnx, or the built-in default) to the flash-ready
    /// weight blob: `n3net convert model.onnx --precision q16 -o model.n3b`.
    Convert {
        /// Model file (.onnx or .n3b); default: the built-in default model.
        model: Option<PathBuf>,
        /// Output blob file (.n3b).
        #[arg(long, short)]
        out: PathBuf,
        #[command(flatten)]
        precision: PrecisionArgs,
    },
    /// Time whole images through the network: seconds per image, megapixels
    /// per second and achieved GMAC/s (multiply-adds of the network per second),
    /// on a synthetic noisy image held in memory.
    Bench {
        /// Model file (.onnx or .n3b); default: the built-in default model.
        #[arg(long, short)]
        model: Option<PathBuf>,
        /// Square image sides, comma-separated (tract: the exported size only).
        #[arg(long, value_delimiter = ',', default_value = "256,512")]
        size: Vec<usize>,
        /// Thread counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// Timed runs of each configuration (best and median printed).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// What runs the network: the core's stream, or tract running the
        /// ONNX graph (which needs the model exported at the image size).
        #[arg(long, value_enum, default_value_t = Engine::N3net)]
        engine: Engine,
        /// Append one JSON object per configuration to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        #[command(flatten)]
        precision: PrecisionArgs,
    },
    /// Write the noisy images `eval` uses (same seed, same draws) as float32
    /// `.npy` files, so other denoisers can be measured on identical inputs.
    Noisy {
        #[command(flatten)]
        draws: Draws,
        /// Output folder (created); one `<image stem>.npy` per image.
        #[arg(long, short)]
        out: PathBuf,
    },
}

/// What `n3net bench` times.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Engine {
    /// The core's streaming executor.
    N3net,
    /// tract running the exported ONNX graph.
    Tract,
}

/// Arguments of `n3net denoise`.
#[derive(clap::Args)]
struct DenoiseArgs {
    /// Noisy input image (.png, .pgm or .npy).
    input: PathBuf,
    /// Output image (.png, .pgm or .npy; .npy keeps the exact float values).
    output: PathBuf,
    /// Model file (.onnx or .n3b); default: the built-in default model
    /// (models/n3net-gray-blind.onnx, noise-level conditioned).
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// Noise level σ on the 0–255 scale, at most 1000 (a noise-conditioned
    /// model needs this or --noise-profile).
    #[arg(long, short, conflicts_with = "noise_profile")]
    sigma: Option<f32>,
    /// Poisson–Gaussian noise profile `A,B`: the noise variance at a pixel
    /// of intensity x ∈ [0, 1] is A·x + B (DNG NoiseProfile / Android
    /// SENSOR_NOISE_PROFILE form, on the [0, 1] scale). The intensity is the
    /// noisy pixel value clamped to [0, 1].
    #[arg(long, value_name = "A,B", value_parser = parse_profile, allow_hyphen_values = true)]
    noise_profile: Option<(f32, f32)>,
    /// Bits per sample of a PNG/PGM output.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(8..=16))]
    bits: u8,
    /// Output columns per stripe (default: the widest that fits --max-memory).
    /// The output does not depend on it.
    #[arg(long)]
    stripe: Option<usize>,
    /// Threads (default: all cores): stripes run in parallel, or, for an
    /// image whose whole width fits --max-memory, each layer's output
    /// channels are split between them. The output does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Budget in MiB for the stream workspaces of all threads together.
    #[arg(long, default_value_t = 192)]
    max_memory: usize,
    /// Print the stripe layout and the workspace size.
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    precision: PrecisionArgs,
}

/// The precision a command runs or writes a model in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PrecisionArg {
    /// IEEE single precision (the reference).
    F32,
    /// IEEE half precision weights and activations, f32 arithmetic.
    F16,
    /// int16 fixed point, calibrated on images (--calibration).
    Q16,
}

/// `--precision` and the q16 calibration set.
#[derive(clap::Args)]
struct PrecisionArgs {
    /// Run (convert: write) the model in this precision; default: the
    /// model file's own (f32 for ONNX). f16 and q16 are made from an f32
    /// model.
    #[arg(long, value_enum)]
    precision: Option<PrecisionArg>,
    /// Folder of grey images that calibrate the q16 activation ranges
    /// (default: train/Train400 under $N3NET_DATA).
    #[arg(long, value_name = "DIR")]
    calibration: Option<PathBuf>,
    /// Calibration images used (the first N by file name).
    #[arg(long, default_value_t = 32, value_name = "N")]
    calibration_images: usize,
}

impl PrecisionArgs {
    /// The precision asked for, if any.
    fn wanted(&self) -> Option<Precision> {
        self.precision.map(|p| match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F16 => Precision::F16,
            PrecisionArg::Q16 => Precision::Q16,
        })
    }

    /// The q16 activation scales of `model`, calibrated.
    fn calibrate(&self, model: &Model) -> anyhow::Result<Vec<f32>> {
        let mut cal = match (&self.calibration, std::env::var_os("N3NET_DATA")) {
            (Some(dir), _) => Calibration {
                dir: dir.clone(),
                ..Calibration::train400(Path::new(""))
            },
            (None, Some(data)) => Calibration::train400(Path::new(&data)),
            (None, None) => bail!(
                "q16 needs calibration images: give --calibration DIR (e.g. Train400) or set N3NET_DATA"
            ),
        };
        cal.images = self.calibration_images;
        activation_scales(model, &cal, true)
    }

    /// `model` in the precision asked for.
    fn apply(&self, model: Model) -> anyhow::Result<Model> {
        match self.wanted() {
            None => Ok(model),
            Some(p) if p == model.precision() => Ok(model),
            Some(p) => model.with_precision(self.quant(&model, p)?.as_quant()),
        }
    }

    /// How to write `model` (f32) in precision `p`.
    fn quant(&self, model: &Model, p: Precision) -> anyhow::Result<Owned> {
        if model.precision() != Precision::F32 {
            bail!(
                "the model is {} already: convert the f32 model (ONNX) instead",
                model.precision().name()
            );
        }
        Ok(match p {
            Precision::F32 => Owned::F32,
            Precision::F16 => Owned::F16,
            Precision::Q16 => Owned::Q16(self.calibrate(model)?),
        })
    }
}

/// A [`Quant`] with its calibrated scales.
enum Owned {
    F32,
    F16,
    Q16(Vec<f32>),
}

impl Owned {
    fn as_quant(&self) -> Quant<'_> {
        match self {
            Owned::F32 => Quant::F32,
            Owned::F16 => Quant::F16,
            Owned::Q16(s) => Quant::Q16 {
                activation_scales: s,
            },
        }
    }
}

/// A test set and its seeded noise draws (shared by `eval` and `noisy`).
#[derive(clap::Args)]
struct Draws {
    /// Folder of clean test images.
    #[arg(long, short)]
    dataset: PathBuf,
    /// Noise level σ on the 0–255 scale.
    #[arg(long, short)]
    sigma: f32,
    /// Seed of the noise draws (image i uses a stream derived from seed and i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn load_model(path: Option<&Path>) -> anyhow::Result<Model> {
    match path {
        Some(path) => n3net_runtime::load_model(path)
            .with_context(|| format!("cannot load the model {}", path.display())),
        None => n3net_runtime::default_model().context("cannot load the built-in default model"),
    }
}

fn parse_profile(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected A,B (two numbers), got {s:?}"))?;
    let parse = |t: &str| {
        t.trim()
            .parse::<f32>()
            .map_err(|e| format!("{t:?} is not a number: {e}"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if !(a.is_finite() && b.is_finite() && a >= 0.0 && b >= 0.0) {
        return Err(format!("A and B must be finite and >= 0, got {a},{b}"));
    }
    Ok((a, b))
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

fn noise_level(sigma: Option<f32>, profile: Option<(f32, f32)>) -> NoiseLevel {
    match (sigma, profile) {
        (Some(s), _) => NoiseLevel::Sigma(s),
        (None, Some((a, b))) => NoiseLevel::Profile { a, b },
        (None, None) => NoiseLevel::Unknown,
    }
}

fn cmd_denoise(args: &DenoiseArgs) -> anyhow::Result<()> {
    let model = args.precision.apply(load_model(args.model.as_deref())?)?;
    let noise = noise_level(args.sigma, args.noise_profile);
    if let (NoiseLevel::Sigma(s), Some(m)) = (noise, model.hyper.sigma) {
        if model.hyper.in_channels == 1 && (s - m).abs() > 0.5 {
            eprintln!(
                "warning: this model was trained for σ = {m}, the image is said to have σ = {s}"
            );
        }
    }
    let depth = match args.bits {
        8 => BitDepth::Eight,
        16 => BitDepth::Sixteen,
        b => bail!("--bits must be 8 or 16, got {b}"),
    };
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(t) => t,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let opts = StripeOptions {
        stripe: args.stripe,
        threads,
        max_memory: args
            .max_memory
            .checked_mul(1 << 20)
            .context("--max-memory is too large")?,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "denoising [{bar:30}] {percent}%, {elapsed} elapsed, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |rows: usize, total: usize| {
        bar.set_length(total as u64);
        bar.inc(rows as u64);
    };
    let (input, output) = (&args.input, &args.output);
    let st = denoise_file(&model, input, output, noise, depth, opts, &progress)?;
    bar.finish_and_clear();
    if args.verbose {
        eprintln!(
            "{} stripe(s) of {} columns on {} thread(s), {:.1} MiB workspace each",
            st.stripes,
            st.stripe,
            st.threads,
            st.workspace_bytes as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}

fn cmd_bench(
    path: Option<&Path>,
    sizes: &[usize],
    threads: &[usize],
    repeat: usize,
    engine: Engine,
    json: Option<&Path>,
    precision: &PrecisionArgs,
) -> anyhow::Result<()> {
    if repeat == 0 || threads.contains(&0) || sizes.contains(&0) {
        bail!("--repeat, --threads and --size must be at least 1");
    }
    let model = precision.apply(load_model(path)?)?;
    let net = model.network()?;
    let macs = net.macs_per_pixel() as f64;
    let cin = net.cin();
    let mut sink = match json {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        ),
        None => None,
    };
    let (name, sizes): (_, Vec<(usize, usize)>) = match engine {
        Engine::N3net => ("n3net", sizes.iter().map(|&n| (n, n)).collect()),
        Engine::Tract => {
            let Some(size) = model.hyper.export_size else {
                bail!("tract runs the graph at its exported size, which the model does not give");
            };
            if path.is_none_or(|p| p.extension().is_none_or(|e| e != "onnx")) {
                bail!("tract runs an ONNX model file: give --model MODEL.onnx");
            }
            ("tract", vec![size])
        }
    };
    let prec = if engine == Engine::Tract {
        "f32"
    } else {
        model.precision().name()
    };
    outln!(
        "{name} {prec}: {} multiply-adds per pixel, instruction set {}",
        macs as u64,
        Isa::detect().name()
    )?;
    for &(h, w) in &sizes {
        let rows = bench::synthetic_rows(cin, h, w);
        for &t in threads {
            let (timing, bytes) = match (engine, path) {
                (Engine::Tract, Some(p)) => {
                    (bench::time_tract(p, &rows, (cin, h, w), t, repeat)?, 0)
                }
                _ => bench::time_stream(&net, &rows, h, w, t, repeat)?,
            };
            let px = (h * w) as f64;
            let mps = px / timing.best / 1e6;
            let gmacs = macs * px / timing.best / 1e9;
            let ws = if bytes > 0 {
                format!(", workspace {:.1} MiB", bytes as f64 / (1 << 20) as f64)
            } else {
                String::new()
            };
            outln!(
                "{name} {prec} {w}x{h}, {t} thread(s): {:.3} s/image (median {:.3} s, {} runs), \
                 {mps:.4} MP/s, {gmacs:.2} GMAC/s{ws}",
                timing.best,
                timing.median,
                timing.runs
            )?;
            if let Some(f) = sink.as_mut() {
                use std::io::Write;
                let rec = serde_json::json!({
                    "engine": name,
                    "precision": prec,
                    "height": h,
                    "width": w,
                    "threads": t,
                    "best_s": timing.best,
                    "median_s": timing.median,
                    "runs": timing.runs,
                    "mp_per_s": mps,
                    "gmac_per_s": gmacs,
                    "macs_per_pixel": macs,
                    "workspace_bytes": bytes,
                });
                writeln!(f, "{rec}")?;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cmd_eval(
    model: Option<&Path>,
    dataset: &Path,
    sigma: f32,
    seed: u64,
    json: Option<&Path>,
    threads: Option<usize>,
    limit: Option<usize>,
    precision: &PrecisionArgs,
) -> anyhow::Result<()> {
    let model = precision.apply(load_model(model)?)?;
    if let Some(t) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    let report = evaluate(&model, dataset, sigma, seed, limit, true)?;
    outln!(
        "{:<16} {:>10} {:>11} {:>9} {:>7}",
        "image",
        "size",
        "noisy[dB]",
        "out[dB]",
        "SSIM"
    )?;
    for r in &report.images {
        let size = format!("{}x{}", r.size[0], r.size[1]);
        outln!(
            "{:<16} {:>10} {:>11.3} {:>9.3} {:>7.4}",
            r.name,
            size,
            r.psnr_noisy,
            r.psnr,
            r.ssim
        )?;
    }
    outln!(
        "mean over {} images (σ = {sigma}, seed {seed}, {}): PSNR {:.3} dB (noisy {:.3} dB), SSIM {:.4}",
        report.images.len(),
        model.precision().name(),
        report.mean_psnr,
        report.mean_psnr_noisy,
        report.mean_ssim
    )?;
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn cmd_info(
    path: Option<&Path>,
    height: usize,
    width: usize,
    stripe: Option<usize>,
) -> anyhow::Result<()> {
    let model = load_model(path)?;
    let net = model.network()?;
    let h = &model.hyper;
    outln!(
        "model            {}",
        path.map_or("built-in default".into(), |p| p.display().to_string())
    )?;
    outln!("source           {}", h.source)?;
    outln!("precision        {}", net.precision().name())?;
    outln!(
        "trained σ        {}",
        h.sigma
            .map_or("not fixed (noise-level input)".into(), |s| s.to_string())
    )?;
    outln!(
        "channels         in {} → out {}",
        h.in_channels,
        h.out_channels
    )?;
    outln!(
        "N3 blocks        {} (DnCNN stages: {})",
        h.n3_blocks,
        h.n3_blocks + 1
    )?;
    outln!(
        "DnCNN            depth {}, {} features, {}×{} kernels, batch-norm",
        h.dncnn_depth,
        h.dncnn_features,
        h.dncnn_kernel,
        h.dncnn_kernel
    )?;
    outln!(
        "embedding CNN    depth {}, {} features, {} output channels, {}×{} kernels",
        h.embed_depth,
        h.embed_features,
        h.embed_out,
        h.embed_kernel,
        h.embed_kernel
    )?;
    outln!(
        "N3               k {}, patch {} stride {}, window {}×{} patches, temperature bias {}, distance BN {}",
        h.k, h.patch_size, h.patch_stride, h.window, h.window, h.temp_bias, h.distance_bn
    )?;
    outln!(
        "parameters       {} in the file, {} after batch-norm folding",
        model.source_parameters,
        net.parameters()
    )?;
    outln!("multiply-adds    {} per pixel", net.macs_per_pixel())?;
    if let Some((eh, ew)) = h.export_size {
        outln!("ONNX graph       exported for {ew}×{eh} (the size tract can run it at)")?;
    }
    match Plan::new(&net, height, width, Isa::detect()) {
        Ok(plan) => outln!(
            "workspace        {} bytes ({:.1} MiB) for {width}×{height}",
            plan.workspace_bytes(),
            plan.workspace_bytes() as f64 / (1 << 20) as f64
        )?,
        Err(e) => outln!("workspace        not available for {width}×{height}: {e}")?,
    }
    print_stream_figures(&net, height, width, stripe)?;
    Ok(())
}

/// The streaming executor's workspace (independent of the height), its
/// latency, and the column stripes' halo and workspace (independent of the
/// width too).
fn print_stream_figures(
    net: &Network<'_>,
    height: usize,
    width: usize,
    stripe: Option<usize>,
) -> std::io::Result<()> {
    let bytes = match Stream::workspace_bytes(net, width) {
        Ok(b) => b,
        Err(e) => return outln!("stream workspace not available for width {width}: {e}"),
    };
    outln!(
        "stream workspace {bytes} bytes ({:.1} MiB) for width {width}, any height",
        bytes as f64 / (1 << 20) as f64
    )?;
    match Stream::latency_for(net, height) {
        Ok(rows) => outln!("stream latency   {rows} rows for {width}×{height}")?,
        Err(e) => outln!("stream latency   not available for {width}×{height}: {e}")?,
    }
    if let Ok(h) = Stream::max_halo(net) {
        outln!("stripe halo      at most {h} columns on each side")?;
    }
    if let Some(s) = stripe {
        match Stream::stripe_workspace_bytes(net, s) {
            Ok(b) => outln!(
                "stripe workspace {b} bytes ({:.1} MiB) for {s}-column stripes, any width and height",
                b as f64 / (1 << 20) as f64
            )?,
            Err(e) => outln!("stripe workspace not available for {s}-column stripes: {e}")?,
        }
    }
    Ok(())
}

fn cmd_compare(
    model_path: &Path,
    input: &Path,
    sigma: Option<f32>,
    tolerance: f32,
) -> anyhow::Result<()> {
    if model_path.extension().and_then(|e| e.to_str()) != Some("onnx") {
        bail!(
            "compare runs the ONNX graph with tract: give the .onnx file, not {}",
            model_path.display()
        );
    }
    let model = load_model(Some(model_path))?;
    let img = read_grey(input)?;
    if let Some((h, w)) = model.hyper.export_size {
        if (img.height, img.width) != (h, w) {
            bail!(
                "the graph was exported for {w}×{h} inputs and tract runs it only at that size; the input is {}×{}",
                img.width,
                img.height
            );
        }
    }
    let noise = noise_level(sigma, None);
    let ours = denoise_plane(&model, &img.data, img.height, img.width, noise)?;
    let net_input = network_input(&model, &img.data, noise)?;
    let theirs = reference::run_tract(
        model_path,
        &net_input,
        model.hyper.in_channels,
        img.height,
        img.width,
    )?;
    if ours.len() != theirs.len() {
        bail!(
            "tract returned {} values, the core {}",
            theirs.len(),
            ours.len()
        );
    }
    let diff = max_abs_diff(&theirs, &ours)?;
    outln!(
        "{}×{}: max |core − tract| = {diff:.3e}",
        img.width,
        img.height
    )?;
    if diff.is_nan() || diff > tolerance {
        bail!("difference {diff:.3e} exceeds the tolerance {tolerance:.1e}");
    }
    Ok(())
}

fn cmd_convert(model: Option<&Path>, out: &Path, precision: &PrecisionArgs) -> anyhow::Result<()> {
    let model = load_model(model)?;
    let p = precision.wanted().unwrap_or(Precision::F32);
    let quant = precision.quant(&model, p)?;
    let bytes = write_blob_as(&model, quant.as_quant())?;
    std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    outln!(
        "wrote {} ({} bytes, {:.1} KiB, {})",
        out.display(),
        bytes.len(),
        bytes.len() as f64 / 1024.0,
        p.name()
    )?;
    Ok(())
}

fn cmd_noisy(draws: &Draws, out: &Path) -> anyhow::Result<()> {
    let (dataset, sigma, seed) = (&draws.dataset, draws.sigma, draws.seed);
    if !(sigma.is_finite() && sigma >= 0.0) {
        bail!("sigma must be finite and >= 0, got {sigma}");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let files = list_images(dataset)?;
    for (i, path) in files.iter().enumerate() {
        let img = read_grey(path)?;
        let noisy = add_gaussian_noise(&img.data, sigma, seed, i as u64);
        let stem = path
            .file_stem()
            .with_context(|| format!("{} has no file name", path.display()))?;
        let dest = out.join(stem).with_extension("npy");
        write_npy_f32(&dest, &[img.height, img.width], &noisy)?;
    }
    outln!(
        "wrote {} noisy images (σ = {sigma}, seed {seed}) to {}",
        files.len(),
        out.display()
    )?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Denoise(args) => cmd_denoise(args),
        Command::Eval {
            model,
            draws,
            json,
            threads,
            limit,
            precision,
        } => cmd_eval(
            model.as_deref(),
            &draws.dataset,
            draws.sigma,
            draws.seed,
            json.as_deref(),
            *threads,
            *limit,
            precision,
        ),
        Command::Info {
            model,
            height,
            width,
            stripe,
        } => cmd_info(model.as_deref(), *height, *width, *stripe),
        Command::Compare {
            model,
            input,
            sigma,
            tolerance,
        } => cmd_compare(model, input, *sigma, *tolerance),
        Command::Convert {
            model,
            out,
            precision,
        } => cmd_convert(model.as_deref(), out, precision),
        Command::Noisy { draws, out } => cmd_noisy(draws, out),
        Command::Bench {
            model,
            size,
            threads,
            repeat,
            engine,
            json,
            precision,
        } => cmd_bench(
            model.as_deref(),
            size,
            threads,
            *repeat,
            *engine,
            json.as_deref(),
            precision,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of the output went away (`| head`): nothing to report.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` comes from writing to a pipe whose reader has closed it.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
