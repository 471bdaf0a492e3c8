//! The streaming executor against the whole-image plan: bit-identical output
//! for every way of pushing rows, bounded memory, latency and errors.
#![forbid(unsafe_code)]

mod common;

use common::{assert_bits, image, random_spec, to_rows, whole, RandomNet, Rng, Spec};
use n3net_core::exec::stream::{Stream, PUSH_ROWS};
use n3net_core::model::{MAX_LAYERS, MAX_N3_BLOCKS};
use n3net_core::{Cnn, ConvLayer, ErrorKind, Isa, Network, Parallel, Plan, Precision, Weights};

/// Streams `input` (rows layout) pushing `chunk(i)` rows at the i-th push and
/// pulling after every push; returns the output rows.
fn streamed(
    net: &Network<'_>,
    rows: &[f32],
    h: usize,
    w: usize,
    isa: Isa,
    chunk: &mut dyn FnMut(usize) -> usize,
) -> Vec<f32> {
    let mut ws = vec![0u8; Stream::workspace_bytes(net, w).expect("bytes")];
    let mut s = Stream::new(net, h, w, isa, &mut ws).expect("stream");
    let (rin, rout) = (net.cin() * w, net.cout() * w);
    // Exactly the rows `rows_needed` promises are final after each push.
    let needed: Vec<usize> = (0..h).map(|r| s.rows_needed(r)).collect();
    assert!(needed.windows(2).all(|p| p[0] <= p[1]), "monotone");
    let mut out = vec![0.0; rout * h];
    let mut got = 0;
    let mut push = 0;
    let mut i = 0;
    while push < h {
        let n = chunk(i).clamp(1, h - push);
        i += 1;
        s.push_rows(&rows[push * rin..(push + n) * rin])
            .expect("push");
        push += n;
        if got < h {
            got += s.pull_rows(&mut out[got * rout..]).expect("pull");
        }
        let want = if push == h {
            h
        } else {
            needed.partition_point(|&k| k <= push)
        };
        assert_eq!(got, want, "final rows after {push} pushed");
    }
    assert_eq!(got, h, "every row final after the last push");
    assert_eq!(s.pending_rows(), 0);
    out
}

fn check_sizes(spec: Spec, sizes: &[(usize, usize)], chunks: &[usize]) {
    let rn = RandomNet::new(spec, 11);
    let net = rn.network();
    let isa = Isa::detect();
    for &(h, w) in sizes {
        let input = image(net.cin(), h, w, (h * 1000 + w) as u64);
        let want = to_rows(&whole(&net, &input, h, w, isa), net.cout(), h, w);
        let rows = to_rows(&input, net.cin(), h, w);
        for &c in chunks {
            let got = streamed(&net, &rows, h, w, isa, &mut |_| c);
            assert_bits(&got, &want, &format!("{h}x{w} cin {} by {c}", net.cin()));
        }
    }
}

#[test]
fn paper_model_matches_the_plan_bit_for_bit() {
    check_sizes(
        Spec::paper(1),
        &[(64, 64), (97, 131), (481, 321)],
        &[1, 7, PUSH_ROWS],
    );
}

#[test]
fn noise_conditioned_model_matches_the_plan_bit_for_bit() {
    check_sizes(Spec::paper(2), &[(64, 64), (97, 131)], &[1, 7, PUSH_ROWS]);
    // Smaller CNNs (16 features) keep the large sizes affordable at -j 1.
    let mut spec = Spec::paper(2);
    spec.features = 16;
    check_sizes(spec, &[(481, 321)], &[1, 7, PUSH_ROWS]);
}

#[test]
fn large_image_matches_the_plan_bit_for_bit() {
    // 1024×700 with the paper's block geometry (2 blocks, k = 7, patch 10,
    // stride 5, window 15, depths 6 and 3) but 16 CNN features instead of 64,
    // so that three streamed runs and the plan fit the test budget.
    let mut spec = Spec::paper(1);
    spec.features = 16;
    check_sizes(spec, &[(1024, 700)], &[1, 7, PUSH_ROWS]);
}

/// The full paper model at 1024×700 (about three minutes on one core):
/// `cargo test --release -p n3net-core --test stream -- --ignored`.
#[test]
#[ignore]
fn large_image_paper_model_matches_the_plan_bit_for_bit() {
    check_sizes(Spec::paper(1), &[(1024, 700)], &[1, 7, PUSH_ROWS]);
}

