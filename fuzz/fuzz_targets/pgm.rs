//! The PGM reader: any bytes give an image or an `ImageError`, the same
//! whole and row by row; an image has samples in `[0, 1]`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(img) = n3net_fuzz::read_both_ways("pgm", data) {
        assert_eq!(img.channels, 1);
        assert!(img.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }
});
