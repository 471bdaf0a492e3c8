//! 8-bit rows in, 8-bit denoised rows out, through the core's [`Stream`].

use embedded_hal::spi::SpiDevice;
use n3net_core::exec::stream::Stream;
use n3net_core::workspace::{Carver, Layout};
use n3net_core::{Error as CoreError, ErrorKind, Isa, Network};

use crate::{Error, LineSensor};

/// The network's input value of an 8-bit pixel: `p / 255`, in `[0, 1]`,
/// the scale the models were trained on.
pub fn to_unit(p: u8) -> f32 {
    f32::from(p) / 255.0
}

/// The 8-bit pixel of a network output: `round(clamp(y, 0, 1) · 255)`,
/// halves rounded up (as `f32::round` does for these non-negative values;
/// `core` has no `round` without `std`). NaN gives 0.
pub fn to_u8(y: f32) -> u8 {
    let x = y.clamp(0.0, 1.0) * 255.0;
    // Truncation of a value in [0, 255]; `x - whole` is then exact, so the
    // comparison rounds exactly (adding 0.5 first would round up 0.49999997).
    let whole = x as u8;
    if x - f32::from(whole) >= 0.5 {
        whole + 1
    } else {
        whole
    }
}

/// Runs a grey denoiser over rows of 8-bit pixels as they arrive.
///
/// It allocates nothing: it borrows the network (whose weights stay where
/// the caller keeps them, e.g. a blob in flash) and one workspace slice
/// ([`Denoiser::workspace_bytes`]) that holds the stream's row buffers, one
/// row of network input and one line of pixels. The workspace depends on
/// the width only, so a frame of any height runs in it. The value itself
/// holds the stream's schedule tables (a few KiB, see [`Stream`]): keep it
/// somewhere long-lived rather than on a small interrupt stack.
///
/// The models it runs are the project's grey ones: one output channel, and
/// either one input channel (blind) or two, the pixels then a noise-level
/// map, given here as a constant σ (the row layout of [`Stream`]: channel 0
/// of the row, then channel 1).
pub struct Denoiser<'n, 'w, 'ws> {
    stream: Stream<'n, 'w, 'ws>,
    /// One network input row (`cin × width` values). Its σ half is written
    /// once; its pixel half takes each line in, then each output row out.
    row: &'ws mut [f32],
    /// One line of pixels: a sensor line in, then each output row out.
    line: &'ws mut [u8],
}

fn grey_model(net: &Network<'_>) -> Result<(), CoreError> {
    if net.cout() == 1 && matches!(net.cin(), 1 | 2) {
        Ok(())
    } else {
        Err(CoreError::new(
            ErrorKind::InvalidModel,
            "a grey denoiser: 1 output channel, 1 or 2 (with a noise map) input channels",
        ))
    }
}

fn too_large() -> CoreError {
    CoreError::new(ErrorKind::TooLarge, "size overflows usize")
}

/// The bytes of the f32 input row, with the slack to align it anywhere.
fn row_bytes(net: &Network<'_>, width: usize) -> Result<usize, CoreError> {
    grey_model(net)?;
    let mut l = Layout::default();
    l.push::<f32>(net.cin().checked_mul(width).ok_or_else(too_large)?)?;
    l.bytes()
}

/// The first `n` bytes of `ws` and the rest.
fn split(ws: &mut [u8], n: usize) -> Result<(&mut [u8], &mut [u8]), CoreError> {
    if ws.len() < n {
        return Err(CoreError::new(
            ErrorKind::WorkspaceTooSmall,
            "workspace smaller than Denoiser::workspace_bytes",
        ));
    }
    Ok(ws.split_at_mut(n))
}

/// Writes the pixels of `line` as network input into the start of `row`.
fn load(line: &[u8], row: &mut [f32]) {
    for (v, &p) in row.iter_mut().zip(line) {
        *v = to_unit(p);
    }
}

impl<'n, 'w, 'ws> Denoiser<'n, 'w, 'ws> {
    /// Exact workspace bytes for `net` on rows `width` pixels wide: the
    /// stream's ([`Stream::workspace_bytes`]), one input row of `f32` and
    /// one line of bytes. Size a static buffer with it once, on the host or
    /// at start-up.
    pub fn workspace_bytes(net: &Network<'_>, width: usize) -> Result<usize, CoreError> {
        let stream = Stream::workspace_bytes(net, width)?;
        stream
            .checked_add(row_bytes(net, width)?)
            .and_then(|n| n.checked_add(width))
            .ok_or_else(too_large)
    }