#[test]
fn reference_kernels_stream_identically() {
    let mut spec = Spec::paper(1);
    spec.features = 8;
    let rn = RandomNet::new(spec, 5);
    let net = rn.network();
    let (h, w) = (83, 61);
    let input = image(1, h, w, 9);
    let want = whole(&net, &input, h, w, Isa::Generic);
    let got = streamed(&net, &input, h, w, Isa::Generic, &mut |i| 1 + i % 5);
    assert_bits(&got, &want, "generic");
}

/// Scoped OS threads, `threads` of them at most: each `join` runs `b` on a
/// new thread and `a` on the calling one.
struct Scoped {
    threads: usize,
}

impl Parallel for Scoped {
    fn threads(&self) -> usize {
        self.threads
    }
    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
        std::thread::scope(|s| {
            s.spawn(b);
            a();
        });
    }
}

/// Streams `rows` with each count of lent threads and with none, on every
/// instruction set, and checks that the bits agree.
fn threads_match(net: &Network<'_>, rows: &[f32], (h, w): (usize, usize), counts: &[usize]) {
    let lane_bytes = Stream::lane_workspace_bytes(net, w).expect("lane bytes");
    for isa in [Isa::Generic, Isa::detect()] {
        let want = streamed(net, rows, h, w, isa, &mut |_| 3);
        for &threads in counts {
            let what = format!("{:?}, {threads} threads, {isa:?}", net.precision());
            let par = Scoped { threads };
            let mut lane = vec![0xa5u8; lane_bytes];
            let mut ws = vec![0u8; Stream::workspace_bytes(net, w).expect("bytes")];
            let mut s = Stream::new(net, h, w, isa, &mut ws).expect("stream");
            s.set_parallel(&par, &mut lane).expect("lane");
            let mut got = vec![0.0; h * w];
            let mut n = 0;
            for r in rows.chunks(5 * w) {
                s.push_rows(r).expect("push");
                n += s.pull_rows(&mut got[n * w..]).expect("pull");
            }
            assert_eq!(n, h);
            assert_bits(&got, &want, &what);
        }
    }
}

#[test]
fn activation_peaks_are_tracked_only_when_asked() {
    let rn = RandomNet::new(Spec::paper(1), 8);
    let net = rn.network();
    let (h, w) = (30, 27);
    let rows = to_rows(&image(1, h, w, 9), 1, h, w);
    let mut outs = Vec::new();
    for track in [false, true] {
        let mut ws = vec![0u8; Stream::workspace_bytes(&net, w).expect("bytes")];
        let mut s = Stream::new(&net, h, w, Isa::detect(), &mut ws).expect("stream");
        if track {
            s.track_activation_peaks();
        }
        let mut out = vec![0.0; h * w];
        s.push_rows(&rows).expect("push");
        assert_eq!(s.pull_rows(&mut out).expect("pull"), h);
        let peaks = s.activation_peaks();
        assert_eq!(peaks.iter().all(|&p| p > 0.0), track, "{peaks:?}");
        assert!(peaks.iter().all(|&p| p == 0.0) || track);
        outs.push(out);
    }
    assert_bits(&outs[0], &outs[1], "tracking changes nothing else");
}

#[test]
fn lent_threads_split_blocks_of_any_shape() {
    // Two threads share each pair of queries by channels (an odd count
    // halves unevenly) or, with one channel, by neighbours (k odd or even).
    for (channels, k) in [(1, 7), (1, 2), (3, 4), (2, 1)] {
        let mut spec = Spec::paper(1);
        spec.features = 16;
        spec.channels = channels;
        spec.n3.k = k;
        let rn = RandomNet::new(spec, 5);
        let (h, w) = (41, 37);
        let input = image(1, h, w, 6);
        let rows = to_rows(&input, 1, h, w);
        let q16 = rn.quantized(Precision::Q16, &input, h, w);
        for net in [rn.network(), q16.network(&rn)] {
            threads_match(&net, &rows, (h, w), &[2]);
        }
    }
}

