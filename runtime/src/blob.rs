//! Writing and loading the flash-ready weight blob (`.n3b`, format in
//! `docs/blob-format.md`), in f32, f16 or q16. Loading goes through the
//! core's parser, so a blob the runtime accepts is one the firmware accepts.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use half::f16;
use n3net_core::blob::{
    self, ModelBlob, Precision, Role, BLOCK_ENTRY_BYTES, CRC_OFFSET, FLAG_DISTANCE_BN,
    FLAG_EXPORT_SIZE, FLAG_SIGMA, HEADER_BYTES, LAYER_ENTRY_BYTES, LAYER_RELU, LAYER_RESIDUAL,
    MAGIC, SECTION_ALIGN, VERSION,
};
use n3net_core::kernels::fixed::quantize_weights;
use n3net_core::model::{Cnn, ConvLayer, N3Params, Weights};

use crate::model::{ConvSlot, Hyper, Model, N3Slots};

/// The precision a blob is written in ([`write_blob_as`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quant<'a> {
    /// binary32 weights, as the model holds them.
    F32,
    /// binary16 weights (each f32 weight rounded to nearest).
    F16,
    /// int16 weights with one scale per output channel
    /// (`n3net_core::kernels::fixed::quantize_weights`), and the network's
    /// activation scales, calibrated by the caller.
    Q16 {
        /// One finite, positive scale per activation tensor, in the order of
        /// `n3net_core::Network::with_activation_scales`
        /// (`Network::activation_count` values; an N³ block's output scale
        /// equals its input's).
        activation_scales: &'a [f32],
    },
}

impl Quant<'_> {
    /// The precision of the weights written.
    pub fn precision(&self) -> Precision {
        match self {
            Quant::F32 => Precision::F32,
            Quant::F16 => Precision::F16,
            Quant::Q16 { .. } => Precision::Q16,
        }
    }
}

/// One convolution of the layer table, with the CNN it belongs to.
struct TableLayer<'n> {
    role: Role,
    index: usize,
    residual: bool,
    layer: &'n ConvLayer<'n>,
}

