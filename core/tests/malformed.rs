//! Malformed input against the core API, case by case, each with the exact
//! outcome the core documents: corrupt and truncated weight blobs,
//! non-finite pixels, degenerate and overflowing image sizes, short
//! workspaces and buffers of the wrong length, and workspaces at every
//! alignment. Nothing may panic, and a refused call writes nothing.
//!
//! Every test prints its number of cases (`--nocapture`).
#![forbid(unsafe_code)]

mod common;

use std::ops::Range;

use common::{assert_bits, image, to_rows, whole, RandomNet, Spec};
use n3net_core::blob::{self, ModelBlob, Role};
use n3net_core::exec::stream::Stream;
use n3net_core::model::Q16_TAP_L1_MAX;
use n3net_core::{ErrorKind, Isa, N3Params, Network, Plan, Precision, Weights};

/// A small network: `blocks` N³ blocks (patch 4, stride 2, window 3, k 2),
/// 4 features, two convolutions per CNN.
fn spec(cin: usize, blocks: usize) -> Spec {
    let mut s = Spec::paper(cin);
    s.features = 4;
    s.dncnn_depth = 2;
    s.embed_depth = 2;
    s.channels = 2;
    s.blocks = blocks;
    s.n3 = N3Params {
        k: 2,
        patch: 4,
        stride: 2,
        window: 3,
        temp_bias: 0.1,
        logit_scale: 0.05,
        logit_shift: 0.1,
    };
    s
}

/// Output values of a refused [`Plan::run`]: any change shows.
const SENTINEL: f32 = -12345.678;

fn untouched(out: &[f32]) -> bool {
    out.iter().all(|v| v.to_bits() == SENTINEL.to_bits())
}

// ---------------------------------------------------------------------------
// Weight blobs
// ---------------------------------------------------------------------------

/// What a data section of a written blob holds.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// The weights of layer `l` (f32 or q16 values).
    Weights(usize),
    /// f32 biases.
    Bias,
    /// q16 weight scales.
    WeightScales,
    /// q16 activation scales.
    Activations,
}

/// A blob written from a network, and where its data sections are.
struct Written {
    bytes: Vec<u8>,
    header_len: usize,
    sections: Vec<(Range<usize>, Part)>,
}

