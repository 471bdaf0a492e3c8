//! A small random network, a test frame, the sensor's SPI traffic for it,
//! and the reference output of the core's stream.

use embedded_hal_mock::eh1::spi::Transaction;
use n3net_core::exec::stream::Stream;
use n3net_core::{Cnn, ConvLayer, Isa, N3Block, N3Params, Network, Weights};
use n3net_embedded_hal_example::{to_u8, to_unit, READ_LINE};

/// Frame size of the tests: wide and tall enough for the default model's
/// 10×10 patches, small enough for a debug build.
pub const WIDTH: usize = 48;
pub const HEIGHT: usize = 40;
/// Noise level of the test frame (0–255 scale).
pub const SIGMA: f32 = 25.0;

/// A small LCG: deterministic, no dependencies.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 ^ (self.0 >> 29)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32) / (1u64 << 24) as f32
    }
}

/// Neighbours of the small network's N³ block.
const K: usize = 3;
/// Channels into the N³ block.
const CH: usize = 4;
/// `(cin, cout)` of the 3×3 convolutions of each CNN: DnCNN stage 0 (the
/// image and its σ map in), the embedding and temperature CNNs, DnCNN
/// stage 1 (the block's `CH · (K + 1)` channels in, the image out).
const CNNS: [&[(usize, usize)]; 4] = [
    &[(2, 8), (8, CH)],
    &[(CH, 8), (8, CH)],
    &[(CH, 8), (8, 1)],
    &[(CH * (K + 1), 8), (8, 1)],
];

/// Weights of a small noise-conditioned N³Net (one block: patches 6×6,
/// stride 3, window 5), so that a frame of [`HEIGHT`] rows streams with
/// output rows final well before its end.
pub struct SmallNet {
    values: Vec<f32>,
}

impl SmallNet {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let mut values = Vec::new();
        for &(cin, cout) in CNNS.iter().flat_map(|c| c.iter()) {
            let a = (3.0 / (cin * 9) as f32).sqrt();
            values.extend((0..cout * cin * 9).map(|_| (rng.unit() * 2.0 - 1.0) * a));
            values.extend((0..cout).map(|_| (rng.unit() - 0.5) * 0.1));
        }
        Self { values }
    }

    pub fn network(&self) -> Network<'_> {
        let mut at = 0;
        let layers: Vec<Vec<ConvLayer<'_>>> = CNNS
            .iter()
            .map(|shapes| {
                shapes
                    .iter()
                    .enumerate()
                    .map(|(l, &(cin, cout))| {
                        let n = cout * cin * 9;
                        let layer = ConvLayer {
                            cin,
                            cout,
                            ksize: 3,
                            relu: l + 1 < shapes.len(),
                            weight: Weights::F32(&self.values[at..at + n]),
                            bias: &self.values[at + n..at + n + cout],
                        };
                        at += n + cout;
                        layer
                    })
                    .collect()
            })
            .collect();
        // The DnCNN stages (0 and 3) add their input to their output.
        let mut cnns = layers
            .iter()
            .enumerate()
            .map(|(i, l)| Cnn::new(l, i == 0 || i == 3).expect("cnn"));
        let (stage0, embed, temp, stage1) = (
            cnns.next().unwrap(),
            cnns.next().unwrap(),
            cnns.next().unwrap(),
            cnns.next().unwrap(),
        );
        let params = N3Params {
            k: K,
            patch: 6,
            stride: 3,
            window: 5,
            temp_bias: 0.1,
            logit_scale: 1.0,
            logit_shift: 0.0,
        };
        let block = N3Block {
            embed,
            temp,
            params,
        };
        Network::new(&[stage0, stage1], &[block]).expect("network")
    }
}

/// The clean test pattern: a horizontal ramp with a bright square and a
/// dark bar, row-major `HEIGHT × WIDTH`.
pub fn clean_frame() -> Vec<u8> {
    let mut px = Vec::with_capacity(WIDTH * HEIGHT);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let v = match (x, y) {
                (12..=27, 8..=23) => 220,
                (_, 30..=33) => 30,
                _ => 60 + 3 * x,
            };
            px.push(v as u8);
        }
    }
    px
}

/// `clean` plus deterministic Gaussian-like noise of standard deviation
/// [`SIGMA`] (a sum of 12 uniforms), rounded and clamped to 8 bits.
pub fn noisy_frame(clean: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    clean
        .iter()
        .map(|&p| {
            let g: f32 = (0..12).map(|_| rng.unit()).sum::<f32>() - 6.0;
            (f32::from(p) + SIGMA * g).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// The SPI traffic of reading every row of `frame` top to bottom: one
/// transaction per row, command and row index out, the row's pixels in.
pub fn expectations(frame: &[u8]) -> Vec<Transaction<u8>> {
    frame
        .chunks(WIDTH)
        .enumerate()
        .flat_map(|(y, line)| {
            let [hi, lo] = (y as u16).to_be_bytes();
            [
                Transaction::transaction_start(),
                Transaction::write_vec(vec![READ_LINE, hi, lo]),
                Transaction::read_vec(line.to_vec()),
                Transaction::transaction_end(),
            ]
        })
        .collect()
}

/// The core's stream run directly on the network input of `frame` (its
/// pixels as `p / 255`, then for a two-input network the σ map), whole
/// frame at once, converted back to 8 bits.
pub fn reference(net: &Network<'_>, frame: &[u8], sigma: f32, isa: Isa) -> Vec<u8> {
    let mut rows = Vec::new();
    for line in frame.chunks(WIDTH) {
        rows.extend(line.iter().map(|&p| to_unit(p)));
        if net.cin() == 2 {
            rows.extend(std::iter::repeat_n(sigma / 255.0, WIDTH));
        }
    }
    let mut ws = vec![0u8; Stream::workspace_bytes(net, WIDTH).expect("bytes")];
    let mut s = Stream::new(net, HEIGHT, WIDTH, isa, &mut ws).expect("stream");
    s.push_rows(&rows).expect("push");
    let mut out = vec![0.0; HEIGHT * WIDTH];
    assert_eq!(s.pull_rows(&mut out).expect("pull"), HEIGHT);
    out.into_iter().map(to_u8).collect()
}

/// Peak signal-to-noise ratio of 8-bit `a` against `b`, in dB.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    10.0 * (255.0f64 * 255.0 * a.len() as f64 / se).log10()
}

/// `bytes` copied to a 16-byte boundary, where firmware places a blob
/// (`ModelBlob::parse` needs at least 4): the buffer and the blob's offset.
pub fn aligned(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; bytes.len() + 16];
    let at = buf.as_ptr().align_offset(16);
    buf[at..at + bytes.len()].copy_from_slice(bytes);
    (buf, at)
}
