//! Time of one streamed image through a weight blob, per instruction set:
//! `cargo run --release -p n3net-core --example stream_speed -- MODEL.n3b [SIZE] [generic]`.
//!
//! The image is a smooth pattern plus deterministic noise, `SIZE × SIZE`
//! (default 256) with as many channels as the model reads. Prints the best of
//! three runs with the detected instruction set (and the reference kernels
//! when `generic` is given), in seconds and megapixels per second.

use std::time::Instant;

use n3net_core::blob::ModelBlob;
use n3net_core::exec::stream::Stream;
use n3net_core::Isa;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: stream_speed MODEL.n3b [SIZE] [generic]");
    let size: usize = args.get(2).map_or(256, |s| s.parse().expect("SIZE"));
    let file = std::fs::read(path).expect("read the model");
    // The blob must lie at a 16-aligned address: copy it to one.
    let mut store = vec![0u8; file.len() + 16];
    let off = store.as_ptr().align_offset(16);
    store[off..off + file.len()].copy_from_slice(&file);
    let bytes = &store[off..off + file.len()];
    let blob = ModelBlob::parse(bytes).expect("parse the blob");
    let net = blob.network().expect("build the network");
    let (h, w, cin) = (size, size, net.cin());
    let mut state = 1u64;
    let input: Vec<f32> = (0..h * w * cin)
        .map(|i| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let (y, x) = ((i / cin / w) as f32, (i / cin % w) as f32);
            let noise = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.3;
            0.5 + 0.3 * (x * 0.05).sin() * (y * 0.03).cos() + noise
        })
        .collect();
    let mut isas = vec![Isa::detect()];
    if args.get(3).map(String::as_str) == Some("generic") {
        isas.push(Isa::Generic);
    }
    let mut ws = vec![0u8; Stream::workspace_bytes(&net, w).expect("workspace size")];
    let row = cin * w;
    let mut out = vec![0.0f32; net.cout() * w * h];
    for isa in isas {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let mut s = Stream::new(&net, h, w, isa, &mut ws).expect("stream");
            let mut done = 0;
            for r in input.chunks_exact(row) {
                s.push_rows(r).expect("push");
                done += s
                    .pull_rows(&mut out[done * net.cout() * w..])
                    .expect("pull");
            }
            assert_eq!(done, h);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let checksum: f64 = out.iter().map(|&v| f64::from(v)).sum();
        println!(
            "{:<9} {:?} {h}x{w}: {best:.3} s, {:.3} MP/s (output sum {checksum:.3})",
            isa.name(),
            blob.precision(),
            (h * w) as f64 / best / 1e6
        );
    }
}