fn round_up(n: usize) -> usize {
    n.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

fn u16_of(v: usize, what: &str) -> anyhow::Result<[u8; 2]> {
    let v = u16::try_from(v).map_err(|_| anyhow!("{what} = {v} does not fit the blob's u16"))?;
    Ok(v.to_le_bytes())
}

fn u32_of(v: usize, what: &str) -> anyhow::Result<[u8; 4]> {
    let v = u32::try_from(v).map_err(|_| anyhow!("{what} = {v} does not fit the blob's u32"))?;
    Ok(v.to_le_bytes())
}

fn u8_of(v: usize, what: &str) -> anyhow::Result<u8> {
    u8::try_from(v).map_err(|_| anyhow!("{what} = {v} does not fit the blob's u8"))
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    bytes[at..at + value.len()].copy_from_slice(value);
}

/// Every convolution in the blob's order: DnCNN stage 0, then per block its
/// embedding CNN, its temperature CNN and the next DnCNN stage.
fn table_layers<'n>(net: &'n n3net_core::Network<'n>) -> Vec<TableLayer<'n>> {
    let of = |cnn: Cnn<'n, 'n>, role, index| {
        cnn.layers().iter().map(move |layer| TableLayer {
            role,
            index,
            residual: cnn.residual(),
            layer,
        })
    };
    let mut out: Vec<TableLayer<'n>> = of(net.dncnn_stage(0), Role::Dncnn, 0).collect();
    for (b, block) in net.n3().enumerate() {
        out.extend(of(block.embed, Role::Embed, b));
        out.extend(of(block.temp, Role::Temp, b));
        out.extend(of(net.dncnn_stage(b + 1), Role::Dncnn, b + 1));
    }
    out
}

/// The fixed header's fields: structure, flags and hyper-parameters.
fn write_fixed_header(
    bytes: &mut [u8],
    model: &Model,
    precision: Precision,
    layers: usize,
) -> anyhow::Result<()> {
    let h = &model.hyper;
    put(bytes, 0, &MAGIC);
    put(bytes, 4, &VERSION.to_le_bytes());
    put(bytes, 6, &blob::precision_code(precision).to_le_bytes());
    let flags = [
        (h.distance_bn, FLAG_DISTANCE_BN),
        (h.sigma.is_some(), FLAG_SIGMA),
        (h.export_size.is_some(), FLAG_EXPORT_SIZE),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0u16, |f, (_, bit)| f | bit);
    put(bytes, 0x14, &flags.to_le_bytes());
    put(bytes, 0x16, &u16_of(h.source.len(), "source name length")?);
    let counts = [
        (0x18, h.in_channels, "in_channels"),
        (0x1A, h.out_channels, "out_channels"),
        (0x1C, h.n3_blocks + 1, "DnCNN stages"),
        (0x1E, h.n3_blocks, "n3_blocks"),
        (0x20, layers, "layer count"),
        (0x40, h.interm_channels, "interm_channels"),
        (0x42, h.dncnn_depth, "dncnn_depth"),
        (0x44, h.dncnn_features, "dncnn_features"),
        (0x46, h.dncnn_kernel, "dncnn_kernel"),
        (0x48, h.embed_depth, "embed_depth"),
        (0x4A, h.embed_features, "embed_features"),
        (0x4C, h.embed_kernel, "embed_kernel"),
        (0x4E, h.embed_out, "embed_out"),
        (0x50, h.k, "k"),
        (0x52, h.patch_size, "patch_size"),
        (0x54, h.patch_stride, "patch_stride"),
        (0x56, h.window, "window"),
    ];
    for (at, v, what) in counts {
        put(bytes, at, &u16_of(v, what)?);
    }
    put(bytes, 0x24, &h.sigma.unwrap_or(0.0).to_le_bytes());
    put(bytes, 0x28, &(model.source_parameters as u64).to_le_bytes());
    put(bytes, 0x30, &h.bn_eps.to_le_bytes());
    let (eh, ew) = h.export_size.unwrap_or((0, 0));
    put(bytes, 0x38, &u32_of(eh, "export height")?);
    put(bytes, 0x3C, &u32_of(ew, "export width")?);
    put(bytes, 0x58, &h.temp_bias.to_le_bytes());
    Ok(())
}

fn write_block(bytes: &mut [u8], at: usize, p: &N3Params) -> anyhow::Result<()> {
    put(bytes, at, &u16_of(p.k, "k")?);
    put(bytes, at + 2, &u16_of(p.patch, "patch")?);
    put(bytes, at + 4, &u16_of(p.stride, "stride")?);
    put(bytes, at + 6, &u16_of(p.window, "window")?);
    put(bytes, at + 8, &p.temp_bias.to_le_bytes());
    put(bytes, at + 12, &p.logit_scale.to_le_bytes());
    put(bytes, at + 16, &p.logit_shift.to_le_bytes());
    Ok(())
}

/// Appends `bytes` as a 16-aligned section; returns (offset, length) as u32 bytes.
fn push_section(out: &mut Vec<u8>, bytes: impl IntoIterator<Item = u8>) -> anyhow::Result<[u8; 8]> {
    out.resize(round_up(out.len()), 0);
    let at = out.len();
    out.extend(bytes);
    let mut field = [0u8; 8];
    field[..4].copy_from_slice(&u32_of(at, "section offset")?);
    field[4..].copy_from_slice(&u32_of(out.len() - at, "section length")?);
    Ok(field)
}

fn f32_bytes(values: &[f32]) -> impl Iterator<Item = u8> + '_ {
    values.iter().flat_map(|v| v.to_le_bytes())
}

