//! Streaming execution: rows in, rows out, in a workspace bounded by the width.
//!
//! A [`Stream`] runs the network over an image whose rows arrive in order
//! (from a camera, a decoder, a file read in pieces). Every stage keeps only
//! the rows the next stage still needs, in row buffers carved from the
//! caller's workspace:
//!
//! - each 3×3 convolution of every CNN (DnCNN stages, embedding and
//!   temperature CNNs) computes one output row once its input holds the rows
//!   around it;
//! - each N³ block extracts one patch row (embedding patches, input patches,
//!   temperatures) into a ring of `window` patch rows, answers the queries of a
//!   patch row once its whole search window is extracted, folds the neighbour
//!   patches into the block output, and finishes (averages) an output row once
//!   every patch covering it has been answered.
//!
//! The patch grid, its padding, the search window and its shift at the
//! borders are computed from the whole image size (spec §4), so the output is
//! bit-for-bit the output of [`crate::Plan::run`], whatever the number of rows
//! per push. The height must therefore be known when the stream is created;
//! the width is fixed per stream and sizes the workspace
//! ([`Stream::workspace_bytes`], independent of the height).
//!
//! Rows are scheduled depth first: after each pushed row the deepest stage
//! that can make progress runs, so every buffer holds a number of rows bounded
//! by the model's halos (conv depths, patch size and stride, search window),
//! never by the image height.
//!
//! [`Stream::stripe`] bounds the width too: it streams a column stripe plus
//! the halo its output depends on ([`Stream::stripe_input_columns`], derived
//! from the model and the whole-image patch grid) and returns the stripe's
//! columns, bit-identical to the whole image, in a workspace that depends on
//! the stripe width only ([`Stream::stripe_workspace_bytes`]). Stripes are
//! independent: run them one after the other in one workspace, or in
//! parallel in one workspace each.

use core::ops::Range;

use half::f16;
use heapless::Vec;

use crate::error::{add, mul, Error, ErrorKind, Result};
use crate::kernels::act::{split_out, Act, ConvRow, Region, RowPrep, Scratch, ScratchSize};
use crate::kernels::Isa;
use crate::model::{Cnn, Network, Precision, MAX_LAYERS, MAX_N3_BLOCKS};
use crate::n3::block::{finish_rows, query_row, Extract, N3Dims, PatchSlots, Planes, QueryScratch};
use crate::n3::grid::{Axis, Columns};
use crate::parallel::Parallel;
use crate::tensor::Band;
use crate::workspace::{Carver, Layout};

/// Most steps (convolutions, plus three per N³ block) a streamed network
/// may have: those of the largest [`Network`], so that every valid network
/// streams.
pub const MAX_STREAM_STEPS: usize = MAX_LAYERS + 3 * MAX_N3_BLOCKS;
/// Most row buffers: the input, one per convolution and one per N³ block.
const MAX_RINGS: usize = 1 + MAX_LAYERS + MAX_N3_BLOCKS;

/// Rows that can always be pushed at once after pulling every final row:
/// [`Stream::max_pending_rows`] is this plus the latency bound of the model.
pub const PUSH_ROWS: usize = 64;

/// One unit of work; each produces one row (or one patch row).
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Convolution `layer` of [`Network::layers`], ring `src` → ring `dst`;
    /// after the last layer of a DnCNN stage, ring `res` (the stage input)
    /// is added.
    Conv {
        layer: usize,
        src: usize,
        dst: usize,
        res: Option<usize>,
    },
    /// Extracts the next patch row of block `b`.
    Extract(usize),
    /// Answers the queries of the next patch row of block `b`.
    Query(usize),
    /// Finishes the next output row of block `b`.
    Finish(usize),
}

/// A row buffer: `cap` padded rows of `ch` planes.
#[derive(Debug, Clone, Copy)]
struct Ring {
    /// Offset in the ring arena (values).
    off: usize,
    ch: usize,
    cap: usize,
    /// Padded row held by buffer row 0.
    first: usize,
    /// Padded rows `first..hi` are in the buffer (zeroed when added).
    hi: usize,
    /// Padded rows `..ready` are final (readable by consumers).
    ready: usize,
}

/// Ring ids and patch storage of one N³ block.
#[derive(Debug, Clone, Copy)]
struct Block {
    x: usize,
    emb: usize,
    tmp: usize,
    out: usize,
    /// Offset of the patch ring in the patch arena.
    off: usize,
    /// Offset of the patch temperatures in the temperature buffer.
    toff: usize,
    /// Patches per patch row.
    n2: usize,
    embed_dim: usize,
    input_dim: usize,
    slots: usize,
}

impl Block {
    fn patch_len(&self) -> usize {
        self.slots * self.n2 * (self.embed_dim + self.input_dim)
    }

    fn temps_len(&self) -> usize {
        self.slots * self.n2
    }
}

/// The static shape of a stream: steps, rings and their sizes for a width.
struct Shape {
    steps: Vec<Step, MAX_STREAM_STEPS>,
    rings: Vec<Ring, MAX_RINGS>,
    blocks: Vec<Block, MAX_N3_BLOCKS>,
    pad: usize,
    width: usize,
    ring_len: usize,
    patch_len: usize,
    temps_len: usize,
    candidates: usize,
    weights: usize,
    neighbours: usize,
    /// Longest patch (embedding or input) of any block.
    dim: usize,
    precision: Precision,
    scratch: ScratchSize,
    latency_bound: usize,
}

fn too_deep() -> Error {
    Error::new(
        ErrorKind::InvalidModel,
        "network has more steps than MAX_STREAM_STEPS",
    )
}

fn sum_pad(cnn: Cnn<'_, '_>) -> usize {
    cnn.layers().iter().map(|l| l.ksize / 2).sum()
}

impl Shape {
    /// A shape without rings or steps, to be built in place
    /// ([`Shape::build`]).
    fn empty() -> Self {
        Self {
            steps: Vec::new(),
            rings: Vec::new(),
            blocks: Vec::new(),
            pad: 0,
            width: 0,
            ring_len: 0,
            patch_len: 0,
            temps_len: 0,
            candidates: 0,
            weights: 0,
            neighbours: 0,
            dim: 0,
            precision: Precision::F32,
            scratch: ScratchSize {
                f: 0,
                i32s: 0,
                i64s: 0,
            },
            latency_bound: 0,
        }
    }

