//! Activation storage types: what the streaming executor keeps in its row
//! buffers and patch rings, and the arithmetic that differs between them.
//!
//! - `f32`: the reference; the kernels of [`super::conv`] and
//!   [`crate::n3::aggregate`].
//! - [`f16`]: IEEE binary16 storage, every operation in f32 (rows and patches
//!   are widened on load and rounded to nearest-even on store; F16C on
//!   x86-64, a portable conversion elsewhere, with the same bits).
//! - `i16` (q16): fixed point, integer arithmetic throughout
//!   ([`super::fixed`]); the N³ block's relaxation runs in f32 with the
//!   core's own `exp`/`ln`, from integer distances. The same bits on every
//!   target.
//!
//! An N³ block's fold adds up to `(patch / stride)²` neighbour patches per
//! pixel. In f32 the sums are divided once at the end (the reference
//! order); the 16-bit types would overflow (q16) or lose bits (f16) that
//! way, so they add each patch already divided by the pixel's patch count
//! ([`Act::PREDIVIDE`]).

use core::ops::{Add, Range};

use half::f16;

use super::conv::conv2d_band;
use super::fixed::{self, Mult};
use super::qconv;
use super::Isa;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ConvLayer, Weights};
#[cfg(target_arch = "x86_64")]
use crate::n3::aggregate::avx2;
use crate::n3::aggregate::{
    aggregate_columns, check_indices, columns_of, squared_distance, squared_distances_with,
};
use crate::parallel::Parallel;
use crate::tensor::Band;
use crate::workspace::Pod;

/// Output channels converted and computed at once by the f16 convolution: a
/// multiple of the f32 kernel's channel block (6 with AVX2; 24 is also a
/// multiple of 2, 3, 4 and 8), so that the f16 network runs the same blocks
/// as the f32 one.
const F16_BLOCK: usize = 24;

/// A buffer region of the ring arena and where its rows lie.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    pub band: Band,
    pub range: Range<usize>,
}

/// One output row `y` of a convolution between two regions of an arena.
pub(crate) struct ConvRow<'l, 'w> {
    pub isa: Isa,
    pub layer: &'l ConvLayer<'w>,
    pub src: Region,
    pub dst: Region,
    /// The residual added after the ReLU (DnCNN stage input), and its channels.
    pub res: Option<(Region, usize)>,
    pub y: usize,
    /// Moves and zeroing of the output rows, done on each output plane by
    /// the thread that computes it before it does.
    pub prep: RowPrep,
    /// q16: scales of the input, output and residual tensors.
    pub scales: [f32; 3],
    /// Threads to split the output channels between.
    pub par: Option<&'l dyn Parallel>,
}

/// The rows of a ring to move to its front and then to zero, in values of
/// each plane, before new rows are written (the stream's compaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowPrep {
    /// Values moved to the front of each plane (none when empty).
    pub keep: Range<usize>,
    /// Values zeroed afterwards.
    pub zero: Range<usize>,
}

impl RowPrep {
    /// Applies the plan to every `plane`-long plane of `planes`. Each
    /// thread applies it to the planes it writes, so that the moved rows
    /// stay in its core's cache.
    pub fn apply<A: Copy + Default>(&self, planes: &mut [A], plane: usize) {
        for p in planes.chunks_exact_mut(plane) {
            if !self.keep.is_empty() {
                p.copy_within(self.keep.clone(), 0);
            }
            p[self.zero.clone()].fill(A::default());
        }
    }
}

/// Scratch of the 16-bit kernels, from the workspace.
pub(crate) struct Scratch<'a> {
    pub f: &'a mut [f32],
    pub i32s: &'a mut [i32],
    pub i64s: &'a mut [i64],
}

/// Sizes of [`Scratch`] a network needs: `(f32, i32, i64)` values.
pub(crate) struct ScratchSize {
    pub f: usize,
    pub i32s: usize,
    pub i64s: usize,
}

/// The arena outside one mutable region: both sides, readable.
pub(crate) struct Outside<'a, A> {
    before: &'a [A],
    after: &'a [A],
    split: usize,
}

impl<'a, A> Outside<'a, A> {
    /// The values of `r`, which must not overlap the mutable region.
    pub fn get(&self, r: Range<usize>) -> &'a [A] {
        if r.start < self.before.len() {
            &self.before[r]
        } else {
            &self.after[r.start - self.split..r.end - self.split]
        }
    }
}

/// Splits `arena` into the mutable region `w` and the rest.
pub(crate) fn split_out<A>(arena: &mut [A], w: Range<usize>) -> (&mut [A], Outside<'_, A>) {
    let (before, rest) = arena.split_at_mut(w.start);
    let (mid, after) = rest.split_at_mut(w.len());
    let split = w.end;
    (
        mid,
        Outside {
            before,
            after,
            split,
        },
    )
}

/// Computes output channels `channels` of a row with a scratch into `out`.
type ChannelsFn<'f, A> = dyn Fn(Range<usize>, &mut Scratch<'_>, &mut [A]) -> Result<()> + Sync + 'f;

/// Output channels `0..cout` of a row computed by `f(channels, scratch,
/// out)`, `out` holding the output channel planes (`plane` values each) from
/// `channels.start`: in one call, or in two halves joined on `par` when the
/// row has at least `2 ·` [`SPLIT_MIN_CHANNELS`] channels and a second
/// scratch `lane` is lent. Each channel is computed as without the split.
fn halves<A: Send + Copy + Default>(
    second: Option<(&dyn Parallel, &mut Scratch<'_>)>,
    s: &mut Scratch<'_>,
    (cout, plane): (usize, usize),
    out: &mut [A],
    prep: &RowPrep,
    f: &ChannelsFn<'_, A>,
) -> Result<()> {
    let part = |cos: Range<usize>, s: &mut Scratch<'_>, out: &mut [A]| {
        prep.apply(out, plane);
        f(cos, s, out)
    };
    match second {
        Some((par, lane)) if par.threads() >= 2 && cout >= 2 * SPLIT_MIN_CHANNELS => {
            let half = cout / 2;
            join_channels(
                par,
                out,
                (cout, plane, half),
                &mut |oa| part(0..half, s, oa),
                &mut |ob| part(half..cout, lane, ob),
            )
        }
        _ => part(0..cout, s, out),
    }
}

/// Output channel planes `out` (`cout` planes of `plane` values) split at
/// channel `at`: `a` fills the first part and `b` the rest, joined on `par`.
fn join_channels<A: Send>(
    par: &dyn Parallel,
    out: &mut [A],
    (cout, plane, at): (usize, usize, usize),
    a: &mut (dyn FnMut(&mut [A]) -> Result<()> + Send),
    b: &mut (dyn FnMut(&mut [A]) -> Result<()> + Send),
) -> Result<()> {
    if out.len() < cout * plane {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "conv: output band shorter than its channels",
        ));
    }
    let (oa, ob) = out.split_at_mut(at * plane);
    let (mut ra, mut rb) = (Ok(()), Ok(()));
    par.join(&mut || ra = a(oa), &mut || rb = b(ob));
    ra.and(rb)
}

/// Output channels below which a convolution row is not split further.
const SPLIT_MIN_CHANNELS: usize = 8;

/// Output row `y` of `layer` (f32), its output channels split between `parts`
/// threads of `par` by recursive halving; `out` holds the output band's
/// channel planes, which `prep` readies first. Each channel is computed as
/// without the split.
#[allow(clippy::too_many_arguments)]
fn conv_split(
    isa: Isa,
    par: Option<&dyn Parallel>,
    parts: usize,
    layer: &ConvLayer<'_>,
    (sb, input): (Band, &[f32]),
    (db, prep): (Band, &RowPrep),
    out: &mut [f32],
    y: usize,
) -> Result<()> {
    let cout = layer.cout;
    let par = match par {
        Some(p) if parts >= 2 && cout >= 2 * SPLIT_MIN_CHANNELS => p,
        _ => {
            prep.apply(out, db.plane);
            return conv2d_band(isa, layer, sb, input, db, out, y..y + 1);
        }
    };
    let (pa, pb) = (parts / 2, parts - parts / 2);
    let half = cout * pa / parts;
    let (la, lb) = (
        layer.output_channels(0..half),
        layer.output_channels(half..cout),
    );
    join_channels(
        par,
        out,
        (cout, db.plane, half),
        &mut |oa| conv_split(isa, Some(par), pa, &la, (sb, input), (db, prep), oa, y),
        &mut |ob| conv_split(isa, Some(par), pb, &lb, (sb, input), (db, prep), ob, y),
    )
}

