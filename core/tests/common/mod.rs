//! Random-weight networks and a seeded PRNG shared by the integration tests.
#![allow(dead_code)]

use half::f16;
use n3net_core::exec::stream::Stream;
use n3net_core::kernels::fixed::quantize_weights;
use n3net_core::{Cnn, ConvLayer, Isa, N3Block, N3Params, Network, Plan, Precision, Weights};

/// A small LCG: deterministic, no dependencies.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 pseudo-random bits.
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

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() >> 33) as usize % (hi - lo + 1)
    }
}

/// Hyper-parameters of a random N³Net.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Input channels (1, or 2 with a noise map).
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Hidden features of every CNN.
    pub features: usize,
    /// Convolutions per DnCNN stage.
    pub dncnn_depth: usize,
    /// Convolutions of the embedding and temperature CNNs.
    pub embed_depth: usize,
    /// Channels of the N³ block input and of the embedding.
    pub channels: usize,
    /// N³ blocks.
    pub blocks: usize,
    /// Block parameters.
    pub n3: N3Params,
    /// Kernel sides, layer `l` of every CNN using `kernels[l % len]`.
    pub kernels: &'static [usize],
}

impl Spec {
    /// The paper's model: 2 blocks, k = 7, patch 10, stride 5, window 15,
    /// 64 features, DnCNN depth 6, embedding depth 3.
    pub fn paper(cin: usize) -> Self {
        Self {
            cin,
            cout: 1,
            features: 64,
            dncnn_depth: 6,
            embed_depth: 3,
            channels: 8,
            blocks: 2,
            n3: N3Params {
                k: 7,
                patch: 10,
                stride: 5,
                window: 15,
                temp_bias: 0.1,
                logit_scale: 0.05,
                logit_shift: 0.1,
            },
            kernels: &[3],
        }
    }
}

struct Shape {
    cin: usize,
    cout: usize,
    relu: bool,
    ksize: usize,
}

/// Weights of a random network; [`RandomNet::network`] borrows them.
pub struct RandomNet {
    spec: Spec,
    store: Vec<f32>,
    cnns: Vec<(Vec<Shape>, bool)>,
}

fn chain(cin: usize, hidden: usize, cout: usize, depth: usize, kernels: &[usize]) -> Vec<Shape> {
    (0..depth)
        .map(|l| Shape {
            cin: if l == 0 { cin } else { hidden },
            cout: if l + 1 == depth { cout } else { hidden },
            relu: l + 1 != depth,
            ksize: kernels[l % kernels.len()],
        })
        .collect()
}

impl RandomNet {
    /// Random weights for `spec`, from `seed`.
    pub fn new(spec: Spec, seed: u64) -> Self {
        let s = &spec;
        let wide = s.channels * (s.n3.k + 1);
        let mut cnns = Vec::new();
        for i in 0..=s.blocks {
            let cin = if i == 0 { s.cin } else { wide };
            let cout = if i == s.blocks { s.cout } else { s.channels };
            cnns.push((chain(cin, s.features, cout, s.dncnn_depth, s.kernels), true));
        }
        for _ in 0..s.blocks {
            let e = chain(s.channels, s.features, s.channels, s.embed_depth, s.kernels);
            cnns.push((e, false));
            let t = chain(s.channels, s.features, 1, s.embed_depth, s.kernels);
            cnns.push((t, false));
        }
        let mut rng = Rng(seed);
        let mut store = Vec::new();
        for (layers, _) in &cnns {
            for l in layers {
                let kk = l.ksize * l.ksize;
                let a = (3.0 / (l.cin * kk) as f32).sqrt();
                for _ in 0..l.cout * l.cin * kk {
                    store.push((rng.unit() * 2.0 - 1.0) * a);
                }
                for _ in 0..l.cout {
                    store.push((rng.unit() - 0.5) * 0.1);
                }
            }
        }
        Self { spec, store, cnns }
    }

