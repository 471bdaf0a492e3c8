//! # n3net-runtime
//!
//! The std side of n3net: imports trained N³Nets from ONNX (with tract-onnx),
//! folds batch-norm, reads and writes images, evaluates PSNR/SSIM, and runs
//! the whole exported graph with tract as a float reference. The `n3net`
//! command-line tool is built on it.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod denoise;
pub mod eval;
pub mod image_io;
pub mod metrics;
pub mod model;
pub mod noise;
pub mod onnx;
pub mod reference;

pub use model::Model;
