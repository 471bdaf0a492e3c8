//! Kernel micro-benchmarks, every kernel with the reference and the
//! detected instruction set: `cargo bench -p n3net-bench`.
//!
//! Throughput is in multiply-adds (convolution, distances, aggregation) or
//! elements (conversions, relaxation) per second, as criterion reports it.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use n3net_bench::{isas, values};
use n3net_core::kernels::conv::conv2d;
use n3net_core::tensor::Geom;
use n3net_core::{ConvLayer, Weights};

/// The 64→64 3×3 convolution of the DnCNN and embedding stages, on a
/// 16-row band of a 256-column image.
fn conv_64(c: &mut Criterion) {
    let (h, w, ch) = (16, 256, 64);
    let g = Geom::new(h, w, 1, ch).expect("geometry");
    let weight: Vec<f32> = values(ch * ch * 9, 1).iter().map(|v| v * 0.1).collect();
    let bias = values(ch, 2);
    let layer = ConvLayer {
        cin: ch,
        cout: ch,
        ksize: 3,
        relu: true,
        weight: Weights::F32(&weight),
        bias: &bias,
    };
    let input = values(g.len(ch), 3);
    let mut output = vec![0.0; g.len(ch)];
    let mut group = c.benchmark_group("conv3x3_64to64_f32");
    group.throughput(Throughput::Elements((h * w * ch * ch * 9) as u64));
    for isa in isas() {
        group.bench_function(BenchmarkId::from_parameter(isa.name()), |b| {
            b.iter(|| conv2d(isa, &layer, g, &input, &mut output, 0..h).expect("conv"))
        });
    }
    group.finish();
}

criterion_group!(benches, conv_64);
criterion_main!(benches);