#[test]
fn lent_threads_give_the_same_bits() {
    // The paper's block geometry with 32 CNN features: enough output channels
    // for f32 rows to be split at two levels (7 threads: 13 + 19, then 9 + 10).
    let mut spec = Spec::paper(1);
    spec.features = 32;
    let rn = RandomNet::new(spec, 3);
    let (h, w) = (70, 93);
    let input = image(1, h, w, 4);
    let rows = to_rows(&input, 1, h, w);
    let f16 = rn.quantized(Precision::F16, &input, h, w);
    let q16 = rn.quantized(Precision::Q16, &input, h, w);
    let nets = [rn.network(), f16.network(&rn), q16.network(&rn)];
    for net in &nets {
        threads_match(net, &rows, (h, w), &[2, 3, 4, 7]);
        // A stripe with threads gives the same columns; its lane is exactly
        // `lane_workspace_bytes` of its column count, and one byte short is
        // refused.
        let par = Scoped { threads: 2 };
        let want = streamed(net, &rows, h, w, Isa::detect(), &mut |_| 3);
        let cols = 20..61;
        let lane_bytes = Stream::lane_workspace_bytes(net, cols.len()).expect("lane bytes");
        let mut ws = vec![0u8; Stream::stripe_workspace_bytes(net, cols.len()).expect("bytes")];
        let mut short = vec![0u8; lane_bytes - 1];
        let isa = Isa::detect();
        let mut s = Stream::stripe(net, h, w, cols.clone(), isa, &mut ws).expect("stripe");
        let err = s.set_parallel(&par, &mut short).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WorkspaceTooSmall);
        let mut lane = vec![0xa5u8; lane_bytes];
        s.set_parallel(&par, &mut lane).expect("lane");
        let inc = s.input_columns();
        let mut got = vec![0.0; h * cols.len()];
        let mut n = 0;
        for r in rows.chunks(w) {
            s.push_rows(&r[inc.clone()]).expect("push");
            n += s.pull_rows(&mut got[n * cols.len()..]).expect("pull");
        }
        assert_eq!(n, h);
        let want: Vec<f32> = want
            .chunks(w)
            .flat_map(|r| r[cols.clone()].to_vec())
            .collect();
        assert_bits(&got, &want, &format!("{:?} stripe", net.precision()));
    }
}

#[test]
fn property_any_size_any_pushes() {
    let mut rng = Rng(2024);
    let isa = Isa::detect();
    let mut ran = 0;
    for case in 0..200 {
        let spec = random_spec(&mut rng);
        let rn = RandomNet::new(spec, case);
        let net = rn.network();
        let (h, w) = match case % 6 {
            0 => (1, rng.range(1, 40)),
            1 => (rng.range(1, 40), 1),
            2 => (rng.range(1, spec.n3.patch), rng.range(1, 50)),
            3 => (rng.range(60, 240), rng.range(1, 24)),
            _ => (rng.range(1, 70), rng.range(1, 70)),
        };
        let what = format!("case {case} {h}x{w} {spec:?}");
        let plan = Plan::new(&net, h, w, isa);
        let bytes = Stream::workspace_bytes(&net, w);
        let mut ws = vec![0u8; *bytes.as_ref().unwrap_or(&0)];
        let stream = Stream::new(&net, h, w, isa, &mut ws);
        match (&plan, &stream) {
            (Err(a), Err(b)) => {
                assert_eq!(a.kind(), b.kind(), "{what}");
                continue;
            }
            (Ok(_), Ok(_)) => {}
            _ => panic!("{what}: plan {:?} vs stream {:?}", plan.err(), stream.err()),
        }
        drop(stream);
        let input = image(net.cin(), h, w, case + 100);
        let want = to_rows(&whole(&net, &input, h, w, isa), net.cout(), h, w);
        let rows = to_rows(&input, net.cin(), h, w);
        let mut prng = Rng(case);
        let got = streamed(&net, &rows, h, w, isa, &mut |_| prng.range(1, 12));
        assert_bits(&got, &want, &what);
        ran += 1;
    }
    assert!(ran >= 80, "only {ran} cases could run");
}

