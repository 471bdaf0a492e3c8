//! The weight blob (`.n3b`): the runtime's writer against the core's parser.
//! Round trips of the committed fixtures and the default model, alignment,
//! every single-byte corruption and truncation of a small blob, the header
//! errors, and the `n3net convert` / `info` / `denoise` commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use n3net_core::blob::{self, ModelBlob};
use n3net_core::model::N3Params;
use n3net_core::{ErrorKind, Isa, Plan};
use n3net_runtime::blob::{load_blob, write_blob};
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
    let w = net.dncnn()[0].layers()[0].weight.as_ptr();
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

/// Parses `bytes` (16-aligned); if valid, runs a 32×32 image through it.
/// Errors are fine; a panic fails the calling test.
fn parse_and_run(bytes: &[u8]) -> Result<(), ErrorKind> {
    let placed = Placed::new(bytes, 0);
    let blob = ModelBlob::parse(placed.bytes()).map_err(|e| e.kind())?;
    let net = blob.network().map_err(|e| e.kind())?;
    let plan = Plan::new(&net, 32, 32, Isa::detect()).map_err(|e| e.kind())?;
    let mut ws = vec![0u8; plan.workspace_bytes()];
    let input: Vec<f32> = (0..32 * 32 * net.cin())
        .map(|i| (i % 17) as f32 / 17.0)
        .collect();
    let mut out = vec![0.0; 32 * 32 * net.cout()];
    plan.run(&input, &mut out, &mut ws).map_err(|e| e.kind())
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

#[test]
fn header_corruptions_behind_a_valid_crc_never_panic() {
    let good = write_blob(&small_model()).unwrap();
    let header_len = u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
    let (mut rejected, mut ran) = (0, 0);
    for i in (0..header_len).filter(|i| !(blob::CRC_OFFSET..blob::CRC_OFFSET + 4).contains(i)) {
        for mask in [0x01, 0xFF] {
            let mut b = good.clone();
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
