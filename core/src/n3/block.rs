//! The N³ block on an image: patch extraction, per-query search window,
//! relaxation, aggregation on the block input, and the averaging fold.
//!
//! Output channels, in order: `[x, z¹ − x, …, zᵏ − x]`, where `zʲ` is the fold
//! of the `j`-th continuous neighbour patches.

use super::grid::{Axis, Columns};
use super::relax::relax_logits_with;
use crate::error::{mul, Error, ErrorKind, Result};
use crate::kernels::act::{Act, Scratch};
use crate::kernels::Isa;
use crate::math::{exp, ln};
use crate::model::{N3Params, MAX_K};
use crate::parallel::Parallel;
use crate::tensor::{Band, Geom};
use core::ops::Range;

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

/// A read-only band of padded planes and its data.
pub(crate) struct Planes<'a, A> {
    /// Where the rows lie.
    pub band: Band,
    /// The planes.
    pub data: &'a [A],
}

impl<A> Clone for Planes<'_, A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for Planes<'_, A> {}

/// Patch rows kept at once: patch row `i` lives in slot `i % slots`, each slot
/// holding the held patches of one row (`Columns::n` of them: embedding
/// patches, input patches and temperatures). The whole-image path keeps every
/// row (`slots = n1`); the streaming path keeps a window's worth.
pub(crate) struct PatchSlots<'a, A> {
    /// Slots in the ring.
    pub slots: usize,
    /// Embedding patches, `slots · n2 × embed_dim`.
    pub embed: &'a mut [A],
    /// Input patches, `slots · n2 × input_dim`.
    pub input: &'a mut [A],
    /// Temperature of each patch, `slots · n2`.
    pub temps: &'a mut [f32],
}

/// Scratch of one query.
pub(crate) struct QueryScratch<'a, A: Act> {
    /// Candidate indices.
    pub indices: &'a mut [u32],
    /// Logits.
    pub logits: &'a mut [f32],
    /// `k` weight vectors.
    pub weights: &'a mut [f32],
    /// `k` aggregated patches.
    pub neighbours: &'a mut [A::Wide],
    /// Scratch of the 16-bit kernels.
    pub kernel: Scratch<'a>,
}

/// Copies patch `(i, j)` of `channels` planes into `dst` (zero where the patch
/// lies in the grid padding or outside the held columns).
fn extract_patch<A: Act>(
    src: Planes<'_, A>,
    channels: usize,
    d: &N3Dims,
    cw: &Columns,
    i: usize,
    j: usize,
    dst: &mut [A],
) {
    let p = d.rows.patch;
    let b = src.band;
    for c in 0..channels {
        for dy in 0..p {
            let row = &mut dst[(c * p + dy) * p..][..p];
            row.fill(A::default());
            let Some(y) = d.rows.pixel(i, dy) else {
                continue;
            };
            for (dx, v) in row.iter_mut().enumerate() {
                if let Some(x) = cw.pixel(&d.cols, j, dx) {
                    *v = src.data[c * b.plane + b.at(y, x)];
                }
            }
        }
    }
}

/// What patch extraction reads: the block input, embedding and temperature
/// planes, and the grid.
pub(crate) struct Extract<'a, A> {
    pub prm: &'a N3Params,
    pub d: &'a N3Dims,
    pub cw: &'a Columns,
    /// Channels of the block input.
    pub channels: usize,
    pub x: Planes<'a, A>,
    pub embed: Planes<'a, A>,
    pub temp: Planes<'a, A>,
    /// q16 scale of the temperature map (1 for the float precisions).
    pub temp_scale: f32,
}

/// The patches of one patch row in a ring slot, or a part of them:
/// embedding patches, input patches and temperatures.
pub(crate) struct PatchRow<'a, A> {
    pub embed: &'a mut [A],
    pub input: &'a mut [A],
    pub temps: &'a mut [f32],
}

