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
        let (res_row, rest_f) = rest_f.split_at_mut(rs);
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
                        let add = &mut res_row[..w];
                        to_f32(c.isa, &rest.get(res.range.clone())[at..at + w], add);
                        for (d, v) in r.iter_mut().zip(add.iter()) {
                            *d += *v;
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
        let sum = soft::widen(acc.to_bits()) + z / count as f32;
        *acc = f16::from_bits(soft::narrow(sum));
    }
    #[inline]
    fn finish(acc: f16, x: f16, _: u32) -> f16 {
        let d = soft::widen(acc.to_bits()) - soft::widen(x.to_bits());
        f16::from_bits(soft::narrow(d))
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
}
