//! # n3net-runtime
//!
//! The std side of n3net: imports trained N³Nets from ONNX (with tract-onnx),
//! folds batch-norm, writes and loads the flash-ready weight blob (`.n3b`),
//! reads and writes images, evaluates PSNR/SSIM, and runs the whole exported
//! graph with tract as a float reference. The `n3net` command-line tool is
//! built on it.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod bench;
pub mod blob;
pub mod calibrate;
pub mod denoise;
pub mod eval;
pub mod image_io;
pub mod metrics;
pub mod model;
pub mod noise;
pub mod onnx;
pub mod reference;
#[allow(unsafe_code)]
#[deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
pub mod spin;

pub use model::Model;

use std::path::Path;

/// Loads a model file by its extension: `.onnx` (imported with tract-onnx)
/// or `.n3b` (a weight blob, checked by the core's parser).
pub fn load_model(path: &Path) -> anyhow::Result<Model> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("onnx") => Ok(onnx::load(path)?),
        Some("n3b") => blob::load(path),
        _ => anyhow::bail!("unknown model file extension (expected .onnx or .n3b)"),
    }
}

/// The project's default model (`models/n3net-gray-blind.onnx`), built into
/// the library: a grey N³Net conditioned on a per-pixel noise level, trained
/// by the project on σ ∈ [0, 75] (see `models/README.md`).
pub const DEFAULT_MODEL_ONNX: &[u8] = include_bytes!("../../models/n3net-gray-blind.onnx");

/// Imports [`DEFAULT_MODEL_ONNX`].
pub fn default_model() -> Result<Model, onnx::ImportError> {
    onnx::from_bytes(
        DEFAULT_MODEL_ONNX,
        "models/n3net-gray-blind.onnx (built in)",
    )
}
