//! The weight blob (`.n3b`): the runtime's writer against the core's parser.
//! Round trips of the committed fixtures and the default model, f16 and q16
//! round trips, alignment, every single-byte corruption and truncation of
//! small f32, f16 and q16 blobs, the header and q16 section errors, and the
//! `n3net convert` / `info` / `denoise` commands.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use half::f16;
use n3net_core::blob::{self, ModelBlob};
use n3net_core::exec::stream::Stream;
use n3net_core::kernels::fixed::quantize_weights;
use n3net_core::model::{N3Params, Network, Precision, Weights};
use n3net_core::{ErrorKind, Isa, Plan};
use n3net_runtime::blob::{load_blob, write_blob, write_blob_as, Quant};
use n3net_runtime::denoise::{denoise_plane, NoiseLevel};
use n3net_runtime::image_io::read_npy_f32;
use n3net_runtime::model::{ConvSlot, Hyper, N3Slots};
use n3net_runtime::{onnx, Model};

fn fixture(case: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(case)
        .join(file)
}

/// `bytes` at a 16-byte aligned address plus `shift`.
struct Placed {
    store: Vec<u8>,
    start: usize,
    len: usize,
}

impl Placed {
    fn new(bytes: &[u8], shift: usize) -> Self {
        let mut store = vec![0u8; bytes.len() + 32];
        let start = store.as_ptr().align_offset(16) + shift;
        store[start..start + bytes.len()].copy_from_slice(bytes);
        Self {
            store,
            start,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.store[self.start..self.start + self.len]
    }
}

/// The first plane of a fixture's input (39×49).
fn fixture_plane() -> (Vec<f32>, usize, usize) {
    let (shape, data) = read_npy_f32(&fixture("tiny", "input.npy")).unwrap();
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    (data[..h * w].to_vec(), h, w)
}

fn assert_round_trip(model: &Model, name: &str) -> usize {
    let bytes = write_blob(model).unwrap();
    let back = load_blob(&bytes, name).unwrap();
    assert_eq!(back.hyper, model.hyper, "{name}: hyper-parameters");
    assert_eq!(back.source_parameters, model.source_parameters, "{name}");
    let (plane, h, w) = fixture_plane();
    let noise = NoiseLevel::Sigma(25.0);
    let want = denoise_plane(model, &plane, h, w, noise).unwrap();
    let got = denoise_plane(&back, &plane, h, w, noise).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&want), "{name}: outputs differ");
    bytes.len()
}

#[test]
fn fixtures_and_default_model_round_trip_bit_identically() {
    for case in ["tiny", "tiny-2ch"] {
        let model = onnx::load(&fixture(case, "model.onnx")).unwrap();
        let len = assert_round_trip(&model, case);
        println!("{case}: {len} bytes");
    }
    let model = n3net_runtime::default_model().unwrap();
    let len = assert_round_trip(&model, "default");
    println!("default model: {len} bytes");
}

#[test]
fn weights_are_viewed_in_place_and_misalignment_is_rejected() {
    let bytes = write_blob(&small_model()).unwrap();
    let placed = Placed::new(&bytes, 0);
    let blob = ModelBlob::parse(placed.bytes()).unwrap();
    let net = blob.network().unwrap();
    let w = net.dncnn_stage(0).layers()[0].weight.as_ptr();
    assert!(placed.bytes().as_ptr_range().contains(&w));
    for shift in [1, 2, 3, 5] {
        let odd = Placed::new(&bytes, shift);
        let err = ModelBlob::parse(odd.bytes()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Misaligned, "shift {shift}");
    }
}

fn conv(storage: &mut Vec<f32>, cin: usize, cout: usize, relu: bool) -> ConvSlot {
    let weight = storage.len();
    let n = cout * cin * 9;
    storage.extend((0..n).map(|i| ((i * 7919 % 23) as f32 - 11.0) * 0.02));
    let bias = storage.len();
    storage.extend((0..cout).map(|i| 0.01 * i as f32));
    ConvSlot {
        cin,
        cout,
        ksize: 3,
        relu,
        weight,
        bias,
    }
}