/// Appends the layer's sections (weight, bias, q16 scale) and fills its
/// table entry at `at`.
fn write_layer(
    out: &mut Vec<u8>,
    at: usize,
    t: &TableLayer<'_>,
    precision: Precision,
) -> anyhow::Result<()> {
    let l = t.layer;
    let flags = if l.relu { LAYER_RELU } else { 0 } | if t.residual { LAYER_RESIDUAL } else { 0 };
    let Weights::F32(w) = l.weight else {
        bail!("internal: blobs are written from f32 layers");
    };
    let (weight, bias, scale) = match precision {
        Precision::F32 => (
            push_section(out, f32_bytes(w))?,
            push_section(out, f32_bytes(l.bias))?,
            [0; 8],
        ),
        Precision::F16 => (
            push_section(out, w.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()))?,
            push_section(out, f32_bytes(l.bias))?,
            [0; 8],
        ),
        Precision::Q16 => {
            let mut values = vec![0i16; w.len()];
            let mut scales = vec![0f32; l.cout];
            let taps = l.ksize * l.ksize;
            quantize_weights(w, l.cout, taps, &mut values, &mut scales)?;
            (
                push_section(out, values.iter().flat_map(|v| v.to_le_bytes()))?,
                push_section(out, f32_bytes(l.bias))?,
                push_section(out, f32_bytes(&scales))?,
            )
        }
    };
    put(out, at, &u16_of(l.cin, "layer input channels")?);
    put(out, at + 2, &u16_of(l.cout, "layer output channels")?);
    put(
        out,
        at + 4,
        &[
            u8_of(l.ksize, "kernel side")?,
            flags,
            t.role.code(),
            u8_of(t.index, "stage index")?,
        ],
    );
    put(out, at + 8, &weight);
    put(out, at + 16, &bias);
    put(out, at + 24, &scale);
    Ok(())
}

/// The model as an f32 blob (`docs/blob-format.md`): [`write_blob_as`]
/// with [`Quant::F32`].
pub fn write_blob(model: &Model) -> anyhow::Result<Vec<u8>> {
    write_blob_as(model, Quant::F32)
}

/// The model as a blob of the precision `quant` (`docs/blob-format.md`),
/// from the model's f32 weights (dequantised, for a model loaded from an
/// f16 or q16 blob). The blob is checked with the core's parser before it
/// is returned.
pub fn write_blob_as(model: &Model, quant: Quant<'_>) -> anyhow::Result<Vec<u8>> {
    let precision = quant.precision();
    let net = model.f32_network()?;
    let layers = table_layers(&net);
    let blocks_at = HEADER_BYTES;
    let layers_at = blocks_at + BLOCK_ENTRY_BYTES * net.n3_blocks();
    let source_at = layers_at + LAYER_ENTRY_BYTES * layers.len();
    let header_len = round_up(source_at + model.hyper.source.len());
    let mut out = vec![0u8; header_len];
    write_fixed_header(&mut out, model, precision, layers.len())?;
    put(&mut out, 0x08, &u32_of(header_len, "header length")?);
    for (b, block) in net.n3().enumerate() {
        write_block(&mut out, blocks_at + b * BLOCK_ENTRY_BYTES, &block.params)?;
    }
    put(&mut out, source_at, model.hyper.source.as_bytes());
    for (i, t) in layers.iter().enumerate() {
        write_layer(&mut out, layers_at + i * LAYER_ENTRY_BYTES, t, precision)?;
    }
    if let Quant::Q16 { activation_scales } = quant {
        if activation_scales.len() != net.activation_count() {
            bail!(
                "q16: {} activation scales given, the network has {} activation tensors",
                activation_scales.len(),
                net.activation_count()
            );
        }
        let section = push_section(&mut out, f32_bytes(activation_scales))?;
        put(&mut out, 0x5C, &section[..4]);
    }
    let total = u32_of(out.len(), "blob length")?;
    put(&mut out, 0x0C, &total);
    let crc = blob::blob_crc(&out)?;
    put(&mut out, CRC_OFFSET, &crc.to_le_bytes());
    ModelBlob::parse(AlignedBlob::new(&out).bytes()).with_context(|| {
        format!(
            "the {} blob written from {} does not validate",
            precision.name(),
            model.hyper.source
        )
    })?;
    Ok(out)
}

