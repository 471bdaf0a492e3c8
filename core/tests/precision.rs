//! f16 and q16 execution: close to f32, the same bits however the image is
//! streamed, q16 the same bits with every kernel, a golden checksum of a
//! q16 fixture (run on x86-64 and, in CI, on aarch64 under qemu), and the
//! workspace of the 16-bit precisions.
#![forbid(unsafe_code)]

mod common;

use common::{image, to_rows, RandomNet, Rng, Spec};
use n3net_core::blob::crc32;
use n3net_core::exec::stream::Stream;
use n3net_core::{Isa, Network, Precision};

/// A paper-shaped network, narrow enough for a debug-mode test.
fn spec() -> Spec {
    let mut s = Spec::paper(1);
    s.features = 12;
    s.dncnn_depth = 3;
    s.embed_depth = 2;
    s.n3.window = 7;
    s
}

/// Streams `input` (planes) through `net` with pushes of `step` rows; stripes
/// of `stripe` columns when given.
fn stream(
    net: &Network<'_>,
    input: &[f32],
    h: usize,
    w: usize,
    step: usize,
    stripe: Option<usize>,
    isa: Isa,
) -> Vec<f32> {
    let (cin, cout) = (net.cin(), net.cout());
    let rows = to_rows(input, cin, h, w);
    let mut out = vec![0.0; cout * h * w];
    let cols = stripe.unwrap_or(w);
    let mut ws = vec![0u8; Stream::stripe_workspace_bytes(net, cols).unwrap()];
    for x0 in (0..w).step_by(cols) {
        let c = x0..(x0 + cols).min(w);
        let mut s = if stripe.is_some() {
            Stream::stripe(net, h, w, c.clone(), isa, &mut ws).unwrap()
        } else {
            Stream::new(net, h, w, isa, &mut ws).unwrap()
        };
        let ic = s.input_columns();
        let mut got = Vec::new();
        let mut buf = vec![0.0; cout * c.len() * h];
        for y0 in (0..h).step_by(step) {
            for y in y0..(y0 + step).min(h) {
                for ch in 0..cin {
                    let r = &rows[(y * cin + ch) * w..][..w];
                    got.extend_from_slice(&r[ic.clone()]);
                }
            }
            s.push_rows(&got).unwrap();
            got.clear();
            let n = s.rows_pulled();
            let k = s.pull_rows(&mut buf[n * cout * c.len()..]).unwrap_or(0);
            let _ = k;
        }
        while s.rows_pulled() < h {
            let n = s.rows_pulled();
            s.pull_rows(&mut buf[n * cout * c.len()..]).unwrap();
        }
        for y in 0..h {
            for ch in 0..cout {
                let src = &buf[(y * cout + ch) * c.len()..][..c.len()];
                out[(ch * h + y) * w + c.start..][..c.len()].copy_from_slice(src);
            }
        }
    }
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn f16_and_q16_follow_f32() {
    let (h, w) = (41, 47);
    let base = RandomNet::new(spec(), 11);
    let calib = image(1, h, w, 5);
    let input = image(1, h, w, 6);
    let f32_out = stream(&base.network(), &input, h, w, h, None, Isa::detect());
    let peak = f32_out.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (p, tol) in [(Precision::F16, 3e-3), (Precision::Q16, 5e-4)] {
        let q = base.quantized(p, &calib, h, w);
        let net = q.network(&base);
        assert_eq!(net.precision(), p);
        let out = stream(&net, &input, h, w, h, None, Isa::detect());
        let d = max_diff(&out, &f32_out);
        assert!(d <= tol * peak, "{p:?}: max diff {d} (peak {peak})");
        assert!(d > 0.0, "{p:?} must round somewhere");
    }
}

#[test]
fn sixteen_bit_streams_are_bit_identical_however_pushed_and_striped() {
    let (h, w) = (37, 53);
    let base = RandomNet::new(spec(), 21);
    let input = image(1, h, w, 7);
    for p in [Precision::F16, Precision::Q16] {
        let q = base.quantized(p, &input, h, w);
        let net = q.network(&base);
        let isa = Isa::detect();
        let whole = stream(&net, &input, h, w, h, None, isa);
        for (step, stripe) in [
            (1, None),
            (7, None),
            (5, Some(1)),
            (h, Some(19)),
            (3, Some(32)),
        ] {
            let got = stream(&net, &input, h, w, step, stripe, isa);
            assert!(
                same_bits(&got, &whole),
                "{p:?} step {step} stripe {stripe:?}"
            );
        }
    }
}

#[test]
fn q16_is_the_same_bits_with_every_kernel() {
    let (h, w) = (29, 33);
    let base = RandomNet::new(spec(), 31);
    let input = image(1, h, w, 8);
    let q = base.quantized(Precision::Q16, &input, h, w);
    let net = q.network(&base);
    let a = stream(&net, &input, h, w, h, None, Isa::detect());
    let b = stream(&net, &input, h, w, h, None, Isa::Generic);
    assert!(same_bits(&a, &b));
}

#[test]
fn random_q16_networks_stream_identically() {
    let mut rng = Rng(77);
    for case in 0..30 {
        let spec = common::random_spec(&mut rng);
        let p = spec.n3.patch;
        let (h, w) = (rng.range(p + 2, 24), rng.range(p + 2, 24));
        let base = RandomNet::new(spec, case);
        let input = image(spec.cin, h, w, case + 100);
        let q = base.quantized(Precision::Q16, &input, h, w);
        let net = q.network(&base);
        let whole = stream(&net, &input, h, w, h, None, Isa::Generic);
        let stripe = rng.range(1, w);
        let got = stream(&net, &input, h, w, 1, Some(stripe), Isa::detect());
        assert!(
            same_bits(&got, &whole),
            "case {case}: {spec:?} {h}x{w} stripe {stripe}"
        );
    }
}

/// The q16 output of a fixed network and image, as the CRC-32 of its f32
/// bits. Every step is integer or IEEE-exact, so the value is the same on
/// every target; CI runs this test on aarch64 under qemu too.
#[test]
fn q16_golden_checksum() {
    let (h, w) = (40, 36);
    let base = RandomNet::new(spec(), 2024);
    let calib = image(1, h, w, 1);
    let input = image(1, h, w, 2);
    let q = base.quantized(Precision::Q16, &calib, h, w);
    let net = q.network(&base);
    let out = stream(&net, &input, h, w, 4, Some(20), Isa::detect());
    let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(
        crc32(&bytes),
        GOLDEN,
        "q16 output changed: {:#010x}",
        crc32(&bytes)
    );
}

const GOLDEN: u32 = 0x2f84_66a8;

#[test]
fn sixteen_bit_workspaces_are_about_half() {
    let base = RandomNet::new(Spec::paper(1), 3);
    let (h, w) = (24, 24);
    let input = image(1, h, w, 4);
    let f = Stream::workspace_bytes(&base.network(), 640).unwrap() as f64;
    for p in [Precision::F16, Precision::Q16] {
        let q = base.quantized(p, &input, h, w);
        let b = Stream::workspace_bytes(&q.network(&base), 640).unwrap() as f64;
        let r = b / f;
        assert!((0.45..0.56).contains(&r), "{p:?}: {b} / {f} = {r}");
    }
}