/// An activation storage type.
pub(crate) trait Act: Pod + PartialEq + Send + Sync + 'static {
    /// Whether the fold adds patches already divided by the pixel's count.
    const PREDIVIDE: bool;
    /// Accumulator of sums of stored values (patch sums, aggregation).
    type Wide: Pod + Add<Output = Self::Wide> + Send + Sync;

    /// Stores real values (`scale` only for q16).
    fn store(isa: Isa, src: &[f32], dst: &mut [Self], scale: f32);
    /// Real values of stored ones.
    fn load(isa: Isa, src: &[Self], dst: &mut [f32], scale: f32);
    /// The value as an accumulator.
    fn widen(self) -> Self::Wide;
    /// Largest real magnitude of stored values.
    fn peak(src: &[Self], scale: f32) -> f32;
    /// A real value of an accumulated sum.
    fn wide_to_f32(w: Self::Wide, scale: f32) -> f32;

    /// Scratch of the convolution over rows `width + 2·pad` values wide and
    /// of the N³ distances and aggregation over patches `dim` values long.
    fn scratch(
        layers: &mut dyn Iterator<Item = (usize, usize, usize)>,
        rs: usize,
        dim: usize,
    ) -> ScratchSize;

    /// Computes one output row of a convolution in `arena`, its output
    /// channels split between the threads of `c.par`: f32 needs no scratch
    /// for that, the 16-bit types a second scratch `lane` (as large as `s`).
    fn conv_row(
        c: &ConvRow<'_, '_>,
        arena: &mut [Self],
        s: &mut Scratch<'_>,
        lane: Option<&mut Scratch<'_>>,
    ) -> Result<()>;

    /// Real squared distances from `query` to the indexed rows of `data`
    /// (`scale` of the stored values).
    #[allow(clippy::too_many_arguments)]
    fn distances(
        isa: Isa,
        data: &[Self],
        dim: usize,
        query: &[Self],
        indices: &[u32],
        out: &mut [f32],
        scale: f32,
        s: &mut Scratch<'_>,
    ) -> Result<()>;

    /// `k` weighted sums of columns `cols` of the indexed rows of `data`
    /// (`k · cols.len()` values).
    #[allow(clippy::too_many_arguments)]
    fn aggregate(
        isa: Isa,
        data: &[Self],
        dim: usize,
        cols: Range<usize>,
        indices: &[u32],
        weights: &[f32],
        k: usize,
        out: &mut [Self::Wide],
        s: &mut Scratch<'_>,
    ) -> Result<()>;

    /// Adds an aggregated value to a fold sum of a pixel covered by `count`
    /// patches.
    fn fold(acc: &mut Self, z: Self::Wide, count: u32);
    /// [`Act::fold`] of `z[i]` into `acc[i]`, covered by `count[i]` patches,
    /// for every `i`.
    fn fold_span(_: Isa, acc: &mut [Self], z: &[Self::Wide], count: &[u32]) {
        fold_each(acc, z, count);
    }
    /// The finished fold of a pixel covered by `count` patches, minus `x`.
    fn finish(acc: Self, x: Self, count: u32) -> Self;
    /// [`Act::finish`] of `acc[i]`, `x[i]` and `count[i]` into `acc[i]`,
    /// for every `i`.
    fn finish_span(_: Isa, acc: &mut [Self], x: &[Self], count: &[u32]) {
        finish_each(acc, x, count);
    }
}

/// The plain [`Act::finish_span`].
#[inline]
fn finish_each<A: Act>(acc: &mut [A], x: &[A], count: &[u32]) {
    for ((a, &x), &c) in acc.iter_mut().zip(x).zip(count) {
        *a = A::finish(*a, x, c);
    }
}

/// The plain [`Act::fold_span`].
#[inline]
fn fold_each<A: Act>(acc: &mut [A], z: &[A::Wide], count: &[u32]) {
    for ((a, &z), &c) in acc.iter_mut().zip(z).zip(count) {
        A::fold(a, z, c);
    }
}

fn precision_error() -> Error {
    Error::new(
        ErrorKind::UnsupportedPrecision,
        "weights do not match the activation precision",
    )
}

/// [`check_indices`], and a query as long as a row.
fn index_check(len: usize, dim: usize, indices: &[u32], query: usize) -> Result<()> {
    check_indices(len, dim, indices)?;
    if query != dim {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "distances: query length",
        ));
    }
    Ok(())
}

impl Act for f32 {
    const PREDIVIDE: bool = false;
    type Wide = f32;

    fn store(_: Isa, src: &[f32], dst: &mut [f32], _: f32) {
        dst.copy_from_slice(src);
    }
    fn load(_: Isa, src: &[f32], dst: &mut [f32], _: f32) {
        dst.copy_from_slice(src);
    }
    #[inline]
    fn widen(self) -> f32 {
        self
    }
    fn peak(src: &[f32], _: f32) -> f32 {
        src.iter().fold(0.0, |m, v| m.max(v.abs()))
    }
    #[inline]
    fn wide_to_f32(w: f32, _: f32) -> f32 {
        w
    }
    fn scratch(
        _: &mut dyn Iterator<Item = (usize, usize, usize)>,
        _: usize,
        _: usize,
    ) -> ScratchSize {
        ScratchSize {
            f: 0,
            i32s: 0,
            i64s: 0,
        }
    }

    fn conv_row(
        c: &ConvRow<'_, '_>,
        arena: &mut [f32],
        _: &mut Scratch<'_>,
        _: Option<&mut Scratch<'_>>,
    ) -> Result<()> {
        let (out, rest) = split_out(arena, c.dst.range.clone());
        let db = c.dst.band;
        let y = c.y;
        let src = (c.src.band, rest.get(c.src.range.clone()));
        let threads = c.par.map_or(1, |p| p.threads());
        conv_split(c.isa, c.par, threads, c.layer, src, (db, &c.prep), out, y)?;
        if let Some((res, ch)) = &c.res {
            let input = rest.get(res.range.clone());
            let (rb, w) = (res.band, db.width);
            for ch in 0..*ch {
                let (a, o) = (ch * rb.plane + rb.at(y, 0), ch * db.plane + db.at(y, 0));
                for (d, s) in out[o..o + w].iter_mut().zip(&input[a..a + w]) {
                    *d += *s;
                }
            }
        }
        Ok(())
    }

    fn distances(
        isa: Isa,
        data: &[f32],
        dim: usize,
        query: &[f32],
        indices: &[u32],
        out: &mut [f32],
        _: f32,
        _: &mut Scratch<'_>,
    ) -> Result<()> {
        squared_distances_with(isa, data, dim, query, indices, out)
    }

    fn aggregate(
        isa: Isa,
        data: &[f32],
        dim: usize,
        cols: Range<usize>,
        indices: &[u32],
        weights: &[f32],
        k: usize,
        out: &mut [f32],
        _: &mut Scratch<'_>,
    ) -> Result<()> {
        aggregate_columns(isa, data, dim, cols, indices, weights, k, out)
    }

    #[inline]
    fn fold(acc: &mut f32, z: f32, _: u32) {
        *acc += z;
    }
    #[inline]
    fn finish(acc: f32, x: f32, count: u32) -> f32 {
        acc / count as f32 - x
    }
}

impl Act for f16 {
    const PREDIVIDE: bool = true;
    type Wide = f32;

