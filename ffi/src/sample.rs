//! Sample formats of the caller's images and their conversion to and from
//! the network's `[0, 1]` scale.

use crate::error::{Code, Status, N3NET_ERR_INVALID_ARGUMENT, N3NET_ERR_NON_FINITE_INPUT};

/// A sample type of the C API.
pub(crate) trait Sample: Copy {
    /// Checks the samples of a source row: `u16` values must fit the bit
    /// depth (`max = 2^depth − 1`), floats must be finite.
    fn check(row: &[Self], max: u32) -> Status;
    /// Converts a checked row to the network's scale.
    fn load(row: &[Self], max: u32, out: &mut [f32]);
    /// Converts network output back: integers are clamped to `[0, 1]`,
    /// scaled by `max` and rounded to nearest (halves up); floats are copied.
    fn store(row: &[f32], max: u32, out: &mut [Self]);
}

/// `round(clamp(v, 0, 1) · max)`, halves away from zero (the same integer as
/// the runtime's image writer); NaN gives 0.
pub(crate) fn quantize(v: f32, max: f32) -> u32 {
    round_clamped(v.clamp(0.0, 1.0) * max, max)
}

/// `x` clamped to `[0, hi]` (`hi < 2^24`) and rounded to nearest, halves
/// away from zero; NaN gives 0.
pub(crate) fn round_clamped(x: f32, hi: f32) -> u32 {
    let x = x.clamp(0.0, hi);
    let t = x as u32;
    // x − t is exact below 2^24.
    t + u32::from(x - t as f32 >= 0.5)
}

/// `load` and `store` of an integer sample type: `v / max` in, quantised out.
macro_rules! integer_scale {
    ($t:ty) => {
        fn load(row: &[Self], max: u32, out: &mut [f32]) {
            let m = max as f32;
            for (o, &v) in out.iter_mut().zip(row) {
                *o = f32::from(v) / m;
            }
        }

        fn store(row: &[f32], max: u32, out: &mut [Self]) {
            let m = max as f32;
            for (o, &v) in out.iter_mut().zip(row) {
                // At most `max`, which fits the type.
                *o = quantize(v, m) as $t;
            }
        }
    };
}

impl Sample for u8 {
    fn check(_: &[Self], _: u32) -> Status {
        Ok(())
    }

    integer_scale!(u8);
}

impl Sample for u16 {
    fn check(row: &[Self], max: u32) -> Status {
        if row.iter().any(|&v| u32::from(v) > max) {
            return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
        }
        Ok(())
    }

    integer_scale!(u16);
}

impl Sample for f32 {
    fn check(row: &[Self], _: u32) -> Status {
        if !row.iter().all(|v| v.is_finite()) {
            return Err(Code(N3NET_ERR_NON_FINITE_INPUT));
        }
        Ok(())
    }

    fn load(row: &[Self], _: u32, out: &mut [f32]) {
        out.copy_from_slice(row);
    }

    fn store(row: &[f32], _: u32, out: &mut [Self]) {
        out.copy_from_slice(row);
    }
}

/// `2^depth − 1` for a bit depth in `1..=16`.
pub(crate) fn depth_max(depth: u32) -> Status<u32> {
    if !(1..=16).contains(&depth) {
        return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
    }
    Ok((1 << depth) - 1)
}
