//! Malformed input against the runtime and the `n3net` tool, case by case:
//! truncated and corrupted ONNX files, truncated and corrupted image files,
//! headers that claim huge images, non-finite samples, noise levels out of
//! range, and the command line given such input. Each case has its
//! documented outcome; nothing panics, and nothing allocates what a forged
//! header claims.
//!
//! Every test prints its number of cases (`--nocapture`).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

use n3net_runtime::denoise::{denoise_plane, network_input, NoiseLevel};
use n3net_runtime::image_io::{
    read_image, write_image, write_npy_f32, BitDepth, Image, ImageError, RowReader,
};
use n3net_runtime::noise::{add_gaussian_noise, sigma_map_from_profile};
use n3net_runtime::{default_model, onnx};

// ---------------------------------------------------------------------------
// The largest allocation a call makes
// ---------------------------------------------------------------------------

/// The system allocator, recording the largest single allocation asked for
/// on each thread.
struct Recording;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    // `try_with`: a thread being torn down has no value to update.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(bytes)));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; recording a size allocates nothing.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees for `alloc` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` and `layout` come from this allocator, that is from
        // `System`, as the caller guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// `f()` and the largest allocation it made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let r = f();
    (r, LARGEST.with(Cell::get))
}

/// No forged header may make the readers allocate more than this.
const ALLOCATION_BOUND: usize = 16 << 20;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// splitmix64: a seeded stream of pseudo-random numbers.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("n3net-malformed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn variant(e: &ImageError) -> &'static str {
    match e {
        ImageError::Io { .. } => "Io",
        ImageError::UnsupportedFormat { .. } => "UnsupportedFormat",
        ImageError::Decode { .. } => "Decode",
        ImageError::Png { .. } => "Png",
        ImageError::PngEncode { .. } => "PngEncode",
        ImageError::BadShape { .. } => "BadShape",
        ImageError::TooLarge { .. } => "TooLarge",
        ImageError::NonFinite { .. } => "NonFinite",
        ImageError::RowAccess { .. } => "RowAccess",
    }
}

/// Reads `path` row by row, as `n3net denoise` does.
fn read_rows(path: &Path) -> Result<(usize, usize), ImageError> {
    let mut r = RowReader::open(path)?;
    let mut row = vec![0.0; r.width()];
    for _ in 0..r.height() {
        r.next_row(&mut row)?;
    }
    Ok((r.height(), r.width()))
}

// ---------------------------------------------------------------------------
// ONNX files
// ---------------------------------------------------------------------------

/// What became of an ONNX file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Import {
    /// The import failed.
    Refused,
    /// It imported, validates, and denoises a 16×16 image into finite values.
    Ran,
    /// It imported and validates, and running it on the image is an error:
    /// its values overflow (the core's N³ relaxation, or the runtime's check
    /// of the output).
    RunRefused,
}

/// Imports `bytes` and runs the model on a 16×16 image; output that is not
/// finite is never returned.
fn import(bytes: &[u8], what: &str) -> Import {
    let Ok(model) = onnx::from_bytes(bytes, "malformed") else {
        return Import::Refused;
    };
    model
        .network()
        .unwrap_or_else(|e| panic!("{what}: imported but invalid: {e}"));
    let img: Vec<f32> = (0..256).map(|i| (i * 37 % 256) as f32 / 255.0).collect();
    let noise = if model.hyper.in_channels == 2 {
        NoiseLevel::Sigma(25.0)
    } else {
        NoiseLevel::Unknown
    };
    match denoise_plane(&model, &img, 16, 16, noise) {
        Ok(out) => {
            assert!(
                out.iter().all(|v| v.is_finite()),
                "{what}: output not finite"
            );
            Import::Ran
        }
        Err(e) => {
            let msg = format!("{e:#}");
            let overflow = msg.contains("logits must be finite") || msg.contains("not finite");
            assert!(overflow, "{what}: {msg}");
            Import::RunRefused
        }
    }
}