    fn store(isa: Isa, src: &[f32], dst: &mut [f16], _: f32) {
        to_f16(isa, src, dst);
    }
    fn load(isa: Isa, src: &[f16], dst: &mut [f32], _: f32) {
        to_f32(isa, src, dst);
    }
    #[inline]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    fn peak(src: &[f16], _: f32) -> f32 {
        // Without the sign bit, the bits of binary16 values order as their
        // magnitudes: an integer maximum the compiler vectorises. A NaN
        // (bits above infinity's) is ignored, as `f32::max` ignores it.
        let magnitudes = src.iter().map(|v| (v.to_bits() & 0x7fff) as i16);
        let mut top = magnitudes.clone().fold(0, i16::max);
        if top > 0x7c00 {
            top = magnitudes.filter(|&m| m <= 0x7c00).fold(0, i16::max);
        }
        soft::widen(top as u16)
    }
    #[inline]
    fn wide_to_f32(w: f32, _: f32) -> f32 {
        w
    }
    fn scratch(
        layers: &mut dyn Iterator<Item = (usize, usize, usize)>,
        rs: usize,
        dim: usize,
    ) -> ScratchSize {
        // Input rows (k rows of every input channel), a block of weights,
        // a block of output rows and a residual row; or a query and a
        // candidate patch.
        let conv = layers
            .map(|(cin, cout, k)| (k * cin + 1) * rs + F16_BLOCK.min(cout) * (cin * k * k + rs))
            .max()
            .unwrap_or(0);
        ScratchSize {
            f: conv.max(2 * dim),
            i32s: 0,
            i64s: 0,
        }
    }

    fn conv_row(
        c: &ConvRow<'_, '_>,
        arena: &mut [f16],
        s: &mut Scratch<'_>,
        lane: Option<&mut Scratch<'_>>,
    ) -> Result<()> {
        let l = c.layer;
        let Weights::F16(weights) = l.weight else {
            return Err(precision_error());
        };
        let (out, rest) = split_out(arena, c.dst.range.clone());
        let input = rest.get(c.src.range.clone());
        let (sb, db, y) = (c.src.band, c.dst.band, c.y);
        let (k, kp, rs, w) = (l.ksize, l.ksize / 2, sb.row_stride(), db.width);
        // The input rows this output row reads, widened.
        let band = Band {
            width: sb.width,
            pad: sb.pad,
            plane: k * rs,
            first: y + sb.pad - kp,
        };
        if band.first < sb.first || !sb.holds(band.first, band.first + k) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "conv: rows not held",
            ));
        }
        let ob = Band {
            width: db.width,
            pad: db.pad,
            plane: rs,
            first: y + db.pad,
        };
        let taps = l.cin * k * k;
        let part = |cos: Range<usize>, s: &mut Scratch<'_>, out: &mut [f16]| -> Result<()> {
            // The input rows, widened by each half of a split row into its
            // own scratch: one copy shared by two cores would be rewritten
            // every row while the other core holds it in its cache (`to_f32`
            // on the first thread: 13 % of the samples at 2 threads with one
            // shared copy, 2 % with one copy per thread).
            let (rows, rest_f) = s.f.split_at_mut(l.cin * band.plane);
            for (ci, d) in rows.chunks_exact_mut(band.plane).enumerate() {
                let from = ci * sb.plane + (band.first - sb.first) * rs;
                to_f32(c.isa, &input[from..from + band.plane], d);
            }
            let rows = &*rows;
            let (res_row, rest_f) = rest_f.split_at_mut(rs);
            let mut co = cos.start;
            while co < cos.end {
                let cb = F16_BLOCK.min(cos.end - co);
                let (wf, rest_o) = rest_f.split_at_mut(cb * taps);
                let orow = &mut rest_o[..cb * rs];
                to_f32(c.isa, &weights[co * taps..(co + cb) * taps], wf);
                let sub = ConvLayer {
                    cout: cb,
                    weight: Weights::F32(wf),
                    bias: &l.bias[co..co + cb],
                    ..*l
                };
                conv2d_band(c.isa, &sub, band, rows, ob, orow, y..y + 1)?;
                for j in 0..cb {
                    let r = &mut orow[j * rs + db.pad..][..w];
                    if let Some((res, ch)) = &c.res {
                        if co + j < *ch {
                            let at = (co + j) * res.band.plane + res.band.at(y, 0);
                            let add = &mut res_row[..w];
                            to_f32(c.isa, &rest.get(res.range.clone())[at..at + w], add);
                            for (d, v) in r.iter_mut().zip(add.iter()) {
                                *d += *v;
                            }
                        }
                    }
                    let at = (co + j - cos.start) * db.plane + db.at(y, 0);
                    to_f16(c.isa, r, &mut out[at..at + w]);
                }
                co += cb;
            }
            Ok(())
        };
        let second = c.par.zip(lane);
        halves(second, s, (l.cout, db.plane), out, &c.prep, &part)
    }

    fn distances(
        isa: Isa,
        data: &[f16],
        dim: usize,
        query: &[f16],
        indices: &[u32],
        out: &mut [f32],
        _: f32,
        s: &mut Scratch<'_>,
    ) -> Result<()> {
        index_check(data.len(), dim, indices, query.len())?;
        if out.len() != indices.len() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "distances: output length",
            ));
        }
        let (q, cand) = s.f[..2 * dim].split_at_mut(dim);
        to_f32(isa, query, q);
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` proves AVX2, FMA and F16C; indices and lengths were checked.
            Isa::Avx2Fma(_) => unsafe { avx2::distances(data, dim, q, indices, out) },
            _ => {
                for (o, &i) in out.iter_mut().zip(indices) {
                    to_f32(isa, &data[i as usize * dim..][..dim], cand);
                    *o = squared_distance(q, cand);
                }
            }
        }
        Ok(())
    }

    fn aggregate(
        isa: Isa,
        data: &[f16],
        dim: usize,
        cols: Range<usize>,
        indices: &[u32],
        weights: &[f32],
        k: usize,
        out: &mut [f32],
        s: &mut Scratch<'_>,
    ) -> Result<()> {
        let lens = (k, weights.len(), out.len());
        let Some((data, (dim, w))) = columns_of(data, dim, cols, indices, lens)? else {
            return Ok(());
        };
        let n = indices.len();
        #[cfg(target_arch = "x86_64")]
        if let Isa::Avx2Fma(_) = isa {
            // SAFETY: `Avx2Fma` proves AVX2, FMA and F16C; indices, columns and lengths were checked.
            unsafe { avx2::aggregate(data, (dim, w), indices, weights, out) };
            return Ok(());
        }
        let row = &mut s.f[..w];
        out.fill(0.0);
        for (c, &i) in indices.iter().enumerate() {
            to_f32(isa, &data[i as usize * dim..][..w], row);
            for (j, z) in out.chunks_exact_mut(w).enumerate() {
                let w = weights[j * n + c];
                for (zv, xv) in z.iter_mut().zip(row.iter()) {
                    *zv += w * *xv;
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn fold(acc: &mut f16, z: f32, count: u32) {
        let sum = soft::widen(acc.to_bits()) + z / count as f32;
        *acc = f16::from_bits(soft::narrow(sum));
    }
    fn fold_span(isa: Isa, acc: &mut [f16], z: &[f32], count: &[u32]) {
        #[cfg(target_arch = "x86_64")]
        if let Isa::Avx2Fma(_) = isa {
            // SAFETY: `Avx2Fma` proves AVX2 and F16C.
            return unsafe { f16c::fold_span(acc, z, count) };
        }
        let _ = isa;
        fold_each(acc, z, count);
    }
    #[inline]
    fn finish(acc: f16, x: f16, _: u32) -> f16 {
        let d = soft::widen(acc.to_bits()) - soft::widen(x.to_bits());
        f16::from_bits(soft::narrow(d))
    }
    fn finish_span(isa: Isa, acc: &mut [f16], x: &[f16], count: &[u32]) {
        #[cfg(target_arch = "x86_64")]
        if let Isa::Avx2Fma(_) = isa {
            // SAFETY: `Avx2Fma` proves AVX2 and F16C.
            return unsafe { f16c::finish_span(acc, x) };
        }
        let _ = isa;
        finish_each(acc, x, count);
    }
}

/// Fractional bits of the q16 aggregation weights: a weight in `[0, 1]`
/// is at most `2¹⁴`, one `i16`.
const WEIGHT_BITS: u32 = 14;

impl Act for i16 {
    const PREDIVIDE: bool = true;
    type Wide = i64;

    fn store(_: Isa, src: &[f32], dst: &mut [i16], scale: f32) {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = fixed::quantize(v, scale);
        }
    }
    fn load(_: Isa, src: &[i16], dst: &mut [f32], scale: f32) {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = f32::from(v) * scale;
        }
    }
    #[inline]
    fn widen(self) -> i64 {
        i64::from(self)
    }
    fn peak(src: &[i16], scale: f32) -> f32 {
        f32::from(src.iter().fold(0, |m, v| m.max(v.unsigned_abs()))) * scale
    }
    #[inline]
    fn wide_to_f32(w: i64, scale: f32) -> f32 {
        w as f32 * scale
    }
    fn scratch(
        layers: &mut dyn Iterator<Item = (usize, usize, usize)>,
        rs: usize,
        _: usize,
    ) -> ScratchSize {
        let (i32s, i64s) = layers
            .map(|(cin, _, k)| qconv::scratch(cin, k, rs))
            .fold((0, 0), |(a, b), (c, d)| (a.max(c), b.max(d)));
        ScratchSize { f: 0, i32s, i64s }
    }

    fn conv_row(
        c: &ConvRow<'_, '_>,
        arena: &mut [i16],
        s: &mut Scratch<'_>,
        lane: Option<&mut Scratch<'_>>,
    ) -> Result<()> {
        let l = c.layer;
        let Weights::Q16 { values, scales } = l.weight else {
            return Err(precision_error());
        };
        let (out, rest) = split_out(arena, c.dst.range.clone());
        let input = rest.get(c.src.range.clone());
        let (sb, db, y) = (c.src.band, c.dst.band, c.y);
        let (k, kp, w) = (l.ksize, l.ksize / 2, db.width);
        let rs = sb.row_stride();
        if y + sb.pad - kp < sb.first || !sb.holds(y + sb.pad - kp, y + sb.pad + kp + 1) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "conv: rows not held",
            ));
        }
        let [sx, sy, sr] = c.scales.map(f64::from);
        let res_mult = Mult::new(sr / sy)?;
        let at = |ci: usize, ky: usize| {
            ci * sb.plane + (y + sb.pad - kp + ky - sb.first) * rs + sb.pad - kp
        };
        let bias = |co: usize| fixed::bias_acc(l.bias[co], sx * f64::from(scales[co]));
        let dims = (l.cin, l.cout, k);
        // Each half of a split row copies the input rows into its own scratch
        // (in `conv_acc_rows`), as the f16 row widens them.
        let part = |cos: Range<usize>, s: &mut Scratch<'_>, out: &mut [i16]| {
            let first = cos.start;
            qconv::conv_acc_rows(
                c.isa,
                values,
                dims,
                cos,
                input,
                at,
                w,
                bias,
                s.i32s,
                s.i64s,
                |co, acc| {
                    let m = Mult::new(sx * f64::from(scales[co]) / sy)?;
                    let res = match &c.res {
                        Some((r, ch)) if co < *ch => {
                            let a = co * r.band.plane + r.band.at(y, 0);
                            Some((&rest.get(r.range.clone())[a..a + w], res_mult))
                        }
                        _ => None,
                    };
                    let o = (co - first) * db.plane + db.at(y, 0);
                    fixed::finish_row(c.isa, acc, m, l.relu, res, &mut out[o..o + w]);
                    Ok(())
                },
            )
        };
        let second = c.par.zip(lane);
        halves(second, s, (l.cout, db.plane), out, &c.prep, &part)
    }

    fn distances(
        isa: Isa,
        data: &[i16],
        dim: usize,
        query: &[i16],
        indices: &[u32],
        out: &mut [f32],
        scale: f32,
        _: &mut Scratch<'_>,
    ) -> Result<()> {
        index_check(data.len(), dim, indices, query.len())?;
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` proves AVX2; indices and lengths were checked.
            Isa::Avx2Fma(_) => unsafe {
                q16_avx2::distances(data, dim, query, indices, out, scale)
            },
            _ => q16_distances(data, dim, query, indices, out, scale),
        }
        Ok(())
    }

    fn aggregate(
        isa: Isa,
        data: &[i16],
        dim: usize,
        cols: Range<usize>,
        indices: &[u32],
        weights: &[f32],
        k: usize,
        out: &mut [i64],
        _: &mut Scratch<'_>,
    ) -> Result<()> {
        let lens = (k, weights.len(), out.len());
        let Some((data, sw)) = columns_of(data, dim, cols, indices, lens)? else {
            return Ok(());
        };
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` proves AVX2; indices, columns and lengths were checked.
            Isa::Avx2Fma(_) => unsafe { q16_avx2::aggregate(data, sw, indices, weights, out) },
            _ => q16_aggregate(data, sw, indices, weights, out),
        }
        Ok(())
    }

    #[inline]
    fn fold(acc: &mut i16, z: i64, count: u32) {
        *acc = fixed::saturate(i64::from(*acc) + fixed::round_div(z, i64::from(count)));
    }
    #[inline]
    fn finish(acc: i16, x: i16, _: u32) -> i16 {
        fixed::saturate(i64::from(acc) - i64::from(x))
    }
}

/// Real squared distances of q16 patches: integer sums, one rounding.
#[inline(always)]
fn q16_distances(
    data: &[i16],
    dim: usize,
    query: &[i16],
    indices: &[u32],
    out: &mut [f32],
    scale: f32,
) {
    let s2 = scale * scale;
    for (o, &i) in out.iter_mut().zip(indices) {
        let row = &data[i as usize * dim..][..dim];
        let d: i64 = query
            .iter()
            .zip(row)
            .map(|(&a, &b)| {
                let e = i64::from(a) - i64::from(b);
                e * e
            })
            .sum();
        *o = d as f32 * s2;
    }
}

/// A q16 aggregation weight: clamped to `[0, 1]` and rounded to
/// [`WEIGHT_BITS`] fractional bits (at most `2^WEIGHT_BITS`).
#[inline(always)]
fn q16_weight(w: f32) -> i64 {
    let one = (1u32 << WEIGHT_BITS) as f32;
    // Weights are in [0, 1]: the cast truncates a non-negative value.
    (w.clamp(0.0, 1.0) * one + 0.5) as i64
}

/// The rounded aggregate of a q16 sum of weighted patches.
#[inline(always)]
fn q16_round(z: i64) -> i64 {
    (z + (1i64 << (WEIGHT_BITS - 1))) >> WEIGHT_BITS
}

/// q16 aggregation: weights rounded to [`WEIGHT_BITS`] fractional bits,
/// integer sums, rounded back to the patches' scale.
#[inline(always)]
fn q16_aggregate(
    data: &[i16],
    (stride, width): (usize, usize),
    indices: &[u32],
    weights: &[f32],
    out: &mut [i64],
) {
    let n = indices.len();
    out.fill(0);
    for (c, &i) in indices.iter().enumerate() {
        let row = &data[i as usize * stride..][..width];
        for (j, z) in out.chunks_exact_mut(width).enumerate() {
            let w = q16_weight(weights[j * n + c]);
            if w == 0 {
                continue;
            }
            for (zv, &xv) in z.iter_mut().zip(row) {
                *zv += w * i64::from(xv);
            }
        }
    }
    for z in out.iter_mut() {
        *z = q16_round(*z);
    }
}

/// The q16 N³ kernels with AVX2 (the same integers).
#[cfg(target_arch = "x86_64")]
mod q16_avx2 {
    use core::arch::x86_64::*;

    /// Values summed in `i32` lanes before they are widened: 128 products
    /// of at most `2¹⁵ · 2⁸` in each lane.
    const SPAN: usize = 16 * 128;

    /// `Σ x·y`, with `x = x_h·2⁸ + x_l` split into a signed high byte and
    /// an unsigned low one so that `vpmaddwd` sums stay exact: the `i32`
    /// lanes of `(Σ y·x_h, Σ y·x_l)` for `x` and `y` of 16 values.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn split_dot(y: __m256i, x: __m256i, acc: &mut [__m256i; 2]) {
        let high = _mm256_srai_epi16::<8>(x);
        let low = _mm256_and_si256(x, _mm256_set1_epi16(0xff));
        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(y, high));
        acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(y, low));
    }

    /// Pairs of `i32` lanes added as `i64`s.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn wide(v: __m256i) -> __m256i {
        _mm256_add_epi64(
            _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
            _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v)),
        )
    }

    /// `acc[0]·2⁸ + acc[1]` summed over the lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn split_sum(acc: &[__m256i; 2]) -> i64 {
        let mut s = [0i64; 4];
        let v = _mm256_add_epi64(_mm256_slli_epi64::<8>(wide(acc[0])), wide(acc[1]));
        // SAFETY: `s` holds four i64s.
        unsafe { _mm256_storeu_si256(s.as_mut_ptr().cast(), v) };
        (s[0] + s[1]) + (s[2] + s[3])
    }

    /// `(Σ q·x, Σ x·x)` over `q.len()` values, exactly.
    ///
    /// # Safety
    /// AVX2 must be available and `x` readable for `q.len()` values.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn dots(q: &[i16], x: *const i16) -> (i64, i64) {
        let (mut qx, mut xx) = (0i64, 0i64);
        let mut m = 0;
        while m + 16 <= q.len() {
            let end = (m + SPAN).min(q.len() - q.len() % 16);
            let (mut a, mut b) = ([_mm256_setzero_si256(); 2], [_mm256_setzero_si256(); 2]);
            while m < end {
                // SAFETY: m + 16 <= q.len(), inside both.
                let (qv, xv) = unsafe {
                    (
                        _mm256_loadu_si256(q.as_ptr().add(m).cast()),
                        _mm256_loadu_si256(x.add(m).cast()),
                    )
                };
                split_dot(qv, xv, &mut a);
                split_dot(xv, xv, &mut b);
                m += 16;
            }
            qx += split_sum(&a);
            xx += split_sum(&b);
        }
        for (mm, &qv) in q.iter().enumerate().skip(m) {
            // SAFETY: mm < q.len().
            let xv = i64::from(unsafe { *x.add(mm) });
            qx += i64::from(qv) * xv;
            xx += xv * xv;
        }
        (qx, xx)
    }

    /// The q16 distances: `Σ (q − x)² = Σ q² − 2·Σ q·x + Σ x²`, every
    /// sum exact.
    ///
    /// # Safety
    /// The CPU must support AVX2; `indices` select rows of `data` (`dim`
    /// values each), `query` holds `dim` values and `out` as many as
    /// `indices`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn distances(
        data: &[i16],
        dim: usize,
        query: &[i16],
        indices: &[u32],
        out: &mut [f32],
        scale: f32,
    ) {
        let s2 = scale * scale;
        // SAFETY: the query holds dim values.
        let (_, qq) = unsafe { dots(query, query.as_ptr()) };
        for (o, &i) in out.iter_mut().zip(indices) {
            // SAFETY: row i of `data` exists.
            let (qx, xx) = unsafe { dots(query, data.as_ptr().add(i as usize * dim)) };
            *o = (qq - 2 * qx + xx) as f32 * s2;
        }
    }

    /// Most the weights of one neighbour may add up to within a chunk of
    /// candidates: `|Σ w·x| ≤ 65535 · 2¹⁵ < 2³¹`, so the `i32` sums of the
    /// chunk are exact. Softmax weights (sum 1, so `Σ w ≈ 2¹⁴`) of up to
    /// 256 candidates fit one chunk.
    const WEIGHT_SUM_MAX: u32 = 65_535;
    /// Most candidate pairs of one chunk.
    const PAIRS: usize = 128;
    /// Most neighbours accumulated at once (one `i32` vector each).
    const KB: usize = 7;

    /// The weights of a chunk of candidate pairs, packed for `vpmaddwd`:
    /// the weight of the pair's first candidate in the low half of an
    /// `i32`, the second's in the high half.
    struct Chunk {
        pairs: usize,
        /// Where the rows of the pair's candidates start in the data.
        first: [usize; PAIRS],
        second: [usize; PAIRS],
        weights: [[i32; PAIRS]; KB],
    }

    impl Chunk {
        /// Packs candidates from `c` on (weights of neighbours `j0 .. j0 +
        /// kb`, rows `stride` values apart) until the chunk is full or a
        /// weight sum would pass [`WEIGHT_SUM_MAX`]; returns the first
        /// candidate not packed.
        #[allow(clippy::too_many_arguments)]
        fn pack(
            &mut self,
            indices: &[u32],
            stride: usize,
            weights: &[f32],
            j0: usize,
            kb: usize,
            c: usize,
        ) -> usize {
            let n = indices.len();
            // Candidates whose weights all round to zero add nothing: they
            // are left out of the pairs.
            let skip = |mut c: usize| {
                while c < n && (0..kb).all(|jj| super::q16_weight(weights[(j0 + jj) * n + c]) == 0)
                {
                    c += 1;
                }
                c
            };
            let mut sums = [0u32; KB];
            let mut c = skip(c);
            self.pairs = 0;
            while self.pairs < PAIRS && c < n {
                let c2 = skip(c + 1);
                let pair = c2 < n;
                let mut ab = [(0u32, 0u32); KB];
                let mut fits = true;
                for (jj, (w, sum)) in ab.iter_mut().zip(&sums).enumerate().take(kb) {
                    let row = &weights[(j0 + jj) * n..][..n];
                    // Weights are at most 2¹⁴.
                    let a = super::q16_weight(row[c]) as u32;
                    let b = if pair {
                        super::q16_weight(row[c2]) as u32
                    } else {
                        0
                    };
                    *w = (a, b);
                    fits &= sum + a + b <= WEIGHT_SUM_MAX;
                }
                if !fits {
                    break;
                }
                let p = self.pairs;
                for (jj, &(a, b)) in ab.iter().enumerate().take(kb) {
                    sums[jj] += a + b;
                    self.weights[jj][p] = (a | b << 16) as i32;
                }
                self.first[p] = indices[c] as usize * stride;
                self.second[p] = indices[if pair { c2 } else { c }] as usize * stride;
                self.pairs += 1;
                c = if pair { skip(c2 + 1) } else { n };
            }
            c
        }
    }

    /// # Safety
    /// The CPU must support AVX2; `indices` select rows of `stride` values
    /// in `data` whose first `width` values are readable, `width > 0`,
    /// `weights` hold `k·n` and `out` `k·width` values.
    #[target_feature(enable = "avx2")]
    pub unsafe fn aggregate(
        data: &[i16],
        (stride, width): (usize, usize),
        indices: &[u32],
        weights: &[f32],
        out: &mut [i64],
    ) {
        let n = indices.len();
        let k = out.len() / width;
        out.fill(0);
        let mut chunk = Chunk {
            pairs: 0,
            first: [0; PAIRS],
            second: [0; PAIRS],
            weights: [[0; PAIRS]; KB],
        };
        let mut j0 = 0;
        while j0 < k {
            // Blocks as even as they can be.
            let kb = (k - j0).div_ceil((k - j0).div_ceil(KB));
            let mut c = 0;
            while c < n {
                c = chunk.pack(indices, stride, weights, j0, kb, c);
                let mut m = 0;
                while m + 8 <= width {
                    // SAFETY: m + 8 <= width, j0 + kb <= k; the chunk holds
                    // rows of `data` and sums that fit an i32.
                    unsafe {
                        let (d, c) = (data, &chunk);
                        match kb {
                            7 => columns::<7>(d, c, out, width, j0, m),
                            6 => columns::<6>(d, c, out, width, j0, m),
                            5 => columns::<5>(d, c, out, width, j0, m),
                            4 => columns::<4>(d, c, out, width, j0, m),
                            3 => columns::<3>(d, c, out, width, j0, m),
                            2 => columns::<2>(d, c, out, width, j0, m),
                            _ => columns::<1>(d, c, out, width, j0, m),
                        }
                    }
                    m += 8;
                }
                for mm in m..width {
                    for jj in 0..kb {
                        let mut z = 0i64;
                        for p in 0..chunk.pairs {
                            let w = chunk.weights[jj][p];
                            let (wa, wb) = (i64::from(w & 0xffff), i64::from(w >> 16));
                            let xa = data[chunk.first[p] + mm];
                            let xb = data[chunk.second[p] + mm];
                            z += wa * i64::from(xa) + wb * i64::from(xb);
                        }
                        out[(j0 + jj) * width + mm] += z;
                    }
                }
            }
            j0 += kb;
        }
        for z in out.iter_mut() {
            *z = super::q16_round(*z);
        }
    }

    /// Adds the chunk's weighted sums of columns `m .. m + 8` of
    /// neighbours `j0 .. j0 + B` to `out`.
    ///
    /// # Safety
    /// AVX2 must be available; the chunk's rows exist in `data` (`width`
    /// values readable), `m + 8 <= width`, `out` holds `(j0 + B)·width`
    /// values and the chunk's weight sums are at most [`WEIGHT_SUM_MAX`].
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn columns<const B: usize>(
        data: &[i16],
        chunk: &Chunk,
        out: &mut [i64],
        width: usize,
        j0: usize,
        m: usize,
    ) {
        let mut acc = [_mm256_setzero_si256(); B];
        let d = data.as_ptr();
        for p in 0..chunk.pairs {
            // SAFETY: both rows exist and m + 8 <= width.
            let (xa, xb) = unsafe {
                (
                    _mm_loadu_si128(d.add(chunk.first[p] + m).cast()),
                    _mm_loadu_si128(d.add(chunk.second[p] + m).cast()),
                )
            };
            // Columns 0–7, the two candidates' values interleaved.
            let x = _mm256_set_m128i(_mm_unpackhi_epi16(xa, xb), _mm_unpacklo_epi16(xa, xb));
            for (a, w) in acc.iter_mut().zip(&chunk.weights) {
                let w = _mm256_set1_epi32(w[p]);
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, w));
            }
        }
        for (jj, a) in acc.into_iter().enumerate() {
            let lanes = [_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a)];
            for (lane, h) in lanes.into_iter().enumerate() {
                let z = _mm256_cvtepi32_epi64(h);
                let at = (j0 + jj) * width + m + 4 * lane;
                // SAFETY: at + 4 <= (j0 + B)·width <= out.len().
                unsafe {
                    let o = out.as_mut_ptr().add(at).cast::<__m256i>();
                    _mm256_storeu_si256(o, _mm256_add_epi64(_mm256_loadu_si256(o), z));
                }
            }
        }
    }
}

