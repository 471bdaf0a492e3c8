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
use crate::n3::aggregate::{
    aggregate_with, check_indices, check_lengths, squared_distance, squared_distances,
};
use crate::parallel::Parallel;
use crate::tensor::Band;
use crate::workspace::Pod;

/// Output channels converted and computed at once by the f16 convolution.
const F16_BLOCK: usize = 8;

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
    /// q16: scales of the input, output and residual tensors.
    pub scales: [f32; 3],
    /// Threads to split the output channels between (f32).
    pub par: Option<&'l dyn Parallel>,
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

/// Output channels below which a convolution row is not split further.
const SPLIT_MIN_CHANNELS: usize = 8;

/// Output row `y` of `layer` (f32), its output channels split between `parts`
/// threads of `par` by recursive halving; `out` holds the output band's
/// channel planes. Each channel is computed as without the split.
#[allow(clippy::too_many_arguments)]
fn conv_split(
    isa: Isa,
    par: Option<&dyn Parallel>,
    parts: usize,
    layer: &ConvLayer<'_>,
    (sb, input): (Band, &[f32]),
    db: Band,
    out: &mut [f32],
    y: usize,
) -> Result<()> {
    let cout = layer.cout;
    let par = match par {
        Some(p) if parts >= 2 && cout >= 2 * SPLIT_MIN_CHANNELS => p,
        _ => return conv2d_band(isa, layer, sb, input, db, out, y..y + 1),
    };
    let (pa, pb) = (parts / 2, parts - parts / 2);
    let half = cout * pa / parts;
    if out.len() < cout * db.plane {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "conv: output band shorter than its channels",
        ));
    }
    let (oa, ob) = out.split_at_mut(half * db.plane);
    let (la, lb) = (
        layer.output_channels(0..half),
        layer.output_channels(half..cout),
    );
    let (mut ra, mut rb) = (Ok(()), Ok(()));
    par.join(
        &mut || ra = conv_split(isa, Some(par), pa, &la, (sb, input), db, oa, y),
        &mut || rb = conv_split(isa, Some(par), pb, &lb, (sb, input), db, ob, y),
    );
    ra.and(rb)
}

