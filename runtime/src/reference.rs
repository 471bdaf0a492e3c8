//! The float reference: the whole exported ONNX graph run by tract.
//!
//! The exported graph expresses the N³ block with standard operators and
//! per-query gathers, so it needs a lot of memory (gigabytes at 256×256); it is
//! a check of the core, not a way to run the network.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use tract_onnx::prelude::*;

/// Runs the ONNX model at `path` with tract on `input` (`channels × height ×
/// width`, the size the model was exported for) and returns its output.
pub fn run_tract(
    path: &Path,
    input: &[f32],
    channels: usize,
    height: usize,
    width: usize,
) -> anyhow::Result<Vec<f32>> {
    if input.len() != channels * height * width {
        bail!(
            "input length {} is not {channels}×{height}×{width}",
            input.len()
        );
    }
    let run = || -> TractResult<Vec<f32>> {
        let model = tract_onnx::onnx()
            .model_for_path(path)?
            .with_input_fact(0, f32::fact([1, channels, height, width]).into())?
            .into_optimized()?
            .into_runnable()?;
        let x =
            tract_ndarray::Array4::from_shape_vec((1, channels, height, width), input.to_vec())?;
        let out = model.run(tvec!(x.into_tensor().into()))?;
        let view = out[0].to_plain_array_view::<f32>()?;
        Ok(view.iter().copied().collect())
    };
    std::panic::catch_unwind(run)
        .map_err(|_| anyhow!("tract panicked while running {}", path.display()))?
        .with_context(|| format!("tract could not run {}", path.display()))
}
