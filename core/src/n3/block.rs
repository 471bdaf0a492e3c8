//! The N³ block on an image: patch extraction, per-query search window,
//! relaxation, aggregation on the block input, and the averaging fold.
//!
//! Output channels, in order: `[x, z¹ − x, …, zᵏ − x]`, where `zʲ` is the fold
//! of the `j`-th continuous neighbour patches.

use libm::{expf, logf};

use super::aggregate::{aggregate_with, squared_distances};
use super::grid::Axis;
use super::relax::relax_logits;
use crate::error::{mul, Error, ErrorKind, Result};
use crate::kernels::Isa;
use crate::model::N3Params;
use crate::tensor::Geom;

/// Sizes an N³ block needs for one image geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct N3Dims {
    /// Patch grid along rows.
    pub rows: Axis,
    /// Patch grid along columns.
    pub cols: Axis,
    /// Query patches (`rows.count · cols.count`).
    pub queries: usize,
    /// Most candidates of one query.
    pub candidates: usize,
    /// Values of one embedding patch.
    pub embed_dim: usize,
    /// Values of one input patch.
    pub input_dim: usize,
    /// Neighbours.
    pub k: usize,
}

impl N3Dims {
    /// The grid and sizes for an `height × width` image with `channels` input
    /// and `embed` embedding channels.
    pub fn new(
        p: &N3Params,
        height: usize,
        width: usize,
        channels: usize,
        embed: usize,
    ) -> Result<Self> {
        let rows = Axis::new(height, p.patch, p.stride)?;
        let cols = Axis::new(width, p.patch, p.stride)?;
        let queries = mul(rows.count, cols.count)?;
        if queries < 2 {
            return Err(Error::new(
                ErrorKind::ImageTooSmall,
                "image holds a single patch: no neighbours to search",
            ));
        }
        let pp = p.patch * p.patch;
        Ok(Self {
            rows,
            cols,
            queries,
            candidates: p.window.min(rows.count) * p.window.min(cols.count) - 1,
            embed_dim: mul(embed, pp)?,
            input_dim: mul(channels, pp)?,
            k: p.k,
        })
    }
}

/// Scratch buffers of an N³ block, from the workspace.
pub struct N3Scratch<'w> {
    /// Embedding patches, `queries × embed_dim`.
    pub embed_patches: &'w mut [f32],
    /// Input patches, `queries × input_dim`.
    pub input_patches: &'w mut [f32],
    /// Temperature of each query.
    pub temps: &'w mut [f32],
    /// Candidate indices of one query.
    pub indices: &'w mut [u32],
    /// Logits of one query.
    pub logits: &'w mut [f32],
    /// `k` weight vectors of one query.
    pub weights: &'w mut [f32],
    /// `k` aggregated patches of one query.
    pub neighbours: &'w mut [f32],
}

/// The tensors an N³ block reads and writes (padded planes of geometry `g`).
pub struct N3Io<'a> {
    /// Image geometry.
    pub g: Geom,
    /// Block input `x`, `C` planes.
    pub input: &'a [f32],
    /// Embedding `E(x)`, `embed` planes.
    pub embed: &'a [f32],
    /// Temperature map `T(x)`, one plane.
    pub temp: &'a [f32],
    /// Output, `C·(k+1)` planes.
    pub output: &'a mut [f32],
}

/// Copies every patch of `channels` planes into consecutive rows of `dst`
/// (zero where a patch lies in the grid padding).
fn extract_patches(src: &[f32], g: Geom, channels: usize, d: &N3Dims, dst: &mut [f32]) {
    let p = d.rows.patch;
    let dim = channels * p * p;
    for i in 0..d.rows.count {
        for j in 0..d.cols.count {
            let patch = &mut dst[(i * d.cols.count + j) * dim..][..dim];
            for c in 0..channels {
                for dy in 0..p {
                    let row = &mut patch[(c * p + dy) * p..][..p];
                    row.fill(0.0);
                    let Some(y) = d.rows.pixel(i, dy) else {
                        continue;
                    };
                    for (dx, v) in row.iter_mut().enumerate() {
                        if let Some(x) = d.cols.pixel(j, dx) {
                            *v = src[c * g.plane() + g.at(y, x)];
                        }
                    }
                }
            }
        }
    }
}

