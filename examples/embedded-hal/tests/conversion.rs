//! The 8-bit conversions against their definitions in `std`.
#![forbid(unsafe_code)]

use n3net_embedded_hal_example::{to_u8, to_unit};

/// `round(clamp(y, 0, 1) · 255)` with `std`'s `f32::round`.
fn rounded(y: f32) -> u8 {
    (y.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[test]
fn every_pixel_round_trips() {
    for p in 0..=255u8 {
        assert_eq!(to_u8(to_unit(p)), p);
    }
}

#[test]
fn to_u8_rounds_like_std() {
    let edges = [
        0.5 / 255.0,
        0.49999997 / 255.0,
        254.5 / 255.0,
        1.0,
        1.0 + f32::EPSILON,
        -0.0,
        -1e-9,
        f32::MIN_POSITIVE,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let halves = (0..255).map(|k| (k as f32 + 0.5) / 255.0);
    // Every 4099th float in [-0.01, 1.01]: about 260 000 values.
    let (lo, hi) = ((-0.01f32).to_bits(), 1.01f32.to_bits());
    let negatives = ((-0.0f32).to_bits()..=lo).step_by(4099).map(f32::from_bits);
    let positives = (0..=hi).step_by(4099).map(f32::from_bits);
    for y in edges
        .into_iter()
        .chain(halves)
        .chain(negatives)
        .chain(positives)
    {
        assert_eq!(to_u8(y), rounded(y), "{y:e}");
    }
    assert_eq!(to_u8(f32::NAN), 0);
}
