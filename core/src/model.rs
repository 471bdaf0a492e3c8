//! The network description: layers that borrow their weights, validated once.
//!
//! `N3Net = DnCNN₀ → N³₀ → DnCNN₁ → N³₁ → … → DnCNNₙ`. Every hyper-parameter
//! (depths, widths, kernel size, `k`, patch size and stride, window, temperature
//! bias) is data here; nothing is fixed to the published models' values.
//! Batch-norm is folded into the convolutions (and into an affine map of the
//! logits for the N³ distance batch-norm) before a model reaches the core.

use half::f16;
use heapless::Vec;

use crate::error::{Error, ErrorKind, Result};

/// Most convolutions in one CNN stage.
pub const MAX_CNN_DEPTH: usize = 32;
/// Most N³ blocks in a network (it then has one more DnCNN stage).
pub const MAX_N3_BLOCKS: usize = 4;
/// Largest supported convolution kernel side.
pub const MAX_KERNEL: usize = 7;

/// Most `cin · ksize²` of a q16 convolution: with every per-input-channel
/// partial sum inside `i32` (see [`Weights::Q16`]), the `i64` accumulator
/// and its requantisation product cannot overflow.
pub const MAX_Q16_FAN_IN: usize = 1 << 14;

/// Largest `Σ |q|` over the `ksize²` taps of one (output, input) channel pair
/// of a q16 convolution: with `|activation| ≤ 32767` each such partial sum
/// fits an `i32`.
pub const Q16_TAP_L1_MAX: i64 = 65_535;

fn invalid(what: &'static str) -> Error {
    Error::new(ErrorKind::InvalidModel, what)
}

/// How weights and activations are stored and computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Precision {
    /// IEEE binary32 weights and activations.
    F32,
    /// IEEE binary16 weights and activations, f32 arithmetic.
    F16,
    /// Fixed point: int16 activations (one scale per tensor), int16 weights
    /// (one scale per output channel), integer accumulation.
    Q16,
}

impl Precision {
    /// A short name: `f32`, `f16`, `q16`.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Q16 => "q16",
        }
    }

    /// Bytes per stored weight or activation value.
    pub const fn value_bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 | Precision::Q16 => 2,
        }
    }
}

/// A convolution's weights, `[cout][cin][ksize][ksize]`, in one of the
/// [`Precision`]s.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    /// binary32 values.
    F32(&'a [f32]),
    /// binary16 values.
    F16(&'a [f16]),
    /// int16 values with one scale per output channel: the weight is
    /// `scales[co] · values[i]`. Values are in `−32767..=32767` and the
    /// taps of each (output, input) channel pair sum to at most
    /// [`Q16_TAP_L1_MAX`] in absolute value.
    Q16 {
        /// The integers.
        values: &'a [i16],
        /// One positive scale per output channel.
        scales: &'a [f32],
    },
}

impl Weights<'_> {
    /// Number of weights.
    pub fn len(&self) -> usize {
        match self {
            Weights::F32(w) => w.len(),
            Weights::F16(w) => w.len(),
            Weights::Q16 { values, .. } => values.len(),
        }
    }

    /// Whether there are no weights.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Address of the first stored value: where the weights live (a blob
    /// in flash, a buffer in RAM).
    pub fn as_ptr(&self) -> *const u8 {
        match self {
            Weights::F32(w) => w.as_ptr().cast(),
            Weights::F16(w) => w.as_ptr().cast(),
            Weights::Q16 { values, .. } => values.as_ptr().cast(),
        }
    }

    /// The storage precision.
    pub fn precision(&self) -> Precision {
        match self {
            Weights::F32(_) => Precision::F32,
            Weights::F16(_) => Precision::F16,
            Weights::Q16 { .. } => Precision::Q16,
        }
    }
}

/// One convolution: stride 1, zero padding `ksize / 2`, bias, optional ReLU.
#[derive(Debug, Clone, Copy)]
pub struct ConvLayer<'a> {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel side (odd).
    pub ksize: usize,
    /// Whether a ReLU follows.
    pub relu: bool,
    /// Weights, `[cout][cin][ksize][ksize]`.
    pub weight: Weights<'a>,
    /// One bias per output channel.
    pub bias: &'a [f32],
}

