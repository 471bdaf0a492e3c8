//! Streaming with random push and pull sizes, whole width or a column
//! stripe, f32 or q16: whatever the chunking, the rows pulled are
//! bit-identical to the image pushed in one go, refused pushes consume
//! nothing, and the output is finite.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use n3net_core::exec::stream::Stream;
use n3net_core::{ErrorKind, Isa, ModelBlob, Network};
use n3net_fuzz::{tiny_2ch_q16, tiny_f32};

/// The output of `net` on `image` (rows of `cin × input columns`), pushed
/// and pulled as `chunks` dictates: `(rows to push, rows to pull)` pairs.
fn run(
    net: &Network<'_>,
    (h, w): (usize, usize),
    columns: Option<std::ops::Range<usize>>,
    image: &[f32],
    chunks: &mut dyn FnMut() -> (usize, usize),
    ws_offset: usize,
) -> core::result::Result<Vec<f32>, ErrorKind> {
    let bytes = match &columns {
        None => Stream::workspace_bytes(net, w),
        Some(c) => Stream::stripe_workspace_bytes(net, c.len()),
    }
    .map_err(|e| e.kind())?;
    let mut store = vec![0u8; bytes + ws_offset];
    let ws = &mut store[ws_offset..];
    let mut s = match columns {
        None => Stream::new(net, h, w, Isa::detect(), ws),
        Some(c) => Stream::stripe(net, h, w, c, Isa::detect(), ws),
    }
    .map_err(|e| e.kind())?;
    let (cin, cout) = (net.cin(), net.cout());
    let x = s.input_columns();
    let (in_len, out_len) = (cin * x.len(), cout * s.output_columns().len());
    let rows: Vec<f32> = image
        .chunks_exact(cin * w)
        .flat_map(|row| row.chunks_exact(w).flat_map(|c| c[x.clone()].to_vec()))
        .collect();
    let mut out = Vec::new();
    let mut pushed = 0;
    while s.rows_pulled() < h {
        let (push, pull) = chunks();
        let n = push.min(h - pushed);
        let before = (s.rows_pushed(), s.rows_pulled(), s.pending_rows());
        match s.push_rows(&rows[pushed * in_len..(pushed + n) * in_len]) {
            Ok(()) => pushed += n,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::StreamFull, "{e:?}");
                let after = (s.rows_pushed(), s.rows_pulled(), s.pending_rows());
                assert_eq!(before, after, "a refused push consumed rows");
            }
        }
        let mut buf = vec![f32::NAN; pull.max(1) * out_len];
        let got = s.pull_rows(&mut buf).expect("whole rows");
        out.extend_from_slice(&buf[..got * out_len]);
    }
    assert_eq!(pushed, h);
    Ok(out)
}

fn fuzz(u: &mut Unstructured<'_>) -> Result<()> {
    let q16 = u.arbitrary::<bool>()?;
    let blob = ModelBlob::parse(if q16 { tiny_2ch_q16() } else { tiny_f32() }).expect("model");
    let net = blob.network().expect("network");
    let h = u.int_in_range(1..=40)?;
    let w = u.int_in_range(1..=40)?;
    let image: Vec<f32> = (0..net.cin() * h * w)
        .map(|_| Ok(f32::from(u.arbitrary::<u8>()?) / 255.0))
        .collect::<Result<_>>()?;
    let columns = if u.arbitrary::<bool>()? {
        let a = u.int_in_range(0..=w - 1)?;
        Some(a..u.int_in_range(a + 1..=w)?)
    } else {
        None
    };
    let ws_offset = u.int_in_range(0..=63)?;
    let plan: Vec<(usize, usize)> = (0..64)
        .map(|_| Ok((u.int_in_range(0..=6)?, u.int_in_range(0..=4)?)))
        .collect::<Result<_>>()?;
    let mut i = 0;
    let mut chunks = || {
        i += 1;
        // Past the fuzzer's plan, push and pull a row at a time.
        plan.get(i - 1).copied().unwrap_or((1, 1))
    };
    let mut whole = || (1, h);
    let want = run(&net, (h, w), columns.clone(), &image, &mut whole, 0);
    let got = run(&net, (h, w), columns, &image, &mut chunks, ws_offset);
    match (want, got) {
        (Ok(want), Ok(got)) => {
            assert!(want.iter().all(|v| v.is_finite()), "non-finite output");
            let same = want
                .iter()
                .zip(&got)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same && want.len() == got.len(),
                "chunking changed the output"
            );
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("one way failed: {:?} vs {:?}", a.err(), b.err()),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = fuzz(&mut Unstructured::new(data));
});