#[test]
fn onnx_files_truncated_flipped_or_overwritten() {
    let good = std::fs::read(repo("tests/fixtures/tiny/model.onnx")).expect("fixture");
    assert_eq!(import(&good, "the fixture"), Import::Ran);
    let n = good.len();
    let mut cases = 0;
    // Every truncation of the first 64 bytes, 200 spread over the file and
    // the file one byte short: the metadata comes last, so none imports.
    let lengths = (0..64)
        .chain((0..200).map(|i| 64 + i * (n - 64) / 200))
        .chain([n - 1]);
    for len in lengths {
        assert_eq!(import(&good[..len], "cut"), Import::Refused, "cut at {len}");
        cases += 1;
    }
    // Seeded single-bit flips and byte overwrites: refused, or a model that
    // runs, or one whose values overflow on the image (an error at run time).
    let mut rng = SplitMix(20240611);
    let mut counts = std::collections::BTreeMap::new();
    for k in 0..1500 {
        let mut b = good.clone();
        let i = rng.below(n);
        let what = if k < 1000 {
            let bit = rng.below(8);
            b[i] ^= 1 << bit;
            format!("byte {i} bit {bit} flipped")
        } else {
            let v = rng.next() as u8;
            b[i] = v;
            format!("byte {i} set to {v:#04x}")
        };
        *counts.entry(import(&b, &what)).or_insert(0) += 1;
        cases += 1;
    }
    println!("malformed runtime onnx: {cases} cases {counts:?}");
}

#[test]
fn onnx_weights_set_to_extreme_finite_values() {
    use prost::Message;
    use tract_onnx::pb::ModelProto;
    let good = std::fs::read(repo("tests/fixtures/tiny/model.onnx")).expect("fixture");
    let proto = ModelProto::decode(&good[..]).expect("decode");
    let graph = proto.graph.as_ref().expect("graph");
    let mut counts = std::collections::BTreeMap::new();
    let mut cases = 0;
    // The first value of every initializer: huge values import (batch-norm
    // statistics may fold into non-finite weights, which the import
    // refuses) and then run or are refused at run time.
    for t in &graph.initializer {
        for v in [f32::MAX, -f32::MAX, 1e20, -1e20, f32::MIN_POSITIVE] {
            let mut m = proto.clone();
            let g = m.graph.as_mut().unwrap();
            let at = g.initializer.iter().position(|x| x.name == t.name).unwrap();
            g.initializer[at].raw_data[..4].copy_from_slice(&v.to_le_bytes());
            let got = import(&m.encode_to_vec(), &format!("{}[0] = {v}", t.name));
            *counts.entry(got).or_insert(0) += 1;
            cases += 1;
        }
    }
    assert!(counts.len() == 3, "every outcome occurs: {counts:?}");
    println!("malformed runtime onnx extreme weights: {cases} cases {counts:?}");
}

// ---------------------------------------------------------------------------
// Image files
// ---------------------------------------------------------------------------

/// The small image every file case starts from: 12 × 9, values in [0, 1].
fn small_image() -> Image {
    let data = (0..9 * 12)
        .map(|i| ((i * 29 + 7) % 256) as f32 / 255.0)
        .collect();
    Image::new(12, 9, 1, data).unwrap()
}

