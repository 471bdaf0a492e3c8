//! Determinism: the default model, in f32 and in q16 (the committed blob),
//! gives the same output bits for the same input across repeated runs,
//! thread counts and stripe layouts, and the same bytes in its PNG files.
//! (`stream_file.rs` checks f32 stripes against the whole image once; this
//! repeats every layout and adds q16.)
//!
//! Each test prints its number of cases (`--nocapture`).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use n3net_core::Precision;
use n3net_runtime::denoise::{denoise_file, denoise_plane, NoiseLevel, StripeOptions};
use n3net_runtime::image_io::{read_image, read_npy_f32, write_npy_f32, BitDepth};
use n3net_runtime::noise::add_gaussian_noise;
use n3net_runtime::{default_model, load_model, Model};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("n3net-determinism-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The default model in f32 (built in) and in q16 (the committed blob).
fn models() -> [(&'static str, Model); 2] {
    let q16 = load_model(&repo("models/n3net-gray-blind-q16.n3b")).expect("q16 model");
    assert_eq!(q16.precision(), Precision::Q16);
    [("f32", default_model().expect("model")), ("q16", q16)]
}

/// A noisy `h × w` crop of the committed sample (σ = 25), written as a
/// float32 `.npy` (exact values); returns its path and values.
fn noisy_input(dir: &Path, h: usize, w: usize) -> (PathBuf, Vec<f32>) {
    let clean = read_image(&repo("samples/astronaut.png")).expect("sample");
    let crop: Vec<f32> = (0..h)
        .flat_map(|y| clean.data[(140 + y) * clean.width + 210..][..w].to_vec())
        .collect();
    let noisy = add_gaussian_noise(&crop, 25.0, 11, 0);
    let path = dir.join(format!("noisy-{h}x{w}.npy"));
    write_npy_f32(&path, &[h, w], &noisy).expect("write input");
    (path, noisy)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `denoise_file` of `input` into `out` with the given stripes and threads.
fn denoise(
    model: &Model,
    input: &Path,
    out: &Path,
    stripe: Option<usize>,
    threads: usize,
) -> usize {
    let opts = StripeOptions {
        stripe,
        threads,
        max_memory: 192 << 20,
    };
    let noise = NoiseLevel::Sigma(25.0);
    let st = denoise_file(model, input, out, noise, BitDepth::Eight, opts, &|_, _| {})
        .expect("denoise_file");
    st.stripes
}

#[test]
fn repeated_runs_threads_and_stripes_give_the_same_bits() {
    let dir = scratch("layouts");
    let (h, w) = (70, 93);
    let (input, values) = noisy_input(&dir, h, w);
    // One-column stripes each recompute their whole halo (up to 96 columns
    // a side): they run on a narrower crop to keep the test short.
    let (nh, nw) = (70, 24);
    let (narrow, narrow_values) = noisy_input(&dir, nh, nw);
    let noise = NoiseLevel::Sigma(25.0);
    let mut cases = 0;
    for (name, model) in models() {
        for (input, values, h, w, stripes) in [
            (&input, &values, h, w, &[None, Some(17), Some(64)][..]),
            (&narrow, &narrow_values, nh, nw, &[Some(1)][..]),
        ] {
            let want = bits(&denoise_plane(&model, values, h, w, noise).expect("plane"));
            for run in 1..3 {
                let again = denoise_plane(&model, values, h, w, noise).expect("plane");
                assert_eq!(bits(&again), want, "{name} {h}x{w}: run {run}");
                cases += 1;
            }
            for &stripe in stripes {
                for threads in [1, 2, 3] {
                    let what = format!("{name} {h}x{w}, stripe {stripe:?}, {threads} thread(s)");
                    let out = dir.join(format!("{name}-{w}-{stripe:?}-{threads}.npy"));
                    let n = denoise(&model, input, &out, stripe, threads);
                    if let Some(s) = stripe {
                        assert_eq!(n, w.div_ceil(s), "{what}: stripes");
                    }
                    let (shape, got) = read_npy_f32(&out).expect("read output");
                    assert_eq!(shape, [h, w], "{what}");
                    assert_eq!(bits(&got), want, "{what}");
                    cases += 1;
                }
            }
        }
    }
    println!("determinism layouts: {cases} cases");
}

#[test]
fn png_files_are_the_same_bytes_whatever_the_layout() {
    let dir = scratch("png");
    let (h, w) = (70, 93);
    let (input, _) = noisy_input(&dir, h, w);
    let mut cases = 0;
    for (name, model) in models() {
        let mut first: Option<Vec<u8>> = None;
        for (run, (stripe, threads)) in [(None, 1), (Some(17), 3), (None, 1), (Some(64), 2)]
            .into_iter()
            .enumerate()
        {
            let out = dir.join(format!("{name}-{run}.png"));
            denoise(&model, &input, &out, stripe, threads);
            let bytes = std::fs::read(&out).expect("read png");
            match &first {
                None => first = Some(bytes),
                Some(b) => assert!(
                    *b == bytes,
                    "{name}: stripe {stripe:?}, {threads} thread(s): other bytes"
                ),
            }
            cases += 1;
        }
    }
    println!("determinism png bytes: {cases} cases");
}
