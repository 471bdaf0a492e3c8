//! Running a [`Model`] on an image through the core.

use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context};
use n3net_core::exec::stream::{Stream, PUSH_ROWS};
use n3net_core::{Isa, Network, Parallel, Plan, Precision};
use rayon::prelude::*;

use crate::image_io::{BitDepth, RowOrder, RowReader, RowWriter};

use crate::model::Model;
use crate::noise::sigma_map_from_profile;
use crate::spin::SpinJoin;

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

/// Largest σ accepted, on the 0–255 scale (the default model was trained up
/// to 75); a profile's σ at full scale, `sqrt(a + b)·255`, has the same
/// bound. The C API's `N3NET_MAX_SIGMA`.
pub const MAX_SIGMA: f32 = 1000.0;

impl NoiseLevel {
    /// Checks that this level is in range (σ in `[0, MAX_SIGMA]`; a profile's
    /// `a`, `b` ≥ 0 with `a + b ≤ (MAX_SIGMA / 255)²`; NaN and infinities
    /// are out of range), whatever the model, and that it suits a model with
    /// `in_channels` inputs (a noise-conditioned model needs one).
    pub fn check(self, in_channels: usize) -> anyhow::Result<()> {
        let max = MAX_SIGMA / 255.0;
        match self {
            NoiseLevel::Sigma(s) if !(0.0..=MAX_SIGMA).contains(&s) => {
                bail!("the noise level must be finite, >= 0 and <= {MAX_SIGMA}, got {s}")
            }
            NoiseLevel::Profile { a, b } if !(a >= 0.0 && b >= 0.0 && a + b <= max * max) => {
                bail!(
                    "the noise profile A,B must be finite and >= 0, with sqrt(A + B)·255 <= \
                     {MAX_SIGMA}, got {a},{b}"
                )
            }
            _ => {}
        }
        match (in_channels, self) {
            (1, _) => Ok(()),
            (2, NoiseLevel::Unknown) => {
                bail!("this model is noise-level conditioned: give --sigma or --noise-profile")
            }
            (2, _) => Ok(()),
            (c, _) => bail!("models with {c} input channels are not supported by this tool"),
        }
    }

    /// Appends the network input for `image` values (a plane or a row) to
    /// `out`: the values, then for a two-channel model the σ map (σ/255 per
    /// value). The level must have passed [`NoiseLevel::check`].
    fn push_input(self, in_channels: usize, image: &[f32], out: &mut Vec<f32>) {
        out.extend_from_slice(image);
        if in_channels < 2 {
            return;
        }
        match self {
            NoiseLevel::Sigma(s) => out.extend(std::iter::repeat_n(s / 255.0, image.len())),
            NoiseLevel::Profile { a, b } => {
                let clamped: Vec<f32> = image.iter().map(|&x| x.clamp(0.0, 1.0)).collect();
                out.extend(sigma_map_from_profile(&clamped, a, b));
            }
            NoiseLevel::Unknown => {}
        }
    }
}

/// Builds the network input: the image, plus a σ map (σ/255 per pixel) for a
/// noise-conditioned model with two input channels.
pub fn network_input(model: &Model, image: &[f32], noise: NoiseLevel) -> anyhow::Result<Vec<f32>> {
    let cin = model.hyper.in_channels;
    noise.check(cin)?;
    let mut v = Vec::with_capacity(cin * image.len());
    noise.push_input(cin, image, &mut v);
    Ok(v)
}

/// Refuses output values that are NaN or infinite: weights far outside any
/// trained range can overflow on an image, and such samples are an error
/// rather than a result.
fn check_finite(values: &[f32]) -> anyhow::Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => bail!(
            "the model's output is not finite ({} at sample {i}): its values overflow on this image",
            values[i]
        ),
        None => Ok(()),
    }
}

/// Denoises one `height × width` grey plane with `model`, whole-image: an
/// f32 model through the core's whole-image plan, f16 and q16 models through
/// a stream over the whole width (bit-identical ways for f32). Output that
/// is not finite is an error.
pub fn denoise_plane(
    model: &Model,
    image: &[f32],
    height: usize,
    width: usize,
    noise: NoiseLevel,
) -> anyhow::Result<Vec<f32>> {
    if image.len() != height * width {
        bail!("image length {} is not {height}×{width}", image.len());
    }
    let net = model.network()?;
    let input = network_input(model, image, noise)?;
    let output = if net.precision() != Precision::F32 {
        stream_planes(&net, &input, height, width)?
    } else {
        let plan = Plan::new(&net, height, width, Isa::detect())
            .with_context(|| format!("cannot run a {width}×{height} image"))?;
        let mut output = vec![0.0; net.cout() * height * width];
        let mut ws = vec![0u8; plan.workspace_bytes()];
        plan.run(&input, &mut output, &mut ws)?;
        output
    };
    check_finite(&output)?;
    Ok(output)
}

/// Runs `net` over a whole image given as `cin` planes, through a stream;
/// returns `cout` planes.
pub fn stream_planes(
    net: &Network<'_>,
    planes: &[f32],
    height: usize,
    width: usize,
) -> anyhow::Result<Vec<f32>> {
    Ok(run_stream(net, planes, (height, width), false)?.0)
}