impl<A> PatchRow<'_, A> {
    /// The first `n` patches and the rest.
    pub fn split_at_mut(&mut self, n: usize, d: &N3Dims) -> (PatchRow<'_, A>, PatchRow<'_, A>) {
        let (ea, eb) = self.embed.split_at_mut(n * d.embed_dim);
        let (ia, ib) = self.input.split_at_mut(n * d.input_dim);
        let (ta, tb) = self.temps.split_at_mut(n);
        (
            PatchRow {
                embed: ea,
                input: ia,
                temps: ta,
            },
            PatchRow {
                embed: eb,
                input: ib,
                temps: tb,
            },
        )
    }
}

impl<A> PatchSlots<'_, A> {
    /// The slot of patch row `i`, `n` patches wide.
    pub fn row(&mut self, i: usize, n: usize, d: &N3Dims) -> PatchRow<'_, A> {
        let q = (i % self.slots) * n;
        PatchRow {
            embed: &mut self.embed[q * d.embed_dim..][..n * d.embed_dim],
            input: &mut self.input[q * d.input_dim..][..n * d.input_dim],
            temps: &mut self.temps[q..][..n],
        }
    }
}

impl<A: Act> Extract<'_, A> {
    /// Extracts the held patches `js` of patch row `i` into `dst`. Reads
    /// image rows `i·s − top .. i·s − top + p` of the three inputs (those
    /// inside the image).
    pub fn patches(&self, i: usize, js: Range<usize>, dst: &mut PatchRow<'_, A>) {
        let (prm, d, cw) = (self.prm, self.d, self.cw);
        let embed_channels = d.embed_dim / (prm.patch * prm.patch);
        let log_bias = ln(prm.temp_bias);
        let pp = (prm.patch * prm.patch) as f32;
        let rows = dst.embed.chunks_exact_mut(d.embed_dim);
        let rows = rows.zip(dst.input.chunks_exact_mut(d.input_dim));
        for ((j, (e, v)), t) in js.zip(rows).zip(dst.temps.iter_mut()) {
            extract_patch(self.embed, embed_channels, d, cw, i, j, e);
            extract_patch(self.x, self.channels, d, cw, i, j, v);
            let sum = patch_sum(self.temp, d, cw, i, j);
            let mean = A::wide_to_f32(sum, self.temp_scale) / pp;
            *t = exp(mean + log_bias);
        }
    }
}