    /// Rings and steps of `net` for `width` columns: a whole image that wide,
    /// or (`stripe`) a column window that wide of any wider image. Ring
    /// capacities (in rows) follow from the halos under depth-first
    /// scheduling; see the module docs. `self` must be [`Shape::empty`]: the
    /// tables are a few KiB, built where they stay rather than returned by
    /// value, which would put copies of them on a small stack.
    fn build(&mut self, net: &Network<'_>, width: usize, stripe: bool) -> Result<()> {
        if width == 0 {
            return Err(Error::new(ErrorKind::ImageTooSmall, "image has no pixels"));
        }
        let pg = net.cnns().map(Cnn::max_pad).max().unwrap_or(0);
        self.pad = pg;
        self.width = width;
        self.precision = net.precision();
        // Ring capacities in padded rows. Under depth-first scheduling a
        // producer adds a row only when its consumers lack one, so a ring holds
        // its consumers' halo plus the row being added; at the bottom the `pg`
        // zero rows come with the last row. `margin` covers those and leaves
        // room so that compaction does not run on every row.
        let margin = 3 * pg + 4;
        // Between two convolutions: the consumer's 2·k/2 + 1 rows plus the
        // new row, or plus the last row and the bottom zero rows.
        let hidden = 3 * pg + 1;
        let nb = net.n3_blocks();
        // The network input: the first stage's halo (its residual reads rows
        // as far back as the stage's summed padding).
        let input = self.ring(net.cin(), sum_pad(net.dncnn_stage(0)) + margin)?;
        let mut src = input;
        let mut layer = 0;
        for (i, dn) in net.dncnn().enumerate() {
            self.latency_bound = add(self.latency_bound, sum_pad(dn))?;
            let last_cap = if i < nb {
                // An N³ block input: read from the first row not yet finished
                // up to the rows the next patch extraction needs, at most a
                // search window of patch rows plus a patch (and the embedding
                // CNN's halo) apart.
                let b = net.n3_block(i);
                let p = &b.params;
                let e = sum_pad(b.embed).max(sum_pad(b.temp));
                add(mul(p.window, p.stride)?, p.patch + e + margin)?
            } else {
                // The final output: the rows waiting to be pulled.
                PUSH_ROWS + margin // + the latency bound, added below
            };
            let x = self.cnn(&mut layer, dn, src, Some(src), hidden, last_cap)?;
            if i == nb {
                let l = self.latency_bound;
                self.rings[x].cap += l;
                break;
            }
            let b = net.n3_block(i);
            let p = &b.params;
            // Embedding and temperature maps: one patch row's rows.
            let patch_cap = p.patch + margin;
            let emb = self.cnn(&mut layer, b.embed, x, None, hidden, patch_cap)?;
            let tmp = self.cnn(&mut layer, b.temp, x, None, hidden, patch_cap)?;
            // The block output: the fold sums of the patch row being answered,
            // and the finished rows the next stage still reads (its halo).
            let next = net.dncnn_stage(i + 1);
            let out_cap = p.patch + p.stride + sum_pad(next) + margin;
            let out = self.ring(b.cout(), out_cap)?;
            for st in [Step::Extract(i), Step::Query(i), Step::Finish(i)] {
                self.steps.push(st).map_err(|_| too_deep())?;
            }
            add(width, p.patch + p.stride)?;
            // Patch columns held, and the most candidates of one query.
            let (n2, side) = if stripe {
                (Columns::max_patches(width, p.patch, p.stride), p.window)
            } else {
                let cols = Axis::new(width, p.patch, p.stride)?;
                (cols.count, p.window.min(cols.count))
            };
            let pp = p.patch * p.patch;
            let block = Block {
                x,
                emb,
                tmp,
                out,
                off: self.patch_len,
                toff: self.temps_len,
                n2,
                embed_dim: mul(b.embed.cout(), pp)?,
                input_dim: mul(b.cin(), pp)?,
                slots: p.window,
            };
            let len = mul(
                mul(block.slots, block.n2)?,
                add(block.embed_dim, block.input_dim)?,
            )?;
            self.patch_len = add(self.patch_len, len)?;
            self.temps_len = add(self.temps_len, block.temps_len())?;
            self.dim = self.dim.max(block.embed_dim).max(block.input_dim);
            let cand = p.window * side - 1;
            self.candidates = self.candidates.max(cand);
            self.weights = self.weights.max(mul(p.k, cand)?);
            self.neighbours = self.neighbours.max(mul(p.k, block.input_dim)?);
            let e = sum_pad(b.embed).max(sum_pad(b.temp));
            let lag = mul(p.window - 1, p.stride)? + p.patch - 1 + e;
            self.latency_bound = add(self.latency_bound, lag)?;
            self.blocks.push(block).map_err(|_| too_deep())?;
            src = out;
        }
        let rs = add(width, 2 * pg)?;
        let mut off = 0;
        for r in self.rings.iter_mut() {
            r.off = off;
            off = add(off, mul(mul(r.ch, r.cap)?, rs)?)?;
        }
        self.ring_len = off;
        let mut layers = net.layers().iter().map(|l| (l.cin, l.cout, l.ksize));
        self.scratch = match self.precision {
            Precision::F32 => f32::scratch(&mut layers, rs, self.dim),
            Precision::F16 => f16::scratch(&mut layers, rs, self.dim),
            Precision::Q16 => i16::scratch(&mut layers, rs, self.dim),
        };
        Ok(())
    }

    /// A new ring holding `cap` rows of `ch` planes (its top zero rows present).
    fn ring(&mut self, ch: usize, cap: usize) -> Result<usize> {
        let pg = self.pad;
        let r = Ring {
            off: 0,
            ch,
            cap,
            first: 0,
            hi: pg,
            ready: pg,
        };
        self.rings.push(r).map_err(|_| too_deep())?;
        Ok(self.rings.len() - 1)
    }

    /// Steps of `cnn` from ring `src`; returns its output ring. `layer` is
    /// the index of the CNN's first layer in [`Network::layers`] and moves
    /// past its last.
    fn cnn(
        &mut self,
        layer: &mut usize,
        cnn: Cnn<'_, '_>,
        src: usize,
        res: Option<usize>,
        hidden_cap: usize,
        out_cap: usize,
    ) -> Result<usize> {
        let n = cnn.layers().len();
        let mut from = src;
        for (l, conv) in cnn.layers().iter().enumerate() {
            let last = l + 1 == n;
            let cap = if last { out_cap } else { hidden_cap };
            let dst = self.ring(conv.cout, cap)?;
            let step = Step::Conv {
                layer: *layer,
                src: from,
                dst,
                res: if last && cnn.residual() { res } else { None },
            };
            self.steps.push(step).map_err(|_| too_deep())?;
            *layer += 1;
            from = dst;
        }
        Ok(from)
    }

    /// The workspace bytes of a stream of this shape.
    fn bytes(&self) -> Result<usize> {
        let mut l = Layout::default();
        self.layout(&mut l)?;
        l.bytes()
    }

    fn layout(&self, l: &mut Layout) -> Result<()> {
        match self.precision {
            Precision::F32 => self.arena_layout::<f32>(l)?,
            Precision::F16 => self.arena_layout::<f16>(l)?,
            Precision::Q16 => self.arena_layout::<i16>(l)?,
        }
        l.push::<f32>(self.temps_len)?;
        l.push::<f32>(self.candidates)?;
        l.push::<f32>(self.weights)?;
        l.push::<u32>(self.candidates)?;
        l.push::<f32>(self.scratch.f)?;
        l.push::<i32>(self.scratch.i32s)?;
        l.push::<i64>(self.scratch.i64s)
    }