/// The small image in each readable format: (file name, bytes, the error
/// variants a truncation may give).
fn small_files(dir: &Path) -> Vec<(&'static str, Vec<u8>, &'static [&'static str])> {
    let img = small_image();
    let mut out = Vec::new();
    for (name, depth, cut) in [
        ("8.png", BitDepth::Eight, &["Png", "Decode"][..]),
        ("16.png", BitDepth::Sixteen, &["Png", "Decode"]),
        ("8.pgm", BitDepth::Eight, &["Decode"]),
        ("16.pgm", BitDepth::Sixteen, &["Decode"]),
        ("f.npy", BitDepth::Eight, &["Decode"]),
    ] {
        let p = dir.join(name);
        write_image(&p, &img, depth).unwrap();
        out.push((name, std::fs::read(&p).unwrap(), cut));
    }
    out
}

/// `bytes` written to `path`, the file kept open to be changed in place
/// (rewriting a small file from nothing is slow on some file systems).
fn open_copy(path: &Path, bytes: &[u8]) -> std::fs::File {
    std::fs::write(path, bytes).unwrap();
    std::fs::OpenOptions::new().write(true).open(path).unwrap()
}

#[test]
fn image_files_truncated_at_every_length() {
    let dir = scratch("truncated");
    let mut cases = 0;
    for (name, bytes, kinds) in small_files(&dir) {
        let p = dir.join(format!("cut-{name}"));
        let file = open_copy(&p, &bytes);
        for len in (0..bytes.len()).rev() {
            file.set_len(len as u64).unwrap();
            let what = format!("{name} cut at {len} of {}", bytes.len());
            let e = read_image(&p).expect_err(&what);
            assert!(kinds.contains(&variant(&e)), "{what}: {e}");
            let e = read_rows(&p).expect_err(&what);
            assert!(kinds.contains(&variant(&e)), "{what}, by rows: {e}");
            cases += 2;
        }
    }
    println!("malformed runtime truncated images: {cases} cases");
}

#[test]
fn image_files_with_any_bit_flipped() {
    use std::os::unix::fs::FileExt;
    let dir = scratch("flipped");
    let mut cases = 0;
    let mut counts = [0usize; 2];
    for (name, bytes, _) in small_files(&dir) {
        let p = dir.join(format!("flip-{name}"));
        let file = open_copy(&p, &bytes);
        let npy = name.ends_with(".npy");
        // PNG and PGM store integers: a flip gives another value in [0, 1]
        // or a decoding error; an .npy flip can give a NaN or infinity.
        let errors: &[&str] = match &name[name.len() - 3..] {
            "png" => &["Png", "Decode", "UnsupportedFormat", "TooLarge"],
            "pgm" => &["Decode", "UnsupportedFormat", "TooLarge"],
            _ => &["Decode", "UnsupportedFormat", "TooLarge", "NonFinite"],
        };
        for (i, &byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                file.write_all_at(&[byte ^ (1 << bit)], i as u64).unwrap();
                let what = format!("{name} byte {i} bit {bit}");
                match read_image(&p) {
                    Err(e) => {
                        assert!(errors.contains(&variant(&e)), "{what}: {e}");
                        counts[1] += 1;
                    }
                    Ok(img) => {
                        img.validate().expect(&what);
                        let ok = |v: &f32| v.is_finite() && (npy || (0.0..=1.0).contains(v));
                        assert!(img.data.iter().all(ok), "{what}: samples");
                        counts[0] += 1;
                    }
                }
                cases += 1;
            }
            file.write_all_at(&[byte], i as u64).unwrap();
        }
    }
    let [read, refused] = counts;
    println!(
        "malformed runtime bit-flipped images: {cases} cases ({read} read, {refused} refused)"
    );
}

/// A PNG of `w × h` with the given bit depth, colour type and interlacing,
/// its IHDR checksum valid, and `idat` as its only data chunk.
fn forged_png(w: u32, h: u32, depth: u8, color: u8, interlace: u8, idat: &[u8]) -> Vec<u8> {
    let crc = |bytes: &[u8]| n3net_core::blob::crc32(bytes);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc(&c).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, interlace]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", idat);
    chunk(b"IEND", &[]);
    out
}

