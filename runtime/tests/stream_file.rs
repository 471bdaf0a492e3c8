//! `denoise_file`: the streamed, striped, threaded path from an image file to
//! an image file gives exactly the whole-image output, whatever the stripe
//! width and the number of threads; and its errors.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;

use n3net_runtime::default_model;
use n3net_runtime::denoise::{
    denoise_file, denoise_plane, plan_striping, NoiseLevel, StripeOptions,
};
use n3net_runtime::image_io::{read_image, read_npy_f32, write_image, BitDepth, Image};
use n3net_runtime::noise::add_gaussian_noise;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("n3net-stream-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A noisy crop of the committed sample, written as an 8-bit PNG; returns
/// its path and the values the PNG holds.
fn noisy_png(dir: &std::path::Path, h: usize, w: usize) -> (PathBuf, Vec<f32>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let clean = read_image(&root.join("samples/astronaut.png")).expect("sample");
    let crop: Vec<f32> = (0..h)
        .flat_map(|y| clean.data[(100 + y) * clean.width + 150..][..w].to_vec())
        .collect();
    let noisy = add_gaussian_noise(&crop, 25.0, 3, 0);
    let path = dir.join("noisy.png");
    let img = Image::new(w, h, 1, noisy).expect("image");
    write_image(&path, &img, BitDepth::Eight).expect("write");
    let back = read_image(&path).expect("read back");
    (path, back.data)
}

fn opts(stripe: Option<usize>, threads: usize) -> StripeOptions {
    StripeOptions {
        stripe,
        threads,
        max_memory: 192 << 20,
    }
}

#[test]
fn any_stripes_any_threads_give_the_whole_image_output() {
    let model = default_model().expect("model");
    let dir = scratch("same");
    let (h, w) = (90, 157);
    let (input, values) = noisy_png(&dir, h, w);
    let noise = NoiseLevel::Sigma(25.0);
    let want = denoise_plane(&model, &values, h, w, noise).expect("whole image");
    for (stripe, threads) in [
        (None, 1),
        (None, 2),
        (Some(37), 1),
        (Some(37), 3),
        (Some(1), 2),
        (Some(64), 2),
    ] {
        let out = dir.join(format!("out-{stripe:?}-{threads}.npy"));
        let st = denoise_file(
            &model,
            &input,
            &out,
            noise,
            BitDepth::Eight,
            opts(stripe, threads),
            &|_, _| {},
        )
        .expect("denoise_file");
        if let Some(s) = stripe {
            assert_eq!(st.stripes, w.div_ceil(s));
        }
        let (shape, got) = read_npy_f32(&out).expect("read npy");
        assert_eq!(shape, vec![h, w]);
        let same = got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "stripe {stripe:?} threads {threads}: differs from the whole image"
        );
    }
    // PNG output (striped: assembled from a scratch file) decodes to the
    // whole-image output quantised, and no scratch file is left.
    let png = dir.join("out.png");
    let total = std::sync::atomic::AtomicUsize::new(0);
    denoise_file(
        &model,
        &input,
        &png,
        noise,
        BitDepth::Eight,
        opts(Some(50), 2),
        &|n, t| {
            total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(t, h * 4);
        },
    )
    .expect("png");
    assert_eq!(
        total.into_inner(),
        h * 4,
        "progress counts every row of every stripe"
    );
    let got = read_image(&png).expect("read png").data;
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() / 255.0;
    assert!(got.iter().zip(&want).all(|(a, b)| *a == q(*b)));
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".png") || n.ends_with(".npy")),
        "{names:?}"
    );
}

#[test]
fn auto_stripes_fit_the_budget_and_do_not_depend_on_the_width() {
    let model = default_model().expect("model");
    let net = model.network().expect("net");
    // Wide enough for the budget, not the width, to set the stripe.
    let a = plan_striping(&net, 8000, opts(None, 2)).unwrap();
    let b = plan_striping(&net, 16000, opts(None, 2)).unwrap();
    assert!(a.stripe < 4000);
    assert_eq!((a.stripe, a.workspace_bytes), (b.stripe, b.workspace_bytes));
    assert!(a.threads * a.workspace_bytes <= 192 << 20);
    assert_eq!(a.stripe % 32, 0);
    // Images whose whole width fits the budget: one stripe, the threads
    // within it.
    let n = plan_striping(&net, 100, opts(None, 2)).unwrap();
    assert_eq!((n.stripe, n.stripes, n.threads), (100, 1, 2));
    let one = plan_striping(&net, 100, opts(None, 1)).unwrap();
    assert_eq!((one.stripe, one.stripes), (100, 1));
    // Errors: a zero stripe, a budget below the smallest stripe.
    assert!(plan_striping(&net, 100, opts(Some(0), 1)).is_err());
    let tiny = StripeOptions {
        max_memory: 1 << 20,
        ..opts(None, 1)
    };
    let e = plan_striping(&net, 4000, tiny).unwrap_err().to_string();
    assert!(e.contains("too small"), "{e}");
}

#[test]
fn cli_denoise_errors_leave_no_output() {
    let dir = scratch("errors");
    let (input, _) = noisy_png(&dir, 40, 40);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_n3net"))
            .args(args)
            .output()
            .expect("run n3net")
    };
    let out = dir.join("out.png");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    for (args, msg) in [
        (
            vec!["denoise", i, o, "--sigma", "25", "--stripe", "0"],
            "at least 1",
        ),
        (
            vec!["denoise", i, o, "--sigma", "25", "--threads", "0"],
            "at least 1",
        ),
        (
            vec!["denoise", i, o, "--sigma", "25", "--max-memory", "1"],
            "too small",
        ),
        (vec!["denoise", i, o], "noise-level conditioned"),
        (
            vec!["denoise", "missing.png", o, "--sigma", "25"],
            "missing.png",
        ),
    ] {
        let r = run(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{args:?}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} left an output");
    }
    let r = run(&[
        "denoise",
        i,
        o,
        "--sigma",
        "25",
        "--stripe",
        "16",
        "--verbose",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("3 stripe(s) of 16 columns"));
    assert!(out.exists());
}
