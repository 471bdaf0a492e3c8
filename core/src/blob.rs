//! The flash-ready weight blob (`.n3b`): a network, its hyper-parameters and
//! its weights in one little-endian byte image that runs in place.
//!
//! [`ModelBlob::parse`] validates a blob once (magic, version, precision,
//! lengths, alignment, CRC-32, tables and the network they describe) without
//! copying or allocating; [`ModelBlob::network`] then builds a [`Network`]
//! whose weights are slices of the blob itself. The layout is documented byte
//! by byte in `docs/blob-format.md`; the runtime writes blobs
//! (`n3net convert`).
//!
//! Weights are stored in one [`Precision`]: f32, f16 (binary16) or q16
//! (int16 with per-output-channel scales, and the activation scales of the
//! network); biases and scales are always f32.
//!
//! Firmware should place the blob on a 16-byte boundary; every precision
//! needs the blob start 4-byte aligned (the f32 biases;
//! [`ErrorKind::Misaligned`] otherwise). The stored values are
//! little-endian, so big-endian targets are refused
//! ([`ErrorKind::UnsupportedPrecision`]).

pub mod crc;

use half::f16;

pub use crate::model::Precision;
pub use crc::{crc32, Crc32};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{ConvLayer, N3Params, Network, Weights, MAX_LAYERS, MAX_N3_BLOCKS};

/// First four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"N3NB";
/// The format version this build reads.
pub const VERSION: u16 = 1;
/// Bytes of the fixed header; the N³ block table follows it.
pub const HEADER_BYTES: usize = 96;
/// Bytes of one entry of the N³ block table.
pub const BLOCK_ENTRY_BYTES: usize = 24;
/// Bytes of one entry of the layer table.
pub const LAYER_ENTRY_BYTES: usize = 32;
/// Alignment, from the blob start, of the header's end and of every data section.
pub const SECTION_ALIGN: usize = 16;
/// Alignment the blob start needs in memory, whatever the precision (the
/// f32 biases are viewed in place).
const BLOB_ALIGN: usize = 4;
/// Offset of the CRC-32 field, taken as zero when the checksum is computed.
pub const CRC_OFFSET: usize = 16;
/// Header flag: the distance batch-norm was folded into the logits.
pub const FLAG_DISTANCE_BN: u16 = 1;
/// Header flag: the model was trained for one noise level (the sigma field).
pub const FLAG_SIGMA: u16 = 2;
/// Header flag: the export size fields are set.
pub const FLAG_EXPORT_SIZE: u16 = 4;
/// Layer flag: a ReLU follows the convolution.
pub const LAYER_RELU: u8 = 1;
/// Layer flag: the layer's CNN adds its input to its output (DnCNN stages).
pub const LAYER_RESIDUAL: u8 = 2;

const KNOWN_FLAGS: u16 = FLAG_DISTANCE_BN | FLAG_SIGMA | FLAG_EXPORT_SIZE;

/// The code of `precision` in the header: `0` f32, `1` f16, `2` q16.
pub const fn precision_code(precision: Precision) -> u16 {
    match precision {
        Precision::F32 => 0,
        Precision::F16 => 1,
        Precision::Q16 => 2,
    }
}

fn precision_from_code(code: u16) -> Result<Precision> {
    match code {
        0 => Ok(Precision::F32),
        1 => Ok(Precision::F16),
        2 => Ok(Precision::Q16),
        _ => Err(unsupported("unknown weight precision code")),
    }
}

/// Which CNN of the network a layer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// A DnCNN stage (the layer's index is the stage).
    Dncnn,
    /// The embedding CNN of an N³ block (the layer's index is the block).
    Embed,
    /// The temperature CNN of an N³ block (the layer's index is the block).
    Temp,
}

impl Role {
    /// The code stored in the layer table.
    pub const fn code(self) -> u8 {
        match self {
            Role::Dncnn => 0,
            Role::Embed => 1,
            Role::Temp => 2,
        }
    }
}

/// The structure and hyper-parameters recorded in the header: what the
/// runtime needs to describe the model it was written from.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Meta {
    /// Input channels of the network.
    pub in_channels: usize,
    /// Output channels of the network.
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
    /// Whether the distances had a batch-norm (folded into the logits).
    pub distance_bn: bool,
    /// Batch-norm epsilon of the source model.
    pub bn_eps: f64,
    /// The noise level (σ, 0–255 scale) the model was trained for, if fixed.
    pub sigma: Option<f32>,
    /// The (height, width) the source ONNX graph was exported for, if recorded.
    pub export_size: Option<(usize, usize)>,
    /// Parameters of the source file, before batch-norm folding.
    pub source_parameters: u64,
}