fn npy(header: &str, payload: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn headers_claiming_huge_images_are_refused_without_allocating_them() {
    let dir = scratch("huge");
    // A valid zlib stream of a few bytes: the data of no such image.
    let idat = [
        0x78, 0x01, 0x01, 0x03, 0x00, 0xFC, 0xFF, 0, 1, 2, 0x00, 0x04, 0x00, 0x04,
    ];
    let big = 1u32 << 31;
    let mut cases: Vec<(String, &str, Vec<u8>, &str)> = Vec::new();
    // PGM headers, the raster a few bytes: dimensions above the limit, and
    // dimensions within it whose raster is missing.
    for (header, want) in [
        ("4294967295 4294967295 255", "TooLarge"),
        ("4294967295 1 255", "TooLarge"),
        ("65536 65536 65535", "TooLarge"),
        ("2147483648 1 255", "Decode"),
        ("46340 46340 65535", "Decode"),
        ("999999999999999999999999999999 1 255", "Decode"),
    ] {
        let bytes = format!("P5 {header}\n\0\0\0\0").into_bytes();
        cases.push((format!("pgm {header}"), "h.pgm", bytes, want));
    }
    for (descr, shape, want) in [
        (
            "<f4",
            "(4611686018427387904, 4611686018427387904)",
            "TooLarge",
        ),
        ("<f4", "(4611686018427387904,)", "TooLarge"),
        ("<f8", "(46341, 46341)", "TooLarge"),
        ("<f4", "(3, 2147483648, 1)", "TooLarge"),
        ("<f8", "(40000, 40000)", "Decode"),
        ("<f4", "(18446744073709551616, 1)", "Decode"),
    ] {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let bytes = npy(&header, &[0; 16]);
        cases.push((format!("npy {descr} {shape}"), "h.npy", bytes, want));
    }
    // PNG: (width, height, bit depth, colour type, interlaced). Sides of
    // 2^31 break the format; more than 2^31 samples are too large; a large
    // image within the limit without its data fails to decode, the
    // interlaced ones before their frame is reserved.
    for (w, h, depth, color, interlace, want) in [
        (big, 1, 8, 0, 0, "Png"),
        (1, big, 8, 0, 0, "Png"),
        (big - 1, big - 1, 8, 0, 0, "TooLarge"),
        (65536, 65536, 16, 6, 0, "TooLarge"),
        (big - 1, 1, 16, 6, 0, "Png"),
        (40000, 40000, 16, 6, 0, "Png"),
        (40000, 40000, 16, 6, 1, "Decode"),
        (20000, 20000, 8, 0, 1, "Decode"),
    ] {
        let what = format!("png {w} x {h}, depth {depth}, colour {color}, interlace {interlace}");
        let bytes = forged_png(w, h, depth, color, interlace, &idat);
        cases.push((what, "h.png", bytes, want));
    }
    let mut n = 0;
    for (what, name, bytes, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let (got, peak) = largest_allocation(|| read_image(&p));
        let e = got.expect_err(&what);
        assert_eq!(variant(&e), want, "{what}: {e}");
        assert!(peak <= ALLOCATION_BOUND, "{what}: allocated {peak} bytes");
        let (got, peak) = largest_allocation(|| read_rows(&p));
        let e = got.expect_err(&what);
        assert_eq!(variant(&e), want, "{what}, by rows: {e}");
        assert!(
            peak <= ALLOCATION_BOUND,
            "{what}, by rows: allocated {peak} bytes"
        );
        n += 2;
    }
    println!("malformed runtime huge headers: {n} cases");
}

#[test]
fn non_finite_samples_are_refused_where_they_are() {
    let dir = scratch("nonfinite");
    let (h, w) = (9, 12);
    let p = dir.join("x.npy");
    let mut cases = 0;
    let positions = [0, w - 1, (h / 2) * w + w / 2, (h - 1) * w, h * w - 1];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for at in positions {
            let mut data = small_image().data;
            data[at] = bad;
            write_npy_f32(&p, &[h, w], &data).unwrap();
            for e in [read_image(&p).unwrap_err(), read_rows(&p).unwrap_err()] {
                match e {
                    ImageError::NonFinite { index, value, .. } => {
                        assert_eq!(index, at);
                        assert_eq!(value.to_bits(), bad.to_bits(), "{bad} at {at}");
                    }
                    other => panic!("{bad} at {at}: {other}"),
                }
                cases += 1;
            }
        }
    }
    // float64 values that are not finite, or too large for float32.
    for bad in [f64::NAN, f64::INFINITY, -1e300] {
        let mut payload: Vec<u8> = (0..h * w).flat_map(|_| 0.5f64.to_le_bytes()).collect();
        payload[8 * 40..8 * 41].copy_from_slice(&bad.to_le_bytes());
        let header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({h}, {w}), }}");
        std::fs::write(&p, npy(&header, &payload)).unwrap();
        match read_image(&p).unwrap_err() {
            ImageError::NonFinite {
                index: 40, value, ..
            } => assert!(!value.is_finite()),
            other => panic!("{bad}: {other}"),
        }
        cases += 1;
    }
    // Planes given to the denoiser directly: refused by the core, at the
    // corners, the middle of the edges and the centre.
    let model = default_model().expect("model");
    let (h, w) = (20, 24);
    let mut positions = Vec::new();
    for y in [0, h / 2, h - 1] {
        positions.extend([0, w / 2, w - 1].map(|x| y * w + x));
    }
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for &at in &positions {
            let mut data = vec![0.5f32; h * w];
            data[at] = bad;
            let e = denoise_plane(&model, &data, h, w, NoiseLevel::Sigma(25.0)).unwrap_err();
            let kind = e.downcast_ref::<n3net_core::Error>().map(|e| e.kind());
            assert_eq!(
                kind,
                Some(n3net_core::ErrorKind::NonFiniteInput),
                "{bad} at {at}"
            );
            cases += 1;
        }
    }
    println!("malformed runtime non-finite samples: {cases} cases");
}

