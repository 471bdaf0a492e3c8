//! Distances to, and weighted aggregation of, the rows of a data matrix
//! selected by an index set.
//!
//! `data` is a row-major matrix of `dim`-long rows (image patches in the N³
//! block; points or descriptors elsewhere).

use crate::error::{Error, ErrorKind, Result};

fn check_indices(data: &[f32], dim: usize, indices: &[u32]) -> Result<()> {
    let rows = if dim == 0 { 0 } else { data.len() / dim };
    if dim == 0 || indices.iter().any(|&i| i as usize >= rows) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "index outside the data matrix",
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

/// `out[c] = ‖query − data[indices[c]]‖²` for every index.
pub fn squared_distances(
    data: &[f32],
    dim: usize,
    query: &[f32],
    indices: &[u32],
    out: &mut [f32],
) -> Result<()> {
    check_indices(data, dim, indices)?;
    if query.len() != dim || out.len() != indices.len() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "distances: query or output length",
        ));
    }
    for (o, &i) in out.iter_mut().zip(indices) {
        let row = &data[i as usize * dim..][..dim];
        *o = squared_distance(query, row);
    }
    Ok(())
}

/// `out[j] = Σ_c weights[j][c] · data[indices[c]]` for `j < k`: `k` weighted
/// sums of the indexed rows, written one after the other (`k · dim` values).
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
    check_indices(data, dim, indices)?;
    let n = indices.len();
    if k.checked_mul(n) != Some(weights.len()) || k.checked_mul(dim) != Some(out.len()) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "aggregate: weights or output length",
        ));
    }
    out.fill(0.0);
    for (c, &i) in indices.iter().enumerate() {
        let row = &data[i as usize * dim..][..dim];
        for (j, z) in out.chunks_exact_mut(dim).enumerate() {
            let w = weights[j * n + c];
            for (zv, xv) in z.iter_mut().zip(row) {
                *zv += w * *xv;
            }
        }
    }
    Ok(())
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
    fn bad_indices_are_errors() {
        let data = [0.0; 6];
        let mut out = [0.0; 1];
        assert!(squared_distances(&data, 2, &[0.0; 2], &[3], &mut out).is_err());
        assert!(squared_distances(&data, 0, &[], &[0], &mut out).is_err());
        assert!(aggregate(&data, 2, &[0], &[1.0], 2, &mut [0.0; 4]).is_err());
    }
}
