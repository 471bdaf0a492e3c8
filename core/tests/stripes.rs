//! Column stripes against the whole-image plan: every stripe of a striped
//! stream gives bit-identical output columns, for any stripe width and any
//! way of pushing rows, in a workspace that depends on the stripe width only.
#![forbid(unsafe_code)]

mod common;

use common::{assert_bits, image, random_spec, to_rows, whole, RandomNet, Rng, Spec};
use n3net_core::exec::stream::{Stream, PUSH_ROWS};
use n3net_core::{ErrorKind, Isa, Network, Plan};

/// The whole-image output of `net`, as rows (`h × cout × w`).
fn whole_rows(net: &Network<'_>, input: &[f32], h: usize, w: usize, isa: Isa) -> Vec<f32> {
    to_rows(&whole(net, input, h, w, isa), net.cout(), h, w)
}

/// Columns `cols` of every row of every channel (`h × c × w` → `h × c × cols.len()`).
fn columns(rows: &[f32], w: usize, cols: std::ops::Range<usize>) -> Vec<f32> {
    rows.chunks_exact(w)
        .flat_map(|r| &r[cols.clone()])
        .copied()
        .collect()
}

/// Runs the stripe with output columns `cols` over `rows` (the whole image,
/// rows layout), pushing `chunk(i)` rows at the i-th push, inside a
/// workspace of exactly `Stream::stripe_workspace_bytes` for `stripe` columns;
/// returns its output rows.
#[allow(clippy::too_many_arguments)]
fn run_stripe(
    net: &Network<'_>,
    rows: &[f32],
    h: usize,
    w: usize,
    stripe: usize,
    cols: std::ops::Range<usize>,
    isa: Isa,
    chunk: &mut dyn FnMut(usize) -> usize,
) -> Vec<f32> {
    let bytes = Stream::stripe_workspace_bytes(net, stripe).expect("bytes");
    let mut ws = vec![0u8; bytes];
    let mut s = Stream::stripe(net, h, w, cols.clone(), isa, &mut ws).expect("stripe");
    let inc = s.input_columns();
    assert!(inc.start <= cols.start && cols.end <= inc.end && inc.end <= w);
    let halo = Stream::max_halo(net).unwrap();
    assert!(inc.len() <= cols.len() + 2 * halo, "input within the bound");
    assert_eq!(s.output_columns(), cols);
    let input = columns(rows, w, inc.clone());
    let (rin, rout) = (net.cin() * inc.len(), net.cout() * cols.len());
    let mut out = vec![0.0; rout * h];
    let (mut got, mut push, mut i) = (0, 0, 0);
    while push < h {
        let n = chunk(i).clamp(1, h - push);
        i += 1;
        s.push_rows(&input[push * rin..(push + n) * rin])
            .expect("push");
        push += n;
        if got < h {
            got += s.pull_rows(&mut out[got * rout..]).expect("pull");
        }
    }
    assert_eq!(got, h);
    out
}

/// Checks the stripes of width `stripe` starting at `starts` (every stripe
/// when `None`) against the whole-image output.
#[allow(clippy::too_many_arguments)]
fn check_stripes(
    net: &Network<'_>,
    h: usize,
    w: usize,
    stripe: usize,
    starts: Option<&[usize]>,
    isa: Isa,
    chunk: &mut dyn FnMut(usize) -> usize,
    seed: u64,
) {
    let input = image(net.cin(), h, w, seed);
    let want = whole_rows(net, &input, h, w, isa);
    let rows = to_rows(&input, net.cin(), h, w);
    let all: Vec<usize> = (0..w).step_by(stripe).collect();
    for &x in starts.unwrap_or(&all) {
        let cols = x..(x + stripe).min(w);
        let got = run_stripe(net, &rows, h, w, stripe, cols.clone(), isa, chunk);
        let exp = columns(&want, w, cols.clone());
        assert_bits(&got, &exp, &format!("{h}x{w} stripe {stripe} at {cols:?}"));
    }
}

/// The first, second, a middle, the next to last and the last stripe of
/// width `s` (the border stripes see the shifted search windows).
fn sample_starts(w: usize, s: usize) -> Vec<usize> {
    let n = w.div_ceil(s);
    let mut v: Vec<usize> = [0, 1, n / 2, n.saturating_sub(2), n - 1]
        .iter()
        .filter(|&&i| i < n)
        .map(|&i| i * s)
        .collect();
    v.dedup();
    v
}

fn spec16(cin: usize) -> Spec {
    let mut spec = Spec::paper(cin);
    spec.features = 16;
    spec
}

