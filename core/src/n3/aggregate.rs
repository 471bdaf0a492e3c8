//! Distances to, and weighted aggregation of, the rows of a data matrix
//! selected by an index set.
//!
//! `data` is a row-major matrix of `dim`-long rows (image patches in the N³
//! block; points or descriptors elsewhere).

use crate::error::{Error, ErrorKind, Result};
use crate::kernels::Isa;
use core::ops::Range;

/// Every index selects a row of a matrix of `len` values in rows of `dim`.
pub(crate) fn check_indices(len: usize, dim: usize, indices: &[u32]) -> Result<()> {
    let rows = len.checked_div(dim).unwrap_or(0);
    if dim == 0 || indices.iter().any(|&i| i as usize >= rows) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "index outside the data matrix",
        ));
    }
    Ok(())
}

/// Checks an aggregation of columns `cols` of the rows of `data` (`dim`
/// values each) selected by `indices`, with `lens = (k, weights, out)`:
/// `k` weight vectors in `weights` values into `out` values. Returns the
/// data from the first column on and `(stride, width)` of its rows, or
/// `None` when there are no columns.
#[allow(clippy::type_complexity)]
pub(crate) fn columns_of<'d, T>(
    data: &'d [T],
    dim: usize,
    cols: Range<usize>,
    indices: &[u32],
    (k, weights, out): (usize, usize, usize),
) -> Result<Option<(&'d [T], (usize, usize))>> {
    check_columns(data.len(), dim, &cols, indices)?;
    let w = cols.len();
    check_lengths(w, indices.len(), k, weights, out)?;
    Ok((w > 0).then(|| (&data[cols.start..], (dim, w))))
}

/// Columns `cols` of rows of `dim` values, and indices that select rows of a
/// matrix of `len` values.
fn check_columns(len: usize, dim: usize, cols: &Range<usize>, indices: &[u32]) -> Result<()> {
    if cols.start > cols.end || cols.end > dim {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "aggregate: columns outside the rows",
        ));
    }
    check_indices(len, dim, indices)
}

/// `k` weight vectors over `n` indices and `k` outputs of `dim` values.
pub(crate) fn check_lengths(
    dim: usize,
    n: usize,
    k: usize,
    weights: usize,
    out: usize,
) -> Result<()> {
    if k.checked_mul(n) != Some(weights) || k.checked_mul(dim) != Some(out) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "aggregate: weights or output length",
        ));
    }
    Ok(())
}

/// Squared Euclidean distance of 8-lane partial sums (vectorisable).
#[inline]
pub fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += (x - y) * (x - y);
    }
    let s4: [f32; 4] = core::array::from_fn(|l| acc[l] + acc[l + 4]);
    (s4[0] + s4[2]) + (s4[1] + s4[3]) + tail
}

/// `out[c] = ‖query − data[indices[c]]‖²` for every index (plain
/// reference kernel; [`squared_distances_with`] picks a faster one).
pub fn squared_distances(
    data: &[f32],
    dim: usize,
    query: &[f32],
    indices: &[u32],
    out: &mut [f32],
) -> Result<()> {
    squared_distances_with(Isa::Generic, data, dim, query, indices, out)
}

/// [`squared_distances`] with the kernel of instruction set `isa`.
pub fn squared_distances_with(
    isa: Isa,
    data: &[f32],
    dim: usize,
    query: &[f32],
    indices: &[u32],
    out: &mut [f32],
) -> Result<()> {
    check_indices(data.len(), dim, indices)?;
    if query.len() != dim || out.len() != indices.len() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "distances: query or output length",
        ));
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves the CPU features; lengths and indices were checked above.
        Isa::Avx2Fma(_) => unsafe { avx2::distances(data, dim, query, indices, out) },
        _ => {
            for (o, &i) in out.iter_mut().zip(indices) {
                let row = &data[i as usize * dim..][..dim];
                *o = squared_distance(query, row);
            }
        }
    }
    Ok(())
}

/// `out[j] = Σ_c weights[j][c] · data[indices[c]]` for `j < k`: `k` weighted
/// sums of the indexed rows, written one after the other (`k · dim` values).
/// Plain reference kernel; [`aggregate_with`] picks a faster one.
///
/// ```
/// use n3net_core::n3::aggregate::aggregate;
/// let data = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0]; // three 2-d points
/// let weights = [0.5, 0.5, 0.0, 0.0, 0.25, 0.75]; // k = 2 over indices [0, 2, 1]
/// let mut out = [0.0; 4];
/// aggregate(&data, 2, &[0, 2, 1], &weights, 2, &mut out).unwrap();
/// assert_eq!(out, [1.5, 1.0, 0.5, 1.25]);
/// ```
pub fn aggregate(
    data: &[f32],
    dim: usize,
    indices: &[u32],
    weights: &[f32],
    k: usize,
    out: &mut [f32],
) -> Result<()> {
    aggregate_with(Isa::Generic, data, dim, indices, weights, k, out)
}

