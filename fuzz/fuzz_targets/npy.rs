//! The `.npy` readers: any bytes give an image or an `ImageError` (the same
//! whole and row by row, finite), and an array or an `ImageError`; an image
//! holds the values the array reader returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n3net_fuzz::{read_both_ways, with_file};
use n3net_runtime::image_io::read_npy_f32;

fuzz_target!(|data: &[u8]| {
    let array = with_file("npy", data, read_npy_f32);
    if let Ok((shape, values)) = &array {
        assert_eq!(shape.iter().product::<usize>(), values.len());
    }
    if let Some(img) = read_both_ways("npy", data) {
        let (_, values) = array.expect("an image is an array");
        assert!(img.data == values, "image and array readers disagree");
    }
});