/// A blob's bytes copied to a 16-byte aligned start, as firmware would place
/// them (a clone is aligned again).
#[derive(Debug)]
pub(crate) struct AlignedBlob {
    store: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBlob {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut store = vec![0u8; bytes.len() + SECTION_ALIGN - 1];
        let start = store.as_ptr().align_offset(SECTION_ALIGN);
        store[start..start + bytes.len()].copy_from_slice(bytes);
        Self {
            store,
            start,
            len: bytes.len(),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.store[self.start..self.start + self.len]
    }
}

impl Clone for AlignedBlob {
    fn clone(&self) -> Self {
        Self::new(self.bytes())
    }
}

/// The convolution slots of `cnn`, its weights appended to `storage`.
fn slots(cnn: Cnn<'_, '_>, storage: &mut Vec<f32>) -> Vec<ConvSlot> {
    cnn.layers()
        .iter()
        .map(|l| {
            let weight = storage.len();
            match l.weight {
                Weights::F32(w) => storage.extend_from_slice(w),
                Weights::F16(w) => storage.extend(w.iter().map(|v| v.to_f32())),
                Weights::Q16 { values, scales } => {
                    let per = values.len() / l.cout;
                    for (co, &s) in scales.iter().enumerate() {
                        let v = &values[co * per..][..per];
                        storage.extend(v.iter().map(|&q| f32::from(q) * s));
                    }
                }
            }
            let bias = storage.len();
            storage.extend_from_slice(l.bias);
            ConvSlot {
                cin: l.cin,
                cout: l.cout,
                ksize: l.ksize,
                relu: l.relu,
                weight,
                bias,
            }
        })
        .collect()
}

fn hyper(blob: &ModelBlob<'_>) -> Hyper {
    let m = blob.meta();
    Hyper {
        in_channels: m.in_channels,
        out_channels: m.out_channels,
        n3_blocks: m.n3_blocks,
        interm_channels: m.interm_channels,
        dncnn_depth: m.dncnn_depth,
        dncnn_features: m.dncnn_features,
        dncnn_kernel: m.dncnn_kernel,
        embed_depth: m.embed_depth,
        embed_features: m.embed_features,
        embed_kernel: m.embed_kernel,
        embed_out: m.embed_out,
        k: m.k,
        patch_size: m.patch_size,
        patch_stride: m.patch_stride,
        window: m.window,
        temp_bias: m.temp_bias,
        distance_bn: m.distance_bn,
        bn_eps: m.bn_eps,
        sigma: m.sigma,
        export_size: m.export_size,
        source: blob.source().to_string(),
    }
}

/// Loads a model from the bytes of a blob of any precision, through the
/// core's parser (every check the firmware makes); `name` names the blob in
/// errors. The model holds the weights as f32 (f16 widened, q16
/// dequantised, `scale · value`); an f16 or q16 model also keeps the blob,
/// and its [`Model::network`] runs in the blob's precision.
pub fn load_blob(bytes: &[u8], name: &str) -> anyhow::Result<Model> {
    let aligned = AlignedBlob::new(bytes);
    let (model, precision) = f32_model(aligned.bytes(), name)?;
    match precision {
        Precision::F32 => Ok(model),
        precision => Ok(model.run_from_blob(precision, aligned)),
    }
}

/// The model of the blob `bytes` (16-byte aligned) with its weights as
/// f32, and the blob's precision.
fn f32_model(bytes: &[u8], name: &str) -> anyhow::Result<(Model, Precision)> {
    let invalid = |e: n3net_core::Error| {
        anyhow::Error::new(e).context(format!("{name}: not a valid weight blob"))
    };
    let blob = ModelBlob::parse(bytes).map_err(invalid)?;
    let net = blob.network().map_err(invalid)?;
    let mut storage = Vec::new();
    let dncnn = net.dncnn().map(|c| slots(c, &mut storage)).collect();
    let n3 = net
        .n3()
        .map(|b| N3Slots {
            embed: slots(b.embed, &mut storage),
            temp: slots(b.temp, &mut storage),
            params: b.params,
        })
        .collect();
    let source_parameters = usize::try_from(blob.meta().source_parameters)
        .context("source parameter count does not fit usize")?;
    let model = Model::new(hyper(&blob), source_parameters, storage, dncnn, n3)?;
    Ok((model, blob.precision()))
}

/// Loads the blob file at `path`.
pub fn load(path: &Path) -> anyhow::Result<Model> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    load_blob(&bytes, &path.display().to_string())
}