/// An activation storage type.
pub(crate) trait Act: Pod + PartialEq + Send + Sync + 'static {
    /// Whether the fold adds patches already divided by the pixel's count.
    const PREDIVIDE: bool;
    /// Accumulator of sums of stored values (patch sums, aggregation).
    type Wide: Pod + Add<Output = Self::Wide>;

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

    /// Computes one output row of a convolution in `arena`.
    fn conv_row(c: &ConvRow<'_, '_>, arena: &mut [Self], s: &mut Scratch<'_>) -> Result<()>;

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

    /// `k` weighted sums of the indexed rows of `data` (`k · dim` values).
    #[allow(clippy::too_many_arguments)]
    fn aggregate(
        isa: Isa,
        data: &[Self],
        dim: usize,
        indices: &[u32],
        weights: &[f32],
        k: usize,
        out: &mut [Self::Wide],
        s: &mut Scratch<'_>,
    ) -> Result<()>;

    /// Adds an aggregated value to a fold sum of a pixel covered by `count`
    /// patches.
    fn fold(acc: &mut Self, z: Self::Wide, count: u32);
    /// The finished fold of a pixel covered by `count` patches, minus `x`.
    fn finish(acc: Self, x: Self, count: u32) -> Self;
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

    fn conv_row(c: &ConvRow<'_, '_>, arena: &mut [f32], _: &mut Scratch<'_>) -> Result<()> {
        let (out, rest) = split_out(arena, c.dst.range.clone());
        let db = c.dst.band;
        let y = c.y;
        let src = (c.src.band, rest.get(c.src.range.clone()));
        let threads = c.par.map_or(1, |p| p.threads());
        conv_split(c.isa, c.par, threads, c.layer, src, db, out, y)?;
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
        _: Isa,
        data: &[f32],
        dim: usize,
        query: &[f32],
        indices: &[u32],
        out: &mut [f32],
        _: f32,
        _: &mut Scratch<'_>,
    ) -> Result<()> {
        squared_distances(data, dim, query, indices, out)
    }

    fn aggregate(
        isa: Isa,
        data: &[f32],
        dim: usize,
        indices: &[u32],
        weights: &[f32],
        k: usize,
        out: &mut [f32],
        _: &mut Scratch<'_>,
    ) -> Result<()> {
        aggregate_with(isa, data, dim, indices, weights, k, out)
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
        src.iter().fold(0.0, |m, v| m.max(v.to_f32().abs()))
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
        // a block of output rows; or a query and a candidate patch.
        let conv = layers
            .map(|(cin, cout, k)| k * cin * rs + F16_BLOCK.min(cout) * (cin * k * k + rs))
            .max()
            .unwrap_or(0);
        ScratchSize {
            f: conv.max(2 * dim),
            i32s: 0,
            i64s: 0,
        }
    }

    fn conv_row(c: &ConvRow<'_, '_>, arena: &mut [f16], s: &mut Scratch<'_>) -> Result<()> {
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
        let (rows, rest_f) = s.f.split_at_mut(l.cin * band.plane);
        for ci in 0..l.cin {
            let from = ci * sb.plane + (band.first - sb.first) * rs;
            to_f32(
                c.isa,
                &input[from..from + band.plane],
                &mut rows[ci * band.plane..][..band.plane],
            );
        }
        let ob = Band {
            width: db.width,
            pad: db.pad,
            plane: rs,
            first: y + db.pad,
        };
        let taps = l.cin * k * k;
        let mut co = 0;
        while co < l.cout {
            let cb = F16_BLOCK.min(l.cout - co);
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
                        for (d, v) in r.iter_mut().zip(&rest.get(res.range.clone())[at..at + w]) {
                            *d += v.to_f32();
                        }
                    }
                }
                let at = (co + j) * db.plane + db.at(y, 0);
                to_f16(c.isa, r, &mut out[at..at + w]);
            }
            co += cb;
        }
        Ok(())
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
        let (q, cand) = s.f[..2 * dim].split_at_mut(dim);
        to_f32(isa, query, q);
        for (o, &i) in out.iter_mut().zip(indices) {
            to_f32(isa, &data[i as usize * dim..][..dim], cand);
            *o = squared_distance(q, cand);
        }
        Ok(())
    }

    fn aggregate(
        isa: Isa,
        data: &[f16],
        dim: usize,
        indices: &[u32],
        weights: &[f32],
        k: usize,
        out: &mut [f32],
        s: &mut Scratch<'_>,
    ) -> Result<()> {
        check_indices(data.len(), dim, indices)?;
        let n = indices.len();
        check_lengths(dim, n, k, weights.len(), out.len())?;
        let row = &mut s.f[..dim];
        out.fill(0.0);
        for (c, &i) in indices.iter().enumerate() {
            to_f32(isa, &data[i as usize * dim..][..dim], row);
            for (j, z) in out.chunks_exact_mut(dim).enumerate() {
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
        *acc = f16::from_f32(acc.to_f32() + z / count as f32);
    }
    #[inline]
    fn finish(acc: f16, x: f16, _: u32) -> f16 {
        f16::from_f32(acc.to_f32() - x.to_f32())
    }
}

/// Fractional bits of the q16 aggregation weights.
const WEIGHT_BITS: u32 = 24;

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

    fn conv_row(c: &ConvRow<'_, '_>, arena: &mut [i16], s: &mut Scratch<'_>) -> Result<()> {
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
        qconv::conv_acc_rows(
            c.isa,
            values,
            dims,
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
                let o = co * db.plane + db.at(y, 0);
                fixed::finish_row(c.isa, acc, m, l.relu, res, &mut out[o..o + w]);
                Ok(())
            },
        )
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
            // SAFETY: `Avx2Fma` proves AVX2; the body is safe code.
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
        indices: &[u32],
        weights: &[f32],
        k: usize,
        out: &mut [i64],
        _: &mut Scratch<'_>,
    ) -> Result<()> {
        check_indices(data.len(), dim, indices)?;
        check_lengths(dim, indices.len(), k, weights.len(), out.len())?;
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` proves AVX2; the body is safe code.
            Isa::Avx2Fma(_) => unsafe { q16_avx2::aggregate(data, dim, indices, weights, out) },
            _ => q16_aggregate(data, dim, indices, weights, out),
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

/// q16 aggregation: weights rounded to [`WEIGHT_BITS`] fractional bits,
/// integer sums, rounded back to the patches' scale.
#[inline(always)]
fn q16_aggregate(data: &[i16], dim: usize, indices: &[u32], weights: &[f32], out: &mut [i64]) {
    let n = indices.len();
    let one = (1u32 << WEIGHT_BITS) as f32;
    out.fill(0);
    for (c, &i) in indices.iter().enumerate() {
        let row = &data[i as usize * dim..][..dim];
        for (j, z) in out.chunks_exact_mut(dim).enumerate() {
            // Weights are in [0, 1]: the cast truncates a non-negative value.
            let w = (weights[j * n + c].clamp(0.0, 1.0) * one + 0.5) as i64;
            if w == 0 {
                continue;
            }
            for (zv, &xv) in z.iter_mut().zip(row) {
                *zv += w * i64::from(xv);
            }
        }
    }
    let half = 1i64 << (WEIGHT_BITS - 1);
    for z in out.iter_mut() {
        *z = (*z + half) >> WEIGHT_BITS;
    }
}

/// The q16 N³ kernels compiled with AVX2 (the same integers).
#[cfg(target_arch = "x86_64")]
mod q16_avx2 {
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn distances(
        data: &[i16],
        dim: usize,
        query: &[i16],
        indices: &[u32],
        out: &mut [f32],
        scale: f32,
    ) {
        super::q16_distances(data, dim, query, indices, out, scale);
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn aggregate(
        data: &[i16],
        dim: usize,
        indices: &[u32],
        weights: &[f32],
        out: &mut [i64],
    ) {
        super::q16_aggregate(data, dim, indices, weights, out);
    }
}

/// Widens binary16 values (exactly).
pub fn to_f32(isa: Isa, src: &[f16], dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves AVX2, FMA and F16C.
        Isa::Avx2Fma(_) => unsafe { f16c::to_f32(src, dst) },
        _ => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = s.to_f32();
            }
        }
    }
}

/// Rounds to binary16, to nearest, ties to even.
pub fn to_f16(isa: Isa, src: &[f32], dst: &mut [f16]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves AVX2, FMA and F16C.
        Isa::Avx2Fma(_) => unsafe { f16c::to_f16(src, dst) },
        _ => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = f16::from_f32(*s);
            }
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
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n keeps both accesses inside the slices.
            unsafe {
                let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
                _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
            }
            i += 8;
        }
        for j in i..n {
            dst[j] = src[j].to_f32();
        }
    }

    /// # Safety
    /// The CPU must support F16C and AVX.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn to_f16(src: &[f32], dst: &mut [f16]) {
        let n = src.len().min(dst.len());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n keeps both accesses inside the slices.
            unsafe {
                let v = _mm256_loadu_ps(src.as_ptr().add(i));
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
            }
            i += 8;
        }
        for j in i..n {
            dst[j] = f16::from_f32(src[j]);
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
}
