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

/// Most convolutions in a network, all its CNNs together. The published
/// N³Net has 30 (three DnCNN stages of depth 6, two blocks with embedding
/// and temperature CNNs of depth 3); 128 also holds [`MAX_N3_BLOCKS`]
/// blocks between DnCNN stages of depth 17 (the original DnCNN's). Each
/// slot costs one [`ConvLayer`] in every [`Network`].
pub const MAX_LAYERS: usize = 128;
/// Most N³ blocks in a network (it then has one more DnCNN stage).
pub const MAX_N3_BLOCKS: usize = 4;
/// Most neighbours `k` of an N³ block.
pub const MAX_K: usize = 64;
/// Most CNNs in a network: the DnCNN stages, and an embedding and a
/// temperature CNN per N³ block.
const MAX_CNNS: usize = 3 * MAX_N3_BLOCKS + 1;
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

impl<'a> ConvLayer<'a> {
    /// The same convolution restricted to the output channels `r` (which
    /// must lie in `0..cout`).
    pub fn output_channels(&self, r: core::ops::Range<usize>) -> ConvLayer<'a> {
        let per = self.cin * self.ksize * self.ksize;
        let w = r.start * per..r.end * per;
        ConvLayer {
            cout: r.len(),
            weight: match self.weight {
                Weights::F32(v) => Weights::F32(&v[w]),
                Weights::F16(v) => Weights::F16(&v[w]),
                Weights::Q16 { values, scales } => Weights::Q16 {
                    values: &values[w],
                    scales: &scales[r.clone()],
                },
            },
            bias: &self.bias[r],
            ..*self
        }
    }

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
///
/// A `Cnn` is a view: it borrows its layers (`'n`), which borrow their
/// weights (`'a`), and is cheap to copy. A [`Network`] copies the layers of
/// the CNNs it is built from into its own table and hands out views of it.
#[derive(Debug, Clone, Copy)]
pub struct Cnn<'n, 'a> {
    layers: &'n [ConvLayer<'a>],
    residual: bool,
}