/// [`stream_planes`], also returning the stream's activation peaks
/// ([`Stream::activation_peaks`]).
pub fn stream_planes_with(
    net: &Network<'_>,
    planes: &[f32],
    height: usize,
    width: usize,
) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
    run_stream(net, planes, (height, width), true)
}

/// [`stream_planes`], with the activation peaks if `peaks` (empty
/// otherwise).
fn run_stream(
    net: &Network<'_>,
    planes: &[f32],
    (height, width): (usize, usize),
    peaks: bool,
) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
    let (cin, cout) = (net.cin(), net.cout());
    if planes.len() != cin * height * width {
        bail!("input is not {cin} planes of {width}×{height}");
    }
    let mut ws = vec![0u8; Stream::workspace_bytes(net, width)?];
    let mut s = Stream::new(net, height, width, Isa::detect(), &mut ws)
        .with_context(|| format!("cannot run a {width}×{height} image"))?;
    if peaks {
        s.track_activation_peaks();
    }
    let mut rows = Vec::with_capacity(cin * width * PUSH_ROWS);
    let mut out_rows = vec![0.0; cout * width * height];
    let mut pulled = 0;
    for y0 in (0..height).step_by(PUSH_ROWS) {
        rows.clear();
        for y in y0..(y0 + PUSH_ROWS).min(height) {
            for c in 0..cin {
                rows.extend_from_slice(&planes[(c * height + y) * width..][..width]);
            }
        }
        s.push_rows(&rows)?;
        pulled += s.pull_rows(&mut out_rows[pulled * cout * width..])?;
    }
    if pulled < height {
        pulled += s.pull_rows(&mut out_rows[pulled * cout * width..])?;
    }
    if pulled != height {
        bail!("internal: the stream finished {pulled} of {height} rows");
    }
    let mut out = vec![0.0; cout * height * width];
    for y in 0..height {
        for c in 0..cout {
            out[(c * height + y) * width..][..width]
                .copy_from_slice(&out_rows[(y * cout + c) * width..][..width]);
        }
    }
    let peaks = if peaks {
        s.activation_peaks().to_vec()
    } else {
        Vec::new()
    };
    Ok((out, peaks))
}

/// How [`denoise_file`] cuts an image into column stripes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeOptions {
    /// Output columns per stripe; `None` picks the widest stripe whose
    /// workspaces (one per thread) fit in `max_memory`.
    pub stripe: Option<usize>,
    /// Threads: stripes run at once, each with its own workspace; an image
    /// that fits one stripe splits each layer between them instead.
    pub threads: usize,
    /// Budget for the workspaces of all threads together (with one stripe,
    /// its workspace and the second thread's lane), in bytes.
    pub max_memory: usize,
}

/// The stripes [`denoise_file`] runs for one image width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Striping {
    /// Output columns per stripe (the last one may be narrower).
    pub stripe: usize,
    /// Number of stripes.
    pub stripes: usize,
    /// Threads: stripes at once, or, with one stripe, threads within it.
    pub threads: usize,
    /// Workspace bytes of one running stripe.
    pub workspace_bytes: usize,
}

/// Auto stripe widths are multiples of this.
const STRIPE_STEP: usize = 32;

