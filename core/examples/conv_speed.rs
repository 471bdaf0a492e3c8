//! Throughput of the 64→64 3×3 convolution per instruction set, in one run:
//! `cargo run --release -p n3net-core --example conv_speed`.

use std::time::Instant;

use n3net_core::kernels::conv::conv2d;
use n3net_core::tensor::Geom;
use n3net_core::{ConvLayer, Isa, Weights};

fn main() {
    let (h, w, c) = (128, 256, 64);
    let g = Geom::new(h, w, 1, c).expect("geometry");
    let weight: Vec<f32> = (0..c * c * 9)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-4)
        .collect();
    let bias = vec![0.01; c];
    let layer = ConvLayer {
        cin: c,
        cout: c,
        ksize: 3,
        relu: true,
        weight: Weights::F32(&weight),
        bias: &bias,
    };
    let input: Vec<f32> = (0..g.len(c)).map(|i| (i % 17) as f32 * 0.05).collect();
    let mut output = vec![0.0; g.len(c)];
    let macs = (h * w * c * c * 9) as f64;
    let mut base = None;
    for isa in [Isa::Generic, Isa::detect()] {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            conv2d(isa, &layer, g, &input, &mut output, 0..h).expect("conv");
            best = best.min(t.elapsed().as_secs_f64());
        }
        let gmacs = macs / best / 1e9;
        let ratio = base.map_or(1.0, |b: f64| gmacs / b);
        base.get_or_insert(gmacs);
        println!(
            "{:<10} {:>7.2} GMAC/s  ({ratio:.2}× generic)",
            isa.name(),
            gmacs
        );
    }
}
