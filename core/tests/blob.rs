//! The blob parser on small hand-written blobs in f32, f16 and q16: valid
//! ones run in place, the header and section checks give their specific
//! error kinds, and every single-byte corruption and truncation of the
//! 16-bit blobs is rejected. Blobs of whole models are tested against the
//! runtime's writer in `runtime/tests/blob.rs`.
#![deny(clippy::undocumented_unsafe_blocks)]

use half::f16;
use n3net_core::blob::{self, ModelBlob, Precision};
use n3net_core::exec::stream::Stream;
use n3net_core::{ErrorKind, Isa, Network, Plan, Weights};

/// The tiny network's convolutions: (cin, cout, ReLU).
const LAYERS: [(u16, u16, bool); 2] = [(1, 4, true), (4, 1, false)];
/// Activation tensors of the tiny network: the input and two convolutions.
const ACTIVATIONS: usize = 3;
/// The q16 activation scale of every tensor.
const ACTIVATION_SCALE: f32 = 1.0 / 1024.0;

/// Weight or bias `j` of a layer (f32, and rounded for f16).
fn value(j: usize) -> f32 {
    0.01 * (j % 7) as f32 - 0.02
}

/// q16 weight `j` of a layer.
fn q16_value(j: usize) -> i16 {
    100 * (j % 7) as i16 - 200
}

/// q16 weight scale of output channel `co`.
fn q16_scale(co: usize) -> f32 {
    1e-4 * (co + 1) as f32
}

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

/// Appends `bytes` as a 16-aligned section and records it at `field` (offset,
/// then length).
fn push_section(b: &mut Vec<u8>, field: usize, bytes: &[u8]) {
    let at = b.len();
    b.extend_from_slice(bytes);
    b.resize(b.len().div_ceil(16) * 16, 0);
    b[field..field + 4].copy_from_slice(&(at as u32).to_le_bytes());
    b[field + 4..field + 8].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
}