/// Processes the queries of patch row `i`: distances to the candidates of the
/// search window, logits, relaxation, aggregation, and the fold of the `k`
/// neighbour patches into output planes `C..C·(k+1)` of `out` (sums; see
/// [`finish_rows`]). Patch rows of the whole window must be in `ring`. Only
/// the queries whose whole search window is held are answered: with a column
/// stripe, the others lie in its halo, whose output is not used.
#[allow(clippy::too_many_arguments)]
pub(crate) fn query_row<A: Act>(
    isa: Isa,
    prm: &N3Params,
    d: &N3Dims,
    cw: &Columns,
    channels: usize,
    embed_scale: f32,
    i: usize,
    ring: &PatchSlots<'_, A>,
    s: &mut QueryScratch<'_, A>,
    mut lane: Option<(&dyn Parallel, &mut QueryScratch<'_, A>)>,
    out: Band,
    out_data: &mut [A],
) -> Result<()> {
    let end = cw.j0 + cw.n;
    let held = |j: usize| {
        let (c0, cn) = d.cols.window(j, prm.window);
        cw.holds(c0, cn)
    };
    let next = |mut j: usize| {
        while j < end && !held(j) {
            j += 1;
        }
        j
    };
    let q = Query {
        isa,
        prm,
        d,
        cw,
        embed_scale,
        i,
        ring,
    };
    let mut j = next(cw.j0);
    while j < end {
        let j2 = next(j + 1);
        match lane.as_mut() {
            Some((par, s2)) if j2 < end && d.k > 1 => {
                q.pair(*par, (j, s), (j2, s2), channels, out, out_data)?;
                j = next(j2 + 1);
            }
            _ => {
                let n = q.weights(j, s)?;
                let query = [(j, &s.indices[..n], &s.weights[..d.k * n])];
                let mut planes = Consecutive {
                    out: &mut out_data[channels * out.plane..],
                    channels,
                    plane: out.plane,
                };
                let z = (&mut *s.neighbours, &mut s.kernel);
                q.share(&query, 0..d.k, 0..channels, z, (out, &mut planes))?;
                j = j2;
            }
        }
    }
    Ok(())
}

/// What the queries of one patch row share.
struct Query<'q, 'r, A> {
    isa: Isa,
    prm: &'q N3Params,
    d: &'q N3Dims,
    cw: &'q Columns,
    embed_scale: f32,
    i: usize,
    ring: &'q PatchSlots<'r, A>,
}

impl<A: Act> Query<'_, '_, A> {
    /// The candidates of query `(i, j)` (into `s.indices`) and their `k`
    /// weight vectors (into `s.weights`); returns how many candidates.
    fn weights(&self, j: usize, s: &mut QueryScratch<'_, A>) -> Result<usize> {
        let (d, ring, isa) = (self.d, self.ring, self.isa);
        let n = candidates(
            d,
            self.cw,
            self.prm.window,
            ring.slots,
            self.i,
            j,
            s.indices,
        );
        let idx = &s.indices[..n];
        let logits = &mut s.logits[..n];
        let q = (self.i % ring.slots) * self.cw.n + j - self.cw.j0;
        let query = &ring.embed[q * d.embed_dim..][..d.embed_dim];
        A::distances(
            isa,
            ring.embed,
            d.embed_dim,
            query,
            idx,
            logits,
            self.embed_scale,
            &mut s.kernel,
        )?;
        let t = ring.temps[q];
        for l in logits.iter_mut() {
            *l = (self.prm.logit_scale * -*l + self.prm.logit_shift) / t;
        }
        relax_logits_with(isa, logits, d.k, &mut s.weights[..d.k * n])?;
        Ok(n)
    }

    /// Columns `cols` of the aggregated patches of neighbours `ks` (of `k`)
    /// over candidates `idx` with the `k` weight vectors `weights`, into the
    /// front of `z` (`ks.len()` rows of `cols.len()` values).
    fn gather(
        &self,
        idx: &[u32],
        weights: &[f32],
        ks: Range<usize>,
        cols: Range<usize>,
        z: &mut [A::Wide],
        kernel: &mut Scratch<'_>,
    ) -> Result<()> {
        let (d, n) = (self.d, idx.len());
        let w = &weights[ks.start * n..ks.end * n];
        let z = &mut z[..ks.len() * cols.len()];
        let data = &*self.ring.input;
        A::aggregate(
            self.isa,
            data,
            d.input_dim,
            cols,
            idx,
            w,
            ks.len(),
            z,
            kernel,
        )
    }

    /// Queries `j` and `j2` of the row on two threads, with the same output
    /// as one after the other: each thread finds the weights of one query,
    /// then each aggregates and folds about half of the channels of every
    /// neighbour of both queries, in query order (each thread reads its part
    /// of every candidate patch once for all `k` neighbours, and writes its
    /// own output planes). Where no channel split fits the kernels (see
    /// [`split_channels`]), the neighbours are halved instead.
    #[inline(never)]
    fn pair(
        &self,
        par: &dyn Parallel,
        (j, sa): (usize, &mut QueryScratch<'_, A>),
        (j2, sb): (usize, &mut QueryScratch<'_, A>),
        channels: usize,
        out: Band,
        out_data: &mut [A],
    ) -> Result<()> {
        let (mut ra, mut rb) = (Ok(0), Ok(0));
        par.join(&mut || ra = self.weights(j, sa), &mut || {
            rb = self.weights(j2, sb)
        });
        let (na, nb) = (ra?, rb?);
        let k = self.d.k;
        let QueryScratch {
            indices: ia,
            weights: wa,
            neighbours: za,
            kernel: ka,
            ..
        } = sa;
        let QueryScratch {
            indices: ib,
            weights: wb,
            neighbours: zb,
            kernel: kb,
            ..
        } = sb;
        let queries = [
            (j, &ia[..na], &wa[..k * na]),
            (j2, &ib[..nb], &wb[..k * nb]),
        ];
        let (group, plane) = (channels * out.plane, out.plane);
        let planes = &mut out_data[group..(1 + k) * group];
        let pp = self.d.rows.patch * self.d.rows.patch;
        // Each thread's neighbours, channels and output planes.
        let (mut by_channel, mut by_neighbour);
        let ((ksa, csa, pa), (ksb, csb, pb)): (Share<'_, A>, Share<'_, A>) =
            match split_channels(channels, pp) {
                Some(ca) => {
                    by_channel = [Channels::new(0, plane), Channels::new(ca, plane)];
                    for g in planes.chunks_exact_mut(group) {
                        let (a, b) = g.split_at_mut(ca * plane);
                        let [pa, pb] = &mut by_channel;
                        pa.groups.push(a).and(pb.groups.push(b)).map_err(|_| {
                            Error::new(ErrorKind::InvalidArgument, "N3 k above MAX_K")
                        })?;
                    }
                    let [pa, pb] = &mut by_channel;
                    ((0..k, 0..ca, pa), (0..k, ca..channels, pb))
                }
                None => {
                    let half = k.div_ceil(2);
                    let (pa, pb) = planes.split_at_mut(half * group);
                    let consecutive = |out| Consecutive {
                        out,
                        channels,
                        plane,
                    };
                    by_neighbour = [consecutive(pa), consecutive(pb)];
                    let [pa, pb] = &mut by_neighbour;
                    ((0..half, 0..channels, pa), (half..k, 0..channels, pb))
                }
            };
        let qs = &queries;
        let (mut ra, mut rb) = (Ok(()), Ok(()));
        par.join(
            &mut || ra = self.share(qs, ksa.clone(), csa.clone(), (za, ka), (out, pa)),
            &mut || rb = self.share(qs, ksb.clone(), csb.clone(), (zb, kb), (out, pb)),
        );
        ra.and(rb)
    }

    /// Aggregates channels `cs` of neighbours `ks` of each of `queries`
    /// (column, candidates, weights) in turn into `z` and folds them into
    /// `planes`.
    fn share(
        &self,
        queries: &[(usize, &[u32], &[f32])],
        ks: Range<usize>,
        cs: Range<usize>,
        (z, kernel): (&mut [A::Wide], &mut Scratch<'_>),
        (out, planes): (Band, &mut dyn FoldPlanes<A>),
    ) -> Result<()> {
        let (d, pp) = (self.d, self.d.rows.patch * self.d.rows.patch);
        let cols = cs.start * pp..cs.end * pp;
        for &(jq, idx, w) in queries {
            self.gather(idx, w, ks.clone(), cols.clone(), z, kernel)?;
            let z = &z[..ks.len() * cols.len()];
            fold_add(self.isa, z, out, d, self.cw, cs.clone(), self.i, jq, planes);
        }
        Ok(())
    }
}

/// The channel at which two threads split the aggregation of a patch of
/// `channels` channels of `pp` values: the most even split whose column
/// (`ca · pp`) is a multiple of 8, so that each part's kernel vectors
/// cover the same columns as on the whole row (and its last columns, done
/// one by one, are the whole row's): the bits do not change.
fn split_channels(channels: usize, pp: usize) -> Option<usize> {
    (1..channels)
        .filter(|ca| ca * pp % 8 == 0)
        .min_by_key(|&ca| ca.abs_diff(channels - ca))
}

/// One thread's share of a query pair: neighbours, channels, and the
/// output planes they fold into.
type Share<'p, A> = (
    Range<usize>,
    Range<usize>,
    &'p mut (dyn FoldPlanes<A> + Send),
);

/// Where [`fold_add`] adds the values of a neighbour's channel.
trait FoldPlanes<A> {
    /// The output plane of neighbour `jn` (counted from the first one the
    /// planes hold), channel `c`.
    fn plane(&mut self, jn: usize, c: usize) -> &mut [A];
}

/// The output planes of consecutive neighbours, `channels` planes each.
struct Consecutive<'a, A> {
    out: &'a mut [A],
    channels: usize,
    plane: usize,
}

impl<A> FoldPlanes<A> for Consecutive<'_, A> {
    fn plane(&mut self, jn: usize, c: usize) -> &mut [A] {
        &mut self.out[(jn * self.channels + c) * self.plane..][..self.plane]
    }
}

/// Channels `c0 ..` of every neighbour's output planes, one slice each.
struct Channels<'a, A> {
    groups: heapless::Vec<&'a mut [A], MAX_K>,
    c0: usize,
    plane: usize,
}

