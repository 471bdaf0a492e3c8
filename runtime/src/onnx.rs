//! Import of an N³Net from an ONNX file written by `python/export_onnx.py`.
//!
//! The file is parsed with tract-onnx. The hyper-parameters come from the
//! model's `n3net.*` metadata, the weights from the graph's initializers (named
//! as in the PyTorch state dict); batch-norm is folded into the convolutions
//! and the distance batch-norm into an affine map of the logits. The
//! checkpoints' `blocks.N.bn1` is not part of the network and is never read.
//! Everything is validated once, here.

use std::collections::HashMap;
use std::path::Path;

use n3net_core::model::N3Params;
use tract_onnx::pb::{tensor_proto::DataType, ModelProto, TensorProto};
use tract_onnx::prelude::Framework;

use crate::model::{ConvSlot, Hyper, Model, N3Slots};

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX protobuf.
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    /// The ONNX model carries no N³Net metadata.
    #[error("not an N3Net ONNX export: metadata key `{0}` is missing (export it with python/export_onnx.py)")]
    NotN3Net(String),
    /// A metadata value is missing or malformed.
    #[error("metadata `{key}` = {value:?}: {reason}")]
    Metadata {
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The format version is not one this build reads.
    #[error("n3net.format_version {0} is not supported (this build reads version 1)")]
    Version(String),
    /// A configuration this build does not implement.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// An expected weight tensor is absent.
    #[error("weight tensor `{0}` is missing")]
    MissingTensor(String),
    /// A weight tensor has the wrong shape.
    #[error("weight tensor `{name}` has shape {got:?}, expected {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Its shape.
        got: Vec<i64>,
        /// The shape the hyper-parameters imply.
        expected: Vec<usize>,
    },
    /// A weight tensor is not float32 or its data is malformed.
    #[error("weight tensor `{name}`: {reason}")]
    TensorData {
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A weight is NaN or infinite.
    #[error("weight tensor `{0}` holds NaN or infinite values")]
    NonFinite(String),
    /// The assembled model failed the core's validation.
    #[error("invalid model: {0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, ImportError>;

/// Imports the N³Net in the ONNX file at `path`.
pub fn load(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_bytes(&bytes, &path.display().to_string())
}

/// Imports an N³Net from the bytes of an ONNX file; `source` names it in the model.
pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Model> {
    let proto =
        std::panic::catch_unwind(|| tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]))
            .map_err(|_| ImportError::NotOnnx("the protobuf parser failed".into()))?
            .map_err(|e| ImportError::NotOnnx(format!("{e:#}")))?;
    Importer::new(&proto)?.build(source)
}

struct Importer<'p> {
    meta: HashMap<&'p str, &'p str>,
    tensors: HashMap<&'p str, &'p TensorProto>,
    storage: Vec<f32>,
    used_parameters: usize,
}

fn read_f32(t: &TensorProto, name: &str) -> Result<Vec<f32>> {
    let bad = |reason: &str| ImportError::TensorData {
        name: name.into(),
        reason: reason.into(),
    };
    if t.data_type != DataType::Float as i32 {
        return Err(bad("not float32"));
    }
    if t.data_location == Some(1) {
        return Err(bad(
            "external data is not supported; export with the weights inside the file",
        ));
    }
    let n = t.dims.iter().try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    });
    let n = n.ok_or_else(|| bad("negative or overflowing dimensions"))?;
    let values: Vec<f32> = if !t.raw_data.is_empty() {
        if t.raw_data.len() != n.checked_mul(4).ok_or_else(|| bad("too large"))? {
            return Err(bad("raw data length does not match the shape"));
        }
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        if t.float_data.len() != n {
            return Err(bad("float data length does not match the shape"));
        }
        t.float_data.clone()
    };
    if !values.iter().all(|v| v.is_finite()) {
        return Err(ImportError::NonFinite(name.into()));
    }
    Ok(values)
}

/// Scale and shift `(a, s)` per channel of an inference batch-norm
/// `(v − mean) / √(var + eps) · γ + β = a·v + s`.
pub fn bn_affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
) -> std::result::Result<Vec<(f64, f64)>, String> {
    (0..gamma.len())
        .map(|c| {
            let denom = (var[c] as f64 + eps).sqrt();
            if denom.is_nan() || denom <= 0.0 {
                return Err("running_var + eps must be > 0".to_string());
            }
            let a = gamma[c] as f64 / denom;
            Ok((a, beta[c] as f64 - mean[c] as f64 * a))
        })
        .collect()
}

