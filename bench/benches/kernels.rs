//! Kernel micro-benchmarks, every kernel with the reference and the
//! detected instruction set: `cargo bench -p n3net-bench`.
//!
//! Throughput is in multiply-adds (convolution, distances, aggregation) or
//! elements (conversions, relaxation) per second, as criterion reports it.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::f16;
use n3net_bench::{isas, values};
use n3net_core::kernels::act::{to_f16, to_f32};
use n3net_core::kernels::conv::conv2d;
use n3net_core::kernels::fixed;
use n3net_core::n3::aggregate::{aggregate_with, squared_distances_with};
use n3net_core::n3::relax::relax_logits_with;
use n3net_core::tensor::Geom;
use n3net_core::{ConvLayer, Weights};

/// Rows, columns and channels of the convolution benchmarks.
const BAND: (usize, usize, usize) = (16, 256, 64);

/// The band's geometry, and the f32 weights and biases of a 64→64 3×3 layer.
fn conv_64_data() -> (Geom, Vec<f32>, Vec<f32>) {
    let (h, w, ch) = BAND;
    let g = Geom::new(h, w, 1, ch).expect("geometry");
    let weight = values(ch * ch * 9, 1).iter().map(|v| v * 0.1).collect();
    (g, weight, values(ch, 2))
}

/// A 64→64 3×3 layer with ReLU over `weight` and `bias`.
fn layer_64<'a>(weight: Weights<'a>, bias: &'a [f32]) -> ConvLayer<'a> {
    let ch = BAND.2;
    ConvLayer {
        cin: ch,
        cout: ch,
        ksize: 3,
        relu: true,
        weight,
        bias,
    }
}

/// The 64→64 3×3 convolution of the DnCNN and embedding stages, on a
/// 16-row band of a 256-column image.
fn conv_64(c: &mut Criterion) {
    let (h, w, ch) = BAND;
    let (g, weight, bias) = conv_64_data();
    let layer = layer_64(Weights::F32(&weight), &bias);
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

/// The same layer in q16 (int16 activations within 1/8 of the range, the
/// size the paper network's activations take).
fn conv_64_q16(c: &mut Criterion) {
    let (h, w, ch) = BAND;
    let (g, weight, bias) = conv_64_data();
    let (mut q, mut scales) = (vec![0i16; weight.len()], vec![0.0f32; ch]);
    fixed::quantize_weights(&weight, ch, 9, &mut q, &mut scales).expect("quantise");
    let layer = layer_64(
        Weights::Q16 {
            values: &q,
            scales: &scales,
        },
        &bias,
    );
    let input: Vec<i16> = values(g.len(ch), 3)
        .iter()
        .map(|v| (v * 8192.0) as i16)
        .collect();
    let mut output = vec![0i16; g.len(ch)];
    let (n32, n64) = fixed::conv2d_scratch(&layer, g);
    let (mut s32, mut s64) = (vec![0i32; n32], vec![0i64; n64]);
    let mut group = c.benchmark_group("conv3x3_64to64_q16");
    group.throughput(Throughput::Elements((h * w * ch * ch * 9) as u64));
    for isa in isas() {
        group.bench_function(BenchmarkId::from_parameter(isa.name()), |b| {
            b.iter(|| {
                let sc = [1.0 / 8192.0, 1.0 / 4096.0];
                fixed::conv2d(
                    isa,
                    &layer,
                    g,
                    &input,
                    &mut output,
                    sc,
                    0..h,
                    &mut s32,
                    &mut s64,
                )
                .expect("conv")
            })
        });
    }
    group.finish();
}

/// One N³ query of the paper's geometry: 224 candidates of 800 values
/// (distances), the relaxation's 7 steps, and 7 weighted sums of the
/// candidates' 800-value input patches (aggregation).
fn n3_query(c: &mut Criterion) {
    let (dim, n, k) = (800, 224, 7);
    let data = values(dim * 300, 4);
    let query = values(dim, 5);
    let indices: Vec<u32> = (0..n as u32).map(|i| (i * 7) % 300).collect();
    let mut dist = vec![0.0f32; n];
    let mut group = c.benchmark_group("n3_distances_224x800");
    group.throughput(Throughput::Elements((n * dim) as u64));
    for isa in isas() {
        group.bench_function(BenchmarkId::from_parameter(isa.name()), |b| {
            b.iter(|| squared_distances_with(isa, &data, dim, &query, &indices, &mut dist))
        });
    }
    group.finish();

    let logits0: Vec<f32> = values(n, 6).iter().map(|v| v * 20.0).collect();
    let (mut logits, mut weights) = (logits0.clone(), vec![0.0f32; k * n]);
    let mut group = c.benchmark_group("n3_relaxation_k7_224");
    group.throughput(Throughput::Elements((k * n) as u64));
    for isa in isas() {
        group.bench_function(BenchmarkId::from_parameter(isa.name()), |b| {
            b.iter(|| {
                logits.copy_from_slice(&logits0);
                relax_logits_with(isa, &mut logits, k, &mut weights)
            })
        });
    }
    group.finish();

    let mut out = vec![0.0f32; k * dim];
    let mut group = c.benchmark_group("n3_aggregation_7x224x800");
    group.throughput(Throughput::Elements((k * n * dim) as u64));
    for isa in isas() {
        group.bench_function(BenchmarkId::from_parameter(isa.name()), |b| {
            b.iter(|| aggregate_with(isa, &data, dim, &indices, &weights, k, &mut out))
        });
    }
    group.finish();
}

/// binary16 ↔ binary32 conversion of a 64 Ki-value buffer.
fn f16_conversions(c: &mut Criterion) {
    let n = 1 << 16;
    let src = values(n, 7);
    let mut half = vec![f16::ZERO; n];
    let mut back = vec![0.0f32; n];
    let mut group = c.benchmark_group("f16_conversion_64k");
    group.throughput(Throughput::Elements(2 * n as u64));
    for isa in isas() {
        group.bench_function(BenchmarkId::from_parameter(isa.name()), |b| {
            b.iter(|| {
                to_f16(isa, &src, &mut half);
                to_f32(isa, &half, &mut back);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, conv_64, conv_64_q16, n3_query, f16_conversions);
criterion_main!(benches);
