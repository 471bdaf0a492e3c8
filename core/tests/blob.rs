//! The blob parser on a small hand-written blob: a valid one runs, and the
//! header checks give their specific error kinds. Blobs of whole models are
//! tested against the runtime's writer in `runtime/tests/blob.rs`.

use n3net_core::blob::{self, ModelBlob, Precision};
use n3net_core::{ErrorKind, Isa, Plan};

/// A blob of one DnCNN stage (1 → 4 with ReLU, 4 → 1, 3×3, residual) and no
/// N³ block, laid out as `docs/blob-format.md` says.
fn tiny_blob() -> Vec<u8> {
    let source = b"hand-written";
    let layers = [(1u16, 4u16, true), (4, 1, false)];
    let header_len =
        (blob::HEADER_BYTES + 2 * blob::LAYER_ENTRY_BYTES + source.len()).div_ceil(16) * 16;
    let mut b = vec![0u8; header_len];
    b[..4].copy_from_slice(&blob::MAGIC);
    b[4..6].copy_from_slice(&blob::VERSION.to_le_bytes());
    b[8..12].copy_from_slice(&(header_len as u32).to_le_bytes());
    b[0x16..0x18].copy_from_slice(&(source.len() as u16).to_le_bytes());
    for (at, v) in [(0x18, 1u16), (0x1A, 1), (0x1C, 1), (0x1E, 0), (0x20, 2)] {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    b[0x58..0x5C].copy_from_slice(&1.0f32.to_le_bytes());
    let src_at = blob::HEADER_BYTES + 2 * blob::LAYER_ENTRY_BYTES;
    b[src_at..src_at + source.len()].copy_from_slice(source);
    for (i, &(cin, cout, relu)) in layers.iter().enumerate() {
        let e = blob::HEADER_BYTES + i * blob::LAYER_ENTRY_BYTES;
        b[e..e + 2].copy_from_slice(&cin.to_le_bytes());
        b[e + 2..e + 4].copy_from_slice(&cout.to_le_bytes());
        b[e + 4] = 3;
        b[e + 5] = blob::LAYER_RESIDUAL | if relu { blob::LAYER_RELU } else { 0 };
        let weights = usize::from(cin) * usize::from(cout) * 9;
        for (field, n) in [(8, weights), (16, usize::from(cout))] {
            let at = b.len();
            b.extend((0..n).flat_map(|j| (0.01 * (j % 7) as f32 - 0.02).to_le_bytes()));
            b.resize(b.len().div_ceil(16) * 16, 0);
            b[e + field..e + field + 4].copy_from_slice(&(at as u32).to_le_bytes());
            b[e + field + 4..e + field + 8].copy_from_slice(&(4 * n as u32).to_le_bytes());
        }
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
    let w = net.dncnn()[0].layers()[0].weight;
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
    for code in [1u16, 2, 3] {
        assert_eq!(
            with(6, &code.to_le_bytes(), true),
            ErrorKind::UnsupportedPrecision
        );
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