/// Folds a batch-norm that follows a convolution into its weights
/// (`[cout][…]`) and biases: `BN(w·x + b) = (a·w)·x + (a·b + s)`.
pub fn fold_batch_norm(weight: &mut [f32], bias: &mut [f32], bn: &[(f64, f64)]) {
    let per = weight.len() / bias.len().max(1);
    for (co, &(a, s)) in bn.iter().enumerate() {
        for v in &mut weight[co * per..(co + 1) * per] {
            *v = (*v as f64 * a) as f32;
        }
        bias[co] = (bias[co] as f64 * a + s) as f32;
    }
}

impl<'p> Importer<'p> {
    fn new(proto: &'p ModelProto) -> Result<Self> {
        let meta: HashMap<&str, &str> = proto
            .metadata_props
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| ImportError::NotOnnx("the model has no graph".into()))?;
        let tensors = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        Ok(Self {
            meta,
            tensors,
            storage: Vec::new(),
            used_parameters: 0,
        })
    }

    fn raw(&self, key: &str) -> Result<&'p str> {
        self.meta
            .get(key)
            .copied()
            .ok_or_else(|| ImportError::NotN3Net(key.into()))
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, what: &str) -> Result<T> {
        let v = self.raw(key)?;
        v.trim().parse().map_err(|_| ImportError::Metadata {
            key: key.into(),
            value: v.into(),
            reason: format!("not {what}"),
        })
    }

    fn count(&self, key: &str, min: usize, max: usize) -> Result<usize> {
        let v: usize = self.parse(key, "a non-negative integer")?;
        if !(min..=max).contains(&v) {
            return Err(ImportError::Metadata {
                key: key.into(),
                value: v.to_string(),
                reason: format!("must be in {min}..={max}"),
            });
        }
        Ok(v)
    }

    fn flag(&self, key: &str) -> Result<bool> {
        match self.raw(key)?.trim() {
            "true" | "True" | "1" => Ok(true),
            "false" | "False" | "0" => Ok(false),
            v => Err(ImportError::Metadata {
                key: key.into(),
                value: v.into(),
                reason: "not true or false".into(),
            }),
        }
    }

    fn hyper(&self, source: &str) -> Result<Hyper> {
        let version = self.raw("n3net.format_version")?;
        if version.trim() != "1" {
            return Err(ImportError::Version(version.into()));
        }
        for (key, what) in [
            ("n3net.dncnn_bn", "DnCNN stages without batch-norm"),
            ("n3net.embed_bn", "embedding CNNs without batch-norm"),
            (
                "n3net.external_temp",
                "a temperature from the embedding CNN (external_temp = false)",
            ),
            (
                "n3net.temp_avgpool",
                "per-pixel temperatures (temp_avgpool = false)",
            ),
        ] {
            if !self.flag(key)? {
                return Err(ImportError::Unsupported(what.into()));
            }
        }
        let temp_bias: f32 = self.parse("n3net.temp_bias", "a number")?;
        let bn_eps: f64 = self.parse("n3net.bn_eps", "a number")?;
        if !(temp_bias.is_finite() && temp_bias > 0.0 && bn_eps.is_finite() && bn_eps >= 0.0) {
            return Err(ImportError::Metadata {
                key: "n3net.temp_bias / n3net.bn_eps".into(),
                value: format!("{temp_bias} / {bn_eps}"),
                reason: "must be finite, temp_bias > 0, bn_eps >= 0".into(),
            });
        }
        let sigma = self
            .meta
            .get("n3net.sigma")
            .and_then(|s| s.trim().parse::<f32>().ok())
            .filter(|s| s.is_finite());
        let kernel = |key| {
            let k = self.count(key, 1, n3net_core::model::MAX_KERNEL)?;
            if k % 2 == 0 {
                return Err(ImportError::Metadata {
                    key: key.into(),
                    value: k.to_string(),
                    reason: "must be odd".into(),
                });
            }
            Ok(k)
        };
        Ok(Hyper {
            in_channels: self.count("n3net.in_channels", 1, 64)?,
            out_channels: self.count("n3net.out_channels", 1, 64)?,
            n3_blocks: self.count("n3net.n3_blocks", 0, n3net_core::model::MAX_N3_BLOCKS)?,
            interm_channels: self.count("n3net.interm_channels", 1, 256)?,
            dncnn_depth: self.count("n3net.dncnn_depth", 2, n3net_core::model::MAX_LAYERS)?,
            dncnn_features: self.count("n3net.dncnn_features", 1, 1024)?,
            dncnn_kernel: kernel("n3net.dncnn_kernel")?,
            embed_depth: self.count("n3net.embed_depth", 1, n3net_core::model::MAX_LAYERS)?,
            embed_features: self.count("n3net.embed_features", 1, 1024)?,
            embed_kernel: kernel("n3net.embed_kernel")?,
            embed_out: self.count("n3net.embed_out", 1, 256)?,
            k: self.count("n3net.k", 1, 64)?,
            patch_size: self.count("n3net.patch_size", 1, 64)?,
            patch_stride: self.count("n3net.patch_stride", 1, 64)?,
            window: self.count("n3net.window", 3, 63)?,
            temp_bias,
            distance_bn: self.flag("n3net.distance_bn")?,
            bn_eps,
            sigma,
            export_size: self
                .meta
                .get("n3net.export_height")
                .zip(self.meta.get("n3net.export_width"))
                .and_then(|(h, w)| Some((h.trim().parse().ok()?, w.trim().parse().ok()?))),
            source: self
                .meta
                .get("n3net.source")
                .map_or_else(|| source.to_string(), |s| s.to_string()),
        })
    }

    /// The values of tensor `name`, whose shape must be `shape`.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .get(name)
            .copied()
            .ok_or_else(|| ImportError::MissingTensor(name.into()))?;
        if t.dims.len() != shape.len() || t.dims.iter().zip(shape).any(|(&d, &s)| d != s as i64) {
            return Err(ImportError::Shape {
                name: name.into(),
                got: t.dims.clone(),
                expected: shape.to_vec(),
            });
        }
        let v = read_f32(t, name)?;
        self.used_parameters += v.len();
        Ok(v)
    }

    /// Scale and shift of an inference batch-norm over `n` channels.
    fn batch_norm(&mut self, prefix: &str, n: usize, eps: f64) -> Result<Vec<(f64, f64)>> {
        let gamma = self.tensor(&format!("{prefix}.weight"), &[n])?;
        let beta = self.tensor(&format!("{prefix}.bias"), &[n])?;
        let mean = self.tensor(&format!("{prefix}.running_mean"), &[n])?;
        let var = self.tensor(&format!("{prefix}.running_var"), &[n])?;
        bn_affine(&gamma, &beta, &mean, &var, eps)
            .map_err(|e| ImportError::Invalid(format!("{prefix}: {e}")))
    }

    /// Stores a convolution, folding `bn` (scale, shift per output channel) into it.
    fn conv(
        &mut self,
        name: &str,
        (cin, cout, ksize): (usize, usize, usize),
        has_bias: bool,
        bn: Option<&[(f64, f64)]>,
        relu: bool,
    ) -> Result<ConvSlot> {
        let mut w = self.tensor(&format!("{name}.weight"), &[cout, cin, ksize, ksize])?;
        let mut b = if has_bias {
            self.tensor(&format!("{name}.bias"), &[cout])?
        } else {
            vec![0.0; cout]
        };
        if let Some(bn) = bn {
            fold_batch_norm(&mut w, &mut b, bn);
        }
        let weight = self.storage.len();
        self.storage.extend_from_slice(&w);
        let bias = self.storage.len();
        self.storage.extend_from_slice(&b);
        Ok(ConvSlot {
            cin,
            cout,
            ksize,
            relu,
            weight,
            bias,
        })
    }

    /// A DnCNN stage: conv1 (bias) + ReLU, depth − 2 × (conv, BN, ReLU), conv2 (bias).
    fn dncnn(&mut self, h: &Hyper, i: usize, cin: usize, cout: usize) -> Result<Vec<ConvSlot>> {
        let (f, k) = (h.dncnn_features, h.dncnn_kernel);
        let p = format!("blocks.{i}");
        let mut layers = vec![self.conv(&format!("{p}.conv1"), (cin, f, k), true, None, true)?];
        for m in 0..h.dncnn_depth - 2 {
            let bn = self.batch_norm(&format!("{p}.layer1.{}", 3 * m + 1), f, h.bn_eps)?;
            layers.push(self.conv(
                &format!("{p}.layer1.{}", 3 * m),
                (f, f, k),
                false,
                Some(&bn),
                true,
            )?);
        }
        layers.push(self.conv(&format!("{p}.conv2"), (f, cout, k), true, None, false)?);
        Ok(layers)
    }

    /// An embedding or temperature CNN: (conv, BN, ReLU) × (depth − 1), conv (bias).
    fn small_cnn(&mut self, h: &Hyper, prefix: &str, cout: usize) -> Result<Vec<ConvSlot>> {
        let (f, k, d) = (h.embed_features, h.embed_kernel, h.embed_depth);
        let mut layers = Vec::with_capacity(d);
        let mut cin = h.interm_channels;
        for m in 0..d - 1 {
            let bn = self.batch_norm(&format!("{prefix}.{}", 3 * m + 1), f, h.bn_eps)?;
            layers.push(self.conv(
                &format!("{prefix}.{}", 3 * m),
                (cin, f, k),
                false,
                Some(&bn),
                true,
            )?);
            cin = f;
        }
        layers.push(self.conv(
            &format!("{prefix}.{}", 3 * (d - 1)),
            (cin, cout, k),
            true,
            None,
            false,
        )?);
        Ok(layers)
    }

    fn build(mut self, source: &str) -> Result<Model> {
        let h = self.hyper(source)?;
        if h.patch_stride > h.patch_size || h.window % 2 == 0 {
            return Err(ImportError::Invalid(
                "patch_stride must be <= patch_size and window odd".into(),
            ));
        }
        let c = h.interm_channels;
        let wide = c * (h.k + 1);
        let mut dncnn = Vec::new();
        let mut n3 = Vec::new();
        for i in 0..=h.n3_blocks {
            let cin = if i == 0 { h.in_channels } else { wide };
            let cout = if i == h.n3_blocks { h.out_channels } else { c };
            dncnn.push(self.dncnn(&h, i, cin, cout)?);
        }
        for i in 0..h.n3_blocks {
            let embed = self.small_cnn(&h, &format!("nls.{i}.embedcnn"), h.embed_out)?;
            let temp = self.small_cnn(&h, &format!("nls.{i}.tempcnn"), 1)?;
            let (logit_scale, logit_shift) = if h.distance_bn {
                let bn = self.batch_norm(
                    &format!("nls.{i}.n3aggregation.aggregation.nnn.bn"),
                    1,
                    h.bn_eps,
                )?;
                (bn[0].0 as f32, bn[0].1 as f32)
            } else {
                (1.0, 0.0)
            };
            let params = N3Params {
                k: h.k,
                patch: h.patch_size,
                stride: h.patch_stride,
                window: h.window,
                temp_bias: h.temp_bias,
                logit_scale,
                logit_shift,
            };
            n3.push(N3Slots {
                embed,
                temp,
                params,
            });
        }
        let used = self.used_parameters;
        Model::new(h, used, self.storage, dncnn, n3)
            .map_err(|e| ImportError::Invalid(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_norm_folding_equals_conv_then_batch_norm() {
        // Two output channels, three inputs (a 1×1 convolution is enough: the
        // fold is per output channel).
        let w = [0.5f32, -1.0, 2.0, 0.25, 0.75, -0.5];
        let b = [0.1f32, -0.2];
        let (gamma, beta, mean, var) =
            ([1.5f32, 0.5], [0.3f32, -0.1], [0.2f32, -0.4], [0.8f32, 2.5]);
        let eps = 1e-5;
        let bn = bn_affine(&gamma, &beta, &mean, &var, eps).unwrap();
        let (mut fw, mut fb) = (w, b);
        fold_batch_norm(&mut fw, &mut fb, &bn);
        let x = [0.7f32, -0.3, 1.1];
        for co in 0..2 {
            let conv: f32 = (0..3).map(|i| w[co * 3 + i] * x[i]).sum::<f32>() + b[co];
            let want = (conv - mean[co]) / (var[co] + eps as f32).sqrt() * gamma[co] + beta[co];
            let got: f32 = (0..3).map(|i| fw[co * 3 + i] * x[i]).sum::<f32>() + fb[co];
            assert!((want - got).abs() < 1e-6, "channel {co}: {got} vs {want}");
        }
        assert!(bn_affine(&[1.0], &[0.0], &[0.0], &[-1.0], 1e-5).is_err());
    }
}