#[test]
fn workspace_does_not_grow_with_height() {
    let rn = RandomNet::new(Spec::paper(1), 3);
    let net = rn.network();
    let w = 96;
    // The query does not even take the height; a stream of any height runs
    // inside exactly that many bytes.
    let bytes = Stream::workspace_bytes(&net, w).unwrap();
    let mut ws = vec![0u8; bytes];
    for h in [64, 1000, 100_000] {
        let s = Stream::new(&net, h, w, Isa::detect(), &mut ws).expect("fits");
        assert!(s.latency_rows() > 0);
    }
    // Any alignment of the caller's buffer works with the queried size.
    let mut big = vec![0u8; bytes + 3];
    for shift in 0..4 {
        Stream::new(&net, 64, w, Isa::detect(), &mut big[shift..shift + bytes]).expect("aligned");
    }
    // The whole-image plan grows with the height; the stream is smaller
    // already at 1000 rows.
    let plan = Plan::new(&net, 1000, w, Isa::detect()).unwrap();
    assert!(plan.workspace_bytes() > bytes);
    // And a tall image really runs to the end in it (small CNNs for time).
    let mut spec = Spec::paper(1);
    spec.features = 4;
    let small = RandomNet::new(spec, 4);
    let net = small.network();
    let (h, w) = (3000, 40);
    let input = image(1, h, w, 1);
    let want = whole(&net, &input, h, w, Isa::detect());
    let got = streamed(&net, &input, h, w, Isa::detect(), &mut |i| {
        [1, 64, 13][i % 3]
    });
    assert_bits(&got, &want, "3000 rows");
}

#[test]
fn the_largest_network_streams_like_the_plan() {
    // MAX_N3_BLOCKS blocks and MAX_LAYERS convolutions: five DnCNN stages
    // of 16 and eight embedding and temperature CNNs of 6.
    let mut spec = Spec::paper(1);
    spec.features = 4;
    spec.blocks = MAX_N3_BLOCKS;
    spec.dncnn_depth = 16;
    spec.embed_depth = 6;
    let rn = RandomNet::new(spec, 3);
    assert_eq!(rn.network().layers().len(), MAX_LAYERS);
    check_sizes(spec, &[(40, 48)], &[PUSH_ROWS]);
}

#[test]
fn a_network_holds_at_most_max_layers() {
    let (w, b) = ([0.5f32; 9], [0.0f32]);
    let one = ConvLayer {
        cin: 1,
        cout: 1,
        ksize: 3,
        relu: false,
        weight: Weights::F32(&w),
        bias: &b,
    };
    let layers = [one; MAX_LAYERS + 1];
    let deepest = Cnn::new(&layers[..MAX_LAYERS], true).expect("cnn");
    assert!(Network::new(&[deepest], &[]).is_ok());
    let deeper = Cnn::new(&layers, true).expect("cnn");
    let err = Network::new(&[deeper], &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidModel);
}

fn tiny() -> RandomNet {
    let mut spec = Spec::paper(1);
    spec.features = 4;
    RandomNet::new(spec, 8)
}