    /// A denoiser for one `height × width` frame, with noise level `sigma`
    /// (0–255 scale; ignored by a blind, one-input model), using
    /// instruction set `isa` ([`Isa::detect`] picks the best there is).
    ///
    /// Errors: [`ErrorKind::WorkspaceTooSmall`] if `workspace` is shorter
    /// than [`Denoiser::workspace_bytes`], [`ErrorKind::InvalidArgument`]
    /// for a σ that is negative or not finite, [`ErrorKind::InvalidModel`]
    /// for a model that is not a grey denoiser, and the errors of
    /// [`Stream::new`] for a frame the network cannot run on.
    pub fn new(
        net: &'n Network<'w>,
        height: usize,
        width: usize,
        sigma: f32,
        isa: Isa,
        workspace: &'ws mut [u8],
    ) -> Result<Self, CoreError> {
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(CoreError::new(
                ErrorKind::InvalidArgument,
                "sigma must be finite and >= 0",
            ));
        }
        let (row, rest) = split(workspace, row_bytes(net, width)?)?;
        let (line, stream) = split(rest, width)?;
        let row = Carver::new(row)?.take::<f32>(net.cin() * width)?;
        // The σ map is the same for every row, so it is written only once.
        row[width..].fill(sigma / 255.0);
        let stream = Stream::new(net, height, width, isa, stream)?;
        Ok(Self { stream, row, line })
    }

    /// Reads the frame's remaining rows from `sensor`, top to bottom, and
    /// hands every denoised row to `sink` as `(row index, pixels)`, in
    /// order, as soon as it is final (a fixed number of rows after its
    /// input row; the last rows come with the last line read).
    ///
    /// A failed read pushes nothing: after an [`Error::Spi`], calling `run`
    /// again resumes the frame at the row that failed.
    pub fn run<SPI: SpiDevice>(
        &mut self,
        sensor: &mut LineSensor<SPI>,
        mut sink: impl FnMut(usize, &[u8]),
    ) -> Result<(), Error<SPI::Error>> {
        for y in self.stream.rows_pushed()..self.stream.height() {
            let row = u16::try_from(y).map_err(|_| {
                CoreError::new(
                    ErrorKind::TooLarge,
                    "row index does not fit the sensor's 16-bit row field",
                )
            })?;
            sensor.read_line(row, self.line)?;
            load(self.line, self.row);
            self.push_and_emit(&mut sink)?;
        }
        Ok(())
    }

    /// Pushes the next row of the frame, `width` pixels from any source
    /// (a camera interface, DMA), and hands the rows that became final to
    /// `sink` like [`Denoiser::run`]. Pass `&mut sink` to keep one sink for
    /// the frame.
    ///
    /// Errors: [`ErrorKind::BufferSize`] if `line` is not `width` pixels,
    /// [`ErrorKind::PastEnd`] past the last row of the frame.
    pub fn push_line(
        &mut self,
        line: &[u8],
        mut sink: impl FnMut(usize, &[u8]),
    ) -> Result<(), CoreError> {
        if line.len() != self.line.len() {
            return Err(CoreError::new(
                ErrorKind::BufferSize,
                "a line must be width pixels",
            ));
        }
        load(line, self.row);
        self.push_and_emit(&mut sink)
    }

    fn push_and_emit(&mut self, sink: &mut impl FnMut(usize, &[u8])) -> Result<(), CoreError> {
        self.stream.push_rows(self.row)?;
        // Rows come out one at a time through the pixel half of the input
        // row and the line buffer: both are free once the row is pushed.
        let w = self.line.len();
        while self.stream.pending_rows() > 0 {
            let y = self.stream.rows_pulled();
            self.stream.pull_rows(&mut self.row[..w])?;
            for (p, &v) in self.line.iter_mut().zip(self.row.iter()) {
                *p = to_u8(v);
            }
            sink(y, self.line);
        }
        Ok(())
    }
}
