//! 2-D convolution, stride 1, zero padding `ksize / 2`, optional ReLU.
//!
//! Activations are padded planes ([`crate::tensor::Geom`]); weights are in
//! `[cout][cin][ksize][ksize]` order with one bias per output channel (batch-norm
//! is folded into them when the model is built). [`conv2d`] computes a range of
//! output rows, so the same kernel serves whole images and row bands.

use core::ops::Range;

use super::Isa;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ConvLayer, Weights};
use crate::tensor::{Band, Geom};

/// Computes output rows `rows` of `layer` applied to `input`, into `output`.
///
/// Both tensors use geometry `g`; `g.pad` must be at least `ksize / 2`. Only the
/// interior of `output` is written, so its zero border stays zero.
pub fn conv2d(
    isa: Isa,
    layer: &ConvLayer<'_>,
    g: Geom,
    input: &[f32],
    output: &mut [f32],
    rows: Range<usize>,
) -> Result<()> {
    if rows.end > g.height {
        return Err(shape_error());
    }
    conv2d_band(isa, layer, g.into(), input, g.into(), output, rows)
}

/// [`conv2d`] between two row bands: image rows `rows` of the output band are
/// computed from the input band, which must hold padded rows
/// `rows.start + pad - ksize/2 .. rows.end + pad + ksize/2`. Rows outside the
/// image are the zero rows the bands hold above and below it. Both bands have
/// the same width and border; per pixel the arithmetic is the same as
/// [`conv2d`]'s, so a band computes bit-identical values.
pub fn conv2d_band(
    isa: Isa,
    layer: &ConvLayer<'_>,
    src: Band,
    input: &[f32],
    dst: Band,
    output: &mut [f32],
    rows: Range<usize>,
) -> Result<()> {
    check(layer, src, input, dst, output, &rows)?;
    let Weights::F32(w) = layer.weight else {
        return Err(Error::new(
            ErrorKind::UnsupportedPrecision,
            "conv2d: the f32 kernel needs f32 weights",
        ));
    };
    if rows.is_empty() {
        return Ok(());
    }
    match isa {
        Isa::Generic => reference(layer, w, src, input, dst, output, rows),
        // Rows narrower than one vector: the reference computes them.
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if src.width < 4 => reference(layer, w, src, input, dst, output, rows),
        #[cfg(target_arch = "aarch64")]
        // SAFETY: `check` verified every buffer length the kernel indexes, and
        // the rows are at least 4 columns wide.
        Isa::Neon => unsafe { neon::conv(layer, w, src, input, dst, output, rows) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2Fma` value exists only when the CPU has AVX2 and FMA,
        // and `check` verified every buffer length the kernel indexes.
        Isa::Avx2Fma(_) => unsafe { avx2::conv(layer, w, src, input, dst, output, rows) },
    }
    Ok(())
}

fn shape_error() -> Error {
    Error::new(ErrorKind::InvalidArgument, "conv2d: inconsistent shapes")
}

fn check(
    layer: &ConvLayer<'_>,
    src: Band,
    input: &[f32],
    dst: Band,
    output: &[f32],
    rows: &Range<usize>,
) -> Result<()> {
    let k = layer.ksize;
    let kp = k / 2;
    let same = src.width == dst.width && src.pad == dst.pad;
    let ok = k % 2 == 1
        && same
        && src.pad >= kp
        && src.row_stride() > 0
        && layer.weight.len() == layer.cout * layer.cin * k * k
        && layer.bias.len() == layer.cout
        && rows.start <= rows.end
        && (rows.is_empty()
            || (src.holds(rows.start + src.pad - kp, rows.end + src.pad + kp)
                && dst.holds(rows.start + dst.pad, rows.end + dst.pad)))
        && src.plane % src.row_stride() == 0
        && dst.plane % dst.row_stride() == 0
        && input.len() >= layer.cin * src.plane
        && output.len() >= layer.cout * dst.plane;
    if ok {
        Ok(())
    } else {
        Err(shape_error())
    }
}

/// The plain reference kernel: row-wise multiply-adds the compiler vectorises.
fn reference(
    layer: &ConvLayer<'_>,
    weight: &[f32],
    src: Band,
    input: &[f32],
    dst: Band,
    output: &mut [f32],
    rows: Range<usize>,
) {
    let (k, w) = (layer.ksize, src.width);
    let (rs, off) = (src.row_stride(), src.pad - k / 2);
    for co in 0..layer.cout {
        for y in rows.clone() {
            let o0 = co * dst.plane + dst.at(y, 0);
            let orow = &mut output[o0..o0 + w];
            orow.fill(layer.bias[co]);
            for ci in 0..layer.cin {
                let wk = &weight[(co * layer.cin + ci) * k * k..][..k * k];
                for ky in 0..k {
                    let base = ci * src.plane + (y + off + ky - src.first) * rs + off;
                    for kx in 0..k {
                        let wv = wk[ky * k + kx];
                        let irow = &input[base + kx..base + kx + w];
                        for (o, i) in orow.iter_mut().zip(irow) {
                            *o += wv * *i;
                        }
                    }
                }
            }
            if layer.relu {
                for o in orow.iter_mut() {
                    *o = o.max(0.0);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;
    use core::ops::Range;

    use crate::model::ConvLayer;
    use crate::tensor::Band;

    /// Raw views shared by the tiles of one call.
    struct Args {
        inp: *const f32,
        out: *mut f32,
        w: *const f32,
        b: *const f32,
        cin: usize,
        k: usize,
        rs: usize,
        off: usize,
        src: Band,
        dst: Band,
        relu: bool,
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA, and the buffers must have the lengths
    /// `conv2d`'s check requires.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn conv(
        layer: &ConvLayer<'_>,
        weight: &[f32],
        src: Band,
        input: &[f32],
        dst: Band,
        output: &mut [f32],
        rows: Range<usize>,
    ) {
        let a = Args {
            inp: input.as_ptr(),
            out: output.as_mut_ptr(),
            w: weight.as_ptr(),
            b: layer.bias.as_ptr(),
            cin: layer.cin,
            k: layer.ksize,
            rs: src.row_stride(),
            off: src.pad - layer.ksize / 2,
            src,
            dst,
            relu: layer.relu,
        };
        // Row outer, output channels inner: the input rows a row needs (cin·k
        // rows) and the weights stay in cache while every output channel reads them.
        for y in rows {
            let mut co = 0;
            while co < layer.cout {
                let cb = (layer.cout - co).min(6);
                // SAFETY: forwarded from this function's contract.
                unsafe {
                    match cb {
                        6 => row::<6>(&a, co, y),
                        5 => row::<5>(&a, co, y),
                        4 => row::<4>(&a, co, y),
                        3 => row::<3>(&a, co, y),
                        2 => row::<2>(&a, co, y),
                        _ => row::<1>(&a, co, y),
                    }
                }
                co += cb;
            }
        }
    }

    /// Output row `y` of channels `co .. co + CB`.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `a` holds buffers of the lengths
    /// `conv2d` checks, `co + CB` output channels exist and `y` is a row of
    /// the output.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row<const CB: usize>(a: &Args, co: usize, y: usize) {
        let w = a.src.width;
        let mut x = 0;
        // SAFETY: for all three calls, x + lanes <= w keeps loads and stores inside
        // row y of the padded planes; the masked tail touches only lanes < w - x.
        unsafe {
            if a.k == 3 {
                while x + 16 <= w {
                    tile::<CB, 2, false, 3>(a, co, y, x, 0);
                    x += 16;
                }
            }
            while x + 8 <= w {
                tile::<CB, 1, false, 0>(a, co, y, x, 0);
                x += 8;
            }
            if x < w {
                tile::<CB, 1, true, 0>(a, co, y, x, w - x);
            }
        }
    }

    /// `NV` vectors of output row `y` from column `x`, channels
    /// `co .. co + CB` (`lanes` columns when `MASKED`).
    ///
    /// # Safety
    /// As [`row`]; besides, `x + 8·NV <= width` or, when `MASKED`,
    /// `x + lanes <= width` with `lanes < 8`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const CB: usize, const NV: usize, const MASKED: bool, const K: usize>(
        a: &Args,
        co: usize,
        y: usize,
        x: usize,
        lanes: usize,
    ) {
        // K > 0 fixes the kernel side at compile time so the tap loops unroll.
        let k = if K > 0 { K } else { a.k };
        let kk = k * k;
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), idx);
        let mut acc = [[_mm256_setzero_ps(); NV]; CB];
        for (c, accs) in acc.iter_mut().enumerate() {
            // SAFETY: co + c < cout, the bias length.
            let b = _mm256_set1_ps(unsafe { *a.b.add(co + c) });
            for v in accs.iter_mut() {
                *v = b;
            }
        }
        for ci in 0..a.cin {
            // SAFETY: (co + c)·cin·k² + ci·k² + k² <= cout·cin·k², the weight length.
            let wci = unsafe { a.w.add((co * a.cin + ci) * kk) };
            for ky in 0..k {
                // SAFETY: padded row y + off + ky is held by the input band
                // (checked), in plane ci < cin.
                let src = unsafe {
                    a.inp
                        .add(ci * a.src.plane + (y + a.off + ky - a.src.first) * a.rs + x + a.off)
                };
                for kx in 0..k {
                    let mut v_in = [_mm256_setzero_ps(); NV];
                    for (v, slot) in v_in.iter_mut().enumerate() {
                        // SAFETY: columns x + off + kx + 8v .. +8 lie inside the
                        // padded row (x + 8·NV <= width, off + kx <= 2·pad), or
                        // only the unmasked lanes are read.
                        *slot = unsafe {
                            let p = src.add(kx + 8 * v);
                            if MASKED {
                                _mm256_maskload_ps(p, mask)
                            } else {
                                _mm256_loadu_ps(p)
                            }
                        };
                    }
                    for (c, accs) in acc.iter_mut().enumerate() {
                        // SAFETY: see `wci`.
                        let wv =
                            _mm256_set1_ps(unsafe { *wci.add(c * a.cin * kk + ky * a.k + kx) });
                        for (acc_v, in_v) in accs.iter_mut().zip(v_in.iter()) {
                            *acc_v = _mm256_fmadd_ps(wv, *in_v, *acc_v);
                        }
                    }
                }
            }
        }
        let zero = _mm256_setzero_ps();
        for (c, accs) in acc.iter().enumerate() {
            // SAFETY: plane co + c < cout of the output, interior pixel (y, x).
            let dst = unsafe { a.out.add((co + c) * a.dst.plane + a.dst.at(y, x)) };
            for (v, acc_v) in accs.iter().enumerate() {
                let r = if a.relu {
                    _mm256_max_ps(*acc_v, zero)
                } else {
                    *acc_v
                };
                // SAFETY: as for the loads; masked lanes are not written.
                unsafe {
                    if MASKED {
                        _mm256_maskstore_ps(dst.add(8 * v), mask, r);
                    } else {
                        _mm256_storeu_ps(dst.add(8 * v), r);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use core::arch::aarch64::*;
    use core::ops::Range;

    use crate::model::ConvLayer;
    use crate::tensor::Band;

    /// Output channels of a packed block: their weights are repacked
    /// tap-major (`[ci][ky][kx][8]`), so two vector loads fetch the 8 weights
    /// of a tap and 24 accumulators (3 vectors of 4 pixels each) fit beside
    /// them and the inputs in the 32 registers.
    const PB: usize = 8;

    /// Room for the packed weights of one block (3×3 kernels up to 64 input
    /// channels, 18 KiB of stack); larger layers use the broadcast tiles only.
    const PACK: usize = PB * 64 * 9;

    /// Narrowest rows worth repacking for: repacking costs about 3
    /// instructions per weight and row, the packed tiles save about 0.07 per
    /// weight and pixel (about 0.30 instead of 0.37 instructions per
    /// multiply-add), so narrower rows use the broadcast tiles only.
    const PACK_MIN_WIDTH: usize = 48;

    /// Output channels of a broadcast block (weights read one at a time from
    /// the layer's layout): 18 accumulators, the input vectors and the
    /// broadcast weights fit in the 32 registers (eight channels spill). They
    /// compute the channels a packed block does not cover.
    const CB: usize = 6;

    /// Raw views shared by the tiles of one call.
    struct Args {
        inp: *const f32,
        out: *mut f32,
        w: *const f32,
        b: *const f32,
        cin: usize,
        k: usize,
        rs: usize,
        off: usize,
        src: Band,
        dst: Band,
        relu: bool,
    }

    /// # Safety
    /// The buffers must have the lengths `conv2d`'s check requires, and the
    /// rows must be at least 4 columns wide.
    #[target_feature(enable = "neon")]
    pub unsafe fn conv(
        layer: &ConvLayer<'_>,
        weight: &[f32],
        src: Band,
        input: &[f32],
        dst: Band,
        output: &mut [f32],
        rows: Range<usize>,
    ) {
        let a = Args {
            inp: input.as_ptr(),
            out: output.as_mut_ptr(),
            w: weight.as_ptr(),
            b: layer.bias.as_ptr(),
            cin: layer.cin,
            k: layer.ksize,
            rs: src.row_stride(),
            off: src.pad - layer.ksize / 2,
            src,
            dst,
            relu: layer.relu,
        };
        let kk = layer.ksize * layer.ksize;
        if layer.cout >= PB && PB * layer.cin * kk <= PACK && src.width >= PACK_MIN_WIDTH {
            let mut pack = [0.0f32; PACK];
            // SAFETY: forwarded from this function's contract.
            unsafe { blocks(&a, layer, weight, rows, &mut pack[..PB * layer.cin * kk]) };
        } else {
            // SAFETY: forwarded from this function's contract.
            unsafe { blocks(&a, layer, weight, rows, &mut []) };
        }
    }

    /// Output rows `rows`, channel block by channel block: blocks of 8
    /// channels from their weights repacked into `pack` (`cin·k²·8` values)
    /// unless it is empty, the others from broadcast weights.
    ///
    /// # Safety
    /// As [`conv`]; `a` holds that call's buffers.
    #[target_feature(enable = "neon")]
    unsafe fn blocks(
        a: &Args,
        layer: &ConvLayer<'_>,
        weight: &[f32],
        rows: Range<usize>,
        pack: &mut [f32],
    ) {
        let kk = layer.ksize * layer.ksize;
        // Row outer, output channels inner, as in the AVX2 kernel: the cin·k
        // input rows of an output row stay in cache for every channel block.
        for y in rows {
            let mut co = 0;
            while co < layer.cout {
                if !pack.is_empty() && layer.cout - co >= PB {
                    let n = layer.cin * kk;
                    for (c, wc) in weight[co * n..(co + PB) * n].chunks_exact(n).enumerate() {
                        for (p, &v) in pack[c..].iter_mut().step_by(PB).zip(wc) {
                            *p = v;
                        }
                    }
                    // SAFETY: forwarded from this function's contract; co + 8
                    // <= cout and `pack` holds the block's cin·k²·8 weights.
                    unsafe { packed_row(a, co, y, pack) };
                    co += PB;
                    continue;
                }
                let cb = (layer.cout - co).min(CB);
                // SAFETY: forwarded from this function's contract; co + cb <= cout.
                unsafe {
                    match cb {
                        6 => row::<6>(a, co, y),
                        5 => row::<5>(a, co, y),
                        4 => row::<4>(a, co, y),
                        3 => row::<3>(a, co, y),
                        2 => row::<2>(a, co, y),
                        _ => row::<1>(a, co, y),
                    }
                }
                co += cb;
            }
        }
    }

    /// Calls `f(x, wide)` for the column tiles of a row `w >= 4` pixels wide:
    /// as many 12-pixel tiles (`wide`, 3 vectors) as fit, then 4-pixel ones,
    /// then the 4-pixel tile that ends at the row's end. Each lane sums the
    /// same products in the same order wherever its tile starts, so the
    /// columns that last tile computes twice get the same values.
    #[inline]
    fn columns(w: usize, mut f: impl FnMut(usize, bool)) {
        let mut x = 0;
        while x + 12 <= w {
            f(x, true);
            x += 12;
        }
        while x + 4 <= w {
            f(x, false);
            x += 4;
        }
        if x < w {
            f(w - 4, false);
        }
    }

    /// Output row `y` of channels `co .. co + 8` from their packed weights.
    ///
    /// # Safety
    /// As [`row`] with `C` = 8; `pack` holds the weights of channels
    /// `co .. co + 8` in `[ci][ky][kx][8]` order.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn packed_row(a: &Args, co: usize, y: usize, pack: &[f32]) {
        let k3 = a.k == 3;
        columns(a.src.width, |x, wide| {
            // SAFETY: `columns` gives x + 4·V <= width (width >= 4); the
            // rest is forwarded.
            unsafe {
                match (wide, k3) {
                    (true, true) => packed_tile::<3, 3>(a, co, y, x, pack),
                    (true, false) => packed_tile::<3, 0>(a, co, y, x, pack),
                    (false, true) => packed_tile::<1, 3>(a, co, y, x, pack),
                    (false, false) => packed_tile::<1, 0>(a, co, y, x, pack),
                }
            }
        });
    }

    /// Output row `y` of channels `co .. co + C`.
    ///
    /// # Safety
    /// `a` holds buffers of the lengths `conv2d` checks, the rows are at
    /// least 4 columns wide, `co + C` output channels exist and `y` is a row
    /// of the output.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn row<const C: usize>(a: &Args, co: usize, y: usize) {
        let k3 = a.k == 3;
        columns(a.src.width, |x, wide| {
            // SAFETY: `columns` gives x + 4·V <= width (width >= 4); the
            // rest is forwarded.
            unsafe {
                match (wide, k3) {
                    (true, true) => tile::<C, 3, 3>(a, co, y, x),
                    (true, false) => tile::<C, 3, 0>(a, co, y, x),
                    (false, true) => tile::<C, 1, 3>(a, co, y, x),
                    (false, false) => tile::<C, 1, 0>(a, co, y, x),
                }
            }
        });
    }

    /// Accumulators of `C` channels and `V` vectors, set to the biases of
    /// channels `co .. co + C`.
    ///
    /// # Safety
    /// `co + C <= cout`.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn biases<const C: usize, const V: usize>(a: &Args, co: usize) -> [[float32x4_t; V]; C] {
        core::array::from_fn(|c| {
            // SAFETY: co + c < cout, the bias length.
            let b = unsafe { *a.b.add(co + c) };
            [vdupq_n_f32(b); V]
        })
    }

    /// The `V` input vectors of tap (`ky`, `kx`) for output columns `x ..`
    /// of row `y`, input channel `ci`.
    ///
    /// # Safety
    /// `ci < cin`, `y` a row of the output, `ky, kx < k`, `x + 4·V <= width`.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn inputs<const V: usize>(
        a: &Args,
        ci: usize,
        y: usize,
        x: usize,
        ky: usize,
        kx: usize,
    ) -> [float32x4_t; V] {
        // SAFETY: padded row y + off + ky is held by the input band (checked),
        // in plane ci < cin; columns x + off + kx + 4v .. +4 lie inside the
        // padded row: x + 4·V <= width and off + kx <= 2·pad.
        let src = unsafe {
            a.inp
                .add(ci * a.src.plane + (y + a.off + ky - a.src.first) * a.rs + x + a.off + kx)
        };
        core::array::from_fn(|v| {
            // SAFETY: as above, v < V.
            unsafe { vld1q_f32(src.add(4 * v)) }
        })
    }

    /// Writes the accumulators to output row `y`, columns `x .. x + 4·V`,
    /// channels `co .. co + C`, after ReLU when the layer has it.
    ///
    /// # Safety
    /// `co + C <= cout`, `y` a row of the output, `x + 4·V <= width`.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn store<const C: usize, const V: usize>(
        a: &Args,
        co: usize,
        y: usize,
        x: usize,
        acc: &[[float32x4_t; V]; C],
    ) {
        let zero = vdupq_n_f32(0.0);
        for (c, accs) in acc.iter().enumerate() {
            // SAFETY: plane co + c < cout of the output, interior pixel (y, x).
            let dst = unsafe { a.out.add((co + c) * a.dst.plane + a.dst.at(y, x)) };
            for (v, acc_v) in accs.iter().enumerate() {
                // maxnm, like f32::max, maps NaN to 0.
                let r = if a.relu {
                    vmaxnmq_f32(*acc_v, zero)
                } else {
                    *acc_v
                };
                // SAFETY: columns x + 4v .. +4 <= width of interior row y.
                unsafe { vst1q_f32(dst.add(4 * v), r) };
            }
        }
    }

    /// `V` vectors of 4 pixels of output row `y` from column `x`, channels
    /// `co .. co + 8`, weights from `pack`: each lane is bias + Σ_ci Σ_ky
    /// Σ_kx w · in, fused multiply-adds in that order, then ReLU.
    ///
    /// # Safety
    /// As [`packed_row`]; besides, `x + 4·V <= width` and `K` is 0 or the
    /// kernel side.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn packed_tile<const V: usize, const K: usize>(
        a: &Args,
        co: usize,
        y: usize,
        x: usize,
        pack: &[f32],
    ) {
        // K > 0 fixes the kernel side at compile time so the tap loops unroll.
        let k = if K > 0 { K } else { a.k };
        let kk = k * k;
        // SAFETY: co + 8 <= cout.
        let mut acc = unsafe { biases::<PB, V>(a, co) };
        for ci in 0..a.cin {
            for ky in 0..k {
                for kx in 0..k {
                    // SAFETY: ci < cin, ky, kx < k, x + 4·V <= width.
                    let v_in = unsafe { inputs::<V>(a, ci, y, x, ky, kx) };
                    // SAFETY: (ci·k² + ky·k + kx)·8 + 8 <= cin·k²·8, the
                    // packed length.
                    let (w0, w1) = unsafe {
                        let p = pack.as_ptr().add((ci * kk + ky * k + kx) * PB);
                        (vld1q_f32(p), vld1q_f32(p.add(4)))
                    };
                    for (v, iv) in v_in.iter().enumerate() {
                        acc[0][v] = vfmaq_laneq_f32::<0>(acc[0][v], *iv, w0);
                        acc[1][v] = vfmaq_laneq_f32::<1>(acc[1][v], *iv, w0);
                        acc[2][v] = vfmaq_laneq_f32::<2>(acc[2][v], *iv, w0);
                        acc[3][v] = vfmaq_laneq_f32::<3>(acc[3][v], *iv, w0);
                        acc[4][v] = vfmaq_laneq_f32::<0>(acc[4][v], *iv, w1);
                        acc[5][v] = vfmaq_laneq_f32::<1>(acc[5][v], *iv, w1);
                        acc[6][v] = vfmaq_laneq_f32::<2>(acc[6][v], *iv, w1);
                        acc[7][v] = vfmaq_laneq_f32::<3>(acc[7][v], *iv, w1);
                    }
                }
            }
        }
        // SAFETY: co + 8 <= cout, x + 4·V <= width.
        unsafe { store(a, co, y, x, &acc) };
    }

    /// `V` vectors of 4 pixels of output row `y` from column `x`, channels
    /// `co .. co + C`, each weight broadcast from the layer's layout; the
    /// same sums as [`packed_tile`].
    ///
    /// # Safety
    /// As [`row`]; besides, `x + 4·V <= width` and `K` is 0 or the kernel side.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn tile<const C: usize, const V: usize, const K: usize>(
        a: &Args,
        co: usize,
        y: usize,
        x: usize,
    ) {
        let k = if K > 0 { K } else { a.k };
        let kk = k * k;
        let wstride = a.cin * kk;
        // SAFETY: co + C <= cout.
        let mut acc = unsafe { biases::<C, V>(a, co) };
        for ci in 0..a.cin {
            // SAFETY: (co + c)·cin·k² + ci·k² + k² <= cout·cin·k², the weight
            // length, for every c < C.
            let wci = unsafe { a.w.add((co * a.cin + ci) * kk) };
            for ky in 0..k {
                for kx in 0..k {
                    // SAFETY: ci < cin, ky, kx < k, x + 4·V <= width.
                    let v_in = unsafe { inputs::<V>(a, ci, y, x, ky, kx) };
                    for (c, accs) in acc.iter_mut().enumerate() {
                        // SAFETY: see `wci`.
                        let wv = unsafe { *wci.add(c * wstride + ky * k + kx) };
                        for (acc_v, in_v) in accs.iter_mut().zip(v_in.iter()) {
                            *acc_v = vfmaq_n_f32(*acc_v, *in_v, wv);
                        }
                    }
                }
            }
        }
        // SAFETY: co + C <= cout, x + 4·V <= width.
        unsafe { store(a, co, y, x, &acc) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(state: &mut u64) -> f32 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 40) as f32) / (1u64 << 24) as f32 - 0.5
    }

    /// Direct definition: out[co][y][x] = b + Σ w · in (zero outside), ReLU.
    fn direct(layer: &ConvLayer<'_>, g: Geom, input: &[f32], co: usize, y: usize, x: usize) -> f32 {
        let k = layer.ksize as isize;
        let mut s = layer.bias[co];
        for ci in 0..layer.cin {
            for ky in 0..k {
                for kx in 0..k {
                    let (iy, ix) = (y as isize + ky - k / 2, x as isize + kx - k / 2);
                    if iy < 0 || ix < 0 || iy >= g.height as isize || ix >= g.width as isize {
                        continue;
                    }
                    let Weights::F32(weight) = layer.weight else {
                        unreachable!("the test builds f32 layers")
                    };
                    let w = weight[((co * layer.cin + ci) * k as usize + ky as usize) * k as usize
                        + kx as usize];
                    s += w * input[ci * g.plane() + g.at(iy as usize, ix as usize)];
                }
            }
        }
        if layer.relu {
            s.max(0.0)
        } else {
            s
        }
    }

    /// One random layer and image: every instruction set against [`direct`],
    /// the output rows computed in two calls (`0..split`, `split..h`).
    #[allow(clippy::too_many_arguments)]
    fn check_case(
        st: &mut u64,
        h: usize,
        w: usize,
        cin: usize,
        cout: usize,
        k: usize,
        relu: bool,
        split: usize,
    ) {
        let mut buf_in = [0.0f32; 32768];
        let mut buf_out = [0.0f32; 16384];
        let mut weights = [0.0f32; 16384];
        let mut bias = [0.0f32; 24];
        for v in weights.iter_mut().chain(bias.iter_mut()) {
            *v = lcg(st);
        }
        let g = Geom {
            height: h,
            width: w,
            pad: 2,
        };
        let layer = ConvLayer {
            cin,
            cout,
            ksize: k,
            relu,
            weight: Weights::F32(&weights[..cout * cin * k * k]),
            bias: &bias[..cout],
        };
        let input = &mut buf_in[..g.len(cin)];
        input.fill(0.0);
        for c in 0..cin {
            for y in 0..h {
                for x in 0..w {
                    input[c * g.plane() + g.at(y, x)] = lcg(st);
                }
            }
        }
        let mut isas = [Isa::Generic; 2];
        isas[1] = Isa::detect();
        for isa in isas {
            let out = &mut buf_out[..g.len(cout)];
            out.fill(0.0);
            conv2d(isa, &layer, g, input, out, 0..split).unwrap();
            for co in 0..cout {
                for y in split..h {
                    let row = co * g.plane() + g.at(y, 0);
                    assert!(out[row..row + w].iter().all(|&v| v == 0.0));
                }
            }
            conv2d(isa, &layer, g, input, out, split..h).unwrap();
            for co in 0..cout {
                for y in 0..h {
                    for x in 0..w {
                        let want = direct(&layer, g, input, co, y, x);
                        let got = out[co * g.plane() + g.at(y, x)];
                        assert!(
                            (want - got).abs() < 1e-5,
                            "{isa:?} {h}x{w} cin{cin} cout{cout} k{k} co{co} y{y} x{x}: {got} vs {want}"
                        );
                    }
                }
            }
            // The border stays zero.
            let border: f32 = (0..cout)
                .flat_map(|co| {
                    (0..g.plane())
                        .filter(move |i| {
                            let (py, px) = (i / g.row_stride(), i % g.row_stride());
                            py < g.pad || py >= g.pad + h || px < g.pad || px >= g.pad + w
                        })
                        .map(move |i| co * g.plane() + i)
                })
                .map(|i| out[i].abs())
                .sum();
            assert_eq!(border, 0.0);
        }
    }

    #[test]
    fn every_isa_matches_the_direct_definition() {
        let mut st = 3;
        for &(h, w, cin, cout, k, relu) in &[
            (5usize, 37usize, 3usize, 9usize, 3usize, true),
            (4, 8, 2, 4, 3, false),
            (3, 7, 1, 5, 3, true),
            (6, 50, 4, 1, 3, false),
            (5, 9, 2, 3, 5, true),
            (2, 1, 3, 2, 1, false),
            // The largest layers whose weights the NEON kernel repacks, and
            // larger ones.
            (3, 50, 64, 17, 3, true),
            (3, 50, 65, 9, 3, false),
            (3, 50, 24, 9, 5, true),
            (3, 13, 64, 17, 3, true),
        ] {
            check_case(&mut st, h, w, cin, cout, k, relu, h / 2);
        }
    }

    /// Every row width up to 52 (every tail after the 12- and 4-pixel tiles,
    /// with and without repacked weights),
    /// channel counts that are not multiples of the channel blocks (6 and 8),
    /// kernel sides 1, 3 and 5, with and without ReLU.
    #[test]
    fn every_isa_matches_the_direct_definition_at_every_width() {
        let mut st = 11;
        for w in 1..=52 {
            for (i, k) in [1usize, 3, 5].into_iter().enumerate() {
                let n = w * 3 + i;
                let cin = 1 + n % 5;
                let cout = 1 + (n * 7) % 19;
                let h = 2 + n % 3;
                check_case(&mut st, h, w, cin, cout, k, n % 2 == 0, n % h);
            }
        }
    }

    #[test]
    fn inconsistent_shapes_are_errors() {
        let g = Geom {
            height: 4,
            width: 4,
            pad: 1,
        };
        let w = [0.0; 9];
        let b = [0.0; 1];
        let layer = ConvLayer {
            cin: 1,
            cout: 1,
            ksize: 3,
            relu: false,
            weight: Weights::F32(&w),
            bias: &b,
        };
        let input = [0.0; 36];
        let mut out = [0.0; 35];
        assert!(conv2d(Isa::Generic, &layer, g, &input, &mut out, 0..4).is_err());
        let mut out = [0.0; 36];
        assert!(conv2d(Isa::Generic, &layer, g, &input, &mut out, 0..5).is_err());
        let g0 = Geom { pad: 0, ..g };
        assert!(conv2d(Isa::Generic, &layer, g0, &input, &mut out, 0..4).is_err());
    }
}