#[test]
fn errors_are_specific_and_consume_nothing() {
    let rn = tiny();
    let net = rn.network();
    let (h, w) = (600, 30);
    let bytes = Stream::workspace_bytes(&net, w).unwrap();
    let mut short = vec![0u8; bytes - 1];
    // Short by one byte: the slack for alignment may absorb it only if the
    // buffer happens to be aligned; one cache line less never fits.
    let mut shorter = vec![0u8; bytes - 64];
    let e = Stream::new(&net, h, w, Isa::detect(), &mut shorter)
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::WorkspaceTooSmall);
    let e = Stream::new(&net, h, w, Isa::detect(), &mut short)
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::WorkspaceTooSmall);
    assert_eq!(
        Stream::new(&net, 0, w, Isa::detect(), &mut vec![0u8; bytes])
            .err()
            .unwrap()
            .kind(),
        ErrorKind::ImageTooSmall
    );
    assert_eq!(
        Stream::workspace_bytes(&net, 9).unwrap_err().kind(),
        ErrorKind::ImageTooSmall
    );

    let mut ws = vec![0u8; bytes];
    let mut s = Stream::new(&net, h, w, Isa::detect(), &mut ws).unwrap();
    let row = vec![0.5f32; w];
    let mut out = vec![0.0f32; w * h];
    // Wrong lengths.
    assert_eq!(
        s.push_rows(&row[..w - 1]).unwrap_err().kind(),
        ErrorKind::BufferSize
    );
    assert_eq!(
        s.pull_rows(&mut out[..w - 1]).unwrap_err().kind(),
        ErrorKind::BufferSize
    );
    assert_eq!(
        s.pull_rows(&mut out[..w + 1]).unwrap_err().kind(),
        ErrorKind::BufferSize
    );
    assert_eq!(
        s.pull_rows(&mut []).unwrap_err().kind(),
        ErrorKind::BufferSize
    );
    // Non-finite input.
    let mut bad = row.clone();
    bad[3] = f32::NAN;
    assert_eq!(
        s.push_rows(&bad).unwrap_err().kind(),
        ErrorKind::NonFiniteInput
    );
    // Nothing is final yet: pulling returns 0 rows.
    s.push_rows(&row).unwrap();
    assert_eq!(s.pull_rows(&mut out).unwrap(), 0);
    assert_eq!(s.rows_pushed(), 1);
    // Too many rows at once would leave too many final rows waiting.
    let all = vec![0.5f32; w * (h - 1)];
    assert_eq!(s.push_rows(&all).unwrap_err().kind(), ErrorKind::StreamFull);
    assert_eq!(s.rows_pushed(), 1, "a failed push consumes nothing");
    // Pushing without pulling fills the stream, then pulling frees it.
    let mut pushed = 1;
    let err = loop {
        match s.push_rows(&row) {
            Ok(()) => pushed += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::StreamFull);
    let pending = s.pending_rows();
    assert!(pending <= s.max_pending_rows() && pending + 10 > s.max_pending_rows());
    let mut got = s.pull_rows(&mut out).unwrap();
    assert_eq!(got, pending);
    while pushed < h {
        let n = PUSH_ROWS.min(h - pushed);
        s.push_rows(&vec![0.5f32; n * w]).unwrap();
        pushed += n;
        got += s.pull_rows(&mut out[got * w..]).unwrap();
    }
    assert_eq!(got, h);
    // Past the end.
    assert_eq!(s.push_rows(&row).unwrap_err().kind(), ErrorKind::PastEnd);
    assert_eq!(s.pull_rows(&mut out).unwrap(), 0);
}

#[test]
fn rows_become_final_exactly_at_the_documented_latency() {
    for (spec, h, w) in [
        (Spec::paper(1), 160, 48),
        (
            Spec {
                features: 4,
                ..Spec::paper(2)
            },
            97,
            31,
        ),
    ] {
        let rn = RandomNet::new(spec, 6);
        let net = rn.network();
        let mut ws = vec![0u8; Stream::workspace_bytes(&net, w).unwrap()];
        let mut s = Stream::new(&net, h, w, Isa::detect(), &mut ws).unwrap();
        let lat = s.latency_rows();
        assert_eq!(Stream::latency_for(&net, h).unwrap(), lat);
        let needed: Vec<usize> = (0..h).map(|r| s.rows_needed(r)).collect();
        for (r, &n) in needed.iter().enumerate() {
            assert!(n <= (r + 1 + lat).min(h), "row {r}");
        }
        // Tight: some row needs exactly `latency` rows beyond it.
        assert!((0..h).any(|r| needed[r] == r + 1 + lat));
        let row = vec![0.25f32; net.cin() * w];
        let mut out = vec![0.0f32; net.cout() * w * h];
        let mut got = 0;
        for p in 1..=h {
            s.push_rows(&row).unwrap();
            got += s.pull_rows(&mut out[got * net.cout() * w..]).unwrap();
            let want = if p == h {
                h
            } else {
                needed.iter().filter(|&&n| n <= p).count()
            };
            assert_eq!(got, want, "after {p} rows");
        }
    }
}

