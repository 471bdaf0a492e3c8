//! Timing whole images through the network (`n3net bench`): the core's
//! stream, or tract running the exported ONNX graph, on one synthetic noisy
//! image held in memory, so that only the network is timed.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use n3net_core::exec::stream::Stream;
use n3net_core::{Isa, Network};
use serde::Serialize;
use tract_onnx::prelude::*;

use crate::spin::SpinJoin;

/// Times of the runs of one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Fastest run, seconds.
    pub best: f64,
    /// Median run, seconds.
    pub median: f64,
    /// Runs timed.
    pub runs: usize,
}

impl Timing {
    fn of(mut secs: Vec<f64>) -> Self {
        secs.sort_by(f64::total_cmp);
        Timing {
            best: secs[0],
            median: secs[secs.len() / 2],
            runs: secs.len(),
        }
    }
}

/// A smooth pattern plus deterministic noise of σ = 25/255, `cin` values
/// per pixel in rows (`height × cin × width`, the layout streams take); a
/// second channel is the noise level map (σ/255) of a noise-conditioned model.
pub fn synthetic_rows(cin: usize, height: usize, width: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = || {
        // Sum of four uniforms: roughly Gaussian, unit variance.
        let mut s = 0.0;
        for _ in 0..4 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s += (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        s * 3f32.sqrt()
    };
    let sigma = 25.0 / 255.0;
    let mut v = Vec::with_capacity(cin * height * width);
    for y in 0..height {
        for c in 0..cin {
            for x in 0..width {
                v.push(if c == 0 {
                    let (fy, fx) = (y as f32, x as f32);
                    0.5 + 0.3 * (fx * 0.05).sin() * (fy * 0.03).cos() + sigma * noise()
                } else {
                    sigma
                });
            }
        }
    }
    v
}

/// Streams `rows` (see [`synthetic_rows`]) through `net` over the whole
/// width, `repeats` times, on `threads` threads (the layers' output channels
/// split between them); returns the timing and the workspace bytes (with
/// the second query lane of a threaded stream).
pub fn time_stream(
    net: &Network<'_>,
    rows: &[f32],
    height: usize,
    width: usize,
    threads: usize,
    repeats: usize,
) -> anyhow::Result<(Timing, usize)> {
    if rows.len() != net.cin() * height * width || repeats == 0 || threads == 0 {
        bail!("bench: input size, repeats or threads");
    }
    let lane_bytes = if threads > 1 {
        Stream::lane_workspace_bytes(net, width)?
    } else {
        0
    };
    let bytes = Stream::workspace_bytes(net, width)? + lane_bytes;
    let mut ws = vec![0u8; bytes - lane_bytes];
    let mut lane = vec![0u8; lane_bytes];
    let mut out = vec![0.0f32; net.cout() * width * height];
    let par = SpinJoin::new(threads)?;
    let mut secs = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        let mut s = Stream::new(net, height, width, Isa::detect(), &mut ws)?;
        if threads > 1 {
            s.set_parallel(&par, &mut lane)?;
        }
        let mut done = 0;
        for r in rows.chunks(net.cin() * width * 8) {
            s.push_rows(r)?;
            done += s.pull_rows(&mut out[done * net.cout() * width..])?;
        }
        if done != height {
            bail!("bench: the stream finished {done} of {height} rows");
        }
        secs.push(t.elapsed().as_secs_f64());
    }
    if !out.iter().all(|v| v.is_finite()) {
        bail!("bench: the output is not finite");
    }
    Ok((Timing::of(secs), bytes))
}

/// Runs the ONNX graph at `path` with tract on `rows` (one channel, the
/// size the graph was exported for) `repeats` times on `threads` threads
/// (tract's matrix products use them); loading and optimising the graph is
/// not timed.
pub fn time_tract(
    path: &Path,
    rows: &[f32],
    (cin, height, width): (usize, usize, usize),
    threads: usize,
    repeats: usize,
) -> anyhow::Result<Timing> {
    if rows.len() != cin * height * width || repeats == 0 || threads == 0 {
        bail!("bench: input size, repeats or threads");
    }
    let model = tract_onnx::onnx()
        .model_for_path(path)?
        .with_input_fact(0, f32::fact([1, cin, height, width]).into())?
        .into_optimized()?
        .into_runnable()
        .with_context(|| format!("tract could not load {}", path.display()))?;
    // Rows to planes.
    let mut planes = vec![0.0f32; rows.len()];
    for (i, v) in rows.iter().enumerate() {
        let (y, c, x) = (i / (cin * width), i / width % cin, i % width);
        planes[(c * height + y) * width + x] = *v;
    }
    let input: Tensor =
        tract_ndarray::Array4::from_shape_vec((1, cin, height, width), planes)?.into();
    let executor = tract_linalg::multithread::Executor::multithread(threads);
    let mut secs = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let x = input.clone();
        let t = Instant::now();
        let out = tract_linalg::multithread::multithread_tract_scope(executor.clone(), || {
            model.run(tvec!(x.into()))
        })?;
        secs.push(t.elapsed().as_secs_f64());
        let view = out[0].to_plain_array_view::<f32>()?;
        if !view.iter().all(|v| v.is_finite()) {
            bail!("bench: tract's output is not finite");
        }
    }
    Ok(Timing::of(secs))
}