    fn arena_layout<A: Act>(&self, l: &mut Layout) -> Result<()> {
        l.push::<A>(self.ring_len)?;
        l.push::<A>(self.patch_len)?;
        l.push::<A::Wide>(self.neighbours)
    }
}

/// The buffers whose type follows the precision: row buffers, patch rings
/// and aggregated neighbours.
struct Arena<'ws, A: Act> {
    rings: &'ws mut [A],
    patches: &'ws mut [A],
    neighbours: &'ws mut [A::Wide],
}

impl<'ws, A: Act> Arena<'ws, A> {
    fn carve(shape: &Shape, ws: &mut Carver<'ws>) -> Result<Self> {
        Ok(Self {
            rings: ws.take::<A>(shape.ring_len)?,
            patches: ws.take::<A>(shape.patch_len)?,
            neighbours: ws.take::<A::Wide>(shape.neighbours)?,
        })
    }
}

enum Bufs<'ws> {
    F32(Arena<'ws, f32>),
    F16(Arena<'ws, f16>),
    Q16(Arena<'ws, i16>),
}

/// Runs `$body` with `$a` bound to the stream's typed buffers, taken out of
/// `$s` for the duration (so that `$s` stays mutably usable) and put back.
macro_rules! with_arena {
    ($s:ident, $a:ident => $body:expr) => {{
        let mut bufs = $s.bufs.take().ok_or(Error::new(
            ErrorKind::InvalidArgument,
            "stream buffers in use (internal error)",
        ))?;
        let r = match &mut bufs {
            Bufs::F32($a) => $body,
            Bufs::F16($a) => $body,
            Bufs::Q16($a) => $body,
        };
        $s.bufs = Some(bufs);
        r
    }};
}

/// The network running over the rows of one `height × width` image, inside a
/// caller-provided workspace.
///
/// Row layout (input and output): `channels × width` values per row, the
/// channels one after the other (channel-planar within a row). For a
/// one-channel image this is plain row-major order; for the [`crate::Plan`]
/// input (`cin` planes of `height × width`), row `y` is the concatenation of
/// row `y` of every plane.
///
/// ```
/// # use n3net_core::{Cnn, ConvLayer, Network, Isa, Weights};
/// # use n3net_core::exec::stream::Stream;
/// # let (w, b) = ([0.5f32; 9], [0.0f32]);
/// # let l = ConvLayer { cin: 1, cout: 1, ksize: 3, relu: false, weight: Weights::F32(&w), bias: &b };
/// # let layers = [l];
/// # let net = Network::new(&[Cnn::new(&layers, true).unwrap()], &[]).unwrap();
/// let (h, width) = (5, 4);
/// let mut ws = [0u8; 4096];
/// assert!(Stream::workspace_bytes(&net, width).unwrap() <= ws.len());
/// let mut s = Stream::new(&net, h, width, Isa::detect(), &mut ws).unwrap();
/// let mut out = [0.0f32; 5 * 4];
/// let mut got = 0;
/// for y in 0..h {
///     s.push_rows(&[y as f32; 4]).unwrap();
///     got += s.pull_rows(&mut out[got * width..]).unwrap();
/// }
/// assert_eq!(got, h);
/// ```
///
/// The row buffers live in the workspace; the `Stream` value itself holds
/// the schedule (fixed-size tables for up to [`MAX_STREAM_STEPS`] steps, a
/// few KiB).
pub struct Stream<'n, 'w, 'ws> {
    net: &'n Network<'w>,
    isa: Isa,
    height: usize,
    width: usize,
    shape: Shape,
    grids: Vec<N3Dims, MAX_N3_BLOCKS>,
    cols: Vec<Columns, MAX_N3_BLOCKS>,
    /// Image columns pushed (the stripe and its halo) and pulled.
    input_cols: Range<usize>,
    output_cols: Range<usize>,
    done: Vec<usize, MAX_STREAM_STEPS>,
    /// The typed buffers; taken out while a push or pull runs on them.
    bufs: Option<Bufs<'ws>>,
    temps: &'ws mut [f32],
    logits: &'ws mut [f32],
    weights: &'ws mut [f32],
    indices: &'ws mut [u32],
    scratch: Scratch<'ws>,
    /// Largest magnitude written to each ring, when tracked.
    peaks: Vec<f32, MAX_RINGS>,
    track_peaks: bool,
    pushed: usize,
    pulled: usize,
    latency: usize,
    par: Option<&'ws dyn Parallel>,
    /// The second query's scratch when threads are lent (carved per row).
    lane: &'ws mut [u8],
}

impl<'n, 'w, 'ws> Stream<'n, 'w, 'ws> {
    /// Exact workspace bytes a [`Stream`] of `net` over images `width` wide
    /// needs, for any height and any alignment of the buffer. The height is
    /// not an argument: the memory of a stream does not grow with it.
    pub fn workspace_bytes(net: &Network<'_>, width: usize) -> Result<usize> {
        let mut shape = Shape::empty();
        shape.build(net, width, false)?;
        shape.bytes()
    }

    /// Workspace bytes enough for a [`Stream::stripe`] of `net` whose output
    /// is `columns` image columns wide, at any place of an image of any width
    /// and height: the memory of a striped stream grows with neither.
    pub fn stripe_workspace_bytes(net: &Network<'_>, columns: usize) -> Result<usize> {
        let reach = mul(2, Self::max_halo(net)?)?;
        let mut shape = Shape::empty();
        shape.build(net, add(columns, reach)?, true)?;
        shape.bytes()
    }

    /// The most image columns a stripe's output depends on beyond either of
    /// its edges, for `net` on any image: every convolution adds its padding;
    /// an N³ block adds a patch and a search window of patch strides (the
    /// window shifts inward at the image border) plus its embedding and
    /// temperature CNNs' padding.
    pub fn max_halo(net: &Network<'_>) -> Result<usize> {
        let mut h = 0;
        for dn in net.dncnn() {
            h = add(h, sum_pad(dn))?;
        }
        for b in net.n3() {
            let p = &b.params;
            let e = sum_pad(b.embed).max(sum_pad(b.temp));
            h = add(h, add(mul(p.window - 1, p.stride)?, p.patch - 1 + e)?)?;
        }
        Ok(h)
    }

    /// The image columns a stripe with output columns `columns` of an image
    /// `width` wide must be pushed: the stripe and the halo its output
    /// depends on (clamped to the image), derived stage by stage from the
    /// model (convolution padding, the patch grid of the whole image, the
    /// search windows and their shift at the border). At most
    /// `columns.len() + 2·`[`Stream::max_halo`] wide.
    pub fn stripe_input_columns(
        net: &Network<'_>,
        width: usize,
        columns: Range<usize>,
    ) -> Result<Range<usize>> {
        if columns.start >= columns.end || columns.end > width {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "stripe columns must be a non-empty range inside the image",
            ));
        }
        let (mut lo, mut hi) = (columns.start, columns.end);
        let grow = |lo: usize, hi: usize, by: usize| (lo.saturating_sub(by), (hi + by).min(width));
        for s in (0..net.dncnn().len()).rev() {
            (lo, hi) = grow(lo, hi, sum_pad(net.dncnn_stage(s)));
            if s == 0 {
                break;
            }
            // Block s − 1: the queries covering lo..hi, their search windows,
            // the image columns of those patches, then the embedding and
            // temperature CNNs' padding.
            let b = net.n3_block(s - 1);
            let p = &b.params;
            add(width, p.patch + p.stride)?;
            let a = Axis::new(width, p.patch, p.stride)?;
            let q0 = (lo + a.before + 1)
                .saturating_sub(a.patch)
                .div_ceil(a.stride);
            let q1 = ((hi - 1 + a.before) / a.stride).min(a.count - 1);
            let (start, _) = a.window(q0, p.window);
            let (last, side) = a.window(q1, p.window);
            let x0 = (start * a.stride).saturating_sub(a.before);
            let x1 = ((last + side - 1) * a.stride + a.patch - a.before).min(width);
            let e = sum_pad(b.embed).max(sum_pad(b.temp));
            (lo, hi) = grow(lo.min(x0), hi.max(x1), e);
        }
        Ok(lo..hi)
    }

    /// A stream of `net` over one `height × width` image, using instruction
    /// set `isa`, inside `workspace` (at least [`Stream::workspace_bytes`]
    /// bytes; [`ErrorKind::WorkspaceTooSmall`] otherwise). Fails like
    /// [`crate::Plan::new`] for images the network cannot run on.
    pub fn new(
        net: &'n Network<'w>,
        height: usize,
        width: usize,
        isa: Isa,
        workspace: &'ws mut [u8],
    ) -> Result<Self> {
        if height == 0 || width == 0 {
            return Err(Error::new(ErrorKind::ImageTooSmall, "image has no pixels"));
        }
        Self::open(
            net,
            height,
            width,
            0..width,
            0..width,
            (width, false),
            isa,
            workspace,
        )
    }

    /// A stream over the column stripe `columns` of a `height × width` image:
    /// rows pushed hold the image columns [`Stream::input_columns`] (the
    /// stripe and its halo, [`Stream::stripe_input_columns`]), rows pulled
    /// hold the stripe's columns, bit-identical to the same columns of
    /// [`Stream::new`]'s output. The workspace must hold
    /// [`Stream::stripe_workspace_bytes`] for the stripe's width.
    pub fn stripe(
        net: &'n Network<'w>,
        height: usize,
        width: usize,
        columns: Range<usize>,
        isa: Isa,
        workspace: &'ws mut [u8],
    ) -> Result<Self> {
        if height == 0 || width == 0 {
            return Err(Error::new(ErrorKind::ImageTooSmall, "image has no pixels"));
        }
        let input = Self::stripe_input_columns(net, width, columns.clone())?;
        let reach = mul(2, Self::max_halo(net)?)?;
        // Shaped for the widest window of this stripe width, so that the
        // workspace query holds for every place of the stripe.
        let shape = (add(columns.len(), reach)?, true);
        Self::open(net, height, width, input, columns, shape, isa, workspace)
    }

    /// The stream of [`Stream::new`] and [`Stream::stripe`], with the
    /// [`Shape::build`] arguments `(width, stripe)` in `shape`. The stream
    /// is assembled in place, its shape included, for the stack's sake (see
    /// [`Shape::build`]).
    #[allow(clippy::too_many_arguments)]
    fn open(
        net: &'n Network<'w>,
        height: usize,
        width: usize,
        input_cols: Range<usize>,
        output_cols: Range<usize>,
        shape: (usize, bool),
        isa: Isa,
        workspace: &'ws mut [u8],
    ) -> Result<Self> {
        let mut s = Self {
            net,
            isa,
            height,
            width,
            shape: Shape::empty(),
            grids: Vec::new(),
            cols: Vec::new(),
            input_cols,
            output_cols,
            done: Vec::new(),
            bufs: None,
            temps: &mut [],
            logits: &mut [],
            weights: &mut [],
            indices: &mut [],
            scratch: Scratch {
                f: &mut [],
                i32s: &mut [],
                i64s: &mut [],
            },
            peaks: Vec::new(),
            track_peaks: false,
            pushed: 0,
            pulled: 0,
            latency: 0,
            par: None,
            lane: &mut [],
        };
        s.shape.build(net, shape.0, shape.1)?;
        // Row indices of the whole image, with its zero rows, fit a usize.
        add(height, mul(2, s.shape.pad)?)?;
        for (b, blk) in net.n3().zip(s.shape.blocks.iter()) {
            add(height, b.params.patch + b.params.stride)?;
            let d = N3Dims::new(&b.params, height, width, b.cin(), b.embed.cout())?;
            let cw = Columns::window(&d.cols, s.input_cols.start, s.input_cols.len());
            if cw.n > blk.n2 {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "stream patch columns exceed the shape (internal sizing error)",
                ));
            }
            s.grids.push(d).map_err(|_| too_deep())?;
            s.cols.push(cw).map_err(|_| too_deep())?;
        }
        if workspace.len() < s.shape.bytes()? {
            return Err(Error::new(
                ErrorKind::WorkspaceTooSmall,
                "workspace smaller than the stream's workspace query",
            ));
        }
        // The rings are carved for the widest window; this stream's rows are
        // as wide as its input columns.
        s.shape.width = s.input_cols.len();
        let shape = &s.shape;
        let mut ws = Carver::new(workspace)?;
        s.bufs = Some(match shape.precision {
            Precision::F32 => Bufs::F32(Arena::carve(shape, &mut ws)?),
            Precision::F16 => Bufs::F16(Arena::carve(shape, &mut ws)?),
            Precision::Q16 => Bufs::Q16(Arena::carve(shape, &mut ws)?),
        });
        s.temps = ws.take::<f32>(shape.temps_len)?;
        s.logits = ws.take::<f32>(shape.candidates)?;
        s.weights = ws.take::<f32>(shape.weights)?;
        s.indices = ws.take::<u32>(shape.candidates)?;
        s.scratch = Scratch {
            f: ws.take::<f32>(shape.scratch.f)?,
            i32s: ws.take::<i32>(shape.scratch.i32s)?,
            i64s: ws.take::<i64>(shape.scratch.i64s)?,
        };
        for _ in 0..shape.steps.len() {
            s.done.push(0).map_err(|_| too_deep())?;
        }
        for _ in 0..shape.rings.len() {
            s.peaks.push(0.0).map_err(|_| too_deep())?;
        }
        s.latency = Self::latency_for(net, height)?;
        Ok(s)
    }

    /// Lends the stream the threads of `par`: the output channels of each
    /// convolution row are split between them, and the N³ blocks compute
    /// two query patches at a time; the second half and the second query
    /// work in `lane`, a buffer of at least [`Stream::lane_workspace_bytes`]
    /// bytes for this stream's width. The output is bit-identical with and
    /// without threads.
    pub fn set_parallel(&mut self, par: &'ws dyn Parallel, lane: &'ws mut [u8]) -> Result<()> {
        if lane.len() < lane_bytes(self.net, &self.shape.scratch)? {
            return Err(Error::new(
                ErrorKind::WorkspaceTooSmall,
                "lane smaller than Stream::lane_workspace_bytes",
            ));
        }
        self.par = Some(par);
        self.lane = lane;
        Ok(())
    }

    /// Bytes of the second thread's scratch [`Stream::set_parallel`] needs
    /// for `net` on a stream `width` columns wide: the image width of
    /// [`Stream::new`], or the column count of [`Stream::stripe`] (any image
    /// height, any alignment of the buffer). Like the workspace, it does not
    /// grow with the height.
    pub fn lane_workspace_bytes(net: &Network<'_>, width: usize) -> Result<usize> {
        // A stripe's shape is that of its widest window, wider than a whole
        // image of as many columns: enough for both.
        let reach = mul(2, Self::max_halo(net)?)?;
        let mut shape = Shape::empty();
        shape.build(net, add(width, reach)?, true)?;
        lane_bytes(net, &shape.scratch)
    }

    /// Image height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Image columns of the rows pushed: the whole width, or a stripe and
    /// its halo.
    pub fn input_columns(&self) -> Range<usize> {
        self.input_cols.clone()
    }

    /// Image columns of the rows pulled: the whole width, or the stripe.
    pub fn output_columns(&self) -> Range<usize> {
        self.output_cols.clone()
    }

    /// The instruction set the kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Rows pushed so far.
    pub fn rows_pushed(&self) -> usize {
        self.pushed
    }

    /// Output rows pulled so far.
    pub fn rows_pulled(&self) -> usize {
        self.pulled
    }

    /// Output rows that are final and not yet pulled.
    pub fn pending_rows(&self) -> usize {
        self.final_rows() - self.pulled
    }

    /// Most final rows the stream holds before they are pulled. A push that
    /// would make more rows wait fails with [`ErrorKind::StreamFull`]. After
    /// pulling every final row, any push of up to [`PUSH_ROWS`] rows fits.
    pub fn max_pending_rows(&self) -> usize {
        PUSH_ROWS + self.shape.latency_bound
    }

    /// Latency in rows: output row `r` is final (can be pulled) once input
    /// rows `0 ..= min(r + latency_rows(), height − 1)` have been pushed.
    /// This is the largest lag over the rows of this image (rows near the top
    /// wait longest, because the search window is shifted there); the exact
    /// count for one row is [`Stream::rows_needed`]. Every row is final once
    /// the last row is pushed. (Computed when the stream is created, in time
    /// linear in the height.)
    pub fn latency_rows(&self) -> usize {
        self.latency
    }

    /// Number of input rows that must have been pushed for output row `r` to be
    /// final (at most `r + 1 + latency_rows()`, and at most the height).
    pub fn rows_needed(&self, r: usize) -> usize {
        rows_needed(self.net, self.height, r, |b| self.grids[b].rows)
    }

    /// [`Stream::latency_rows`] of a stream of `net` over images `height`
    /// rows tall, without creating one (no workspace needed).
    pub fn latency_for(net: &Network<'_>, height: usize) -> Result<usize> {
        if height == 0 {
            return Err(Error::new(ErrorKind::ImageTooSmall, "image has no pixels"));
        }
        let mut axes: Vec<Axis, MAX_N3_BLOCKS> = Vec::new();
        for b in net.n3() {
            add(height, b.params.patch + b.params.stride)?;
            let a = Axis::new(height, b.params.patch, b.params.stride)?;
            axes.push(a).map_err(|_| too_deep())?;
        }
        let lag = |r: usize| rows_needed(net, height, r, |b| axes[b]) - 1 - r;
        // Away from the borders a row's lag depends only on its phase in
        // the patch grids: from `top` on, no search window is shifted at
        // the top border, and until `height − bottom` none is shifted at
        // the bottom border nor clamped to the image, so the lag repeats
        // with the period `lcm` of the strides; the border zones can only
        // lower it at the bottom. One period after the top zone and the
        // bottom zone hold every value, so a tall image costs no more than
        // a short one.
        let (mut top, mut period) = (0usize, 1usize);
        for dn in net.dncnn() {
            top = add(top, sum_pad(dn))?;
        }
        for b in net.n3() {
            let p = &b.params;
            top = add(top, mul(p.stride, p.window)?)?;
            period = lcm(period, p.stride).ok_or(Error::new(
                ErrorKind::TooLarge,
                "patch strides: period overflows",
            ))?;
        }
        let bottom = add(mul(2, Self::max_halo(net)?)?, top)?;
        let scan = add(add(top, period)?, bottom)?;
        if scan >= height {
            return Ok((0..height).map(lag).max().unwrap_or(0));
        }
        let head = (0..top + period).map(lag).max().unwrap_or(0);
        let tail = (height - bottom..height).map(lag).max().unwrap_or(0);
        Ok(head.max(tail))
    }

    /// Output rows final after `pushed` input rows.
    fn final_after(&self, pushed: usize) -> usize {
        if pushed >= self.height {
            return self.height;
        }
        // rows_needed is non-decreasing: binary search the first row not final.
        let (mut lo, mut hi) = (0, self.height);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.rows_needed(mid) <= pushed {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn final_rows(&self) -> usize {
        self.done[self.shape.steps.len() - 1]
    }

    /// Pushes whole input rows (`k · cin · w` values for `w` input columns,
    /// see the row layout on [`Stream`]) and runs every stage as far as they
    /// allow.
    ///
    /// Errors, before anything is consumed: [`ErrorKind::BufferSize`] if the
    /// length is not a whole number of rows, [`ErrorKind::PastEnd`] if the
    /// rows go past the height, [`ErrorKind::NonFiniteInput`] for NaN or
    /// infinite values, [`ErrorKind::StreamFull`] if more than
    /// [`Stream::max_pending_rows`] final rows would wait to be pulled.
    pub fn push_rows(&mut self, rows: &[f32]) -> Result<()> {
        let len = self.net.cin() * self.input_cols.len();
        if rows.len() % len != 0 {
            return Err(Error::new(
                ErrorKind::BufferSize,
                "pushed length is not a whole number of rows (cin × input columns values)",
            ));
        }
        let n = rows.len() / len;
        if n > self.height - self.pushed {
            return Err(Error::new(
                ErrorKind::PastEnd,
                "more rows pushed than the image height",
            ));
        }
        if !rows.iter().all(|v| v.is_finite()) {
            return Err(Error::new(
                ErrorKind::NonFiniteInput,
                "input holds NaN or infinite values",
            ));
        }
        if self.final_after(self.pushed + n) - self.pulled > self.max_pending_rows() {
            return Err(Error::new(
                ErrorKind::StreamFull,
                "too many final rows would wait: pull rows before pushing more",
            ));
        }
        with_arena!(self, a => self.push_in(a, rows, len))
    }

    fn push_in<A: Act>(&mut self, a: &mut Arena<'_, A>, rows: &[f32], len: usize) -> Result<()> {
        for row in rows.chunks_exact(len) {
            self.push_one(a, row)?;
            self.drain(a)?;
        }
        Ok(())
    }

    /// Copies final output rows (`cout · w` values each for `w` output
    /// columns, see the row layout on [`Stream`]) into `out`, as many as are
    /// final and fit, and returns how many. Returns 0 when no row is final
    /// yet.
    ///
    /// [`ErrorKind::BufferSize`] if `out` is not a whole, non-zero number of rows.
    pub fn pull_rows(&mut self, out: &mut [f32]) -> Result<usize> {
        let w = self.output_cols.len();
        let len = self.net.cout() * w;
        if out.len() < len || out.len() % len != 0 {
            return Err(Error::new(
                ErrorKind::BufferSize,
                "output is not a whole, non-zero number of rows (cout × output columns values)",
            ));
        }
        let n = self.pending_rows().min(out.len() / len);
        with_arena!(self, a => self.pull_in(a, out, n, len));
        self.pulled += n;
        Ok(n)
    }

    fn pull_in<A: Act>(&self, a: &Arena<'_, A>, out: &mut [f32], n: usize, len: usize) {
        let w = self.output_cols.len();
        let fin = self.final_ring();
        let band = self.band(fin);
        let scale = self.scale(fin);
        let x = self.output_cols.start - self.input_cols.start;
        let data = &a.rings[self.range(fin)];
        for (k, row) in out.chunks_exact_mut(len).take(n).enumerate() {
            let y = self.pulled + k;
            for (c, dst) in row.chunks_exact_mut(w).enumerate() {
                let at = c * band.plane + band.at(y, x);
                A::load(self.isa, &data[at..at + w], dst, scale);
            }
        }
    }

    /// Largest magnitude of the values computed so far in each activation
    /// tensor, in the order of [`Network::with_activation_scales`] (the
    /// input, every convolution output and N³ block output in execution
    /// order), since [`Stream::track_activation_peaks`] (zero without it).
    /// The runtime's q16 calibration streams f32 images and reads these.
    pub fn activation_peaks(&self) -> &[f32] {
        &self.peaks
    }

    /// Makes the stream record [`Stream::activation_peaks`] for the rows it
    /// computes from now on. Off by default: it reads every row once more,
    /// which inference does not need.
    pub fn track_activation_peaks(&mut self) {
        self.track_peaks = true;
    }

    /// Records the magnitude of row `y` of ring `id`, when tracked.
    fn observe<A: Act>(&mut self, a: &Arena<'_, A>, id: usize, y: usize) {
        if !self.track_peaks {
            return;
        }
        let band = self.band(id);
        let data = &a.rings[self.range(id)];
        let w = band.width;
        let ch = self.shape.rings[id].ch;
        let scale = self.scale(id);
        let peak = (0..ch)
            .map(|c| A::peak(&data[c * band.plane + band.at(y, 0)..][..w], scale))
            .fold(self.peaks[id], f32::max);
        self.peaks[id] = peak;
    }

    /// The q16 scale of ring `id` (rings are the activation tensors in
    /// execution order); 1 for the float precisions.
    fn scale(&self, id: usize) -> f32 {
        self.net.activation_scales().get(id).copied().unwrap_or(1.0)
    }

    fn region(&self, id: usize) -> Region {
        Region {
            band: self.band(id),
            range: self.range(id),
        }
    }

    /// The output ring of the final DnCNN stage, the last ring created.
    fn final_ring(&self) -> usize {
        self.shape.rings.len() - 1
    }

    fn band(&self, id: usize) -> Band {
        let r = self.shape.rings[id];
        let rs = self.shape.width + 2 * self.shape.pad;
        Band {
            width: self.shape.width,
            pad: self.shape.pad,
            plane: r.cap * rs,
            first: r.first,
        }
    }

    fn range(&self, id: usize) -> core::ops::Range<usize> {
        let r = self.shape.rings[id];
        r.off..r.off + r.ch * self.band(id).plane
    }

    fn push_one<A: Act>(&mut self, a: &mut Arena<'_, A>, row: &[f32]) -> Result<()> {
        let pg = self.shape.pad;
        let y = self.pushed;
        let end = if y + 1 == self.height { 2 * pg } else { pg };
        self.reserve(a, 0, y + 1 + end)?;
        let band = self.band(0);
        let scale = self.scale(0);
        let data = &mut a.rings[self.range(0)];
        let w = self.shape.width;
        for (c, src) in row.chunks_exact(w).enumerate() {
            let at = c * band.plane + band.at(y, 0);
            A::store(self.isa, src, &mut data[at..at + w], scale);
        }
        self.observe(a, 0, y);
        self.shape.rings[0].ready = y + 1 + end;
        self.pushed += 1;
        Ok(())
    }

    /// Lowest padded row of ring `id` some step still reads.
    fn low_water(&self, id: usize) -> usize {
        let pg = self.shape.pad;
        let h = self.height;
        let mut lo = self.shape.rings[id].ready;
        if id == self.final_ring() {
            lo = lo.min(self.pulled + pg);
        }
        for (i, st) in self.shape.steps.iter().enumerate() {
            let done = self.done[i];
            match *st {
                Step::Conv {
                    layer, src, res, ..
                } if done < h => {
                    let kp = self.net.layers()[layer].ksize / 2;
                    if src == id {
                        lo = lo.min(done + pg - kp);
                    }
                    if res == Some(id) {
                        lo = lo.min(done + pg);
                    }
                }
                Step::Extract(b) => {
                    let blk = &self.shape.blocks[b];
                    let d = &self.grids[b];
                    if done < d.rows.count && (id == blk.x || id == blk.emb || id == blk.tmp) {
                        let top = (done * d.rows.stride).saturating_sub(d.rows.before);
                        lo = lo.min(top + pg);
                    }
                }
                Step::Finish(b) if done < h && id == self.shape.blocks[b].x => {
                    lo = lo.min(done + pg);
                }
                _ => {}
            }
        }
        lo
    }

    /// Makes padded rows up to `hi` present (zeroed) in ring `id`, moving the
    /// rows still needed to the front of the buffer when it is full.
    fn reserve<A: Act>(&mut self, a: &mut Arena<'_, A>, id: usize, hi: usize) -> Result<()> {
        let prep = self.plan_reserve(id, hi)?;
        let range = self.range(id);
        prep.apply(&mut a.rings[range], self.band(id).plane);
        Ok(())
    }

    /// [`Stream::reserve`] of the ring's rows, leaving the moving and zeroing
    /// of its planes to the returned plan.
    fn plan_reserve(&mut self, id: usize, hi: usize) -> Result<RowPrep> {
        let r = self.shape.rings[id];
        let rs = self.band(id).row_stride();
        let mut prep = RowPrep {
            keep: 0..0,
            zero: 0..0,
        };
        if hi <= r.hi {
            return Ok(prep);
        }
        let mut first = r.first;
        if hi - first > r.cap {
            let lo = self.low_water(id).clamp(r.first, r.hi);
            prep.keep = (lo - r.first) * rs..(r.hi - r.first) * rs;
            first = lo;
        }
        if hi - first > r.cap {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "stream row buffer overflow (internal sizing error)",
            ));
        }
        prep.zero = (r.hi - first) * rs..(hi - first) * rs;
        self.shape.rings[id].first = first;
        self.shape.rings[id].hi = hi;
        Ok(prep)
    }

    /// Runs the deepest step that can make progress, until none can.
    fn drain<A: Act>(&mut self, a: &mut Arena<'_, A>) -> Result<()> {
        'outer: loop {
            for i in (0..self.shape.steps.len()).rev() {
                if self.try_step(a, i)? {
                    continue 'outer;
                }
            }
            return Ok(());
        }
    }

    fn try_step<A: Act>(&mut self, a: &mut Arena<'_, A>, i: usize) -> Result<bool> {
        let pg = self.shape.pad;
        let h = self.height;
        let done = self.done[i];
        match self.shape.steps[i] {
            Step::Conv {
                layer,
                src,
                dst,
                res,
            } => {
                let l = &self.net.layers()[layer];
                if done == h || self.shape.rings[src].ready < done + pg + l.ksize / 2 + 1 {
                    return Ok(false);
                }
                self.conv_row(a, l, src, dst, res, done)?;
            }
            Step::Extract(b) => {
                let d = self.grids[b];
                let q = self.done[i + 1];
                if done == d.rows.count || q == d.rows.count {
                    return Ok(false);
                }
                let (start, side) = d.rows.window(q, self.net.n3_block(b).params.window);
                if done >= start + side {
                    return Ok(false);
                }
                let last = (done * d.rows.stride + d.rows.patch - 1 - d.rows.before).min(h - 1);
                let blk = self.shape.blocks[b];
                let need = last + pg + 1;
                let rings = &self.shape.rings;
                if [blk.x, blk.emb, blk.tmp]
                    .iter()
                    .any(|&r| rings[r].ready < need)
                {
                    return Ok(false);
                }
                self.extract(a, b, done);
            }
            Step::Query(b) => {
                let d = self.grids[b];
                let extracted = self.done[i - 1];
                if done == d.rows.count {
                    return Ok(false);
                }
                let (start, side) = d.rows.window(done, self.net.n3_block(b).params.window);
                if extracted < start + side {
                    return Ok(false);
                }
                self.query(a, b, done)?;
            }
            Step::Finish(b) => {
                let d = self.grids[b];
                let queried = self.done[i - 1];
                if done == h {
                    return Ok(false);
                }
                let cover = ((done + d.rows.before) / d.rows.stride).min(d.rows.count - 1);
                if queried <= cover {
                    return Ok(false);
                }
                self.finish(a, b, done)?;
            }
        }
        self.done[i] += 1;
        Ok(true)
    }

    fn conv_row<A: Act>(
        &mut self,
        a: &mut Arena<'_, A>,
        l: &crate::model::ConvLayer<'_>,
        src: usize,
        dst: usize,
        res: Option<usize>,
        y: usize,
    ) -> Result<()> {
        let pg = self.shape.pad;
        let end = if y + 1 == self.height { 2 * pg } else { pg };
        let mut prep = self.plan_reserve(dst, y + 1 + end)?;
        // The convolution writes all of row `y` but its zero columns, which
        // nothing writes (they stay as the zeroed workspace left them, also
        // in the older rows whose places new rows take): only the zero rows
        // below the image need zeroing.
        let written = (y + pg + 1 - self.shape.rings[dst].first) * self.band(dst).row_stride();
        prep.zero.start = written.clamp(prep.zero.start, prep.zero.end);
        let rings = &self.shape.rings;
        let c = ConvRow {
            isa: self.isa,
            layer: l,
            src: self.region(src),
            dst: self.region(dst),
            res: res.map(|r| (self.region(r), rings[r].ch.min(rings[dst].ch))),
            y,
            prep,
            scales: [
                self.scale(src),
                self.scale(dst),
                self.scale(res.unwrap_or(dst)),
            ],
            par: self.par,
        };
        let mut lane = match self.par {
            Some(_) if !self.lane.is_empty() => Some(carve_kernel(
                &self.shape.scratch,
                &mut Carver::new(&mut *self.lane)?,
            )?),
            _ => None,
        };
        A::conv_row(&c, a.rings, &mut self.scratch, lane.as_mut())?;
        self.observe(a, dst, y);
        self.shape.rings[dst].ready = y + 1 + end;
        Ok(())
    }

    /// Extracts patch row `i` of block `b`, its patches split between two
    /// threads when threads are lent (each patch is written by one).
    fn extract<A: Act>(&mut self, a: &mut Arena<'_, A>, b: usize, i: usize) {
        let blk = self.shape.blocks[b];
        let d = self.grids[b];
        let block = self.net.n3_block(b);
        let rings = &*a.rings;
        let planes = |id: usize| Planes {
            band: self.band(id),
            data: &rings[self.range(id)],
        };
        let cw = self.cols[b];
        let ex = Extract {
            prm: &block.params,
            d: &d,
            cw: &cw,
            channels: block.cin(),
            x: planes(blk.x),
            embed: planes(blk.emb),
            temp: planes(blk.tmp),
            temp_scale: self.scale(blk.tmp),
        };
        let mut slots = patch_slots(&blk, a.patches, self.temps);
        let mut row = slots.row(i, cw.n, &d);
        let js = cw.j0..cw.j0 + cw.n;
        match self.par {
            Some(par) if par.threads() >= 2 && cw.n >= 2 => {
                let half = cw.n / 2;
                let (mut ra, mut rb) = row.split_at_mut(half, &d);
                let mid = js.start + half;
                par.join(&mut || ex.patches(i, js.start..mid, &mut ra), &mut || {
                    ex.patches(i, mid..js.end, &mut rb)
                });
            }
            _ => ex.patches(i, js, &mut row),
        }
    }

    fn query<A: Act>(&mut self, a: &mut Arena<'_, A>, b: usize, i: usize) -> Result<()> {
        let blk = self.shape.blocks[b];
        let d = self.grids[b];
        let block = self.net.n3_block(b);
        let s = &block.params;
        let top = (i * s.stride).saturating_sub(d.rows.before);
        let bottom = (i * s.stride + s.patch - d.rows.before).min(self.height);
        let pg = self.shape.pad;
        self.reserve(a, blk.out, bottom.max(top) + pg)?;
        let band = self.band(blk.out);
        let range = self.range(blk.out);
        let es = self.scale(blk.emb);
        let slots = patch_slots(&blk, a.patches, self.temps);
        let mut scratch = QueryScratch::<A> {
            indices: &mut *self.indices,
            logits: &mut *self.logits,
            weights: &mut *self.weights,
            neighbours: &mut a.neighbours[..d.k * d.input_dim],
            kernel: Scratch {
                f: &mut *self.scratch.f,
                i32s: &mut *self.scratch.i32s,
                i64s: &mut *self.scratch.i64s,
            },
        };
        let out = &mut a.rings[range];
        let mut second = match self.par {
            Some(par) if !self.lane.is_empty() => {
                let mut q = carve_lane::<A>(self.net, &self.shape.scratch, &mut *self.lane)?;
                q.neighbours = &mut q.neighbours[..d.k * d.input_dim];
                Some((par, q))
            }
            _ => None,
        };
        let lane = second.as_mut().map(|(p, s2)| (*p, s2));
        query_row(
            self.isa,
            s,
            &d,
            &self.cols[b],
            block.cin(),
            es,
            i,
            &slots,
            &mut scratch,
            lane,
            band,
            out,
        )
    }

    fn finish<A: Act>(&mut self, a: &mut Arena<'_, A>, b: usize, y: usize) -> Result<()> {
        let blk = self.shape.blocks[b];
        let d = self.grids[b];
        let pg = self.shape.pad;
        let (xb, ob) = (self.band(blk.x), self.band(blk.out));
        let (x, out) = two(a.rings, self.range(blk.x), self.range(blk.out));
        let x = Planes { band: xb, data: x };
        let cw = self.cols[b];
        let ch = self.net.n3_block(b).cin();
        finish_rows(self.isa, &d, &cw, ch, x, ob, out, y..y + 1);
        self.observe(a, blk.out, y);
        let end = if y + 1 == self.height {
            self.reserve(a, blk.out, y + 1 + 2 * pg)?;
            2 * pg
        } else {
            pg
        };
        self.shape.rings[blk.out].ready = y + 1 + end;
        Ok(())
    }
}