    /// The network over the stored weights.
    pub fn network(&self) -> Network<'_> {
        self.build(|at, wn, _| Weights::F32(&self.store[at..at + wn]), None)
    }

    /// The same weights in `precision` (q16: calibrated by streaming
    /// `calibration`, an `h × w` image of the network's input channels, in
    /// f32; activation scales are the peaks over 32767 with a 25 % margin).
    pub fn quantized(
        &self,
        precision: Precision,
        calibration: &[f32],
        h: usize,
        w: usize,
    ) -> Quantized {
        let mut q = Quantized {
            precision,
            f16: self.store.iter().map(|&v| f16::from_f32(v)).collect(),
            values: vec![0; self.store.len()],
            scales: vec![1.0; self.store.len()],
            activations: Vec::new(),
        };
        let mut at = 0;
        for (layers, _) in &self.cnns {
            for l in layers {
                let taps = l.ksize * l.ksize;
                let wn = l.cout * l.cin * taps;
                quantize_weights(
                    &self.store[at..at + wn],
                    l.cout,
                    taps,
                    &mut q.values[at..at + wn],
                    &mut q.scales[at..at + l.cout],
                )
                .expect("quantize");
                at += wn + l.cout;
            }
        }
        if precision == Precision::Q16 {
            let net = self.network();
            let rows = to_rows(calibration, net.cin(), h, w);
            let mut ws = vec![0u8; Stream::workspace_bytes(&net, w).unwrap()];
            // The generic kernels give the same bits on every target, so
            // the scales (and the q16 outputs) do too.
            let mut s = Stream::new(&net, h, w, Isa::Generic, &mut ws).unwrap();
            s.track_activation_peaks();
            let mut out = vec![0.0; net.cout() * w * h];
            s.push_rows(&rows).unwrap();
            s.pull_rows(&mut out).unwrap();
            let mut peaks = s.activation_peaks().to_vec();
            for (i, o) in net.n3_activations() {
                let m = peaks[i].max(peaks[o]);
                (peaks[i], peaks[o]) = (m, m);
            }
            q.activations = peaks.iter().map(|p| p.max(1e-6) * 1.25 / 32767.0).collect();
        }
        q
    }

    fn build<'a>(
        &'a self,
        weight: impl Fn(usize, usize, usize) -> Weights<'a>,
        scales: Option<&'a [f32]>,
    ) -> Network<'a> {
        let mut at = 0;
        let mut layers = Vec::new();
        for (shapes, _) in &self.cnns {
            let mut ls = Vec::new();
            for l in shapes {
                let wn = l.cout * l.cin * l.ksize * l.ksize;
                ls.push(ConvLayer {
                    cin: l.cin,
                    cout: l.cout,
                    ksize: l.ksize,
                    relu: l.relu,
                    weight: weight(at, wn, l.cout),
                    bias: &self.store[at + wn..at + wn + l.cout],
                });
                at += wn + l.cout;
            }
            layers.push(ls);
        }
        let built: Vec<Cnn<'_, '_>> = layers
            .iter()
            .zip(&self.cnns)
            .map(|(ls, (_, residual))| Cnn::new(ls, *residual).expect("cnn"))
            .collect();
        let nb = self.spec.blocks;
        let dncnn = &built[..=nb];
        let n3: Vec<N3Block<'_, '_>> = (0..nb)
            .map(|i| N3Block {
                embed: built[nb + 1 + 2 * i],
                temp: built[nb + 2 + 2 * i],
                params: self.spec.n3,
            })
            .collect();
        match scales {
            Some(s) => Network::with_activation_scales(dncnn, &n3, s).expect("q16 network"),
            None => Network::new(dncnn, &n3).expect("network"),
        }
    }
}

/// A [`RandomNet`]'s weights in f16 or q16 (indexed like its f32 store).
pub struct Quantized {
    pub precision: Precision,
    f16: Vec<f16>,
    values: Vec<i16>,
    scales: Vec<f32>,
    /// q16 activation scales.
    pub activations: Vec<f32>,
}

impl Quantized {
    /// The network of `base`'s structure and biases over these weights.
    pub fn network<'a>(&'a self, base: &'a RandomNet) -> Network<'a> {
        match self.precision {
            Precision::F16 => base.build(|at, wn, _| Weights::F16(&self.f16[at..at + wn]), None),
            Precision::Q16 => base.build(
                |at, wn, cout| Weights::Q16 {
                    values: &self.values[at..at + wn],
                    scales: &self.scales[at..at + cout],
                },
                Some(&self.activations),
            ),
            Precision::F32 => base.network(),
        }
    }
}

/// A random image of `c` planes of `h × w`, values in `[0, 1)`.
pub fn image(c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..c * h * w).map(|_| rng.unit()).collect()
}

/// The whole-image output of `net`.
pub fn whole(net: &Network<'_>, input: &[f32], h: usize, w: usize, isa: Isa) -> Vec<f32> {
    let plan = Plan::new(net, h, w, isa).expect("plan");
    let mut ws = vec![0u8; plan.workspace_bytes()];
    let mut out = vec![0.0; net.cout() * h * w];
    plan.run(input, &mut out, &mut ws).expect("run");
    out
}

/// Planes (`c × h × w`) → rows (`h × c × w`), the stream's layout.
pub fn to_rows(planes: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut rows = vec![0.0; planes.len()];
    for ch in 0..c {
        for y in 0..h {
            let src = &planes[(ch * h + y) * w..][..w];
            rows[(y * c + ch) * w..][..w].copy_from_slice(src);
        }
    }
    rows
}

pub fn assert_bits(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    let bad = a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits());
    if let Some(i) = bad {
        panic!("{what}: first difference at {i}: {} vs {}", a[i], b[i]);
    }
}

/// A random small network: every hyper-parameter drawn, patch grids from
/// 1×1 patches to windows larger than the grid.
pub fn random_spec(rng: &mut Rng) -> Spec {
    let patch = rng.range(1, 6);
    let mut spec = Spec::paper(rng.range(1, 2));
    spec.features = rng.range(2, 6);
    spec.dncnn_depth = rng.range(1, 3);
    spec.embed_depth = rng.range(1, 2);
    spec.channels = rng.range(1, 3);
    spec.blocks = rng.range(0, 2);
    spec.n3.k = rng.range(1, 3);
    spec.n3.patch = patch;
    spec.n3.stride = rng.range(1, patch);
    spec.n3.window = 2 * rng.range(1, 3) + 1;
    const KERNELS: [&[usize]; 5] = [&[3], &[1, 3], &[5, 3], &[3, 1, 5], &[1]];
    spec.kernels = KERNELS[rng.range(0, KERNELS.len() - 1)];
    spec
}
