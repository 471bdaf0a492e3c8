//! Throughput of the 64→64 3×3 convolution per instruction set, f32 and q16
//! (int16 weights and activations), in one run:
//! `cargo run --release -p n3net-core --example conv_speed`.

use n3net_core::kernels::conv::conv2d;
use n3net_core::kernels::fixed;
use n3net_core::tensor::Geom;
use n3net_core::{ConvLayer, Isa, Weights};

mod timing;

/// Best of five timings of `f`, in GMAC/s for `macs` multiply-adds.
fn gmacs(macs: f64, f: impl FnMut()) -> f64 {
    macs / timing::best_of_five(f) / 1e9
}

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

    let mut values = vec![0i16; weight.len()];
    let mut scales = vec![0f32; c];
    fixed::quantize_weights(&weight, c, 9, &mut values, &mut scales).expect("quantize");
    let q16 = ConvLayer {
        weight: Weights::Q16 {
            values: &values,
            scales: &scales,
        },
        ..layer
    };
    // Activations over the whole int16 range (the worst case: the kernels
    // then widen their 32-bit sums every input channel or two) and over an
    // eighth of it (about what the paper network's layers see).
    let sy = 4.0 / 32767.0;
    let q_in = |sx: f32| -> Vec<i16> { input.iter().map(|&v| fixed::quantize(v, sx)).collect() };
    let (full, eighth) = (0.8 / 32767.0, 6.4 / 32767.0);
    let (qfull, qeighth) = (q_in(full), q_in(eighth));
    let mut qout = vec![0i16; g.len(c)];
    let (n32, n64) = fixed::conv2d_scratch(&q16, g);
    let (mut s32, mut s64) = (vec![0i32; n32], vec![0i64; n64]);

    let macs = (h * w * c * c * 9) as f64;
    println!(
        "{c}→{c} 3×3 convolution, {h}×{w}, best of 5 (q16: activations within 1/8 of the range):"
    );
    let mut base = None;
    for isa in [Isa::Generic, Isa::detect()] {
        let f = gmacs(macs, || {
            conv2d(isa, &layer, g, &input, &mut output, 0..h).expect("conv")
        });
        let mut q = [0.0; 2];
        for (qv, (x, sx)) in q.iter_mut().zip([(&qeighth, eighth), (&qfull, full)]) {
            *qv = gmacs(macs, || {
                fixed::conv2d(
                    isa,
                    &q16,
                    g,
                    x,
                    &mut qout,
                    [sx, sy],
                    0..h,
                    &mut s32,
                    &mut s64,
                )
                .expect("q16 conv")
            });
        }
        let ratio = base.map_or(1.0, |b: f64| f / b);
        base.get_or_insert(f);
        println!(
            "{:<10} f32 {f:>6.2} GMAC/s ({ratio:.2}× generic)   q16 {:>6.2} GMAC/s ({:.2}× f32), \
             full-range input {:>6.2} GMAC/s ({:.2}× f32)",
            isa.name(),
            q[0],
            q[0] / f,
            q[1],
            q[1] / f
        );
    }
}