/// Sizes of one query's scratch for any block of `net`: candidates,
/// weights, aggregated values and the longest patch.
fn lane_sizes(net: &Network<'_>) -> Result<[usize; 4]> {
    let mut m = [0; 4];
    for b in net.n3() {
        let p = &b.params;
        let pp = mul(p.patch, p.patch)?;
        let cand = mul(p.window, p.window)? - 1;
        let (input, embed) = (mul(b.cin(), pp)?, mul(b.embed.cout(), pp)?);
        let sizes = [cand, mul(p.k, cand)?, mul(p.k, input)?, input.max(embed)];
        for (v, s) in m.iter_mut().zip(sizes) {
            *v = (*v).max(s);
        }
    }
    Ok(m)
}

/// Bytes of the second thread's scratch for `net`, whose kernels need
/// `scratch` (as much as the first thread's).
fn lane_bytes(net: &Network<'_>, scratch: &ScratchSize) -> Result<usize> {
    let mut l = Layout::default();
    match net.precision() {
        Precision::F32 => lane_layout::<f32>(net, scratch, &mut l)?,
        Precision::F16 => lane_layout::<f16>(net, scratch, &mut l)?,
        Precision::Q16 => lane_layout::<i16>(net, scratch, &mut l)?,
    }
    l.bytes()
}