impl<A> Channels<'_, A> {
    fn new(c0: usize, plane: usize) -> Self {
        Self {
            groups: heapless::Vec::new(),
            c0,
            plane,
        }
    }
}

impl<A> FoldPlanes<A> for Channels<'_, A> {
    fn plane(&mut self, jn: usize, c: usize) -> &mut [A] {
        &mut self.groups[jn][(c - self.c0) * self.plane..][..self.plane]
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
    let pp = p.patch * p.patch;
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

    let band = Band::from(g);
    let planes = |data| Planes { band, data };
    let cw = Columns::whole(&d.cols);
    let mut ring = PatchSlots {
        slots: d.rows.count,
        embed: s.embed_patches,
        input: s.input_patches,
        temps: s.temps,
    };
    let ex = Extract {
        prm: p,
        d,
        cw: &cw,
        channels,
        x: planes(io.input),
        embed: planes(io.embed),
        temp: planes(io.temp),
        temp_scale: 1.0,
    };
    for i in 0..d.rows.count {
        ex.patches(i, cw.j0..cw.j0 + cw.n, &mut ring.row(i, cw.n, d));
    }
    io.output[channels * g.plane()..g.len(channels * (p.k + 1))].fill(0.0);
    let mut scratch = QueryScratch {
        indices: s.indices,
        logits: s.logits,
        weights: s.weights,
        neighbours: s.neighbours,
        kernel: Scratch {
            f: &mut [],
            i32s: &mut [],
            i64s: &mut [],
        },
    };
    for i in 0..d.rows.count {
        query_row(
            isa,
            p,
            d,
            &cw,
            channels,
            1.0,
            i,
            &ring,
            &mut scratch,
            None,
            band,
            io.output,
        )?;
    }
    let x = planes(io.input);
    finish_rows(isa, d, &cw, channels, x, band, io.output, 0..g.height);
    Ok(())
}