/// A validated blob borrowed from memory the caller owns (flash, a static, a `Vec`).
#[derive(Debug, Clone, Copy)]
pub struct ModelBlob<'a> {
    bytes: &'a [u8],
    header_len: usize,
    layer_count: usize,
    precision: Precision,
    activations: usize,
    meta: Meta,
    source: &'a str,
}

/// One validated entry of the layer table.
struct Entry {
    cin: usize,
    cout: usize,
    ksize: usize,
    relu: bool,
    residual: bool,
    role: u8,
    index: usize,
    weight: (usize, usize),
    bias: (usize, usize),
    scale: (usize, usize),
}

/// Position while the layer table and the data sections are walked in order.
struct Walk {
    layer: usize,
    free: usize,
}

fn err(kind: ErrorKind, what: &'static str) -> Error {
    Error::new(kind, what)
}

fn corrupt(what: &'static str) -> Error {
    err(ErrorKind::CorruptBlob, what)
}

fn unsupported(what: &'static str) -> Error {
    err(ErrorKind::UnsupportedPrecision, what)
}

fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N]> {
    at.checked_add(N)
        .and_then(|end| b.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or(corrupt("field outside the header"))
}

fn u8_at(b: &[u8], at: usize) -> Result<u8> {
    Ok(bytes_at::<1>(b, at)?[0])
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    bytes_at(b, at).map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    bytes_at(b, at).map(u32::from_le_bytes)
}

fn usize16_at(b: &[u8], at: usize) -> Result<usize> {
    u16_at(b, at).map(usize::from)
}

fn usize32_at(b: &[u8], at: usize) -> Result<usize> {
    usize::try_from(u32_at(b, at)?).map_err(|_| corrupt("offset does not fit usize"))
}

fn f32_at(b: &[u8], at: usize) -> Result<f32> {
    bytes_at(b, at).map(f32::from_le_bytes)
}

fn add(a: usize, b: usize) -> Result<usize> {
    a.checked_add(b).ok_or(corrupt("size overflows usize"))
}

fn mul(a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or(corrupt("size overflows usize"))
}

fn round_up(n: usize) -> Result<usize> {
    Ok(add(n, SECTION_ALIGN - 1)? / SECTION_ALIGN * SECTION_ALIGN)
}

/// The CRC-32 of a blob: every byte, with the CRC field taken as zero.
/// `bytes` must be at least [`HEADER_BYTES`] long.
pub fn blob_crc(bytes: &[u8]) -> Result<u32> {
    let (head, rest) = bytes
        .split_at_checked(CRC_OFFSET)
        .ok_or(err(ErrorKind::Truncated, "blob shorter than its header"))?;
    let tail = rest
        .get(4..)
        .ok_or(err(ErrorKind::Truncated, "blob shorter than its header"))?;
    let mut c = Crc32::new();
    c.update(head);
    c.update(&[0; 4]);
    c.update(tail);
    Ok(c.finish())
}

/// The types of stored values, viewed in place.
///
/// # Safety
///
/// Every bit pattern of the type's size must be a valid value.
unsafe trait Plain {}

// SAFETY: every bit pattern is a valid f32 (NaNs included).
unsafe impl Plain for f32 {}
// SAFETY: `f16` is a transparent `u16`; every bit pattern is a valid binary16.
unsafe impl Plain for f16 {}
// SAFETY: every bit pattern is a valid i16.
unsafe impl Plain for i16 {}

/// Views little-endian values in place.
fn view<T: Plain>(bytes: &[u8]) -> Result<&[T]> {
    // SAFETY: every bit pattern is a valid `T` (`Plain`), and `align_to`
    // only puts correctly aligned, whole values in the middle slice; anything
    // left over is rejected below. The target is little-endian (checked in
    // `parse`), as the stored values are.
    let (head, values, tail) = unsafe { bytes.align_to::<T>() };
    if !head.is_empty() || !tail.is_empty() {
        return Err(err(
            ErrorKind::Misaligned,
            "data section is not aligned in memory for its values",
        ));
    }
    Ok(values)
}

fn read_meta(h: &[u8]) -> Result<Meta> {
    let flags = u16_at(h, 0x14)?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(corrupt("unknown header flags"));
    }
    let sigma = f32_at(h, 0x24)?;
    let bn_eps = f64::from_le_bytes(bytes_at(h, 0x30)?);
    let temp_bias = f32_at(h, 0x58)?;
    let sigma_ok = flags & FLAG_SIGMA == 0 || sigma.is_finite();
    if !(sigma_ok && bn_eps.is_finite() && bn_eps >= 0.0) {
        return Err(corrupt(
            "sigma or batch-norm epsilon is not a finite number",
        ));
    }
    if !(temp_bias.is_finite() && temp_bias > 0.0) {
        return Err(corrupt("temperature bias is not finite and positive"));
    }
    Ok(Meta {
        in_channels: usize16_at(h, 0x18)?,
        out_channels: usize16_at(h, 0x1A)?,
        n3_blocks: usize16_at(h, 0x1E)?,
        interm_channels: usize16_at(h, 0x40)?,
        dncnn_depth: usize16_at(h, 0x42)?,
        dncnn_features: usize16_at(h, 0x44)?,
        dncnn_kernel: usize16_at(h, 0x46)?,
        embed_depth: usize16_at(h, 0x48)?,
        embed_features: usize16_at(h, 0x4A)?,
        embed_kernel: usize16_at(h, 0x4C)?,
        embed_out: usize16_at(h, 0x4E)?,
        k: usize16_at(h, 0x50)?,
        patch_size: usize16_at(h, 0x52)?,
        patch_stride: usize16_at(h, 0x54)?,
        window: usize16_at(h, 0x56)?,
        temp_bias,
        distance_bn: flags & FLAG_DISTANCE_BN != 0,
        bn_eps,
        sigma: (flags & FLAG_SIGMA != 0).then_some(sigma),
        export_size: (flags & FLAG_EXPORT_SIZE != 0)
            .then(|| Ok::<_, Error>((usize32_at(h, 0x38)?, usize32_at(h, 0x3C)?)))
            .transpose()?,
        source_parameters: u64::from_le_bytes(bytes_at(h, 0x28)?),
    })
}