/// Widens binary16 values (exactly).
pub fn to_f32(isa: Isa, src: &[f16], dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves AVX2, FMA and F16C.
        Isa::Avx2Fma(_) => unsafe { f16c::to_f32(src, dst) },
        _ => soft::to_f32(src, dst),
    }
}

/// Rounds to binary16, to nearest, ties to even.
pub fn to_f16(isa: Isa, src: &[f32], dst: &mut [f16]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves AVX2, FMA and F16C.
        Isa::Avx2Fma(_) => unsafe { f16c::to_f16(src, dst) },
        _ => soft::to_f16(src, dst),
    }
}

/// Portable binary16 conversions written as selects, which the compiler
/// vectorises in the slice loops: bit for bit those of F16C (a NaN is
/// quieted and keeps the top bits of its payload). They rely on the default
/// rounding mode, and give the same bits when the CPU flushes subnormal
/// f32 values to zero (the only ones they meet round to binary16 zero).
mod soft {
    use half::f16;

    /// 2⁻²⁴, the binary16 subnormal step.
    const SUB_STEP: f32 = 1.0 / 16_777_216.0;

    /// The value of binary16 bits `h`.
    #[inline(always)]
    pub fn widen(h: u16) -> f32 {
        let sign = u32::from(h & 0x8000) << 16;
        let m = u32::from(h & 0x7fff);
        let bits = if m < 0x0400 {
            // Zero or subnormal: m steps of 2⁻²⁴, exact in f32.
            (m as f32 * SUB_STEP).to_bits()
        } else if m < 0x7c00 {
            // Normal: the exponent rebiased from 15 to 127.
            (m << 13) + (112 << 23)
        } else if m == 0x7c00 {
            0x7f80_0000
        } else {
            0x7fc0_0000 | (m << 13)
        };
        f32::from_bits(sign | bits)
    }