/// A small N³Net (one block, k = 1, 3×3 kernels, two features): a blob of
/// about a kilobyte, so every byte of it can be corrupted.
fn small_model() -> Model {
    let hyper = Hyper {
        in_channels: 1,
        out_channels: 1,
        n3_blocks: 1,
        interm_channels: 1,
        dncnn_depth: 2,
        dncnn_features: 2,
        dncnn_kernel: 3,
        embed_depth: 1,
        embed_features: 2,
        embed_kernel: 3,
        embed_out: 2,
        k: 1,
        patch_size: 4,
        patch_stride: 2,
        window: 3,
        temp_bias: 0.5,
        distance_bn: true,
        bn_eps: 1e-5,
        sigma: Some(25.0),
        export_size: Some((32, 32)),
        source: "small".into(),
    };
    let mut s = Vec::new();
    let dncnn0 = vec![conv(&mut s, 1, 2, true), conv(&mut s, 2, 1, false)];
    let embed = vec![conv(&mut s, 1, 2, false)];
    let temp = vec![conv(&mut s, 1, 1, false)];
    let dncnn1 = vec![conv(&mut s, 2, 2, true), conv(&mut s, 2, 1, false)];
    let params = N3Params {
        k: 1,
        patch: 4,
        stride: 2,
        window: 3,
        temp_bias: 0.5,
        logit_scale: 1.5,
        logit_shift: -0.25,
    };
    let n3 = vec![N3Slots {
        embed,
        temp,
        params,
    }];
    Model::new(hyper, 123, s, vec![dncnn0, dncnn1], n3).unwrap()
}

