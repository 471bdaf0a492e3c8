//! Whole-image execution inside a caller-provided workspace.
//!
//! A [`Plan`] binds a validated [`Network`] to an image size and an instruction
//! set; it is immutable and can be shared. [`Plan::workspace_bytes`] is the exact
//! number of bytes [`Plan::run`] needs; the core allocates nothing.
//!
//! [`stream::Stream`] runs the same network over rows pushed in order, in a
//! workspace whose size depends on the width but not on the height.

use crate::error::{Error, ErrorKind, Result};
use crate::kernels::conv::conv2d;
use crate::kernels::Isa;
use crate::model::{Cnn, Network, Precision};
use crate::n3::block::{n3_forward, N3Dims, N3Io, N3Scratch};
use crate::tensor::Geom;
use crate::workspace::{Carver, Layout};

pub mod stream;

/// Channel counts of the executor's activation buffers.
#[derive(Debug, Clone, Copy, Default)]
struct Buffers {
    input: usize,
    small: usize,
    embed: usize,
    hidden: usize,
    n3_out: usize,
}

/// Largest N³ scratch over the blocks.
#[derive(Debug, Clone, Copy, Default)]
struct N3Max {
    embed_patches: usize,
    input_patches: usize,
    queries: usize,
    candidates: usize,
    weights: usize,
    neighbours: usize,
}

/// A network bound to an image size: the immutable part of a run.
#[derive(Debug, Clone)]
pub struct Plan<'n, 'w> {
    net: &'n Network<'w>,
    isa: Isa,
    g: Geom,
    bufs: Buffers,
    n3: N3Max,
    bytes: usize,
}

impl<'n, 'w> Plan<'n, 'w> {
    /// Plans `net` for `height × width` images using instruction set `isa`.
    ///
    /// A plan runs f32 networks (the reference path); f16 and q16 networks
    /// run in a [`stream::Stream`] ([`ErrorKind::UnsupportedPrecision`] here).
    pub fn new(net: &'n Network<'w>, height: usize, width: usize, isa: Isa) -> Result<Self> {
        if net.precision() != Precision::F32 {
            return Err(Error::new(
                ErrorKind::UnsupportedPrecision,
                "whole-image plans run f32 networks; stream f16 and q16 networks",
            ));
        }
        let pad = net.cnns().map(Cnn::max_pad).max().unwrap_or(0);
        let hidden = net.cnns().map(Cnn::max_hidden).max().unwrap_or(0);
        let bufs = Buffers {
            input: net.cin(),
            small: net.dncnn().map(Cnn::cout).max().unwrap_or(0),
            embed: net.n3().map(|b| b.embed.cout()).max().unwrap_or(0),
            hidden,
            n3_out: net.n3().map(|b| b.cout()).max().unwrap_or(0),
        };
        let widest = [bufs.input, bufs.small, bufs.embed, bufs.hidden, bufs.n3_out]
            .into_iter()
            .max()
            .unwrap_or(1);
        if height == 0 || width == 0 {
            return Err(Error::new(ErrorKind::ImageTooSmall, "image has no pixels"));
        }
        let g = Geom::new(height, width, pad, widest)?;
        let mut n3 = N3Max::default();
        for b in net.n3() {
            let d = N3Dims::new(&b.params, height, width, b.cin(), b.embed.cout())?;
            n3.embed_patches = n3
                .embed_patches
                .max(crate::error::mul(d.queries, d.embed_dim)?);
            n3.input_patches = n3
                .input_patches
                .max(crate::error::mul(d.queries, d.input_dim)?);
            n3.queries = n3.queries.max(d.queries);
            n3.candidates = n3.candidates.max(d.candidates);
            n3.weights = n3.weights.max(d.k * d.candidates);
            n3.neighbours = n3.neighbours.max(d.k * d.input_dim);
        }
        let mut plan = Self {
            net,
            isa,
            g,
            bufs,
            n3,
            bytes: 0,
        };
        let mut layout = Layout::default();
        plan.layout(&mut layout)?;
        plan.bytes = layout.bytes()?;
        Ok(plan)
    }

    fn layout(&self, l: &mut Layout) -> Result<()> {
        let g = self.g;
        let b = self.bufs;
        for c in [b.input, b.small, b.embed, 1, b.hidden, b.hidden, b.n3_out] {
            l.push::<f32>(g.len(c))?;
        }
        let n = self.n3;
        for len in [
            n.embed_patches,
            n.input_patches,
            n.queries,
            n.candidates,
            n.weights,
            n.neighbours,
        ] {
            l.push::<f32>(len)?;
        }
        l.push::<u32>(n.candidates)
    }