#[test]
fn latency_of_any_height_is_the_worst_row() {
    // `latency_for` scans the border zones and one period of the patch
    // grids; here every row is scanned instead, for grids of several
    // strides, patch sides, windows and depths, over heights from one
    // patch to well past the zones.
    let mut cases = 0;
    for (stride, patch, window, blocks, dncnn_depth, kernels) in [
        (1, 1, 3, 1, 1, &[1usize][..]),
        (1, 3, 5, 2, 2, &[3]),
        (2, 2, 3, 1, 3, &[3, 1]),
        (3, 7, 5, 2, 2, &[5, 3]),
        (4, 6, 9, 3, 1, &[3]),
        (5, 10, 15, 2, 6, &[3]),
        (6, 6, 7, 2, 2, &[1, 3]),
        (7, 9, 3, 0, 4, &[3]),
    ] {
        let mut spec = Spec::paper(1);
        spec.features = 2;
        spec.channels = 2;
        spec.embed_depth = 2;
        spec.blocks = blocks;
        spec.dncnn_depth = dncnn_depth;
        spec.kernels = kernels;
        spec.n3.k = 1;
        spec.n3.stride = stride;
        spec.n3.patch = patch;
        spec.n3.window = window;
        let rn = RandomNet::new(spec, 3);
        let net = rn.network();
        let w = 2 * patch;
        let mut ws = vec![0u8; Stream::workspace_bytes(&net, w).unwrap()];
        for h in (2 * patch..400).chain([997, 1024, 2311]) {
            let s = Stream::new(&net, h, w, Isa::Generic, &mut ws).unwrap();
            let worst = (0..h).map(|r| s.rows_needed(r) - 1 - r).max().unwrap();
            assert_eq!(
                s.latency_rows(),
                worst,
                "stride {stride} patch {patch} h {h}"
            );
            cases += 1;
        }
    }
    // A stream of a very tall image opens at once.
    let rn = RandomNet::new(Spec::paper(1), 1);
    let net = rn.network();
    let lat = Stream::latency_for(&net, 1 << 40).unwrap();
    // 100_001 has the same grid padding as 2^40 (both are 1 mod 5 past a patch).
    assert_eq!(lat, Stream::latency_for(&net, 100_001).unwrap());
    println!("latency: {cases} heights checked row by row");
}

/// Numbers for the report: `cargo test --release -p n3net-core --test stream
/// -- --nocapture report`.
#[test]
fn report_workspace_and_latency() {
    let rn = RandomNet::new(Spec::paper(1), 1);
    let net = rn.network();
    for w in [640, 1920, 4000, 8000] {
        let b = Stream::workspace_bytes(&net, w).unwrap();
        println!("stream workspace, paper model, width {w}: {b} bytes");
    }
    println!("max halo: {} columns", Stream::max_halo(&net).unwrap());
    for s in [128, 256, 512, 1024] {
        let b = Stream::stripe_workspace_bytes(&net, s).unwrap();
        println!("stripe workspace, paper model, stripe {s} columns: {b} bytes");
    }
    let mut ws = vec![0u8; Stream::workspace_bytes(&net, 321).unwrap()];
    let s = Stream::new(&net, 481, 321, Isa::detect(), &mut ws).unwrap();
    println!(
        "481x321: latency {} rows, max pending {} rows, stream workspace {} bytes",
        s.latency_rows(),
        s.max_pending_rows(),
        ws.len()
    );
    let plan = Plan::new(&net, 481, 321, Isa::detect()).unwrap();
    println!("481x321 whole-image plan: {} bytes", plan.workspace_bytes());
    println!(
        "size of the Stream value: {} bytes",
        std::mem::size_of::<Stream<'_, '_, '_>>()
    );
    // The latency depends on the height only (through the grid padding).
    let mut ws = vec![0u8; Stream::workspace_bytes(&net, 64).unwrap()];
    for h in [64, 97, 480, 481, 1024, 1080, 100_000] {
        let s = Stream::new(&net, h, 64, Isa::detect(), &mut ws).unwrap();
        println!("height {h}: latency {} rows", s.latency_rows());
    }
}

/// Time of the plan and of the stream, paper model, 481×321:
/// `cargo test --release -p n3net-core --test stream -- --ignored --nocapture timing`.
#[test]
#[ignore]
fn timing_plan_vs_stream() {
    let rn = RandomNet::new(Spec::paper(1), 1);
    let net = rn.network();
    let (h, w) = (481, 321);
    let input = image(1, h, w, 2);
    let isa = Isa::detect();
    let t = std::time::Instant::now();
    let want = whole(&net, &input, h, w, isa);
    let plan_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let got = streamed(&net, &input, h, w, isa, &mut |_| 8);
    let stream_s = t.elapsed().as_secs_f64();
    assert_bits(&got, &want, "timing");
    println!("481x321 paper model: plan {plan_s:.2} s, stream {stream_s:.2} s");
}