impl Written {
    /// End of the last data section (the blob is padded past it).
    fn data_end(&self) -> usize {
        self.sections.last().map_or(self.header_len, |(r, _)| r.end)
    }
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

fn put16(b: &mut [u8], at: usize, v: usize) {
    put(b, at, &u16::try_from(v).unwrap().to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: usize) {
    put(b, at, &u32::try_from(v).unwrap().to_le_bytes());
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Recomputes the CRC over the recorded total length.
fn seal(b: &mut [u8]) {
    let total = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let crc = blob::blob_crc(&b[..total]).unwrap();
    put(b, blob::CRC_OFFSET, &crc.to_le_bytes());
}

/// `net` (f32 or q16) as a blob laid out as `docs/blob-format.md` says.
fn write_blob(net: &Network<'_>) -> Written {
    let layers = net.layers();
    let nb = net.n3_blocks();
    let source = b"malformed-input tests";
    let tables = blob::HEADER_BYTES + nb * blob::BLOCK_ENTRY_BYTES;
    let header_len = (tables + layers.len() * blob::LAYER_ENTRY_BYTES + source.len())
        .next_multiple_of(blob::SECTION_ALIGN);
    let mut b = vec![0u8; header_len];
    put(&mut b, 0, &blob::MAGIC);
    put(&mut b, 4, &blob::VERSION.to_le_bytes());
    put(
        &mut b,
        6,
        &blob::precision_code(net.precision()).to_le_bytes(),
    );
    put32(&mut b, 8, header_len);
    put16(&mut b, 0x16, source.len());
    let stage = net.dncnn_stage(0);
    let p = net.n3().next().map_or(
        N3Params {
            k: 1,
            patch: 1,
            stride: 1,
            window: 3,
            temp_bias: 1.0,
            logit_scale: 1.0,
            logit_shift: 0.0,
        },
        |b| b.params,
    );
    for (at, v) in [
        (0x18, net.cin()),
        (0x1A, net.cout()),
        (0x1C, nb + 1),
        (0x1E, nb),
        (0x20, layers.len()),
        (0x40, stage.cout()),
        (0x42, stage.layers().len()),
        (0x44, stage.max_hidden()),
        (0x46, 3),
        (0x50, p.k),
        (0x52, p.patch),
        (0x54, p.stride),
        (0x56, p.window),
    ] {
        put16(&mut b, at, v);
    }
    put(&mut b, 0x58, &p.temp_bias.to_le_bytes());
    for (i, blk) in net.n3().enumerate() {
        let e = blob::HEADER_BYTES + i * blob::BLOCK_ENTRY_BYTES;
        let q = blk.params;
        for (off, v) in [(0, q.k), (2, q.patch), (4, q.stride), (6, q.window)] {
            put16(&mut b, e + off, v);
        }
        put(&mut b, e + 8, &q.temp_bias.to_le_bytes());
        put(&mut b, e + 12, &q.logit_scale.to_le_bytes());
        put(&mut b, e + 16, &q.logit_shift.to_le_bytes());
    }
    let mut roles = Vec::new();
    let mut cnn = |c: n3net_core::Cnn<'_, '_>, role: Role, index: usize| {
        roles.extend(c.layers().iter().map(|_| (role, index, c.residual())));
    };
    cnn(net.dncnn_stage(0), Role::Dncnn, 0);
    for (i, blk) in net.n3().enumerate() {
        cnn(blk.embed, Role::Embed, i);
        cnn(blk.temp, Role::Temp, i);
        cnn(net.dncnn_stage(i + 1), Role::Dncnn, i + 1);
    }
    let src = tables + layers.len() * blob::LAYER_ENTRY_BYTES;
    put(&mut b, src, source);
    let mut sections = Vec::new();
    let mut section = |b: &mut Vec<u8>, data: Vec<u8>, part: Part| {
        let at = b.len();
        b.extend_from_slice(&data);
        b.resize(b.len().next_multiple_of(blob::SECTION_ALIGN), 0);
        sections.push((at..at + data.len(), part));
        (at, data.len())
    };
    for (l, (layer, &(role, index, residual))) in layers.iter().zip(&roles).enumerate() {
        let e = tables + l * blob::LAYER_ENTRY_BYTES;
        put16(&mut b, e, layer.cin);
        put16(&mut b, e + 2, layer.cout);
        let flags =
            (u8::from(layer.relu) * blob::LAYER_RELU) | (u8::from(residual) * blob::LAYER_RESIDUAL);
        put(
            &mut b,
            e + 4,
            &[layer.ksize as u8, flags, role.code(), index as u8],
        );
        let (weights, scales) = match layer.weight {
            Weights::F32(w) => (f32_bytes(w), None),
            Weights::Q16 { values, scales } => (
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Some(f32_bytes(scales)),
            ),
            Weights::F16(_) => panic!("the tests write f32 and q16 blobs"),
        };
        let (at, len) = section(&mut b, weights, Part::Weights(l));
        put32(&mut b, e + 8, at);
        put32(&mut b, e + 12, len);
        let (at, len) = section(&mut b, f32_bytes(layer.bias), Part::Bias);
        put32(&mut b, e + 16, at);
        put32(&mut b, e + 20, len);
        if let Some(s) = scales {
            let (at, len) = section(&mut b, s, Part::WeightScales);
            put32(&mut b, e + 24, at);
            put32(&mut b, e + 28, len);
        }
    }
    if net.precision() == Precision::Q16 {
        let acts = f32_bytes(net.activation_scales());
        let (at, _) = section(&mut b, acts, Part::Activations);
        put32(&mut b, 0x5C, at);
    }
    let total = b.len();
    put32(&mut b, 12, total);
    seal(&mut b);
    Written {
        bytes: b,
        header_len,
        sections,
    }
}

/// `bytes` copied to a 16-byte aligned place, as firmware places a blob.
struct Aligned {
    store: Vec<u8>,
    at: usize,
    len: usize,
}

impl Aligned {
    fn new(bytes: &[u8]) -> Self {
        let mut store = vec![0u8; bytes.len() + 16];
        let at = store.as_ptr().align_offset(16);
        store[at..at + bytes.len()].copy_from_slice(bytes);
        Self {
            store,
            at,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.store[self.at..self.at + self.len]
    }
}

/// Parses `bytes` (16-byte aligned) and builds its network.
fn parse(bytes: &[u8]) -> Result<(), ErrorKind> {
    let a = Aligned::new(bytes);
    ModelBlob::parse(a.bytes())
        .and_then(|b| b.network().map(drop))
        .map_err(|e| e.kind())
}

/// What the parser must say of `good` with bit `bit` of byte `i` flipped
/// and the CRC left as it was: the magic, version and precision are read
/// before anything else, the total length next, then the CRC covers every
/// other byte.
fn flipped_kind(good: &[u8], i: usize, bit: u32) -> ErrorKind {
    let field = |at: usize, n: usize| {
        let mut v = [0u8; 4];
        v[..n].copy_from_slice(&good[at..at + n]);
        u32::from_le_bytes(v) ^ (1 << (bit + 8 * (i - at) as u32))
    };
    match i {
        0..4 => ErrorKind::BadMagic,
        4..6 => ErrorKind::UnsupportedVersion,
        6..8 if field(6, 2) > 2 => ErrorKind::UnsupportedPrecision,
        12..16 => match field(12, 4) as usize {
            t if t > good.len() => ErrorKind::Truncated,
            t if t < blob::HEADER_BYTES => ErrorKind::CorruptBlob,
            _ => ErrorKind::Checksum,
        },
        _ => ErrorKind::Checksum,
    }
}

/// What the parser must say of `w` with bit `bit` of data byte `i` flipped
/// and the CRC recomputed: the network's validation of the changed value
/// (padding between sections is not read).
fn resealed_kind(w: &Written, net: &Network<'_>, i: usize, bit: u32) -> Result<(), ErrorKind> {
    let Some((range, part)) = w.sections.iter().find(|(r, _)| r.contains(&i)) else {
        return Ok(());
    };
    // The f32 value holding byte `i`, flipped.
    let value = || {
        let at = range.start + (i - range.start) / 4 * 4;
        let mut v: [u8; 4] = w.bytes[at..at + 4].try_into().unwrap();
        v[i - at] ^= 1 << bit;
        f32::from_le_bytes(v)
    };
    match *part {
        Part::Weights(l) => match net.layers()[l].weight {
            Weights::Q16 { values, .. } => {
                let j = (i - range.start) / 2;
                let taps = net.layers()[l].ksize.pow(2);
                let mut pair = values[j / taps * taps..][..taps].to_vec();
                let mask = 1u16 << (bit + 8 * ((i - range.start) % 2) as u32);
                pair[j % taps] = (pair[j % taps] as u16 ^ mask) as i16;
                let l1: i64 = pair.iter().map(|&v| i64::from(v).abs()).sum();
                if pair.contains(&i16::MIN) || l1 > Q16_TAP_L1_MAX {
                    Err(ErrorKind::InvalidModel)
                } else {
                    Ok(())
                }
            }
            _ if value().is_finite() => Ok(()),
            _ => Err(ErrorKind::NonFiniteWeight),
        },
        Part::Bias if value().is_finite() => Ok(()),
        Part::Bias => Err(ErrorKind::NonFiniteWeight),
        Part::WeightScales if value().is_finite() && value() > 0.0 => Ok(()),
        Part::WeightScales => Err(ErrorKind::NonFiniteWeight),
        Part::Activations => {
            let j = (i - range.start) / 4;
            let paired = net.n3_activations().any(|(a, b)| a == j || b == j);
            if value().is_finite() && value() > 0.0 && !paired {
                Ok(())
            } else {
                Err(ErrorKind::InvalidModel)
            }
        }
    }
}

/// The one-block test network in f32 and q16.
fn blob_networks(rn: &RandomNet) -> [(Precision, common::Quantized); 2] {
    let cal = image(1, 24, 20, 5);
    [Precision::F32, Precision::Q16].map(|p| (p, rn.quantized(p, &cal, 24, 20)))
}

/// Streams a 12 × 10 image through `net`.
fn streamed(net: &Network<'_>) -> Vec<f32> {
    let (h, w) = (12, 10);
    let mut ws = vec![0u8; Stream::workspace_bytes(net, w).unwrap()];
    let mut s = Stream::new(net, h, w, Isa::Generic, &mut ws).unwrap();
    let mut out = vec![0.0; net.cout() * w * h];
    s.push_rows(&image(net.cin(), h, w, 8)).unwrap();
    assert_eq!(s.pull_rows(&mut out).unwrap(), h);
    out
}

#[test]
fn blobs_truncated_or_bit_flipped() {
    let rn = RandomNet::new(spec(1, 1), 40);
    let mut cases = 0;
    for (precision, q) in blob_networks(&rn) {
        let net = q.network(&rn);
        let w = write_blob(&net);
        let good = &w.bytes;
        // The written blob is valid and runs like the network it holds.
        let a = Aligned::new(good);
        let parsed = ModelBlob::parse(a.bytes()).expect("written blob parses");
        assert_eq!(parsed.precision(), precision);
        let back = parsed.network().unwrap();
        assert_bits(&streamed(&back), &streamed(&net), "blob round trip");

        // Every truncation, the recorded length left as it was.
        for len in 0..good.len() {
            assert_eq!(parse(&good[..len]), Err(ErrorKind::Truncated), "len {len}");
            cases += 1;
        }
        // Every truncation with the total length and CRC rewritten to match:
        // cut in the header or a section it is corrupt; cut in the padding
        // after the last section it is a valid blob.
        for len in 20..good.len() {
            let mut cut = good[..len].to_vec();
            put32(&mut cut, 12, len);
            seal(&mut cut);
            let want = if len < blob::HEADER_BYTES {
                Err(ErrorKind::Truncated)
            } else if len < w.data_end() {
                Err(ErrorKind::CorruptBlob)
            } else {
                Ok(())
            };
            assert_eq!(parse(&cut), want, "{precision:?} resealed at {len}");
            cases += 1;
        }
        // Every single-bit flip: the header fields read before the CRC
        // give their kinds, the CRC sees every other one.
        let mut b = good.clone();
        for i in 0..good.len() {
            for bit in 0..8 {
                b[i] ^= 1 << bit;
                let want = Err(flipped_kind(good, i, bit));
                assert_eq!(parse(&b), want, "{precision:?} byte {i} bit {bit}");
                b[i] ^= 1 << bit;
                cases += 1;
            }
        }
        // Every single-bit flip of the data sections behind a recomputed
        // CRC: the network's validation refuses exactly the values it must.
        let mut refused = 0;
        for i in w.header_len..good.len() {
            for bit in 0..8 {
                b[i] ^= 1 << bit;
                seal(&mut b);
                let want = resealed_kind(&w, &net, i, bit);
                assert_eq!(parse(&b), want, "{precision:?} resealed byte {i} bit {bit}");
                refused += usize::from(want.is_err());
                b[i] ^= 1 << bit;
                cases += 1;
            }
        }
        // A flip of an f32 value below 2 in magnitude (every weight and
        // bias here) leaves it finite; q16 refuses negative weight scales,
        // N³ block scales that no longer match and out-of-bound weights.
        let refuses = precision == Precision::Q16;
        assert_eq!(refused > 0, refuses, "{precision:?}: {refused} refused");
    }
    println!("malformed core blobs: {cases} cases");
}

// ---------------------------------------------------------------------------
// Non-finite pixels
// ---------------------------------------------------------------------------

/// Columns `cols` of every row of every channel (`h × c × w` values).
fn columns(rows: &[f32], w: usize, cols: Range<usize>) -> Vec<f32> {
    rows.chunks_exact(w)
        .flat_map(|r| &r[cols.clone()])
        .copied()
        .collect()
}

/// Pushes the rows of `rows` (the stream's input columns) up to row `upto`,
/// a few at a time, appending the rows pulled to `out`.
fn drive(s: &mut Stream<'_, '_, '_>, rows: &[f32], upto: usize, out: &mut Vec<f32>, ol: usize) {
    let rl = rows.len() / s.height();
    let mut buf = vec![0.0; ol * s.height()];
    while s.rows_pushed() < upto {
        let y = s.rows_pushed();
        let n = 4.min(upto - y);
        s.push_rows(&rows[y * rl..(y + n) * rl]).expect("push");
        let got = s.pull_rows(&mut buf).expect("pull");
        out.extend_from_slice(&buf[..got * ol]);
    }
}

/// Opens the stream over the whole width, or over the column stripe `cols`.
fn open<'n, 'w, 'ws>(
    net: &'n Network<'w>,
    h: usize,
    w: usize,
    cols: Option<Range<usize>>,
    ws: &'ws mut Vec<u8>,
) -> Stream<'n, 'w, 'ws> {
    let bytes = match &cols {
        None => Stream::workspace_bytes(net, w),
        Some(c) => Stream::stripe_workspace_bytes(net, c.len()),
    };
    ws.resize(bytes.unwrap(), 0);
    match cols {
        None => Stream::new(net, h, w, Isa::detect(), ws),
        Some(c) => Stream::stripe(net, h, w, c, Isa::detect(), ws),
    }
    .expect("stream")
}

/// The rows of the stream (whole width or stripe `cols`) over `rows` (the
/// whole image, rows layout).
fn stream_rows(net: &Network<'_>, rows: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut ws = Vec::new();
    let mut s = open(net, h, w, None, &mut ws);
    let mut out = Vec::new();
    drive(&mut s, rows, h, &mut out, net.cout() * w);
    out
}

/// A stream (whole width, or the stripe `cols`) is pushed `bad` (the image
/// with a non-finite value in row `y`) in the rows around `y`: the push is
/// refused with `NonFiniteInput` and consumes nothing, and the stream then
/// finishes the clean image `good` with the output `want` (whole rows).
#[allow(clippy::too_many_arguments)]
fn stream_refuses(
    net: &Network<'_>,
    (h, w): (usize, usize),
    cols: Option<Range<usize>>,
    good: &[f32],
    bad: &[f32],
    (y, x): (usize, usize),
    want: &[f32],
    what: &str,
) {
    let mut ws = Vec::new();
    let mut s = open(net, h, w, cols, &mut ws);
    let (inc, outc) = (s.input_columns(), s.output_columns());
    assert!(inc.contains(&x), "{what}: the bad column is pushed");
    let (good, bad) = (columns(good, w, inc.clone()), columns(bad, w, inc));
    let ol = net.cout() * outc.len();
    let rl = good.len() / h;
    let mut out = Vec::new();
    drive(&mut s, &good, y.saturating_sub(1), &mut out, ol);
    let (pushed, pending) = (s.rows_pushed(), s.pending_rows());
    let end = (y + 2).min(h);
    let err = s.push_rows(&bad[pushed * rl..end * rl]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NonFiniteInput, "{what}");
    assert_eq!(
        (s.rows_pushed(), s.pending_rows()),
        (pushed, pending),
        "{what}"
    );
    drive(&mut s, &good, h, &mut out, ol);
    assert_bits(&out, &columns(want, w, outc), what);
}

fn positions(h: usize, w: usize) -> [(usize, usize, &'static str); 9] {
    [
        (0, 0, "top-left corner"),
        (0, w - 1, "top-right corner"),
        (h - 1, 0, "bottom-left corner"),
        (h - 1, w - 1, "bottom-right corner"),
        (0, w / 2, "top edge"),
        (h - 1, w / 2, "bottom edge"),
        (h / 2, 0, "left edge"),
        (h / 2, w - 1, "right edge"),
        (h / 2, w / 2, "centre"),
    ]
}

#[test]
fn non_finite_pixels_are_refused_and_change_nothing() {
    let (h, w) = (19, 23);
    let mut cases = 0;
    for cin in [1, 2] {
        let rn = RandomNet::new(spec(cin, 1), 30 + cin as u64);
        let input = image(cin, h, w, 7);
        let rows = to_rows(&input, cin, h, w);
        let q16 = rn.quantized(Precision::Q16, &input, h, w);
        let nets = [(rn.network(), "f32"), (q16.network(&rn), "q16")];
        for (net, name) in &nets {
            let want = stream_rows(net, &rows, h, w);
            let plan = Plan::new(net, h, w, Isa::detect());
            let mut ws = plan
                .as_ref()
                .map_or(Vec::new(), |p| vec![0u8; p.workspace_bytes()]);
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for c in 0..cin {
                    for (y, x, place) in positions(h, w) {
                        let what = format!("{name} cin {cin}: {bad} in channel {c}, {place}");
                        let mut dirty = input.clone();
                        dirty[(c * h + y) * w + x] = bad;
                        if let Ok(plan) = &plan {
                            let mut out = vec![SENTINEL; net.cout() * h * w];
                            let err = plan.run(&dirty, &mut out, &mut ws).unwrap_err();
                            assert_eq!(err.kind(), ErrorKind::NonFiniteInput, "{what}");
                            assert!(untouched(&out), "{what}: output written");
                            cases += 1;
                        }
                        let bad_rows = to_rows(&dirty, cin, h, w);
                        // The whole width; a one-column stripe through the
                        // value; a stripe that only reads it in its halo.
                        let halo = if x + 3 < w {
                            x + 2..x + 3
                        } else {
                            x - 3..x - 2
                        };
                        for cols in [None, Some(x..x + 1), Some(halo)] {
                            let what = format!("{what}, stripe {cols:?}");
                            let at = (y, x);
                            stream_refuses(net, (h, w), cols, &rows, &bad_rows, at, &want, &what);
                            cases += 1;
                        }
                    }
                }
            }
            // The plan and its workspace still give the reference output.
            if let Ok(plan) = &plan {
                let mut out = vec![SENTINEL; net.cout() * h * w];
                plan.run(&input, &mut out, &mut ws).unwrap();
                assert_bits(&to_rows(&out, net.cout(), h, w), &want, "plan after errors");
            } else {
                let kind = plan.as_ref().unwrap_err().kind();
                assert_eq!(kind, ErrorKind::UnsupportedPrecision, "{name}");
                cases += 1;
            }
        }
    }
    println!("malformed core non-finite pixels: {cases} cases");
}

// ---------------------------------------------------------------------------
// Image sizes
// ---------------------------------------------------------------------------

/// What the core says of an image size.
type Outcome = Result<(), ErrorKind>;

#[test]
fn degenerate_image_sizes_give_their_documented_outcome() {
    use ErrorKind::ImageTooSmall as Small;
    // (height, width, without N³ blocks, with one block of patch 4,
    // stride 2): a size with a zero side has no pixels; with a block both
    // sides must hold a patch and the grid at least two patches.
    let table: &[(usize, usize, Outcome, Outcome)] = &[
        (0, 0, Err(Small), Err(Small)),
        (0, 9, Err(Small), Err(Small)),
        (9, 0, Err(Small), Err(Small)),
        (1, 1, Ok(()), Err(Small)),
        (1, 9, Ok(()), Err(Small)),
        (9, 1, Ok(()), Err(Small)),
        (1, 300, Ok(()), Err(Small)),
        (300, 1, Ok(()), Err(Small)),
        (2, 2, Ok(()), Err(Small)),
        (3, 9, Ok(()), Err(Small)),
        (9, 3, Ok(()), Err(Small)),
        (3, 3, Ok(()), Err(Small)),
        (4, 4, Ok(()), Err(Small)),
        (4, 5, Ok(()), Ok(())),
        (5, 4, Ok(()), Ok(())),
        (4, 6, Ok(()), Ok(())),
        (6, 4, Ok(()), Ok(())),
        (5, 5, Ok(()), Ok(())),
        (4, 300, Ok(()), Ok(())),
        (300, 4, Ok(()), Ok(())),
    ];
    let mut cases = 0;
    for blocks in [0, 1] {
        let rn = RandomNet::new(spec(1, blocks), 50);
        let net = rn.network();
        let patch = 4;
        for &(h, w, none, one) in table {
            let want = if blocks == 0 { none } else { one };
            let what = format!("{h}x{w}, {blocks} block(s)");
            let kind = |r: n3net_core::error::Result<()>| r.map_err(|e| e.kind());
            let plan = Plan::new(&net, h, w, Isa::detect()).map(drop);
            assert_eq!(kind(plan), want, "plan {what}");
            // The width-only query fails only for widths no image can have.
            let bytes = Stream::workspace_bytes(&net, w);
            let narrow = w == 0 || (blocks > 0 && w < patch);
            let want_bytes = if narrow { Err(Small) } else { Ok(()) };
            assert_eq!(kind(bytes.map(drop)), want_bytes, "stream bytes {what}");
            let mut ws = vec![0u8; bytes.unwrap_or(0)];
            let s = Stream::new(&net, h, w, Isa::detect(), &mut ws);
            assert_eq!(kind(s.map(drop)), want, "stream {what}");
            let cols = 0..w.min(1);
            let mut sws = vec![0u8; Stream::stripe_workspace_bytes(&net, 1).unwrap()];
            let s = Stream::stripe(&net, h, w, cols, Isa::detect(), &mut sws);
            assert_eq!(kind(s.map(drop)), want, "stripe {what}");
            cases += 4;
            if want.is_err() {
                continue;
            }
            // Runs: finite output, the stream and every one-column stripe
            // bit-identical to the plan.
            let input = image(1, h, w, (h * 1000 + w) as u64);
            let out = whole(&net, &input, h, w, Isa::detect());
            assert!(out.iter().all(|v| v.is_finite()), "{what}: finite");
            let rows = to_rows(&input, 1, h, w);
            assert_bits(&stream_rows(&net, &rows, h, w), &out, &what);
            for x in (0..w).step_by(w.div_ceil(8)) {
                let mut ws = Vec::new();
                let mut s = open(&net, h, w, Some(x..x + 1), &mut ws);
                let inc = s.input_columns();
                let mut got = Vec::new();
                drive(&mut s, &columns(&rows, w, inc), h, &mut got, 1);
                assert_bits(&got, &columns(&out, w, x..x + 1), &what);
                cases += 1;
            }
        }
    }
    println!("malformed core image sizes: {cases} cases");
}

#[test]
fn sizes_whose_byte_counts_overflow_are_too_large() {
    let big = usize::MAX / 2;
    let half = 1usize << (usize::BITS / 2);
    let mut cases = 0;
    for blocks in [0, 1] {
        let rn = RandomNet::new(spec(1, blocks), 60);
        let net = rn.network();
        let plan = |h: usize, w: usize| Plan::new(&net, h, w, Isa::detect()).map(drop);
        let mut ws = vec![0u8; Stream::workspace_bytes(&net, 16).unwrap()];
        let mut stream = |h: usize| Stream::new(&net, h, 16, Isa::detect(), &mut ws).map(drop);
        let mut cases_of = vec![
            ("plan usize::MAX/2 x 3", plan(big, 3)),
            ("plan 3 x usize::MAX/2", plan(3, big)),
            ("plan usize::MAX/2 x 16", plan(big, 16)),
            ("plan usize::MAX x usize::MAX", plan(usize::MAX, usize::MAX)),
            ("plan usize::MAX x 16", plan(usize::MAX, 16)),
            ("plan 16 x usize::MAX", plan(16, usize::MAX)),
            ("plan 2^(bits/2) x 2^(bits/2)", plan(half, half)),
            ("stream height usize::MAX", stream(usize::MAX)),
            ("stream height usize::MAX - 1", stream(usize::MAX - 1)),
            (
                "stream bytes width usize::MAX/2",
                Stream::workspace_bytes(&net, big).map(drop),
            ),
            (
                "stream bytes width usize::MAX",
                Stream::workspace_bytes(&net, usize::MAX).map(drop),
            ),
            (
                "stripe bytes usize::MAX/2",
                Stream::stripe_workspace_bytes(&net, big).map(drop),
            ),
            (
                "stripe bytes usize::MAX",
                Stream::stripe_workspace_bytes(&net, usize::MAX).map(drop),
            ),
        ];
        if blocks > 0 {
            // Heights that fit, but whose patch grid (queries × rows) does
            // not; a network without blocks computes the latency row by row
            // and is only given heights whose padded size overflows.
            cases_of.push(("stream height usize::MAX/2", stream(big)));
            let lat = Stream::latency_for(&net, usize::MAX).map(drop);
            cases_of.push(("latency height usize::MAX", lat));
            let mut sws = vec![0u8; Stream::stripe_workspace_bytes(&net, 8).unwrap()];
            let s = Stream::stripe(&net, 16, usize::MAX, 0..8, Isa::detect(), &mut sws);
            cases_of.push(("stripe of a usize::MAX wide image", s.map(drop)));
            let cols = Stream::stripe_input_columns(&net, usize::MAX, 0..8).map(drop);
            cases_of.push(("stripe input columns, width usize::MAX", cols));
        }
        for (what, got) in cases_of {
            let kind = got.map_err(|e| e.kind());
            assert_eq!(kind, Err(ErrorKind::TooLarge), "{what}, {blocks} block(s)");
            cases += 1;
        }
    }
    println!("malformed core overflowing sizes: {cases} cases");
}

// ---------------------------------------------------------------------------
// Workspaces and buffers
// ---------------------------------------------------------------------------

/// A buffer of `len` bytes starting `offset` bytes past a 64-byte boundary.
fn at_offset(store: &mut Vec<u8>, offset: usize, len: usize) -> &mut [u8] {
    store.clear();
    store.resize(len + 64 + offset, 0);
    let at = store.as_ptr().align_offset(64) + offset;
    &mut store[at..at + len]
}

#[test]
fn a_workspace_one_byte_short_is_refused_at_any_alignment() {
    let rn = RandomNet::new(spec(1, 1), 70);
    let cal = image(1, 20, 20, 1);
    let q16 = rn.quantized(Precision::Q16, &cal, 20, 20);
    let (f32_net, q16_net) = (rn.network(), q16.network(&rn));
    let mut store = Vec::new();
    let mut cases = 0;
    let short = |k: Result<(), n3net_core::Error>, what: &str| {
        assert_eq!(
            k.map_err(|e| e.kind()),
            Err(ErrorKind::WorkspaceTooSmall),
            "{what}"
        );
    };
    for (h, w) in [(5, 5), (13, 21), (40, 33), (7, 64)] {
        let plan = Plan::new(&f32_net, h, w, Isa::detect()).unwrap();
        let input = image(1, h, w, 3);
        let n = plan.workspace_bytes();
        for len in [0, 1, n / 2, n - 64, n - 1] {
            for offset in 0..8 {
                let ws = at_offset(&mut store, offset, len);
                let mut out = vec![SENTINEL; h * w];
                let what = format!("plan {h}x{w}, {len} of {n} bytes at +{offset}");
                short(plan.run(&input, &mut out, ws), &what);
                assert!(untouched(&out), "{what}: output written");
                cases += 1;
            }
        }
        for net in [&f32_net, &q16_net] {
            let n = Stream::workspace_bytes(net, w).unwrap();
            let s = Stream::stripe_workspace_bytes(net, w.min(7)).unwrap();
            for offset in 0..8 {
                let ws = at_offset(&mut store, offset, n - 1);
                let what = format!("stream {h}x{w} {:?}, +{offset}", net.precision());
                short(Stream::new(net, h, w, Isa::detect(), ws).map(drop), &what);
                let ws = at_offset(&mut store, offset, s - 1);
                let st = Stream::stripe(net, h, w, 0..w.min(7), Isa::detect(), ws);
                short(st.map(drop), &format!("{what}, stripe"));
                cases += 2;
            }
        }
    }
    println!("malformed core short workspaces: {cases} cases");
}

#[test]
fn buffers_of_the_wrong_length_are_refused_and_change_nothing() {
    let rn = RandomNet::new(spec(2, 1), 80);
    let net = rn.network();
    let (h, w) = (14, 17);
    let plan = Plan::new(&net, h, w, Isa::detect()).unwrap();
    let mut ws = vec![0u8; plan.workspace_bytes()];
    let input = image(2, h, w, 4);
    let (n, m) = (input.len(), h * w);
    let mut cases = 0;
    for (inl, outl) in [
        (0, m),
        (n - 1, m),
        (n + 1, m),
        (n / 2, m),
        (2 * n, m),
        (n, 0),
        (n, m - 1),
        (n, m + 1),
        (n, 2 * m),
        (0, 0),
    ] {
        let mut x = input.clone();
        x.resize(inl, 0.5);
        let mut out = vec![SENTINEL; outl];
        let err = plan.run(&x, &mut out, &mut ws).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BufferSize,
            "input {inl}, output {outl}"
        );
        assert!(
            untouched(&out),
            "input {inl}, output {outl}: output written"
        );
        cases += 1;
    }
    let rows = to_rows(&input, 2, h, w);
    let want = to_rows(&whole(&net, &input, h, w, Isa::detect()), 1, h, w);
    for cols in [None, Some(3..9)] {
        let mut sws = Vec::new();
        let mut s = open(&net, h, w, cols, &mut sws);
        let inc = s.input_columns();
        let outc = s.output_columns();
        let rows = columns(&rows, w, inc.clone());
        let (rl, ol) = (2 * inc.len(), outc.len());
        let mut out = Vec::new();
        drive(&mut s, &rows, 5, &mut out, ol);
        for len in [1, rl - 1, rl + 1, 2 * rl - 1, 3 * rl + 1] {
            let err = s.push_rows(&rows[5 * rl..5 * rl + len]).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::BufferSize,
                "push {len} of rows of {rl}"
            );
            assert_eq!(s.rows_pushed(), 5);
            cases += 1;
        }
        let pending = s.pending_rows();
        let mut buf = vec![SENTINEL; 3 * ol];
        for len in [0, 1, ol - 1, ol + 1, 2 * ol + 1] {
            let err = s.pull_rows(&mut buf[..len]).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::BufferSize,
                "pull into {len} of rows of {ol}"
            );
            assert!(untouched(&buf) && s.pending_rows() == pending);
            cases += 1;
        }
        // An empty push is a push of no rows.
        s.push_rows(&[]).unwrap();
        assert_eq!(s.rows_pushed(), 5);
        drive(&mut s, &rows, h, &mut out, ol);
        assert_bits(&out, &columns(&want, w, outc), "stream after refused calls");
        let err = s.push_rows(&rows[..rl]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PastEnd);
        cases += 2;
    }
    println!("malformed core buffer lengths: {cases} cases");
}