impl<'a> ModelBlob<'a> {
    /// Validates the blob at the start of `bytes` once: magic, version,
    /// precision, lengths, alignment, CRC-32, the tables and the network they
    /// describe. Bytes past the recorded total length are ignored (a whole
    /// flash partition may be passed).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if cfg!(target_endian = "big") {
            return Err(unsupported(
                "blob values are little-endian and cannot be viewed in place on this target",
            ));
        }
        let magic = bytes
            .get(..MAGIC.len())
            .ok_or(err(ErrorKind::Truncated, "blob shorter than its magic"))?;
        if magic != MAGIC {
            return Err(err(ErrorKind::BadMagic, "not a weight blob (magic N3NB)"));
        }
        let h = bytes
            .get(..HEADER_BYTES)
            .ok_or(err(ErrorKind::Truncated, "blob shorter than its header"))?;
        if u16_at(h, 4)? != VERSION {
            return Err(err(
                ErrorKind::UnsupportedVersion,
                "blob format version is not 1",
            ));
        }
        let precision = precision_from_code(u16_at(h, 6)?)?;
        let bytes = Self::checked_bytes(bytes, h)?;
        let blob = Self::from_header(bytes, h, precision)?;
        // Only the checks are wanted: dropping the network inside `map`
        // keeps a second copy of it off the stack (`?` would move it out).
        blob.network().map(drop)?;
        Ok(blob)
    }

    /// The blob's own bytes after the length, alignment and CRC checks.
    fn checked_bytes(bytes: &'a [u8], h: &[u8]) -> Result<&'a [u8]> {
        let total = usize32_at(h, 0x0C)?;
        let bytes = bytes.get(..total).ok_or(err(
            ErrorKind::Truncated,
            "blob shorter than its recorded total length",
        ))?;
        if total < HEADER_BYTES {
            return Err(corrupt("recorded total length is shorter than the header"));
        }
        if bytes.as_ptr() as usize % BLOB_ALIGN != 0 {
            return Err(err(
                ErrorKind::Misaligned,
                "blob start is not 4-byte aligned (place it 16-byte aligned)",
            ));
        }
        if blob_crc(bytes)? != u32_at(h, CRC_OFFSET)? {
            return Err(err(ErrorKind::Checksum, "blob CRC-32 does not match"));
        }
        Ok(bytes)
    }

    /// Reads the fixed header and checks the table and source-name extents.
    fn from_header(bytes: &'a [u8], h: &[u8], precision: Precision) -> Result<Self> {
        let meta = read_meta(h)?;
        let stages = usize16_at(h, 0x1C)?;
        let layer_count = usize16_at(h, 0x20)?;
        if meta.n3_blocks > MAX_N3_BLOCKS || stages != add(meta.n3_blocks, 1)? {
            return Err(corrupt("DnCNN stage and N3 block counts disagree"));
        }
        if layer_count > MAX_LAYERS {
            return Err(corrupt("more layers than MAX_LAYERS"));
        }
        if u16_at(h, 0x22)? != 0 {
            return Err(corrupt("reserved header field is not zero"));
        }
        let activations = usize32_at(h, 0x5C)?;
        match (precision, activations) {
            (Precision::Q16, 0) => return Err(corrupt("q16 blob without activation scales")),
            (Precision::F32 | Precision::F16, 1..) => {
                return Err(corrupt("activation scales in an f32 or f16 blob"))
            }
            _ => {}
        }
        let tables = add(
            mul(meta.n3_blocks, BLOCK_ENTRY_BYTES)?,
            mul(layer_count, LAYER_ENTRY_BYTES)?,
        )?;
        let source_at = add(HEADER_BYTES, tables)?;
        let source_end = add(source_at, usize16_at(h, 0x16)?)?;
        let header_len = usize32_at(h, 0x08)?;
        if header_len != round_up(source_end)? || header_len > bytes.len() {
            return Err(corrupt("header length does not match its tables"));
        }
        let source = bytes
            .get(source_at..source_end)
            .and_then(|s| core::str::from_utf8(s).ok())
            .ok_or(corrupt("source name is not UTF-8"))?;
        Ok(Self {
            bytes,
            header_len,
            layer_count,
            precision,
            activations,
            meta,
            source,
        })
    }

    /// The network, its weights (and, for q16, its weight and activation
    /// scales) viewed in place in the blob. Runs the model's validation
    /// again (it checks every weight is finite and, for q16, the
    /// accumulator bounds and the scales).
    ///
    /// The layers go straight into the returned network's table, in the
    /// blob's order, which is the execution order.
    pub fn network(&self) -> Result<Network<'a>> {
        let mut walk = Walk {
            layer: 0,
            free: self.header_len,
        };
        let mut net = Network::empty();
        self.cnn(&mut net, &mut walk, Role::Dncnn, 0)?;
        for b in 0..self.meta.n3_blocks {
            self.cnn(&mut net, &mut walk, Role::Embed, b)?;
            self.cnn(&mut net, &mut walk, Role::Temp, b)?;
            net.push_block(self.block_params(b)?)?;
            self.cnn(&mut net, &mut walk, Role::Dncnn, add(b, 1)?)?;
        }
        if walk.layer != self.layer_count {
            return Err(corrupt("layer table has layers outside the structure"));
        }
        let scales = if self.precision == Precision::Q16 {
            let count = add(add(self.layer_count, 1)?, self.meta.n3_blocks)?;
            Some(self.place(self.activations, count, &mut walk.free)?)
        } else {
            None
        };
        net.finish(scales)?;
        if net.cin() != self.meta.in_channels || net.cout() != self.meta.out_channels {
            return Err(corrupt("header channels do not match the layer table"));
        }
        Ok(net)
    }

    /// Appends the consecutive layers of `(role, index)` to `net` as one CNN.
    fn cnn(&self, net: &mut Network<'a>, walk: &mut Walk, role: Role, index: usize) -> Result<()> {
        let mut residual = None;
        while walk.layer < self.layer_count {
            let e = self.entry(walk.layer)?;
            if (e.role, e.index) != (role.code(), index) {
                break;
            }
            if residual.is_some_and(|r| r != e.residual) {
                return Err(corrupt("residual flag differs within one CNN"));
            }
            residual = Some(e.residual);
            net.push_layer(self.conv(&e, &mut walk.free)?)?;
            walk.layer += 1;
        }
        let residual = residual.ok_or(corrupt("a CNN of the structure has no layers"))?;
        net.end_cnn(residual)
    }

    /// The layer of entry `e`, reading its weight, bias and (q16) scale
    /// sections in this order.
    fn conv(&self, e: &Entry, free: &mut usize) -> Result<ConvLayer<'a>> {
        let count = mul(mul(e.cout, e.cin)?, mul(e.ksize, e.ksize)?)?;
        let (weight, bias) = match self.precision {
            Precision::F32 | Precision::F16 if e.scale != (0, 0) => {
                return Err(corrupt("scale section in an f32 or f16 blob"));
            }
            Precision::F32 => (
                Weights::F32(self.section(e.weight, count, free)?),
                self.section(e.bias, e.cout, free)?,
            ),
            Precision::F16 => (
                Weights::F16(self.section(e.weight, count, free)?),
                self.section(e.bias, e.cout, free)?,
            ),
            Precision::Q16 => {
                let values = self.section(e.weight, count, free)?;
                let bias = self.section(e.bias, e.cout, free)?;
                let scales = self.section(e.scale, e.cout, free)?;
                (Weights::Q16 { values, scales }, bias)
            }
        };
        Ok(ConvLayer {
            cin: e.cin,
            cout: e.cout,
            ksize: e.ksize,
            relu: e.relu,
            weight,
            bias,
        })
    }

    /// The data section `(offset, length)` of `count` values of `T`; see
    /// [`ModelBlob::place`].
    fn section<T: Plain>(
        &self,
        (at, len): (usize, usize),
        count: usize,
        free: &mut usize,
    ) -> Result<&'a [T]> {
        if len != mul(count, size_of::<T>())? {
            return Err(corrupt(
                "data section length does not match the layer shape",
            ));
        }
        self.place(at, count, free)
    }

    /// The `count` values of `T` at `at`, which must start on
    /// [`SECTION_ALIGN`] at or after `free` (the end of the header or of the
    /// previous section) and end inside the blob; `free` moves to their end.
    fn place<T: Plain>(&self, at: usize, count: usize, free: &mut usize) -> Result<&'a [T]> {
        let len = mul(count, size_of::<T>())?;
        if at % SECTION_ALIGN != 0 || at < *free {
            return Err(corrupt(
                "data section is unaligned, out of order or overlaps the header",
            ));
        }
        let end = add(at, len)?;
        let bytes = self
            .bytes
            .get(at..end)
            .ok_or(corrupt("data section past the end of the blob"))?;
        *free = end;
        view(bytes)
    }

    fn entry(&self, i: usize) -> Result<Entry> {
        let at = add(
            HEADER_BYTES,
            add(
                mul(self.meta.n3_blocks, BLOCK_ENTRY_BYTES)?,
                mul(i, LAYER_ENTRY_BYTES)?,
            )?,
        )?;
        let b = self.bytes;
        let flags = u8_at(b, add(at, 5)?)?;
        if flags & !(LAYER_RELU | LAYER_RESIDUAL) != 0 {
            return Err(corrupt("unknown layer flags"));
        }
        Ok(Entry {
            cin: usize16_at(b, at)?,
            cout: usize16_at(b, add(at, 2)?)?,
            ksize: usize::from(u8_at(b, add(at, 4)?)?),
            relu: flags & LAYER_RELU != 0,
            residual: flags & LAYER_RESIDUAL != 0,
            role: u8_at(b, add(at, 6)?)?,
            index: usize::from(u8_at(b, add(at, 7)?)?),
            weight: (usize32_at(b, add(at, 8)?)?, usize32_at(b, add(at, 12)?)?),
            bias: (usize32_at(b, add(at, 16)?)?, usize32_at(b, add(at, 20)?)?),
            scale: (usize32_at(b, add(at, 24)?)?, usize32_at(b, add(at, 28)?)?),
        })
    }

    /// Block `b`'s parameters, which must agree with the header's hyper-parameters.
    fn block_params(&self, b: usize) -> Result<N3Params> {
        let at = add(HEADER_BYTES, mul(b, BLOCK_ENTRY_BYTES)?)?;
        let h = self.bytes;
        let p = N3Params {
            k: usize16_at(h, at)?,
            patch: usize16_at(h, add(at, 2)?)?,
            stride: usize16_at(h, add(at, 4)?)?,
            window: usize16_at(h, add(at, 6)?)?,
            temp_bias: f32_at(h, add(at, 8)?)?,
            logit_scale: f32_at(h, add(at, 12)?)?,
            logit_shift: f32_at(h, add(at, 16)?)?,
        };
        if u32_at(h, add(at, 20)?)? != 0 {
            return Err(corrupt("reserved block field is not zero"));
        }
        let m = &self.meta;
        let agrees = (p.k, p.patch, p.stride, p.window)
            == (m.k, m.patch_size, m.patch_stride, m.window)
            && p.temp_bias.to_bits() == m.temp_bias.to_bits();
        if !agrees {
            return Err(corrupt("N3 block parameters disagree with the header"));
        }
        Ok(p)
    }

    /// The structure and hyper-parameters recorded in the header.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The name of the file the model was converted from.
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// How the weights are stored.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The blob's length in bytes (its recorded total length).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a valid blob holds at least its header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The blob's bytes (up to its recorded total length).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}
