//! ONNX import: any bytes give a model or an `ImportError`; an imported
//! model builds its network and runs a small image. (The output is not
//! checked: mutated weights may be finite yet absurd.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use n3net_runtime::denoise::{denoise_plane, NoiseLevel};
use n3net_runtime::onnx;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = onnx::from_bytes(data, "fuzz input") else {
        return;
    };
    model
        .network()
        .expect("an imported model builds its network");
    let (h, w) = (21, 17);
    let image: Vec<f32> = (0..h * w).map(|i| (i % 11) as f32 / 11.0).collect();
    let noise = match model.hyper.in_channels {
        1 => NoiseLevel::Unknown,
        _ => NoiseLevel::Sigma(25.0),
    };
    if let Ok(out) = denoise_plane(&model, &image, h, w, noise) {
        assert_eq!(out.len(), h * w);
    }
});