#[test]
fn paper_geometry_stripes_match_the_plan_bit_for_bit() {
    // The paper's block geometry (2 blocks, k = 7, patch 10, stride 5,
    // window 15, depths 6 and 3); 64 features at the small sizes, 16 at the
    // large ones to fit the test budget. Stripe widths: the smallest allowed
    // (1 column, sampled places), an odd one, and a large one.
    let isa = Isa::detect();
    let paper = RandomNet::new(Spec::paper(1), 21);
    let small = RandomNet::new(spec16(1), 22);
    for (rn, h, w) in [
        (&paper, 64, 64),
        (&paper, 97, 131),
        (&small, 481, 321),
        (&small, 1024, 700),
    ] {
        let net = rn.network();
        // Every stripe of the small images; the border, next-to-border and
        // middle stripes of the large ones (for time).
        let some = |s: usize| (w > 200).then(|| sample_starts(w, s));
        check_stripes(
            &net,
            h,
            w,
            1,
            Some(&sample_starts(w, 1)),
            isa,
            &mut |_| 1,
            1,
        );
        let odd = some(37);
        check_stripes(&net, h, w, 37, odd.as_deref(), isa, &mut |i| 1 + i % 9, 2);
        let large = 256.min(w - 1);
        check_stripes(&net, h, w, large, None, isa, &mut |_| PUSH_ROWS, 3);
    }
}

#[test]
fn noise_conditioned_stripes_match_the_plan_bit_for_bit() {
    let rn = RandomNet::new(spec16(2), 23);
    let net = rn.network();
    check_stripes(&net, 97, 131, 29, None, Isa::detect(), &mut |_| 5, 4);
}

#[test]
fn reference_kernels_stripe_identically() {
    let mut spec = Spec::paper(1);
    spec.features = 8;
    let rn = RandomNet::new(spec, 24);
    let net = rn.network();
    check_stripes(&net, 83, 161, 40, None, Isa::Generic, &mut |i| 1 + i % 4, 5);
}

#[test]
fn property_any_size_any_stripe() {
    let mut rng = Rng(77);
    let isa = Isa::detect();
    let mut ran = 0;
    for case in 0..200 {
        let spec = random_spec(&mut rng);
        let rn = RandomNet::new(spec, case);
        let net = rn.network();
        let (h, w) = (rng.range(1, 60), rng.range(1, 120));
        if Plan::new(&net, h, w, isa).is_err() {
            continue;
        }
        let stripe = rng.range(1, w);
        let mut prng = Rng(case);
        check_stripes(
            &net,
            h,
            w,
            stripe,
            None,
            isa,
            &mut |_| prng.range(1, 12),
            case,
        );
        ran += 1;
    }
    assert!(ran >= 100, "only {ran} cases could run");
}

#[test]
fn stripe_workspace_depends_on_the_stripe_width_only() {
    let rn = RandomNet::new(Spec::paper(1), 3);
    let net = rn.network();
    let bytes = Stream::stripe_workspace_bytes(&net, 64).unwrap();
    let mut ws = vec![0u8; bytes];
    // Any height, any image width, any place of the stripe: the same bytes.
    for (h, w) in [(64, 64usize), (1000, 640), (100_000, 8000), (12, 1_000_000)] {
        for x in [0, w / 3, w.saturating_sub(64)] {
            let cols = x..(x + 64).min(w);
            Stream::stripe(&net, h, w, cols, Isa::detect(), &mut ws).expect("fits");
        }
    }
    // Narrower than the whole-image stream of a wide image.
    assert!(bytes < Stream::workspace_bytes(&net, 4000).unwrap());
    // Wider stripes need more.
    assert!(Stream::stripe_workspace_bytes(&net, 128).unwrap() > bytes);
}

#[test]
fn stripe_errors_are_specific() {
    let rn = RandomNet::new(spec16(1), 5);
    let net = rn.network();
    let bytes = Stream::stripe_workspace_bytes(&net, 16).unwrap();
    let mut ws = vec![0u8; bytes];
    let bad = |r: std::ops::Range<usize>, ws: &mut [u8]| {
        Stream::stripe(&net, 64, 300, r, Isa::detect(), ws)
            .err()
            .map(|e| e.kind())
    };
    assert_eq!(bad(10..10, &mut ws), Some(ErrorKind::InvalidArgument));
    assert_eq!(bad(290..301, &mut ws), Some(ErrorKind::InvalidArgument));
    // A stripe wider than the workspace was sized for.
    assert_eq!(bad(100..117, &mut ws), Some(ErrorKind::WorkspaceTooSmall));
    let mut s = Stream::stripe(&net, 64, 300, 100..116, Isa::detect(), &mut ws).unwrap();
    let n = s.input_columns().len();
    assert!(n < 300);
    // Rows must be as wide as the input columns, not the image.
    assert_eq!(
        s.push_rows(&vec![0.0; 300]).unwrap_err().kind(),
        ErrorKind::BufferSize
    );
    s.push_rows(&vec![0.5; n]).unwrap();
    let mut out = vec![0.0; 300];
    assert_eq!(
        s.pull_rows(&mut out).unwrap_err().kind(),
        ErrorKind::BufferSize
    );
}