/// [`aggregate`] with the kernel of instruction set `isa`.
pub fn aggregate_with(
    isa: Isa,
    data: &[f32],
    dim: usize,
    indices: &[u32],
    weights: &[f32],
    k: usize,
    out: &mut [f32],
) -> Result<()> {
    aggregate_columns(isa, data, dim, 0..dim, indices, weights, k, out)
}

/// [`aggregate_with`] of columns `cols` of the rows only: `out` holds `k`
/// rows of `cols.len()` values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn aggregate_columns(
    isa: Isa,
    data: &[f32],
    dim: usize,
    cols: Range<usize>,
    indices: &[u32],
    weights: &[f32],
    k: usize,
    out: &mut [f32],
) -> Result<()> {
    let lens = (k, weights.len(), out.len());
    let Some((data, sw)) = columns_of(data, dim, cols, indices, lens)? else {
        return Ok(());
    };
    match isa {
        Isa::Generic => aggregate_ref(data, sw, indices, weights, out),
        #[cfg(target_arch = "aarch64")]
        // SAFETY: lengths, columns and indices were checked above.
        Isa::Neon => unsafe { neon::aggregate(data, sw, indices, weights, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` proves the CPU features; lengths, columns and indices were checked above.
        Isa::Avx2Fma(_) => unsafe { avx2::aggregate(data, sw, indices, weights, out) },
    }
    Ok(())
}

/// Rows of `stride` values from the start of `data`, of which the first
/// `width` are read.
fn aggregate_ref(
    data: &[f32],
    (stride, width): (usize, usize),
    indices: &[u32],
    weights: &[f32],
    out: &mut [f32],
) {
    let n = indices.len();
    out.fill(0.0);
    for (c, &i) in indices.iter().enumerate() {
        let row = &data[i as usize * stride..][..width];
        for (j, z) in out.chunks_exact_mut(width).enumerate() {
            let w = weights[j * n + c];
            for (zv, xv) in z.iter_mut().zip(row) {
                *zv += w * *xv;
            }
        }
    }
}

/// The AVX2 kernels, for rows of `f32` or of binary16 values (widened with
/// F16C as they are read).
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use core::arch::x86_64::*;

    use half::f16;

    /// Most neighbours kept in registers at once (a vector each).
    const KB: usize = 7;
    /// Candidates whose distances are summed at once (2 vectors each).
    const CB: usize = 4;

    /// Values the kernels read as `f32` vectors.
    pub trait Lanes: Copy + Into<f32> {
        /// The eight values at `p` as `f32`.
        ///
        /// # Safety
        /// AVX2, FMA and F16C must be available and `p .. p + 8` readable.
        unsafe fn load8(p: *const Self) -> __m256;
    }

    impl Lanes for f32 {
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load8(p: *const f32) -> __m256 {
            // SAFETY: the caller guarantees `p .. p + 8` is readable.
            unsafe { _mm256_loadu_ps(p) }
        }
    }

    impl Lanes for f16 {
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load8(p: *const f16) -> __m256 {
            // SAFETY: the caller guarantees `p .. p + 8` is readable.
            unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
        }
    }

    /// `out[c] = ‖query − data[indices[c]]‖²`, `CB` candidates at a time.
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; `indices` must select rows of
    /// `data` (`dim` values each), `query` hold `dim` values and `out` as
    /// many as `indices`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn distances<T: Lanes>(
        data: &[T],
        dim: usize,
        query: &[f32],
        indices: &[u32],
        out: &mut [f32],
    ) {
        let mut c = 0;
        while c < indices.len() {
            let cb = (indices.len() - c).min(CB);
            let idx = &indices[c..c + cb];
            let o = &mut out[c..c + cb];
            // SAFETY: forwarded contract, `cb` indices and outputs.
            unsafe {
                match cb {
                    CB => distance_block::<T, CB>(data, dim, query, idx, o),
                    3 => distance_block::<T, 3>(data, dim, query, idx, o),
                    2 => distance_block::<T, 2>(data, dim, query, idx, o),
                    _ => distance_block::<T, 1>(data, dim, query, idx, o),
                }
            }
            c += cb;
        }
    }

    /// The distances of `B` candidates (`indices` and `out` hold `B`).
    ///
    /// # Safety
    /// As [`distances`].
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn distance_block<T: Lanes, const B: usize>(
        data: &[T],
        dim: usize,
        query: &[f32],
        indices: &[u32],
        out: &mut [f32],
    ) {
        let rows: [*const T; B] =
            // SAFETY: every index selects a row of `data`.
            core::array::from_fn(|b| unsafe { data.as_ptr().add(indices[b] as usize * dim) });
        let mut acc = [[_mm256_setzero_ps(); 2]; B];
        let q = query.as_ptr();
        let mut m = 0;
        while m + 16 <= dim {
            // SAFETY: m + 16 <= dim: inside the query and every row.
            unsafe {
                let (q0, q1) = (_mm256_loadu_ps(q.add(m)), _mm256_loadu_ps(q.add(m + 8)));
                for (a, &r) in acc.iter_mut().zip(&rows) {
                    let d0 = _mm256_sub_ps(q0, T::load8(r.add(m)));
                    let d1 = _mm256_sub_ps(q1, T::load8(r.add(m + 8)));
                    a[0] = _mm256_fmadd_ps(d0, d0, a[0]);
                    a[1] = _mm256_fmadd_ps(d1, d1, a[1]);
                }
            }
            m += 16;
        }
        for ((o, a), &r) in out.iter_mut().zip(&acc).zip(&rows) {
            let v = _mm256_add_ps(a[0], a[1]);
            let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            let s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
            let mut tail = 0.0;
            for (mm, &qv) in query.iter().enumerate().take(dim).skip(m) {
                // SAFETY: mm < dim: inside the row.
                let e = qv - unsafe { *r.add(mm) }.into();
                tail += e * e;
            }
            *o = _mm_cvtss_f32(s1) + tail;
        }
    }

    /// # Safety
    /// AVX2, FMA and F16C must be available; `indices` must select rows of
    /// `stride` values in `data` whose first `width` values are readable,
    /// `width > 0`, `weights` hold `k·n` and `out` `k·width` values.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn aggregate<T: Lanes>(
        data: &[T],
        (stride, width): (usize, usize),
        indices: &[u32],
        weights: &[f32],
        out: &mut [f32],
    ) {
        let n = indices.len();
        let k = out.len() / width;
        let mut j0 = 0;
        while j0 < k {
            // Blocks as even as they can be.
            let kb = (k - j0).div_ceil((k - j0).div_ceil(KB));
            let mut m = 0;
            while m + 8 <= width {
                // SAFETY: m + 8 <= width, j0 + kb <= k; forwarded contract.
                unsafe {
                    let (d, i, w, sw) = (data, indices, weights, (stride, width));
                    match kb {
                        7 => block::<T, 7>(d, sw, i, w, out, j0, m),
                        6 => block::<T, 6>(d, sw, i, w, out, j0, m),
                        5 => block::<T, 5>(d, sw, i, w, out, j0, m),
                        4 => block::<T, 4>(d, sw, i, w, out, j0, m),
                        3 => block::<T, 3>(d, sw, i, w, out, j0, m),
                        2 => block::<T, 2>(d, sw, i, w, out, j0, m),
                        _ => block::<T, 1>(d, sw, i, w, out, j0, m),
                    }
                }
                m += 8;
            }
            for mm in m..width {
                for j in j0..j0 + kb {
                    let mut s = 0.0;
                    for (c, &i) in indices.iter().enumerate() {
                        s += weights[j * n + c] * data[i as usize * stride + mm].into();
                    }
                    out[j * width + mm] = s;
                }
            }
            j0 += kb;
        }
    }

    /// Columns `m .. m + 8` of neighbours `j0 .. j0 + B`, over every
    /// candidate (each candidate's values are read once for all `B`).
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; `indices` select rows of
    /// `data` (`stride` values apart), `m + 8 <= width`, `weights` hold
    /// `(j0 + B)·n` and `out` `(j0 + B)·width` values.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block<T: Lanes, const B: usize>(
        data: &[T],
        (stride, width): (usize, usize),
        indices: &[u32],
        weights: &[f32],
        out: &mut [f32],
        j0: usize,
        m: usize,
    ) {
        let n = indices.len();
        let mut acc = [_mm256_setzero_ps(); B];
        let w = weights.as_ptr();
        for (c, &i) in indices.iter().enumerate() {
            // SAFETY: row i exists (checked by the caller) and m + 8 <= width.
            let x = unsafe { T::load8(data.as_ptr().add(i as usize * stride + m)) };
            for (jj, a) in acc.iter_mut().enumerate() {
                // SAFETY: (j0 + jj)·n + c < k·n = weights.len().
                let wv = _mm256_set1_ps(unsafe { *w.add((j0 + jj) * n + c) });
                *a = _mm256_fmadd_ps(wv, x, *a);
            }
        }
        for (jj, a) in acc.iter().enumerate() {
            // SAFETY: (j0 + jj)·width + m + 8 <= k·width = out.len().
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add((j0 + jj) * width + m), *a) };
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use core::arch::aarch64::*;

    /// Most neighbours kept in registers at once (4 vectors each).
    const KB: usize = 6;

    /// # Safety
    /// `indices` must select rows of `stride` values in `data` whose first
    /// `width` values are readable, `width > 0`, `weights` hold `k·n` and
    /// `out` `k·width` values.
    #[target_feature(enable = "neon")]
    pub unsafe fn aggregate(
        data: &[f32],
        (stride, width): (usize, usize),
        indices: &[u32],
        weights: &[f32],
        out: &mut [f32],
    ) {
        let k = out.len() / width;
        let mut j0 = 0;
        while j0 < k {
            let kb = (k - j0).min(KB);
            // SAFETY: j0 + kb <= k; forwarded contract.
            unsafe {
                match kb {
                    6 => columns::<6>(data, (stride, width), indices, weights, out, j0),
                    5 => columns::<5>(data, (stride, width), indices, weights, out, j0),
                    4 => columns::<4>(data, (stride, width), indices, weights, out, j0),
                    3 => columns::<3>(data, (stride, width), indices, weights, out, j0),
                    2 => columns::<2>(data, (stride, width), indices, weights, out, j0),
                    _ => columns::<1>(data, (stride, width), indices, weights, out, j0),
                }
            }
            j0 += kb;
        }
    }

    /// Every column of neighbours `j0 .. j0 + J`.
    ///
    /// # Safety
    /// As [`aggregate`]; besides, `j0 + J <= k`.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn columns<const J: usize>(
        data: &[f32],
        (stride, width): (usize, usize),
        indices: &[u32],
        weights: &[f32],
        out: &mut [f32],
        j0: usize,
    ) {
        let n = indices.len();
        let mut m = 0;
        while m + 16 <= width {
            // SAFETY: m + 16 <= width; forwarded contract.
            unsafe { block::<J, 4>(data, (stride, width), indices, weights, out, j0, m) };
            m += 16;
        }
        while m + 4 <= width {
            // SAFETY: m + 4 <= width; forwarded contract.
            unsafe { block::<J, 1>(data, (stride, width), indices, weights, out, j0, m) };
            m += 4;
        }
        for mm in m..width {
            for j in j0..j0 + J {
                let mut s = 0.0;
                for (c, &i) in indices.iter().enumerate() {
                    s += weights[j * n + c] * data[i as usize * stride + mm];
                }
                out[j * width + mm] = s;
            }
        }
    }

    /// Columns `m .. m + 4·V` of neighbours `j0 .. j0 + J`, over every candidate.
    ///
    /// # Safety
    /// `indices` select rows of `data` (`stride` values apart), `m + 4·V <=
    /// width`, `weights` hold `(j0 + J)·n` and `out` `(j0 + J)·width` values.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn block<const J: usize, const V: usize>(
        data: &[f32],
        (stride, width): (usize, usize),
        indices: &[u32],
        weights: &[f32],
        out: &mut [f32],
        j0: usize,
        m: usize,
    ) {
        let n = indices.len();
        let mut acc = [[vdupq_n_f32(0.0); V]; J];
        let w = weights.as_ptr();
        for (c, &i) in indices.iter().enumerate() {
            let mut x = [vdupq_n_f32(0.0); V];
            for (v, xv) in x.iter_mut().enumerate() {
                // SAFETY: row i exists (checked by the caller) and m + 4·V <= width.
                *xv = unsafe { vld1q_f32(data.as_ptr().add(i as usize * stride + m + 4 * v)) };
            }
            for (jj, a) in acc.iter_mut().enumerate() {
                // SAFETY: (j0 + jj)·n + c < k·n = weights.len().
                let wv = unsafe { *w.add((j0 + jj) * n + c) };
                for (av, xv) in a.iter_mut().zip(&x) {
                    *av = vfmaq_n_f32(*av, *xv, wv);
                }
            }
        }
        for (jj, a) in acc.iter().enumerate() {
            for (v, av) in a.iter().enumerate() {
                // SAFETY: (j0 + jj)·width + m + 4·V <= k·width = out.len().
                unsafe { vst1q_f32(out.as_mut_ptr().add((j0 + jj) * width + m + 4 * v), *av) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_a_direct_sum() {
        let data: [f32; 3 * 19] = core::array::from_fn(|i| (i as f32 * 0.37).sin());
        let q: [f32; 19] = core::array::from_fn(|i| (i as f32 * 0.11).cos());
        let mut out = [0.0; 3];
        squared_distances(&data, 19, &q, &[2, 0, 1], &mut out).unwrap();
        for (o, r) in out.iter().zip([2usize, 0, 1]) {
            let direct: f32 = (0..19)
                .map(|m| {
                    let e = q[m] - data[r * 19 + m];
                    e * e
                })
                .sum();
            assert!((o - direct).abs() < 1e-5);
        }
    }

    #[test]
    fn every_isa_matches_the_reference() {
        let mut st = 5u64;
        let mut rnd = || {
            st = st
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((st >> 40) as f32) / (1u64 << 24) as f32 - 0.5
        };
        let data: [f32; 40 * 37] = core::array::from_fn(|_| rnd());
        let weights: [f32; 7 * 11] = core::array::from_fn(|_| rnd());
        let idx = [3u32, 0, 39, 7, 7, 12, 25, 1, 30, 38, 2];
        for (dim, k) in [(37, 7), (16, 1), (5, 3), (32, 6), (3, 7), (23, 5), (1, 2)] {
            let data = &data[..40 * dim];
            let w = &weights[..k * idx.len()];
            let mut want = [0.0f32; 7 * 37];
            let mut got = [0.0f32; 7 * 37];
            aggregate(data, dim, &idx, w, k, &mut want[..k * dim]).unwrap();
            aggregate_with(Isa::detect(), data, dim, &idx, w, k, &mut got[..k * dim]).unwrap();
            for (a, b) in want.iter().zip(&got) {
                assert!((a - b).abs() < 1e-5, "dim {dim} k {k}: {a} vs {b}");
            }
            // Columns on their own: those of the whole rows.
            for cols in [dim / 3..dim, 1..dim / 2 + 1, 0..0] {
                let cw = cols.len();
                for isa in [Isa::Generic, Isa::detect()] {
                    let got = &mut got[..k * cw];
                    aggregate_columns(isa, data, dim, cols.clone(), &idx, w, k, got).unwrap();
                    for (jn, row) in got.chunks_exact(cw.max(1)).enumerate() {
                        for (a, b) in want[jn * dim + cols.start..].iter().zip(row) {
                            assert!((a - b).abs() < 1e-5, "{isa:?} dim {dim} {cols:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn distance_kernels_match_the_reference() {
        let mut st = 9u64;
        let mut rnd = || {
            st = st
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((st >> 40) as f32) / (1u64 << 24) as f32 - 0.5
        };
        let data: [f32; 40 * 803] = core::array::from_fn(|_| rnd());
        let q: [f32; 803] = core::array::from_fn(|_| rnd());
        let idx: [u32; 11] = [3, 0, 39, 7, 7, 12, 25, 1, 30, 38, 2];
        for (dim, n) in [(800, 11), (803, 7), (16, 5), (5, 3), (37, 1), (48, 4)] {
            let (mut want, mut got) = ([0.0f32; 11], [0.0f32; 11]);
            let (data, q, idx) = (&data[..40 * dim], &q[..dim], &idx[..n]);
            squared_distances(data, dim, q, idx, &mut want[..n]).unwrap();
            squared_distances_with(Isa::detect(), data, dim, q, idx, &mut got[..n]).unwrap();
            for (a, b) in want.iter().zip(&got) {
                assert!((a - b).abs() <= 1e-5 * a.max(1.0), "dim {dim}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_indices_are_errors() {
        let data = [0.0; 6];
        let mut out = [0.0; 1];
        assert!(squared_distances(&data, 2, &[0.0; 2], &[3], &mut out).is_err());
        assert!(squared_distances(&data, 0, &[], &[0], &mut out).is_err());
        assert!(aggregate(&data, 2, &[0], &[1.0], 2, &mut [0.0; 4]).is_err());
        let out = &mut [0.0; 2];
        let mut cols = |c| aggregate_columns(Isa::Generic, &data, 2, c, &[0], &[1.0], 1, out);
        assert!(cols(1..3).is_err());
        assert!(cols(0..1).is_err(), "output longer than the columns");
        assert!(cols(0..2).is_ok());
    }
}
