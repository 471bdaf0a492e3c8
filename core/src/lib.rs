//! # n3net-core
//!
//! `no_std`, allocation-free inference of Neural Nearest Neighbors Networks
//! (N³Net; Plötz & Roth, NeurIPS 2018) for grey-image denoising.
//!
//! The crate knows nothing of files or ONNX: a [`model::Network`] borrows its
//! weights from memory the caller owns (a `Vec` in the runtime, flash on a
//! microcontroller), an [`exec::Plan`] fixes the image geometry and tells the
//! exact workspace size, and [`exec::Plan::run`] denoises inside a workspace the
//! caller provides. Nothing here allocates.
//!
//! ## Bounded memory: streaming rows
//!
//! [`exec::stream::Stream`] runs the same network over rows pushed in order
//! and hands back final output rows, bit-for-bit the output of
//! [`exec::Plan::run`]. Its workspace depends on the network and the width
//! only ([`exec::stream::Stream::workspace_bytes`]), never on the height, so
//! images of any height run in a fixed buffer. The height is still given up
//! front, because the N³ patch grid, its padding and the border search windows
//! are computed from the whole image. Output row `r` is final once
//! `r + 1 + latency_rows()` input rows are pushed (or the whole image);
//! [`exec::stream::Stream::rows_needed`] gives the exact count per row.
//!
//! ```text
//! let mut ws = vec![0u8; Stream::workspace_bytes(&net, width)?];
//! let mut s = Stream::new(&net, height, width, isa, &mut ws)?;
//! for chunk in input_rows.chunks(width * cin * 16) {
//!     s.push_rows(chunk)?;                 // up to PUSH_ROWS rows at a time
//!     let n = s.pull_rows(&mut out_buf)?;  // 0.. final rows
//! }
//! ```
//!
//! The domain-agnostic parts of the N³ block are public on their own, for data
//! that is not an image: [`n3::relax`] (distances and a temperature → `k` weight
//! vectors, the paper's continuous nearest-neighbour relaxation) and
//! [`n3::aggregate`] (weighted aggregation over an index set).
//!
//! Layout of the crate, one folder per concern:
//! - [`kernels`]: convolution (plain reference kernel and AVX2/FMA kernel, picked
//!   at run time through [`kernels::Isa`]).
//! - [`n3`]: patch grid and search window ([`n3::grid`]), distances and
//!   aggregation ([`n3::aggregate`]), the relaxation ([`n3::relax`]), and the
//!   whole image block with its fold ([`n3::block`]).
//! - [`model`]: the network description and its validation.
//! - [`blob`]: the flash-ready weight blob (`.n3b`), parsed and run in place.
//! - [`exec`]: workspace planning, whole-image execution, and streaming
//!   execution over rows ([`exec::stream`]).
//! - [`math`]: deterministic `f32` `exp`, `ln`, `ln_1p` and `exp_m1`, built
//!   from IEEE basic operations only, so results are bit-identical on every
//!   target.
#![no_std]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod blob;
pub mod error;
pub mod exec;
pub mod kernels;
pub mod math;
pub mod model;
pub mod n3;
pub mod parallel;
pub mod tensor;
pub mod workspace;

pub use blob::ModelBlob;
pub use error::{Error, ErrorKind};
pub use exec::Plan;
pub use kernels::Isa;
pub use model::{Cnn, ConvLayer, N3Block, N3Params, Network, Precision, Weights};
pub use parallel::Parallel;