fn lane_layout<A: Act>(net: &Network<'_>, k: &ScratchSize, l: &mut Layout) -> Result<()> {
    let [cand, weights, neighbours, _] = lane_sizes(net)?;
    l.push::<f32>(k.f)?;
    l.push::<i32>(k.i32s)?;
    l.push::<i64>(k.i64s)?;
    l.push::<u32>(cand)?;
    l.push::<f32>(cand)?;
    l.push::<f32>(weights)?;
    l.push::<A::Wide>(neighbours)
}

/// The second thread's kernel scratch for kernels that need `k`: the start
/// of its lane (checked by [`Stream::set_parallel`]), carved before each use.
/// Its kernels write every value they read, so it is not cleared.
fn carve_kernel<'l>(k: &ScratchSize, ws: &mut Carver<'l>) -> Result<Scratch<'l>> {
    Ok(Scratch {
        f: ws.take_as_is::<f32>(k.f)?,
        i32s: ws.take_as_is::<i32>(k.i32s)?,
        i64s: ws.take_as_is::<i64>(k.i64s)?,
    })
}

/// The second thread's whole scratch: [`carve_kernel`] and the rest of the
/// lane for one query.
fn carve_lane<'l, A: Act>(
    net: &Network<'_>,
    k: &ScratchSize,
    lane: &'l mut [u8],
) -> Result<QueryScratch<'l, A>> {
    let [cand, weights, neighbours, _] = lane_sizes(net)?;
    let mut ws = Carver::new(lane)?;
    let kernel = carve_kernel(k, &mut ws)?;
    Ok(QueryScratch {
        indices: ws.take_as_is::<u32>(cand)?,
        logits: ws.take_as_is::<f32>(cand)?,
        weights: ws.take_as_is::<f32>(weights)?,
        neighbours: ws.take_as_is::<A::Wide>(neighbours)?,
        kernel,
    })
}