/// Sum of one plane over patch `(i, j)` (zero outside the image and the held
/// columns).
fn patch_sum<A: Act>(src: Planes<'_, A>, d: &N3Dims, cw: &Columns, i: usize, j: usize) -> A::Wide {
    let p = d.rows.patch;
    let mut sum = A::Wide::default();
    for dy in 0..p {
        let Some(y) = d.rows.pixel(i, dy) else {
            continue;
        };
        for dx in 0..p {
            if let Some(x) = cw.pixel(&d.cols, j, dx) {
                sum = sum + src.data[src.band.at(y, x)].widen();
            }
        }
    }
    sum
}

/// Writes the candidate patches of query `(i, j)` (its window, without
/// itself) into `indices` as rows of a ring of `slots` patch rows of the held
/// columns; returns how many.
fn candidates(
    d: &N3Dims,
    cw: &Columns,
    window: usize,
    slots: usize,
    i: usize,
    j: usize,
    indices: &mut [u32],
) -> usize {
    let (r0, rn) = d.rows.window(i, window);
    let (c0, cn) = d.cols.window(j, window);
    let mut n = 0;
    for a in r0..r0 + rn {
        for b in c0..c0 + cn {
            if (a, b) != (i, j) {
                indices[n] = ((a % slots) * cw.n + b - cw.j0) as u32;
                n += 1;
            }
        }
    }
    n
}

