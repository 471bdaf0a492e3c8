//! The shipped default model (`models/n3net-gray-blind.onnx`, built into the
//! library), the noise-level inputs and the command-line tool around it.
//! Needs no data outside the repository.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use n3net_runtime::denoise::{denoise_plane, network_input, NoiseLevel};
use n3net_runtime::eval::list_images;
use n3net_runtime::image_io::{read_image, read_npy_f32};
use n3net_runtime::metrics::{max_abs_diff, psnr};
use n3net_runtime::noise::add_gaussian_noise;
use n3net_runtime::{default_model, reference};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn n3net(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_n3net"))
        .args(args)
        .output()
        .expect("run n3net")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("n3net-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn default_model_is_noise_conditioned() {
    let model = default_model().expect("built-in model imports");
    assert_eq!(model.hyper.in_channels, 2);
    assert_eq!(model.hyper.out_channels, 1);
    assert_eq!(model.hyper.sigma, None);
}

/// A sample crop at `(x0, y0)` of the shipped model `file`'s export size,
/// noisy at `sigma`, denoised by the core and by tract on the whole exported
/// graph: asserts they agree within 1e-4 and returns the gain in PSNR.
fn core_matches_tract(
    model: &n3net_runtime::Model,
    file: &str,
    (x0, y0): (usize, usize),
    sigma: f32,
) -> f64 {
    let (h, w) = model.hyper.export_size.expect("export size recorded");
    let clean = read_image(&repo("samples/astronaut.png")).expect("sample");
    let crop: Vec<f32> = (0..h)
        .flat_map(|y| {
            let row = (y0 + y) * clean.width + x0;
            clean.data[row..row + w].to_vec()
        })
        .collect();
    let noisy = add_gaussian_noise(&crop, sigma, 7, 0);
    let noise = NoiseLevel::Sigma(sigma);
    let ours = denoise_plane(model, &noisy, h, w, noise).expect("core");
    let input = network_input(model, &noisy, noise).expect("input");
    let theirs = reference::run_tract(&repo(file), &input, 2, h, w).expect("tract");
    let d = max_abs_diff(&theirs, &ours).expect("same length");
    assert!(d <= 1e-4, "{file}: core vs tract: {d:e}");
    psnr(&crop, &ours).expect("psnr") - psnr(&crop, &noisy).expect("psnr")
}

#[test]
fn default_model_core_matches_tract() {
    let model = default_model().expect("model");
    core_matches_tract(&model, "models/n3net-gray-blind.onnx", (200, 200), 30.0);
}

/// The larger shipped model (`models/n3net-gray-blind-large.onnx`): the
/// paper's structure with a noise-level input, and the core equals tract on
/// its whole exported graph.
#[test]
fn large_model_core_matches_tract() {
    let file = "models/n3net-gray-blind-large.onnx";
    let model = n3net_runtime::load_model(&repo(file)).expect("large model imports");
    assert_eq!(model.hyper.in_channels, 2);
    assert_eq!(model.hyper.sigma, None);
    assert_eq!((model.hyper.n3_blocks, model.hyper.k), (2, 7));
    let gain = core_matches_tract(&model, file, (260, 150), 25.0);
    assert!(gain > 5.0, "the large model denoises: {gain} dB");
}

/// The shipped weights are trained: on the committed sample (σ = 25, 8-bit)
/// the output is far closer to the clean image than the input.
#[test]
fn default_model_denoises_the_sample() {
    let model = default_model().expect("model");
    let clean = read_image(&repo("samples/astronaut.png")).expect("clean");
    let noisy = read_image(&repo("samples/astronaut-noisy-s25.png")).expect("noisy");
    let out = denoise_plane(
        &model,
        &noisy.data,
        noisy.height,
        noisy.width,
        NoiseLevel::Sigma(25.0),
    )
    .expect("denoise");
    let before = psnr(&clean.data, &noisy.data).expect("psnr");
    let after = psnr(&clean.data, &out).expect("psnr");
    assert!(before < 21.0, "noisy sample PSNR {before}");
    assert!(after > before + 6.0, "PSNR {before:.2} -> {after:.2} dB");
}

#[test]
fn flat_noise_profile_equals_constant_sigma() {
    let model = default_model().expect("model");
    let img: Vec<f32> = (0..40 * 48)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    let s = 20.0f32;
    let a = denoise_plane(&model, &img, 40, 48, NoiseLevel::Sigma(s)).expect("sigma");
    let b = denoise_plane(
        &model,
        &img,
        40,
        48,
        NoiseLevel::Profile {
            a: 0.0,
            b: (s / 255.0) * (s / 255.0),
        },
    )
    .expect("profile");
    let d = max_abs_diff(&a, &b).expect("same length");
    assert!(d <= 1e-6, "{d:e}");
}

#[test]
fn noise_profile_map_follows_the_intensity() {
    let model = default_model().expect("model");
    let img = [-0.5f32, 0.0, 0.25, 1.0, 2.0];
    let v = network_input(&model, &img, NoiseLevel::Profile { a: 0.04, b: 0.01 }).expect("input");
    let want = [
        0.1f32,
        0.1,
        (0.04f32 * 0.25 + 0.01).sqrt(),
        (0.05f32).sqrt(),
        (0.05f32).sqrt(),
    ];
    assert_eq!(&v[..5], &img);
    for (got, want) in v[5..].iter().zip(want) {
        assert!((got - want).abs() < 1e-7, "{got} vs {want}");
    }
    for bad in [(-1.0, 0.0), (0.0, f32::NAN), (f32::INFINITY, 0.0)] {
        let noise = NoiseLevel::Profile { a: bad.0, b: bad.1 };
        assert!(network_input(&model, &img, noise).is_err(), "{bad:?}");
    }
    assert!(network_input(&model, &img, NoiseLevel::Unknown).is_err());
    assert!(network_input(&model, &img, NoiseLevel::Sigma(-1.0)).is_err());
}

#[test]
fn cli_denoise_with_the_default_model() {
    let dir = scratch("denoise");
    let out = dir.join("out.png");
    let input = repo("samples/astronaut-noisy-s25.png");
    let r = n3net(&[
        "denoise",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--noise-profile",
        "0,0.0096",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let img = read_image(&out).expect("output");
    assert_eq!((img.width, img.height), (512, 512));

    // The README's main command: the written 8-bit output is closer to the
    // clean sample than the input is.
    let r = n3net(&[
        "denoise",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--sigma",
        "25",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let clean = read_image(&repo("samples/astronaut.png")).expect("clean");
    let noisy = read_image(&input).expect("noisy");
    let written = read_image(&out).expect("output");
    let before = psnr(&clean.data, &noisy.data).expect("psnr");
    let after = psnr(&clean.data, &written.data).expect("psnr");
    assert!(after > before + 6.0, "PSNR {before:.2} -> {after:.2} dB");

    for bad in [
        vec!["--noise-profile", "1"],
        vec!["--noise-profile", "a,b"],
        vec!["--noise-profile", "-1,0"],
        vec!["--sigma", "25", "--noise-profile", "0,0.01"],
        vec![],
    ] {
        let mut args = vec!["denoise", input.to_str().unwrap(), out.to_str().unwrap()];
        args.extend(bad.iter());
        let r = n3net(&args);
        assert!(!r.status.success(), "{bad:?} must fail");
        assert!(!r.stderr.is_empty(), "{bad:?}: an error message");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn cli_noisy_writes_the_eval_draws() {
    let dir = scratch("noisy");
    let data = repo("samples");
    let r = n3net(&[
        "noisy",
        "--dataset",
        data.to_str().unwrap(),
        "--sigma",
        "15",
        "--seed",
        "3",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for (i, path) in list_images(&data).expect("list").iter().enumerate() {
        let clean = read_image(path).expect("clean");
        let stem = path.file_stem().unwrap();
        let (shape, got) =
            read_npy_f32(&Path::new(&dir).join(stem).with_extension("npy")).expect("npy");
        assert_eq!(shape, [clean.height, clean.width]);
        assert_eq!(got, add_gaussian_noise(&clean.data, 15.0, 3, i as u64));
    }
    std::fs::remove_dir_all(dir).ok();
}