    /// `v` rounded to binary16 bits, to nearest, ties to even.
    #[inline(always)]
    pub fn narrow(v: f32) -> u16 {
        let x = v.to_bits();
        let sign = (x >> 16) & 0x8000;
        let a = x & 0x7fff_ffff;
        let h = if a > 0x7f80_0000 {
            0x7e00 | ((a >> 13) & 0x03ff)
        } else if a >= 0x477f_f000 {
            // 65520 and above (infinity included) round to infinity.
            0x7c00
        } else if a >= 0x3880_0000 {
            // Normal: rebias, then drop 13 bits rounding half to even.
            let odd = (a >> 13) & 1;
            (a - (112 << 23) + 0x0fff + odd) >> 13
        } else {
            // Below 2⁻¹⁴: adding ½, whose f32 step is 2⁻²⁴, rounds the
            // magnitude to whole subnormal steps, the count left in the
            // low mantissa bits (up to 0x400, the least normal).
            (f32::from_bits(a) + 0.5).to_bits() - 0x3f00_0000
        };
        (sign | h) as u16
    }

    pub fn to_f32(src: &[f16], dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = widen(s.to_bits());
        }
    }

    pub fn to_f16(src: &[f32], dst: &mut [f16]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = f16::from_bits(narrow(*s));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod f16c {
    use core::arch::x86_64::*;

    use half::f16;

    /// # Safety
    /// The CPU must support F16C and AVX.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn to_f32(src: &[f16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 <= n keeps every access inside the slices.
            unsafe {
                for j in (i..i + 32).step_by(8) {
                    let h = _mm_loadu_si128(s.add(j).cast());
                    _mm256_storeu_ps(d.add(j), _mm256_cvtph_ps(h));
                }
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: i + 8 <= n keeps both accesses inside the slices.
            unsafe {
                let h = _mm_loadu_si128(s.add(i).cast());
                _mm256_storeu_ps(d.add(i), _mm256_cvtph_ps(h));
            }
            i += 8;
        }
        super::soft::to_f32(&src[i..n], &mut dst[i..n]);
    }

    /// # Safety
    /// The CPU must support F16C and AVX.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn to_f16(src: &[f32], dst: &mut [f16]) {
        let n = src.len().min(dst.len());
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 <= n keeps every access inside the slices.
            unsafe {
                for j in (i..i + 32).step_by(8) {
                    let v = _mm256_loadu_ps(s.add(j));
                    let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                    _mm_storeu_si128(d.add(j).cast(), h);
                }
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: i + 8 <= n keeps both accesses inside the slices.
            unsafe {
                let v = _mm256_loadu_ps(s.add(i));
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                _mm_storeu_si128(d.add(i).cast(), h);
            }
            i += 8;
        }
        super::soft::to_f16(&src[i..n], &mut dst[i..n]);
    }

    /// [`super::Act::fold`] of f16 over the whole span (the same
    /// operations, each rounded alike); a last part shorter than a vector
    /// goes through a padded copy.
    ///
    /// # Safety
    /// The CPU must support F16C and AVX2.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn fold_span(acc: &mut [f16], z: &[f32], count: &[u32]) {
        let n = acc.len().min(z.len()).min(count.len());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n keeps every access inside the slices.
            unsafe {
                fold8(
                    acc.as_mut_ptr().add(i),
                    z.as_ptr().add(i),
                    count.as_ptr().add(i),
                )
            };
            i += 8;
        }
        let r = n - i;
        if r > 0 {
            let (mut a, mut zz, mut c) = ([f16::ZERO; 8], [0f32; 8], [1u32; 8]);
            a[..r].copy_from_slice(&acc[i..n]);
            zz[..r].copy_from_slice(&z[i..n]);
            c[..r].copy_from_slice(&count[i..n]);
            // SAFETY: the padded copies hold 8 values each.
            unsafe { fold8(a.as_mut_ptr(), zz.as_ptr(), c.as_ptr()) };
            acc[i..n].copy_from_slice(&a[..r]);
        }
    }

    /// The fold of 8 values at `a`, `z` and `c`.
    ///
    /// # Safety
    /// The CPU must support F16C and AVX2; 8 values are readable at each
    /// pointer and writable at `a`.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn fold8(a: *mut f16, z: *const f32, c: *const u32) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let sum = _mm256_cvtph_ps(_mm_loadu_si128(a.cast()));
            // Counts are at most (patch / stride)², exact as f32.
            let cnt = _mm256_cvtepi32_ps(_mm256_loadu_si256(c.cast()));
            let v = _mm256_add_ps(sum, _mm256_div_ps(_mm256_loadu_ps(z), cnt));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm_storeu_si128(a.cast(), h);
        }
    }

    /// [`super::Act::finish`] of f16 over the whole span: `acc − x`,
    /// rounded alike; a last part shorter than a vector goes through a
    /// padded copy.
    ///
    /// # Safety
    /// The CPU must support F16C and AVX2.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn finish_span(acc: &mut [f16], x: &[f16]) {
        let n = acc.len().min(x.len());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n keeps every access inside the slices.
            unsafe { finish8(acc.as_mut_ptr().add(i), x.as_ptr().add(i)) };
            i += 8;
        }
        let r = n - i;
        if r > 0 {
            let (mut a, mut xx) = ([f16::ZERO; 8], [f16::ZERO; 8]);
            a[..r].copy_from_slice(&acc[i..n]);
            xx[..r].copy_from_slice(&x[i..n]);
            // SAFETY: the padded copies hold 8 values each.
            unsafe { finish8(a.as_mut_ptr(), xx.as_ptr()) };
            acc[i..n].copy_from_slice(&a[..r]);
        }
    }

    /// `a − x` of 8 values.
    ///
    /// # Safety
    /// The CPU must support F16C and AVX2; 8 values are readable at each
    /// pointer and writable at `a`.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn finish8(a: *mut f16, x: *const f16) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let v = _mm256_sub_ps(
                _mm256_cvtph_ps(_mm_loadu_si128(a.cast())),
                _mm256_cvtph_ps(_mm_loadu_si128(x.cast())),
            );
            _mm_storeu_si128(a.cast(), _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16c_and_portable_conversions_agree_bit_for_bit() {
        let isa = Isa::detect();
        let mut src = [0f32; 4099];
        let mut st = 7u64;
        for (i, v) in src.iter_mut().enumerate() {
            st = st
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let bits = (st >> 32) as u32;
            *v = f32::from_bits(bits);
            if !v.is_finite() || i % 3 == 0 {
                *v = (bits % 200_000) as f32 * 1e-3 - 100.0;
            }
        }
        let (mut a, mut b) = ([f16::ZERO; 4099], [f16::ZERO; 4099]);
        to_f16(isa, &src, &mut a);
        to_f16(Isa::Generic, &src, &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        let (mut c, mut d) = ([0f32; 4099], [0f32; 4099]);
        to_f32(isa, &a, &mut c);
        to_f32(Isa::Generic, &a, &mut d);
        assert!(c.iter().zip(&d).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits()
    }

    /// f32 bit patterns: a stride through all of them (every sign,
    /// exponent and NaN payload class), and the edges of the binary16 range
    /// with their neighbours.
    fn f32_patterns() -> impl Iterator<Item = u32> {
        let edges = [
            0x0000_0000u32,
            0x0000_0001,
            0x3300_0000, // 2⁻²⁵: a tie between zero and the least subnormal
            0x3300_0001,
            0x3380_0000,
            0x387f_f000,
            0x3880_0000, // 2⁻¹⁴, the least normal
            0x3f80_0000,
            0x3f80_1000, // a tie rounding to even (down)
            0x3f80_3000, // a tie rounding to even (up)
            0x477f_e000, // 65504, the largest finite
            0x477f_efff,
            0x477f_f000, // 65520: rounds to infinity
            0x7f7f_ffff,
            0x7f80_0000,
            0x7f80_0001, // a signalling NaN
            0x7fc0_0000,
            0x7fff_ffff,
        ];
        let around = edges
            .into_iter()
            .flat_map(|e| (0..=2u32).map(move |d| e.wrapping_add(d).wrapping_sub(1)))
            .flat_map(|b| [b, b | 0x8000_0000]);
        (0..=u32::MAX).step_by(4093).chain(around)
    }

    #[test]
    fn portable_widening_is_exact_for_every_binary16_value() {
        for h in 0..=u16::MAX {
            let (got, want) = (soft::widen(h), f16::from_bits(h).to_f32());
            assert!(same(got, want), "{h:#06x}: {got} vs {want}");
        }
    }

    #[test]
    fn portable_rounding_matches_the_reference() {
        for bits in f32_patterns() {
            let v = f32::from_bits(bits);
            let (got, want) = (soft::narrow(v), f16::from_f32(v).to_bits());
            assert_eq!(got, want, "{bits:#010x}");
        }
    }

    #[test]
    fn every_isa_converts_every_value_alike() {
        let isa = Isa::detect();
        let mut all = [f16::ZERO; 1 << 16];
        for (h, v) in (0..=u16::MAX).zip(all.iter_mut()) {
            *v = f16::from_bits(h);
        }
        let (mut a, mut b) = ([0f32; 1 << 16], [0f32; 1 << 16]);
        // Lengths that leave every tail length of the vector loops.
        for n in [all.len(), 1, 7, 8, 31, 33, 45] {
            to_f32(isa, &all[all.len() - n..], &mut a[..n]);
            to_f32(Isa::Generic, &all[all.len() - n..], &mut b[..n]);
            assert!(a[..n].iter().zip(&b[..n]).all(|(x, y)| same(*x, *y)), "{n}");
        }
        let mut pats = f32_patterns().map(f32::from_bits).peekable();
        let mut src = [0f32; 4099];
        let (mut c, mut d) = ([f16::ZERO; 4099], [f16::ZERO; 4099]);
        let mut n = 0;
        while pats.peek().is_some() {
            for (v, p) in src.iter_mut().zip(&mut pats) {
                *v = p;
            }
            // Lengths 4099, 4098, … leave every tail length too.
            let len = src.len() - n % 40;
            to_f16(isa, &src[..len], &mut c[..len]);
            to_f16(Isa::Generic, &src[..len], &mut d[..len]);
            let (c, d) = (&c[..len], &d[..len]);
            assert!(c.iter().zip(d).all(|(x, y)| x.to_bits() == y.to_bits()));
            n += 1;
        }
    }

    #[test]
    fn f16_peak_is_the_largest_magnitude_ignoring_nan() {
        let reference = |s: &[f16]| s.iter().fold(0.0f32, |m, v| m.max(v.to_f32().abs()));
        let mut st = 5u64;
        let mut vals = [f16::ZERO; 300];
        for case in 0..200 {
            for v in vals.iter_mut() {
                st = st
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let bits = (st >> 48) as u16;
                // Mostly finite values, some infinities and NaNs.
                *v = f16::from_bits(if case % 4 == 0 { bits } else { bits & 0xbbff });
            }
            let n = case % vals.len();
            let s = &vals[..n];
            let (got, want) = (<f16 as Act>::peak(s, 1.0), reference(s));
            assert!(same(got, want), "case {case}: {got} vs {want}");
        }
        let nan = f16::from_bits(0xfe01);
        let only_nan = [nan, f16::NAN];
        assert!(same(<f16 as Act>::peak(&only_nan, 1.0), 0.0));
        let mixed = [nan, f16::NEG_INFINITY, f16::ONE];
        assert_eq!(<f16 as Act>::peak(&mixed, 1.0), f32::INFINITY);
        assert!(same(<f16 as Act>::peak(&[f16::NEG_ZERO], 1.0), 0.0));
    }

    #[test]
    fn f16_fold_and_finish_round_once() {
        let mut st = 9u64;
        let mut next = || {
            st = st
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            f16::from_bits((st >> 48) as u16 & 0x7bff | (st >> 16) as u16 & 0x8000)
        };
        for i in 0..100_000u32 {
            let (a, b) = (next(), next());
            let z = b.to_f32() * 1.37;
            let count = 1 + i % 9;
            let mut acc = a;
            <f16 as Act>::fold(&mut acc, z, count);
            let want = f16::from_f32(a.to_f32() + z / count as f32);
            assert_eq!(acc.to_bits(), want.to_bits(), "{a} {z} {count}");
            let d = <f16 as Act>::finish(a, b, count);
            let want = f16::from_f32(a.to_f32() - b.to_f32());
            assert_eq!(d.to_bits(), want.to_bits(), "{a} {b}");
        }
    }

    #[test]
    fn f16_fold_span_is_fold_on_every_isa() {
        let mut r = Lcg(17);
        const N: usize = 4001;
        let acc: [f16; N] = core::array::from_fn(|_| {
            f16::from_bits(r.next() as u16 & 0x7bff | (r.next() as u16 & 0x8000))
        });
        let z: [f32; N] = core::array::from_fn(|i| match i % 4 {
            0 => f32::from_bits(r.next()),
            1 => (r.unit() - 0.5) * 70000.0,
            _ => (r.unit() - 0.5) * 1e-4,
        });
        let count: [u32; N] = core::array::from_fn(|_| 1 + r.next() % 9);
        let mut want = acc;
        for ((a, &z), &c) in want.iter_mut().zip(&z).zip(&count) {
            <f16 as Act>::fold(a, z, c);
        }
        for isa in [Isa::Generic, Isa::detect()] {
            for start in [0, 3] {
                let mut got = acc;
                <f16 as Act>::fold_span(isa, &mut got[start..], &z[start..], &count[start..]);
                for (i, (g, w)) in got.iter().zip(&want).enumerate().skip(start) {
                    let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
                    assert!(same, "{isa:?} {i}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn f16_spans_of_every_short_length_are_the_plain_ops_on_every_isa() {
        let mut r = Lcg(29);
        for n in 0..=19 {
            let acc: [f16; 19] = core::array::from_fn(|_| {
                f16::from_bits(r.next() as u16 & 0x7bff | (r.next() as u16 & 0x8000))
            });
            let x: [f16; 19] = core::array::from_fn(|_| f16::from_f32(r.unit() * 8.0 - 4.0));
            let z: [f32; 19] = core::array::from_fn(|_| (r.unit() - 0.5) * 300.0);
            let count: [u32; 19] = core::array::from_fn(|_| 1 + r.next() % 4);
            let (x, z, count) = (&x[..n], &z[..n], &count[..n]);
            let (mut fold, mut finish) = (acc, acc);
            fold_each(&mut fold[..n], z, count);
            finish_each(&mut finish[..n], x, count);
            for isa in [Isa::Generic, Isa::detect()] {
                let (mut a, mut b) = (acc, acc);
                <f16 as Act>::fold_span(isa, &mut a[..n], z, count);
                <f16 as Act>::finish_span(isa, &mut b[..n], x, count);
                for (what, got, want) in [("fold", a, fold), ("finish", b, finish)] {
                    let (got, want) = (got.map(f16::to_bits), want.map(f16::to_bits));
                    assert_eq!(got, want, "{what} {isa:?} {n}");
                }
            }
        }
    }

    /// Column ranges of `dim`-long rows to aggregate on their own: all,
    /// a tail, and a part that starts and ends off any vector boundary.
    fn test_columns(dim: usize) -> impl Iterator<Item = Range<usize>> {
        [0..dim, dim / 3..dim, 1..dim / 2 + 1]
            .into_iter()
            .filter(move |c| !c.is_empty() && c.end <= dim)
    }

    /// A generator of pseudo-random values.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 32) as u32
        }
        /// Uniform in `[0, 1)`.
        fn unit(&mut self) -> f32 {
            (self.next() >> 8) as f32 / (1u32 << 24) as f32
        }
    }

    /// Candidates, neighbours, patch length and how weights and values are
    /// drawn (0: random, 1: extremes, 2: softmax-like).
    const CASES: [(usize, usize, usize, u8); 7] = [
        (224, 7, 800, 2),
        (224, 7, 800, 0),
        (300, 7, 48, 1),
        (5, 3, 37, 0),
        (1, 1, 16, 1),
        (131, 4, 21, 2),
        (224, 2, 800, 1),
    ];

    fn q16_case(r: &mut Lcg, mode: u8, data: &mut [i16], weights: &mut [f32]) {
        for v in data.iter_mut() {
            *v = match mode {
                1 => [i16::MIN, i16::MAX, -1, 0][r.next() as usize % 4],
                _ => r.next() as i16,
            };
        }
        for w in weights.iter_mut() {
            *w = match mode {
                1 => [0.0, 1.0, 1.0 - f32::EPSILON, 0.999_99, 2.0, -1.0][r.next() as usize % 6],
                2 => {
                    let e = r.unit();
                    e * e * e * e * e * e * 0.05
                }
                _ => r.unit(),
            };
        }
    }

    #[test]
    fn q16_aggregate_kernels_match_the_reference() {
        let mut r = Lcg(3);
        let mut data = [0i16; 320 * 800];
        let mut weights = [0f32; 7 * 300];
        let (mut want, mut got) = ([0i64; 7 * 800], [0i64; 7 * 800]);
        let mut scratch = Scratch {
            f: &mut [],
            i32s: &mut [],
            i64s: &mut [],
        };
        for &(n, k, dim, mode) in &CASES {
            let rows = 320 * 800 / dim;
            let data = &mut data[..rows * dim];
            let weights = &mut weights[..k * n];
            q16_case(&mut r, mode, data, weights);
            let idx: [u32; 300] = core::array::from_fn(|_| r.next() % rows as u32);
            let want = &mut want[..k * dim];
            let idx = &idx[..n];
            let all = 0..dim;
            i16::aggregate(
                Isa::Generic,
                data,
                dim,
                all,
                idx,
                weights,
                k,
                want,
                &mut scratch,
            )
            .unwrap();
            for cols in test_columns(dim) {
                let w = cols.len();
                for isa in [Isa::Generic, Isa::detect()] {
                    let got = &mut got[..k * w];
                    let c = cols.clone();
                    i16::aggregate(isa, data, dim, c, idx, weights, k, got, &mut scratch).unwrap();
                    for (jn, row) in got.chunks_exact(w).enumerate() {
                        let want = &want[jn * dim + cols.start..][..w];
                        assert_eq!(row, want, "n {n} k {k} dim {dim} mode {mode} {cols:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn q16_distance_kernels_match_the_reference() {
        let mut r = Lcg(11);
        let mut data = [0i16; 8 * 2100];
        let mut scratch = Scratch {
            f: &mut [],
            i32s: &mut [],
            i64s: &mut [],
        };
        for (dim, mode) in [
            (800, 0u8),
            (800, 1),
            (2100, 1),
            (2100, 0),
            (37, 1),
            (16, 0),
            (5, 1),
        ] {
            let data = &mut data[..8 * dim];
            q16_case(&mut r, mode, data, &mut []);
            let idx = [0u32, 3, 1, 7, 7, 2, 5];
            let query = &data[4 * dim..5 * dim];
            let (mut want, mut got) = ([0f32; 7], [0f32; 7]);
            i16::distances(
                Isa::Generic,
                data,
                dim,
                query,
                &idx,
                &mut want,
                0.5,
                &mut scratch,
            )
            .unwrap();
            i16::distances(
                Isa::detect(),
                data,
                dim,
                query,
                &idx,
                &mut got,
                0.5,
                &mut scratch,
            )
            .unwrap();
            let bits = |v: &[f32; 7]| v.map(f32::to_bits);
            assert_eq!(bits(&want), bits(&got), "dim {dim} mode {mode}");
        }
    }

    #[test]
    fn f16_kernels_match_the_reference() {
        let mut r = Lcg(5);
        let data: [f16; 40 * 803] = core::array::from_fn(|_| f16::from_f32(r.unit() * 4.0 - 2.0));
        let weights: [f32; 7 * 13] = core::array::from_fn(|_| r.unit());
        let idx: [u32; 13] = core::array::from_fn(|_| r.next() % 40);
        let mut f = [0f32; 2 * 803];
        let mut s = Scratch {
            f: &mut f,
            i32s: &mut [],
            i64s: &mut [],
        };
        for (dim, n, k) in [(800, 13, 7), (803, 5, 3), (16, 1, 1), (21, 4, 6)] {
            let (data, idx, w) = (&data[..40 * dim], &idx[..n], &weights[..k * n]);
            let query = &data[7 * dim..8 * dim];
            let (mut want, mut got) = ([0f32; 13], [0f32; 13]);
            f16::distances(
                Isa::Generic,
                data,
                dim,
                query,
                idx,
                &mut want[..n],
                1.0,
                &mut s,
            )
            .unwrap();
            f16::distances(
                Isa::detect(),
                data,
                dim,
                query,
                idx,
                &mut got[..n],
                1.0,
                &mut s,
            )
            .unwrap();
            for (a, b) in want.iter().zip(&got) {
                assert!((a - b).abs() <= 1e-5 * a.max(1.0), "dim {dim}: {a} vs {b}");
            }
            let (mut want, mut got) = ([0f32; 7 * 803], [0f32; 7 * 803]);
            let want = &mut want[..k * dim];
            f16::aggregate(Isa::Generic, data, dim, 0..dim, idx, w, k, want, &mut s).unwrap();
            for cols in test_columns(dim) {
                let cw = cols.len();
                for isa in [Isa::Generic, Isa::detect()] {
                    let got = &mut got[..k * cw];
                    f16::aggregate(isa, data, dim, cols.clone(), idx, w, k, got, &mut s).unwrap();
                    for (jn, row) in got.chunks_exact(cw).enumerate() {
                        let want = &want[jn * dim + cols.start..][..cw];
                        for (a, b) in want.iter().zip(row) {
                            let close = (a - b).abs() <= 1e-5 * a.abs().max(1.0);
                            assert!(close, "{isa:?} dim {dim} {cols:?}: {a} vs {b}");
                        }
                    }
                }
            }
        }
    }
}
