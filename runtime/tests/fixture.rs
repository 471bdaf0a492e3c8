//! The core against PyTorch and tract on the committed reduced random-weight
//! fixtures (`tests/fixtures/`, made by `python/make_fixture.py`). Needs no
//! data outside the repository.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use n3net_core::{ErrorKind, Isa, Plan};
use n3net_runtime::image_io::read_npy_f32;
use n3net_runtime::metrics::max_abs_diff;
use n3net_runtime::{onnx, reference, Model};

fn fixture(case: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(case)
        .join(file)
}

/// (model, input planes, shape [C, H, W], PyTorch output)
fn load(case: &str) -> (Model, Vec<f32>, [usize; 3], Vec<f32>) {
    let model = onnx::load(&fixture(case, "model.onnx")).expect("fixture model");
    let (shape, input) = read_npy_f32(&fixture(case, "input.npy")).expect("input.npy");
    let (_, output) = read_npy_f32(&fixture(case, "output.npy")).expect("output.npy");
    let chw = match shape[..] {
        [h, w] => [1, h, w],
        [c, h, w] => [c, h, w],
        _ => panic!("unexpected input shape {shape:?}"),
    };
    (model, input, chw, output)
}

fn run_core(model: &Model, input: &[f32], [_, h, w]: [usize; 3], isa: Isa) -> Vec<f32> {
    let net = model.network().expect("network");
    let plan = Plan::new(&net, h, w, isa).expect("plan");
    let mut ws = vec![0u8; plan.workspace_bytes()];
    let mut out = vec![0.0; net.cout() * h * w];
    plan.run(input, &mut out, &mut ws).expect("run");
    out
}

#[test]
fn core_matches_pytorch() {
    for case in ["tiny", "tiny-2ch"] {
        let (model, input, shape, want) = load(case);
        for isa in [Isa::Generic, Isa::detect()] {
            let got = run_core(&model, &input, shape, isa);
            let d = max_abs_diff(&got, &want).expect("same length");
            assert!(d <= 1e-4, "{case} {isa:?}: max abs diff {d:e} vs PyTorch");
        }
    }
}

#[test]
fn core_matches_tract_on_the_whole_graph() {
    for case in ["tiny", "tiny-2ch"] {
        let (model, input, shape, _) = load(case);
        let ours = run_core(&model, &input, shape, Isa::detect());
        let [c, h, w] = shape;
        let theirs =
            reference::run_tract(&fixture(case, "model.onnx"), &input, c, h, w).expect("tract");
        let d = max_abs_diff(&ours, &theirs).expect("same length");
        assert!(d <= 1e-4, "{case}: max abs diff {d:e} vs tract");
    }
}

#[test]
fn workspace_query_is_exact() {
    let (model, input, [_, h, w], _) = load("tiny");
    let net = model.network().unwrap();
    let plan = Plan::new(&net, h, w, Isa::detect()).unwrap();
    let mut out = vec![0.0; h * w];
    let mut ws = vec![0u8; plan.workspace_bytes() - 1];
    let err = plan.run(&input, &mut out, &mut ws).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkspaceTooSmall);
    // Any alignment of the caller's buffer works with the queried size.
    let mut big = vec![0u8; plan.workspace_bytes() + 3];
    for shift in 0..4 {
        let ws = &mut big[shift..shift + plan.workspace_bytes()];
        plan.run(&input, &mut out, ws).unwrap();
    }
}

#[test]
fn bad_inputs_are_errors() {
    let (model, mut input, [_, h, w], _) = load("tiny");
    let net = model.network().unwrap();
    let plan = Plan::new(&net, h, w, Isa::detect()).unwrap();
    let mut ws = vec![0u8; plan.workspace_bytes()];
    let mut out = vec![0.0; h * w];
    let err = plan.run(&input[1..], &mut out, &mut ws).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferSize);
    input[17] = f32::NAN;
    let err = plan.run(&input, &mut out, &mut ws).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NonFiniteInput);
    // Smaller than one patch, or a single patch: no neighbours to search.
    for (h, w) in [(3, 40), (6, 6), (0, 10)] {
        let err = Plan::new(&net, h, w, Isa::Generic).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ImageTooSmall, "{h}x{w}");
    }
    let err = Plan::new(&net, usize::MAX / 2, 1 << 20, Isa::Generic).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
}

#[test]
fn workspace_grows_with_the_image_only() {
    let (model, ..) = load("tiny");
    let net = model.network().unwrap();
    let bytes = |h, w| {
        Plan::new(&net, h, w, Isa::Generic)
            .unwrap()
            .workspace_bytes()
    };
    assert!(bytes(64, 64) < bytes(128, 64));
    assert_eq!(bytes(64, 64), bytes(64, 64));
}
