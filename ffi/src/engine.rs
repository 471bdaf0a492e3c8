//! Runs a network over an image row by row inside the caller's workspace:
//! the core's [`Stream`] (whole width or column stripes) plus one input and
//! one output row buffer, fed and drained through a [`Rows`] source/sink.

use core::ops::Range;

use n3net_core::exec::stream::Stream;
use n3net_core::workspace::{Carver, Layout};
use n3net_core::{Isa, Network};

use crate::error::{
    Code, Status, N3NET_ERR_INTERNAL, N3NET_ERR_INVALID_ARGUMENT, N3NET_ERR_NON_FINITE_INPUT,
    N3NET_ERR_TOO_LARGE, N3NET_ERR_WORKSPACE_TOO_SMALL,
};
use crate::noise::Noise;

/// Where rows come from and go to: a strided plane, one plane of a Bayer
/// mosaic, ...
pub(crate) trait Rows {
    /// Writes columns `cols` of source row `y`, on the network's scale, to
    /// `out` (`cols.len()` values). The source was checked beforehand.
    fn read(&mut self, y: usize, cols: Range<usize>, out: &mut [f32]);
    /// Stores `row`, columns `cols` of output row `y`.
    fn write(&mut self, y: usize, cols: Range<usize>, row: &[f32]);
}

/// How an image is cut: the whole width, or stripes of `stripe` output columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    pub(crate) height: usize,
    pub(crate) width: usize,
    /// 0 or ≥ width: the whole width.
    pub(crate) stripe: usize,
}

/// `(width, height)` as `usize`, neither zero.
pub(crate) fn dims(width: u32, height: u32) -> Status<(usize, usize)> {
    if width == 0 || height == 0 {
        return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
    }
    Ok((width as usize, height as usize))
}

impl Cut {
    /// Whether one stream covers the whole width (no stripes).
    pub(crate) fn whole(&self) -> bool {
        self.stripe == 0 || self.stripe >= self.width
    }

    /// Widest input (stripe and halo) and output rows of a stream, the
    /// core's workspace bytes, and the total with the row buffers.
    fn sizes(&self, net: &Network<'_>) -> Status<Sizes> {
        let (input, output, core) = if self.whole() {
            let core = Stream::workspace_bytes(net, self.width)?;
            (self.width, self.width, core)
        } else {
            let halo = Stream::max_halo(net)?;
            let input = halo
                .checked_mul(2)
                .and_then(|h| h.checked_add(self.stripe))
                .ok_or(Code(N3NET_ERR_TOO_LARGE))?
                .min(self.width);
            let core = Stream::stripe_workspace_bytes(net, self.stripe)?;
            (input, self.stripe, core)
        };
        let too_large = Code(N3NET_ERR_TOO_LARGE);
        let mut l = Layout::default();
        l.push::<f32>(input.checked_mul(net.cin()).ok_or(too_large)?)?;
        l.push::<f32>(output.checked_mul(net.cout()).ok_or(too_large)?)?;
        let total = l.bytes()?.checked_add(core).ok_or(too_large)?;
        Ok(Sizes {
            input,
            output,
            core,
            total,
        })
    }

    /// The output columns of each stripe.
    fn stripes(&self) -> impl Iterator<Item = Range<usize>> {
        let step = if self.whole() {
            self.width
        } else {
            self.stripe
        };
        let width = self.width;
        (0..width)
            .step_by(step)
            .map(move |x| x..(x + step).min(width))
    }
}

/// The row buffers of a run.
pub(crate) struct RowBufs<'a> {
    input: &'a mut [f32],
    output: &'a mut [f32],
}

/// Sizes of a run ([`Cut::sizes`]).
struct Sizes {
    input: usize,
    output: usize,
    core: usize,
    total: usize,
}