    /// Exact workspace size in bytes for [`Plan::run`] (any alignment of the
    /// buffer is accepted; the size includes the slack for it).
    pub fn workspace_bytes(&self) -> usize {
        self.bytes
    }

    /// Image height.
    pub fn height(&self) -> usize {
        self.g.height
    }

    /// Image width.
    pub fn width(&self) -> usize {
        self.g.width
    }

    /// The instruction set the kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Denoises `input` (`cin` planes of `height × width`, row-major, no
    /// padding) into `output` (`cout` planes).
    ///
    /// Non-finite input values are rejected with [`ErrorKind::NonFiniteInput`].
    pub fn run(&self, input: &[f32], output: &mut [f32], workspace: &mut [u8]) -> Result<()> {
        self.run_with_progress(input, output, workspace, &mut |_, _| {})
    }

    /// Number of steps [`Plan::run_with_progress`] reports: one per CNN (DnCNN
    /// stages, embedding and temperature CNNs) and one per N³ aggregation.
    pub fn steps(&self) -> usize {
        self.net.dncnn().len() + 3 * self.net.n3_blocks()
    }

    /// [`Plan::run`], calling `progress(done, total)` after each step.
    pub fn run_with_progress(
        &self,
        input: &[f32],
        output: &mut [f32],
        workspace: &mut [u8],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<()> {
        let (g, net) = (self.g, self.net);
        let hw = g.height * g.width;
        if input.len() != net.cin() * hw || output.len() != net.cout() * hw {
            return Err(Error::new(
                ErrorKind::BufferSize,
                "input or output length is not channels × height × width",
            ));
        }
        if !input.iter().all(|v| v.is_finite()) {
            return Err(Error::new(
                ErrorKind::NonFiniteInput,
                "input holds NaN or infinite values",
            ));
        }
        if workspace.len() < self.bytes {
            return Err(Error::new(
                ErrorKind::WorkspaceTooSmall,
                "workspace smaller than Plan::workspace_bytes",
            ));
        }
        let mut ws = Carver::new(workspace)?;
        let b = self.bufs;
        let x_in = ws.take::<f32>(g.len(b.input))?;
        let small = ws.take::<f32>(g.len(b.small))?;
        let embed = ws.take::<f32>(g.len(b.embed))?;
        let temp = ws.take::<f32>(g.len(1))?;
        let ha = ws.take::<f32>(g.len(b.hidden))?;
        let hb = ws.take::<f32>(g.len(b.hidden))?;
        let n3_out = ws.take::<f32>(g.len(b.n3_out))?;
        let n = self.n3;
        let embed_patches = ws.take::<f32>(n.embed_patches)?;
        let input_patches = ws.take::<f32>(n.input_patches)?;
        let temps = ws.take::<f32>(n.queries)?;
        let logits = ws.take::<f32>(n.candidates)?;
        let weights = ws.take::<f32>(n.weights)?;
        let neighbours = ws.take::<f32>(n.neighbours)?;
        let indices = ws.take::<u32>(n.candidates)?;

        for (c, plane) in input.chunks_exact(hw).enumerate() {
            for (y, row) in plane.chunks_exact(g.width).enumerate() {
                let at = c * g.plane() + g.at(y, 0);
                x_in[at..at + g.width].copy_from_slice(row);
            }
        }

        let stages = net.dncnn().len();
        for (i, cnn) in net.dncnn().enumerate() {
            let src: &[f32] = if i == 0 { x_in } else { n3_out };
            self.run_cnn(cnn, src, small, ha, hb)?;
            let mut done = 4 * i + 1;
            progress(done, self.steps());
            if i + 1 == stages {
                break;
            }
            let block = net.n3_block(i);
            self.run_cnn(block.embed, small, embed, ha, hb)?;
            done += 1;
            progress(done, self.steps());
            self.run_cnn(block.temp, small, temp, ha, hb)?;
            done += 1;
            progress(done, self.steps());
            let d = N3Dims::new(
                &block.params,
                g.height,
                g.width,
                block.cin(),
                block.embed.cout(),
            )?;
            let io = N3Io {
                g,
                input: small,
                embed,
                temp,
                output: n3_out,
            };
            let scratch = N3Scratch {
                embed_patches: &mut embed_patches[..d.queries * d.embed_dim],
                input_patches: &mut input_patches[..d.queries * d.input_dim],
                temps: &mut temps[..d.queries],
                indices: &mut indices[..d.candidates],
                logits: &mut logits[..d.candidates],
                weights: &mut weights[..d.k * d.candidates],
                neighbours: &mut neighbours[..d.k * d.input_dim],
            };
            n3_forward(self.isa, &block.params, &d, block.cin(), io, scratch)?;
            progress(done + 1, self.steps());
        }

        for (c, plane) in output.chunks_exact_mut(hw).enumerate() {
            for (y, row) in plane.chunks_exact_mut(g.width).enumerate() {
                let at = c * g.plane() + g.at(y, 0);
                row.copy_from_slice(&small[at..at + g.width]);
            }
        }
        Ok(())
    }

    /// Runs `cnn` from `src` into `dst`, ping-ponging through `a` and `b`, and
    /// adds the residual.
    fn run_cnn(
        &self,
        cnn: Cnn<'_, '_>,
        src: &[f32],
        dst: &mut [f32],
        a: &mut [f32],
        b: &mut [f32],
    ) -> Result<()> {
        let g = self.g;
        let rows = 0..g.height;
        let layers = cnn.layers();
        let last = layers.len() - 1;
        for (i, layer) in layers.iter().enumerate() {
            let (inp, out): (&[f32], &mut [f32]) = match (i, i == last, i % 2) {
                (0, true, _) => (src, &mut *dst),
                (0, false, _) => (src, &mut *a),
                (_, true, 1) => (&*a, &mut *dst),
                (_, true, _) => (&*b, &mut *dst),
                (_, false, 1) => {
                    conv2d(self.isa, layer, g, a, b, rows.clone())?;
                    continue;
                }
                (_, false, _) => {
                    conv2d(self.isa, layer, g, b, a, rows.clone())?;
                    continue;
                }
            };
            conv2d(self.isa, layer, g, inp, out, rows.clone())?;
        }
        if cnn.residual() {
            let r = cnn.cin().min(cnn.cout());
            let n = g.len(r);
            for (d, s) in dst[..n].iter_mut().zip(&src[..n]) {
                *d += *s;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConvLayer, Weights};

    #[test]
    fn residual_adds_the_first_min_channels() {
        // One DnCNN stage, 2 → 3 channels, a zero 3×3 convolution with biases
        // [1, 2, 3]: the output is the bias plus the input on channels 0 and 1.
        let w = [0.0f32; 3 * 2 * 9];
        let b = [1.0f32, 2.0, 3.0];
        let layer = ConvLayer {
            cin: 2,
            cout: 3,
            ksize: 3,
            relu: false,
            weight: Weights::F32(&w),
            bias: &b,
        };
        let layers = [layer];
        let cnn = Cnn::new(&layers, true).unwrap();
        let net = Network::new(&[cnn], &[]).unwrap();
        let (h, wd) = (4, 5);
        let plan = Plan::new(&net, h, wd, Isa::Generic).unwrap();
        let input: [f32; 2 * 20] = core::array::from_fn(|i| i as f32 * 0.1);
        let mut out = [0.0f32; 3 * 20];
        let mut ws = [0u8; 4096];
        assert!(plan.workspace_bytes() <= ws.len());
        plan.run(&input, &mut out, &mut ws).unwrap();
        for i in 0..20 {
            assert!((out[i] - (1.0 + input[i])).abs() < 1e-6);
            assert!((out[20 + i] - (2.0 + input[20 + i])).abs() < 1e-6);
            assert_eq!(out[40 + i], 3.0);
        }
    }

    #[test]
    fn networks_must_chain() {
        let w = [0.0f32; 9];
        let b = [0.0f32; 1];
        let one = ConvLayer {
            cin: 1,
            cout: 1,
            ksize: 3,
            relu: false,
            weight: Weights::F32(&w),
            bias: &b,
        };
        let layers = [one];
        let cnn = Cnn::new(&layers, true).unwrap();
        assert_eq!(
            Network::new(&[cnn, cnn], &[]).unwrap_err().kind(),
            ErrorKind::InvalidModel
        );
        let bad = ConvLayer { ksize: 2, ..one };
        assert_eq!(
            Cnn::new(&[bad], false).unwrap_err().kind(),
            ErrorKind::InvalidModel
        );
        let short = ConvLayer {
            weight: Weights::F32(&w[..8]),
            ..one
        };
        assert_eq!(
            Cnn::new(&[short], false).unwrap_err().kind(),
            ErrorKind::InvalidModel
        );
        let nan = [f32::NAN; 9];
        let nonfinite = ConvLayer {
            weight: Weights::F32(&nan),
            ..one
        };
        assert_eq!(
            Cnn::new(&[nonfinite], false).unwrap_err().kind(),
            ErrorKind::NonFiniteWeight
        );
    }
}