/// Runs the N³ block. `io.output` interior is overwritten.
pub fn n3_forward(
    isa: Isa,
    p: &N3Params,
    d: &N3Dims,
    channels: usize,
    io: N3Io<'_>,
    s: N3Scratch<'_>,
) -> Result<()> {
    let g = io.g;
    let (pp, n2) = (p.patch * p.patch, d.cols.count);
    let embed_channels = d.embed_dim / pp;
    let ok = io.input.len() >= g.len(channels)
        && io.embed.len() >= g.len(embed_channels)
        && io.temp.len() >= g.plane()
        && io.output.len() >= g.len(channels * (p.k + 1))
        && s.embed_patches.len() == d.queries * d.embed_dim
        && s.input_patches.len() == d.queries * d.input_dim
        && s.temps.len() == d.queries
        && s.indices.len() == d.candidates
        && s.logits.len() == d.candidates
        && s.weights.len() == d.k * d.candidates
        && s.neighbours.len() == d.k * d.input_dim;
    if !ok {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "N3 block: buffer sizes",
        ));
    }

    extract_patches(io.embed, g, embed_channels, d, s.embed_patches);
    extract_patches(io.input, g, channels, d, s.input_patches);
    let log_bias = logf(p.temp_bias);
    for (q, t) in s.temps.iter_mut().enumerate() {
        let mean = patch_sum(io.temp, g, d, q / n2, q % n2) / pp as f32;
        *t = expf(mean + log_bias);
    }

    let out_planes = &mut io.output[channels * g.plane()..g.len(channels * (p.k + 1))];
    out_planes.fill(0.0);
    for q in 0..d.queries {
        let (i, j) = (q / n2, q % n2);
        let n = candidates(d, p.window, i, j, s.indices);
        let idx = &s.indices[..n];
        let logits = &mut s.logits[..n];
        let query = &s.embed_patches[q * d.embed_dim..][..d.embed_dim];
        squared_distances(s.embed_patches, d.embed_dim, query, idx, logits)?;
        let t = s.temps[q];
        for l in logits.iter_mut() {
            *l = (p.logit_scale * -*l + p.logit_shift) / t;
        }
        let weights = &mut s.weights[..d.k * n];
        relax_logits(logits, d.k, weights)?;
        aggregate_with(
            isa,
            s.input_patches,
            d.input_dim,
            idx,
            weights,
            d.k,
            s.neighbours,
        )?;
        fold_add(s.neighbours, g, d, channels, i, j, out_planes);
    }
    finish(io.input, g, d, channels, d.k, io.output);
    Ok(())
}

/// Sum of one plane over patch `(i, j)` (zero outside the image).
fn patch_sum(plane: &[f32], g: Geom, d: &N3Dims, i: usize, j: usize) -> f32 {
    let p = d.rows.patch;
    let mut sum = 0.0;
    for dy in 0..p {
        let Some(y) = d.rows.pixel(i, dy) else {
            continue;
        };
        for dx in 0..p {
            if let Some(x) = d.cols.pixel(j, dx) {
                sum += plane[g.at(y, x)];
            }
        }
    }
    sum
}

/// Writes the candidate patches of query `(i, j)` (its window, without
/// itself) into `indices`; returns how many.
fn candidates(d: &N3Dims, window: usize, i: usize, j: usize, indices: &mut [u32]) -> usize {
    let (r0, rn) = d.rows.window(i, window);
    let (c0, cn) = d.cols.window(j, window);
    let mut n = 0;
    for a in r0..r0 + rn {
        for b in c0..c0 + cn {
            if (a, b) != (i, j) {
                indices[n] = (a * d.cols.count + b) as u32;
                n += 1;
            }
        }
    }
    n
}

/// Adds the `k` neighbour patches of query `(i, j)` at the query's place into
/// output planes `[z¹ …]` (`out` starts at output channel `C`); pixels in the
/// grid padding are cropped.
fn fold_add(z: &[f32], g: Geom, d: &N3Dims, channels: usize, i: usize, j: usize, out: &mut [f32]) {
    let p = d.rows.patch;
    for (jn, zj) in z.chunks_exact(d.input_dim).enumerate() {
        for c in 0..channels {
            let plane = &mut out[(jn * channels + c) * g.plane()..][..g.plane()];
            for dy in 0..p {
                let Some(y) = d.rows.pixel(i, dy) else {
                    continue;
                };
                let zrow = &zj[(c * p + dy) * p..][..p];
                for (dx, &v) in zrow.iter().enumerate() {
                    if let Some(x) = d.cols.pixel(j, dx) {
                        plane[g.at(y, x)] += v;
                    }
                }
            }
        }
    }
}

/// Turns the folded sums into averages and writes `[x, z¹ − x, …]`.
fn finish(x: &[f32], g: Geom, d: &N3Dims, channels: usize, k: usize, out: &mut [f32]) {
    for y in 0..g.height {
        let cy = d.rows.coverage(y + d.rows.before);
        for xx in 0..g.width {
            let count = (cy * d.cols.coverage(xx + d.cols.before)) as f32;
            let at = g.at(y, xx);
            for c in 0..channels {
                let xv = x[c * g.plane() + at];
                out[c * g.plane() + at] = xv;
                for jn in 0..k {
                    let o = &mut out[((1 + jn) * channels + c) * g.plane() + at];
                    *o = *o / count - xv;
                }
            }
        }
    }
}
