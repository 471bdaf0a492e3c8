//! A model held in memory: hyper-parameters and batch-norm-folded weights,
//! from which the core's borrowed [`Network`] is built.

use n3net_core::blob::ModelBlob;
use n3net_core::model::{Cnn, ConvLayer, N3Block, N3Params, Network, Precision, Weights};

use crate::blob::{load_blob, write_blob_as, AlignedBlob, Quant};

/// Hyper-parameters of an N³Net, as recorded in the model file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hyper {
    /// Input channels (1 for a grey image; 2 with a noise-level map).
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// N³ blocks (the network has one more DnCNN stage).
    pub n3_blocks: usize,
    /// Channels between DnCNN stages and N³ blocks.
    pub interm_channels: usize,
    /// Convolutions per DnCNN stage.
    pub dncnn_depth: usize,
    /// Hidden channels of the DnCNN stages.
    pub dncnn_features: usize,
    /// Kernel side of the DnCNN stages.
    pub dncnn_kernel: usize,
    /// Convolutions of the embedding and temperature CNNs.
    pub embed_depth: usize,
    /// Hidden channels of the embedding and temperature CNNs.
    pub embed_features: usize,
    /// Kernel side of the embedding and temperature CNNs.
    pub embed_kernel: usize,
    /// Embedding channels.
    pub embed_out: usize,
    /// Neighbours per query.
    pub k: usize,
    /// Patch side.
    pub patch_size: usize,
    /// Patch stride.
    pub patch_stride: usize,
    /// Search window side in patches.
    pub window: usize,
    /// Temperature bias.
    pub temp_bias: f32,
    /// Whether a batch-norm is applied to the distances.
    pub distance_bn: bool,
    /// Batch-norm epsilon.
    pub bn_eps: f64,
    /// Noise level (σ on the 0–255 scale) the model was trained for, if fixed.
    pub sigma: Option<f32>,
    /// The fixed input size (height, width) of the exported ONNX graph, when
    /// recorded: the size at which tract can run the file as a reference.
    /// The core runs any size.
    pub export_size: Option<(usize, usize)>,
    /// Where the weights came from.
    pub source: String,
}

/// Where one convolution's weights live in [`Model`]'s storage.
#[derive(Debug, Clone, Copy)]
pub struct ConvSlot {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel side.
    pub ksize: usize,
    /// ReLU after the convolution.
    pub relu: bool,
    /// Offset of the weights (`cout·cin·ksize²` values).
    pub weight: usize,
    /// Offset of the biases (`cout` values).
    pub bias: usize,
}

/// An N³ block's parts.
#[derive(Debug, Clone)]
pub struct N3Slots {
    /// Embedding CNN.
    pub embed: Vec<ConvSlot>,
    /// Temperature CNN.
    pub temp: Vec<ConvSlot>,
    /// Patch, window and relaxation parameters.
    pub params: N3Params,
}

/// A model in memory, batch-norm folded, validated.
///
/// The weights are held as f32. A model loaded from an f16 or q16 blob
/// ([`crate::blob::load_blob`]) also keeps the blob and runs in its
/// precision ([`Model::network`]); its f32 weights are the blob's widened
/// or dequantised values.
#[derive(Debug, Clone)]
pub struct Model {
    /// Hyper-parameters.
    pub hyper: Hyper,
    /// Parameters of the source file (before folding; unused tensors excluded).
    pub source_parameters: usize,
    storage: Vec<f32>,
    dncnn: Vec<Vec<ConvSlot>>,
    n3: Vec<N3Slots>,
    blob: Option<(Precision, AlignedBlob)>,
}

impl Model {
    /// Assembles and validates a model.
    pub fn new(
        hyper: Hyper,
        source_parameters: usize,
        storage: Vec<f32>,
        dncnn: Vec<Vec<ConvSlot>>,
        n3: Vec<N3Slots>,
    ) -> anyhow::Result<Self> {
        let m = Self {
            hyper,
            source_parameters,
            storage,
            dncnn,
            n3,
            blob: None,
        };
        m.network()?;
        Ok(m)
    }

    /// The model run from `blob`, a blob of these weights in the 16-bit
    /// `precision` that the core's parser accepted.
    pub(crate) fn run_from_blob(mut self, precision: Precision, blob: AlignedBlob) -> Self {
        self.blob = Some((precision, blob));
        self
    }

    /// The same model in the precision `quant`: written as a blob
    /// ([`write_blob_as`], from this model's f32 weights) and loaded back
    /// ([`load_blob`]).
    pub fn with_precision(&self, quant: Quant<'_>) -> anyhow::Result<Model> {
        load_blob(&write_blob_as(self, quant)?, &self.hyper.source)
    }

    /// The precision the model runs in: the blob's for a model loaded from
    /// an f16 or q16 blob, f32 otherwise.
    pub fn precision(&self) -> Precision {
        self.blob.as_ref().map_or(Precision::F32, |(p, _)| *p)
    }

    /// The layers of `slots`, viewing this model's f32 weights.
    fn layers(&self, slots: &[ConvSlot]) -> anyhow::Result<Vec<ConvLayer<'_>>> {
        slots
            .iter()
            .map(|s| {
                let wlen = s.cout * s.cin * s.ksize * s.ksize;
                let weight = self.storage.get(s.weight..s.weight + wlen);
                let bias = self.storage.get(s.bias..s.bias + s.cout);
                let (Some(weight), Some(bias)) = (weight, bias) else {
                    anyhow::bail!("internal: convolution slot outside the weight storage");
                };
                Ok(ConvLayer {
                    cin: s.cin,
                    cout: s.cout,
                    ksize: s.ksize,
                    relu: s.relu,
                    weight: Weights::F32(weight),
                    bias,
                })
            })
            .collect()
    }

    /// The core's view of the model, in its [`Model::precision`] (borrows
    /// the weights; a 16-bit model's blob is parsed and checked again, CRC
    /// included).
    pub fn network(&self) -> anyhow::Result<Network<'_>> {
        match &self.blob {
            Some((_, blob)) => Ok(ModelBlob::parse(blob.bytes())?.network()?),
            None => self.f32_network(),
        }
    }

    /// The core's view of the model's f32 weights, whatever its precision.
    pub(crate) fn f32_network(&self) -> anyhow::Result<Network<'_>> {
        let dncnn_layers = self
            .dncnn
            .iter()
            .map(|d| self.layers(d))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let n3_layers = self
            .n3
            .iter()
            .map(|b| Ok((self.layers(&b.embed)?, self.layers(&b.temp)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let dncnn = dncnn_layers
            .iter()
            .map(|l| Cnn::new(l, true))
            .collect::<Result<Vec<_>, _>>()?;
        let n3 = n3_layers
            .iter()
            .zip(&self.n3)
            .map(|((embed, temp), b)| {
                Ok(N3Block {
                    embed: Cnn::new(embed, false)?,
                    temp: Cnn::new(temp, false)?,
                    params: b.params,
                })
            })
            .collect::<Result<Vec<_>, n3net_core::Error>>()?;
        Ok(Network::new(&dncnn, &n3)?)
    }
}