impl<'n, 'a> Cnn<'n, 'a> {
    /// A CNN of `layers`, each validated. With `residual`, the first
    /// `min(cin, cout)` output channels get the input's channels added (the
    /// DnCNN stages of N³Net).
    pub fn new(layers: &'n [ConvLayer<'a>], residual: bool) -> Result<Self> {
        if layers.is_empty() {
            return Err(invalid("CNN without layers"));
        }
        for l in layers {
            l.validate()?;
        }
        if layers.windows(2).any(|p| p[0].cout != p[1].cin) {
            return Err(invalid("CNN layer channels do not chain"));
        }
        Ok(Self { layers, residual })
    }

    /// The layers, in order.
    pub fn layers(self) -> &'n [ConvLayer<'a>] {
        self.layers
    }

    /// Whether the input is added to the first `min(cin, cout)` output channels.
    pub fn residual(self) -> bool {
        self.residual
    }

    /// Input channels.
    pub fn cin(self) -> usize {
        self.layers[0].cin
    }

    /// Output channels.
    pub fn cout(self) -> usize {
        self.layers[self.layers.len() - 1].cout
    }

    /// Widest intermediate output (0 for a single layer).
    pub fn max_hidden(self) -> usize {
        let n = self.layers.len();
        self.layers[..n - 1]
            .iter()
            .map(|l| l.cout)
            .max()
            .unwrap_or(0)
    }

    /// Largest `ksize / 2`.
    pub fn max_pad(self) -> usize {
        self.layers.iter().map(|l| l.ksize / 2).max().unwrap_or(0)
    }

    /// Multiply-adds per pixel.
    pub fn macs_per_pixel(self) -> u64 {
        self.layers.iter().map(ConvLayer::macs_per_pixel).sum()
    }

    /// Number of weights and biases (after batch-norm folding).
    pub fn parameters(self) -> usize {
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
        if self.k == 0 || self.k > MAX_K {
            return Err(invalid("N3 k must be in 1..=MAX_K (64)"));
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
///
/// Like [`Cnn`], a view of layers borrowed for `'n`.
#[derive(Debug, Clone, Copy)]
pub struct N3Block<'n, 'a> {
    /// Embedding CNN: `channels → embedding channels`.
    pub embed: Cnn<'n, 'a>,
    /// Temperature CNN: `channels → 1`.
    pub temp: Cnn<'n, 'a>,
    /// Patch, window and relaxation parameters.
    pub params: N3Params,
}

impl N3Block<'_, '_> {
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

/// Where one CNN's layers end in [`Network`]'s table (it starts where the
/// previous one ends), and whether it adds a residual.
#[derive(Debug, Clone, Copy)]
struct Span {
    end: usize,
    residual: bool,
}

/// A whole N³Net: `n3_blocks() + 1` DnCNN stages and `n3_blocks()` N³
/// blocks, alternating.
///
/// Every convolution of every CNN sits in one table of at most
/// [`MAX_LAYERS`], in execution order; [`Cnn`] and [`N3Block`] are views of
/// it. The description is thus a few kilobytes whatever the split of the
/// layers between the CNNs, and it is built where it lives rather than
/// copied from per-CNN tables, which matters on a microcontroller's stack.
///
/// Every layer stores its weights in one [`Precision`]. A q16 network also
/// carries its activation scales ([`Network::with_activation_scales`]).
#[derive(Debug, Clone)]
pub struct Network<'a> {
    layers: Vec<ConvLayer<'a>, MAX_LAYERS>,
    /// DnCNN stage 0, then per block its embedding CNN, its temperature CNN
    /// and the next DnCNN stage: CNN `3·i` is DnCNN stage `i`.
    cnns: Vec<Span, MAX_CNNS>,
    params: Vec<N3Params, MAX_N3_BLOCKS>,
    precision: Precision,
    scales: &'a [f32],
}

impl<'a> Network<'a> {
    /// Validates the chain `dncnn[0] → n3[0] → dncnn[1] → …` once and copies
    /// the layers into the network. For an f32 or f16 network; a q16 one
    /// needs [`Network::with_activation_scales`].
    pub fn new(dncnn: &[Cnn<'_, 'a>], n3: &[N3Block<'_, 'a>]) -> Result<Self> {
        let mut net = Self::empty();
        net.push_cnns(dncnn, n3)?;
        net.finish(None)?;
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
        dncnn: &[Cnn<'_, 'a>],
        n3: &[N3Block<'_, 'a>],
        scales: &'a [f32],
    ) -> Result<Self> {
        let mut net = Self::empty();
        net.push_cnns(dncnn, n3)?;
        net.finish(Some(scales))?;
        Ok(net)
    }

    /// Appends the CNNs of `dncnn` and `n3` in execution order, not yet
    /// checked as a whole ([`Network::finish`]).
    fn push_cnns(&mut self, dncnn: &[Cnn<'_, 'a>], n3: &[N3Block<'_, 'a>]) -> Result<()> {
        if dncnn.len() != n3.len() + 1 {
            return Err(invalid(
                "a network needs one more DnCNN stage than N3 blocks",
            ));
        }
        self.push_cnn(dncnn[0])?;
        for (b, next) in n3.iter().zip(&dncnn[1..]) {
            self.push_cnn(b.embed)?;
            self.push_cnn(b.temp)?;
            self.push_block(b.params)?;
            self.push_cnn(*next)?;
        }
        Ok(())
    }

    /// A network without layers, to be filled in place: the layers of each
    /// CNN in execution order ([`Network::push_layer`], then
    /// [`Network::end_cnn`]), each block's parameters
    /// ([`Network::push_block`]) anywhere before [`Network::finish`].
    pub(crate) const fn empty() -> Self {
        Self {
            layers: Vec::new(),
            cnns: Vec::new(),
            params: Vec::new(),
            precision: Precision::F32,
            scales: &[],
        }
    }

    /// Appends a layer to the CNN being built; it is validated with that
    /// CNN ([`Network::end_cnn`]).
    pub(crate) fn push_layer(&mut self, layer: ConvLayer<'a>) -> Result<()> {
        self.layers
            .push(layer)
            .map_err(|_| invalid("more than MAX_LAYERS convolutions"))
    }

    /// Ends the CNN made of the layers pushed since the previous one ended,
    /// validating them like [`Cnn::new`].
    pub(crate) fn end_cnn(&mut self, residual: bool) -> Result<()> {
        let start = self.cnns.last().map_or(0, |c| c.end);
        Cnn::new(&self.layers[start..], residual)?;
        self.close_cnn(residual)
    }

    /// Appends the layers of `cnn`, validated when it was made, as one CNN.
    fn push_cnn(&mut self, cnn: Cnn<'_, 'a>) -> Result<()> {
        self.layers
            .extend_from_slice(cnn.layers())
            .map_err(|_| invalid("more than MAX_LAYERS convolutions"))?;
        self.close_cnn(cnn.residual())
    }

    fn close_cnn(&mut self, residual: bool) -> Result<()> {
        let end = self.layers.len();
        self.cnns
            .push(Span { end, residual })
            .map_err(|_| invalid("more than MAX_N3_BLOCKS N3 blocks"))
    }

    /// Appends the parameters of the next N³ block.
    pub(crate) fn push_block(&mut self, params: N3Params) -> Result<()> {
        self.params
            .push(params)
            .map_err(|_| invalid("more than MAX_N3_BLOCKS N3 blocks"))
    }

    /// Checks the network as a whole once its CNNs are in place: the
    /// stages and blocks alternate and their channels chain, every layer
    /// has the same precision, and a q16 network (only) has its activation
    /// scales (see [`Network::with_activation_scales`]).
    pub(crate) fn finish(&mut self, scales: Option<&'a [f32]>) -> Result<()> {
        if self.cnns.len() != 3 * self.params.len() + 1 {
            return Err(invalid(
                "a network needs one more DnCNN stage than N3 blocks",
            ));
        }
        for b in self.n3() {
            b.validate()?;
        }
        for (i, b) in self.n3().enumerate() {
            if self.dncnn_stage(i).cout() != b.cin() || b.cout() != self.dncnn_stage(i + 1).cin() {
                return Err(invalid("stage channels do not chain"));
            }
        }
        let precision = self.layers[0].weight.precision();
        if self
            .layers
            .iter()
            .any(|l| l.weight.precision() != precision)
        {
            return Err(invalid("layers mix weight precisions"));
        }
        self.precision = precision;
        match (precision, scales) {
            (Precision::Q16, None) => Err(invalid(
                "a q16 network needs activation scales (Network::with_activation_scales)",
            )),
            (Precision::F32 | Precision::F16, Some(_)) => {
                Err(invalid("activation scales belong to q16 networks only"))
            }
            (_, None) => Ok(()),
            (_, Some(scales)) => self.set_activation_scales(scales),
        }
    }

    fn set_activation_scales(&mut self, scales: &'a [f32]) -> Result<()> {
        if scales.len() != self.activation_count()
            || !scales.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            return Err(invalid(
                "q16 activation scales: one finite positive scale per activation tensor",
            ));
        }
        if self.n3_activations().any(|(i, o)| scales[i] != scales[o]) {
            return Err(invalid(
                "q16: an N3 block's output scale must equal its input scale",
            ));
        }
        self.scales = scales;
        Ok(())
    }

    /// For every N³ block, the indices of its input and output tensors in
    /// the order of [`Network::with_activation_scales`] (a q16 network gives
    /// both the same scale).
    pub fn n3_activations(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut at = 0;
        self.dncnn().zip(self.n3()).map(move |(d, b)| {
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
        1 + self.layers.len() + self.params.len()
    }

    /// Every convolution, in execution order (DnCNN stage 0, then per block
    /// its embedding and temperature CNNs and the next DnCNN stage).
    pub fn layers(&self) -> &[ConvLayer<'a>] {
        &self.layers
    }

    /// CNN `j` of the execution order.
    fn cnn(&self, j: usize) -> Cnn<'_, 'a> {
        let start = if j == 0 { 0 } else { self.cnns[j - 1].end };
        let Span { end, residual } = self.cnns[j];
        Cnn {
            layers: &self.layers[start..end],
            residual,
        }
    }

    /// Every CNN of the network, in execution order.
    pub fn cnns(&self) -> impl ExactSizeIterator<Item = Cnn<'_, 'a>> {
        (0..self.cnns.len()).map(|j| self.cnn(j))
    }

    /// Number of N³ blocks (the network has one more DnCNN stage).
    pub fn n3_blocks(&self) -> usize {
        self.params.len()
    }

    /// DnCNN stage `i`; panics unless `i ≤ n3_blocks()`.
    pub fn dncnn_stage(&self, i: usize) -> Cnn<'_, 'a> {
        self.cnn(3 * i)
    }

    /// N³ block `b`; panics unless `b < n3_blocks()`.
    pub fn n3_block(&self, b: usize) -> N3Block<'_, 'a> {
        N3Block {
            embed: self.cnn(3 * b + 1),
            temp: self.cnn(3 * b + 2),
            params: self.params[b],
        }
    }

    /// The DnCNN stages, in order.
    pub fn dncnn(&self) -> impl ExactSizeIterator<Item = Cnn<'_, 'a>> {
        (0..self.params.len() + 1).map(|i| self.dncnn_stage(i))
    }

    /// The N³ blocks, in order.
    pub fn n3(&self) -> impl ExactSizeIterator<Item = N3Block<'_, 'a>> {
        (0..self.params.len()).map(|b| self.n3_block(b))
    }

    /// Channels of the input image (e.g. 1, or 2 with a noise-level map).
    pub fn cin(&self) -> usize {
        self.layers[0].cin
    }

    /// Channels of the output image.
    pub fn cout(&self) -> usize {
        self.layers[self.layers.len() - 1].cout
    }

    /// Multiply-adds per output pixel.
    pub fn macs_per_pixel(&self) -> u64 {
        let d: u64 = self.dncnn().map(Cnn::macs_per_pixel).sum();
        d + self.n3().map(|b| b.macs_per_pixel()).sum::<u64>()
    }

    /// Weights and biases after batch-norm folding.
    pub fn parameters(&self) -> usize {
        self.cnns().map(Cnn::parameters).sum::<usize>() + 2 * self.params.len()
    }
}