impl ConvLayer<'_> {
    fn validate(&self) -> Result<()> {
        if self.cin == 0 || self.cout == 0 {
            return Err(invalid("convolution with zero channels"));
        }
        if self.ksize % 2 == 0 || self.ksize > MAX_KERNEL {
            return Err(invalid("convolution kernel side must be odd and at most 7"));
        }
        let n = self
            .cout
            .checked_mul(self.cin)
            .and_then(|v| v.checked_mul(self.ksize * self.ksize));
        if n != Some(self.weight.len()) || self.bias.len() != self.cout {
            return Err(invalid(
                "convolution weight or bias length does not match its shape",
            ));
        }
        let finite = match self.weight {
            Weights::F32(w) => w.iter().all(|v| v.is_finite()),
            Weights::F16(w) => w.iter().all(|v| v.is_finite()),
            Weights::Q16 { scales, .. } => scales.iter().all(|s| s.is_finite() && *s > 0.0),
        };
        if !finite || !self.bias.iter().all(|v| v.is_finite()) {
            return Err(Error::new(
                ErrorKind::NonFiniteWeight,
                "convolution weight is not finite",
            ));
        }
        if let Weights::Q16 { values, scales } = self.weight {
            self.validate_q16(values, scales)?;
        }
        Ok(())
    }

    fn validate_q16(&self, values: &[i16], scales: &[f32]) -> Result<()> {
        let taps = self.ksize * self.ksize;
        if scales.len() != self.cout || self.cin * taps > MAX_Q16_FAN_IN {
            return Err(invalid(
                "q16 convolution needs one scale per output channel and cin·k² ≤ 16384",
            ));
        }
        for pair in values.chunks_exact(taps) {
            let l1: i64 = pair.iter().map(|&v| i64::from(v).abs()).sum();
            if pair.contains(&i16::MIN) || l1 > Q16_TAP_L1_MAX {
                return Err(invalid(
                    "q16 weights of a channel pair exceed the accumulator bound",
                ));
            }
        }
        Ok(())
    }

    /// Multiply-adds per output pixel.
    pub fn macs_per_pixel(&self) -> u64 {
        (self.cin * self.cout * self.ksize * self.ksize) as u64
    }
}

/// A chain of convolutions; a DnCNN stage adds a residual.
#[derive(Debug, Clone)]
pub struct Cnn<'a> {
    layers: Vec<ConvLayer<'a>, MAX_CNN_DEPTH>,
    residual: bool,
}

impl<'a> Cnn<'a> {
    /// A CNN of `layers`. With `residual`, the first `min(cin, cout)` output
    /// channels get the input's channels added (the DnCNN stages of N³Net).
    pub fn new(layers: &[ConvLayer<'a>], residual: bool) -> Result<Self> {
        let layers =
            Vec::from_slice(layers).map_err(|_| invalid("CNN deeper than MAX_CNN_DEPTH"))?;
        if layers.is_empty() {
            return Err(invalid("CNN without layers"));
        }
        for l in &layers {
            l.validate()?;
        }
        if layers.windows(2).any(|p| p[0].cout != p[1].cin) {
            return Err(invalid("CNN layer channels do not chain"));
        }
        Ok(Self { layers, residual })
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[ConvLayer<'a>] {
        &self.layers
    }

    /// Whether the input is added to the first `min(cin, cout)` output channels.
    pub fn residual(&self) -> bool {
        self.residual
    }

    /// Input channels.
    pub fn cin(&self) -> usize {
        self.layers[0].cin
    }

    /// Output channels.
    pub fn cout(&self) -> usize {
        self.layers[self.layers.len() - 1].cout
    }

    /// Widest intermediate output (0 for a single layer).
    pub fn max_hidden(&self) -> usize {
        let n = self.layers.len();
        self.layers[..n - 1]
            .iter()
            .map(|l| l.cout)
            .max()
            .unwrap_or(0)
    }

    /// Largest `ksize / 2`.
    pub fn max_pad(&self) -> usize {
        self.layers.iter().map(|l| l.ksize / 2).max().unwrap_or(0)
    }

    /// Multiply-adds per pixel.
    pub fn macs_per_pixel(&self) -> u64 {
        self.layers.iter().map(ConvLayer::macs_per_pixel).sum()
    }

    /// Number of weights and biases (after batch-norm folding).
    pub fn parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.len() + l.bias.len())
            .sum()
    }
}

/// Hyper-parameters of an N³ block.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct N3Params {
    /// Neighbours per query (`k`).
    pub k: usize,
    /// Patch side in pixels.
    pub patch: usize,
    /// Patch stride in pixels.
    pub stride: usize,
    /// Search window side in patches (odd).
    pub window: usize,
    /// Temperature bias: `t = temp_bias · exp(mean of the temperature map over the patch)`.
    pub temp_bias: f32,
    /// Logit scale of the folded distance batch-norm (1 without it).
    pub logit_scale: f32,
    /// Logit shift of the folded distance batch-norm (0 without it).
    pub logit_shift: f32,
}