/// Workspace bytes of [`run`] (and of a stream over the whole width with
/// `cut.stripe == 0`).
pub(crate) fn workspace_bytes(net: &Network<'_>, cut: &Cut) -> Status<usize> {
    Ok(cut.sizes(net)?.total)
}

/// Splits `ws` into the core's workspace and the row buffers.
pub(crate) fn carve<'a>(
    net: &Network<'_>,
    cut: &Cut,
    ws: &'a mut [u8],
) -> Status<(&'a mut [u8], RowBufs<'a>)> {
    let z = cut.sizes(net)?;
    if ws.len() < z.total {
        return Err(Code(N3NET_ERR_WORKSPACE_TOO_SMALL));
    }
    let (core_ws, rest) = ws.split_at_mut(z.core);
    let mut c = Carver::new(rest)?;
    let bufs = RowBufs {
        input: c.take::<f32>(z.input * net.cin())?,
        output: c.take::<f32>(z.output * net.cout())?,
    };
    Ok((core_ws, bufs))
}

/// Runs `net` over the `cut.height × cut.width` image of `rows`, stripe by
/// stripe, inside `ws` ([`workspace_bytes`]).
pub(crate) fn run(
    net: &Network<'_>,
    isa: Isa,
    cut: &Cut,
    noise: Noise,
    ws: &mut [u8],
    rows: &mut impl Rows,
) -> Status {
    let (core_ws, mut bufs) = carve(net, cut, ws)?;
    for cols in cut.stripes() {
        let mut opened = if cut.whole() {
            Stream::new(net, cut.height, cut.width, isa, &mut *core_ws)
        } else {
            Stream::stripe(net, cut.height, cut.width, cols, isa, &mut *core_ws)
        };
        // Borrowed where it was returned: moving the stream (a few KiB) out
        // of its `Result` would hold a second copy on the stack.
        let s = opened.as_mut().map_err(|e| *e)?;
        for y in 0..cut.height {
            push(s, &mut bufs, noise, |cols, out| rows.read(y, cols, out))?;
            while pull(s, &mut bufs, |y, cols, row| rows.write(y, cols, row))? {}
        }
        if s.rows_pulled() != cut.height {
            return Err(Code(N3NET_ERR_INTERNAL));
        }
    }
    Ok(())
}

/// Pushes one row: `read` fills the image channel for the stream's input
/// columns, then the σ channel is added.
pub(crate) fn push(
    s: &mut Stream<'_, '_, '_>,
    bufs: &mut RowBufs<'_>,
    noise: Noise,
    read: impl FnOnce(Range<usize>, &mut [f32]),
) -> Status {
    let cols = s.input_columns();
    let w = cols.len();
    let cin = if noise == Noise::None { 1 } else { 2 };
    let row = &mut bufs.input[..cin * w];
    let (x, sigma) = row.split_at_mut(w);
    read(cols, x);
    noise.fill(x, sigma);
    s.push_rows(row)?;
    Ok(())
}

/// Pulls the next final row, if any, and hands it to `write` with its row
/// index and image columns; returns whether there was one. A row that is
/// not finite (float samples far outside `[0, 1]` overflowed inside the
/// network) is `N3NET_ERR_NON_FINITE_INPUT` and is not written.
pub(crate) fn pull(
    s: &mut Stream<'_, '_, '_>,
    bufs: &mut RowBufs<'_>,
    write: impl FnOnce(usize, Range<usize>, &[f32]),
) -> Status<bool> {
    if s.pending_rows() == 0 {
        return Ok(false);
    }
    let cols = s.output_columns();
    let w = cols.len();
    let y = s.rows_pulled();
    if s.pull_rows(&mut bufs.output[..w])? != 1 {
        return Err(Code(N3NET_ERR_INTERNAL));
    }
    let row = &bufs.output[..w];
    if !row.iter().all(|v| v.is_finite()) {
        return Err(Code(N3NET_ERR_NON_FINITE_INPUT));
    }
    write(y, cols, row);
    Ok(true)
}