/// Chooses the stripes for images `width` wide: the given stripe width; or
/// the whole width when its one workspace fits the budget (the threads then
/// share each layer: neighbouring stripes would recompute the N³ blocks'
/// wide halos); or else the widest multiple of 32 columns whose workspaces,
/// one per thread, fit in the budget.
pub fn plan_striping(
    net: &Network<'_>,
    width: usize,
    opts: StripeOptions,
) -> anyhow::Result<Striping> {
    if width == 0 {
        bail!("the image has no columns");
    }
    let threads = opts.threads.max(1);
    let bytes = |s: usize| Stream::stripe_workspace_bytes(net, s).map_err(anyhow::Error::from);
    // One stripe shares each layer between the threads: a second thread
    // needs its lane.
    let lane = if threads > 1 {
        Stream::lane_workspace_bytes(net, width)?
    } else {
        0
    };
    let stripe = match opts.stripe {
        Some(0) => bail!("--stripe must be at least 1 column"),
        Some(s) => s.min(width),
        None if bytes(width)?.saturating_add(lane) <= opts.max_memory => width,
        None => {
            let budget = opts.max_memory / threads;
            let widest = width.div_ceil(threads);
            let smallest = STRIPE_STEP.min(widest);
            if bytes(smallest)? > budget {
                bail!(
                    "a memory budget of {} MiB is too small for {threads} thread(s): one \
                     {smallest}-column stripe needs {:.1} MiB of workspace",
                    opts.max_memory >> 20,
                    bytes(smallest)? as f64 / (1 << 20) as f64
                );
            }
            // The workspace grows with the stripe width: binary search.
            let (mut lo, mut hi) = (smallest, widest.max(smallest));
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if bytes(mid)? <= budget {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            if lo < widest {
                lo -= lo % STRIPE_STEP;
            }
            lo.max(smallest)
        }
    };
    let stripes = width.div_ceil(stripe);
    Ok(Striping {
        stripe,
        stripes,
        threads: if stripes == 1 {
            threads
        } else {
            threads.min(stripes)
        },
        workspace_bytes: bytes(stripe)?,
    })
}

/// Denoises the image file `input` into `output` (any format of
/// [`RowReader`] / [`RowWriter`]) without holding the image: each column
/// stripe streams the decoded rows through the core's [`Stream`] and its
/// output rows go to the writer as they become final. With one stripe the
/// output is encoded row by row as it comes; with several, stripes run on
/// `threads` threads and write their pieces in place (a PNG is assembled
/// from a scratch file). The output is bit-identical to [`denoise_plane`]
/// for any stripe width and thread count, and an output sample that is not
/// finite is an error, as there. `progress(rows, total)` gets the
/// rows each stripe finishes as it goes, out of `total = height × stripes`.
pub fn denoise_file(
    model: &Model,
    input: &Path,
    output: &Path,
    noise: NoiseLevel,
    depth: BitDepth,
    opts: StripeOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<Striping> {
    let cin = model.hyper.in_channels;
    noise.check(cin)?;
    let net = model.network()?;
    if net.cout() != 1 {
        bail!(
            "models with {} output channels are not supported by this tool",
            net.cout()
        );
    }
    let reader = RowReader::open(input)?;
    let (height, width) = (reader.height(), reader.width());
    let st = plan_striping(&net, width, opts)?;
    let total = height * st.stripes;
    let progress = &|rows: usize| progress(rows, total);
    let job = StripeJob {
        net: &net,
        isa: Isa::detect(),
        height,
        width,
        cin,
        noise,
        workspace_bytes: st.workspace_bytes,
    };
    let size = || format!("cannot run a {width}×{height} image");
    if st.stripes == 1 {
        let mut writer = RowWriter::create(output, width, height, depth, RowOrder::Sequential)?;
        let par = SpinJoin::new(st.threads)?;
        job.run(
            reader,
            0..width,
            &mut |_, row| Ok(writer.write_row(row)?),
            progress,
            (st.threads > 1).then_some(&par),
        )
        .with_context(size)?;
        writer.finish()?;
        return Ok(st);
    }
    drop(reader);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(st.threads)
        .build()?;
    let writer = RowWriter::create(output, width, height, depth, RowOrder::Any)?;
    pool.install(|| {
        (0..st.stripes).into_par_iter().try_for_each(|i| {
            let cols = i * st.stripe..((i + 1) * st.stripe).min(width);
            let x0 = cols.start;
            let reader = RowReader::open(input)?;
            job.run(
                reader,
                cols,
                &mut |y, row| Ok(writer.write_at(y, x0, row)?),
                progress,
                None,
            )
            .with_context(size)
        })
    })?;
    writer.finish()?;
    Ok(st)
}

/// What every stripe of one image shares.
struct StripeJob<'a, 'w> {
    net: &'a Network<'w>,
    isa: Isa,
    height: usize,
    width: usize,
    cin: usize,
    noise: NoiseLevel,
    workspace_bytes: usize,
}

impl StripeJob<'_, '_> {
    /// Streams the rows of `reader` through the stripe with output columns
    /// `cols`, handing each final output row to `sink(y, row)`; `par` lends
    /// the stream threads.
    fn run(
        &self,
        mut reader: RowReader,
        cols: Range<usize>,
        sink: &mut dyn FnMut(usize, &[f32]) -> anyhow::Result<()>,
        progress: &(dyn Fn(usize) + Sync),
        par: Option<&dyn Parallel>,
    ) -> anyhow::Result<()> {
        let mut ws = vec![0u8; self.workspace_bytes];
        let (h, w) = (self.height, self.width);
        let mut lane = vec![
            0u8;
            if par.is_some() {
                Stream::lane_workspace_bytes(self.net, cols.len())?
            } else {
                0
            }
        ];
        let mut s = Stream::stripe(self.net, h, w, cols.clone(), self.isa, &mut ws)?;
        if let Some(p) = par {
            s.set_parallel(p, &mut lane)?;
        }
        let inc = s.input_columns();
        let mut row = vec![0.0f32; w];
        let mut input = Vec::with_capacity(self.cin * inc.len());
        let mut out = vec![0.0f32; PUSH_ROWS * cols.len()];
        let mut done = 0;
        for _ in 0..h {
            reader.next_row(&mut row)?;
            input.clear();
            self.noise
                .push_input(self.cin, &row[inc.clone()], &mut input);
            s.push_rows(&input)?;
            loop {
                let n = s.pull_rows(&mut out)?;
                if n == 0 {
                    break;
                }
                for r in out.chunks_exact(cols.len()).take(n) {
                    check_finite(r).with_context(|| format!("row {done}"))?;
                    sink(done, r)?;
                    done += 1;
                }
                progress(n);
            }
        }
        if done != h {
            bail!("the stream ended with {done} of {h} rows final");
        }
        Ok(())
    }
}