impl N3Params {
    fn validate(&self) -> Result<()> {
        if self.k == 0 || self.k > 64 {
            return Err(invalid("N3 k must be in 1..=64"));
        }
        if self.patch == 0 || self.patch > 64 || self.stride == 0 || self.stride > self.patch {
            return Err(invalid(
                "N3 patch size must be in 1..=64 and stride in 1..=patch",
            ));
        }
        if self.window < 3 || self.window % 2 == 0 || self.window > 63 {
            return Err(invalid("N3 window must be odd and in 3..=63"));
        }
        let finite = self.temp_bias.is_finite()
            && self.logit_scale.is_finite()
            && self.logit_shift.is_finite();
        if !finite || self.temp_bias <= 0.0 {
            return Err(Error::new(
                ErrorKind::NonFiniteWeight,
                "N3 temperature bias or distance batch-norm not finite and positive",
            ));
        }
        Ok(())
    }
}

/// An N³ block: embedding CNN, temperature CNN, and the non-local aggregation.
#[derive(Debug, Clone)]
pub struct N3Block<'a> {
    /// Embedding CNN: `channels → embedding channels`.
    pub embed: Cnn<'a>,
    /// Temperature CNN: `channels → 1`.
    pub temp: Cnn<'a>,
    /// Patch, window and relaxation parameters.
    pub params: N3Params,
}

impl N3Block<'_> {
    fn validate(&self) -> Result<()> {
        self.params.validate()?;
        if self.embed.residual() || self.temp.residual() {
            return Err(invalid(
                "N3 embedding and temperature CNNs have no residual",
            ));
        }
        if self.embed.cin() != self.temp.cin() || self.temp.cout() != 1 {
            return Err(invalid(
                "N3 temperature CNN must map the block input to one channel",
            ));
        }
        Ok(())
    }

    /// Input channels `C`.
    pub fn cin(&self) -> usize {
        self.embed.cin()
    }

    /// Output channels `C·(k+1)`.
    pub fn cout(&self) -> usize {
        self.cin() * (self.params.k + 1)
    }

    /// Multiply-adds per pixel: the two CNNs, and distances and aggregation
    /// for a full search window (border windows have the same size).
    pub fn macs_per_pixel(&self) -> u64 {
        let p = &self.params;
        let cand = (p.window * p.window - 1) as u64;
        let pp = (p.patch * p.patch) as u64;
        let per_query = cand * pp * (self.embed.cout() as u64 + (p.k * self.cin()) as u64);
        self.embed.macs_per_pixel()
            + self.temp.macs_per_pixel()
            + per_query / (p.stride * p.stride) as u64
    }
}

/// A whole N³Net: `dncnn.len() == n3.len() + 1` stages, alternating.
///
/// Every layer stores its weights in one [`Precision`]. A q16 network also
/// carries its activation scales ([`Network::with_activation_scales`]).
#[derive(Debug, Clone)]
pub struct Network<'a> {
    dncnn: Vec<Cnn<'a>, { MAX_N3_BLOCKS + 1 }>,
    n3: Vec<N3Block<'a>, MAX_N3_BLOCKS>,
    precision: Precision,
    scales: &'a [f32],
}

impl<'a> Network<'a> {
    /// Validates the chain `dncnn[0] → n3[0] → dncnn[1] → …` once. For an
    /// f32 or f16 network; a q16 one needs
    /// [`Network::with_activation_scales`].
    pub fn new(dncnn: &[Cnn<'a>], n3: &[N3Block<'a>]) -> Result<Self> {
        let net = Self::new_unscaled(dncnn, n3)?;
        if net.precision == Precision::Q16 {
            return Err(invalid(
                "a q16 network needs activation scales (Network::with_activation_scales)",
            ));
        }
        Ok(net)
    }

    fn new_unscaled(dncnn: &[Cnn<'a>], n3: &[N3Block<'a>]) -> Result<Self> {
        let dncnn = Vec::from_slice(dncnn)
            .map_err(|_| invalid("more than MAX_N3_BLOCKS + 1 DnCNN stages"))?;
        let n3 = Vec::from_slice(n3).map_err(|_| invalid("more than MAX_N3_BLOCKS N3 blocks"))?;
        if dncnn.len() != n3.len() + 1 {
            return Err(invalid(
                "a network needs one more DnCNN stage than N3 blocks",
            ));
        }
        for b in &n3 {
            b.validate()?;
        }
        for (i, b) in n3.iter().enumerate() {
            if dncnn[i].cout() != b.cin() || b.cout() != dncnn[i + 1].cin() {
                return Err(invalid("stage channels do not chain"));
            }
        }
        let precision = dncnn[0].layers()[0].weight.precision();
        let net = Self {
            dncnn,
            n3,
            precision,
            scales: &[],
        };
        if net.layers().any(|l| l.weight.precision() != precision) {
            return Err(invalid("layers mix weight precisions"));
        }
        Ok(net)
    }