/// Least common multiple, `None` on overflow.
fn lcm(a: usize, b: usize) -> Option<usize> {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    (a / x).checked_mul(b)
}

/// Input rows that must have been pushed for output row `r` of an image
/// `h` rows tall to be final; `rows(b)` is block `b`'s patch grid along rows.
fn rows_needed(net: &Network<'_>, h: usize, r: usize, rows: impl Fn(usize) -> Axis) -> usize {
    let mut y = r.min(h - 1);
    for s in (0..net.dncnn().len()).rev() {
        y = (y + sum_pad(net.dncnn_stage(s))).min(h - 1);
        if s == 0 {
            break;
        }
        let b = net.n3_block(s - 1);
        let a = rows(s - 1);
        let p = &b.params;
        let q = ((y + a.before) / p.stride).min(a.count - 1);
        let (start, side) = a.window(q, p.window);
        let e = start + side - 1;
        let last = (e * p.stride + p.patch - 1 - a.before).min(h - 1);
        let lag = sum_pad(b.embed).max(sum_pad(b.temp));
        y = y.max((last + lag).min(h - 1));
    }
    y + 1
}

fn patch_slots<'a, A>(
    blk: &Block,
    patches: &'a mut [A],
    temps: &'a mut [f32],
) -> PatchSlots<'a, A> {
    let data = &mut patches[blk.off..][..blk.patch_len()];
    let e = blk.slots * blk.n2 * blk.embed_dim;
    let (embed, input) = data.split_at_mut(e);
    PatchSlots {
        slots: blk.slots,
        embed,
        input,
        temps: &mut temps[blk.toff..][..blk.temps_len()],
    }
}

/// Disjoint views of an arena: `r` to read, `w` to write.
fn two<A>(
    arena: &mut [A],
    r: core::ops::Range<usize>,
    w: core::ops::Range<usize>,
) -> (&[A], &mut [A]) {
    let (out, rest) = split_out(arena, w);
    (rest.get(r), out)
}