// ---------------------------------------------------------------------------
// Noise levels
// ---------------------------------------------------------------------------

#[test]
fn noise_levels_out_of_range_are_refused() {
    let model = default_model().expect("model");
    let (h, w) = (20, 24);
    let img: Vec<f32> = (0..h * w).map(|i| ((i * 13) % 97) as f32 / 96.0).collect();
    let sigma = NoiseLevel::Sigma;
    let profile = |a, b| NoiseLevel::Profile { a, b };
    let max = 1000.0f32 / 255.0;
    let refused = [
        ("no level", NoiseLevel::Unknown),
        ("σ -1", sigma(-1.0)),
        ("σ -1e-6", sigma(-1e-6)),
        ("σ NaN", sigma(f32::NAN)),
        ("σ +inf", sigma(f32::INFINITY)),
        ("σ -inf", sigma(f32::NEG_INFINITY)),
        ("σ 1e30", sigma(1e30)),
        ("σ 1000.5", sigma(1000.5)),
        ("profile a -0.01", profile(-0.01, 0.0)),
        ("profile b NaN", profile(0.0, f32::NAN)),
        ("profile a +inf", profile(f32::INFINITY, 0.0)),
        ("profile b -inf", profile(0.0, f32::NEG_INFINITY)),
        ("profile a 1e30", profile(1e30, 0.0)),
        ("profile a + b above 1000/255 squared", profile(8.0, 8.0)),
    ];
    let accepted = [
        ("σ 0", sigma(0.0)),
        ("σ -0", sigma(-0.0)),
        ("σ 1000", sigma(1000.0)),
        ("profile 0, 0", profile(0.0, 0.0)),
        ("profile a + b at the bound", profile(0.0, max * max)),
    ];
    let mut cases = 0;
    for (what, level) in refused {
        assert!(level.check(2).is_err(), "check {what}");
        assert!(
            network_input(&model, &img, level).is_err(),
            "network input {what}"
        );
        let e = denoise_plane(&model, &img, h, w, level).expect_err(what);
        let msg = format!("{e:#}");
        assert!(msg.contains("noise") || msg.contains("σ"), "{what}: {msg}");
        cases += 3;
    }
    for (what, level) in accepted {
        level.check(2).expect(what);
        let out = denoise_plane(&model, &img, h, w, level).expect(what);
        assert!(out.iter().all(|v| v.is_finite()), "{what}: finite output");
        cases += 2;
    }
    // A fixed-σ model takes no level, but a malformed one is refused too.
    for (what, level) in refused.iter().skip(1) {
        assert!(level.check(1).is_err(), "one channel, {what}");
        cases += 1;
    }
    // The noise generators' documented results: a non-finite σ gives
    // non-finite samples, a NaN variance gives σ 0.
    let clean = [0.25f32; 64];
    for s in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let noisy = add_gaussian_noise(&clean, s, 1, 0);
        assert!(noisy.iter().all(|v| !v.is_finite()), "σ {s}");
        cases += 1;
    }
    assert_eq!(sigma_map_from_profile(&[0.5], f32::NAN, 0.0), [0.0]);
    assert_eq!(sigma_map_from_profile(&[0.5], 0.0, -1.0), [0.0]);
    assert_eq!(
        sigma_map_from_profile(&[0.5], f32::INFINITY, 0.0),
        [f32::INFINITY]
    );
    cases += 3;
    println!("malformed runtime noise levels: {cases} cases");
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