/// Adds channels `cs` of neighbour patches `z` of query `(i, j)` (a row of
/// `cs.len()` channels for each neighbour) at the query's place into the
/// output planes; pixels in the grid padding or outside the held columns are
/// cropped.
#[allow(clippy::too_many_arguments)]
fn fold_add<A: Act>(
    isa: Isa,
    z: &[A::Wide],
    band: Band,
    d: &N3Dims,
    cw: &Columns,
    cs: Range<usize>,
    i: usize,
    j: usize,
    out: &mut dyn FoldPlanes<A>,
) {
    let p = d.rows.patch;
    // The held columns of the patch (offset, image column, coverage), once
    // for all its rows and channels; patches are at most 64 wide.
    let mut cols = [(0usize, 0usize, 0u32); 64];
    let mut held = 0;
    for dx in 0..p.min(cols.len()) {
        if let Some(x) = cw.pixel(&d.cols, j, dx) {
            let cov = if A::PREDIVIDE {
                d.cols.coverage(cw.x0 + x + d.cols.before) as u32
            } else {
                1
            };
            cols[held] = (dx, x, cov);
            held += 1;
        }
    }
    let cols = &cols[..held];
    // The held columns are consecutive (a patch is cropped at its ends):
    // each patch row folds as one span.
    let span = cols.first().map_or(0..0, |c| c.0..c.0 + held);
    let x0 = cols.first().map_or(0, |c| c.1);
    let consecutive = cols
        .iter()
        .enumerate()
        .all(|(n, c)| c.0 == span.start + n && c.1 == x0 + n);
    let mut count = [0u32; 64];
    for dy in 0..p {
        let Some(y) = d.rows.pixel(i, dy) else {
            continue;
        };
        let cy = if A::PREDIVIDE {
            d.rows.coverage(y + d.rows.before) as u32
        } else {
            1
        };
        for (n, &(_, _, cx)) in cols.iter().enumerate() {
            count[n] = cy * cx;
        }
        let count = &count[..held];
        let at = band.at(y, 0);
        for (jn, zj) in z.chunks_exact(cs.len() * p * p).enumerate() {
            for c in cs.clone() {
                let row = &mut out.plane(jn, c)[at..][..band.width];
                let zrow = &zj[((c - cs.start) * p + dy) * p..][..p];
                if consecutive {
                    A::fold_span(isa, &mut row[x0..x0 + held], &zrow[span.clone()], count);
                } else {
                    for (&(dx, x, _), &n) in cols.iter().zip(count) {
                        A::fold(&mut row[x], zrow[dx], n);
                    }
                }
            }
        }
    }
}

/// Turns the folded sums of image rows `rows` (the held columns) into
/// averages and writes `[x, z¹ − x, …]`. Each row is final once every patch
/// row covering it has been through [`query_row`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_rows<A: Act>(
    isa: Isa,
    d: &N3Dims,
    cw: &Columns,
    channels: usize,
    x: Planes<'_, A>,
    band: Band,
    out: &mut [A],
    rows: core::ops::Range<usize>,
) {
    // Columns finished at once: their patch counts are computed once for
    // every channel and neighbour.
    const SPAN: usize = 64;
    let mut count = [0u32; SPAN];
    for y in rows {
        let cy = d.rows.coverage(y + d.rows.before);
        for x0 in (0..band.width).step_by(SPAN) {
            let n = SPAN.min(band.width - x0);
            for (xx, c) in (x0..x0 + n).zip(count.iter_mut()) {
                *c = (cy * d.cols.coverage(cw.x0 + xx + d.cols.before)) as u32;
            }
            let (ax, at) = (x.band.at(y, x0), band.at(y, x0));
            for c in 0..channels {
                let xs = &x.data[c * x.band.plane + ax..][..n];
                out[c * band.plane + at..][..n].copy_from_slice(xs);
                for jn in 0..d.k {
                    let o = &mut out[((1 + jn) * channels + c) * band.plane + at..][..n];
                    A::finish_span(isa, o, xs, &count[..n]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_channels;

    #[test]
    fn channel_splits_fall_on_whole_vectors() {
        assert_eq!(split_channels(8, 100), Some(4));
        assert_eq!(split_channels(3, 100), Some(2));
        assert_eq!(
            split_channels(6, 36),
            Some(2),
            "3·36 is not a multiple of 8"
        );
        assert_eq!(split_channels(1, 100), None);
        assert_eq!(split_channels(4, 9), None);
    }
}