#[test]
fn workspaces_at_any_alignment_give_the_same_bits() {
    let rn = RandomNet::new(spec(1, 1), 90);
    let (h, w) = (21, 26);
    let input = image(1, h, w, 6);
    let q16 = rn.quantized(Precision::Q16, &input, h, w);
    let (f32_net, q16_net) = (rn.network(), q16.network(&rn));
    let rows = to_rows(&input, 1, h, w);
    let mut store = Vec::new();
    let mut cases = 0;
    let plan = Plan::new(&f32_net, h, w, Isa::detect()).unwrap();
    let want = whole(&f32_net, &input, h, w, Isa::detect());
    for offset in 0..8 {
        let ws = at_offset(&mut store, offset, plan.workspace_bytes());
        let mut out = vec![SENTINEL; h * w];
        plan.run(&input, &mut out, ws).unwrap();
        assert_bits(&out, &want, &format!("plan at +{offset}"));
        cases += 1;
    }
    for net in [&f32_net, &q16_net] {
        let want = stream_rows(net, &rows, h, w);
        for offset in 0..8 {
            let what = format!("{:?} stream at +{offset}", net.precision());
            let bytes = Stream::workspace_bytes(net, w).unwrap();
            let ws = at_offset(&mut store, offset, bytes);
            let mut s = Stream::new(net, h, w, Isa::detect(), ws).unwrap();
            let mut out = Vec::new();
            drive(&mut s, &rows, h, &mut out, w);
            assert_bits(&out, &want, &what);
            let cols = 5..12;
            let bytes = Stream::stripe_workspace_bytes(net, cols.len()).unwrap();
            let ws = at_offset(&mut store, offset, bytes);
            let mut s = Stream::stripe(net, h, w, cols.clone(), Isa::detect(), ws).unwrap();
            let mut out = Vec::new();
            let inc = s.input_columns();
            drive(&mut s, &columns(&rows, w, inc), h, &mut out, cols.len());
            assert_bits(&out, &columns(&want, w, cols), &format!("{what}, stripe"));
            cases += 2;
        }
    }
    println!("malformed core workspace alignment: {cases} cases");
}