#[test]
fn cli_refuses_malformed_input_and_leaves_no_output() {
    let dir = scratch("cli");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let good = inputs.join("good.png");
    write_image(
        &good,
        &Image::new(40, 32, 1, vec![0.5; 40 * 32]).unwrap(),
        BitDepth::Eight,
    )
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let truncated = inputs.join("truncated.png");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let tail = inputs.join("no-end.png");
    std::fs::write(&tail, &bytes[..bytes.len() - 12]).unwrap();
    let nan = inputs.join("nan.npy");
    let mut data = vec![0.5f32; 40 * 32];
    data[700] = f32::NAN;
    write_npy_f32(&nan, &[32, 40], &data).unwrap();
    let empty: Vec<PathBuf> = ["png", "pgm", "npy"]
        .iter()
        .map(|ext| {
            let p = inputs.join(format!("empty.{ext}"));
            std::fs::write(&p, b"").unwrap();
            p
        })
        .collect();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut runs: Vec<(Vec<String>, &str)> = vec![
        (
            vec![s(&good), "--sigma".into(), "nan".into()],
            "noise level",
        ),
        (vec![s(&good), "--sigma=-1".into()], "noise level"),
        (vec![s(&good), "--sigma".into(), "-1".into()], "-1"),
        (
            vec![s(&good), "--sigma".into(), "inf".into()],
            "noise level",
        ),
        (
            vec![s(&good), "--sigma".into(), "1e30".into()],
            "noise level",
        ),
        (vec![s(&truncated), "--sigma".into(), "25".into()], "PNG"),
        (
            vec![s(&truncated), "--sigma=25".into(), "--threads=1".into()],
            "PNG",
        ),
        (vec![s(&tail), "--sigma".into(), "25".into()], "PNG"),
        (
            vec![s(&tail), "--sigma=25".into(), "--stripe=8".into()],
            "PNG",
        ),
        (vec![s(&nan), "--sigma".into(), "25".into()], "non-finite"),
    ];
    for p in &empty {
        runs.push((vec![s(p), "--sigma".into(), "25".into()], "empty."));
    }
    let mut cases = 0;
    for out_ext in ["png", "npy"] {
        for (args, msg) in &runs {
            let outdir = dir.join(format!("out-{cases}"));
            std::fs::create_dir_all(&outdir).unwrap();
            let out = outdir.join(format!("out.{out_ext}"));
            let r = Command::new(env!("CARGO_BIN_EXE_n3net"))
                .arg("denoise")
                .arg(&args[0])
                .arg(&out)
                .args(&args[1..])
                .output()
                .expect("run n3net");
            let err = String::from_utf8_lossy(&r.stderr);
            assert!(!r.status.success(), "{args:?} succeeded");
            assert!(err.contains(msg), "{args:?}: {err}");
            let left = std::fs::read_dir(&outdir).unwrap().count();
            assert_eq!(left, 0, "{args:?} left files in the output folder");
            cases += 1;
        }
    }
    println!("malformed runtime command line: {cases} cases");
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    // `n3net info | head -1`: the reader goes away before the tool writes.
    // Whichever comes first, the tool must exit cleanly, never panic.
    for args in [&["info"][..], &["--help"], &["info", "--height", "64"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_n3net"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run n3net");
        drop(child.stdout.take());
        let r = child.wait_with_output().expect("wait for n3net");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "{args:?}: {:?} {err}", r.status);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
