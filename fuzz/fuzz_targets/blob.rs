//! The weight blob parser, and the network an accepted blob describes.
//!
//! Input: one mode byte, then the blob. Mode bit 0 re-seals the CRC-32 after
//! the mutation, so that the checks behind the checksum (tables, sections,
//! the network) see the mutated bytes; bits 1–2 place the blob 0–3 bytes
//! past a 16-byte boundary. A blob that parses must be aligned, must build
//! its network, and the network must stream a small image to the end. (The
//! output is not checked: resealed weights may be finite yet absurd.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use n3net_core::blob::{blob_crc, CRC_OFFSET, HEADER_BYTES};
use n3net_core::exec::stream::Stream;
use n3net_core::{Isa, ModelBlob};
use n3net_fuzz::Placed;

/// Images no larger than this are run; larger workspaces are skipped.
const MAX_WORKSPACE: usize = 64 << 20;

fn reseal(bytes: &mut [u8]) {
    let total = bytes
        .get(0x0C..0x10)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let Some(total) = total.filter(|&t| (HEADER_BYTES..=bytes.len()).contains(&t)) else {
        return;
    };
    let crc = blob_crc(&bytes[..total]).expect("a whole header");
    bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let offset = usize::from(mode >> 1) % 4;
    let mut placed = Placed::new(body, offset);
    if mode & 1 == 1 {
        reseal(placed.bytes_mut());
    }
    let Ok(blob) = ModelBlob::parse(placed.bytes()) else {
        return;
    };
    assert_eq!(offset, 0, "a misaligned blob was accepted");
    let net = blob.network().expect("a parsed blob builds its network");
    let (h, w) = (
        usize::from(mode >> 3) % 24 + 1,
        usize::from(mode >> 3) % 19 + 1,
    );
    let Ok(bytes) = Stream::workspace_bytes(&net, w) else {
        return;
    };
    if bytes > MAX_WORKSPACE {
        return;
    }
    let mut ws = vec![0u8; bytes];
    let Ok(mut s) = Stream::new(&net, h, w, Isa::detect(), &mut ws) else {
        return;
    };
    let row: Vec<f32> = (0..net.cin() * w).map(|i| (i % 7) as f32 / 7.0).collect();
    let mut out = vec![0f32; net.cout() * w];
    for _ in 0..h {
        s.push_rows(&row).expect("a row of the stream's width");
        while s.pull_rows(&mut out).expect("a whole output row") == 1 {}
    }
    assert_eq!(s.rows_pulled(), h);
});