/// Recomputes the CRC over the recorded total length (when it can be read).
fn seal(b: &mut [u8]) {
    let total = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    if let Ok(crc) = blob::blob_crc(&b[..total.min(b.len())]) {
        b[blob::CRC_OFFSET..blob::CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Parses `bytes` (16-aligned); if valid, runs a 32×32 image through it
/// (whole-image for f32, streamed for f16 and q16). Errors are fine; a
/// panic fails the calling test.
fn parse_and_run(bytes: &[u8]) -> Result<(), ErrorKind> {
    let placed = Placed::new(bytes, 0);
    let blob = ModelBlob::parse(placed.bytes()).map_err(|e| e.kind())?;
    let net = blob.network().map_err(|e| e.kind())?;
    run(&net, 32, 32).map(|_| ()).map_err(|e| e.kind())
}

/// Runs an `h × w` image through `net`: whole-image for f32, streamed row
/// by row for f16 and q16.
fn run(net: &Network<'_>, h: usize, w: usize) -> Result<Vec<f32>, n3net_core::Error> {
    let input: Vec<f32> = (0..h * w * net.cin())
        .map(|i| (i % 17) as f32 / 17.0)
        .collect();
    let len = net.cout() * w;
    let mut out = vec![0.0; len * h];
    if net.precision() == Precision::F32 {
        let plan = Plan::new(net, h, w, Isa::detect())?;
        let mut ws = vec![0u8; plan.workspace_bytes()];
        plan.run(&input, &mut out, &mut ws)?;
        return Ok(out);
    }
    // The pattern read as rows (`h × cin × w`) is as good an image as read
    // as planes.
    let mut ws = vec![0u8; Stream::workspace_bytes(net, w)?];
    let mut s = Stream::new(net, h, w, Isa::detect(), &mut ws)?;
    for row in input.chunks_exact(net.cin() * w) {
        s.push_rows(row)?;
        if s.pending_rows() > 0 {
            let n = s.rows_pulled();
            s.pull_rows(&mut out[n * len..])?;
        }
    }
    Ok(out)
}

#[test]
fn every_single_byte_corruption_is_rejected() {
    let good = write_blob(&small_model()).unwrap();
    assert!(good.len() < 2048, "small blob is {} bytes", good.len());
    assert_eq!(parse_and_run(&good), Ok(()));
    for i in 0..good.len() {
        for mask in [0x01, 0xFF] {
            let mut b = good.clone();
            b[i] ^= mask;
            assert!(parse_and_run(&b).is_err(), "byte {i} ^ {mask:#x} accepted");
            assert!(load_blob(&b, "corrupt").is_err());
        }
    }
}

/// Flips bits of every byte of `good[..end]` but the CRC, re-seals the CRC,
/// and parses and runs each: returns (rejected, ran); never panics.
fn corrupt_behind_a_valid_crc(good: &[u8], end: usize) -> (usize, usize) {
    let (mut rejected, mut ran) = (0, 0);
    let crc = blob::CRC_OFFSET..blob::CRC_OFFSET + 4;
    for i in (0..end).filter(|i| !crc.contains(i)) {
        for mask in [0x01, 0xFF] {
            let mut b = good.to_vec();
            b[i] ^= mask;
            seal(&mut b);
            match parse_and_run(&b) {
                Ok(()) => ran += 1,
                Err(_) => rejected += 1,
            }
            if let Ok(m) = load_blob(&b, "corrupt") {
                assert!(m.network().is_ok());
            }
        }
    }
    (rejected, ran)
}

#[test]
fn header_corruptions_behind_a_valid_crc_never_panic() {
    let good = write_blob(&small_model()).unwrap();
    let header_len = u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
    let (rejected, ran) = corrupt_behind_a_valid_crc(&good, header_len);
    assert!(rejected > 0 && ran > 0, "rejected {rejected}, ran {ran}");
}

#[test]
fn every_truncation_is_rejected() {
    let good = write_blob(&small_model()).unwrap();
    for len in 0..good.len() {
        let placed = Placed::new(&good[..len], 0);
        let err = ModelBlob::parse(placed.bytes()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated, "length {len}");
    }
}

#[test]
fn header_errors_have_their_kinds() {
    let good = write_blob(&small_model()).unwrap();
    let kind = |at: usize, value: &[u8]| {
        let mut b = good.clone();
        b[at..at + value.len()].copy_from_slice(value);
        seal(&mut b);
        let placed = Placed::new(&b, 0);
        ModelBlob::parse(placed.bytes()).unwrap_err().kind()
    };
    assert_eq!(kind(0, b"ONNX"), ErrorKind::BadMagic);
    assert_eq!(kind(4, &2u16.to_le_bytes()), ErrorKind::UnsupportedVersion);
    assert_eq!(
        kind(6, &3u16.to_le_bytes()),
        ErrorKind::UnsupportedPrecision
    );
    assert_eq!(kind(6, &1u16.to_le_bytes()), ErrorKind::CorruptBlob);
    assert_eq!(kind(6, &2u16.to_le_bytes()), ErrorKind::CorruptBlob);
    let longer = (good.len() as u32 + 4).to_le_bytes();
    assert_eq!(kind(12, &longer), ErrorKind::Truncated);
    let shorter = (good.len() as u32 - 4).to_le_bytes();
    assert_eq!(kind(12, &shorter), ErrorKind::CorruptBlob);
    let mut b = good.clone();
    b[blob::CRC_OFFSET] ^= 1;
    let placed = Placed::new(&b, 0);
    let err = ModelBlob::parse(placed.bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Checksum);
}

fn n3net(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_n3net"));
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `info`'s lines after the first (which names the file).
fn info_body(model: &Path) -> String {
    let text = stdout(&n3net(&[
        &"info",
        &model,
        &"--height",
        &"64",
        &"--width",
        &"64",
    ]));
    text.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn cli_converts_inspects_and_denoises_with_a_blob() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("blob-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let onnx_model = fixture("tiny", "model.onnx");
    let blob_model = dir.join("tiny.n3b");
    let text = stdout(&n3net(&[&"convert", &onnx_model, &"-o", &blob_model]));
    assert!(text.contains("bytes"), "{text}");
    assert_eq!(info_body(&blob_model), info_body(&onnx_model));

    let input = fixture("tiny", "input.npy");
    let (from_blob, from_onnx) = (dir.join("blob.npy"), dir.join("onnx.npy"));
    for (model, out) in [(&blob_model, &from_blob), (&onnx_model, &from_onnx)] {
        stdout(&n3net(&[&"denoise", &input, out, &"--model", model]));
    }
    assert_eq!(
        std::fs::read(&from_blob).unwrap(),
        std::fs::read(&from_onnx).unwrap()
    );

    let bad = dir.join("bad.n3b");
    std::fs::write(&bad, b"N3NB not really a blob").unwrap();
    let unknown = dir.join("model.bin");
    std::fs::write(&unknown, b"whatever").unwrap();
    for (model, says) in [(&bad, "not a valid weight blob"), (&unknown, "extension")] {
        let out = n3net(&[&"info", model]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
}

/// One q16 activation scale per tensor of `model`'s network, all 1/1024 (an
/// N³ block's output then has its input's scale, as q16 requires).
fn unit_scales(model: &Model) -> Vec<f32> {
    vec![1.0 / 1024.0; model.network().unwrap().activation_count()]
}

/// The f16 and q16 blobs of [`small_model`], with their activation scales.
fn sixteen_bit_blobs() -> Vec<(Precision, Vec<u8>)> {
    let model = small_model();
    let scales = unit_scales(&model);
    let q16 = Quant::Q16 {
        activation_scales: &scales,
    };
    [Quant::F16, q16]
        .into_iter()
        .map(|quant| (quant.precision(), write_blob_as(&model, quant).unwrap()))
        .collect()
}

/// `good` with `bytes` written at `at`, CRC recomputed, parsed 16-aligned.
fn patched_kind(good: &[u8], at: usize, bytes: &[u8]) -> Result<(), ErrorKind> {
    let mut b = good.to_vec();
    b[at..at + bytes.len()].copy_from_slice(bytes);
    seal(&mut b);
    let placed = Placed::new(&b, 0);
    ModelBlob::parse(placed.bytes())
        .map(|_| ())
        .map_err(|e| e.kind())
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Checks that `got` holds the f32 weights `want` (`cout` output channels,
/// `taps` per channel pair) converted to `quant`'s precision as the writer
/// converts them.
fn assert_stored(
    quant: Quant<'_>,
    want: &Weights<'_>,
    got: &Weights<'_>,
    cout: usize,
    taps: usize,
) {
    let Weights::F32(w) = *want else {
        panic!("the source model is f32");
    };
    match (quant, *got) {
        (Quant::F16, Weights::F16(v)) => {
            let rounded: Vec<f16> = w.iter().map(|&x| f16::from_f32(x)).collect();
            assert_eq!(v, rounded);
        }
        (Quant::Q16 { .. }, Weights::Q16 { values, scales }) => {
            let mut q = vec![0i16; w.len()];
            let mut s = vec![0f32; cout];
            quantize_weights(w, cout, taps, &mut q, &mut s).unwrap();
            assert_eq!(values, q);
            assert_eq!(scales, s);
        }
        (quant, got) => panic!("{quant:?} blob holds {:?} weights", got.precision()),
    }
}

/// f32 weights of a 16-bit layer: widened, or `scale · value`.
fn dequantised(w: &Weights<'_>, cout: usize) -> Vec<f32> {
    match *w {
        Weights::F32(v) => v.to_vec(),
        Weights::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
        Weights::Q16 { values, scales } => {
            let per = values.len() / cout;
            values
                .iter()
                .enumerate()
                .map(|(i, &q)| f32::from(q) * scales[i / per])
                .collect()
        }
    }
}

#[test]
fn f16_and_q16_blobs_round_trip() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send_sync_clone::<Model>();
    let model = small_model();
    let source = model.network().unwrap();
    let f32_out = run(&source, 32, 32).unwrap();
    let scales = unit_scales(&model);
    let q16 = Quant::Q16 {
        activation_scales: &scales,
    };
    for quant in [Quant::F16, q16] {
        let precision = quant.precision();
        let bytes = write_blob_as(&model, quant).unwrap();
        let back = load_blob(&bytes, "small").unwrap();
        assert_eq!(back.precision(), precision);
        assert_eq!(back.hyper, model.hyper, "{precision:?}: hyper-parameters");
        assert_eq!(back.source_parameters, model.source_parameters);
        let net = back.network().unwrap();
        assert_eq!(net.precision(), precision);
        let scales_back = net.activation_scales();
        if precision == Precision::Q16 {
            assert_eq!(scales_back, scales);
        } else {
            assert!(scales_back.is_empty());
        }
        // The stored weights, the f32 weights the model holds (a plain f32
        // blob of it), and the biases.
        let as_f32 = load_blob(&write_blob(&back).unwrap(), "f32").unwrap();
        assert_eq!(as_f32.precision(), Precision::F32);
        let plain = as_f32.network().unwrap();
        let layers = source.layers().iter().zip(net.layers()).zip(plain.layers());
        for ((want, got), f) in layers {
            let taps = want.ksize * want.ksize;
            assert_stored(quant, &want.weight, &got.weight, want.cout, taps);
            let Weights::F32(f) = f.weight else {
                panic!("an f32 blob holds f32 weights");
            };
            assert_eq!(f, dequantised(&got.weight, got.cout));
            assert_eq!(got.bias, want.bias);
        }
        // Weights viewed in place in the blob bytes.
        let placed = Placed::new(&bytes, 0);
        let blob = ModelBlob::parse(placed.bytes()).unwrap();
        assert_eq!(blob.precision(), precision);
        let in_place = blob.network().unwrap();
        let range = placed.bytes().as_ptr_range();
        for l in in_place.layers() {
            assert!(range.contains(&l.weight.as_ptr()), "{precision:?} weights");
            assert!(
                range.contains(&l.bias.as_ptr().cast()),
                "{precision:?} biases"
            );
            if let Weights::Q16 { scales, .. } = l.weight {
                assert!(range.contains(&scales.as_ptr().cast()), "weight scales");
            }
        }
        if precision == Precision::Q16 {
            let acts = in_place.activation_scales().as_ptr().cast();
            assert!(range.contains(&acts), "activation scales");
        }
        // It runs; a clone too; with_precision is write_blob_as + load_blob.
        let out = run(&net, 32, 32).unwrap();
        assert!(out.iter().all(|v| v.is_finite()));
        if precision == Precision::F16 {
            let diff = out.iter().zip(&f32_out).map(|(a, b)| (a - b).abs());
            let max = diff.fold(0.0f32, f32::max);
            assert!(max < 0.05, "f16 differs from f32 by {max}");
        }
        let clone = back.clone();
        assert_eq!(run(&clone.network().unwrap(), 32, 32).unwrap(), out);
        let again = model.with_precision(quant).unwrap();
        assert_eq!(again.precision(), precision);
        assert_eq!(write_blob(&again).unwrap(), write_blob(&back).unwrap());
    }
}

#[test]
fn q16_needs_its_activation_scales() {
    let model = small_model();
    let n = unit_scales(&model).len();
    let blob_err = |scales: &[f32]| {
        let quant = Quant::Q16 {
            activation_scales: scales,
        };
        write_blob_as(&model, quant).unwrap_err()
    };
    for count in [0, n - 1, n + 1] {
        let err = blob_err(&vec![1.0 / 1024.0; count]);
        assert!(err.to_string().contains("activation scales"), "{err}");
    }
    // Not positive, not finite, or a block output scale other than its
    // input's (tensor 2 is the block input of the small model, 5 its output).
    let mut bad = vec![vec![1.0 / 1024.0; n]; 3];
    bad[0][1] = 0.0;
    bad[1][2] = f32::NAN;
    bad[2][5] = 1.0 / 512.0;
    for scales in &bad {
        let err = blob_err(scales);
        let core = err
            .downcast_ref::<n3net_core::Error>()
            .expect("a core error");
        assert_eq!(core.kind(), ErrorKind::InvalidModel, "{err:#}");
    }
}

#[test]
fn q16_sections_errors_have_their_kinds() {
    let blobs = sixteen_bit_blobs();
    let (_, q16) = &blobs[1];
    let acts = u32_at(q16, 0x5C);
    let at = |v: usize| (v as u32).to_le_bytes();
    // Activation scales: missing, unaligned, overlapping the previous
    // section, running past the end.
    for offset in [0, acts + 4, acts - 16, acts + 16] {
        let got = patched_kind(q16, 0x5C, &at(offset));
        assert_eq!(got, Err(ErrorKind::CorruptBlob), "offset {offset}");
    }
    // A layer's weight scales: missing, a wrong count, unaligned.
    let e = blob::HEADER_BYTES + blob::BLOCK_ENTRY_BYTES;
    let (scale_at, scale_len) = (u32_at(q16, e + 24), u32_at(q16, e + 28));
    for (field, v) in [
        (e + 24, 0),
        (e + 28, 0),
        (e + 28, scale_len - 4),
        (e + 28, scale_len + 4),
        (e + 24, scale_at + 4),
    ] {
        let got = patched_kind(q16, field, &at(v));
        assert_eq!(got, Err(ErrorKind::CorruptBlob), "field {field} = {v}");
    }
    // The scale sections in an f16 blob.
    let (_, f16b) = &blobs[0];
    for field in [0x5C, e + 24] {
        let got = patched_kind(f16b, field, &at(f16b.len()));
        assert_eq!(got, Err(ErrorKind::CorruptBlob), "field {field}");
    }
    // Every precision needs the blob start 4-byte aligned.
    for (precision, bytes) in &blobs {
        for shift in [1, 2, 3, 4] {
            let placed = Placed::new(bytes, shift);
            let got = ModelBlob::parse(placed.bytes()).map(|_| ());
            let want = if shift == 4 {
                Ok(())
            } else {
                Err(ErrorKind::Misaligned)
            };
            assert_eq!(got.map_err(|e| e.kind()), want, "{precision:?} at {shift}");
        }
    }
}

#[test]
fn every_single_byte_corruption_of_16_bit_blobs_is_rejected() {
    for (precision, good) in sixteen_bit_blobs() {
        assert_eq!(parse_and_run(&good), Ok(()), "{precision:?}");
        for i in 0..good.len() {
            for mask in [0x01, 0xFF] {
                let mut b = good.clone();
                b[i] ^= mask;
                let what = format!("{precision:?}: byte {i} ^ {mask:#x}");
                assert!(parse_and_run(&b).is_err(), "{what} accepted");
                assert!(load_blob(&b, "corrupt").is_err(), "{what} loaded");
            }
        }
    }
}

#[test]
fn corruptions_of_16_bit_blobs_behind_a_valid_crc_never_panic() {
    for (precision, good) in sixteen_bit_blobs() {
        let (rejected, ran) = corrupt_behind_a_valid_crc(&good, good.len());
        assert!(
            rejected > 0 && ran > 0,
            "{precision:?}: rejected {rejected}, ran {ran}"
        );
    }
}

#[test]
fn every_truncation_of_16_bit_blobs_is_rejected() {
    for (precision, good) in sixteen_bit_blobs() {
        for len in 0..good.len() {
            let placed = Placed::new(&good[..len], 0);
            let err = ModelBlob::parse(placed.bytes()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Truncated, "{precision:?}: {len}");
            assert!(load_blob(&good[..len], "short").is_err());
        }
    }
}