/// The offset of layer `i`'s table entry (the tiny network has no N³ block).
fn entry(i: usize) -> usize {
    blob::HEADER_BYTES + i * blob::LAYER_ENTRY_BYTES
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// A blob of one DnCNN stage (1 → 4 with ReLU, 4 → 1, 3×3, residual) and no
/// N³ block, in f32, laid out as `docs/blob-format.md` says.
fn tiny_blob() -> Vec<u8> {
    tiny_blob_as(Precision::F32)
}

/// [`tiny_blob`] with its weights in `precision`: f16 holds [`value`]
/// rounded; q16 holds [`q16_value`] with [`q16_scale`] and the activation
/// scales (all [`ACTIVATION_SCALE`]).
fn tiny_blob_as(precision: Precision) -> Vec<u8> {
    let source = b"hand-written";
    let header_len =
        (blob::HEADER_BYTES + 2 * blob::LAYER_ENTRY_BYTES + source.len()).div_ceil(16) * 16;
    let mut b = vec![0u8; header_len];
    b[..4].copy_from_slice(&blob::MAGIC);
    b[4..6].copy_from_slice(&blob::VERSION.to_le_bytes());
    b[6..8].copy_from_slice(&blob::precision_code(precision).to_le_bytes());
    b[8..12].copy_from_slice(&(header_len as u32).to_le_bytes());
    b[0x16..0x18].copy_from_slice(&(source.len() as u16).to_le_bytes());
    for (at, v) in [(0x18, 1u16), (0x1A, 1), (0x1C, 1), (0x1E, 0), (0x20, 2)] {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    b[0x58..0x5C].copy_from_slice(&1.0f32.to_le_bytes());
    let src_at = blob::HEADER_BYTES + 2 * blob::LAYER_ENTRY_BYTES;
    b[src_at..src_at + source.len()].copy_from_slice(source);
    for (i, &(cin, cout, relu)) in LAYERS.iter().enumerate() {
        let e = entry(i);
        b[e..e + 2].copy_from_slice(&cin.to_le_bytes());
        b[e + 2..e + 4].copy_from_slice(&cout.to_le_bytes());
        b[e + 4] = 3;
        b[e + 5] = blob::LAYER_RESIDUAL | if relu { blob::LAYER_RELU } else { 0 };
        let (n, cout) = (usize::from(cin) * usize::from(cout) * 9, usize::from(cout));
        let weights: Vec<u8> = match precision {
            Precision::F32 => f32_bytes((0..n).map(value)),
            Precision::F16 => (0..n)
                .flat_map(|j| f16::from_f32(value(j)).to_le_bytes())
                .collect(),
            Precision::Q16 => (0..n).flat_map(|j| q16_value(j).to_le_bytes()).collect(),
        };
        push_section(&mut b, e + 8, &weights);
        push_section(&mut b, e + 16, &f32_bytes((0..cout).map(value)));
        if precision == Precision::Q16 {
            push_section(&mut b, e + 24, &f32_bytes((0..cout).map(q16_scale)));
        }
    }
    if precision == Precision::Q16 {
        let at = b.len();
        b.extend(f32_bytes([ACTIVATION_SCALE; ACTIVATIONS]));
        b.resize(b.len().div_ceil(16) * 16, 0);
        b[0x5C..0x60].copy_from_slice(&(at as u32).to_le_bytes());
    }
    let total = b.len() as u32;
    b[12..16].copy_from_slice(&total.to_le_bytes());
    seal(&mut b);
    b
}

/// Recomputes the CRC field over the recorded total length (or the whole
/// slice, if shorter).
fn seal(b: &mut [u8]) {
    let total = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let crc = blob::blob_crc(&b[..total.min(b.len())]).unwrap();
    b[blob::CRC_OFFSET..blob::CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
}

/// `bytes` copied to a 16-byte aligned buffer.
fn aligned(bytes: &[u8]) -> Vec<u128> {
    let mut v = vec![0u128; bytes.len().div_ceil(16)];
    for (dst, src) in v.iter_mut().zip(bytes.chunks(16)) {
        let mut chunk = [0u8; 16];
        chunk[..src.len()].copy_from_slice(src);
        *dst = u128::from_ne_bytes(chunk);
    }
    v
}

fn as_bytes(v: &[u128], len: usize) -> &[u8] {
    // SAFETY: a u128 slice is plain bytes; `len` is within it.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), len) }
}

fn parse_kind(bytes: &[u8]) -> ErrorKind {
    let store = aligned(bytes);
    ModelBlob::parse(as_bytes(&store, bytes.len()))
        .map(|_| ())
        .unwrap_err()
        .kind()
}

/// `good` with `bytes` written at `at`, CRC recomputed.
fn patched(good: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut b = good.to_vec();
    b[at..at + bytes.len()].copy_from_slice(bytes);
    seal(&mut b);
    b
}

/// Streams an `h × w` image through `net`, one row at a time.
fn stream(net: &Network<'_>, h: usize, w: usize) -> n3net_core::error::Result<Vec<f32>> {
    let mut ws = vec![0u8; Stream::workspace_bytes(net, w)?];
    let mut s = Stream::new(net, h, w, Isa::Generic, &mut ws)?;
    let row: Vec<f32> = (0..net.cin() * w).map(|i| (i % 5) as f32 / 5.0).collect();
    let len = net.cout() * w;
    let mut out = vec![0.0; len * h];
    for _ in 0..h {
        s.push_rows(&row)?;
        if s.pending_rows() > 0 {
            let n = s.rows_pulled();
            s.pull_rows(&mut out[n * len..])?;
        }
    }
    Ok(out)
}

#[test]
fn a_valid_blob_runs_in_place() {
    let b = tiny_blob();
    let store = aligned(&b);
    let bytes = as_bytes(&store, b.len());
    let blob = ModelBlob::parse(bytes).unwrap();
    assert_eq!(blob.precision(), Precision::F32);
    assert_eq!(blob.source(), "hand-written");
    assert_eq!(blob.len(), b.len());
    assert_eq!(blob.meta().n3_blocks, 0);
    let net = blob.network().unwrap();
    let w = net.dncnn_stage(0).layers()[0].weight;
    let range = bytes.as_ptr_range();
    assert!(range.contains(&w.as_ptr()), "weights are viewed in place");
    let plan = Plan::new(&net, 8, 8, Isa::Generic).unwrap();
    let mut ws = vec![0u8; plan.workspace_bytes()];
    let mut out = vec![0.0; 64];
    plan.run(&[0.5; 64], &mut out, &mut ws).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn header_checks_give_their_kinds() {
    let good = tiny_blob();
    let with = |at: usize, bytes: &[u8], reseal: bool| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        if reseal {
            seal(&mut b);
        }
        parse_kind(&b)
    };
    assert_eq!(with(0, b"N3NC", true), ErrorKind::BadMagic);
    assert_eq!(
        with(4, &2u16.to_le_bytes(), true),
        ErrorKind::UnsupportedVersion
    );
    for code in [3u16, 0xFFFF] {
        assert_eq!(
            with(6, &code.to_le_bytes(), true),
            ErrorKind::UnsupportedPrecision
        );
    }
    // f32 sections read as f16 have the wrong lengths; as q16, the
    // activation scales are missing.
    for code in [1u16, 2] {
        assert_eq!(with(6, &code.to_le_bytes(), true), ErrorKind::CorruptBlob);
    }
    let longer = (good.len() as u32 + 16).to_le_bytes();
    assert_eq!(with(12, &longer, true), ErrorKind::Truncated);
    let shorter = (good.len() as u32 - 16).to_le_bytes();
    assert_eq!(with(12, &shorter, true), ErrorKind::CorruptBlob);
    assert_eq!(with(40, &[0xAB], false), ErrorKind::Checksum);
}

#[test]
fn truncations_and_misalignment_are_rejected() {
    let good = tiny_blob();
    for len in 0..good.len() {
        assert_eq!(
            parse_kind(&good[..len]),
            ErrorKind::Truncated,
            "length {len}"
        );
    }
    let store = aligned(&[&[0u8][..], &good].concat());
    let shifted = &as_bytes(&store, good.len() + 1)[1..];
    let err = ModelBlob::parse(shifted).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Misaligned);
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut b = tiny_blob();
    let len = b.len();
    b.extend([0xFF; 32]);
    let store = aligned(&b);
    let blob = ModelBlob::parse(as_bytes(&store, b.len())).unwrap();
    assert_eq!(blob.len(), len);
}

#[test]
fn f16_and_q16_blobs_run_in_place() {
    for precision in [Precision::F16, Precision::Q16] {
        let b = tiny_blob_as(precision);
        let store = aligned(&b);
        let bytes = as_bytes(&store, b.len());
        let blob = ModelBlob::parse(bytes).unwrap();
        assert_eq!(blob.precision(), precision);
        let net = blob.network().unwrap();
        assert_eq!(net.precision(), precision);
        let range = bytes.as_ptr_range();
        let inside = |p: *const f32| range.contains(&p.cast());
        for l in net.layers() {
            let n = l.weight.len();
            assert!(range.contains(&l.weight.as_ptr()), "weights in place");
            assert!(inside(l.bias.as_ptr()), "biases in place");
            let bias: Vec<f32> = (0..l.cout).map(value).collect();
            assert_eq!(l.bias, bias);
            match l.weight {
                Weights::F16(w) => {
                    let want: Vec<f16> = (0..n).map(|j| f16::from_f32(value(j))).collect();
                    assert_eq!(w, want);
                }
                Weights::Q16 { values, scales } => {
                    let want: Vec<i16> = (0..n).map(q16_value).collect();
                    assert_eq!(values, want);
                    let want: Vec<f32> = (0..l.cout).map(q16_scale).collect();
                    assert_eq!(scales, want);
                    assert!(inside(scales.as_ptr()), "weight scales in place");
                }
                Weights::F32(_) => panic!("{precision:?} blob gave f32 weights"),
            }
        }
        let acts = net.activation_scales();
        if precision == Precision::Q16 {
            assert_eq!(acts, [ACTIVATION_SCALE; ACTIVATIONS]);
            assert!(inside(acts.as_ptr()), "activation scales in place");
        } else {
            assert!(acts.is_empty());
        }
        let out = stream(&net, 8, 8).unwrap();
        assert!(out.iter().all(|v| v.is_finite()));
        let err = Plan::new(&net, 8, 8, Isa::Generic).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedPrecision);
    }
}

#[test]
fn q16_scale_sections_are_checked() {
    let q16 = tiny_blob_as(Precision::Q16);
    let acts = u32_at(&q16, 0x5C);
    let at = |v: usize| (v as u32).to_le_bytes();
    // Without activation scales; unaligned; overlapping the last layer
    // section; past the end.
    for offset in [0, acts + 4, acts - 16, acts + 16] {
        let b = patched(&q16, 0x5C, &at(offset));
        assert_eq!(parse_kind(&b), ErrorKind::CorruptBlob, "offset {offset}");
    }
    // Fewer activation scales than the tables need: the section is cut
    // short by the total length.
    let mut short = q16[..acts + 8].to_vec();
    short[12..16].copy_from_slice(&at(acts + 8));
    seal(&mut short);
    assert_eq!(parse_kind(&short), ErrorKind::CorruptBlob);
    // A layer's weight scales: missing, one too few or too many, unaligned.
    let (e0, e1) = (entry(0), entry(1));
    let scale_at = u32_at(&q16, e1 + 24);
    for (field, v) in [
        (e0 + 24, 0),
        (e0 + 28, 0),
        (e0 + 28, 12),
        (e0 + 28, 20),
        (e1 + 28, 8),
        (e1 + 24, scale_at + 4),
    ] {
        let b = patched(&q16, field, &at(v));
        assert_eq!(
            parse_kind(&b),
            ErrorKind::CorruptBlob,
            "field {field} = {v}"
        );
    }
    // The scale sections in an f16 blob.
    let f16b = tiny_blob_as(Precision::F16);
    let free = f16b.len();
    for field in [0x5C, e0 + 24] {
        let b = patched(&f16b, field, &at(free));
        assert_eq!(parse_kind(&b), ErrorKind::CorruptBlob, "field {field}");
    }
    // A q16 blob read as f16, and an f16 blob read as q16.
    let code = |p| blob::precision_code(p).to_le_bytes();
    assert_eq!(
        parse_kind(&patched(&q16, 6, &code(Precision::F16))),
        ErrorKind::CorruptBlob
    );
    assert_eq!(
        parse_kind(&patched(&f16b, 6, &code(Precision::Q16))),
        ErrorKind::CorruptBlob
    );
}

#[test]
fn values_the_model_refuses_give_their_kinds() {
    let q16 = tiny_blob_as(Precision::Q16);
    let acts = u32_at(&q16, 0x5C);
    let weights = u32_at(&q16, entry(0) + 8);
    let scales = u32_at(&q16, entry(0) + 24);
    let f32s = |v: f32| v.to_le_bytes();
    let cases = [
        (acts, f32s(0.0).to_vec(), ErrorKind::InvalidModel),
        (acts + 4, f32s(f32::NAN).to_vec(), ErrorKind::InvalidModel),
        (scales, f32s(-1.0).to_vec(), ErrorKind::NonFiniteWeight),
        (
            scales,
            f32s(f32::INFINITY).to_vec(),
            ErrorKind::NonFiniteWeight,
        ),
        (
            weights,
            i16::MIN.to_le_bytes().to_vec(),
            ErrorKind::InvalidModel,
        ),
    ];
    for (at, bytes, kind) in cases {
        assert_eq!(parse_kind(&patched(&q16, at, &bytes)), kind, "at {at}");
    }
    let f16b = tiny_blob_as(Precision::F16);
    let weights = u32_at(&f16b, entry(1) + 8);
    for v in [f16::NAN, f16::INFINITY] {
        let b = patched(&f16b, weights + 2, &v.to_le_bytes());
        assert_eq!(parse_kind(&b), ErrorKind::NonFiniteWeight);
    }
}

#[test]
fn sixteen_bit_blobs_need_a_4_byte_aligned_start() {
    for precision in [Precision::F16, Precision::Q16] {
        let good = tiny_blob_as(precision);
        for shift in [1, 2, 3, 4] {
            let store = aligned(&[&vec![0u8; shift][..], &good].concat());
            let bytes = &as_bytes(&store, shift + good.len())[shift..];
            let parsed = ModelBlob::parse(bytes).map(|_| ());
            let want = if shift == 4 {
                Ok(())
            } else {
                Err(ErrorKind::Misaligned)
            };
            assert_eq!(
                parsed.map_err(|e| e.kind()),
                want,
                "{precision:?} at {shift}"
            );
        }
    }
}

#[test]
fn every_single_byte_corruption_of_16_bit_blobs_is_rejected() {
    for precision in [Precision::F16, Precision::Q16] {
        let good = tiny_blob_as(precision);
        let mut b = good.clone();
        for i in 0..good.len() {
            for mask in [0x01, 0xFF] {
                b[i] ^= mask;
                let store = aligned(&b);
                let parsed = ModelBlob::parse(as_bytes(&store, b.len()));
                assert!(
                    parsed.and_then(|blob| blob.network()).is_err(),
                    "{precision:?}: byte {i} ^ {mask:#x} accepted"
                );
                b[i] ^= mask;
            }
        }
    }
}

#[test]
fn every_truncation_of_16_bit_blobs_is_rejected() {
    for precision in [Precision::F16, Precision::Q16] {
        let good = tiny_blob_as(precision);
        for len in 0..good.len() {
            assert_eq!(
                parse_kind(&good[..len]),
                ErrorKind::Truncated,
                "{precision:?}: length {len}"
            );
        }
    }
}