    /// A q16 network: like [`Network::new`], with the scale of every
    /// activation tensor (the real value is `scale · stored int16`), one per
    /// tensor in execution order — the network input, then the output of
    /// every convolution and of every N³ block in the order the network runs
    /// them: DnCNN stage 0, for each block `b` its embedding CNN, its
    /// temperature CNN and its output, then DnCNN stage `b + 1`
    /// ([`Network::activation_count`] values). An N³ block's output has the
    /// scale of its input. Scales must be finite and positive.
    pub fn with_activation_scales(
        dncnn: &[Cnn<'a>],
        n3: &[N3Block<'a>],
        scales: &'a [f32],
    ) -> Result<Self> {
        let mut net = Self::new_unscaled(dncnn, n3)?;
        if net.precision != Precision::Q16 {
            return Err(invalid("activation scales belong to q16 networks only"));
        }
        if scales.len() != net.activation_count()
            || !scales.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            return Err(invalid(
                "q16 activation scales: one finite positive scale per activation tensor",
            ));
        }
        net.scales = scales;
        if net.n3_activations().any(|(i, o)| scales[i] != scales[o]) {
            return Err(invalid(
                "q16: an N3 block's output scale must equal its input scale",
            ));
        }
        Ok(net)
    }

    /// For every N³ block, the indices of its input and output tensors in
    /// the order of [`Network::with_activation_scales`] (a q16 network gives
    /// both the same scale).
    pub fn n3_activations(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut at = 0;
        self.dncnn.iter().zip(&self.n3).map(move |(d, b)| {
            at += d.layers().len();
            let input = at;
            at += b.embed.layers().len() + b.temp.layers().len() + 1;
            (input, at)
        })
    }

    /// Storage precision of the weights and activations.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The q16 activation scales ([`Network::with_activation_scales`]);
    /// empty for f32 and f16 networks.
    pub fn activation_scales(&self) -> &'a [f32] {
        self.scales
    }

    /// Activation tensors: the input, one per convolution, one per N³ block.
    pub fn activation_count(&self) -> usize {
        1 + self.layers().count() + self.n3.len()
    }

    /// Every convolution, in execution order (DnCNN stage 0, then per block
    /// its embedding and temperature CNNs and the next DnCNN stage).
    pub fn layers(&self) -> impl Iterator<Item = &ConvLayer<'a>> {
        let rest = self
            .n3
            .iter()
            .zip(&self.dncnn[1..])
            .flat_map(|(b, d)| [&b.embed, &b.temp, d]);
        core::iter::once(&self.dncnn[0])
            .chain(rest)
            .flat_map(|c| c.layers().iter())
    }

    /// The DnCNN stages.
    pub fn dncnn(&self) -> &[Cnn<'a>] {
        &self.dncnn
    }

    /// The N³ blocks.
    pub fn n3(&self) -> &[N3Block<'a>] {
        &self.n3
    }

    /// Channels of the input image (e.g. 1, or 2 with a noise-level map).
    pub fn cin(&self) -> usize {
        self.dncnn[0].cin()
    }

    /// Channels of the output image.
    pub fn cout(&self) -> usize {
        self.dncnn[self.dncnn.len() - 1].cout()
    }

    /// Every CNN of the network, in execution order.
    pub fn cnns(&self) -> impl Iterator<Item = &Cnn<'a>> {
        let n3 = self.n3.iter().flat_map(|b| [&b.embed, &b.temp]);
        self.dncnn.iter().chain(n3)
    }

    /// Multiply-adds per output pixel.
    pub fn macs_per_pixel(&self) -> u64 {
        let d: u64 = self.dncnn.iter().map(Cnn::macs_per_pixel).sum();
        d + self.n3.iter().map(N3Block::macs_per_pixel).sum::<u64>()
    }

    /// Weights and biases after batch-norm folding.
    pub fn parameters(&self) -> usize {
        self.cnns().map(Cnn::parameters).sum::<usize>() + 2 * self.n3.len()
    }
}
